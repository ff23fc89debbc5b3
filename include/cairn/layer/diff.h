// Directory → OCI layer tar (libarchive, PAX format), from an overlayfs upper dir or any tree.
//
// Preserves uid/gid, permission bits incl. setuid/setgid/sticky, mtimes (seconds and
// nanoseconds), xattrs (security.capability, user.*, trusted.* except overlay's own), symlinks,
// hardlinks (as tar links to the first path in sorted order), character/block devices and FIFOs.
// Overlay's whiteouts become OCI whiteouts: a 0/0 character device `name` → empty file
// `.wh.name`; a directory with trusted.overlay.opaque=y (or user.overlay.opaque=y) → the
// directory plus an empty `dir/.wh..wh..opq`. Entries are sorted by path (bytewise), so the same
// tree gives the same bytes.
//
//   LayerEncoder enc(Compression::kZstd, &blob_sink);
//   RETURN_IF_ERROR(createLayerTar(upper_dir, enc, {.source_date_epoch = epoch}));
//   ASSIGN_OR_RETURN(EncodedLayer layer, enc.finishLayer());
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>

#include "cairn/common/status.h"
#include "cairn/layer/stream.h"

namespace cairn::layer {

struct DiffOptions {
  //! Clamp mtimes later than this (seconds since the epoch) to it: SOURCE_DATE_EPOCH.
  std::optional<std::int64_t> source_date_epoch;
  //! Translate overlay whiteouts/opaque dirs into OCI ones (true for upper dirs and layer
  //! snapshots; a plain tree has none, so it does not matter there).
  bool convert_whiteouts = true;
};

struct DiffReport {
  std::uint64_t entries = 0;
  std::uint64_t bytes = 0;  //!< regular file content
};

//! Writes the tar (uncompressed) of `dir`'s contents to `out`; does not call out.finish().
//! Paths in the tar are relative ("etc/passwd", directories with a trailing slash); `dir`
//! itself is not an entry.
Result<DiffReport> createLayerTar(const std::filesystem::path& dir, ByteSink& out,
                                  const DiffOptions& options = {});

}  // namespace cairn::layer

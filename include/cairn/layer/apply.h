// Tar → directory: applies an OCI layer tar to a directory, safely on hostile input.
//
// Entry names containing a `..` component are rejected (no real layer has them); a leading `/`
// is dropped. Parent directories are resolved from a directory fd with openat2(RESOLVE_IN_ROOT
// | RESOLVE_NO_XDEV): symlinks, whether planted by this tar or present from a lower layer, are
// followed but stay inside the target, as if the target were `/` (Docker's chroot semantics:
// `lib -> usr/lib` from a usrmerge base keeps working). The final component is never followed:
// an existing symlink at an entry's name is replaced, not written through. Hardlink targets
// resolve the same way and must exist in the target. Errors name the entry ("tar entry
// \"a/b\": ..."); limits (entries, path length and depth, total size) are checked before
// anything is written for the entry. Overlay's own xattrs (trusted.overlay.*,
// user.overlay.*) in a tar are ignored: only whiteout entries create overlay markers.
//
// Whiteouts (`.wh.<name>`, `.wh..wh..opq`) are applied one of two ways:
//   kOverlay  the target is one layer of an overlay stack (<data>/layers/<chain-id>/fs): a
//             whiteout becomes overlay's 0/0 character device and an opaque marker the
//             trusted.overlay.opaque=y xattr (needs CAP_MKNOD and CAP_SYS_ADMIN: root).
//   kFlatten  the target is a whole root filesystem being built up layer by layer: a whiteout
//             removes the named path from lower layers, an opaque marker empties the directory
//             of everything this tar did not itself put there.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "cairn/common/status.h"
#include "cairn/layer/stream.h"

namespace cairn::layer {

enum class WhiteoutMode { kOverlay, kFlatten };

enum class DevicePolicy {
  kSkip,    //!< leave character/block devices out (counted in ApplyReport::skipped)
  kReject,  //!< a device entry is an error
  kAllow,   //!< create them (needs CAP_MKNOD)
};

struct ApplyOptions {
  WhiteoutMode whiteouts = WhiteoutMode::kOverlay;
  DevicePolicy devices = DevicePolicy::kSkip;
  //! chown entries to the tar's uid/gid (root only); when false, files belong to the caller.
  bool preserve_owner = true;
  //! Apply xattrs from the tar (security.capability, user.*; trusted.* only as root).
  bool preserve_xattrs = true;
  std::uint64_t max_entries = 2'000'000;
  std::uint64_t max_path_length = 4096;
  //! Sum of regular file sizes.
  std::uint64_t max_total_bytes = 64ull << 30;
};

struct ApplyReport {
  std::uint64_t entries = 0;    //!< tar entries read
  std::uint64_t files = 0;      //!< regular files written
  std::uint64_t bytes = 0;      //!< file content bytes written
  std::uint64_t whiteouts = 0;  //!< whiteouts and opaque markers applied
  std::uint64_t skipped = 0;    //!< devices skipped by policy, unsupported entry types
};

//! Reads an uncompressed tar from `tar` (use makeDecompressor/makeAutoDecompressor first) and
//! applies it to `target`, which must exist. On error the target holds a partial result; the
//! caller applies into a staging directory and discards it on failure (LayerStore does).
Result<ApplyReport> applyLayerTar(ByteSource& tar, const std::filesystem::path& target,
                                  const ApplyOptions& options = {});

}  // namespace cairn::layer

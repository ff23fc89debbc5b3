// COPY and ADD's file work: selecting sources (globs, .dockerignore, --exclude), their content
// digest for the step's cache key, and copying them into a step's root filesystem with
// Docker's destination rules.
//
// Destination rules (Docker/BuildKit):
//   - dest ending in "/" or several sources (after glob expansion): dest is a directory and
//     each source lands inside it: a file as dest/<basename>, a directory's *contents* merged
//     into dest.
//   - one file source and dest without "/": dest/<basename> if dest is an existing directory,
//     otherwise dest is the new file's path.
//   - one directory source: its contents are merged into dest (created if missing).
//   - missing parent directories are created 0755 (owned by --chown's user when given).
// Sources keep their mode bits, mtimes, symlinks (not followed below the source path),
// hardlinks (within one copy) and xattrs; ownership becomes 0:0 for the build context, stays
// as in the source for stages and images, and is --chown's when given.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cairn/build/rooted_fs.h"
#include "cairn/common/status.h"
#include "cairn/dockerfile/dockerignore.h"

namespace cairn::build {

//! A tree to copy from: the build context (with its .dockerignore) or another stage's root.
struct CopySourceRoot {
  int dir_fd = -1;                                   //!< borrowed
  const dockerfile::DockerIgnore* ignore = nullptr;  //!< the context's .dockerignore, or null
  bool is_context = true;  //!< context files become 0:0; stage files keep their owners
};

//! One selected source, relative to the root ("" is the root itself).
struct SelectedSource {
  std::string path;
  bool is_dir = false;
};

//! Expands COPY's source patterns (`*`, `?`, `[…]` per path component, as Go's
//! filepath.Match) against the root. A pattern matching nothing is NotFound naming it.
//! `excludes` are --exclude patterns (.dockerignore syntax, relative to the root).
Result<std::vector<SelectedSource>> selectSources(const CopySourceRoot& root,
                                                  const std::vector<std::string>& patterns,
                                                  const std::vector<std::string>& excludes = {});

//! sha256 (hex) over what the copy would write: for every entry under every source, in order,
//! its path, type, permission bits, link target and content — never mtimes (a touched file
//! keeps the cache) — plus owners for non-context roots.
Result<std::string> digestSources(const CopySourceRoot& root,
                                  const std::vector<SelectedSource>& sources,
                                  const std::vector<std::string>& excludes = {});

struct CopyOptions {
  std::optional<Ownership> chown;  //!< --chown, already resolved to ids
  std::optional<mode_t> chmod;     //!< --chmod (octal), applied to files and directories
  std::vector<std::string> excludes;
};

struct CopyReport {
  std::uint64_t files = 0;
  std::uint64_t dirs = 0;
  std::uint64_t bytes = 0;
};

//! Copies `sources` from `root` into the tree at `dest_root_fd`. `dest` is absolute (the
//! caller resolves it against WORKDIR and keeps a trailing "/" if the Dockerfile had one).
Result<CopyReport> copySources(const CopySourceRoot& root,
                               const std::vector<SelectedSource>& sources, int dest_root_fd,
                               const std::string& dest, const CopyOptions& options);

//! Parses --chmod: octal only ("755", "0644"); anything else is InvalidArgument.
Result<mode_t> parseChmod(std::string_view text);

}  // namespace cairn::build

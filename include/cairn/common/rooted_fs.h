// Path resolution confined to a root directory, for writing into an image's or a layer's
// filesystem (build's COPY/WORKDIR, layer's tar apply).
//
// Every lookup goes through openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) from a directory
// fd: `..`, absolute paths and symlinks inside the tree (an image may link /usr/local to
// anywhere) resolve as if the root were `/`, exactly what a process chrooted there would see,
// and never escape it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "cairn/common/fs.h"
#include "cairn/common/status.h"

namespace cairn {

struct Ownership {
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
};

//! openat2(root_fd, path, flags | O_CLOEXEC, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS, plus
//! RESOLVE_NO_XDEV when `same_mount`), retried on EAGAIN/EINTR. A leading '/' is optional and ""
//! is the root. Returns the fd, or -1 with errno set, for callers that branch on ENOENT.
int openInRootRaw(int root_fd, std::string_view path, int flags, mode_t mode = 0,
                  bool same_mount = false);

//! The same as a Result; an error names the path ("open /a/b: No such file or directory").
Result<UniqueFd> openInRoot(int root_fd, std::string_view path, int flags, mode_t mode = 0,
                            bool same_mount = false);

struct MkdirAllOptions {
  mode_t mode = 0755;
  //! chmod each directory created to exactly `mode`; false leaves mkdir's umask applied.
  bool exact_mode = true;
  //! chown each directory created.
  std::optional<Ownership> owner;
  //! A dangling symlink on the way (or one to a missing directory): true creates what it points
  //! to, inside the root, and carries on below it (MkdirAll through a chroot, Docker's COPY);
  //! false makes it FailedPrecondition.
  bool create_link_targets = true;
  //! Lookups may not cross a mount point (RESOLVE_NO_XDEV).
  bool same_mount = false;
  //! Called with the root-relative path ("a/b", no leading '/') of each directory created.
  std::function<void(const std::string&)> on_created;
};

//! `mkdir -p` inside the root: creates the missing directories of `path` and returns an fd of
//! the final one. An existing non-directory on the way is FailedPrecondition naming it; more
//! than 40 symlinks followed is InvalidArgument; a failing mkdir/chmod/chown is its errno.
Result<UniqueFd> mkdirAllInRoot(int root_fd, std::string_view path, const MkdirAllOptions& options);

//! Lexical clean of a slash path, like Go's path.Clean, always absolute: "a/../b/" → "/b".
std::string cleanAbsolutePath(std::string_view path);

}  // namespace cairn

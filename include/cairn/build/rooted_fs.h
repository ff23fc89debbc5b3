// Path resolution confined to a root directory, for writing into an image's filesystem.
//
// Every lookup goes through openat2(RESOLVE_IN_ROOT) from a directory fd: `..`, absolute paths
// and symlinks inside the tree (an image may link /usr/local to anywhere) resolve as if the
// root were `/`, exactly what a process chrooted there would see, and never escape it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cairn/common/fs.h"
#include "cairn/common/status.h"

namespace cairn::build {

//! openat2(root_fd, path, flags | O_CLOEXEC, RESOLVE_IN_ROOT [| RESOLVE_NO_MAGICLINKS]).
Result<UniqueFd> openInRoot(int root_fd, std::string_view path, int flags, mode_t mode = 0);

struct Ownership {
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
};

//! `mkdir -p` inside the root: creates missing directories with `mode` (and `owner` when given)
//! and returns an fd of the final directory. An existing non-directory on the way is
//! FailedPrecondition naming it.
Result<UniqueFd> mkdirAllInRoot(int root_fd, std::string_view path, mode_t mode,
                                std::optional<Ownership> owner = std::nullopt);

//! Lexical clean of a slash path, like Go's path.Clean, always absolute: "a/../b/" → "/b".
std::string cleanAbsolutePath(std::string_view path);

//! Splits "/a/b/c" into {"/a/b", "c"}; the root splits into {"/", ""}.
std::pair<std::string, std::string> splitParent(std::string_view clean_absolute_path);

}  // namespace cairn::build

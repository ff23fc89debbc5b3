// Path resolution confined to a root directory, for writing into an image's filesystem: the
// openat2(RESOLVE_IN_ROOT) helpers live in common (the layer applier uses them too); this adds
// the build's defaults and Docker's destination path helpers.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "cairn/common/rooted_fs.h"

namespace cairn::build {

using ::cairn::cleanAbsolutePath;
using ::cairn::openInRoot;
using ::cairn::Ownership;

//! `mkdir -p` inside the root with the build's rules: directories get exactly `mode` (and
//! `owner` when given), and a dangling symlink on the way is followed and its target created,
//! as Docker's COPY does. An existing non-directory on the way is FailedPrecondition naming it.
inline Result<UniqueFd> mkdirAllInRoot(int root_fd, std::string_view path, mode_t mode,
                                       std::optional<Ownership> owner = std::nullopt) {
  MkdirAllOptions options;
  options.mode = mode;
  options.owner = owner;
  return ::cairn::mkdirAllInRoot(root_fd, path, options);
}

//! Splits "/a/b/c" into {"/a/b", "c"}; the root splits into {"/", ""}.
std::pair<std::string, std::string> splitParent(std::string_view clean_absolute_path);

}  // namespace cairn::build

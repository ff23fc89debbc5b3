#include "cairn/build/rooted_fs.h"

namespace cairn::build {

std::pair<std::string, std::string> splitParent(std::string_view clean) {
  if (clean == "/" || clean.empty()) return {"/", ""};
  std::size_t slash = clean.rfind('/');
  // Views first: g++ 12 sees a false -Wrestrict overlap in string::substr + assignment here.
  std::string_view parent = slash == 0 ? std::string_view("/") : clean.substr(0, slash);
  std::string_view base = clean.substr(slash == std::string_view::npos ? 0 : slash + 1);
  return {std::string(parent), std::string(base)};
}

}  // namespace cairn::build

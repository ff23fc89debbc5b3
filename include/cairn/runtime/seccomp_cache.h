// The file a compiled seccomp filter is cached in (`<state_root>/.cairn-seccomp/<hash>.bpf`, see
// src/runtime/README.md, "Seccomp"): the magic line "cairn-seccomp-bpf-v1", then
// "<key bytes>\n" + key, then "<filter bytes>\n" + filter. The key is the whole text the filter
// was made from (runtime binary, layout, compiler, profile section), stored so that a reader
// compares it instead of trusting the file name's hash.
//
//   std::string data = formatSeccompCacheFile(key, filter);
//   auto parsed = parseSeccompCacheFile(data);  // parsed->key == key, parsed->filter == filter
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace cairn::runtime {

struct SeccompCacheFile {
  std::string key;
  std::string filter;  //!< classic BPF: a whole, non-zero number of 8-byte instructions
};

std::string formatSeccompCacheFile(std::string_view key, std::string_view filter);

//! nullopt for anything that is not a whole cache file: another magic, torn sizes or data, a
//! filter that is not a whole number of BPF instructions.
std::optional<SeccompCacheFile> parseSeccompCacheFile(std::string_view data);

}  // namespace cairn::runtime

#include "cairn/runtime/seccomp_cache.h"

namespace cairn::runtime {
namespace {

constexpr std::string_view kMagic = "cairn-seccomp-bpf-v1\n";

// A decimal size on a line of its own, taken off the front of `v`.
std::optional<std::size_t> takeSize(std::string_view& v) {
  std::size_t nl = v.find('\n');
  if (nl == std::string_view::npos || nl == 0 || nl > 12) return std::nullopt;
  std::size_t n = 0;
  for (char c : v.substr(0, nl)) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<std::size_t>(c - '0');
  }
  v.remove_prefix(nl + 1);
  return n;
}

}  // namespace

std::string formatSeccompCacheFile(std::string_view key, std::string_view filter) {
  std::string data(kMagic);
  data += std::to_string(key.size()) + "\n";
  data.append(key);
  data += std::to_string(filter.size()) + "\n";
  data.append(filter);
  return data;
}

std::optional<SeccompCacheFile> parseSeccompCacheFile(std::string_view data) {
  std::string_view v = data;
  if (!v.starts_with(kMagic)) return std::nullopt;
  v.remove_prefix(kMagic.size());
  auto key_size = takeSize(v);
  if (!key_size || *key_size > v.size()) return std::nullopt;
  SeccompCacheFile file;
  file.key = std::string(v.substr(0, *key_size));
  v.remove_prefix(*key_size);
  auto filter_size = takeSize(v);
  if (!filter_size || *filter_size == 0 || *filter_size % 8 != 0 || *filter_size != v.size())
    return std::nullopt;
  file.filter = std::string(v);
  return file;
}

}  // namespace cairn::runtime

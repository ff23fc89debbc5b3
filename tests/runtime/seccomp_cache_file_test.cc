// The seccomp filter cache's file format: what the executor writes reads back whole, and
// anything else (torn, foreign, not whole BPF instructions) is no filter.
#include "cairn/runtime/seccomp_cache.h"

#include <gtest/gtest.h>

#include <string>

namespace cairn::runtime {
namespace {

const std::string kFilter(16, '\x06');  // two 8-byte instructions

TEST(SeccompCacheFileTest, AFormattedFileParsesBackToItsKeyAndFilter) {
  const std::string key = "/usr/bin/crun 123 4.5\ncairn-tree libseccomp 2.5.4\n{\"syscalls\":[]}";
  std::string data = formatSeccompCacheFile(key, kFilter);
  EXPECT_EQ(data.rfind("cairn-seccomp-bpf-v1\n", 0), 0u);
  auto parsed = parseSeccompCacheFile(data);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->key, key);
  EXPECT_EQ(parsed->filter, kFilter);
  // Keys and filters hold any byte, newlines and NULs included: sizes frame them.
  const std::string binary_key("a\0b\nc", 5);
  const std::string binary_filter("\n\0\n\0\n\0\n\0", 8);
  auto odd = parseSeccompCacheFile(formatSeccompCacheFile(binary_key, binary_filter));
  ASSERT_TRUE(odd.has_value());
  EXPECT_EQ(odd->key, binary_key);
  EXPECT_EQ(odd->filter, binary_filter);
}

TEST(SeccompCacheFileTest, TornOrForeignDataIsNoFile) {
  const std::string good = formatSeccompCacheFile("key", kFilter);
  for (std::size_t n = 0; n < good.size(); ++n)
    EXPECT_FALSE(parseSeccompCacheFile(good.substr(0, n)).has_value()) << "cut at " << n;
  EXPECT_FALSE(parseSeccompCacheFile(good + "x").has_value());
  EXPECT_FALSE(parseSeccompCacheFile("cairn-seccomp-bpf-v2\n3\nkey16\n" + kFilter).has_value());
  EXPECT_FALSE(parseSeccompCacheFile("cairn-seccomp-bpf-v1\nx\nkey16\n" + kFilter).has_value());
  EXPECT_FALSE(parseSeccompCacheFile("cairn-seccomp-bpf-v1\n99\nkey16\n" + kFilter).has_value());
  // A filter must be whole instructions, and not empty.
  EXPECT_FALSE(parseSeccompCacheFile(formatSeccompCacheFile("key", "1234567")).has_value());
  EXPECT_FALSE(parseSeccompCacheFile(formatSeccompCacheFile("key", "")).has_value());
  // A size line longer than any real size is not read as a number.
  EXPECT_FALSE(
      parseSeccompCacheFile("cairn-seccomp-bpf-v1\n0000000000003\nkey16\n" + kFilter).has_value());
}

}  // namespace
}  // namespace cairn::runtime

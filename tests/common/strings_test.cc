#include "cairn/common/strings.h"

#include <gtest/gtest.h>

namespace cairn {
namespace {

TEST(StringsTest, TrimSplitJoin) {
  EXPECT_EQ(trimSpace("  a b \t\n"), "a b");
  EXPECT_EQ(splitString("a,,b", ','), (std::vector<std::string>{"a", "", "b"}));
  EXPECT_EQ(joinStrings({"a", "b", "c"}, ", "), "a, b, c");
  EXPECT_TRUE(equalsIgnoreCase("Copy", "COPY"));
}

TEST(StringsTest, EditDistance) {
  EXPECT_EQ(editDistance("CPY", "COPY"), 1u);
  EXPECT_EQ(editDistance("", "abc"), 3u);
  EXPECT_EQ(editDistance("kitten", "sitting"), 3u);
}

}  // namespace
}  // namespace cairn

#include "cairn/common/json.h"

#include "cairn/testing/status_matchers.h"

namespace cairn {
namespace {

using ::cairn::testing::StatusIs;
using ::testing::HasSubstr;

TEST(JsonTest, ParsesAndRejectsWithoutThrowing) {
  auto j = parseJson(R"({"a": [1, 2, {"b": "c"}]})");
  ASSERT_TRUE(j.ok());
  EXPECT_EQ((*j)["a"][2]["b"], "c");
  EXPECT_THAT(parseJson("{\"a\": }"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("parse error")));
  EXPECT_THAT(parseJson(""), StatusIs(StatusCode::kInvalidArgument));
}

TEST(JsonTest, DeepNestingIsRejected) {
  std::string deep(100000, '[');
  EXPECT_THAT(parseJson(deep), StatusIs(StatusCode::kInvalidArgument, HasSubstr("nested")));
  // Brackets inside strings do not count.
  EXPECT_TRUE(parseJson("\"" + std::string(1000, '[') + "\"").ok());
}

TEST(JsonTest, OrderedKeepsInsertionOrder) {
  auto j = parseOrderedJson(R"({"z":1,"a":2})");
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(j->dump(), R"({"z":1,"a":2})");
}

}  // namespace
}  // namespace cairn

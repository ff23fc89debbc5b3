#include "cairn/common/time.h"

#include "cairn/testing/status_matchers.h"

namespace cairn {
namespace {

using ::cairn::testing::StatusIs;
using namespace std::chrono;

TEST(TimeTest, FormatsWithMilliseconds) {
  SystemTime t =
      sys_days(year(2026) / 1 / 15) + hours(9) + minutes(30) + seconds(12) + milliseconds(345);
  EXPECT_EQ(formatRfc3339(t), "2026-01-15T09:30:12.345Z");
  EXPECT_EQ(formatRfc3339(SystemTime{}), "1970-01-01T00:00:00.000Z");
}

TEST(TimeTest, ParsesOffsetsAndFractions) {
  auto t = parseRfc3339("2026-01-15T09:30:12.345Z");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(formatRfc3339(*t), "2026-01-15T09:30:12.345Z");
  EXPECT_EQ(formatRfc3339(*parseRfc3339("2026-01-15T10:30:12+01:00")), "2026-01-15T09:30:12.000Z");
  EXPECT_EQ(formatRfc3339(*parseRfc3339("2026-01-15t09:30:12.3456789z")),
            "2026-01-15T09:30:12.345Z");
}

TEST(TimeTest, RejectsGarbage) {
  for (const char* bad :
       {"", "2026-01-15", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-01-15T09:30:12",
        "2026-01-15T09:30:12.Z", "2026-01-15T09:30:12Zx"}) {
    EXPECT_THAT(parseRfc3339(bad), StatusIs(StatusCode::kInvalidArgument)) << bad;
  }
}

}  // namespace
}  // namespace cairn

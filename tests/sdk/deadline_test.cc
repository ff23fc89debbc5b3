#include "cairn/sdk/deadline.h"

#include <gtest/gtest.h>

#include <cmath>

namespace cairn::sdk {
namespace {

using std::chrono::milliseconds;

TEST(DeadlineTest, NoneNeverExpiresAndMeansNoRequestTimeout) {
  Deadline d = Deadline::none();
  EXPECT_FALSE(d.isSet());
  EXPECT_FALSE(d.expired());
  EXPECT_EQ(d.remaining(), milliseconds(0));
  EXPECT_EQ(d.capped(milliseconds(1000)), milliseconds(1000));
  EXPECT_FALSE(Deadline::afterSeconds(0).isSet());
  EXPECT_FALSE(Deadline::afterSeconds(-3).isSet());
  EXPECT_FALSE(Deadline::afterSeconds(std::nan("")).isSet());
}

TEST(DeadlineTest, ExpiredDeadlineStillYieldsAPositiveTimeout) {
  Deadline d = Deadline::after(milliseconds(0));
  EXPECT_TRUE(d.isSet());
  EXPECT_TRUE(d.expired());
  EXPECT_EQ(d.remaining(), milliseconds(1));
  EXPECT_EQ(d.capped(milliseconds(1000)), milliseconds(1));
}

TEST(DeadlineTest, FarDeadlinesAreClampedNotOverflowed) {
  Deadline d = Deadline::afterSeconds(1e300);
  EXPECT_TRUE(d.isSet());
  EXPECT_FALSE(d.expired());
  EXPECT_GT(d.remaining(), milliseconds(1000LL * 3600 * 24 * 365));
  Deadline hour = Deadline::afterSeconds(3600);
  EXPECT_FALSE(hour.expired());
  EXPECT_LE(hour.remaining(), milliseconds(3600 * 1000));
  EXPECT_EQ(hour.capped(milliseconds(20)), milliseconds(20));
}

}  // namespace
}  // namespace cairn::sdk

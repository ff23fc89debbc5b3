// The shared FakeClock: where it starts, that both clocks move together and only on advance().
#include "cairn/testing/fake_clock.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "cairn/testing/status_matchers.h"

namespace cairn::testing {
namespace {

using namespace std::chrono_literals;

TEST(FakeClockTest, StartsAtAFixedReadableInstantWithSteadyTimeZero) {
  FakeClock clock;
  EXPECT_EQ(formatRfc3339(clock.now()), "2026-01-15T09:30:00.000Z");
  EXPECT_EQ(clock.steadyNow(), std::chrono::steady_clock::time_point{});
  std::this_thread::sleep_for(2ms);  // real time passing does not move it
  EXPECT_EQ(clock.now(), FakeClock::kDefaultStart);
}

TEST(FakeClockTest, AdvanceMovesBothClocksByAnyDuration) {
  FakeClock clock;
  clock.advance(2h);
  clock.advance(30s);
  clock.advance(250ms);
  EXPECT_EQ(formatRfc3339(clock.now()), "2026-01-15T11:30:30.250Z");
  EXPECT_EQ(clock.steadyNow() - std::chrono::steady_clock::time_point{}, 2h + 30s + 250ms);
}

TEST(FakeClockTest, StartsWhereTold) {
  ASSERT_OK_AND_ASSIGN(SystemTime start, parseRfc3339("2030-06-01T00:00:00Z"));
  FakeClock clock(start);
  clock.advance(1min);
  EXPECT_EQ(formatRfc3339(clock.now()), "2030-06-01T00:01:00.000Z");
  EXPECT_EQ(clock.steadyNow() - std::chrono::steady_clock::time_point{}, 1min);
}

TEST(FakeClockTest, ConcurrentAdvancesAreNotLost) {
  FakeClock clock;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i)
        clock.advance(1ms);
    });
  for (auto& th : threads)
    th.join();
  EXPECT_EQ(clock.now() - FakeClock::kDefaultStart, 4s);
}

}  // namespace
}  // namespace cairn::testing

// A Clock that moves only when a test says so (STYLE.md §8): deadlines, expiry, key lifetimes
// and progress timings are tested by advancing it, never by sleeping.
//
//   cairn::testing::FakeClock clock;          // 2026-01-15T09:30:00.000Z, steady time zero
//   service.setClock(&clock);
//   clock.advance(std::chrono::hours(2));      // both now() and steadyNow() move by 2 h
//
// now() starts at `start` (default a fixed, readable, whole-millisecond instant, so values
// that round-trip through a store keeping milliseconds compare equal); steadyNow() starts at
// the steady clock's epoch, so a test can name steady instants as `time_point{} + 50ms`.
// Reads and advances are atomic: worker threads may read it while the test advances it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "cairn/common/time.h"

namespace cairn::testing {

class FakeClock final : public Clock {
 public:
  //! 2026-01-15T09:30:00.000Z.
  static constexpr SystemTime kDefaultStart{std::chrono::milliseconds(1'768'469'400'000)};

  FakeClock() = default;
  explicit FakeClock(SystemTime start) : start_(start) {}

  SystemTime now() const override {
    return start_ + std::chrono::duration_cast<SystemTime::duration>(elapsed());
  }
  std::chrono::steady_clock::time_point steadyNow() const override {
    return std::chrono::steady_clock::time_point{} +
           std::chrono::duration_cast<std::chrono::steady_clock::duration>(elapsed());
  }

  //! Moves both clocks forward; takes any whole duration (hours, seconds, milliseconds, …).
  void advance(std::chrono::nanoseconds d) { elapsed_ns_ += d.count(); }

 private:
  std::chrono::nanoseconds elapsed() const { return std::chrono::nanoseconds(elapsed_ns_.load()); }

  const SystemTime start_ = kDefaultStart;
  std::atomic<std::int64_t> elapsed_ns_{0};
};

}  // namespace cairn::testing

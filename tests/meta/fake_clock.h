// A Clock that moves only when a test says so (whole milliseconds, as the store keeps them).
#pragma once

#include <atomic>
#include <chrono>

#include "cairn/common/time.h"

namespace cairn::meta::testing {

class FakeClock final : public Clock {
 public:
  //! Starts at 2026-01-15T09:30:00.000Z, a fixed and readable point.
  FakeClock() : ms_(1768469400000) {}

  SystemTime now() const override {
    return SystemTime(
        std::chrono::duration_cast<SystemTime::duration>(std::chrono::milliseconds(ms_.load())));
  }
  std::chrono::steady_clock::time_point steadyNow() const override {
    return std::chrono::steady_clock::time_point(
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            std::chrono::milliseconds(ms_.load())));
  }
  void advance(std::chrono::milliseconds d) { ms_ += d.count(); }

 private:
  std::atomic<std::int64_t> ms_;
};

}  // namespace cairn::meta::testing

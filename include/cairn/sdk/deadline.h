// A point in time by which an operation must finish, or none. SnapshotService::create hands
// one deadline to every request it makes, so `timeout` bounds the whole operation (spec §0.1).
#pragma once

#include <algorithm>
#include <chrono>

namespace cairn::sdk {

class Deadline {
 public:
  using Clock = std::chrono::steady_clock;

  static constexpr double kMaxSeconds = 10.0 * 365 * 24 * 3600;

  static Deadline none() { return Deadline(); }
  static Deadline after(std::chrono::milliseconds d) { return Deadline(Clock::now() + d); }
  //! `seconds` <= 0 means none, as CreateOptions::timeout does.
  static Deadline afterSeconds(double seconds) {
    if (!(seconds > 0)) return none();  // also NaN
    // Beyond ten years is "never" for practical purposes, and keeps the arithmetic in range.
    if (seconds > kMaxSeconds) seconds = kMaxSeconds;
    return after(std::chrono::milliseconds(static_cast<long long>(seconds * 1000.0)));
  }

  bool isSet() const { return set_; }
  bool expired() const { return set_ && Clock::now() >= at_; }
  //! As an HttpRequest timeout: 0 (no limit) without a deadline, else the time left but at
  //! least 1 ms, so that an expired deadline still yields a timed-out request, not an endless one.
  std::chrono::milliseconds remaining() const {
    if (!set_) return std::chrono::milliseconds(0);
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(at_ - Clock::now());
    return std::max(left, std::chrono::milliseconds(1));
  }
  //! min(d, time left); d itself without a deadline.
  std::chrono::milliseconds capped(std::chrono::milliseconds d) const {
    return set_ ? std::min(d, remaining()) : d;
  }

 private:
  Deadline() = default;
  explicit Deadline(Clock::time_point at) : set_(true), at_(at) {}
  bool set_ = false;
  Clock::time_point at_{};
};

}  // namespace cairn::sdk

// RFC 3339 timestamps, UTC, with milliseconds: "2026-01-15T09:30:12.345Z" (Daytona's format).
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "cairn/common/status.h"

namespace cairn {

using SystemTime = std::chrono::system_clock::time_point;

//! Always "YYYY-MM-DDTHH:MM:SS.mmmZ".
std::string formatRfc3339(SystemTime t);
//! Accepts "Z" or "±HH:MM" offsets, any number of fractional digits (kept to microseconds),
//! and a lowercase 't'/'z'. Anything else is InvalidArgument.
Result<SystemTime> parseRfc3339(std::string_view text);

//! Clock seam (STYLE.md §8): deadlines, GC and expiry ask a Clock, so tests can move time.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual SystemTime now() const = 0;
  virtual std::chrono::steady_clock::time_point steadyNow() const = 0;
};

class RealClock final : public Clock {
 public:
  SystemTime now() const override { return std::chrono::system_clock::now(); }
  std::chrono::steady_clock::time_point steadyNow() const override {
    return std::chrono::steady_clock::now();
  }
  static const RealClock& instance();
};

}  // namespace cairn

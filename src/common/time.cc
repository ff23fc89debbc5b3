#include "cairn/common/time.h"

#include <charconv>
#include <cstdio>
#include <ctime>

namespace cairn {
namespace {

bool parseDigits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  return true;
}

}  // namespace

std::string formatRfc3339(SystemTime t) {
  using namespace std::chrono;
  auto ms_total = duration_cast<milliseconds>(t.time_since_epoch()).count();
  auto secs = ms_total / 1000;
  auto ms = ms_total % 1000;
  if (ms < 0) {
    ms += 1000;
    secs -= 1;
  }
  std::time_t tt = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

Result<SystemTime> parseRfc3339(std::string_view s) {
  auto bad = [&] {
    return invalidArgument("invalid RFC 3339 timestamp: \"" + std::string(s.substr(0, 64)) + "\"");
  };
  int year, mon, day, hour, min, sec;
  if (!parseDigits(s, 0, 4, year) || s.size() < 20 || s[4] != '-' || !parseDigits(s, 5, 2, mon) ||
      s[7] != '-' || !parseDigits(s, 8, 2, day) || (s[10] != 'T' && s[10] != 't') ||
      !parseDigits(s, 11, 2, hour) || s[13] != ':' || !parseDigits(s, 14, 2, min) || s[16] != ':' ||
      !parseDigits(s, 17, 2, sec)) {
    return bad();
  }
  if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60) {
    return bad();
  }
  std::size_t pos = 19;
  std::int64_t micros = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    std::size_t start = pos;
    int digits = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (digits < 6) {
        micros = micros * 10 + (s[pos] - '0');
        ++digits;
      }
      ++pos;
    }
    if (pos == start) return bad();
    while (digits < 6) {
      micros *= 10;
      ++digits;
    }
  }
  int offset_minutes = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int oh, om;
    if (!parseDigits(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !parseDigits(s, pos + 4, 2, om) || oh > 23 || om > 59) {
      return bad();
    }
    offset_minutes = (oh * 60 + om) * (s[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return bad();
  }
  if (pos != s.size()) return bad();

  using namespace std::chrono;
  year_month_day ymd{std::chrono::year(year), month(static_cast<unsigned>(mon)),
                     std::chrono::day(static_cast<unsigned>(day))};
  if (!ymd.ok()) return bad();
  auto tp = sys_days(ymd) + hours(hour) + minutes(min) + seconds(sec) + microseconds(micros) -
            minutes(offset_minutes);
  return time_point_cast<system_clock::duration>(tp);
}

const RealClock& RealClock::instance() {
  static const RealClock clock;
  return clock;
}

}  // namespace cairn

// A 5-field cron schedule (minute hour day-of-month month day-of-week), evaluated in UTC,
// with the syntax of the Kubernetes CronJob controller (robfig/cron's standard parser):
// `*`, `?`, numbers, ranges `a-b`, steps `*/n`, `a-b/n` and `a/n` (a to the maximum),
// lists `a,b-c`, month names JAN-DEC and day names SUN-SAT (any case), day-of-week 0-7
// (0 and 7 are Sunday), and the macros @yearly, @annually, @monthly, @weekly, @daily,
// @midnight, @hourly. When both day fields are restricted (neither starts with `*` or
// `?`), a day matches when either does (cron's rule); otherwise both must.
#pragma once

#include <bitset>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace ro::controllers {

// The schedule text is not valid; what() says which field and why.
class CronError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// Immutable after Parse; thread-safe.
class CronSchedule {
 public:
  using TimePoint = std::chrono::system_clock::time_point;

  // Throws CronError.
  static CronSchedule Parse(std::string_view text);

  // The first time strictly after `after` (whole minutes, UTC) the schedule fires, or
  // nullopt when it never does within the next 5 years (e.g. "0 0 30 2 *").
  std::optional<TimePoint> Next(TimePoint after) const;

 private:
  bool DayMatches(int day_of_month, int day_of_week) const;

  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;    // 1..31
  std::bitset<13> months_;  // 1..12
  std::bitset<7> weekdays_; // 0 (Sunday)..6
  bool days_star_ = false;
  bool weekdays_star_ = false;
};

}  // namespace ro::controllers

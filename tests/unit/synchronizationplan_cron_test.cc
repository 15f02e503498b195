// The SynchronizationPlan's cron schedules against a table of schedules and times (UTC).
#include "synchronizationplan/cron_schedule.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ro/common/time.h"

namespace ro::controllers {
namespace {

using ::testing::HasSubstr;

std::string NextAfter(const std::string& schedule, const std::string& after) {
  const std::optional<CronSchedule::TimePoint> next =
      CronSchedule::Parse(schedule).Next(common::ParseRfc3339(after));
  return next ? common::FormatRfc3339(*next) : "never";
}

std::string ErrorOf(const std::string& schedule) {
  try {
    CronSchedule::Parse(schedule);
  } catch (const CronError& e) {
    return e.what();
  }
  return "";
}

struct Case {
  const char* schedule;
  const char* after;
  const char* next;
};

TEST(CronSchedule, NextFireTimesMatchTheTable) {
  const Case cases[] = {
      // Every minute; strictly after, whole minutes.
      {"* * * * *", "2024-01-01T00:00:00Z", "2024-01-01T00:01:00Z"},
      {"* * * * *", "2024-01-01T00:00:30Z", "2024-01-01T00:01:00Z"},
      // The manual's hourly sample and its macro.
      {"0 * * * *", "2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z"},
      {"@hourly", "2024-01-01T10:59:59Z", "2024-01-01T11:00:00Z"},
      {"*/15 * * * *", "2024-01-01T10:14:00Z", "2024-01-01T10:15:00Z"},
      {"*/15 * * * *", "2024-01-01T10:45:00Z", "2024-01-01T11:00:00Z"},
      {"5-20/5 * * * *", "2024-01-01T10:20:00Z", "2024-01-01T11:05:00Z"},
      {"30/10 * * * *", "2024-01-01T10:55:00Z", "2024-01-01T11:30:00Z"},
      {"0,30 9-17 * * MON-FRI", "2024-01-05T17:30:00Z", "2024-01-08T09:00:00Z"},  // Fri -> Mon
      {"0 9 * * mon-fri", "2024-01-06T08:00:00Z", "2024-01-08T09:00:00Z"},        // Sat
      {"0 0 * * 7", "2024-01-01T00:00:00Z", "2024-01-07T00:00:00Z"},              // 7 = Sunday
      {"0 0 * * SUN", "2024-01-01T00:00:00Z", "2024-01-07T00:00:00Z"},
      // Year, month and leap-day edges (UTC: no DST).
      {"59 23 31 12 *", "2024-06-01T00:00:00Z", "2024-12-31T23:59:00Z"},
      {"@yearly", "2024-12-31T23:59:59Z", "2025-01-01T00:00:00Z"},
      {"0 0 29 2 *", "2024-03-01T00:00:00Z", "2028-02-29T00:00:00Z"},
      {"0 0 29 FEB *", "2023-01-01T00:00:00Z", "2024-02-29T00:00:00Z"},
      {"0 0 31 * *", "2024-04-01T00:00:00Z", "2024-05-31T00:00:00Z"},             // April has 30
      {"@monthly", "2024-01-31T12:00:00Z", "2024-02-01T00:00:00Z"},
      {"@weekly", "2024-01-01T00:00:00Z", "2024-01-07T00:00:00Z"},
      {"@daily", "2024-02-28T23:00:00Z", "2024-02-29T00:00:00Z"},
      {"0 12 * JAN,jul *", "2024-02-01T00:00:00Z", "2024-07-01T12:00:00Z"},
      // Both day fields restricted: either matches (the 13th, or any Friday).
      {"0 0 13 * FRI", "2024-01-01T00:00:00Z", "2024-01-05T00:00:00Z"},
      {"0 0 13 * FRI", "2024-01-12T00:00:00Z", "2024-01-13T00:00:00Z"},
      // Day of month restricted, weekday '*': only the day of month.
      {"0 0 13 * *", "2024-01-01T00:00:00Z", "2024-01-13T00:00:00Z"},
      {"0 0 30 2 *", "2024-01-01T00:00:00Z", "never"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(NextAfter(c.schedule, c.after), c.next) << c.schedule << " after " << c.after;
  }
}

TEST(CronSchedule, InvalidSchedulesSayWhatIsWrong) {
  EXPECT_THAT(ErrorOf(""), HasSubstr("expected 5 fields"));
  EXPECT_THAT(ErrorOf("* * * *"), HasSubstr("got 4"));
  EXPECT_THAT(ErrorOf("60 * * * *"), HasSubstr("minute: 60 is outside 0-59"));
  EXPECT_THAT(ErrorOf("* 24 * * *"), HasSubstr("hour"));
  EXPECT_THAT(ErrorOf("* * 0 * *"), HasSubstr("day of month"));
  EXPECT_THAT(ErrorOf("* * * 13 *"), HasSubstr("month"));
  EXPECT_THAT(ErrorOf("* * * * 8"), HasSubstr("day of week"));
  EXPECT_THAT(ErrorOf("*/0 * * * *"), HasSubstr("step"));
  EXPECT_THAT(ErrorOf("5-1 * * * *"), HasSubstr("ends before it starts"));
  EXPECT_THAT(ErrorOf("* * * FOO *"), HasSubstr("not a number or a name"));
  EXPECT_THAT(ErrorOf("@every 5m"), HasSubstr("not a macro"));
  EXPECT_THAT(ErrorOf("CRON_TZ=Europe/Madrid 0 * * * *"), HasSubstr("UTC"));
  EXPECT_THAT(ErrorOf("1,,2 * * * *"), HasSubstr("malformed"));
  EXPECT_EQ(ErrorOf("  0  *  *  *  *  "), "");
}

}  // namespace
}  // namespace ro::controllers

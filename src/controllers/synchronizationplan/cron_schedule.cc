#include "synchronizationplan/cron_schedule.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <vector>

#include "ro/common/strings.h"

namespace ro::controllers {
namespace {

using namespace std::chrono;

struct Field {
  const char* name;
  int min;
  int max;
  const std::array<const char*, 13>* names;  // index = value; null entries unused
};

constexpr std::array<const char*, 13> kMonthNames = {nullptr, "JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                     "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr std::array<const char*, 13> kDayNames = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT",
                                                   nullptr, nullptr, nullptr, nullptr, nullptr, nullptr};

const Field kMinute{"minute", 0, 59, nullptr};
const Field kHour{"hour", 0, 23, nullptr};
const Field kDayOfMonth{"day of month", 1, 31, nullptr};
const Field kMonth{"month", 1, 12, &kMonthNames};
// 7 is Sunday too (folded onto 0 after parsing).
const Field kDayOfWeek{"day of week", 0, 7, &kDayNames};

// How far Next() looks before deciding a schedule never fires: beyond any leap-year cycle
// of "Feb 29" schedules that also restrict the weekday.
constexpr int kSearchYears = 5;

int Value(std::string_view text, const Field& field) {
  if (field.names != nullptr) {
    std::string upper(text);
    std::transform(upper.begin(), upper.end(), upper.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    for (std::size_t i = 0; i < field.names->size(); ++i) {
      if ((*field.names)[i] != nullptr && upper == (*field.names)[i]) return static_cast<int>(i);
    }
  }
  if (text.empty() || text.size() > 3 ||
      !std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); })) {
    throw CronError(std::string(field.name) + ": \"" + std::string(text) + "\" is not a number" +
                    (field.names ? " or a name" : ""));
  }
  const int value = std::stoi(std::string(text));
  if (value < field.min || value > field.max) {
    throw CronError(std::string(field.name) + ": " + std::to_string(value) + " is outside " +
                    std::to_string(field.min) + "-" + std::to_string(field.max));
  }
  return value;
}

// Sets the bits of one field; returns whether it is a star (`*` or `?`, no step).
template <std::size_t N>
bool ParseField(std::string_view text, const Field& field, std::bitset<N>& bits) {
  bool star = false;
  for (std::string_view part : common::Split(text, ',')) {
    const std::vector<std::string_view> range_step = common::Split(part, '/');
    if (range_step.size() > 2 || part.empty()) {
      throw CronError(std::string(field.name) + ": \"" + std::string(part) + "\" is malformed");
    }
    int step = 1;
    if (range_step.size() == 2) {
      const std::string_view s = range_step[1];
      if (s.empty() || s.size() > 3 ||
          !std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); }) ||
          std::stoi(std::string(s)) == 0) {
        throw CronError(std::string(field.name) + ": step \"" + std::string(s) +
                        "\" must be a positive number");
      }
      step = std::stoi(std::string(s));
    }
    int low = 0;
    int high = 0;
    const std::string_view range = range_step[0];
    if (range == "*" || range == "?") {
      low = field.min;
      high = field.max;
      if (step == 1) star = true;
    } else {
      const std::vector<std::string_view> bounds = common::Split(range, '-');
      if (bounds.size() > 2) {
        throw CronError(std::string(field.name) + ": \"" + std::string(range) + "\" is malformed");
      }
      low = Value(bounds[0], field);
      high = bounds.size() == 2 ? Value(bounds[1], field)
                                : (range_step.size() == 2 ? field.max : low);  // "a/n": a to max
      if (low > high) {
        throw CronError(std::string(field.name) + ": range \"" + std::string(range) +
                        "\" ends before it starts");
      }
    }
    for (int v = low; v <= high; v += step) bits.set(static_cast<std::size_t>(v));
  }
  return star;
}

std::string_view Expand(std::string_view text) {
  if (text == "@yearly" || text == "@annually") return "0 0 1 1 *";
  if (text == "@monthly") return "0 0 1 * *";
  if (text == "@weekly") return "0 0 * * 0";
  if (text == "@daily" || text == "@midnight") return "0 0 * * *";
  if (text == "@hourly") return "0 * * * *";
  throw CronError("\"" + std::string(text) +
                  "\" is not a macro (@yearly, @annually, @monthly, @weekly, @daily, "
                  "@midnight, @hourly)");
}

}  // namespace

CronSchedule CronSchedule::Parse(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  if (text.starts_with("TZ=") || text.starts_with("CRON_TZ=")) {
    throw CronError("time zones are not supported in the schedule: schedules are in UTC");
  }
  if (text.starts_with("@")) text = Expand(text);
  std::vector<std::string_view> fields;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    const std::size_t start = i;
    while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i > start) fields.push_back(text.substr(start, i - start));
  }
  if (fields.size() != 5) {
    throw CronError("expected 5 fields (minute hour day-of-month month day-of-week), got " +
                    std::to_string(fields.size()));
  }
  CronSchedule s;
  ParseField(fields[0], kMinute, s.minutes_);
  ParseField(fields[1], kHour, s.hours_);
  s.days_star_ = ParseField(fields[2], kDayOfMonth, s.days_);
  ParseField(fields[3], kMonth, s.months_);
  std::bitset<8> weekdays;
  s.weekdays_star_ = ParseField(fields[4], kDayOfWeek, weekdays);
  for (std::size_t d = 0; d < 7; ++d) s.weekdays_[d] = weekdays[d];
  if (weekdays[7]) s.weekdays_.set(0);
  return s;
}

bool CronSchedule::DayMatches(int day_of_month, int day_of_week) const {
  const bool dom = days_[static_cast<std::size_t>(day_of_month)];
  const bool dow = weekdays_[static_cast<std::size_t>(day_of_week)];
  if (days_star_ || weekdays_star_) return dom && dow;
  return dom || dow;
}

std::optional<CronSchedule::TimePoint> CronSchedule::Next(TimePoint after) const {
  // The next whole minute strictly after `after`.
  sys_time<minutes> t = floor<minutes>(after) + minutes{1};
  const sys_days limit = floor<days>(after) + days{366 * kSearchYears};
  while (t < limit) {
    const sys_days day = floor<days>(t);
    const year_month_day ymd{day};
    const unsigned month = static_cast<unsigned>(ymd.month());
    if (!months_[month]) {
      // First day of the next month.
      const year_month next = year_month{ymd.year(), ymd.month()} + std::chrono::months{1};
      t = sys_days{next / 1};
      continue;
    }
    const int day_of_week = static_cast<int>(std::chrono::weekday{day}.c_encoding());
    if (!DayMatches(static_cast<int>(static_cast<unsigned>(ymd.day())), day_of_week)) {
      t = day + days{1};
      continue;
    }
    const hh_mm_ss<minutes> time{t - day};
    if (!hours_[static_cast<std::size_t>(time.hours().count())]) {
      t = day + time.hours() + hours{1};
      continue;
    }
    if (!minutes_[static_cast<std::size_t>(time.minutes().count())]) {
      t += minutes{1};
      continue;
    }
    return TimePoint{t};
  }
  return std::nullopt;
}

}  // namespace ro::controllers

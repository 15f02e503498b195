#include "ro/common/time.h"

#include <cstdint>
#include <limits>

namespace ro::common {
namespace {

using std::chrono::nanoseconds;
using std::chrono::system_clock;

// Writes `value` as exactly `width` decimal digits (zero padded) at out[pos...].
void PutDigits(std::string& out, std::size_t pos, std::int64_t value, int width) {
  for (int i = width - 1; i >= 0; --i) {
    out[pos + static_cast<std::size_t>(i)] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
}

// "YYYY-MM-DDTHH:MM:SS" + (fraction_digits > 0 ? "." + digits : "") + "Z".
std::string Format(system_clock::time_point t, int fraction_digits) {
  const auto since_epoch = std::chrono::duration_cast<nanoseconds>(t.time_since_epoch());
  const auto day = std::chrono::floor<std::chrono::days>(since_epoch);
  const std::chrono::year_month_day ymd{std::chrono::sys_days{day}};
  const nanoseconds in_day = since_epoch - day;
  const std::int64_t total_ns = in_day.count();
  constexpr std::int64_t kNsPerSecond = 1'000'000'000;
  const std::int64_t secs = total_ns / kNsPerSecond;
  std::int64_t fraction = total_ns % kNsPerSecond;
  for (int i = 9; i > fraction_digits; --i) fraction /= 10;  // truncate, never round

  // 20 = "YYYY-MM-DDTHH:MM:SSZ"; one more for the '.' when there is a fraction.
  std::string out(20 + (fraction_digits > 0 ? 1 + fraction_digits : 0), '0');
  PutDigits(out, 0, static_cast<int>(ymd.year()), 4);
  out[4] = '-';
  PutDigits(out, 5, static_cast<unsigned>(ymd.month()), 2);
  out[7] = '-';
  PutDigits(out, 8, static_cast<unsigned>(ymd.day()), 2);
  out[10] = 'T';
  PutDigits(out, 11, secs / 3600, 2);
  out[13] = ':';
  PutDigits(out, 14, secs / 60 % 60, 2);
  out[16] = ':';
  PutDigits(out, 17, secs % 60, 2);
  if (fraction_digits > 0) {
    out[19] = '.';
    PutDigits(out, 20, fraction, fraction_digits);
  }
  out.back() = 'Z';
  return out;
}

[[noreturn]] void Fail(std::string_view text, std::string_view why) {
  std::string message = "invalid RFC 3339 time \"";
  message.append(text);
  message.append("\": ");
  message.append(why);
  throw TimeError(message);
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Reads exactly `width` digits at text[pos]; fails with `what` otherwise.
int ReadFixed(std::string_view text, std::size_t pos, int width, std::string_view what) {
  if (pos + static_cast<std::size_t>(width) > text.size()) Fail(text, what);
  int value = 0;
  for (int i = 0; i < width; ++i) {
    const char c = text[pos + static_cast<std::size_t>(i)];
    if (!IsDigit(c)) Fail(text, what);
    value = value * 10 + (c - '0');
  }
  return value;
}

void Expect(std::string_view text, std::size_t pos, std::string_view accepted,
            std::string_view what) {
  if (pos >= text.size() || accepted.find(text[pos]) == std::string_view::npos) {
    Fail(text, what);
  }
}

}  // namespace

std::string FormatRfc3339(system_clock::time_point t) { return Format(t, 0); }
std::string FormatRfc3339Micro(system_clock::time_point t) { return Format(t, 6); }
std::string FormatRfc3339Nano(system_clock::time_point t) { return Format(t, 9); }

system_clock::time_point ParseRfc3339(std::string_view text) {
  // Fixed layout up to the seconds: YYYY-MM-DDTHH:MM:SS (19 characters).
  const int year = ReadFixed(text, 0, 4, "want a 4-digit year");
  Expect(text, 4, "-", "want '-' after the year");
  const int month = ReadFixed(text, 5, 2, "want a 2-digit month");
  Expect(text, 7, "-", "want '-' after the month");
  const int day = ReadFixed(text, 8, 2, "want a 2-digit day");
  Expect(text, 10, "Tt", "want 'T' between date and time");
  const int hour = ReadFixed(text, 11, 2, "want a 2-digit hour");
  Expect(text, 13, ":", "want ':' after the hour");
  const int minute = ReadFixed(text, 14, 2, "want 2-digit minutes");
  Expect(text, 16, ":", "want ':' after the minutes");
  const int second = ReadFixed(text, 17, 2, "want 2-digit seconds");

  if (month < 1 || month > 12) Fail(text, "month out of range");
  const std::chrono::year_month_day ymd{std::chrono::year{year},
                                        std::chrono::month{static_cast<unsigned>(month)},
                                        std::chrono::day{static_cast<unsigned>(day)}};
  if (!ymd.ok()) Fail(text, "day out of range");
  if (hour > 23) Fail(text, "hour out of range");
  if (minute > 59) Fail(text, "minute out of range");
  if (second > 59) Fail(text, "second out of range");

  std::size_t pos = 19;
  std::int64_t fraction_ns = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    const std::size_t first = pos;
    std::int64_t scale = 100'000'000;  // weight of the first fractional digit in ns
    while (pos < text.size() && IsDigit(text[pos])) {
      fraction_ns += (text[pos] - '0') * scale;
      scale /= 10;  // digits beyond the 9th reach scale 0: truncated
      ++pos;
    }
    if (pos == first) Fail(text, "want digits after '.'");
  }

  int offset_minutes = 0;
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    const int sign = text[pos] == '-' ? -1 : 1;
    const int offset_hours = ReadFixed(text, pos + 1, 2, "want a 2-digit offset hour");
    Expect(text, pos + 3, ":", "want ':' in the offset");
    const int offset_mins = ReadFixed(text, pos + 4, 2, "want 2-digit offset minutes");
    if (offset_hours > 23 || offset_mins > 59) Fail(text, "offset out of range");
    offset_minutes = sign * (offset_hours * 60 + offset_mins);
    pos += 6;
  } else {
    Fail(text, "want 'Z' or a numeric offset after the time");
  }
  if (pos != text.size()) Fail(text, "extra text after the offset");

  // system_clock counts int64 nanoseconds: only about +-292 years around 1970 fit.
  const std::int64_t days = std::chrono::sys_days{ymd}.time_since_epoch().count();
  constexpr std::int64_t kSecondsPerDay = 86'400;
  const std::int64_t seconds = days * kSecondsPerDay + hour * 3600 + minute * 60 + second -
                               static_cast<std::int64_t>(offset_minutes) * 60;
  constexpr std::int64_t kMaxSeconds =
      std::numeric_limits<std::int64_t>::max() / 1'000'000'000 - 1;
  if (seconds > kMaxSeconds || seconds < -kMaxSeconds) {
    Fail(text, "outside the representable range (years 1678..2261)");
  }
  return system_clock::time_point{
      std::chrono::duration_cast<system_clock::duration>(
          nanoseconds{seconds * 1'000'000'000 + fraction_ns})};
}

}  // namespace ro::common

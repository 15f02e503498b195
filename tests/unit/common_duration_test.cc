// Go's time.ParseDuration / Duration.String semantics, checked against the cases of Go's
// own tests (src/time/time_test.go) and the manual's resyncPeriod values.
#include "ro/common/duration.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

namespace ro::common {
namespace {

using std::chrono::hours;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::nanoseconds;
using std::chrono::seconds;

constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();

std::string ErrorOf(std::string_view text) {
  try {
    ParseDuration(text);
  } catch (const DurationError& e) {
    return e.what();
  }
  return "no error";
}

TEST(ParseDurationTest, AcceptsTheManualsResyncPeriods) {
  EXPECT_EQ(ParseDuration("1h0m0s"), hours(1));
  EXPECT_EQ(ParseDuration("3h25m12s"), hours(3) + minutes(25) + seconds(12));
  EXPECT_EQ(ParseDuration("30s"), seconds(30));
  EXPECT_EQ(ParseDuration("15m"), minutes(15));
}

TEST(ParseDurationTest, MatchesGoForSimpleValues) {
  EXPECT_EQ(ParseDuration("0"), nanoseconds(0));
  EXPECT_EQ(ParseDuration("-0"), nanoseconds(0));
  EXPECT_EQ(ParseDuration("+0"), nanoseconds(0));
  EXPECT_EQ(ParseDuration("5s"), seconds(5));
  EXPECT_EQ(ParseDuration("1478s"), seconds(1478));
  EXPECT_EQ(ParseDuration("-5s"), seconds(-5));
  EXPECT_EQ(ParseDuration("+5s"), seconds(5));
  EXPECT_EQ(ParseDuration("-0s"), nanoseconds(0));
}

TEST(ParseDurationTest, MatchesGoForDecimals) {
  EXPECT_EQ(ParseDuration("5.0s"), seconds(5));
  EXPECT_EQ(ParseDuration("5.6s"), seconds(5) + milliseconds(600));
  EXPECT_EQ(ParseDuration("5.s"), seconds(5));
  EXPECT_EQ(ParseDuration(".5s"), milliseconds(500));
  EXPECT_EQ(ParseDuration("1.0s"), seconds(1));
  EXPECT_EQ(ParseDuration("1.00s"), seconds(1));
  EXPECT_EQ(ParseDuration("1.004s"), seconds(1) + milliseconds(4));
  EXPECT_EQ(ParseDuration("1.0040s"), seconds(1) + milliseconds(4));
  EXPECT_EQ(ParseDuration("100.00100s"), seconds(100) + milliseconds(1));
  EXPECT_EQ(ParseDuration("1.5h"), hours(1) + minutes(30));
}

TEST(ParseDurationTest, AcceptsEveryUnit) {
  EXPECT_EQ(ParseDuration("10ns"), nanoseconds(10));
  EXPECT_EQ(ParseDuration("11us"), microseconds(11));
  EXPECT_EQ(ParseDuration("12\u00b5s"), microseconds(12));  // micro sign
  EXPECT_EQ(ParseDuration("12\u03bcs"), microseconds(12));  // Greek mu
  EXPECT_EQ(ParseDuration("13ms"), milliseconds(13));
  EXPECT_EQ(ParseDuration("14s"), seconds(14));
  EXPECT_EQ(ParseDuration("15m"), minutes(15));
  EXPECT_EQ(ParseDuration("16h"), hours(16));
}

TEST(ParseDurationTest, AddsUpCompositeValuesInAnyOrder) {
  EXPECT_EQ(ParseDuration("3h30m"), hours(3) + minutes(30));
  EXPECT_EQ(ParseDuration("10.5s4m"), minutes(4) + seconds(10) + milliseconds(500));
  EXPECT_EQ(ParseDuration("-2m3.4s"), -(minutes(2) + seconds(3) + milliseconds(400)));
  EXPECT_EQ(ParseDuration("1h2m3s4ms5us6ns"), hours(1) + minutes(2) + seconds(3) +
                                                   milliseconds(4) + microseconds(5) +
                                                   nanoseconds(6));
  EXPECT_EQ(ParseDuration("39h9m14.425s"),
            hours(39) + minutes(9) + seconds(14) + milliseconds(425));
}

TEST(ParseDurationTest, KeepsNanosecondPrecisionOfLargeValuesAndFractions) {
  EXPECT_EQ(ParseDuration("52763797000ns"), nanoseconds(52763797000));
  EXPECT_EQ(ParseDuration("0.3333333333333333333h"), minutes(20));
  EXPECT_EQ(ParseDuration("9007199254740993ns"), nanoseconds(9007199254740993));
  EXPECT_EQ(ParseDuration("0.100000000000000000000h"), minutes(6));
  EXPECT_EQ(ParseDuration("0.830103483285477580700h"),
            minutes(49) + seconds(48) + nanoseconds(372539827));
}

TEST(ParseDurationTest, AcceptsTheInt64Limits) {
  EXPECT_EQ(ParseDuration("9223372036854775807ns"), nanoseconds(kMax));
  EXPECT_EQ(ParseDuration("9223372036854775.807us"), nanoseconds(kMax));
  EXPECT_EQ(ParseDuration("9223372036s854ms775us807ns"), nanoseconds(kMax));
  EXPECT_EQ(ParseDuration("-9223372036854775808ns"), nanoseconds(kMin));
  EXPECT_EQ(ParseDuration("-9223372036854775.808us"), nanoseconds(kMin));
  EXPECT_EQ(ParseDuration("-9223372036s854ms775us808ns"), nanoseconds(kMin));
  EXPECT_EQ(ParseDuration("-2562047h47m16.854775808s"), nanoseconds(kMin));
}

TEST(ParseDurationTest, RejectsWhatGoRejects) {
  for (const char* bad : {"", "3", "-", "s", ".", "-.", ".s", "+.s", "1d", "\x85\x85",
                          "\xff" "ff", "hello \xff" "ff world", "h", "1", "1h 2m", " 1h",
                          "1h-2m", "1..5s"}) {
    EXPECT_THROW(ParseDuration(bad), DurationError) << "input: " << bad;
  }
}

TEST(ParseDurationTest, RejectsOverflow) {
  for (const char* bad : {"9223372036854775808ns", "9223372036854775.808us",
                          "9223372036854ms775us808ns", "9223372036s854ms775us808ns",
                          "-9223372036854775809ns",
                          "2562048h", "99999999999999999999999h"}) {
    EXPECT_EQ(ErrorOf(bad), "invalid duration \"" + std::string(bad) + "\": overflow");
  }
}

TEST(ParseDurationTest, ErrorsQuoteTheInputAndNameTheProblem) {
  EXPECT_EQ(ErrorOf("3h25x"), R"(invalid duration "3h25x": unknown unit "x")");
  EXPECT_EQ(ErrorOf("1d"), R"(invalid duration "1d": unknown unit "d")");
  EXPECT_EQ(ErrorOf("1"), R"(invalid duration "1": missing unit (ns, us, ms, s, m or h))");
  EXPECT_EQ(ErrorOf(""), R"(invalid duration "": empty)");
  EXPECT_EQ(ErrorOf("h"), R"(invalid duration "h": want a number before each unit)");
  EXPECT_EQ(ErrorOf("a\"b"), R"(invalid duration "a\"b": want a number before each unit)");
}

TEST(ParseDurationTest, ErrorIsAnInvalidArgument) {
  EXPECT_THROW(ParseDuration("x"), std::invalid_argument);
}

TEST(ParseNonNegativeDurationTest, AcceptsZeroAndPositiveRejectsNegative) {
  EXPECT_EQ(ParseNonNegativeDuration("0"), nanoseconds(0));
  EXPECT_EQ(ParseNonNegativeDuration("-0s"), nanoseconds(0));
  EXPECT_EQ(ParseNonNegativeDuration("1h0m0s"), hours(1));
  try {
    ParseNonNegativeDuration("-5m");
    FAIL() << "no error";
  } catch (const DurationError& e) {
    EXPECT_STREQ(e.what(), R"(invalid duration "-5m": must not be negative)");
  }
}

TEST(FormatDurationTest, MatchesGoDurationString) {
  EXPECT_EQ(FormatDuration(nanoseconds(0)), "0s");
  EXPECT_EQ(FormatDuration(nanoseconds(1)), "1ns");
  EXPECT_EQ(FormatDuration(nanoseconds(1100)), "1.1\u00b5s");
  EXPECT_EQ(FormatDuration(microseconds(2200)), "2.2ms");
  EXPECT_EQ(FormatDuration(milliseconds(3300)), "3.3s");
  EXPECT_EQ(FormatDuration(minutes(4) + seconds(5)), "4m5s");
  EXPECT_EQ(FormatDuration(minutes(4) + milliseconds(5001)), "4m5.001s");
  EXPECT_EQ(FormatDuration(hours(5) + minutes(6) + milliseconds(7001)), "5h6m7.001s");
  EXPECT_EQ(FormatDuration(minutes(8) + nanoseconds(1)), "8m0.000000001s");
  EXPECT_EQ(FormatDuration(nanoseconds(kMax)), "2562047h47m16.854775807s");
  EXPECT_EQ(FormatDuration(nanoseconds(kMin)), "-2562047h47m16.854775808s");
  EXPECT_EQ(FormatDuration(-milliseconds(1)), "-1ms");
}

TEST(FormatDurationTest, WritesTheManualsResyncPeriodForm) {
  EXPECT_EQ(FormatDuration(hours(1)), "1h0m0s");
  EXPECT_EQ(FormatDuration(hours(3) + minutes(25) + seconds(12)), "3h25m12s");
  EXPECT_EQ(FormatDuration(hours(10)), "10h0m0s");
  EXPECT_EQ(FormatDuration(ParseDuration("1.5h")), "1h30m0s");
}

TEST(FormatDurationTest, RoundTripsThroughParse) {
  for (const std::int64_t ns : {std::int64_t{0}, std::int64_t{1}, std::int64_t{999},
                                std::int64_t{1'000'001}, std::int64_t{59'999'999'999},
                                std::int64_t{3'600'000'000'001}, kMax, kMin, -kMax}) {
    EXPECT_EQ(ParseDuration(FormatDuration(nanoseconds(ns))), nanoseconds(ns)) << ns;
  }
}

}  // namespace
}  // namespace ro::common

#include "ro/common/time.h"

#include <gtest/gtest.h>

namespace ro::common {
namespace {

using std::chrono::system_clock;
using namespace std::chrono_literals;

// 2024-02-09T14:05:30Z as a time point (1707487530 s after the epoch).
const system_clock::time_point kSample = system_clock::time_point{1707487530s};

TEST(FormatRfc3339Test, WritesWholeSecondsLikeMetav1Time) {
  EXPECT_EQ(FormatRfc3339(kSample), "2024-02-09T14:05:30Z");
  EXPECT_EQ(FormatRfc3339(kSample + 999ms), "2024-02-09T14:05:30Z");  // truncated
}

TEST(FormatRfc3339Test, WritesSixDigitsLikeMetav1MicroTime) {
  EXPECT_EQ(FormatRfc3339Micro(kSample + 675205us), "2024-02-09T14:05:30.675205Z");
  EXPECT_EQ(FormatRfc3339Micro(kSample), "2024-02-09T14:05:30.000000Z");
  EXPECT_EQ(FormatRfc3339Micro(kSample + 675205999ns), "2024-02-09T14:05:30.675205Z");
}

TEST(FormatRfc3339Test, WritesNineDigitsForLogTimestamps) {
  const std::string text = FormatRfc3339Nano(kSample + 904276629ns);
  EXPECT_EQ(text, "2024-02-09T14:05:30.904276629Z");
  EXPECT_EQ(text.size(), 30u);
  EXPECT_EQ(FormatRfc3339Nano(kSample + 1ns), "2024-02-09T14:05:30.000000001Z");
}

TEST(FormatRfc3339Test, HandlesEpochLeapDaysAndTimesBefore1970) {
  EXPECT_EQ(FormatRfc3339(system_clock::time_point{}), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatRfc3339(system_clock::time_point{951782400s}), "2000-02-29T00:00:00Z");
  EXPECT_EQ(FormatRfc3339Nano(system_clock::time_point{} - 1ns),
            "1969-12-31T23:59:59.999999999Z");
}

TEST(ParseRfc3339Test, ReadsWhatTheFormattersWrite) {
  const auto t = kSample + 904276629ns;
  EXPECT_EQ(ParseRfc3339(FormatRfc3339Nano(t)), t);
  EXPECT_EQ(ParseRfc3339(FormatRfc3339Micro(t)), kSample + 904276us);
  EXPECT_EQ(ParseRfc3339(FormatRfc3339(t)), kSample);
}

TEST(ParseRfc3339Test, AcceptsAnyFractionLengthAndTruncatesBeyondNanoseconds) {
  EXPECT_EQ(ParseRfc3339("2024-02-09T14:05:30.5Z"), kSample + 500ms);
  EXPECT_EQ(ParseRfc3339("2009-10-12T17:50:30.000Z"),  // S3's LastModified
            system_clock::time_point{1255369830s});
  EXPECT_EQ(ParseRfc3339("2024-02-09T14:05:30.1234567891Z"), kSample + 123456789ns);
}

TEST(ParseRfc3339Test, AppliesNumericOffsets) {
  EXPECT_EQ(ParseRfc3339("2024-02-09T16:05:30+02:00"), kSample);
  EXPECT_EQ(ParseRfc3339("2024-02-09T09:35:30-04:30"), kSample);
  EXPECT_EQ(ParseRfc3339("2024-02-09t14:05:30z"), kSample);
}

TEST(ParseRfc3339Test, RejectsMalformedOrOutOfRangeText) {
  for (const char* bad :
       {"", "2024-02-09", "2024-02-09T14:05:30", "2024-02-09 14:05:30Z",
        "2024-13-01T00:00:00Z", "2023-02-29T00:00:00Z", "2024-02-09T24:00:00Z",
        "2024-02-09T14:60:00Z", "2024-02-09T14:05:60Z", "2024-02-09T14:05:30.Z",
        "2024-02-09T14:05:30Zjunk", "2024-02-09T14:05:30+0200", "24-02-09T14:05:30Z",
        "1600-01-01T00:00:00Z", "2300-01-01T00:00:00Z"}) {
    EXPECT_THROW(ParseRfc3339(bad), TimeError) << "input: " << bad;
  }
}

TEST(ParseRfc3339Test, ErrorQuotesTheInputAndTheReason) {
  try {
    ParseRfc3339("2024-13-01T00:00:00Z");
    FAIL() << "no error";
  } catch (const TimeError& e) {
    EXPECT_STREQ(e.what(), R"(invalid RFC 3339 time "2024-13-01T00:00:00Z": month out of range)");
  }
}

}  // namespace
}  // namespace ro::common

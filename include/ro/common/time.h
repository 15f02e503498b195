// RFC 3339 timestamps (https://www.rfc-editor.org/rfc/rfc3339) as Kubernetes and our logs
// write them. Every formatter writes UTC with a trailing "Z"; the parser also accepts
// numeric offsets. Times are std::chrono::system_clock::time_point (nanosecond ticks on
// Linux), which covers years 1678..2261.
#pragma once

#include <chrono>
#include <stdexcept>
#include <string>
#include <string_view>

namespace ro::common {

// The text is not an RFC 3339 date-time. what() quotes the input and says what is wrong,
// e.g. `invalid RFC 3339 time "2024-13-01T00:00:00Z": month out of range`.
class TimeError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// Whole seconds, truncated: "2024-02-09T14:05:30Z". The shape of metav1.Time
// (creationTimestamp, condition lastTransitionTime, lastUpdate.time in annotations).
std::string FormatRfc3339(std::chrono::system_clock::time_point t);

// Exactly 6 fractional digits, truncated: "2024-02-09T14:05:30.675205Z". The shape of
// metav1.MicroTime (Lease renewTime/acquireTime, events.k8s.io eventTime).
std::string FormatRfc3339Micro(std::chrono::system_clock::time_point t);

// Exactly 9 fractional digits (30 characters): "2023-11-28T18:05:26.904276629Z". The
// `timestamp` of every log line (manual 6.2.4). Fixed width, so lines sort as text.
std::string FormatRfc3339Nano(std::chrono::system_clock::time_point t);

// Parses "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)". 'T' and 'Z' may be lower
// case; the fraction has 1 or more digits, truncated to nanoseconds (as Go's time.Parse
// does). Validates ranges (month, day of that month, 00..23, 00..59,
// seconds 00..59: leap seconds are not accepted) and returns the instant in UTC.
// Throws TimeError on anything else, including an empty string.
std::chrono::system_clock::time_point ParseRfc3339(std::string_view text);

}  // namespace ro::common

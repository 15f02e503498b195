// Go-style durations (Go's time.ParseDuration and time.Duration.String), the format of
// the manual's LiveSynchronization `resyncPeriod` ("1h0m0s", "3h25m12s", manual 6.2.5)
// and observability intervals ("30s", "15m").
//
// Grammar: [-+]? ( [0-9]* ( "." [0-9]* )? unit )+ , or exactly "0" (with optional sign),
// where unit is one of ns, us, µs (U+00B5), μs (U+03BC), ms, s, m, h. Components add up:
// "1h30m", "1.5h", "10.5s4m". At least one digit per component ("1.s" and ".5s" are
// fine, ".s" is not); a unit is required ("1" is an error, "0" is not).
// Values are int64 nanoseconds, like Go: the range is about +-292 years.
#pragma once

#include <chrono>
#include <stdexcept>
#include <string>
#include <string_view>

namespace ro::common {

// The text is not a valid duration. what() quotes the input and names the problem:
// `invalid duration "3h25x": unknown unit "x"`.
class DurationError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// Parses `text` exactly as Go's time.ParseDuration does (same accepted inputs, same
// rounding of fractions, same overflow limits). Negative values are allowed here; use
// ParseNonNegativeDuration for configuration fields. Throws DurationError.
std::chrono::nanoseconds ParseDuration(std::string_view text);

// ParseDuration, then rejects negative values:
// `invalid duration "-5m": must not be negative`. Zero is accepted; callers that need a
// strictly positive period check for zero themselves. Throws DurationError.
std::chrono::nanoseconds ParseNonNegativeDuration(std::string_view text);

// Go's time.Duration.String(): "1h0m0s", "3h25m12s", "1.5s", "300ms", "1µs", "0s",
// "-2m3.4s". Units up to hours (never days); sub-second values use ms/µs/ns.
// ParseDuration(FormatDuration(d)) == d for every d.
std::string FormatDuration(std::chrono::nanoseconds d);

}  // namespace ro::common

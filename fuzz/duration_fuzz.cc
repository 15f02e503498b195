// ro::common::ParseDuration / FormatDuration (Go's time.ParseDuration and
// Duration.String). Any text parses or throws DurationError; what parses formats back to
// the same value (ParseDuration(FormatDuration(d)) == d), and so does any int64 made of
// the input's first eight bytes.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "ro/common/duration.h"

namespace {

using ro::common::DurationError;
using ro::common::FormatDuration;
using ro::common::ParseDuration;
using ro::common::ParseNonNegativeDuration;
using ro::fuzz::Check;

void CheckRoundTrip(std::chrono::nanoseconds d) {
  const std::string text = FormatDuration(d);
  try {
    Check(ParseDuration(text) == d, "ParseDuration(FormatDuration(d)) == d");
  } catch (const DurationError&) {
    Check(false, "FormatDuration(d) parses");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const std::chrono::nanoseconds d = ParseDuration(text);
    CheckRoundTrip(d);
    bool non_negative = true;
    try {
      Check(ParseNonNegativeDuration(text) == d, "ParseNonNegativeDuration == ParseDuration");
    } catch (const DurationError&) {
      non_negative = false;
    }
    Check(non_negative == (d.count() >= 0), "ParseNonNegativeDuration refuses exactly d < 0");
  } catch (const DurationError& e) {
    Check(std::string_view(e.what()).rfind("invalid duration \"", 0) == 0,
          "DurationError quotes the input");
  }
  if (size >= sizeof(std::int64_t)) {
    std::int64_t ns = 0;
    std::memcpy(&ns, data, sizeof ns);
    CheckRoundTrip(std::chrono::nanoseconds(ns));
  }
  return 0;
}

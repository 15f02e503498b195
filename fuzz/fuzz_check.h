// Property checks of the fuzz targets. A failed check prints the property and aborts,
// which libFuzzer records as a crash (the input lands in the findings directory).
// Documented exceptions are caught by each target; any other exception escapes
// LLVMFuzzerTestOneInput, std::terminate aborts, and that is a finding as well.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

namespace ro::fuzz {

// Aborts with `property` unless `ok`.
inline void Check(bool ok, std::string_view property) {
  if (ok) return;
  std::fprintf(stderr, "fuzz property violated: %.*s\n", static_cast<int>(property.size()),
               property.data());
  std::abort();
}

// The fuzz input as JSON, or a discarded value when it is not JSON (allow_exceptions =
// false: no parse_error, no out_of_range for numbers like 1e999).
inline nlohmann::json ParseJsonInput(std::string_view text) {
  return nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
}

// True when `text` can be written into a JSON document (a status condition, an Event):
// nlohmann's dump() throws on invalid UTF-8.
inline bool JsonWritable(std::string_view text) {
  try {
    (void)nlohmann::json(text).dump();
    return true;
  } catch (const nlohmann::json::type_error&) {
    return false;
  }
}

}  // namespace ro::fuzz

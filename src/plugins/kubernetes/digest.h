// Internal: SHA-256 for stable identifiers (managed-by label values, transformation
// fingerprints). Not part of the public API.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ro::plugins::kubernetes::internal {

// The first `hex_digits` (<= 64) lower-case hex digits of SHA-256(data).
std::string Sha256Hex(std::string_view data, std::size_t hex_digits);

}  // namespace ro::plugins::kubernetes::internal

// SHA-256 as lower-case hex, for stable identifiers and fingerprints (managed-by label
// values, transformation and configuration fingerprints, license fingerprints).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ro::common {

// The first `hex_digits` (at most 64) lower-case hex digits of SHA-256(data) (FIPS 180-4);
// all 64 by default. Throws std::runtime_error if OpenSSL fails (it does not in practice).
std::string Sha256Hex(std::string_view data, std::size_t hex_digits = 64);

}  // namespace ro::common

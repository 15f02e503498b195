#include "ro/common/digest.h"

#include <openssl/evp.h>

#include <array>
#include <stdexcept>

namespace ro::common {

std::string Sha256Hex(std::string_view data, std::size_t hex_digits) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), digest.data(), &length, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("SHA-256 digest failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * length);
  for (unsigned int i = 0; i < length; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 0x0f];
  }
  if (hex_digits < out.size()) out.resize(hex_digits);
  return out;
}

}  // namespace ro::common

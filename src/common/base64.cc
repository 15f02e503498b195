#include "ro/common/base64.h"

#include <openssl/evp.h>

#include <memory>
#include <stdexcept>

namespace ro::common {

std::string EncodeBase64(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');  // + the NUL EVP_EncodeBlock writes
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(data.data()), static_cast<int>(data.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string DecodeBase64(std::string_view text) {
  const std::unique_ptr<EVP_ENCODE_CTX, decltype(&EVP_ENCODE_CTX_free)> ctx(EVP_ENCODE_CTX_new(), EVP_ENCODE_CTX_free);
  if (!ctx) throw std::runtime_error("EVP_ENCODE_CTX_new failed");
  EVP_DecodeInit(ctx.get());
  // Every 4 input characters decode to at most 3 bytes; +3 for a partial final group.
  std::string out(text.size() / 4 * 3 + 3, '\0');
  int written = 0;
  auto* out_bytes = reinterpret_cast<unsigned char*>(out.data());
  const auto* in_bytes = reinterpret_cast<const unsigned char*>(text.data());
  if (EVP_DecodeUpdate(ctx.get(), out_bytes, &written, in_bytes, static_cast<int>(text.size())) < 0) {
    throw std::invalid_argument("invalid base64");
  }
  int tail = 0;
  if (EVP_DecodeFinal(ctx.get(), out_bytes + written, &tail) < 0) {
    throw std::invalid_argument("invalid base64 (truncated)");
  }
  out.resize(static_cast<std::size_t>(written + tail));
  return out;
}

}  // namespace ro::common

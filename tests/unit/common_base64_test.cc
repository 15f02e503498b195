// ro/common/base64.h against RFC 4648's test vectors (section 10).
#include "ro/common/base64.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace ro::common {
namespace {

TEST(Base64, Rfc4648Section10TestVectorsBothWays) {
  const std::vector<std::pair<std::string, std::string>> vectors = {
      {"", ""},           {"f", "Zg=="},         {"fo", "Zm8="},        {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(EncodeBase64(plain), encoded) << plain;
    EXPECT_EQ(DecodeBase64(encoded), plain) << encoded;
  }
}

TEST(Base64, BinaryDataAndLineBreaksAsInSecretsAndKubeconfigs) {
  const std::string binary("\x00\xff\x10\x80", 4);
  EXPECT_EQ(DecodeBase64(EncodeBase64(binary)), binary);
  EXPECT_EQ(DecodeBase64("Zm9v\nYmFy\n"), "foobar");
}

TEST(Base64, RejectsCharactersOutsideTheAlphabet) {
  EXPECT_THROW(DecodeBase64("Zm9v!!!"), std::invalid_argument);
}

}  // namespace
}  // namespace ro::common

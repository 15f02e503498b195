// ro/common/strings.h (Go's strings.Split and strings.TrimSpace semantics) and the PEM
// bundle filter of ro/common/certificates.h.
#include "ro/common/strings.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "ro/common/certificates.h"

namespace ro::common {
namespace {

using ::testing::ElementsAre;

TEST(Strings, SplitKeepsEmptyPartsAsGoDoes) {
  EXPECT_THAT(Split("a,,b", ','), ElementsAre("a", "", "b"));
  EXPECT_THAT(Split("", ','), ElementsAre(""));
  EXPECT_THAT(Split("1-5/2", '/'), ElementsAre("1-5", "2"));
}

TEST(Strings, TrimSpaceRemovesEveryKindOfSpaceAtBothEnds) {
  EXPECT_EQ(TrimSpace(" \t\r\n token \n"), "token");
  EXPECT_EQ(TrimSpace("a b"), "a b");
  EXPECT_EQ(TrimSpace(" \n "), "");
}

TEST(Strings, ReadWholeFileSaysWhyItCannot) {
  std::string error;
  EXPECT_FALSE(ReadWholeFile("/nonexistent/ro-test-file", &error).has_value());
  EXPECT_EQ(error, "No such file or directory");
}

TEST(Certificates, ABundleKeepsOnlyItsUnexpiredCertificatesInOrder) {
  const auto now = std::chrono::system_clock::now();
  const IssuedCertificates old_ca = IssueServerCertificates("old", {}, now - std::chrono::hours{2}, std::chrono::hours{1});
  const IssuedCertificates new_ca = IssueServerCertificates("new", {}, now, std::chrono::hours{1});
  const IssuedCertificates next_ca = IssueServerCertificates("next", {}, now, std::chrono::hours{2});
  const auto kept = CertificatesValidAt(new_ca.ca_pem + old_ca.ca_pem + "garbage\n" + next_ca.ca_pem, now);
  EXPECT_THAT(kept, ElementsAre(new_ca.ca_pem, next_ca.ca_pem));
}

}  // namespace
}  // namespace ro::common

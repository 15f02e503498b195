// The transport's pure policies: client-side token bucket and retry/backoff rules.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "../../src/kube/bearer_token.h"
#include "../../src/kube/retry_policy.h"
#include "../../src/kube/token_bucket.h"

namespace ro::kube::internal {
namespace {

using namespace std::chrono_literals;
using Clock = TokenBucket::Clock;

TEST(KubeTokenBucket, BurstPassesThenRequestsArePacedAtQps) {
  const Clock::time_point t0{};
  TokenBucket bucket(10.0, 3, t0);  // 10/s, burst 3
  EXPECT_EQ(bucket.Reserve(t0), 0ns);
  EXPECT_EQ(bucket.Reserve(t0), 0ns);
  EXPECT_EQ(bucket.Reserve(t0), 0ns);
  EXPECT_EQ(bucket.Reserve(t0), 100ms);  // next token in 1/qps
  EXPECT_EQ(bucket.Reserve(t0), 200ms);  // queued behind the previous waiter
}

TEST(KubeTokenBucket, TokensRefillOverTimeUpToBurst) {
  const Clock::time_point t0{};
  TokenBucket bucket(2.0, 2, t0);
  EXPECT_EQ(bucket.Reserve(t0), 0ns);
  EXPECT_EQ(bucket.Reserve(t0), 0ns);
  EXPECT_EQ(bucket.Reserve(t0 + 500ms), 0ns);  // one token refilled
  EXPECT_EQ(bucket.Reserve(t0 + 500ms), 500ms);
  // A long idle period refills at most `burst` tokens.
  const auto later = t0 + 1h;
  EXPECT_EQ(bucket.Reserve(later), 0ns);
  EXPECT_EQ(bucket.Reserve(later), 0ns);
  EXPECT_GT(bucket.Reserve(later), 0ns);
}

TEST(KubeTokenBucket, NonPositiveQpsDisablesLimiting) {
  TokenBucket bucket(0.0, 1, Clock::time_point{});
  EXPECT_FALSE(bucket.enabled());
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(bucket.Reserve(Clock::time_point{}), 0ns);
}

TEST(KubeRetryPolicy, OnlyIdempotentVerbsAreRetried) {
  EXPECT_TRUE(IsIdempotentMethod("GET"));
  EXPECT_TRUE(IsIdempotentMethod("DELETE"));
  EXPECT_FALSE(IsIdempotentMethod("POST"));
  EXPECT_FALSE(IsIdempotentMethod("PUT"));
  EXPECT_FALSE(IsIdempotentMethod("PATCH"));
}

TEST(KubeRetryPolicy, ThrottlingAndTransientServerErrorsAreRetried) {
  for (long status : {429L, 500L, 502L, 503L, 504L}) EXPECT_TRUE(IsRetryableStatus(status));
  for (long status : {200L, 400L, 404L, 409L, 410L, 422L, 501L}) {
    EXPECT_FALSE(IsRetryableStatus(status)) << status;
  }
}

TEST(KubeRetryPolicy, TlsFailuresAreNotRetried) {
  EXPECT_FALSE(IsRetryableTransportError(TransportError::Kind::kTls));
  EXPECT_TRUE(IsRetryableTransportError(TransportError::Kind::kConnect));
  EXPECT_TRUE(IsRetryableTransportError(TransportError::Kind::kTimeout));
  EXPECT_TRUE(IsRetryableTransportError(TransportError::Kind::kBrokenStream));
}

TEST(KubeRetryPolicy, BackoffDoublesFrom100msUpTo5s) {
  EXPECT_EQ(Backoff(0), 100ms);
  EXPECT_EQ(Backoff(1), 200ms);
  EXPECT_EQ(Backoff(2), 400ms);
  EXPECT_EQ(Backoff(5), 3200ms);
  EXPECT_EQ(Backoff(6), 5s);
  EXPECT_EQ(Backoff(60), 5s);
}

TEST(KubeRetryPolicy, RetryAfterWinsAndIsClipped) {
  EXPECT_EQ(DelayAfterStatus(0, 2s), 2s);
  EXPECT_EQ(DelayAfterStatus(3, 0s), 800ms);
  EXPECT_EQ(DelayAfterStatus(0, 3600s), kMaxRetryAfter);
}

// A token file in a fresh temp dir, and a clock the test moves by hand.
class KubeBearerToken : public ::testing::Test {
 protected:
  KubeBearerToken() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "ro-token-XXXXXX").string();
    dir_ = ::mkdtemp(pattern.data());
    file_ = (dir_ / "token").string();
  }
  ~KubeBearerToken() override { std::filesystem::remove_all(dir_); }
  void WriteToken(const std::string& token) { std::ofstream(file_) << token << "\n"; }
  std::function<BearerToken::Clock::time_point()> FakeClock() {
    return [this] { return now_; };
  }

  std::filesystem::path dir_;
  std::string file_;
  BearerToken::Clock::time_point now_{};
};

TEST_F(KubeBearerToken, StaticTokenOrNone) {
  EXPECT_EQ(BearerToken("abc", "").Header(), "Authorization: Bearer abc");
  EXPECT_EQ(BearerToken("", "").Header(), "");
}

TEST_F(KubeBearerToken, TokenFileIsRereadAtMostOncePerMinute) {
  WriteToken("first");
  BearerToken token("ignored-static-token", file_, FakeClock());
  EXPECT_EQ(token.Header(), "Authorization: Bearer first");
  WriteToken("rotated");
  now_ += 59s;
  EXPECT_EQ(token.Header(), "Authorization: Bearer first");
  now_ += 1s;
  EXPECT_EQ(token.Header(), "Authorization: Bearer rotated");
}

TEST_F(KubeBearerToken, FailedRereadKeepsThePreviousToken) {
  WriteToken("first");
  BearerToken token("", file_, FakeClock());
  std::filesystem::remove(file_);
  now_ += 2min;
  EXPECT_EQ(token.Header(), "Authorization: Bearer first");
}

TEST_F(KubeBearerToken, UnreadableOrEmptyFileFailsAtConstruction) {
  EXPECT_THROW(BearerToken("", file_, FakeClock()), ConfigError);  // does not exist
  WriteToken("  ");
  EXPECT_THROW(BearerToken("", file_, FakeClock()), ConfigError);
}

}  // namespace
}  // namespace ro::kube::internal

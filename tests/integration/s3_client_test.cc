// S3Client against a real s3rver (tests/testenv), shared by every test of this binary.
#include "ro/plugins/s3_client.h"

#include <curl/curl.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <functional>
#include <thread>

#include "ro/testenv/ports.h"
#include "ro/testenv/s3_server.h"

namespace ro::plugins {
namespace {

class S3ClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    curl_global_init(CURL_GLOBAL_DEFAULT);  // what main() does in the binaries
    // s3rver 3.7.1 encrypts ListObjectsV2 continuation tokens with DES, which Node 17+
    // (OpenSSL 3) only offers through the legacy provider: without it every second page
    // is HTTP 500. The harness's node inherits our environment (harmless once
    // testenv::S3Server passes the flag itself).
    ::setenv("NODE_OPTIONS", "--openssl-legacy-provider", /*overwrite=*/0);
    server_ = new testenv::S3Server();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    curl_global_cleanup();
  }

  static S3Config ConfigFor(const std::string& bucket) {
    S3Config config = GenericBucketConfig(
        server_->endpoint(), /*use_ssl=*/false, bucket,
        S3Credentials{server_->access_key(), server_->secret_key()});
    config.request_timeout = std::chrono::milliseconds(20'000);
    return config;
  }

  // A client for a fresh bucket named after the running test (s3rver: 3..63 chars,
  // lower case).
  static std::unique_ptr<S3Client> ClientWithNewBucket() {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    name = "t-" + name.substr(0, 55);
    auto client = std::make_unique<S3Client>(ConfigFor(name));
    client->CreateBucket();
    return client;
  }

  static S3Error::Code CodeOf(const std::function<void()>& call) {
    try {
      call();
    } catch (const S3Error& e) {
      return e.code();
    }
    ADD_FAILURE() << "no S3Error thrown";
    return S3Error::Code::kOther;
  }

  static testenv::S3Server* server_;
};

testenv::S3Server* S3ClientTest::server_ = nullptr;

TEST_F(S3ClientTest, CreateBucketIsIdempotentAndGrantsAccess) {
  S3Client client(ConfigFor("idempotent-bucket"));
  client.CreateBucket();
  client.CreateBucket();  // s3rver answers 409 BucketAlreadyExists: still ours
  EXPECT_NO_THROW(client.CheckAccess());
}

TEST_F(S3ClientTest, PutThenGetReturnsTheSameBytes) {
  auto client = ClientWithNewBucket();
  const std::string body = std::string("{\"kind\":\"Deployment\"}\n") + std::string(1, '\0') +
                           "\xff binary tail";
  client->PutObject("dr-config/pre/apps-v1-deployments/ns.name", body, "application/json");
  EXPECT_EQ(client->GetObject("dr-config/pre/apps-v1-deployments/ns.name"), body);
}

TEST_F(S3ClientTest, KeysWithReservedCharactersRoundTrip) {
  auto client = ClientWithNewBucket();
  const std::string key = "dir with space/a+b&c=d;e,f@g!h'(i)*~x/caf\xc3\xa9 %20.json";
  client->PutObject(key, "v", "text/plain");
  EXPECT_EQ(client->GetObject(key), "v");
  const std::vector<S3Object> listed = client->ListObjects("dir with space/");
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].key, key);
}

TEST_F(S3ClientTest, PutReplacesAndLargeBodiesRoundTrip) {
  auto client = ClientWithNewBucket();
  client->PutObject("k", "first", "text/plain");
  const std::string large(5 * 1024 * 1024 + 7, 'x');  // 5 MiB: several TCP windows
  client->PutObject("k", large, "application/octet-stream");
  EXPECT_EQ(client->GetObject("k"), large);
}

TEST_F(S3ClientTest, GetOfAMissingKeyIsNullopt) {
  auto client = ClientWithNewBucket();
  EXPECT_EQ(client->GetObject("never/written"), std::nullopt);
}

TEST_F(S3ClientTest, DeleteRemovesTheObjectAndAMissingKeyIsNotAnError) {
  auto client = ClientWithNewBucket();
  client->PutObject("gone", "x", "text/plain");
  client->DeleteObject("gone");
  EXPECT_EQ(client->GetObject("gone"), std::nullopt);
  EXPECT_NO_THROW(client->DeleteObject("gone"));
  EXPECT_NO_THROW(client->DeleteObject("never/written"));
}

TEST_F(S3ClientTest, ListReportsSizesAndFiltersByPrefix) {
  auto client = ClientWithNewBucket();
  client->PutObject("a/1", "one", "text/plain");
  client->PutObject("a/2", "twotwo", "text/plain");
  client->PutObject("b/1", "x", "text/plain");
  const std::vector<S3Object> listed = client->ListObjects("a/");
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0].key, "a/1");
  EXPECT_EQ(listed[0].size, 3u);
  EXPECT_EQ(listed[1].key, "a/2");
  EXPECT_EQ(listed[1].size, 6u);
  EXPECT_FALSE(listed[0].etag.empty());
  EXPECT_GT(listed[0].last_modified.time_since_epoch().count(), 0);
  EXPECT_EQ(client->ListObjects("").size(), 3u);
  EXPECT_TRUE(client->ListObjects("c/").empty());
}

TEST_F(S3ClientTest, ListFollowsContinuationTokensPastTheThousandKeyPage) {
  auto client = ClientWithNewBucket();
  // s3rver, like S3, returns at most 1000 keys per page: 1,050 needs a second page.
  constexpr int kObjects = 1050;
  constexpr int kThreads = 8;
  std::atomic<int> next{0};
  {
    std::vector<std::jthread> uploaders;
    for (int t = 0; t < kThreads; ++t) {
      uploaders.emplace_back([&] {
        for (int i = next++; i < kObjects; i = next++) {
          char key[32];
          std::snprintf(key, sizeof key, "many/%05d", i);
          client->PutObject(key, std::to_string(i), "text/plain");
        }
      });
    }
  }
  const std::vector<S3Object> listed = client->ListObjects("many/");
  ASSERT_EQ(listed.size(), static_cast<std::size_t>(kObjects));
  for (int i = 0; i < kObjects; ++i) {
    char key[32];
    std::snprintf(key, sizeof key, "many/%05d", i);
    ASSERT_EQ(listed[static_cast<std::size_t>(i)].key, key);
  }
  // Small pages walk the same listing through many tokens.
  EXPECT_EQ(client->ListObjects("many/001", 7).size(), 100u);
}

TEST_F(S3ClientTest, AWrongAccessKeyIsInvalidCredentials) {
  S3Config config = ConfigFor("idempotent-bucket");
  config.credentials.access_key_id = "WRONG";
  S3Client client(config);
  try {
    client.CheckAccess();
    FAIL() << "no error";
  } catch (const S3Error& e) {
    EXPECT_EQ(e.code(), S3Error::Code::kInvalidCredentials);
    EXPECT_EQ(e.http_status(), 403);
    EXPECT_EQ(e.s3_code(), "InvalidAccessKeyId");
    EXPECT_FALSE(e.retryable());
  }
}

TEST_F(S3ClientTest, AMissingBucketIsNoSuchBucketForEveryOperation) {
  S3Client client(ConfigFor("no-such-bucket"));
  EXPECT_EQ(CodeOf([&] { client.CheckAccess(); }), S3Error::Code::kNoSuchBucket);
  EXPECT_EQ(CodeOf([&] { client.GetObject("k"); }), S3Error::Code::kNoSuchBucket);
  EXPECT_EQ(CodeOf([&] { client.PutObject("k", "v", "text/plain"); }),
            S3Error::Code::kNoSuchBucket);
  EXPECT_EQ(CodeOf([&] { client.ListObjects(""); }), S3Error::Code::kNoSuchBucket);
}

TEST_F(S3ClientTest, NothingListeningIsUnreachable) {
  const testenv::PortLease unused;  // reserved, and nothing binds it
  S3Config config = GenericBucketConfig("127.0.0.1:" + std::to_string(unused.port()), false,
                                        "b", S3Credentials{"S3RVER", "S3RVER"});
  config.connect_timeout = std::chrono::milliseconds(2'000);
  S3Client client(config);
  try {
    client.CheckAccess();
    FAIL() << "no error";
  } catch (const S3Error& e) {
    EXPECT_EQ(e.code(), S3Error::Code::kUnreachable);
    EXPECT_EQ(e.http_status(), 0);
    EXPECT_TRUE(e.retryable());
    EXPECT_NE(std::string(e.what()).find(std::to_string(unused.port())), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace ro::plugins

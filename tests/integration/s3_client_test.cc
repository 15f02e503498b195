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

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <regex>

#include "ro/plugins/bucket_encryption.h"
#include "ro/testenv/ports.h"
#include "ro/testenv/process.h"
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

// spec.encryption.serverSide: s3rver 3.7 neither stores nor enforces SSE (it keeps no
// x-amz-server-side-encryption metadata), so what is observable here is that uploads
// with the headers are accepted and read back; the signing is checked below.
TEST_F(S3ClientTest, UploadsWithServerSideEncryptionHeadersAreAcceptedAndReadBack) {
  auto plain = ClientWithNewBucket();
  for (const std::string algorithm : {"AES256", "aws:kms"}) {
    S3Config config = plain->config();
    config.server_side_encryption = algorithm;
    S3Client client(config);
    client.PutObject("sse/" + algorithm, "body under " + algorithm, "text/plain");
    EXPECT_EQ(client.GetObject("sse/" + algorithm), "body under " + algorithm);
  }
}

// The SSE headers are part of the SigV4 signature (SignedHeaders), checked on the
// request bytes the client sends: a loopback socket records one request and answers 200,
// and botocore (an independent SigV4 implementation) recomputes the signature from it.
// A KMS key id is refused where libcurl's SigV4 would mis-sort it (before 8.10.0).
TEST_F(S3ClientTest, ServerSideEncryptionHeadersAreSignedWithSigV4) {
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(::listen(listener, 1), 0);
  socklen_t length = sizeof(address);
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length), 0);
  const int port = ntohs(address.sin_port);

  std::string request;
  std::thread recorder([listener, &request] {
    const int connection = ::accept(listener, nullptr, nullptr);
    if (connection < 0) return;
    char buffer[4096];
    std::size_t wanted = std::string::npos;
    while (request.size() < wanted) {
      const ssize_t n = ::recv(connection, buffer, sizeof(buffer), 0);
      if (n <= 0) break;
      request.append(buffer, static_cast<std::size_t>(n));
      const std::size_t end = request.find("\r\n\r\n");
      if (end != std::string::npos && wanted == std::string::npos) {
        std::smatch m;
        const std::string head = request.substr(0, end);
        const std::regex content_length("[Cc]ontent-[Ll]ength: *([0-9]+)");
        wanted = end + 4 + (std::regex_search(head, m, content_length) ? std::stoul(m[1]) : 0);
      }
    }
    const std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    (void)::send(connection, answer.data(), answer.size(), MSG_NOSIGNAL);
    ::close(connection);
  });
  S3Config config = GenericBucketConfig("127.0.0.1:" + std::to_string(port), false, "signed",
                                        S3Credentials{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"});
  config.server_side_encryption = "aws:kms";
  config.request_timeout = std::chrono::milliseconds(10'000);
  S3Client(config).PutObject("dr-config/a/b", "payload", "application/json");
  recorder.join();
  ::close(listener);

  EXPECT_NE(request.find("\r\nx-amz-server-side-encryption: aws:kms\r\n"), std::string::npos) << request;
  const std::string script = R"PY(
import re, sys
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials
raw = sys.stdin.buffer.read()
head, _, body = raw.partition(b"\r\n\r\n")
lines = head.decode().split("\r\n")
method, target, _ = lines[0].split(" ")
# libcurl also signs the "Expect:" it suppresses, as an empty value.
headers = {}
for line in lines[1:]:
    name, _, value = line.partition(":")
    headers[name.strip().lower()] = value.strip()
m = re.match(r"AWS4-HMAC-SHA256 Credential=([^/]+)/\d{8}/([^/]+)/s3/aws4_request, ?"
             r"SignedHeaders=([^,]+), ?Signature=([0-9a-f]+)$", headers["authorization"])
access, region, signed, signature = m.groups()
request = AWSRequest(method=method, url="http://" + headers["host"] + target, data=body,
                     headers={name: headers.get(name, "") for name in signed.split(";")})
request.context["timestamp"] = headers["x-amz-date"]
class Signer(S3SigV4Auth):
    # Exactly the headers the client declared (botocore itself never signs "expect").
    def headers_to_sign(self, request):
        chosen = HTTPHeaders()
        for name in signed.split(";"):
            chosen[name] = request.headers.get(name, "")
        return chosen
signer = Signer(Credentials(access, sys.argv[1]), "s3", region)
expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
print(signed)
print("valid" if expected == signature else "invalid " + expected + " != " + signature)
)PY";
  testenv::RunOptions options;
  options.stdin_data = request;
  const testenv::CommandResult checked =
      testenv::RunCommand({"python3", "-c", script, config.credentials.secret_access_key}, options);
  const std::string signed_headers = checked.out.substr(0, checked.out.find('\n'));
  EXPECT_NE((";" + signed_headers + ";").find(";x-amz-server-side-encryption;"), std::string::npos) << checked.out;
  EXPECT_NE(checked.out.find("\nvalid"), std::string::npos) << checked.out;

  S3Config with_key_id = config;
  with_key_id.sse_kms_key_id = "arn:aws:kms:us-east-1:111122223333:key/abcd";
  if (curl_version_info(CURLVERSION_NOW)->version_num < 0x080a00) {
    try {
      S3Client refused(with_key_id);
      ADD_FAILURE() << "a KMS key id this libcurl cannot sign was accepted";
    } catch (const S3ConfigError& e) {
      EXPECT_EQ(e.field(), "sse_kms_key_id");
    }
  }
}

// Client-side encryption on the wire: what s3rver stores is the envelope, not the body.
TEST_F(S3ClientTest, ClientSideEncryptionStoresTheEnvelopeAndReadsPlaintextWrittenBefore) {
  auto plain = ClientWithNewBucket();
  plain->PutObject("before", "{\"written\":\"before encryption\"}", "application/json");
  S3Config config = plain->config();
  config.cipher = std::make_shared<const BucketCipher>(std::string(kAesGcmKeyBytes, 'k'));
  S3Client encrypted(config);
  encrypted.PutObject("after", "{\"secret\":\"hunter2\"}", "application/json");
  EXPECT_EQ(encrypted.GetObject("after"), "{\"secret\":\"hunter2\"}");
  EXPECT_EQ(encrypted.GetObject("before"), "{\"written\":\"before encryption\"}");
  // A client without the key refuses the envelope instead of handing it on.
  EXPECT_THROW(plain->GetObject("after"), BucketEncryptionError);
  config.cipher = std::make_shared<const BucketCipher>(std::string(kAesGcmKeyBytes, 'w'));
  try {
    S3Client(config).GetObject("after");
    ADD_FAILURE() << "read with a wrong key";
  } catch (const BucketEncryptionError& e) {
    EXPECT_EQ(e.reason(), BucketEncryptionError::Reason::kKeyMissing) << e.what();
  }
  const std::vector<S3Object> listed = plain->ListObjects("after");
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].size, kEnvelopeHeaderBytes + std::string("{\"secret\":\"hunter2\"}").size() + kAesGcmTagBytes);
}

}  // namespace
}  // namespace ro::plugins

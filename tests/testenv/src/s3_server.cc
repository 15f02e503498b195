#include "ro/testenv/s3_server.h"

#include "net.h"
#include "ro/testenv/errors.h"

namespace ro::testenv {

namespace {
// Provider string of libcurl's SigV4 signer: AWS, service s3, region us-east-1.
constexpr const char* kSigV4 = "aws:amz:us-east-1:s3";
// One health probe may take this long before it counts as "not ready yet".
constexpr std::chrono::milliseconds kProbeTimeout{2000};
// CreateBucket: s3rver answers in milliseconds; generous for 2 busy cores.
constexpr std::chrono::milliseconds kRequestTimeout{10000};
}  // namespace

S3Server::S3Server(S3ServerOptions options) : dir_("s3") {
  auto start = std::chrono::steady_clock::now();
  auto script = CacheDir() / "npm" / "node_modules" / "s3rver" / "bin" / "s3rver.js";
  if (!std::filesystem::exists(script)) {
    throw TestEnvError("s3rver is not installed at " + script.string() + " (run scripts/setup.sh)");
  }
  auto data = dir_.path() / "data";
  std::filesystem::create_directories(data);
  ProcessOptions process;
  process.name = "s3rver";
  // s3rver 3.7 encrypts ListObjects continuation tokens with DES, which Node >= 17 only
  // offers through OpenSSL's legacy provider: without it every second page is a 500.
  process.argv = {"node", "--openssl-legacy-provider", script.string(), "-d", data.string(), "-a", "127.0.0.1", "-p",
                  std::to_string(port_.port()), "--silent"};
  process.log_path = dir_.path() / "s3rver.log";
  process_ = std::make_unique<Process>(std::move(process));
  process_->WaitUntilReady(
      [&] { return internal::HttpCall(internal::HttpRequest::Get("http://" + endpoint() + "/", kProbeTimeout)).status == 200; },
      options.start_timeout, "GET / = 200");
  startup_time_ = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
}

S3Server::~S3Server() { Stop(); }

std::string S3Server::endpoint() const { return "127.0.0.1:" + std::to_string(port_.port()); }

void S3Server::CreateBucket(std::string_view name) const {
  internal::HttpRequest request;
  request.method = "PUT";
  request.url = "http://" + endpoint() + "/" + std::string(name);
  // s3rver requires the payload hash header; libcurl's SigV4 signer does not add it.
  request.headers = {"x-amz-content-sha256: UNSIGNED-PAYLOAD"};
  request.aws_sigv4 = kSigV4;
  request.userpwd = access_key() + ":" + secret_key();
  request.timeout = kRequestTimeout;
  auto response = internal::HttpCall(request);
  // 409 BucketAlreadyOwnedByYou/BucketAlreadyExists: the bucket is there, as asked.
  if (response.status == 200 || response.status == 409) return;
  throw TestEnvError("S3 CreateBucket " + std::string(name) + " on " + endpoint() + ": HTTP " +
                     std::to_string(response.status) + ": " + response.body);
}

void S3Server::Stop() {
  if (process_) process_->Stop();
}

}  // namespace ro::testenv

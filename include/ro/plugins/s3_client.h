// A small S3 client (the REST API subset the operator needs) over libcurl, signed with
// AWS Signature Version 4 (libcurl's CURLOPT_AWS_SIGV4). Talks to AWS S3, Google Cloud
// Storage's XML interoperability API and S3-compatible servers (MinIO, s3rver).
// Used by the Bucket controller (access check) and the synchronization pipeline
// (upload, get, delete and list of the bucket objects, manual 6.2.4 "bucket" logs).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace ro::plugins {

class BucketCipher;  // ro/plugins/bucket_encryption.h

// An S3 request failed. What a caller can do about it:
//   kNoSuchBucket        the bucket does not exist: surface it (condition), do not retry.
//   kAccessDenied        credentials are valid but lack permission: surface it.
//   kInvalidCredentials  unknown access key id or wrong secret (InvalidAccessKeyId,
//                        SignatureDoesNotMatch): surface it; retrying cannot help.
//   kUnreachable         no HTTP answer (connect, DNS, TLS, timeout): retry with backoff.
//   kOther               any other S3 error; retryable() tells 5xx/SlowDown apart.
// what() = "S3 <method> <bucket>/<key>: HTTP <status> <S3 code>: <S3 message>", or for
// kUnreachable "S3 <method> <bucket>/<key> at <base URL>: no answer: <curl error>".
class S3Error : public std::runtime_error {
 public:
  enum class Code { kNoSuchBucket, kAccessDenied, kInvalidCredentials, kUnreachable, kOther };

  S3Error(Code code, long http_status, std::string s3_code, const std::string& message);

  Code code() const noexcept { return code_; }
  // 0 when there was no HTTP answer (kUnreachable).
  long http_status() const noexcept { return http_status_; }
  // The <Code> of the S3 error body ("NoSuchBucket", "SlowDown", ...); may be empty.
  const std::string& s3_code() const noexcept { return s3_code_; }
  // True for kUnreachable, HTTP 5xx and throttling (503 SlowDown, 429).
  bool retryable() const noexcept;

 private:
  Code code_;
  long http_status_;
  std::string s3_code_;
};

// A Bucket spec cannot be turned into a client configuration. field() names the path,
// e.g. "spec.generic.endpoint".
class S3ConfigError : public std::invalid_argument {
 public:
  S3ConfigError(std::string field, const std::string& message);
  const std::string& field() const noexcept { return field_; }

 private:
  std::string field_;
};

// The Secret's accessKeyID / secretAccessKey (manual 5.3).
struct S3Credentials {
  std::string access_key_id;
  std::string secret_access_key;
};

struct S3Config {
  // host[:port] without scheme or path: "s3.eu-west-1.amazonaws.com", "127.0.0.1:4569".
  std::string endpoint;
  bool use_ssl = true;
  // SigV4 signing region. GCS accepts "auto"; S3-compatible servers usually "us-east-1".
  std::string region = "us-east-1";
  std::string bucket;
  S3Credentials credentials;
  // true: https://endpoint/bucket/key. false: https://bucket.endpoint/key (virtual-hosted).
  // Path style works with AWS, GCS interoperability, MinIO and s3rver, and never breaks
  // TLS for bucket names with dots.
  bool path_style = true;
  // PEM bundle of CAs to trust instead of the system store; empty: system store.
  std::string ca_pem;
  // TCP + TLS connect limit, and the whole-request limit (upload/download included).
  std::chrono::milliseconds connect_timeout{5'000};
  std::chrono::milliseconds request_timeout{30'000};
  // Idle keep-alive handles kept for reuse; extra handles of a burst are closed. 8
  // covers the pipeline's uploader threads without holding many idle sockets.
  std::size_t max_idle_connections = 8;
  // S3 server-side encryption of uploads (Bucket spec.encryption.serverSide): "" (the
  // bucket's default), "AES256" (SSE-S3) or "aws:kms" (SSE-KMS). Sent as the signed
  // header x-amz-server-side-encryption on PutObject.
  std::string server_side_encryption;
  // With "aws:kms": x-amz-server-side-encryption-aws-kms-key-id; empty: the account's
  // default KMS key. Refused (S3ConfigError) with libcurl < 8.10.0, whose SigV4 sorts
  // this header before x-amz-server-side-encryption (curl PR #14370).
  std::string sse_kms_key_id;
  // Client-side encryption (Bucket spec.encryption.clientSide): PutObject stores the
  // AES-256-GCM envelope of the body, GetObject opens it. Null: bodies are stored as
  // given, and GetObject refuses an envelope (BucketEncryptionError kKeyMissing).
  std::shared_ptr<const BucketCipher> cipher;
};

// Configs for the three Bucket kinds (manual 9.1: GenericBucket, AWSS3, GCPCloudStorage).
// Generic: `endpoint` must be host[:port] (a scheme or path throws S3ConfigError); the
// region is taken from AWS endpoints ("s3.<region>.amazonaws.com", "s3-<region>..."),
// "auto" for storage.googleapis.com, otherwise "us-east-1".
S3Config GenericBucketConfig(std::string_view endpoint, bool use_ssl, std::string_view bucket,
                             S3Credentials credentials);
// AWS: endpoint "s3.<region>.amazonaws.com", TLS, signed for `region`.
S3Config AwsS3BucketConfig(std::string_view region, std::string_view bucket,
                           S3Credentials credentials);
// GCS XML API with HMAC keys: endpoint "storage.googleapis.com", TLS, region "auto".
S3Config GcpCloudStorageBucketConfig(std::string_view bucket, S3Credentials credentials);
// From a Bucket's `spec` object: exactly one of generic / awsS3 / gcpCloudStorage must be
// set, with its required fields (name, endpoint, region). Throws S3ConfigError naming the
// field ("spec.awsS3.region"). Also reads spec.encryption.serverSide into
// server_side_encryption / sse_kms_key_id (BucketEncryptionFromSpec); the client-side
// cipher needs the key Secret and is set by the caller.
S3Config S3ConfigFromBucketSpec(const nlohmann::json& spec, S3Credentials credentials);

// One entry of a listing.
struct S3Object {
  std::string key;
  std::uint64_t size = 0;  // bytes
  std::string etag;        // without the surrounding quotes
  std::chrono::system_clock::time_point last_modified;
};

// Client for one bucket. Thread-safe: any number of threads may call at once; each call
// borrows a keep-alive curl handle from a small pool. Calls block up to
// request_timeout. REQUIRES: curl_global_init() was called (main() does it once).
class S3Client {
 public:
  explicit S3Client(S3Config config);
  ~S3Client();
  S3Client(const S3Client&) = delete;
  S3Client& operator=(const S3Client&) = delete;

  const S3Config& config() const noexcept;

  // Proves the credentials may list and read the bucket, with one signed ListObjectsV2
  // of at most one key (a HEAD has no error body, so it cannot tell an unknown key from
  // a missing permission). Throws S3Error (kNoSuchBucket, kAccessDenied,
  // kInvalidCredentials, kUnreachable, ...).
  void CheckAccess();
  // Creates the bucket (with a LocationConstraint outside us-east-1 and "auto").
  // Idempotent: succeeds if the bucket already exists and is accessible to us.
  void CreateBucket();
  // Uploads (replaces) `key`. `content_type` e.g. "application/json". With a cipher the
  // stored bytes are the envelope of `body` bound to `key`; with server_side_encryption
  // the SSE headers are sent (and signed). Throws S3Error, BucketEncryptionError kCrypto.
  void PutObject(std::string_view key, std::string_view body, std::string_view content_type);
  // The object's bytes, or nullopt when the key does not exist (404 NoSuchKey).
  // Client-side encrypted objects are decrypted (with a cipher) or refused (without);
  // plaintext objects pass through. Throws S3Error, BucketEncryptionError (never
  // retryable: wrong/missing key, tampered object).
  std::optional<std::string> GetObject(std::string_view key);
  // Deletes `key`; a missing key is not an error.
  void DeleteObject(std::string_view key);
  // Every object whose key starts with `prefix`, in key order, following continuation
  // tokens. `page_size` keys per request, 1..1000 (1000 is S3's maximum).
  std::vector<S3Object> ListObjects(std::string_view prefix, int page_size = 1000);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// --- Wire format helpers, exposed for tests ---------------------------------------

// URI-encodes an object key per S3/SigV4 rules: unreserved A-Z a-z 0-9 - . _ ~ and '/'
// are kept, every other byte becomes %XX (upper-case hex). "a b/c+d" -> "a%20b/c%2Bd".
std::string EncodeS3Key(std::string_view key);
// The same for a query value: '/' is encoded too.
std::string EncodeS3QueryValue(std::string_view value);

// One page of a ListObjectsV2 response (ListBucketResult).
struct S3ListPage {
  std::vector<S3Object> objects;
  bool is_truncated = false;
  std::string next_continuation_token;  // empty on the last page
};
// Extracts the fields above (entities decoded). Throws S3Error kOther on a body that is
// not a ListBucketResult or has a malformed <Contents>.
S3ListPage ParseListObjectsV2(std::string_view xml);

// The <Code> and <Message> of an S3 <Error> body; both empty when absent.
struct S3ErrorBody {
  std::string code;
  std::string message;
};
S3ErrorBody ParseS3ErrorBody(std::string_view xml);

}  // namespace ro::plugins

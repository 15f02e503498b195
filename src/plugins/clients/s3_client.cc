#include "ro/plugins/s3_client.h"

#include <algorithm>
#include <charconv>
#include <iterator>
#include <mutex>
#include <utility>

#include <curl/curl.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <re2/re2.h>

#include "ro/common/time.h"
#include "ro/plugins/bucket_encryption.h"

namespace ro::plugins {
namespace {

constexpr char kHexUpper[] = "0123456789ABCDEF";
constexpr char kHexLower[] = "0123456789abcdef";
// S3 returns at most 1000 keys per ListObjectsV2 page.
constexpr int kMaxPageSize = 1000;

bool IsUnreserved(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '.' || c == '_' || c == '~';
}

std::string Encode(std::string_view text, bool keep_slash) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    if (IsUnreserved(c) || (keep_slash && c == '/')) {
      out += c;
    } else {
      const auto b = static_cast<unsigned char>(c);
      out += '%';
      out += kHexUpper[b >> 4];
      out += kHexUpper[b & 0xf];
    }
  }
  return out;
}

// Lower-case hex SHA-256 of `data`: the x-amz-content-sha256 header value.
std::string Sha256Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr) != 1) {
    throw S3Error(S3Error::Code::kOther, 0, "", "S3: SHA-256 of the request body failed");
  }
  std::string hex;
  hex.reserve(2 * length);
  for (unsigned int i = 0; i < length; ++i) {
    hex += kHexLower[digest[i] >> 4];
    hex += kHexLower[digest[i] & 0xf];
  }
  return hex;
}

// --- XML extraction ------------------------------------------------------------------
// S3 bodies are machine-written XML without CDATA or comments; element text can never
// contain '<' (it is escaped as &lt;), so scanning for tags is exact.

// Appends code point `cp` as UTF-8.
void AppendUtf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

// Decodes the five predefined entities and numeric character references; anything
// else (a stray '&') is kept as it is.
std::string DecodeXmlText(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] != '&') {
      out += text[i++];
      continue;
    }
    const std::size_t semi = text.find(';', i);
    // The longest reference is "&#x10FFFF;" (10 bytes).
    if (semi == std::string_view::npos || semi - i > 10) {
      out += text[i++];
      continue;
    }
    const std::string_view entity = text.substr(i + 1, semi - i - 1);
    bool decoded = true;
    if (entity == "amp") {
      out += '&';
    } else if (entity == "lt") {
      out += '<';
    } else if (entity == "gt") {
      out += '>';
    } else if (entity == "quot") {
      out += '"';
    } else if (entity == "apos") {
      out += '\'';
    } else if (entity.size() >= 2 && entity[0] == '#') {
      const bool hex = entity[1] == 'x' || entity[1] == 'X';
      const std::string_view digits = entity.substr(hex ? 2 : 1);
      std::uint32_t cp = 0;
      const auto [end, ec] =
          std::from_chars(digits.data(), digits.data() + digits.size(), cp, hex ? 16 : 10);
      decoded = !digits.empty() && ec == std::errc() && end == digits.data() + digits.size() &&
                cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff);
      if (decoded) AppendUtf8(out, cp);
    } else {
      decoded = false;
    }
    if (decoded) {
      i = semi + 1;
    } else {
      out += text[i++];
    }
  }
  return out;
}

// The raw inner text of the first element `name` at or after xml[from], and the
// position just after it. <name/> yields an empty text. Only exact names match (<Key>
// never matches <KeyCount>).
struct Element {
  std::string_view inner;
  std::size_t end = 0;
};
std::optional<Element> FindElement(std::string_view xml, std::string_view name,
                                   std::size_t from = 0) {
  std::size_t pos = from;
  while (true) {
    pos = xml.find('<', pos);
    if (pos == std::string_view::npos) return std::nullopt;
    if (xml.compare(pos + 1, name.size(), name) != 0) {
      ++pos;
      continue;
    }
    const std::size_t after_name = pos + 1 + name.size();
    if (after_name >= xml.size()) return std::nullopt;
    const char next = xml[after_name];
    if (next != '>' && next != '/' && next != ' ' && next != '\t' && next != '\r' &&
        next != '\n') {
      ++pos;  // a longer name with this prefix
      continue;
    }
    const std::size_t open_end = xml.find('>', after_name);
    if (open_end == std::string_view::npos) return std::nullopt;
    if (xml[open_end - 1] == '/') return Element{{}, open_end + 1};  // <name/>
    const std::string close = "</" + std::string(name) + ">";
    const std::size_t close_pos = xml.find(close, open_end + 1);
    if (close_pos == std::string_view::npos) return std::nullopt;
    return Element{xml.substr(open_end + 1, close_pos - open_end - 1),
                   close_pos + close.size()};
  }
}

std::optional<std::string> ElementText(std::string_view xml, std::string_view name) {
  const std::optional<Element> e = FindElement(xml, name);
  if (!e) return std::nullopt;
  return DecodeXmlText(e->inner);
}

[[noreturn]] void FailParse(const std::string& why) {
  throw S3Error(S3Error::Code::kOther, 0, "", "S3 ListObjectsV2: malformed response: " + why);
}

S3Object ParseContents(const Element& contents) {
  const std::string_view block = contents.inner;
  S3Object object;
  std::optional<std::string> key = ElementText(block, "Key");
  if (!key) FailParse("<Contents> without <Key>");
  object.key = std::move(*key);
  if (std::optional<std::string> size = ElementText(block, "Size")) {
    const auto [end, ec] = std::from_chars(size->data(), size->data() + size->size(), object.size);
    if (ec != std::errc() || end != size->data() + size->size()) {
      FailParse("bad <Size> \"" + *size + "\" for key \"" + object.key + "\"");
    }
  }
  if (std::optional<std::string> etag = ElementText(block, "ETag")) {
    if (etag->size() >= 2 && etag->front() == '"' && etag->back() == '"') {
      *etag = etag->substr(1, etag->size() - 2);
    }
    object.etag = std::move(*etag);
  }
  if (std::optional<std::string> modified = ElementText(block, "LastModified")) {
    try {
      object.last_modified = common::ParseRfc3339(*modified);
    } catch (const common::TimeError& e) {
      FailParse(std::string("bad <LastModified>: ") + e.what());
    }
  }
  return object;
}

// --- Errors -----------------------------------------------------------------------------

S3Error::Code CodeForS3(std::string_view s3_code) {
  if (s3_code == "NoSuchBucket") return S3Error::Code::kNoSuchBucket;
  if (s3_code == "AccessDenied" || s3_code == "AllAccessDisabled" ||
      s3_code == "AccountProblem") {
    return S3Error::Code::kAccessDenied;
  }
  // GCS answers InvalidSecurity where AWS says InvalidAccessKeyId.
  if (s3_code == "InvalidAccessKeyId" || s3_code == "SignatureDoesNotMatch" ||
      s3_code == "InvalidSecurity" || s3_code == "InvalidToken" || s3_code == "ExpiredToken") {
    return S3Error::Code::kInvalidCredentials;
  }
  return S3Error::Code::kOther;
}

// Curl errors that mean "our request or build is wrong" rather than "no answer".
bool IsLocalCurlError(CURLcode rc) {
  return rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL ||
         rc == CURLE_BAD_FUNCTION_ARGUMENT || rc == CURLE_OUT_OF_MEMORY ||
         rc == CURLE_UNKNOWN_OPTION || rc == CURLE_NOT_BUILT_IN ||
         rc == CURLE_FAILED_INIT || rc == CURLE_WRITE_ERROR;
}

// --- Config helpers -----------------------------------------------------------------

void RequireNonEmpty(std::string_view value, const std::string& field) {
  if (value.empty()) throw S3ConfigError(field, "is required");
}

// Region of an AWS S3 endpoint host, or nullopt when `host` is not one.
std::optional<std::string> AwsRegionOf(std::string_view host) {
  // s3.<region>.amazonaws.com, s3-<region>.amazonaws.com (legacy), s3.dualstack.<region>...
  static const re2::RE2 kAwsEndpoint(
      R"(^s3[.-](?:dualstack\.)?([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$)");
  std::string region;
  if (!re2::RE2::FullMatch(re2::StringPiece(host.data(), host.size()), kAwsEndpoint, &region)) {
    return std::nullopt;
  }
  if (region == "external-1") return "us-east-1";  // s3-external-1 is us-east-1
  return region;
}

std::string StringField(const nlohmann::json& object, const char* name, const std::string& path) {
  const auto it = object.find(name);
  if (it == object.end() || it->is_null()) throw S3ConfigError(path, "is required");
  if (!it->is_string()) throw S3ConfigError(path, "must be a string");
  return it->get<std::string>();
}

// libcurl before 8.10.0 sorts SigV4 canonical headers by "name:value" instead of by
// name (curl PR #14370), so x-amz-server-side-encryption-aws-kms-key-id lands before
// x-amz-server-side-encryption and AWS answers SignatureDoesNotMatch. Refuse a KMS key
// id there instead of sending requests that cannot be valid.
void RequireSignableKmsKeyId(std::string_view kms_key_id, const std::string& field) {
  if (kms_key_id.empty()) return;
  const curl_version_info_data* curl = curl_version_info(CURLVERSION_NOW);
  if (curl != nullptr && curl->version_num >= 0x080a00) return;
  throw S3ConfigError(field, std::string("cannot be signed correctly by this libcurl (") +
                                 (curl != nullptr ? curl->version : "unknown") +
                                 "; 8.10.0 or later is needed): use algorithm aws:kms without "
                                 "kmsKeyId (the bucket's default KMS key) or AES256");
}

}  // namespace

// --- S3Error / S3ConfigError ------------------------------------------------------------

S3Error::S3Error(Code code, long http_status, std::string s3_code, const std::string& message)
    : std::runtime_error(message),
      code_(code),
      http_status_(http_status),
      s3_code_(std::move(s3_code)) {}

bool S3Error::retryable() const noexcept {
  return code_ == Code::kUnreachable || http_status_ >= 500 || http_status_ == 429 ||
         s3_code_ == "SlowDown";
}

S3ConfigError::S3ConfigError(std::string field, const std::string& message)
    : std::invalid_argument(field + ": " + message), field_(std::move(field)) {}

// --- Wire helpers -----------------------------------------------------------------------

std::string EncodeS3Key(std::string_view key) { return Encode(key, /*keep_slash=*/true); }
std::string EncodeS3QueryValue(std::string_view value) {
  return Encode(value, /*keep_slash=*/false);
}

S3ListPage ParseListObjectsV2(std::string_view xml) {
  if (!FindElement(xml, "ListBucketResult")) FailParse("no <ListBucketResult>");
  S3ListPage page;
  std::size_t pos = 0;
  while (const std::optional<Element> contents = FindElement(xml, "Contents", pos)) {
    page.objects.push_back(ParseContents(*contents));
    pos = contents->end;
  }
  // IsTruncated and NextContinuationToken exist only at the top level of the result.
  if (std::optional<std::string> truncated = ElementText(xml, "IsTruncated")) {
    page.is_truncated = *truncated == "true";
  }
  if (std::optional<std::string> token = ElementText(xml, "NextContinuationToken")) {
    page.next_continuation_token = std::move(*token);
  }
  if (page.is_truncated && page.next_continuation_token.empty()) {
    FailParse("<IsTruncated>true</IsTruncated> without <NextContinuationToken>");
  }
  return page;
}

S3ErrorBody ParseS3ErrorBody(std::string_view xml) {
  S3ErrorBody body;
  const std::optional<Element> error = FindElement(xml, "Error");
  if (!error) return body;
  body.code = ElementText(error->inner, "Code").value_or("");
  body.message = ElementText(error->inner, "Message").value_or("");
  return body;
}

// --- Config helpers ---------------------------------------------------------------------

S3Config GenericBucketConfig(std::string_view endpoint, bool use_ssl, std::string_view bucket,
                             S3Credentials credentials) {
  RequireNonEmpty(endpoint, "spec.generic.endpoint");
  RequireNonEmpty(bucket, "spec.generic.name");
  if (endpoint.find("://") != std::string_view::npos) {
    throw S3ConfigError("spec.generic.endpoint",
                        "must be host[:port] without a scheme (set useSSL for https), got \"" +
                            std::string(endpoint) + "\"");
  }
  if (endpoint.find_first_of("/?# \t") != std::string_view::npos) {
    throw S3ConfigError("spec.generic.endpoint",
                        "must be host[:port] without a path, got \"" + std::string(endpoint) +
                            "\"");
  }
  S3Config config;
  config.endpoint = std::string(endpoint);
  config.use_ssl = use_ssl;
  config.bucket = std::string(bucket);
  config.credentials = std::move(credentials);
  const std::string_view host = endpoint.substr(0, endpoint.find(':'));
  if (std::optional<std::string> region = AwsRegionOf(host)) {
    config.region = std::move(*region);
  } else if (host == "storage.googleapis.com") {
    config.region = "auto";
  }
  return config;
}

S3Config AwsS3BucketConfig(std::string_view region, std::string_view bucket,
                           S3Credentials credentials) {
  RequireNonEmpty(region, "spec.awsS3.region");
  RequireNonEmpty(bucket, "spec.awsS3.name");
  static const re2::RE2 kRegion(R"([a-z0-9-]+)");
  if (!re2::RE2::FullMatch(re2::StringPiece(region.data(), region.size()), kRegion)) {
    throw S3ConfigError("spec.awsS3.region",
                        "must be an AWS region name like eu-west-1, got \"" +
                            std::string(region) + "\"");
  }
  S3Config config;
  // China regions live under their own domain.
  const bool china = region.starts_with("cn-");
  config.endpoint = "s3." + std::string(region) + (china ? ".amazonaws.com.cn" : ".amazonaws.com");
  config.use_ssl = true;
  config.region = std::string(region);
  config.bucket = std::string(bucket);
  config.credentials = std::move(credentials);
  return config;
}

S3Config GcpCloudStorageBucketConfig(std::string_view bucket, S3Credentials credentials) {
  RequireNonEmpty(bucket, "spec.gcpCloudStorage.name");
  S3Config config;
  config.endpoint = "storage.googleapis.com";
  config.use_ssl = true;
  config.region = "auto";
  config.bucket = std::string(bucket);
  config.credentials = std::move(credentials);
  return config;
}

namespace {

S3Config ProviderConfigFromSpec(const nlohmann::json& spec, S3Credentials credentials) {
  const char* const kinds[] = {"generic", "awsS3", "gcpCloudStorage"};
  const char* chosen = nullptr;
  for (const char* kind : kinds) {
    const auto it = spec.find(kind);
    if (it == spec.end() || it->is_null()) continue;
    if (!it->is_object()) throw S3ConfigError(std::string("spec.") + kind, "must be an object");
    if (chosen != nullptr) {
      throw S3ConfigError("spec", std::string("only one of generic, awsS3 or gcpCloudStorage "
                                              "may be set, found ") +
                                      chosen + " and " + kind);
    }
    chosen = kind;
  }
  if (chosen == nullptr) {
    throw S3ConfigError("spec", "one of generic, awsS3 or gcpCloudStorage is required");
  }
  const nlohmann::json& body = spec.at(chosen);
  const std::string prefix = std::string("spec.") + chosen + ".";
  const std::string name = StringField(body, "name", prefix + "name");
  if (std::string_view(chosen) == "generic") {
    bool use_ssl = false;  // optional, and false when omitted (the Go zero value)
    if (const auto it = body.find("useSSL"); it != body.end() && !it->is_null()) {
      if (!it->is_boolean()) throw S3ConfigError(prefix + "useSSL", "must be a boolean");
      use_ssl = it->get<bool>();
    }
    return GenericBucketConfig(StringField(body, "endpoint", prefix + "endpoint"), use_ssl, name,
                               std::move(credentials));
  }
  if (std::string_view(chosen) == "awsS3") {
    return AwsS3BucketConfig(StringField(body, "region", prefix + "region"), name,
                             std::move(credentials));
  }
  return GcpCloudStorageBucketConfig(name, std::move(credentials));
}

}  // namespace

S3Config S3ConfigFromBucketSpec(const nlohmann::json& spec, S3Credentials credentials) {
  if (!spec.is_object()) throw S3ConfigError("spec", "must be an object");
  const BucketEncryptionSpec encryption = BucketEncryptionFromSpec(spec);
  S3Config config = ProviderConfigFromSpec(spec, std::move(credentials));
  config.server_side_encryption = encryption.sse_algorithm;
  config.sse_kms_key_id = encryption.sse_kms_key_id;
  RequireSignableKmsKeyId(config.sse_kms_key_id, "spec.encryption.serverSide.kmsKeyId");
  return config;
}

// --- S3Client ---------------------------------------------------------------------------

class S3Client::Impl {
 public:
  explicit Impl(S3Config config) : config_(std::move(config)) {
    if (config_.endpoint.empty()) throw S3ConfigError("endpoint", "is required");
    if (config_.bucket.empty()) throw S3ConfigError("bucket", "is required");
    if (config_.region.empty()) throw S3ConfigError("region", "is required");
    if (!config_.server_side_encryption.empty() && config_.server_side_encryption != "AES256" &&
        config_.server_side_encryption != "aws:kms") {
      throw S3ConfigError("server_side_encryption", "must be AES256 or aws:kms");
    }
    RequireSignableKmsKeyId(config_.sse_kms_key_id, "sse_kms_key_id");
    base_url_ = std::string(config_.use_ssl ? "https://" : "http://") +
                (config_.path_style ? config_.endpoint : config_.bucket + "." + config_.endpoint);
    bucket_path_ = config_.path_style ? "/" + EncodeS3Key(config_.bucket) : "";
    sigv4_ = "aws:amz:" + config_.region + ":s3";
  }

  const S3Config& config() const { return config_; }

  struct Request {
    const char* method = "GET";
    std::string_view key;          // for the object path and messages; empty: the bucket
    std::string query;             // canonical (sorted, encoded) query, without '?'
    std::string_view body;
    std::string_view content_type;
    bool server_side_encryption = false;  // send the configured SSE headers
  };
  struct Response {
    long status = 0;
    std::string body;
  };

  // Sends one signed request; returns any HTTP answer. Throws S3Error kUnreachable when
  // there is none.
  Response Perform(const Request& request) {
    std::string path = bucket_path_;
    if (!request.key.empty()) {
      path += '/';
      path += EncodeS3Key(request.key);
    } else if (path.empty()) {
      path = "/";
    }
    const std::string url =
        base_url_ + path + (request.query.empty() ? "" : "?" + request.query);

    Lease lease(*this);
    CURL* h = lease.get();
    Response response;
    char error_buffer[CURL_ERROR_SIZE] = {};
    curl_slist* raw_headers = nullptr;
    const auto add_header = [&raw_headers](const std::string& line) {
      curl_slist* next = curl_slist_append(raw_headers, line.c_str());
      if (next == nullptr) {
        curl_slist_free_all(raw_headers);
        throw S3Error(S3Error::Code::kOther, 0, "", "S3: out of memory building headers");
      }
      raw_headers = next;
    };
    // SigV4 for S3 needs the payload hash as a header; curl signs it with the rest.
    add_header("x-amz-content-sha256: " + Sha256Hex(request.body));
    add_header("Expect:");  // no 100-continue round trip before uploads
    if (!request.content_type.empty()) {
      add_header("Content-Type: " + std::string(request.content_type));
    }
    // Every header in CURLOPT_HTTPHEADER is part of libcurl's SigV4 canonical headers
    // and SignedHeaders (libcurl >= 7.86), so the SSE headers are signed like
    // x-amz-content-sha256, as AWS requires for x-amz-* headers.
    if (request.server_side_encryption && !config_.server_side_encryption.empty()) {
      add_header("x-amz-server-side-encryption: " + config_.server_side_encryption);
      if (!config_.sse_kms_key_id.empty()) {
        add_header("x-amz-server-side-encryption-aws-kms-key-id: " + config_.sse_kms_key_id);
      }
    }
    const std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headers(
        raw_headers, &curl_slist_free_all);

    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // timeouts without SIGALRM (threads)
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error_buffer);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4_.c_str());
    curl_easy_setopt(h, CURLOPT_USERNAME, config_.credentials.access_key_id.c_str());
    curl_easy_setopt(h, CURLOPT_PASSWORD, config_.credentials.secret_access_key.c_str());
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(config_.connect_timeout.count()));
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(config_.request_timeout.count()));
    if (!config_.ca_pem.empty()) {
      curl_blob blob{const_cast<char*>(config_.ca_pem.data()), config_.ca_pem.size(),
                     CURL_BLOB_NOCOPY};
      curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
    }
    const std::string_view method = request.method;
    if (method == "PUT" || method == "POST") {
      // POSTFIELDS (not an upload callback) so curl knows the size up front.
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(request.body.size()));
      // Never NULL: curl would then read the body from stdin.
      curl_easy_setopt(h, CURLOPT_POSTFIELDS,
                       request.body.data() != nullptr ? request.body.data() : "");
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method);
    } else if (method != "GET") {
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method);
    }
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &AppendBody);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &response.body);

    const CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
      const std::string detail = error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(rc);
      throw S3Error(IsLocalCurlError(rc) ? S3Error::Code::kOther : S3Error::Code::kUnreachable,
                    0, "",
                    "S3 " + std::string(method) + " " + Describe(request.key) + " at " +
                        base_url_ + ": no answer: " + detail);
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &response.status);
    return response;
  }

  // Throws the S3Error for a non-2xx response.
  [[noreturn]] void Fail(const Request& request, const Response& response) const {
    const S3ErrorBody error = ParseS3ErrorBody(response.body);
    S3Error::Code code = CodeForS3(error.code);
    if (error.code.empty() && response.status == 403) code = S3Error::Code::kAccessDenied;
    std::string message = "S3 " + std::string(request.method) + " " + Describe(request.key) +
                          ": HTTP " + std::to_string(response.status);
    if (!error.code.empty()) message += " " + error.code;
    if (!error.message.empty()) message += ": " + error.message;
    throw S3Error(code, response.status, error.code, message);
  }

  static bool Ok(const Response& response) {
    return response.status >= 200 && response.status < 300;
  }

  std::string ListQuery(std::string_view prefix, int max_keys, std::string_view token) const {
    // Parameters in byte order: the SigV4 canonical query string must be sorted.
    std::string query;
    if (!token.empty()) query += "continuation-token=" + EncodeS3QueryValue(token) + "&";
    query += "list-type=2&max-keys=" + std::to_string(max_keys);
    if (!prefix.empty()) query += "&prefix=" + EncodeS3QueryValue(prefix);
    return query;
  }

 private:
  struct CurlDeleter {
    void operator()(CURL* h) const { curl_easy_cleanup(h); }
  };
  using CurlHandle = std::unique_ptr<CURL, CurlDeleter>;

  // Borrows a pooled handle for one request and gives it back (options reset, live
  // connection kept) when done.
  class Lease {
   public:
    explicit Lease(Impl& owner) : owner_(owner), handle_(owner.Acquire()) {}
    ~Lease() { owner_.Release(std::move(handle_)); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    CURL* get() const { return handle_.get(); }

   private:
    Impl& owner_;
    CurlHandle handle_;
  };

  CurlHandle Acquire() {
    {
      std::lock_guard lock(mu_);
      if (!idle_.empty()) {
        CurlHandle h = std::move(idle_.back());
        idle_.pop_back();
        return h;
      }
    }
    CurlHandle h(curl_easy_init());
    if (!h) throw S3Error(S3Error::Code::kOther, 0, "", "S3: curl_easy_init failed");
    return h;
  }

  void Release(CurlHandle h) {
    curl_easy_reset(h.get());
    std::lock_guard lock(mu_);
    if (idle_.size() < config_.max_idle_connections) idle_.push_back(std::move(h));
  }

  // libcurl write callback. An exception must not cross libcurl's C frames: returning
  // less than given aborts the transfer (CURLE_WRITE_ERROR) instead.
  static size_t AppendBody(char* data, size_t size, size_t count, void* user) noexcept {
    try {
      static_cast<std::string*>(user)->append(data, size * count);
      return size * count;
    } catch (...) {
      return 0;
    }
  }

  std::string Describe(std::string_view key) const {
    return key.empty() ? config_.bucket : config_.bucket + "/" + std::string(key);
  }

  // Constant after construction.
  const S3Config config_;
  std::string base_url_;     // "https://host[:port]" or "https://bucket.host[:port]"
  std::string bucket_path_;  // "/bucket" (path style) or ""
  std::string sigv4_;        // "aws:amz:<region>:s3"

  std::mutex mu_;
  std::vector<CurlHandle> idle_;  // guarded by mu_
};

S3Client::S3Client(S3Config config) : impl_(std::make_unique<Impl>(std::move(config))) {}
S3Client::~S3Client() = default;

const S3Config& S3Client::config() const noexcept { return impl_->config(); }

void S3Client::CheckAccess() {
  Impl::Request request;
  request.query = impl_->ListQuery("", 1, "");
  const Impl::Response response = impl_->Perform(request);
  if (!Impl::Ok(response)) impl_->Fail(request, response);
}

void S3Client::CreateBucket() {
  const std::string& region = impl_->config().region;
  std::string body;
  // us-east-1 is the default location and must not be named; "auto" is GCS's signing
  // region, not a location.
  if (region != "us-east-1" && region != "auto") {
    body = "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
           "<LocationConstraint>" + region + "</LocationConstraint></CreateBucketConfiguration>";
  }
  Impl::Request request;
  request.method = "PUT";
  request.body = body;
  if (!body.empty()) request.content_type = "application/xml";
  const Impl::Response response = impl_->Perform(request);
  if (Impl::Ok(response)) return;
  if (response.status == 409) {
    const S3ErrorBody error = ParseS3ErrorBody(response.body);
    if (error.code == "BucketAlreadyOwnedByYou") return;
    if (error.code == "BucketAlreadyExists") {
      // Another owner, or a single-account server (s3rver) that does not say "by you":
      // it is ours to use exactly when we can access it.
      try {
        CheckAccess();
        return;
      } catch (const S3Error&) {
        impl_->Fail(request, response);
      }
    }
  }
  impl_->Fail(request, response);
}

void S3Client::PutObject(std::string_view key, std::string_view body,
                         std::string_view content_type) {
  if (key.empty()) throw std::invalid_argument("S3 PutObject: empty key");
  Impl::Request request;
  request.method = "PUT";
  request.key = key;
  std::string sealed;
  if (impl_->config().cipher) {
    sealed = impl_->config().cipher->Seal(key, body);
    request.body = sealed;
    // The stored bytes are binary; the original's type is inside the envelope.
    request.content_type = "application/octet-stream";
  } else {
    request.body = body;
    request.content_type = content_type.empty() ? "application/octet-stream" : content_type;
  }
  request.server_side_encryption = true;
  const Impl::Response response = impl_->Perform(request);
  if (!Impl::Ok(response)) impl_->Fail(request, response);
}

std::optional<std::string> S3Client::GetObject(std::string_view key) {
  if (key.empty()) throw std::invalid_argument("S3 GetObject: empty key");
  Impl::Request request;
  request.key = key;
  Impl::Response response = impl_->Perform(request);
  if (Impl::Ok(response)) {
    const std::shared_ptr<const BucketCipher>& cipher = impl_->config().cipher;
    return cipher ? cipher->Open(key, response.body) : OpenWithoutCipher(key, response.body);
  }
  if (response.status == 404 && ParseS3ErrorBody(response.body).code == "NoSuchKey") {
    return std::nullopt;
  }
  impl_->Fail(request, response);
}

void S3Client::DeleteObject(std::string_view key) {
  if (key.empty()) throw std::invalid_argument("S3 DeleteObject: empty key");
  Impl::Request request;
  request.method = "DELETE";
  request.key = key;
  const Impl::Response response = impl_->Perform(request);
  if (Impl::Ok(response)) return;
  if (response.status == 404 && ParseS3ErrorBody(response.body).code == "NoSuchKey") return;
  impl_->Fail(request, response);
}

std::vector<S3Object> S3Client::ListObjects(std::string_view prefix, int page_size) {
  if (page_size < 1 || page_size > kMaxPageSize) {
    throw std::invalid_argument("S3 ListObjects: page_size must be 1..1000, got " +
                                std::to_string(page_size));
  }
  std::vector<S3Object> objects;
  std::string token;
  while (true) {
    Impl::Request request;
    request.query = impl_->ListQuery(prefix, page_size, token);
    const Impl::Response response = impl_->Perform(request);
    if (!Impl::Ok(response)) impl_->Fail(request, response);
    S3ListPage page = ParseListObjectsV2(response.body);
    std::move(page.objects.begin(), page.objects.end(), std::back_inserter(objects));
    if (!page.is_truncated) return objects;
    if (page.next_continuation_token == token) {
      throw S3Error(S3Error::Code::kOther, response.status, "",
                    "S3 ListObjectsV2: the server repeated continuation token \"" + token + "\"");
    }
    token = std::move(page.next_continuation_token);
  }
}

}  // namespace ro::plugins

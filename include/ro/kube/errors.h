// Typed errors of the Kubernetes client. The project's one error policy: failures are
// C++ exceptions derived from std::runtime_error, typed per module so a caller catches
// exactly what it can act on (see docs/architecture.md, "Errors").
//
// What each kind means for a retry (mirrors client-go / abseil status semantics):
//   ApiError kConflict          -> re-read the object, redo the read-modify-write
//   ApiError kGone              -> the resourceVersion is too old: relist
//   ApiError kTooManyRequests   -> back off for retry_after(), then retry
//   ApiError 5xx / kTimeout /
//     kServerTimeout            -> retry with backoff (the transport already does for
//                                  idempotent verbs)
//   TransportError              -> retry with backoff (server unreachable, TLS, timeout)
//   everything else             -> do not retry; surface it (condition, Event, log)
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ro::kube {

// The `reason` field of a metav1.Status (k8s.io/apimachinery metav1.StatusReason).
// When the server sent no Status body, the reason is derived from the HTTP code.
enum class StatusReason {
  kUnknown,
  kBadRequest,             // 400
  kUnauthorized,           // 401
  kForbidden,              // 403
  kNotFound,               // 404
  kMethodNotAllowed,       // 405
  kNotAcceptable,          // 406
  kAlreadyExists,          // 409, reason AlreadyExists
  kConflict,               // 409, reason Conflict (stale resourceVersion, failed precondition)
  kGone,                   // 410, reason Gone or Expired (resourceVersion compacted,
                           // "too old resource version", continue token expired)
  kRequestEntityTooLarge,  // 413
  kUnsupportedMediaType,   // 415
  kInvalid,                // 422, with causes naming the fields
  kTooManyRequests,        // 429, honour retry_after()
  kInternalError,          // 500
  kServiceUnavailable,     // 503
  kServerTimeout,          // 504 or reason ServerTimeout
  kTimeout,                // reason Timeout (request could not complete in time)
};

// Parses "NotFound", "AlreadyExists", ... (case-sensitive, as sent by the apiserver).
StatusReason ParseStatusReason(std::string_view reason, int http_code);
std::string_view ToString(StatusReason reason);

// One entry of metav1.Status.details.causes: which field failed validation and why.
struct StatusCause {
  std::string type;     // e.g. "FieldValueRequired"
  std::string message;  // human readable
  std::string field;    // e.g. "spec.secretName"
};

// The apiserver answered with an error status (HTTP >= 400) or a watch ERROR event.
class ApiError : public std::runtime_error {
 public:
  ApiError(int http_code, StatusReason reason, std::string message,
           std::vector<StatusCause> causes = {},
           std::chrono::seconds retry_after = std::chrono::seconds{0});

  int http_code() const noexcept { return http_code_; }
  StatusReason reason() const noexcept { return reason_; }
  // Status.message as sent by the server (what() adds code and reason in front).
  const std::string& status_message() const noexcept { return status_message_; }
  const std::vector<StatusCause>& causes() const noexcept { return causes_; }
  // From the Retry-After header or Status.details.retryAfterSeconds; 0 when absent.
  std::chrono::seconds retry_after() const noexcept { return retry_after_; }

 private:
  int http_code_;
  StatusReason reason_;
  std::string status_message_;
  std::vector<StatusCause> causes_;
  std::chrono::seconds retry_after_;
};

// Builds the ApiError for an HTTP error answer. `body` is parsed as a metav1.Status
// (reason, message, details.causes, details.retryAfterSeconds, code); when it is not one,
// the reason comes from `http_code` and the message is the body's first 256 bytes.
// `retry_after` (the Retry-After header) wins over details.retryAfterSeconds.
ApiError ApiErrorFromResponse(int http_code, std::string_view body,
                              std::chrono::seconds retry_after = std::chrono::seconds{0});
// Builds the ApiError for a metav1.Status object (e.g. the object of a watch ERROR
// event). Status.code wins over `fallback_http_code` when present.
ApiError ApiErrorFromStatus(const nlohmann::json& status, int fallback_http_code,
                            std::chrono::seconds retry_after = std::chrono::seconds{0});

// The request never got an HTTP answer: connection refused, DNS, TLS handshake or
// certificate verification failure, timeout, or the stream broke mid-body.
class TransportError : public std::runtime_error {
 public:
  enum class Kind { kConnect, kTls, kTimeout, kBrokenStream, kOther };
  TransportError(Kind kind, std::string message);
  Kind kind() const noexcept { return kind_; }

 private:
  Kind kind_;
};

// A kubeconfig / in-cluster configuration is missing or wrong. field() names the
// offending field as a path, e.g. "users[admin].user.client-key-data".
class ConfigError : public std::runtime_error {
 public:
  ConfigError(std::string field, std::string message);
  const std::string& field() const noexcept { return field_; }

 private:
  std::string field_;
};

// Convenience predicates for catch sites that only need the reason.
bool IsNotFound(const std::exception& e) noexcept;
bool IsAlreadyExists(const std::exception& e) noexcept;
bool IsConflict(const std::exception& e) noexcept;
bool IsGone(const std::exception& e) noexcept;
bool IsForbidden(const std::exception& e) noexcept;
bool IsUnauthorized(const std::exception& e) noexcept;
// True when the error is worth retrying later (transport errors, 429, 5xx, timeouts).
bool IsRetryable(const std::exception& e) noexcept;

}  // namespace ro::kube

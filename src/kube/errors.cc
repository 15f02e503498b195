#include "ro/kube/errors.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <utility>

#include "ro/common/object_meta.h"

namespace ro::kube {
namespace {

struct ReasonName {
  StatusReason reason;
  std::string_view name;
};

// metav1.StatusReason strings (k8s.io/apimachinery/pkg/apis/meta/v1/types.go).
constexpr std::array<ReasonName, 17> kReasonNames{{
    {StatusReason::kBadRequest, "BadRequest"},
    {StatusReason::kUnauthorized, "Unauthorized"},
    {StatusReason::kForbidden, "Forbidden"},
    {StatusReason::kNotFound, "NotFound"},
    {StatusReason::kMethodNotAllowed, "MethodNotAllowed"},
    {StatusReason::kNotAcceptable, "NotAcceptable"},
    {StatusReason::kAlreadyExists, "AlreadyExists"},
    {StatusReason::kConflict, "Conflict"},
    {StatusReason::kGone, "Gone"},
    {StatusReason::kRequestEntityTooLarge, "RequestEntityTooLarge"},
    {StatusReason::kUnsupportedMediaType, "UnsupportedMediaType"},
    {StatusReason::kInvalid, "Invalid"},
    {StatusReason::kTooManyRequests, "TooManyRequests"},
    {StatusReason::kInternalError, "InternalError"},
    {StatusReason::kServiceUnavailable, "ServiceUnavailable"},
    {StatusReason::kServerTimeout, "ServerTimeout"},
    {StatusReason::kTimeout, "Timeout"},
}};

// What client-go's errors.NewGenericServerResponse derives when there is no reason.
StatusReason ReasonFromHttpCode(int http_code) {
  switch (http_code) {
    case 400: return StatusReason::kBadRequest;
    case 401: return StatusReason::kUnauthorized;
    case 403: return StatusReason::kForbidden;
    case 404: return StatusReason::kNotFound;
    case 405: return StatusReason::kMethodNotAllowed;
    case 406: return StatusReason::kNotAcceptable;
    case 409: return StatusReason::kConflict;
    case 410: return StatusReason::kGone;
    case 413: return StatusReason::kRequestEntityTooLarge;
    case 415: return StatusReason::kUnsupportedMediaType;
    case 422: return StatusReason::kInvalid;
    case 429: return StatusReason::kTooManyRequests;
    case 500: return StatusReason::kInternalError;
    case 503: return StatusReason::kServiceUnavailable;
    case 504: return StatusReason::kServerTimeout;
    default: return StatusReason::kUnknown;
  }
}

// How much of a non-Status error body goes into the message: enough for an HTML or
// text error page's first line, not a whole page in a log line.
constexpr size_t kMaxRawBodyInMessage = 256;

std::string FormatWhat(int http_code, StatusReason reason, const std::string& message) {
  return fmt::format("{} {}: {}", http_code, ToString(reason), message);
}

const ApiError* AsApiError(const std::exception& e) {
  return dynamic_cast<const ApiError*>(&e);
}

bool HasReason(const std::exception& e, StatusReason reason) {
  const ApiError* api = AsApiError(e);
  return api != nullptr && api->reason() == reason;
}

}  // namespace

StatusReason ParseStatusReason(std::string_view reason, int http_code) {
  // "Expired" is what the apiserver sends with 410 for a compacted resourceVersion or an
  // expired continue token; callers act on both the same way (relist).
  if (reason == "Expired") return StatusReason::kGone;
  for (const auto& entry : kReasonNames) {
    if (entry.name == reason) return entry.reason;
  }
  return ReasonFromHttpCode(http_code);
}

std::string_view ToString(StatusReason reason) {
  for (const auto& entry : kReasonNames) {
    if (entry.reason == reason) return entry.name;
  }
  return "Unknown";
}

ApiError::ApiError(int http_code, StatusReason reason, std::string message,
                   std::vector<StatusCause> causes, std::chrono::seconds retry_after)
    : std::runtime_error(FormatWhat(http_code, reason, message)),
      http_code_(http_code),
      reason_(reason),
      status_message_(std::move(message)),
      causes_(std::move(causes)),
      retry_after_(retry_after) {}

ApiError ApiErrorFromStatus(const nlohmann::json& status, int fallback_http_code,
                            std::chrono::seconds retry_after) {
  if (!status.is_object()) {
    return ApiError(fallback_http_code, ReasonFromHttpCode(fallback_http_code),
                    "malformed Status: " + status.dump(), {}, retry_after);
  }
  int code = fallback_http_code;
  if (auto it = status.find("code"); it != status.end() && it->is_number_integer()) {
    const int status_code = it->get<int>();
    if (status_code > 0) code = status_code;
  }
  const std::string reason_text = common::StringMember(status, "reason");
  std::string message = common::StringMember(status, "message");
  std::vector<StatusCause> causes;
  if (auto details = status.find("details"); details != status.end() && details->is_object()) {
    if (auto list = details->find("causes"); list != details->end() && list->is_array()) {
      causes.reserve(list->size());
      for (const auto& cause : *list) {
        if (!cause.is_object()) continue;
        causes.push_back({common::StringMember(cause, "reason"), common::StringMember(cause, "message"),
                          common::StringMember(cause, "field")});
      }
    }
    if (auto secs = details->find("retryAfterSeconds");
        retry_after.count() == 0 && secs != details->end() && secs->is_number_integer()) {
      retry_after = std::chrono::seconds{std::max<int64_t>(0, secs->get<int64_t>())};
    }
  }
  if (message.empty()) message = reason_text.empty() ? "no message" : reason_text;
  return ApiError(code, ParseStatusReason(reason_text, code), std::move(message),
                  std::move(causes), retry_after);
}

ApiError ApiErrorFromResponse(int http_code, std::string_view body,
                              std::chrono::seconds retry_after) {
  nlohmann::json doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_object() && common::StringMember(doc, "kind") == "Status") {
    return ApiErrorFromStatus(doc, http_code, retry_after);
  }
  std::string message(body.substr(0, kMaxRawBodyInMessage));
  while (!message.empty() && (message.back() == '\n' || message.back() == '\r')) {
    message.pop_back();
  }
  if (message.empty()) message = fmt::format("HTTP {}", http_code);
  return ApiError(http_code, ReasonFromHttpCode(http_code), std::move(message), {},
                  retry_after);
}

TransportError::TransportError(Kind kind, std::string message)
    : std::runtime_error(std::move(message)), kind_(kind) {}

ConfigError::ConfigError(std::string field, std::string message)
    : std::runtime_error(field.empty() ? message : field + ": " + message),
      field_(std::move(field)) {}

bool IsNotFound(const std::exception& e) noexcept {
  return HasReason(e, StatusReason::kNotFound);
}
bool IsAlreadyExists(const std::exception& e) noexcept {
  return HasReason(e, StatusReason::kAlreadyExists);
}
bool IsConflict(const std::exception& e) noexcept {
  return HasReason(e, StatusReason::kConflict);
}
bool IsGone(const std::exception& e) noexcept { return HasReason(e, StatusReason::kGone); }
bool IsForbidden(const std::exception& e) noexcept {
  return HasReason(e, StatusReason::kForbidden);
}
bool IsUnauthorized(const std::exception& e) noexcept {
  return HasReason(e, StatusReason::kUnauthorized);
}

bool IsRetryable(const std::exception& e) noexcept {
  if (dynamic_cast<const TransportError*>(&e) != nullptr) return true;
  const ApiError* api = AsApiError(e);
  if (api == nullptr) return false;
  switch (api->reason()) {
    case StatusReason::kTooManyRequests:
    case StatusReason::kServerTimeout:
    case StatusReason::kTimeout:
    case StatusReason::kInternalError:
    case StatusReason::kServiceUnavailable:
      return true;
    default:
      return api->http_code() >= 500;
  }
}

}  // namespace ro::kube

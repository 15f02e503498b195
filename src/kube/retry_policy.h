// Private to ro_kube: when the transport retries a request and how long it waits first.
// Only idempotent verbs are retried (GET, HEAD, DELETE); a POST, PUT or PATCH that might
// have been applied is never sent twice. Retried: 429 (after Retry-After when sent), the
// transient 5xx codes, and transport errors other than TLS failures (a bad certificate
// does not fix itself).
#pragma once

#include <chrono>
#include <string_view>

#include "ro/kube/errors.h"

namespace ro::kube::internal {

// First backoff step and its cap: 100 ms doubling to 5 s, the ranges client-go's
// default rest client backoff uses for its retries.
inline constexpr std::chrono::milliseconds kInitialBackoff{100};
inline constexpr std::chrono::milliseconds kMaxBackoff{5'000};
// A Retry-After above this is clipped: the apiserver sends 1 s for max-in-flight 429s,
// and a minute is already longer than any caller's request timeout.
inline constexpr std::chrono::seconds kMaxRetryAfter{60};

bool IsIdempotentMethod(std::string_view method);
// 429, 500, 502, 503, 504. Not 501 (Not Implemented), which is permanent.
bool IsRetryableStatus(long status);
bool IsRetryableTransportError(TransportError::Kind kind);
// Wait before retry number `retry` (0 for the first retry): 100 ms * 2^retry, capped.
std::chrono::milliseconds Backoff(int retry);
// Wait before retrying after an HTTP answer: Retry-After when the server sent one
// (clipped to kMaxRetryAfter), else Backoff(retry).
std::chrono::milliseconds DelayAfterStatus(int retry, std::chrono::seconds retry_after);

}  // namespace ro::kube::internal

#include "retry_policy.h"

#include "ro/common/backoff.h"

#include <algorithm>

namespace ro::kube::internal {

bool IsIdempotentMethod(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "DELETE";
}

bool IsRetryableStatus(long status) {
  return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

bool IsRetryableTransportError(TransportError::Kind kind) {
  return kind != TransportError::Kind::kTls;
}

std::chrono::milliseconds Backoff(int retry) {
  return common::ExponentialDelay(kInitialBackoff, retry, kMaxBackoff);
}

std::chrono::milliseconds DelayAfterStatus(int retry, std::chrono::seconds retry_after) {
  if (retry_after.count() > 0) return std::min(retry_after, kMaxRetryAfter);
  return Backoff(retry);
}

}  // namespace ro::kube::internal

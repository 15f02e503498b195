#include "ro/kubesync/stage.h"

#include <algorithm>

#include "ro/common/backoff.h"
#include "ro/kube/errors.h"
#include "ro/kubesync/jetstream.h"
#include "ro/kubesync/retry.h"
#include "ro/plugins/s3_client.h"

namespace ro::kubesync {

std::string FailureReason(const std::exception& error) {
  if (const auto* api = dynamic_cast<const kube::ApiError*>(&error)) return std::string(kube::ToString(api->reason()));
  if (dynamic_cast<const kube::TransportError*>(&error) != nullptr) return "Transport";
  if (dynamic_cast<const NatsError*>(&error) != nullptr) return "Nats";
  if (dynamic_cast<const plugins::S3Error*>(&error) != nullptr) return "S3";
  return "Internal";
}

Outcome OutcomeOf(const std::exception& error) {
  if (const auto* nats = dynamic_cast<const NatsError*>(&error)) {
    return nats->retryable() ? Outcome::Nak() : Outcome::Term("Nats");
  }
  if (const auto* s3 = dynamic_cast<const plugins::S3Error*>(&error)) {
    return s3->retryable() ? Outcome::Nak() : Outcome::Term("S3");
  }
  if (kube::IsRetryable(error)) {
    const auto* api = dynamic_cast<const kube::ApiError*>(&error);
    return Outcome::Nak(api != nullptr ? api->retry_after() : std::chrono::seconds{0});
  }
  return Outcome::Term(FailureReason(error));
}

std::chrono::milliseconds NakDelay(std::uint64_t delivery_count) {
  constexpr std::chrono::milliseconds kFirst{250};
  const std::uint64_t doublings = delivery_count > 1 ? std::min<std::uint64_t>(delivery_count - 1, 64) : 0;
  return common::ExponentialDelay(kFirst, static_cast<std::int64_t>(doublings), kMaxRetryDelay);
}

std::chrono::milliseconds NakDelay(std::uint64_t delivery_count, std::chrono::seconds retry_after) {
  constexpr std::chrono::seconds kMaxRetryAfter{60};
  return std::max<std::chrono::milliseconds>(NakDelay(delivery_count), std::min(retry_after, kMaxRetryAfter));
}

}  // namespace ro::kubesync

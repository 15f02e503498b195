#include "ro/common/backoff.h"

#include <algorithm>

namespace ro::common {

Backoff::Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, double jitter)
    : initial_(initial), max_(max), jitter_(std::max(jitter, 0.0)) {}

std::chrono::milliseconds Backoff::Next() {
  const std::chrono::milliseconds base = ExponentialDelay(initial_, attempt_, max_);
  ++attempt_;
  if (jitter_ <= 0) return base;
  if (!rng_) rng_.emplace(std::random_device{}());
  std::uniform_real_distribution<double> stretch(1.0, 1.0 + jitter_);
  return std::chrono::milliseconds{static_cast<std::int64_t>(static_cast<double>(base.count()) * stretch(*rng_))};
}

}  // namespace ro::common

#include "token_bucket.h"

#include <algorithm>
#include <thread>

namespace ro::kube::internal {

TokenBucket::TokenBucket(double qps, int burst, Clock::time_point now)
    : qps_(qps), burst_(std::max(1, burst)), tokens_(burst_), last_(now) {}

std::chrono::nanoseconds TokenBucket::Reserve(Clock::time_point now) {
  if (qps_ <= 0) return std::chrono::nanoseconds{0};
  std::lock_guard lock(mu_);
  if (now > last_) {
    const std::chrono::duration<double> elapsed = now - last_;
    tokens_ = std::min(burst_, tokens_ + elapsed.count() * qps_);
    last_ = now;
  }
  tokens_ -= 1.0;
  if (tokens_ >= 0) return std::chrono::nanoseconds{0};
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(-tokens_ / qps_));
}

bool TokenBucket::TryTake(Clock::time_point now) {
  if (qps_ <= 0) return true;
  std::lock_guard lock(mu_);
  if (now > last_) {
    const std::chrono::duration<double> elapsed = now - last_;
    tokens_ = std::min(burst_, tokens_ + elapsed.count() * qps_);
    last_ = now;
  }
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

void TokenBucket::Acquire() {
  const std::chrono::nanoseconds wait = Reserve(Clock::now());
  if (wait.count() > 0) std::this_thread::sleep_for(wait);
}

}  // namespace ro::kube::internal

// Private to ro_kube: the one token bucket of the client (client-go's
// flowcontrol.NewTokenBucketRateLimiter): the transport's client-side rate limit
// (RestConfig::qps and ::burst), the workqueue's overall bucket (NewBucketRateLimiter)
// and the event recorder's per-object spam filter.
#pragma once

#include <chrono>
#include <mutex>

namespace ro::kube::internal {

// Thread-safe. `qps` tokens per second refill a bucket of `burst` tokens that starts
// full; every request takes one. A request that finds the bucket empty reserves the next
// token and waits for it, so waiters are served in arrival order and never spin.
class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;

  // qps <= 0 disables limiting (Reserve always returns 0). burst < 1 counts as 1.
  TokenBucket(double qps, int burst, Clock::time_point now);

  // Takes one token at time `now` and returns how long the caller must wait before it
  // may send (0 when a token was available). Pure apart from the bucket: no sleeping.
  std::chrono::nanoseconds Reserve(Clock::time_point now);

  // Reserve(Clock::now()) and sleep for the returned time.
  void Acquire();

  // Takes one token at time `now` if one is there (client-go TryAccept); false leaves the
  // bucket as it was (nothing is promised). Always true when limiting is disabled.
  bool TryTake(Clock::time_point now);

  bool enabled() const noexcept { return qps_ > 0; }

 private:
  // Constant after construction.
  const double qps_;
  const double burst_;

  std::mutex mu_;
  double tokens_;            // guarded by mu_; negative = tokens already promised
  Clock::time_point last_;   // guarded by mu_; when tokens_ was last brought up to date
};

}  // namespace ro::kube::internal

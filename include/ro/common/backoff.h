// The one exponential backoff of the code base: every retry, reconnect, NAK and restart
// delay is computed here (the client-go idea: wait.Backoff and the reflector's
// 800 ms -> 30 s; the workqueue's ItemExponentialFailureRateLimiter).
//
//   ExponentialDelay(initial, n, max)  = min(initial * 2^n, max), stateless
//   Backoff{initial, max, jitter}       = the same sequence, one step per Next(),
//                                         stretched by a random factor in [1, 1 + jitter)
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>

namespace ro::common {

// min(initial * 2^doublings, max), for any std::chrono duration. doublings <= 0 gives
// min(initial, max). Never overflows (stops doubling once max is reached).
template <class Rep, class Period>
constexpr std::chrono::duration<Rep, Period> ExponentialDelay(std::chrono::duration<Rep, Period> initial,
                                                              std::int64_t doublings,
                                                              std::chrono::duration<Rep, Period> max) {
  auto delay = initial < max ? initial : max;
  for (std::int64_t i = 0; i < doublings && delay < max; ++i) {
    delay = delay > max / 2 ? max : delay * 2;
  }
  return delay;
}

// Exponential backoff with optional jitter for one retry loop: the first Next() returns
// `initial`, each following one doubles, up to `max`; jitter spreads replicas that failed
// together (Next() * [1, 1 + jitter)). Reset() after a success. Not thread-safe (one per
// loop); owns its random engine (no global state), seeded at the first jittered Next():
// a Backoff made per operation that never fails costs no seeding (std::random_device).
class Backoff {
 public:
  // REQUIRES: 0 < initial <= max, jitter >= 0 (0: exact, deterministic delays).
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, double jitter = 0.5);

  // The delay before the next attempt, in milliseconds; advances the sequence.
  std::chrono::milliseconds Next();
  // Starts the sequence again at `initial`.
  void Reset() { attempt_ = 0; }
  // Next() calls since construction or the last Reset().
  int attempts() const { return attempt_; }

 private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds max_;
  double jitter_;
  int attempt_ = 0;
  std::optional<std::mt19937_64> rng_;  // seeded at first use
};

}  // namespace ro::common

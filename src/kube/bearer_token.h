// Private to ro_kube: the bearer token of a transport, from RestConfig::bearer_token or
// re-read from RestConfig::bearer_token_file at most once per kRereadInterval, because
// projected service-account tokens rotate (the kubelet refreshes the file well before
// the token expires; client-go re-reads it on the same one-minute cadence).
#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <string>

namespace ro::kube::internal {

// Thread-safe.
class BearerToken {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::minutes kRereadInterval{1};

  // `file` non-empty wins over `token`; it is read now and throws
  // ConfigError("bearer_token_file", ...) when unreadable or empty. `now` is the clock
  // (injected by tests).
  BearerToken(std::string token, std::string file,
              std::function<Clock::time_point()> now = &Clock::now);

  // "Authorization: Bearer <token>", or "" without a token. Re-reads the file when
  // kRereadInterval has passed since the last read; a failed re-read keeps the previous
  // token (logged), so a rotation in progress does not break every request.
  std::string Header();

 private:
  bool RereadLocked(std::string* error);

  // Constant after construction.
  const std::string file_;
  const std::function<Clock::time_point()> now_;

  std::mutex mu_;
  std::string header_;           // guarded by mu_
  Clock::time_point last_read_;  // guarded by mu_
};

}  // namespace ro::kube::internal

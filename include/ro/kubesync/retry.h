// Reconnect and retry loops of the Kubesync components (connecting to NATS, Redis and
// the clusters; re-listing after a failure), on the one backoff of ro/common/backoff.h.
#pragma once

#include <chrono>
#include <exception>
#include <functional>
#include <stop_token>

#include "ro/common/backoff.h"

namespace ro::kubesync {

// The longest wait between two attempts of any Kubesync retry loop, reflector or NAK,
// before jitter (a server's Retry-After may ask for more): what a fault leaves of
// replication lag after it ends is bounded by it (docs/faults.md: converged within 10 s
// of the fault ending). client-go's reflector waits up to 30 s; a DR pipeline spends one
// request every few seconds per GVR during an outage to keep its RPO short.
inline constexpr std::chrono::milliseconds kMaxRetryDelay{3'000};

// Calls `attempt` until it returns normally (true) or `stop` is requested (false).
// After each exception `on_error(e, wait)` is told (to log) and the loop waits `wait`
// from `backoff`, returning early on stop.
bool RetryUntilStopped(std::stop_token stop, common::Backoff& backoff, const std::function<void()>& attempt,
                       const std::function<void(const std::exception&, std::chrono::milliseconds)>& on_error);

// Sleeps `d` (on kube::DefaultClock()) or until `stop`; returns false when stopped.
bool SleepFor(std::chrono::nanoseconds d, std::stop_token stop);

}  // namespace ro::kubesync

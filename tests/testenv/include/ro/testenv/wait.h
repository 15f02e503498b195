// Polling with a deadline: the only way tests and the harness wait (never a bare sleep).
#pragma once

#include <chrono>
#include <functional>
#include <string_view>

namespace ro::testenv {

// Default poll interval of WaitFor: short enough that a test does not idle, long enough
// that a probe (an HTTP GET, a kubectl call) does not spin a core.
inline constexpr std::chrono::milliseconds kDefaultPollInterval{50};

// Calls `predicate` until it returns true, sleeping `poll` between calls. Throws
// WaitTimeout ("timed out after <timeout> ms waiting for <what>") when it is still false
// at the deadline. An exception thrown by `predicate` propagates at once.
void WaitFor(const std::function<bool()>& predicate, std::chrono::milliseconds timeout,
             std::string_view what, std::chrono::milliseconds poll = kDefaultPollInterval);

}  // namespace ro::testenv

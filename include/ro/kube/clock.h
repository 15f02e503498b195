// Time behind one narrow interface, so every loop of src/kube (reflector backoff,
// informer resync, workqueue delays, leader-election renewals, event retries) can be
// unit-tested with FakeClock without sleeping. Modelled on k8s.io/utils/clock
// (Clock / fake.FakeClock); the difference is that waiting is expressed as "wait on my
// condition variable until a deadline", which is what our C++ loops need.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ro::kube {

// Thread-safe. Implementations: RealClock (process clocks) and FakeClock (tests).
class Clock {
 public:
  using WallTime = std::chrono::system_clock::time_point;
  using SteadyTime = std::chrono::steady_clock::time_point;

  virtual ~Clock() = default;

  // Wall-clock time, for timestamps written into objects (Lease renewTime, Event
  // lastTimestamp). May jump; never use it to measure intervals.
  virtual WallTime Now() const = 0;
  // Monotonic time, for deadlines and intervals.
  virtual SteadyTime SteadyNow() const = 0;

  // Waits on `cv` (which the caller notifies when its state changes) until `pred()`
  // holds, `SteadyNow() >= deadline`, or `stop` is requested, whichever comes first.
  // REQUIRES: `lock` is locked and guards everything `pred` reads. `pred` is evaluated
  // with `lock` held and must not call this clock (FakeClock holds its own mutex then).
  // Returns pred() at the end. SteadyTime::max() waits without a deadline.
  virtual bool WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable_any& cv,
                         SteadyTime deadline, std::stop_token stop,
                         const std::function<bool()>& pred) = 0;

  // Blocks until `deadline` or until `stop` is requested. Returns true when the
  // deadline was reached, false when stopped first.
  bool SleepUntil(SteadyTime deadline, std::stop_token stop);
  bool SleepFor(std::chrono::nanoseconds duration, std::stop_token stop) {
    return SleepUntil(SteadyNow() + duration, std::move(stop));
  }
};

// The process clocks (std::chrono::system_clock / steady_clock). Stateless.
class RealClock final : public Clock {
 public:
  WallTime Now() const override { return std::chrono::system_clock::now(); }
  SteadyTime SteadyNow() const override { return std::chrono::steady_clock::now(); }
  bool WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable_any& cv,
                 SteadyTime deadline, std::stop_token stop,
                 const std::function<bool()>& pred) override;
};

// A shared RealClock for production call sites that take a `Clock&`. It has no state,
// so sharing it is not global mutable state.
Clock& DefaultClock();

// A clock that moves only when a test calls Advance()/SetTime(). Threads blocked in
// WaitUntil/SleepUntil wake when the time passes their deadline. Thread-safe.
class FakeClock final : public Clock {
 public:
  // Starts at the given wall time (default 2024-01-01T00:00:00Z) and an arbitrary steady
  // time; both advance together.
  explicit FakeClock(WallTime start = WallTime{std::chrono::seconds{1'704'067'200}});

  WallTime Now() const override;
  SteadyTime SteadyNow() const override;
  bool WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable_any& cv,
                 SteadyTime deadline, std::stop_token stop,
                 const std::function<bool()>& pred) override;

  // Moves both clocks forward by `d` (>= 0) and wakes every waiter.
  void Advance(std::chrono::nanoseconds d);
  // Number of threads blocked in WaitUntil/SleepUntil of this clock whose deadline is
  // still ahead (threads whose deadline has passed are waking up and not counted).
  std::size_t Waiters() const;
  // Test helper: blocks (on real time, without polling) until at least `n` threads are
  // waiting with a deadline still ahead, so that a following Advance() is seen by them.
  // Returns false when `real_timeout` passed first.
  bool BlockUntilWaiters(std::size_t n,
                         std::chrono::milliseconds real_timeout = std::chrono::seconds{10}) const;
  // Earliest deadline still ahead among current waiters (SteadyTime::max() when none, or
  // when all wait without a deadline). Lets a test advance exactly to the next wake-up.
  SteadyTime NextDeadline() const;

 private:
  struct Waiter {
    std::condition_variable_any* cv;
    SteadyTime deadline;
  };

  std::size_t PendingWaitersLocked() const;

  mutable std::mutex mu_;
  mutable std::condition_variable waiters_changed_;  // for BlockUntilWaiters
  // Guarded by mu_.
  WallTime wall_;
  SteadyTime steady_;
  std::vector<Waiter> waiters_;
};

}  // namespace ro::kube

#include "ro/kube/clock.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <stdexcept>

namespace ro::kube {
namespace {

// Locks the caller's mutex and FakeClock's mutex as one lockable, in that order.
// condition_variable_any releases a lockable atomically with respect to its notify, so
// a thread that checked "time < deadline" while holding both cannot miss the notify of
// an Advance(), which needs the clock's mutex to move time.
class BothLocks {
 public:
  BothLocks(std::unique_lock<std::mutex>& user, std::unique_lock<std::mutex>& clock)
      : user_(user), clock_(clock) {}
  void lock() {
    user_.lock();
    clock_.lock();
  }
  void unlock() {
    clock_.unlock();
    user_.unlock();
  }

 private:
  std::unique_lock<std::mutex>& user_;
  std::unique_lock<std::mutex>& clock_;
};

}  // namespace

bool Clock::SleepUntil(SteadyTime deadline, std::stop_token stop) {
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock lock(mu);
  WaitUntil(lock, cv, deadline, stop, [] { return false; });
  return !stop.stop_requested();
}

bool RealClock::WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable_any& cv,
                          SteadyTime deadline, std::stop_token stop,
                          const std::function<bool()>& pred) {
  if (deadline == SteadyTime::max()) {
    // wait_until(max) would overflow converting to the OS clock's timespec.
    cv.wait(lock, stop, pred);
  } else {
    cv.wait_until(lock, stop, deadline, pred);
  }
  return pred();
}

Clock& DefaultClock() {
  static RealClock clock;
  return clock;
}

FakeClock::FakeClock(WallTime start) : wall_(start), steady_(std::chrono::hours{24}) {}

Clock::WallTime FakeClock::Now() const {
  std::lock_guard lock(mu_);
  return wall_;
}

Clock::SteadyTime FakeClock::SteadyNow() const {
  std::lock_guard lock(mu_);
  return steady_;
}

bool FakeClock::WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable_any& cv,
                          SteadyTime deadline, std::stop_token stop,
                          const std::function<bool()>& pred) {
  std::unique_lock clock_lock(mu_);
  waiters_.push_back(Waiter{&cv, deadline});
  waiters_changed_.notify_all();
  BothLocks both(lock, clock_lock);
  cv.wait(both, stop, [&] { return pred() || steady_ >= deadline; });
  const auto it = std::find_if(waiters_.begin(), waiters_.end(), [&](const Waiter& w) {
    return w.cv == &cv && w.deadline == deadline;
  });
  waiters_.erase(it);
  waiters_changed_.notify_all();
  clock_lock.unlock();
  return pred();
}

void FakeClock::Advance(std::chrono::nanoseconds d) {
  std::lock_guard lock(mu_);
  const auto step = std::max(d, std::chrono::nanoseconds{0});
  wall_ += std::chrono::duration_cast<WallTime::duration>(step);
  steady_ += step;
  for (const Waiter& w : waiters_) w.cv->notify_all();
  waiters_changed_.notify_all();
}

std::size_t FakeClock::PendingWaitersLocked() const {
  return static_cast<std::size_t>(std::count_if(
      waiters_.begin(), waiters_.end(), [&](const Waiter& w) { return w.deadline > steady_; }));
}

std::size_t FakeClock::Waiters() const {
  std::lock_guard lock(mu_);
  return PendingWaitersLocked();
}

bool FakeClock::BlockUntilWaiters(std::size_t n, std::chrono::milliseconds real_timeout) const {
  std::unique_lock lock(mu_);
  return waiters_changed_.wait_for(lock, real_timeout,
                                  [&] { return PendingWaitersLocked() >= n; });
}

Clock::SteadyTime FakeClock::NextDeadline() const {
  std::lock_guard lock(mu_);
  SteadyTime next = SteadyTime::max();
  for (const Waiter& w : waiters_) {
    if (w.deadline > steady_) next = std::min(next, w.deadline);
  }
  return next;
}

}  // namespace ro::kube

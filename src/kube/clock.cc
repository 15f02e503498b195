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

std::string FormatRfc3339(Clock::WallTime t, int fraction_digits) {
  using std::chrono::duration_cast;
  const auto since_epoch = t.time_since_epoch();
  auto secs = duration_cast<std::chrono::seconds>(since_epoch);
  if (secs > since_epoch) secs -= std::chrono::seconds{1};  // floor for times before 1970
  const auto nanos = duration_cast<std::chrono::nanoseconds>(since_epoch - secs).count();
  const std::time_t tt = static_cast<std::time_t>(secs.count());
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out(buf, n);
  const int digits = std::clamp(fraction_digits, 0, 9);
  if (digits > 0) {
    char frac[16];
    std::snprintf(frac, sizeof frac, ".%09lld", static_cast<long long>(nanos));
    out.append(frac, static_cast<std::size_t>(digits) + 1);
  }
  out += 'Z';
  return out;
}

Clock::WallTime ParseRfc3339(std::string_view text) {
  const auto fail = [&]() -> std::invalid_argument {
    return std::invalid_argument("not an RFC 3339 time: \"" + std::string(text) + "\"");
  };
  // YYYY-MM-DDTHH:MM:SS = 19 characters, then [.fraction] and Z or +hh:mm / -hh:mm.
  constexpr std::size_t kDateTimeLength = 19;
  if (text.size() < kDateTimeLength + 1) throw fail();
  std::tm tm{};
  const std::string head(text.substr(0, kDateTimeLength));
  const char* end = strptime(head.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (end == nullptr || *end != '\0') {
    // Also accept a lower-case 't' separator, as RFC 3339 allows.
    std::string alt = head;
    if (alt.size() > 10 && alt[10] == 't') alt[10] = 'T';
    end = strptime(alt.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
    if (end == nullptr || *end != '\0') throw fail();
  }
  std::size_t pos = kDateTimeLength;
  int64_t nanos = 0;
  if (text[pos] == '.') {
    ++pos;
    int digits = 0;
    while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
      if (digits < 9) {
        nanos = nanos * 10 + (text[pos] - '0');
        ++digits;
      }
      ++pos;
    }
    if (digits == 0) throw fail();
    for (; digits < 9; ++digits) nanos *= 10;
  }
  if (pos >= text.size()) throw fail();
  int64_t offset_s = 0;
  const char zone = text[pos];
  if (zone == 'Z' || zone == 'z') {
    ++pos;
  } else if ((zone == '+' || zone == '-') && text.size() - pos == 6 && text[pos + 3] == ':') {
    const auto two = [&](std::size_t i) {
      if (!std::isdigit(static_cast<unsigned char>(text[i])) ||
          !std::isdigit(static_cast<unsigned char>(text[i + 1]))) {
        throw fail();
      }
      return (text[i] - '0') * 10 + (text[i + 1] - '0');
    };
    offset_s = (two(pos + 1) * 3600 + two(pos + 4) * 60) * (zone == '+' ? 1 : -1);
    pos += 6;
  } else {
    throw fail();
  }
  if (pos != text.size()) throw fail();
  const std::time_t utc = timegm(&tm) - offset_s;
  return Clock::WallTime{std::chrono::seconds{utc}} +
         std::chrono::duration_cast<Clock::WallTime::duration>(std::chrono::nanoseconds{nanos});
}

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

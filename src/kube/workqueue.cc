#include "ro/kube/workqueue.h"

#include "ro/common/backoff.h"
#include "token_bucket.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

namespace ro::kube {

WorkQueue::WorkQueue(Clock& clock) : clock_(clock) {}

WorkQueue::~WorkQueue() = default;

void WorkQueue::Add(const std::string& item) {
  std::lock_guard lock(mu_);
  AddLocked(item);
}

void WorkQueue::AddLocked(const std::string& item) {
  if (shutting_down_ || dirty_.contains(item)) return;
  dirty_.insert(item);
  if (metrics_ != nullptr) {
    metrics_->Added();
    added_at_.emplace(item, clock_.SteadyNow());
  }
  if (processing_.contains(item)) return;  // Done() re-queues it
  queue_.push_back(item);
  cv_.notify_all();
}

void WorkQueue::AddAfter(const std::string& item, std::chrono::nanoseconds delay) {
  std::lock_guard lock(mu_);
  if (shutting_down_) return;
  if (delay.count() <= 0) {
    AddLocked(item);
    return;
  }
  const Clock::SteadyTime ready_at = clock_.SteadyNow() + delay;
  if (const auto it = delayed_ready_at_.find(item); it != delayed_ready_at_.end()) {
    if (it->second <= ready_at) return;
    const auto [first, last] = delayed_.equal_range(it->second);
    for (auto d = first; d != last; ++d) {
      if (d->second == item) {
        delayed_.erase(d);
        break;
      }
    }
    it->second = ready_at;
  } else {
    delayed_ready_at_.emplace(item, ready_at);
  }
  delayed_.emplace(ready_at, item);
  ++delayed_generation_;
  cv_.notify_all();
}

void WorkQueue::PromoteReadyLocked() {
  if (delayed_.empty()) return;
  const Clock::SteadyTime now = clock_.SteadyNow();
  while (!delayed_.empty() && delayed_.begin()->first <= now) {
    std::string item = std::move(delayed_.begin()->second);
    delayed_.erase(delayed_.begin());
    delayed_ready_at_.erase(item);
    AddLocked(item);
  }
}

std::optional<std::string> WorkQueue::Get() {
  std::unique_lock lock(mu_);
  while (true) {
    PromoteReadyLocked();
    if (!queue_.empty()) break;
    if (shutting_down_) return std::nullopt;
    const Clock::SteadyTime deadline =
        delayed_.empty() ? Clock::SteadyTime::max() : delayed_.begin()->first;
    const uint64_t generation = delayed_generation_;
    clock_.WaitUntil(lock, cv_, deadline, std::stop_token{}, [&] {
      return !queue_.empty() || shutting_down_ || delayed_generation_ != generation;
    });
  }
  std::string item = std::move(queue_.front());
  queue_.pop_front();
  processing_.insert(item);
  dirty_.erase(item);
  if (metrics_ != nullptr) {
    if (const auto added = added_at_.find(item); added != added_at_.end()) {
      metrics_->Started(clock_.SteadyNow() - added->second);
      added_at_.erase(added);
    }
  }
  return item;
}

void WorkQueue::Done(const std::string& item) {
  std::lock_guard lock(mu_);
  processing_.erase(item);
  if (dirty_.contains(item)) queue_.push_back(item);
  cv_.notify_all();
}

void WorkQueue::SetMetrics(WorkQueueMetrics* metrics) {
  std::lock_guard lock(mu_);
  metrics_ = metrics;
  added_at_.clear();
}

std::size_t WorkQueue::Len() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

std::size_t WorkQueue::DelayedLen() const {
  std::lock_guard lock(mu_);
  return delayed_.size();
}

void WorkQueue::ShutDown() {
  std::lock_guard lock(mu_);
  shutting_down_ = true;
  delayed_.clear();
  delayed_ready_at_.clear();
  cv_.notify_all();
}

void WorkQueue::ShutDownWithDrain() {
  std::unique_lock lock(mu_);
  shutting_down_ = true;
  delayed_.clear();
  delayed_ready_at_.clear();
  cv_.notify_all();
  cv_.wait(lock, [&] { return processing_.empty(); });
}

bool WorkQueue::ShuttingDown() const {
  std::lock_guard lock(mu_);
  return shutting_down_;
}

namespace {

class ItemExponentialRateLimiter final : public RateLimiter {
 public:
  ItemExponentialRateLimiter(std::chrono::nanoseconds base, std::chrono::nanoseconds max)
      : base_(base), max_(max) {}

  std::chrono::nanoseconds When(const std::string& item) override {
    std::lock_guard lock(mu_);
    const int exp = failures_[item]++;
    return common::ExponentialDelay(base_, exp, max_);
  }

  void Forget(const std::string& item) override {
    std::lock_guard lock(mu_);
    failures_.erase(item);
  }

  int NumRequeues(const std::string& item) override {
    std::lock_guard lock(mu_);
    const auto it = failures_.find(item);
    return it == failures_.end() ? 0 : it->second;
  }

 private:
  const std::chrono::nanoseconds base_;
  const std::chrono::nanoseconds max_;
  std::mutex mu_;
  std::unordered_map<std::string, int> failures_;  // guarded by mu_
};

// golang.org/x/time/rate's Limiter.Reserve(): tokens may go negative, the delay is the
// time until the reserved token has been refilled (internal::TokenBucket::Reserve).
class BucketRateLimiter final : public RateLimiter {
 public:
  BucketRateLimiter(double qps, int burst, Clock& clock) : clock_(clock), bucket_(qps, burst, clock.SteadyNow()) {}

  std::chrono::nanoseconds When(const std::string& /*item*/) override { return bucket_.Reserve(clock_.SteadyNow()); }
  void Forget(const std::string& /*item*/) override {}
  int NumRequeues(const std::string& /*item*/) override { return 0; }

 private:
  Clock& clock_;
  internal::TokenBucket bucket_;  // thread-safe itself
};

class MaxOfRateLimiter final : public RateLimiter {
 public:
  explicit MaxOfRateLimiter(std::vector<std::unique_ptr<RateLimiter>> limiters)
      : limiters_(std::move(limiters)) {}

  std::chrono::nanoseconds When(const std::string& item) override {
    std::chrono::nanoseconds longest{0};
    for (const auto& l : limiters_) longest = std::max(longest, l->When(item));
    return longest;
  }
  void Forget(const std::string& item) override {
    for (const auto& l : limiters_) l->Forget(item);
  }
  int NumRequeues(const std::string& item) override {
    int most = 0;
    for (const auto& l : limiters_) most = std::max(most, l->NumRequeues(item));
    return most;
  }

 private:
  const std::vector<std::unique_ptr<RateLimiter>> limiters_;
};

}  // namespace

std::unique_ptr<RateLimiter> NewItemExponentialRateLimiter(std::chrono::nanoseconds base_delay,
                                                           std::chrono::nanoseconds max_delay) {
  return std::make_unique<ItemExponentialRateLimiter>(base_delay, max_delay);
}

std::unique_ptr<RateLimiter> NewBucketRateLimiter(double qps, int burst, Clock& clock) {
  if (qps <= 0 || burst <= 0) {
    throw std::invalid_argument("NewBucketRateLimiter: qps and burst must be positive");
  }
  return std::make_unique<BucketRateLimiter>(qps, burst, clock);
}

std::unique_ptr<RateLimiter> NewMaxOfRateLimiter(std::vector<std::unique_ptr<RateLimiter>> limiters) {
  return std::make_unique<MaxOfRateLimiter>(std::move(limiters));
}

std::unique_ptr<RateLimiter> NewDefaultControllerRateLimiter(Clock& clock) {
  // Values of client-go's workqueue.DefaultControllerRateLimiter (see the header).
  constexpr auto kBaseDelay = std::chrono::milliseconds{5};
  constexpr auto kMaxDelay = std::chrono::seconds{1000};
  constexpr double kQps = 10.0;
  constexpr int kBurst = 100;
  std::vector<std::unique_ptr<RateLimiter>> limiters;
  limiters.push_back(NewItemExponentialRateLimiter(kBaseDelay, kMaxDelay));
  limiters.push_back(NewBucketRateLimiter(kQps, kBurst, clock));
  return NewMaxOfRateLimiter(std::move(limiters));
}

RateLimitingQueue::RateLimitingQueue(std::unique_ptr<RateLimiter> limiter, Clock& clock)
    : WorkQueue(clock), limiter_(std::move(limiter)) {}

void RateLimitingQueue::AddRateLimited(const std::string& item) {
  AddAfter(item, limiter_->When(item));
}

void RateLimitingQueue::Forget(const std::string& item) { limiter_->Forget(item); }

int RateLimitingQueue::NumRequeues(const std::string& item) { return limiter_->NumRequeues(item); }

}  // namespace ro::kube

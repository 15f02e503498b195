// Work queues for controllers (client-go util/workqueue), in three layers:
//   WorkQueue           de-duplicating FIFO with processing tracking, plus AddAfter
//   RateLimiter         how long an item waits before its next retry
//   RateLimitingQueue   WorkQueue + RateLimiter: AddRateLimited / Forget / NumRequeues
//
// Items are std::string keys, normally ObjectKey::ToString() ("ns/name"): a reconcile
// takes a key and reads the current state, never the event. One concrete (non-template)
// type keeps the implementation out of the header and is all our controllers need.
//
// Guarantees (as client-go):
//   - an item added several times before a worker picks it up is processed once;
//   - an item is processed by at most one worker at a time: re-added while processing,
//     it is queued again only when the worker calls Done();
//   - Get() blocks until an item is ready or the queue shuts down.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "ro/kube/clock.h"

namespace ro::kube {

// What a WorkQueue reports (client-go's workqueue MetricsProvider, for
// workqueue_adds_total and workqueue_queue_duration_seconds). Called with the queue's
// lock held: implementations must be quick and must not call back into the queue.
class WorkQueueMetrics {
 public:
  virtual ~WorkQueueMetrics() = default;
  // An item was queued that was not waiting already (as client-go counts adds).
  virtual void Added() = 0;
  // An item was handed out by Get() after waiting `waited` since it was added.
  virtual void Started(std::chrono::nanoseconds waited) = 0;
};

// Thread-safe: any number of producers and workers.
class WorkQueue {
 public:
  // `clock` (for AddAfter) must outlive the queue.
  explicit WorkQueue(Clock& clock = DefaultClock());
  virtual ~WorkQueue();
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  // Queues `item` unless it is already waiting. Ignored after ShutDown().
  void Add(const std::string& item);
  // Queues `item` after `delay` (<= 0: now). When the item is already waiting for a
  // delay, the earlier ready time wins. Delayed items are dropped by ShutDown().
  void AddAfter(const std::string& item, std::chrono::nanoseconds delay);
  // Blocks until an item is ready and returns it, marking it as processing; the caller
  // must call Done(item) afterwards. Returns nullopt once the queue is shut down and no
  // queued item remains (items queued before ShutDown() are still handed out).
  std::optional<std::string> Get();
  // Marks `item` processed; re-queues it if it was added while processing.
  void Done(const std::string& item);

  // Items ready to be handed out (not counting delayed or processing ones).
  std::size_t Len() const;
  // Items waiting for their AddAfter delay.
  std::size_t DelayedLen() const;

  // Stops accepting items and wakes every Get() waiter; Get() drains what is queued,
  // then returns nullopt.
  void ShutDown();
  // ShutDown(), then blocks until no item is being processed (every Get() matched by
  // its Done()). As in client-go it does not wait for items still queued (workers keep
  // getting them from Get()). Do not call it from a worker: it would wait for itself.
  void ShutDownWithDrain();
  bool ShuttingDown() const;

  // Reports adds and queue latency to `metrics` (nullptr: none), which must outlive the
  // queue.
  void SetMetrics(WorkQueueMetrics* metrics);

 private:
  void AddLocked(const std::string& item);
  // Moves delayed items whose time has come into the queue. REQUIRES: mu_ held.
  void PromoteReadyLocked();

  Clock& clock_;  // constant after construction

  mutable std::mutex mu_;
  std::condition_variable_any cv_;  // queue_, delayed_ or processing_ changed, or shutdown
  // Guarded by mu_.
  std::deque<std::string> queue_;               // ready, in order
  std::unordered_set<std::string> dirty_;       // needs processing (queued or re-added)
  std::unordered_set<std::string> processing_;  // handed out, not Done() yet
  std::multimap<Clock::SteadyTime, std::string> delayed_;                    // by ready time
  std::unordered_map<std::string, Clock::SteadyTime> delayed_ready_at_;      // item -> time
  uint64_t delayed_generation_ = 0;  // bumped by AddAfter, so Get() re-reads the deadline
  bool shutting_down_ = false;
  WorkQueueMetrics* metrics_ = nullptr;
  std::unordered_map<std::string, Clock::SteadyTime> added_at_;  // with metrics_: dirty items
};

// Decides the delay before an item's next retry. Thread-safe.
class RateLimiter {
 public:
  virtual ~RateLimiter() = default;
  // Delay before `item` may be processed again; records one more failure of it.
  virtual std::chrono::nanoseconds When(const std::string& item) = 0;
  // Forgets `item`'s failures (after it was processed successfully).
  virtual void Forget(const std::string& item) = 0;
  // How many failures of `item` are recorded.
  virtual int NumRequeues(const std::string& item) = 0;
};

// Per-item exponential backoff: base * 2^failures, capped at max_delay.
std::unique_ptr<RateLimiter> NewItemExponentialRateLimiter(std::chrono::nanoseconds base_delay,
                                                           std::chrono::nanoseconds max_delay);
// One token bucket shared by all items: `qps` tokens/s refill, `burst` capacity; each
// When() takes a token and returns how long until that token exists. Forget is a no-op.
std::unique_ptr<RateLimiter> NewBucketRateLimiter(double qps, int burst,
                                                  Clock& clock = DefaultClock());
// The longest delay of all `limiters`.
std::unique_ptr<RateLimiter> NewMaxOfRateLimiter(std::vector<std::unique_ptr<RateLimiter>> limiters);
// client-go's DefaultControllerRateLimiter: max of per-item exponential 5 ms -> 1000 s
// (a failing item retries fast at first, then settles at ~17 min) and an overall bucket
// of 10 qps with burst 100 (a storm of failures cannot exceed 10 retries/s overall once
// the first 100 are spent).
std::unique_ptr<RateLimiter> NewDefaultControllerRateLimiter(Clock& clock = DefaultClock());

// WorkQueue + RateLimiter (client-go RateLimitingInterface). Thread-safe.
class RateLimitingQueue : public WorkQueue {
 public:
  // `limiter` is owned; `clock` must outlive the queue.
  explicit RateLimitingQueue(std::unique_ptr<RateLimiter> limiter, Clock& clock = DefaultClock());

  // AddAfter(item, limiter.When(item)).
  void AddRateLimited(const std::string& item);
  // Clears the item's failure history (call after a successful reconcile). Does not
  // remove the item from the queue.
  void Forget(const std::string& item);
  int NumRequeues(const std::string& item);

 private:
  std::unique_ptr<RateLimiter> limiter_;
};

}  // namespace ro::kube

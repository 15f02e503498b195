// Records core/v1 Events about objects (client-go tools/record), as `kubectl describe`
// shows them.
//
// Recording never blocks and never throws into the caller (a reconcile): Event() puts
// the event on a bounded queue; one sender thread writes it to the apiserver. When the
// queue is full the event is dropped and a warning logged. Failures are logged; errors
// worth retrying (transport, 429, 5xx) are retried a few times.
//
// Repeats are aggregated as client-go's EventCorrelator does for identical events: the
// same (involved object, type, reason, message, source) seen again patches the existing
// Event's count and lastTimestamp instead of creating a new Event. When the Event is gone
// (Events expire after the apiserver's --event-ttl, 1 h by default) a new one is created.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "ro/kube/clock.h"

namespace ro::kube {

class DynamicClient;

// Where Events are written (client-go record.EventSink). Called from one thread.
class EventSink {
 public:
  virtual ~EventSink() = default;
  // POST of a new Event in `ns`; returns the stored Event. Throws ApiError /
  // TransportError.
  virtual nlohmann::json Create(const std::string& ns, const nlohmann::json& event) = 0;
  // JSON merge patch (RFC 7386) of Event `ns`/`name`; returns the stored Event. Throws
  // ApiError (kNotFound when it expired) / TransportError.
  virtual nlohmann::json Patch(const std::string& ns, const std::string& name,
                               const nlohmann::json& merge_patch) = 0;
};

// Events through `client` (which must outlive the sink).
std::unique_ptr<EventSink> NewEventSink(DynamicClient& client);

enum class EventType { kNormal, kWarning };

struct EventRecorderOptions {
  // source.component (and reportingComponent): who reports, e.g.
  // "kubernetes-cluster-controller". Required.
  std::string component;
  // source.host (and reportingInstance), e.g. the pod name. Optional.
  std::string host;
  // Events waiting to be sent; more are dropped. client-go's broadcaster queue length.
  std::size_t queue_capacity = 1000;
  // Distinct (object, reason, message, ...) remembered for aggregation, least recently
  // used evicted first. client-go's maxLruCacheEntries.
  std::size_t aggregation_cache_size = 4096;
  // Attempts per event for retryable errors, and the wait between them. client-go
  // (maxTriesPerEvent 12, sleepDuration 10 s) rides out a 2-minute apiserver outage;
  // meanwhile later events queue up (and drop once the queue is full).
  int max_attempts = 12;
  std::chrono::milliseconds retry_interval{10'000};
  // client-go's EventSourceObjectSpamFilter: per involved object (kind, namespace, name,
  // uid, apiVersion), a bucket of `spam_burst` events refilled at one per `spam_refill`
  // (client-go: 25, one per 5 minutes). Events beyond it are dropped before anything is
  // sent, repeats too (Filtered() counts them; logged at debug), so a storm of failures
  // about one object cannot flood the apiserver. 0 = no filter.
  int spam_burst = 25;
  std::chrono::seconds spam_refill{300};
};


// Thread-safe: call Event() from any thread.
class EventRecorder {
 public:
  // `sink` is owned; `clock` must outlive the recorder. Starts the sender thread.
  // Throws std::invalid_argument when options.component is empty or a size/attempt
  // count is 0.
  EventRecorder(std::unique_ptr<EventSink> sink, EventRecorderOptions options,
                Clock& clock = DefaultClock());
  // Stops the sender; events still queued are dropped (logged).
  ~EventRecorder();
  EventRecorder(const EventRecorder&) = delete;
  EventRecorder& operator=(const EventRecorder&) = delete;

  // Records an event about `object` (any Kubernetes object: apiVersion, kind and
  // metadata namespace/name/uid/resourceVersion are referenced as involvedObject).
  // `reason` is a short UpperCamelCase cause ("SyncFailed"); `message` is for humans.
  // Never throws, never blocks on the network.
  void Event(const nlohmann::json& object, EventType type, std::string_view reason,
             std::string_view message) noexcept;

  // Blocks until every queued event has been sent (or given up), `timeout` passes
  // (measured on the recorder's clock) or `stop` is requested. Returns true when idle.
  bool WaitForIdle(std::chrono::milliseconds timeout, std::stop_token stop = {});
  // Events dropped because the queue was full, since construction.
  uint64_t Dropped() const;
  // Events dropped by the spam filter (EventRecorderOptions::spam_burst), since
  // construction.
  uint64_t Filtered() const;

 private:
  struct Pending;
  struct Aggregate;

  void SendLoop(std::stop_token stop);
  void Send(const Pending& p, std::stop_token stop);
  // The spam filter: whether an event about `key` may go out now. REQUIRES: mu_ held.
  bool SpamAllowedLocked(const std::string& key);
  // Runs `call`, retrying retryable errors. Returns false (logged) when it gave up.
  template <typename Call>
  bool WithRetries(const Pending& p, std::stop_token stop, const Call& call);

  // Constant after construction.
  const std::unique_ptr<EventSink> sink_;
  const EventRecorderOptions options_;
  Clock& clock_;

  // Owned by the sender thread: the aggregation cache (LRU).
  std::list<std::string> lru_;  // most recently used first
  std::unordered_map<std::string, std::unique_ptr<Aggregate>> aggregates_;

  mutable std::mutex mu_;
  std::condition_variable_any cv_;  // queue_ changed or sender went idle
  // Guarded by mu_.
  std::deque<std::unique_ptr<Pending>> queue_;
  bool sending_ = false;  // the sender holds an event taken from queue_
  uint64_t dropped_ = 0;
  uint64_t filtered_ = 0;
  int64_t last_name_nanos_ = 0;  // Event names must be unique per recorder
  // The spam filter's buckets by involved object, least recently used evicted first
  // (at most aggregation_cache_size).
  struct SpamBucket;
  std::list<std::string> spam_lru_;
  std::unordered_map<std::string, std::unique_ptr<SpamBucket>> spam_;

  std::jthread sender_;  // last: started after everything above exists
};

}  // namespace ro::kube

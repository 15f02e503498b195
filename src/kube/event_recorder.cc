#include "ro/kube/event_recorder.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "ro/common/log.h"
#include "ro/common/object_meta.h"
#include "ro/common/time.h"
#include "ro/kube/client.h"
#include "ro/kube/errors.h"
#include "ro/kube/gvr.h"
#include "token_bucket.h"

namespace ro::kube {
namespace {

const GroupVersionResource& EventGvr() {
  static const GroupVersionResource gvr{"", "v1", "events"};
  return gvr;
}

class DynamicEventSink final : public EventSink {
 public:
  explicit DynamicEventSink(DynamicClient& client) : client_(client) {}

  nlohmann::json Create(const std::string& ns, const nlohmann::json& event) override {
    return client_.Create(EventGvr(), ns, event);
  }
  nlohmann::json Patch(const std::string& ns, const std::string& name,
                       const nlohmann::json& merge_patch) override {
    return client_.Patch(EventGvr(), ns, name, PatchType::kMergePatch, merge_patch.dump());
  }

 private:
  DynamicClient& client_;
};

}  // namespace

std::unique_ptr<EventSink> NewEventSink(DynamicClient& client) {
  return std::make_unique<DynamicEventSink>(client);
}

// One Event() call waiting to be sent.
struct EventRecorder::Pending {
  nlohmann::json involved;  // involvedObject
  std::string ns;           // namespace of the Event
  std::string name;         // name to use if a new Event is created
  std::string type;         // "Normal" / "Warning"
  std::string reason;
  std::string message;
  Clock::WallTime time;
};

// An Event already stored, for aggregation of repeats.
struct EventRecorder::Aggregate {
  std::string ns;
  std::string name;
  int64_t count = 0;
  std::string first_timestamp;
  std::list<std::string>::iterator lru_position;
};

EventRecorder::EventRecorder(std::unique_ptr<EventSink> sink, EventRecorderOptions options,
                             Clock& clock)
    : sink_(std::move(sink)), options_(std::move(options)), clock_(clock) {
  if (!sink_) throw std::invalid_argument("EventRecorder: sink is required");
  if (options_.component.empty()) {
    throw std::invalid_argument("EventRecorder: options.component is required");
  }
  if (options_.queue_capacity == 0 || options_.aggregation_cache_size == 0 ||
      options_.max_attempts < 1 || options_.spam_burst < 0 ||
      (options_.spam_burst > 0 && options_.spam_refill.count() <= 0)) {
    throw std::invalid_argument(
        "EventRecorder: queue_capacity, aggregation_cache_size and max_attempts must be >= 1, "
        "spam_burst >= 0 and spam_refill > 0");
  }
  sender_ = std::jthread([this](std::stop_token stop) { SendLoop(stop); });
}

EventRecorder::~EventRecorder() {
  sender_.request_stop();
  if (sender_.joinable()) sender_.join();
}

void EventRecorder::Event(const nlohmann::json& object, EventType type, std::string_view reason,
                          std::string_view message) noexcept {
  try {
    auto p = std::make_unique<Pending>();
    const nlohmann::json empty = nlohmann::json::object();
    const auto meta_it = object.is_object() ? object.find("metadata") : object.end();
    const nlohmann::json& meta =
        object.is_object() && meta_it != object.end() && meta_it->is_object() ? *meta_it : empty;
    p->involved = nlohmann::json::object();
    const auto put = [&](const char* field, std::string value) {
      if (!value.empty()) p->involved[field] = std::move(value);
    };
    put("apiVersion", object.is_object() ? common::StringMember(object, "apiVersion") : "");
    put("kind", object.is_object() ? common::StringMember(object, "kind") : "");
    put("namespace", common::StringMember(meta, "namespace"));
    put("name", common::StringMember(meta, "name"));
    put("uid", common::StringMember(meta, "uid"));
    put("resourceVersion", common::StringMember(meta, "resourceVersion"));
    // Events about cluster-scoped objects live in "default", as client-go puts them.
    p->ns = common::StringMember(meta, "namespace");
    if (p->ns.empty()) p->ns = "default";
    p->type = type == EventType::kWarning ? "Warning" : "Normal";
    p->reason = std::string(reason);
    p->message = std::string(message);
    p->time = clock_.Now();
    const std::string object_name = common::StringMember(meta, "name");
    const int64_t now_nanos =
        std::chrono::duration_cast<std::chrono::nanoseconds>(p->time.time_since_epoch()).count();

    std::lock_guard lock(mu_);
    if (options_.spam_burst > 0) {
      std::string key;
      for (const char* field : {"apiVersion", "kind", "namespace", "name", "uid"}) {
        key += p->involved.value(field, "");
        key += '\n';
      }
      if (!SpamAllowedLocked(key)) {
        ++filtered_;
        ro::log::Logger().Debug("event filtered as spam",
                                {{"eventRecorder", options_.component}, {"reason", p->reason}, {"object", object_name}});
        return;
      }
    }
    if (queue_.size() >= options_.queue_capacity) {
      if (dropped_++ % options_.queue_capacity == 0) {
        ro::log::Logger().Warn("event queue full, dropping event",
                               {{"eventRecorder", options_.component}, {"queued", queue_.size()},
                                {"reason", p->reason}, {"object", object_name}});
      }
      return;
    }
    // client-go names Events "<object>.<unix nanos in hex>"; made strictly increasing so
    // two events of one recorder never collide.
    last_name_nanos_ = std::max(now_nanos, last_name_nanos_ + 1);
    p->name = fmt::format("{}.{:x}", object_name.empty() ? "event" : object_name, last_name_nanos_);
    queue_.push_back(std::move(p));
    cv_.notify_all();
  } catch (const std::exception& e) {
    ro::log::Logger().Error("cannot record event", {{"eventRecorder", options_.component},
                                                  {"reason", std::string(reason)}, {"error", e.what()}});
  } catch (...) {
    ro::log::Logger().Error("cannot record event",
                            {{"eventRecorder", options_.component}, {"reason", std::string(reason)}});
  }
}

bool EventRecorder::WaitForIdle(std::chrono::milliseconds timeout, std::stop_token stop) {
  std::unique_lock lock(mu_);
  const auto deadline = clock_.SteadyNow() + timeout;
  return clock_.WaitUntil(lock, cv_, deadline, std::move(stop),
                          [&] { return queue_.empty() && !sending_; });
}

struct EventRecorder::SpamBucket {
  SpamBucket(double qps, int burst, Clock::SteadyTime now) : bucket(qps, burst, now) {}
  internal::TokenBucket bucket;
  std::list<std::string>::iterator lru;
};

bool EventRecorder::SpamAllowedLocked(const std::string& key) {
  auto found = spam_.find(key);
  if (found == spam_.end()) {
    const double qps = 1.0 / std::chrono::duration<double>(options_.spam_refill).count();
    auto bucket = std::make_unique<SpamBucket>(qps, options_.spam_burst, clock_.SteadyNow());
    spam_lru_.push_front(key);
    bucket->lru = spam_lru_.begin();
    found = spam_.emplace(key, std::move(bucket)).first;
    if (spam_.size() > options_.aggregation_cache_size) {
      spam_.erase(spam_lru_.back());
      spam_lru_.pop_back();
    }
  } else {
    spam_lru_.splice(spam_lru_.begin(), spam_lru_, found->second->lru);
  }
  return found->second->bucket.TryTake(clock_.SteadyNow());
}

uint64_t EventRecorder::Filtered() const {
  std::lock_guard lock(mu_);
  return filtered_;
}

uint64_t EventRecorder::Dropped() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

void EventRecorder::SendLoop(std::stop_token stop) {
  std::unique_lock lock(mu_);
  while (true) {
    clock_.WaitUntil(lock, cv_, Clock::SteadyTime::max(), stop, [&] { return !queue_.empty(); });
    if (stop.stop_requested()) {
      if (!queue_.empty()) {
        ro::log::Logger().Warn("stopping with unsent events",
                               {{"eventRecorder", options_.component}, {"unsent", queue_.size()}});
      }
      return;
    }
    std::unique_ptr<Pending> p = std::move(queue_.front());
    queue_.pop_front();
    sending_ = true;
    lock.unlock();
    try {
      Send(*p, stop);
    } catch (const std::exception& e) {
      ro::log::Logger().Error("sending event failed",
                              {{"eventRecorder", options_.component}, {"reason", p->reason}, {"error", e.what()}});
    }
    lock.lock();
    sending_ = false;
    cv_.notify_all();
  }
}

template <typename Call>
bool EventRecorder::WithRetries(const Pending& p, std::stop_token stop, const Call& call) {
  for (int attempt = 1;; ++attempt) {
    try {
      call();
      return true;
    } catch (const std::exception& e) {
      if (!IsRetryable(e) || attempt >= options_.max_attempts) {
        ro::log::Logger().Warn("event not recorded", {{"eventRecorder", options_.component},
                                                    {"reason", p.reason},
                                                    {"object", p.involved.value("name", std::string())},
                                                    {"error", e.what()}});
        return false;
      }
      ro::log::Logger().Debug("sending event failed", {{"eventRecorder", options_.component},
                                                       {"reason", p.reason},
                                                       {"attempt", attempt},
                                                       {"error", e.what()}});
      if (!clock_.SleepFor(options_.retry_interval, stop)) return false;
    }
  }
}

void EventRecorder::Send(const Pending& p, std::stop_token stop) {
  nlohmann::json key_parts = {p.involved.value("apiVersion", ""), p.involved.value("kind", ""),
                              p.involved.value("namespace", ""),  p.involved.value("name", ""),
                              p.involved.value("uid", ""),        p.type,
                              p.reason,                           p.message};
  const std::string key = key_parts.dump();
  const std::string timestamp = common::FormatRfc3339(p.time);

  const auto make_event = [&](int64_t count, const std::string& first_timestamp) {
    nlohmann::json event = {
        {"apiVersion", "v1"},
        {"kind", "Event"},
        {"metadata", {{"name", p.name}, {"namespace", p.ns}}},
        {"involvedObject", p.involved},
        {"reason", p.reason},
        {"message", p.message},
        {"type", p.type},
        {"source", {{"component", options_.component}}},
        {"reportingComponent", options_.component},
        {"firstTimestamp", first_timestamp},
        {"lastTimestamp", timestamp},
        {"count", count}};
    if (!options_.host.empty()) {
      event["source"]["host"] = options_.host;
      event["reportingInstance"] = options_.host;
    }
    return event;
  };

  const auto found = aggregates_.find(key);
  if (found != aggregates_.end()) {
    Aggregate& a = *found->second;
    lru_.splice(lru_.begin(), lru_, a.lru_position);
    const nlohmann::json patch = {
        {"count", a.count + 1}, {"lastTimestamp", timestamp}, {"message", p.message}};
    bool gone = false;
    const bool ok = WithRetries(p, stop, [&] {
      try {
        sink_->Patch(a.ns, a.name, patch);
      } catch (const ApiError& e) {
        if (e.reason() != StatusReason::kNotFound) throw;
        gone = true;
      }
    });
    if (!ok) return;
    if (!gone) {
      ++a.count;
      return;
    }
    // The Event expired: store a new one that keeps the running count.
    const nlohmann::json event = make_event(a.count + 1, a.first_timestamp);
    if (WithRetries(p, stop, [&] { sink_->Create(p.ns, event); })) {
      a.name = p.name;
      ++a.count;
    }
    return;
  }

  const nlohmann::json event = make_event(1, timestamp);
  if (!WithRetries(p, stop, [&] { sink_->Create(p.ns, event); })) return;
  lru_.push_front(key);
  auto aggregate = std::make_unique<Aggregate>();
  aggregate->ns = p.ns;
  aggregate->name = p.name;
  aggregate->count = 1;
  aggregate->first_timestamp = timestamp;
  aggregate->lru_position = lru_.begin();
  aggregates_.insert_or_assign(key, std::move(aggregate));
  while (aggregates_.size() > options_.aggregation_cache_size) {
    aggregates_.erase(lru_.back());
    lru_.pop_back();
  }
}

}  // namespace ro::kube

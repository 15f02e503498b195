// A scripted ListerWatcher for reflector and informer unit tests. The test queues list
// results and watch actions; the reflector thread consumes them. Synchronization with
// the test thread uses condition variables with real-time deadlines (never sleeps).
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <stop_token>
#include <string>
#include <variant>
#include <vector>

#include "ro/kube/errors.h"
#include "ro/kube/reflector.h"

namespace ro::kube::testing {

inline nlohmann::json ConfigMap(const std::string& ns, const std::string& name,
                                const std::string& rv, nlohmann::json labels = nlohmann::json::object()) {
  nlohmann::json meta = {{"name", name}, {"resourceVersion", rv}, {"labels", std::move(labels)}};
  if (!ns.empty()) meta["namespace"] = ns;
  return {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", meta}};
}

inline nlohmann::json Bookmark(const std::string& rv) {
  return {{"kind", "ConfigMap"}, {"metadata", {{"resourceVersion", rv}}}};
}

class FakeListerWatcher final : public ListerWatcher {
 public:
  struct Close {};
  using Action = std::variant<WatchEvent, Close, std::exception_ptr>;
  using ListResult = std::variant<ObjectList, std::exception_ptr>;

  void PushList(std::vector<nlohmann::json> items, std::string rv) {
    Push(lists_, ListResult{ObjectList{std::move(items), std::move(rv), "", std::nullopt}});
  }
  void PushListError(std::exception_ptr e) { Push(lists_, ListResult{std::move(e)}); }
  void PushEvent(WatchEventType type, nlohmann::json object) {
    Push(actions_, Action{WatchEvent{type, std::move(object)}});
  }
  void PushClose() { Push(actions_, Action{Close{}}); }
  void PushWatchError(std::exception_ptr e) { Push(actions_, Action{std::move(e)}); }

  // A list with no scripted result fails like an unreachable server.
  ObjectList List(const ListOptions& options) override {
    std::unique_lock lock(mu_);
    list_options_.push_back(options);
    cv_.notify_all();
    if (lists_.empty()) throw TransportError(TransportError::Kind::kConnect, "no scripted list");
    ListResult r = std::move(lists_.front());
    lists_.pop_front();
    if (auto* e = std::get_if<std::exception_ptr>(&r)) std::rethrow_exception(*e);
    return std::get<ObjectList>(std::move(r));
  }

  void Watch(const WatchOptions& options, const std::function<void(WatchEvent&&)>& on_event,
             std::stop_token stop) override {
    std::unique_lock lock(mu_);
    watch_versions_.push_back(options.resource_version);
    cv_.notify_all();
    while (true) {
      cv_.wait(lock, stop, [&] { return !actions_.empty(); });
      if (stop.stop_requested()) return;
      Action a = std::move(actions_.front());
      actions_.pop_front();
      cv_.notify_all();
      if (std::holds_alternative<Close>(a)) return;
      if (auto* e = std::get_if<std::exception_ptr>(&a)) std::rethrow_exception(*e);
      ++in_flight_;
      lock.unlock();
      on_event(std::get<WatchEvent>(std::move(a)));
      if (options.on_batch_end) options.on_batch_end();  // every event is a burst of one
      lock.lock();
      --in_flight_;
      cv_.notify_all();
    }
  }

  std::string Describe() const override { return "fake"; }

  // Waits (real time) until `n` Watch() calls were made. Returns false on timeout.
  bool WaitForWatchCalls(std::size_t n) { return WaitFor([&] { return watch_versions_.size() >= n; }); }
  bool WaitForListCalls(std::size_t n) { return WaitFor([&] { return list_options_.size() >= n; }); }
  // Waits until every queued watch action has been taken and every event delivered.
  bool WaitForActionsConsumed() {
    return WaitFor([&] { return actions_.empty() && in_flight_ == 0; });
  }

  std::vector<std::string> watch_versions() const {
    std::lock_guard lock(mu_);
    return watch_versions_;
  }
  std::vector<ListOptions> list_options() const {
    std::lock_guard lock(mu_);
    return list_options_;
  }

 private:
  template <typename Q, typename T>
  void Push(Q& q, T value) {
    std::lock_guard lock(mu_);
    q.push_back(std::move(value));
    cv_.notify_all();
  }
  bool WaitFor(const std::function<bool()>& pred) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds{10}, pred);
  }

  mutable std::mutex mu_;
  std::condition_variable_any cv_;
  std::deque<ListResult> lists_;
  std::deque<Action> actions_;
  std::vector<std::string> watch_versions_;
  std::vector<ListOptions> list_options_;
  std::size_t in_flight_ = 0;  // events taken from actions_, handler still running
};

}  // namespace ro::kube::testing

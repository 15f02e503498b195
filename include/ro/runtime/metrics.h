// Prometheus metrics of the controller runtime, named as controller-runtime names them
// so existing dashboards and alerts work unchanged:
//   controller_runtime_reconcile_total{controller,result}    counter; result is one of
//       "success", "error", "requeue", "requeue_after" (see worker.h)
//   controller_runtime_reconcile_errors_total{controller}     counter
//   controller_runtime_reconcile_time_seconds{controller}     histogram (s)
//   workqueue_depth{name}                                     gauge, refreshed at scrape
//   workqueue_adds_total{name}                                counter (items queued)
//   workqueue_queue_duration_seconds{name}                    histogram (s): added -> handed out
//   workqueue_retries_total{name}                             counter (rate-limited adds)
//   rest_client_requests_total{code,method,host}              counter: apiserver requests
//       (after the transport's retries; code "<error>" when no answer, as client-go)
// Served as the Prometheus text format (version 0.0.4) at /metrics by the manager.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace ro::kube {
class Transport;
class WorkQueue;
}  // namespace ro::kube

namespace ro::runtime {

// Thread-safe. Owns its metric families inside the given registry.
class ControllerMetrics {
 public:
  // `registry` must outlive this object.
  explicit ControllerMetrics(prometheus::Registry& registry);
  ~ControllerMetrics();
  ControllerMetrics(const ControllerMetrics&) = delete;
  ControllerMetrics& operator=(const ControllerMetrics&) = delete;

  // Creates controller's series at 0 (every result label, errors, time), so they are
  // scraped before the first reconcile, as controller-runtime does.
  void RegisterController(std::string_view controller);
  // One finished reconcile of `controller`: counts it under `result` (and as an error
  // when result is "error") and observes its duration in seconds.
  void ObserveReconcile(std::string_view controller, std::string_view result, double seconds);
  // One rate-limited re-add of an item of queue `name`.
  void CountRetry(std::string_view name);

  // Reports queue `name`'s ready length as workqueue_depth{name} at every Refresh(), and
  // its adds and queue latency (WorkQueue::SetMetrics). `queue` must outlive this object.
  void TrackQueue(std::string name, kube::WorkQueue& queue);
  // One apiserver request of this process (rest_client_requests_total).
  void CountRequest(std::string_view code, std::string_view method, std::string_view host);
  // Copies the tracked queues' current lengths into their gauges (call before a scrape).
  void RefreshQueueDepths();

  // Current values, for tests and the health page.
  double ReconcileTotal(std::string_view controller, std::string_view result) const;
  double ReconcileErrors(std::string_view controller) const;

 private:
  struct Families;
  struct QueueObserver;
  struct TrackedQueue {
    std::string name;
    const kube::WorkQueue* queue;
    std::unique_ptr<QueueObserver> observer;
  };

  // Constant after construction.
  std::unique_ptr<Families> families_;

  mutable std::mutex mu_;
  std::vector<TrackedQueue> queues_;  // guarded by mu_
};

// `inner` counted in `metrics` (rest_client_requests_total, host = `host`, e.g.
// "10.96.0.1:443"): every Do() by its status, every Stream() (watch) by its status.
// `metrics` must outlive the result.
std::shared_ptr<kube::Transport> WithRequestMetrics(std::shared_ptr<kube::Transport> inner, ControllerMetrics& metrics,
                                                    std::string host);

// The registry's metrics in the Prometheus text exposition format.
std::string SerializeMetrics(prometheus::Registry& registry);

}  // namespace ro::runtime

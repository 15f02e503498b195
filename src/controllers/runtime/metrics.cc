#include "ro/runtime/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "ro/kube/errors.h"
#include "ro/kube/transport.h"
#include "ro/kube/workqueue.h"

namespace ro::runtime {

namespace {

// controller-runtime's reconcile_time_seconds buckets (pkg/internal/controller/metrics):
// 5 ms .. 60 s, dense below 1 s where most reconciles finish, coarse up to the minute a
// slow external check (a connect timeout) can take.
const prometheus::Histogram::BucketBoundaries& ReconcileTimeBuckets() {
  static const prometheus::Histogram::BucketBoundaries buckets = {
      0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6,
      0.7,   0.8,  0.9,   1.0,  1.25, 1.5, 1.75, 2.0, 2.5, 3.0,  3.5, 4.0,  4.5, 5.0,
      6.0,   7.0,  8.0,   9.0,  10.0, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0};
  return buckets;
}

// client-go's workqueue latency buckets: prometheus.ExponentialBuckets(10e-9, 10, 10),
// 10 ns .. 1000 s.
const prometheus::Histogram::BucketBoundaries& QueueDurationBuckets() {
  static const prometheus::Histogram::BucketBoundaries buckets = {1e-8, 1e-7, 1e-6, 1e-5, 1e-4,
                                                                   1e-3, 1e-2, 1e-1, 1.0,  10.0};
  return buckets;
}

}  // namespace

struct ControllerMetrics::Families {
  explicit Families(prometheus::Registry& registry)
      : reconcile_total(prometheus::BuildCounter()
                            .Name("controller_runtime_reconcile_total")
                            .Help("Total number of reconciliations per controller and result")
                            .Register(registry)),
        reconcile_errors(prometheus::BuildCounter()
                             .Name("controller_runtime_reconcile_errors_total")
                             .Help("Total number of reconciliation errors per controller")
                             .Register(registry)),
        reconcile_time(prometheus::BuildHistogram()
                           .Name("controller_runtime_reconcile_time_seconds")
                           .Help("Length of time per reconciliation per controller")
                           .Register(registry)),
        queue_depth(prometheus::BuildGauge()
                        .Name("workqueue_depth")
                        .Help("Current depth of the workqueue (items ready to be processed)")
                        .Register(registry)),
        queue_retries(prometheus::BuildCounter()
                          .Name("workqueue_retries_total")
                          .Help("Total number of rate-limited retries handled by the workqueue")
                          .Register(registry)),
        queue_adds(prometheus::BuildCounter()
                       .Name("workqueue_adds_total")
                       .Help("Total number of adds handled by the workqueue")
                       .Register(registry)),
        queue_duration(prometheus::BuildHistogram()
                           .Name("workqueue_queue_duration_seconds")
                           .Help("How long in seconds an item stays in the workqueue before being requested")
                           .Register(registry)),
        requests(prometheus::BuildCounter()
                     .Name("rest_client_requests_total")
                     .Help("Number of HTTP requests, partitioned by status code, method, and host")
                     .Register(registry)) {}

  prometheus::Family<prometheus::Counter>& reconcile_total;
  prometheus::Family<prometheus::Counter>& reconcile_errors;
  prometheus::Family<prometheus::Histogram>& reconcile_time;
  prometheus::Family<prometheus::Gauge>& queue_depth;
  prometheus::Family<prometheus::Counter>& queue_retries;
  prometheus::Family<prometheus::Counter>& queue_adds;
  prometheus::Family<prometheus::Histogram>& queue_duration;
  prometheus::Family<prometheus::Counter>& requests;
};

struct ControllerMetrics::QueueObserver final : kube::WorkQueueMetrics {
  QueueObserver(prometheus::Counter& adds_counter, prometheus::Histogram& duration)
      : adds(adds_counter), queue_duration(duration) {}
  void Added() override { adds.Increment(); }
  void Started(std::chrono::nanoseconds waited) override {
    queue_duration.Observe(std::chrono::duration<double>(waited).count());
  }
  prometheus::Counter& adds;
  prometheus::Histogram& queue_duration;
};

ControllerMetrics::ControllerMetrics(prometheus::Registry& registry)
    : families_(std::make_unique<Families>(registry)) {}

ControllerMetrics::~ControllerMetrics() = default;

void ControllerMetrics::RegisterController(std::string_view controller) {
  const std::string name(controller);
  for (const char* result : {"success", "error", "requeue", "requeue_after"}) {
    families_->reconcile_total.Add({{"controller", name}, {"result", result}});
  }
  families_->reconcile_errors.Add({{"controller", name}});
  families_->reconcile_time.Add({{"controller", name}}, ReconcileTimeBuckets());
}

void ControllerMetrics::ObserveReconcile(std::string_view controller, std::string_view result,
                                         double seconds) {
  const std::string name(controller);
  families_->reconcile_total.Add({{"controller", name}, {"result", std::string(result)}})
      .Increment();
  if (result == "error") families_->reconcile_errors.Add({{"controller", name}}).Increment();
  families_->reconcile_time.Add({{"controller", name}}, ReconcileTimeBuckets()).Observe(seconds);
}

void ControllerMetrics::CountRetry(std::string_view name) {
  families_->queue_retries.Add({{"name", std::string(name)}}).Increment();
}

void ControllerMetrics::TrackQueue(std::string name, kube::WorkQueue& queue) {
  families_->queue_depth.Add({{"name", name}}).Set(0);
  auto observer = std::make_unique<QueueObserver>(families_->queue_adds.Add({{"name", name}}),
                                                  families_->queue_duration.Add({{"name", name}}, QueueDurationBuckets()));
  queue.SetMetrics(observer.get());
  const std::lock_guard lock(mu_);
  queues_.push_back({std::move(name), &queue, std::move(observer)});
}

void ControllerMetrics::CountRequest(std::string_view code, std::string_view method, std::string_view host) {
  families_->requests.Add({{"code", std::string(code)}, {"method", std::string(method)}, {"host", std::string(host)}})
      .Increment();
}

namespace {

class RequestCountingTransport final : public kube::Transport {
 public:
  RequestCountingTransport(std::shared_ptr<kube::Transport> inner, ControllerMetrics& metrics, std::string host)
      : inner_(std::move(inner)), metrics_(metrics), host_(std::move(host)) {}

  kube::HttpResponse Do(const kube::HttpRequest& request) override {
    try {
      kube::HttpResponse response = inner_->Do(request);
      metrics_.CountRequest(std::to_string(response.status), request.method, host_);
      return response;
    } catch (const kube::TransportError&) {
      metrics_.CountRequest("<error>", request.method, host_);
      throw;
    }
  }

  void Stream(const kube::HttpRequest& request, const std::function<void(long status)>& on_status,
              const std::function<void(std::string_view chunk)>& on_data, std::stop_token stop) override {
    bool counted = false;
    try {
      inner_->Stream(
          request,
          [&](long status) {
            counted = true;
            metrics_.CountRequest(std::to_string(status), request.method, host_);
            on_status(status);
          },
          on_data, stop);
    } catch (const kube::TransportError&) {
      if (!counted) metrics_.CountRequest("<error>", request.method, host_);
      throw;
    }
  }

 private:
  const std::shared_ptr<kube::Transport> inner_;
  ControllerMetrics& metrics_;
  const std::string host_;
};

}  // namespace

std::shared_ptr<kube::Transport> WithRequestMetrics(std::shared_ptr<kube::Transport> inner, ControllerMetrics& metrics,
                                                    std::string host) {
  return std::make_shared<RequestCountingTransport>(std::move(inner), metrics, std::move(host));
}

void ControllerMetrics::RefreshQueueDepths() {
  const std::lock_guard lock(mu_);
  for (const TrackedQueue& q : queues_) {
    families_->queue_depth.Add({{"name", q.name}}).Set(static_cast<double>(q.queue->Len()));
  }
}

double ControllerMetrics::ReconcileTotal(std::string_view controller,
                                         std::string_view result) const {
  return families_->reconcile_total
      .Add({{"controller", std::string(controller)}, {"result", std::string(result)}})
      .Value();
}

double ControllerMetrics::ReconcileErrors(std::string_view controller) const {
  return families_->reconcile_errors.Add({{"controller", std::string(controller)}}).Value();
}

std::string SerializeMetrics(prometheus::Registry& registry) {
  return prometheus::TextSerializer().Serialize(registry.Collect());
}

}  // namespace ro::runtime

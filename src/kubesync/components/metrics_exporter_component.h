// The metrics exporter component (manual 6.2.7 "Metrics exporter", docs/metrics.md):
// serves the LiveSynchronization's statistics, read from Redis on every scrape, as
// Prometheus text on /metrics. Private to src/kubesync/components.
#pragma once

#include <atomic>
#include <chrono>
#include <stop_token>

#include "ro/common/http_server.h"
#include "ro/kubesync/pipeline_context.h"
#include "ro/kubesync/redis_state.h"

namespace ro::kubesync {

// Run() on one thread; Ready() and the /metrics handler from any thread.
class MetricsExporterComponent final : public Component {
 public:
  // Registers /metrics on `server`. Every reference must outlive the component.
  MetricsExporterComponent(const PipelineContext& context, RedisState& redis, common::HttpServer& server);

  // Pings Redis every few seconds (readiness) until `stop`.
  void Run(std::stop_token stop) override;
  // True while the last Redis ping answered.
  bool Ready() const override { return redis_ok_.load(); }

 private:
  const PipelineContext& context_;
  RedisState& redis_;
  std::atomic<bool> redis_ok_{false};
};

}  // namespace ro::kubesync

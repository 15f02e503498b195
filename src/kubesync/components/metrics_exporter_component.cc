#include "metrics_exporter_component.h"

#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "ro/common/log.h"
#include "ro/kubesync/metrics_exporter.h"
#include "ro/kubesync/stats.h"
#include "ro/kubesync/retry.h"

namespace ro::kubesync {
namespace {

// Readiness probe period of Redis: a probe every few seconds is free for Redis and
// keeps /readyz within a kubelet probe period (10 s) of the truth.
constexpr std::chrono::seconds kPingInterval{3};

}  // namespace

MetricsExporterComponent::MetricsExporterComponent(const PipelineContext& context, RedisState& redis,
                                                   common::HttpServer& server)
    : context_(context), redis_(redis) {
  server.Handle("/metrics", [this](const common::HttpRequest&) {
    common::HttpResponse response;
    try {
      LiveSyncStats stats{context_.file().live_synchronization.ns, context_.file().live_synchronization.name,
                          ReadStats(redis_), std::chrono::system_clock::now()};
      response.content_type = std::string(kPrometheusContentType);
      response.body = RenderMetrics({&stats, 1});
    } catch (const RedisError& e) {
      ro::log::Logger().Error("error reading statistics", {{"error", e.what()}});
      response.status = 503;
      response.body = std::string("statistics unavailable: ") + e.what() + "\n";
    }
    return response;
  });
}

void MetricsExporterComponent::Run(std::stop_token stop) {
  do {
    try {
      redis_.Ping();
      redis_ok_ = true;
    } catch (const RedisError& e) {
      if (redis_ok_.exchange(false)) ro::log::Logger().Warn("error reading statistics", {{"error", e.what()}});
    }
  } while (SleepFor(kPingInterval, stop));
  redis_ok_ = false;
}

}  // namespace ro::kubesync

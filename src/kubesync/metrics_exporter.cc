#include "ro/kubesync/metrics_exporter.h"

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <chrono>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <vector>

#include "ro/kube/gvr.h"

namespace ro::kubesync {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;

// HELP texts are constants without '\' or newlines: prometheus-cpp 1.0 writes HELP
// unescaped (label values it does escape).
MetricFamily Family(const char* name, const char* help, MetricType type) { return MetricFamily{name, help, type, {}}; }

Labels LiveSyncLabels(const LiveSyncStats& ls) {
  return {{"livesynchronization", ls.live_sync_name}, {"namespace", ls.live_sync_namespace}};
}

void AppendGvrLabels(Labels& labels, const std::string& gvr) {
  std::string group, version, resource;
  if (!gvr.empty()) {
    try {
      auto parsed = kube::GroupVersionResource::Parse(gvr);
      group = std::move(parsed.group);
      version = std::move(parsed.version);
      resource = std::move(parsed.resource);
    } catch (const std::invalid_argument&) {
      resource = gvr;
    }
  }
  labels.push_back({"group", std::move(group)});
  labels.push_back({"version", std::move(version)});
  labels.push_back({"resource", std::move(resource)});
}

ClientMetric WithLabels(Labels labels) {
  ClientMetric metric;
  metric.label = std::move(labels);
  return metric;
}

double UnixSeconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

ClientMetric Histogram(Labels labels, const StatsSnapshot::LagHistogram& lag) {
  ClientMetric metric = WithLabels(std::move(labels));
  // Every series gets the standard bounds (so bucket sets agree across series and
  // time) plus any other finite bound found in the store.
  std::set<double> bounds(kLagBucketBounds.begin(), kLagBucketBounds.end());
  for (const auto& [bound, n] : lag.buckets) {
    if (bound != std::numeric_limits<double>::infinity()) bounds.insert(bound);
  }
  std::uint64_t cumulative = 0;
  auto next = lag.buckets.begin();
  for (double bound : bounds) {
    for (; next != lag.buckets.end() && next->first <= bound; ++next) cumulative += next->second;
    metric.histogram.bucket.push_back({cumulative, bound});
  }
  std::uint64_t total = lag.count();
  metric.histogram.bucket.push_back({total, std::numeric_limits<double>::infinity()});
  metric.histogram.sample_count = total;
  metric.histogram.sample_sum = lag.sum_seconds;
  return metric;
}

// One counter per (GVR, component, reason[, object namespace]) of `counts` into `family`.
void AppendReasonCounters(MetricFamily& family, const LiveSyncStats& ls,
                          const std::map<StatsSnapshot::ErrorKey, std::uint64_t>& counts, bool object_namespace) {
  for (const auto& [key, count] : counts) {
    Labels labels = LiveSyncLabels(ls);
    AppendGvrLabels(labels, key.gvr);
    if (object_namespace) labels.push_back({"object_namespace", key.object_namespace});
    labels.push_back({"component", key.component});
    labels.push_back({"reason", key.reason});
    ClientMetric metric = WithLabels(std::move(labels));
    metric.counter.value = static_cast<double>(count);
    family.metric.push_back(std::move(metric));
  }
}

}  // namespace

std::string RenderMetrics(std::span<const LiveSyncStats> live_syncs) {
  MetricFamily objects = Family("kubesync_objects_in_sync",
                                "Objects of the resource currently in sync at the destination.", MetricType::Gauge);
  MetricFamily events = Family("kubesync_events_processed_total",
                               "Events handled by a pipeline component, by event type.", MetricType::Counter);
  MetricFamily errors = Family("kubesync_errors_total", "Failures of a pipeline component, by reason.",
                               MetricType::Counter);
  MetricFamily failures = Family("kubesync_failed_events_total",
                                 "Events a pipeline component ended for good without their effect, by reason.",
                                 MetricType::Counter);
  MetricFamily lag = Family("kubesync_replication_lag_seconds",
                            "Time from the events listener observing a change to the synchronizer applying it.",
                            MetricType::Histogram);
  MetricFamily resync = Family("kubesync_last_resync_timestamp_seconds",
                               "Unix time of the last completed full resync of the resource.", MetricType::Gauge);
  MetricFamily bucket = Family("kubesync_bucket_operations_total", "Recovery bucket operations, by operation and result.",
                               MetricType::Counter);
  MetricFamily pending = Family("kubesync_pending_changes",
                                "Changes observed in the source and not yet applied or ended (in the pipeline's stream).",
                                MetricType::Gauge);
  MetricFamily rpo = Family("kubesync_rpo_seconds",
                            "RPO now: age of the oldest change observed in the source and not yet applied.",
                            MetricType::Gauge);

  for (const auto& ls : live_syncs) {
    const StatsSnapshot& s = ls.stats;
    for (const auto& [gvr, count] : s.objects_in_sync) {
      Labels labels = LiveSyncLabels(ls);
      AppendGvrLabels(labels, gvr);
      ClientMetric metric = WithLabels(std::move(labels));
      metric.gauge.value = static_cast<double>(count);
      objects.metric.push_back(std::move(metric));
    }
    for (const auto& [key, count] : s.events) {
      Labels labels = LiveSyncLabels(ls);
      AppendGvrLabels(labels, key.gvr);
      labels.push_back({"object_namespace", key.object_namespace});
      labels.push_back({"component", key.component});
      labels.push_back({"type", key.type});
      ClientMetric metric = WithLabels(std::move(labels));
      metric.counter.value = static_cast<double>(count);
      events.metric.push_back(std::move(metric));
    }
    AppendReasonCounters(errors, ls, s.errors, /*object_namespace=*/true);
    AppendReasonCounters(failures, ls, s.failures, /*object_namespace=*/false);
    for (const auto& [key, histogram] : s.lag_by_namespace) {
      Labels labels = LiveSyncLabels(ls);
      AppendGvrLabels(labels, key.gvr);
      labels.push_back({"object_namespace", key.object_namespace});
      lag.metric.push_back(Histogram(std::move(labels), histogram));
    }
    for (const auto& [gvr, when] : s.last_resync) {
      Labels labels = LiveSyncLabels(ls);
      AppendGvrLabels(labels, gvr);
      ClientMetric metric = WithLabels(std::move(labels));
      metric.gauge.value = UnixSeconds(when);
      resync.metric.push_back(std::move(metric));
    }
    if (s.backlog) {
      ClientMetric metric = WithLabels(LiveSyncLabels(ls));
      metric.gauge.value = static_cast<double>(s.backlog->messages);
      pending.metric.push_back(std::move(metric));
    }
    if (const std::optional<double> seconds = s.RpoSeconds(ls.read_at);
        seconds && ls.read_at != std::chrono::system_clock::time_point{}) {
      ClientMetric metric = WithLabels(LiveSyncLabels(ls));
      metric.gauge.value = *seconds;
      rpo.metric.push_back(std::move(metric));
    }
    for (const auto& [key, count] : s.bucket_operations) {
      Labels labels = LiveSyncLabels(ls);
      labels.push_back({"op", key.op});
      labels.push_back({"result", key.result});
      ClientMetric metric = WithLabels(std::move(labels));
      metric.counter.value = static_cast<double>(count);
      bucket.metric.push_back(std::move(metric));
    }
  }

  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, {objects, events, errors, failures, lag, resync, bucket, pending, rpo});
  return out.str();
}

}  // namespace ro::kubesync

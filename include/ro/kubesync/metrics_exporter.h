// The metrics exporter's core: renders StatsSnapshots as Prometheus text exposition
// format 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/) through
// prometheus-cpp's TextSerializer. Metric names, labels and meaning: docs/metrics.md.
//
// Typical /metrics handler of the metrics-exporter binary:
//   auto text = RenderMetrics({{ns, name, ReadStats(redis), std::chrono::system_clock::now()}});
//   return HttpResponse{200, std::string(kPrometheusContentType), std::move(text)};
#pragma once

#include <chrono>
#include <span>
#include <string>
#include <string_view>

#include "ro/kubesync/stats.h"

namespace ro::kubesync {

// Content-Type of the text exposition format.
inline constexpr std::string_view kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

// The statistics of one LiveSynchronization, with its identity for the
// `livesynchronization` (name) and `namespace` labels.
struct LiveSyncStats {
  std::string live_sync_namespace;
  std::string live_sync_name;
  StatsSnapshot stats;
  // When `stats` were read: kubesync_rpo_seconds is StatsSnapshot::RpoSeconds at this
  // time (no series when left at the epoch).
  std::chrono::system_clock::time_point read_at{};
};

// Every kubesync_* family once (HELP and TYPE lines even when a family has no series),
// series in a stable order (by LiveSynchronization, then by label values). GVR strings
// are split into group/version/resource labels (a string that does not parse goes to
// `resource` whole). Histogram buckets are made cumulative and end with le="+Inf"; _count
// equals the +Inf bucket. Label values are escaped (\\, \", \n). Never throws on content.
std::string RenderMetrics(std::span<const LiveSyncStats> live_syncs);

}  // namespace ro::kubesync

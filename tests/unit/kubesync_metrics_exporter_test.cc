#include "ro/kubesync/metrics_exporter.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

namespace ro::kubesync {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

constexpr double kInf = std::numeric_limits<double>::infinity();

LiveSyncStats Sample() {
  LiveSyncStats ls{"dr-config", "pre", {}};
  StatsSnapshot& s = ls.stats;
  s.objects_in_sync["apps/v1/deployments"] = 3;
  s.events[{"synchronizer", "apps/v1/deployments", "upsert", "shop"}] = 10;
  s.events[{"processor", "v1/configmaps", "delete"}] = 1;
  s.errors[{"synchronizer", "v1/configmaps", "Bad \"quote\" \\ and\nnewline"}] = 2;
  auto& lag = s.lag_by_namespace[{"apps/v1/deployments", "shop"}];
  lag.buckets = {{0.005, 1}, {0.1, 2}, {kInf, 1}};
  lag.sum_seconds = 31.25;
  s.last_resync["apps/v1/deployments"] = std::chrono::system_clock::time_point(1700000000500ms);
  s.bucket_operations[{"upload", "success"}] = 4;
  s.failures[{"synchronizer", "apps/v1/deployments", "Invalid"}] = 5;
  s.backlog = StatsSnapshot::Backlog{7, std::chrono::system_clock::time_point(1700000100s),
                                     std::chrono::system_clock::time_point(1700000110s)};
  ls.read_at = std::chrono::system_clock::time_point(1700000112500ms);  // 12.5 s after the oldest
  return ls;
}

constexpr char kLs[] = R"(livesynchronization="pre",namespace="dr-config")";
constexpr char kDeploy[] = R"(group="apps",version="v1",resource="deployments")";

std::string Golden() {
  const std::string ls = kLs;
  const std::string d = ls + "," + kDeploy;
  const std::string cm = ls + R"(,group="",version="v1",resource="configmaps")";
  const std::string d_shop = d + R"(,object_namespace="shop")";
  std::string bucket_lines;
  // Cumulative: 1 at 5 ms, 3 from 100 ms on, 4 at +Inf.
  const std::vector<std::pair<std::string, int>> buckets = {
      {"0.005", 1}, {"0.01", 1}, {"0.025", 1}, {"0.05", 1}, {"0.1", 3}, {"0.25", 3}, {"0.5", 3},
      {"1", 3},     {"2.5", 3},  {"5", 3},     {"10", 3},   {"30", 3},  {"+Inf", 4}};
  for (const auto& [le, n] : buckets) {
    bucket_lines += "kubesync_replication_lag_seconds_bucket{" + d_shop + ",le=\"" + le + "\"} " + std::to_string(n) + "\n";
  }
  return "# HELP kubesync_objects_in_sync Objects of the resource currently in sync at the destination.\n"
         "# TYPE kubesync_objects_in_sync gauge\n"
         "kubesync_objects_in_sync{" + d + "} 3\n"
         "# HELP kubesync_events_processed_total Events handled by a pipeline component, by event type.\n"
         "# TYPE kubesync_events_processed_total counter\n"
         "kubesync_events_processed_total{" + cm + ",object_namespace=\"\",component=\"processor\",type=\"delete\"} 1\n"
         "kubesync_events_processed_total{" + d_shop + ",component=\"synchronizer\",type=\"upsert\"} 10\n"
         "# HELP kubesync_errors_total Failures of a pipeline component, by reason.\n"
         "# TYPE kubesync_errors_total counter\n"
         "kubesync_errors_total{" + cm + R"(,object_namespace="",component="synchronizer",reason="Bad \"quote\" \\ and\nnewline"} 2)" "\n"
         "# HELP kubesync_failed_events_total Events a pipeline component ended for good without their effect, by "
         "reason.\n"
         "# TYPE kubesync_failed_events_total counter\n"
         "kubesync_failed_events_total{" + d + ",component=\"synchronizer\",reason=\"Invalid\"} 5\n"
         "# HELP kubesync_replication_lag_seconds Time from the events listener observing a change to the "
         "synchronizer applying it.\n"
         "# TYPE kubesync_replication_lag_seconds histogram\n"
         "kubesync_replication_lag_seconds_count{" + d_shop + "} 4\n"
         "kubesync_replication_lag_seconds_sum{" + d_shop + "} 31.25\n" +
         bucket_lines +
         "# HELP kubesync_last_resync_timestamp_seconds Unix time of the last completed full resync of the resource.\n"
         "# TYPE kubesync_last_resync_timestamp_seconds gauge\n"
         "kubesync_last_resync_timestamp_seconds{" + d + "} 1700000000.5\n"
         "# HELP kubesync_bucket_operations_total Recovery bucket operations, by operation and result.\n"
         "# TYPE kubesync_bucket_operations_total counter\n"
         "kubesync_bucket_operations_total{" + ls + ",op=\"upload\",result=\"success\"} 4\n"
         "# HELP kubesync_pending_changes Changes observed in the source and not yet applied or ended (in the "
         "pipeline's stream).\n"
         "# TYPE kubesync_pending_changes gauge\n"
         "kubesync_pending_changes{" + ls + "} 7\n"
         "# HELP kubesync_rpo_seconds RPO now: age of the oldest change observed in the source and not yet applied.\n"
         "# TYPE kubesync_rpo_seconds gauge\n"
         "kubesync_rpo_seconds{" + ls + "} 12.5\n";
}

TEST(MetricsExporter, RendersGoldenTextExposition) {
  std::vector<LiveSyncStats> input{Sample()};
  EXPECT_EQ(RenderMetrics(input), Golden());
}

TEST(MetricsExporter, EmptySnapshotStillDeclaresEveryFamily) {
  std::vector<LiveSyncStats> input{{"ns", "name", {}}};
  std::string text = RenderMetrics(input);
  for (const char* family : {"kubesync_objects_in_sync", "kubesync_events_processed_total", "kubesync_errors_total",
                             "kubesync_replication_lag_seconds", "kubesync_last_resync_timestamp_seconds",
                             "kubesync_bucket_operations_total", "kubesync_pending_changes", "kubesync_rpo_seconds"}) {
    EXPECT_THAT(text, HasSubstr(std::string("# TYPE ") + family + " ")) << family;
  }
  EXPECT_EQ(text.find("{"), std::string::npos);  // no series
}

TEST(MetricsExporter, SeveralLiveSynchronizationsShareEachFamilyOnce) {
  LiveSyncStats a{"ns", "a", {}};
  LiveSyncStats b{"ns", "b", {}};
  a.stats.objects_in_sync["v1/secrets"] = 1;
  b.stats.objects_in_sync["v1/secrets"] = 2;
  std::vector<LiveSyncStats> input{a, b};
  std::string text = RenderMetrics(input);
  std::istringstream lines(text);
  int type_lines = 0;
  int series = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line == "# TYPE kubesync_objects_in_sync gauge") ++type_lines;
    if (line.starts_with("kubesync_objects_in_sync{")) ++series;
  }
  EXPECT_EQ(type_lines, 1);
  EXPECT_EQ(series, 2);
  EXPECT_THAT(text, HasSubstr(R"(kubesync_objects_in_sync{livesynchronization="b",namespace="ns",group="",version="v1",resource="secrets"} 2)"));
}

TEST(MetricsExporter, HistogramBucketsAreCumulativeIncludingUnusualBounds) {
  LiveSyncStats ls{"ns", "a", {}};
  auto& lag = ls.stats.lag_by_namespace[{"v1/pods", ""}];
  lag.buckets = {{0.005, 2}, {0.007, 1}, {60.0, 5}};  // 0.007 and 60: bounds of another version
  std::vector<LiveSyncStats> input{ls};
  std::string text = RenderMetrics(input);
  EXPECT_THAT(text, HasSubstr(R"(resource="pods",object_namespace="",le="0.007"} 3)"));
  EXPECT_THAT(text, HasSubstr(R"(resource="pods",object_namespace="",le="30"} 3)"));
  EXPECT_THAT(text, HasSubstr(R"(resource="pods",object_namespace="",le="60"} 8)"));
  EXPECT_THAT(text, HasSubstr(R"(resource="pods",object_namespace="",le="+Inf"} 8)"));
  EXPECT_THAT(text, HasSubstr(R"(kubesync_replication_lag_seconds_count{livesynchronization="a",namespace="ns",group="",version="v1",resource="pods",object_namespace=""} 8)"));
}

// RPO now (docs/metrics.md): the oldest waiting change's age; 0 with nothing waiting; a
// sample older than kBacklogStaleAfter counts from its own time; no series without a
// sample or a read time.
TEST(MetricsExporter, RpoNowIsTheAgeOfTheOldestWaitingChangeAndGrowsWhenTheSampleIsStale) {
  using Tp = std::chrono::system_clock::time_point;
  StatsSnapshot s;
  EXPECT_EQ(s.RpoSeconds(Tp(1000s)), std::nullopt);
  s.backlog = StatsSnapshot::Backlog{0, std::nullopt, Tp(1000s)};
  EXPECT_EQ(s.RpoSeconds(Tp(1005s)), 0.0);                    // nothing waits
  EXPECT_EQ(s.RpoSeconds(Tp(1000s) + kBacklogStaleAfter + 10s), 40.0);  // stale: since the sample
  s.backlog = StatsSnapshot::Backlog{3, Tp(990s), Tp(1000s)};
  EXPECT_EQ(s.RpoSeconds(Tp(1001s)), 11.0);
  EXPECT_EQ(s.RpoSeconds(Tp(980s)), 0.0);  // clock skew never makes it negative

  LiveSyncStats unread{"ns", "a", s};  // read_at left at the epoch
  std::vector<LiveSyncStats> input{unread};
  const std::string text = RenderMetrics(input);
  EXPECT_THAT(text, HasSubstr(R"(kubesync_pending_changes{livesynchronization="a",namespace="ns"} 3)"));
  EXPECT_EQ(text.find("kubesync_rpo_seconds{"), std::string::npos);
}

TEST(MetricsExporter, UnparsableGvrGoesToResourceLabel) {
  LiveSyncStats ls{"ns", "a", {}};
  ls.stats.errors[{"eventslistener", "", "Transport"}] = 1;
  ls.stats.errors[{"eventslistener", "weird", "Transport"}] = 1;
  std::vector<LiveSyncStats> input{ls};
  std::string text = RenderMetrics(input);
  EXPECT_THAT(text, HasSubstr(R"(group="",version="",resource="",object_namespace="",component="eventslistener")"));
  EXPECT_THAT(text, HasSubstr(R"(group="",version="",resource="weird",object_namespace="",component="eventslistener")"));
}

}  // namespace
}  // namespace ro::kubesync

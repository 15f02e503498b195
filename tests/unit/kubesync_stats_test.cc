#include "ro/kubesync/stats.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ro/kube/clock.h"

namespace ro::kubesync {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;
using Op = HashWrite::Op;

constexpr char kDeployments[] = "apps/v1/deployments";

// Records every batch; can be told to fail like an unreachable Redis.
class FakeSink : public StatsSink {
 public:
  void Write(std::span<const HashWrite> writes) override {
    std::lock_guard lock(mu_);
    ++calls_;
    if (fail_) throw RedisError("redis at 127.0.0.1:1 unavailable", true);
    batches_.emplace_back(writes.begin(), writes.end());
  }
  void SetFailing(bool fail) {
    std::lock_guard lock(mu_);
    fail_ = fail;
  }
  std::vector<std::vector<HashWrite>> Batches() const {
    std::lock_guard lock(mu_);
    return batches_;
  }
  int Calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }

 private:
  mutable std::mutex mu_;
  bool fail_ = false;
  int calls_ = 0;
  std::vector<std::vector<HashWrite>> batches_;
};

HashWrite W(Op op, std::string_view key, std::string field, std::string value) {
  return HashWrite{op, std::string(key), std::move(field), std::move(value)};
}

// What Redis does with a pipeline, on plain maps.
using Hashes = std::map<std::string, std::map<std::string, std::string>, std::less<>>;
void Apply(Hashes& hashes, const std::vector<HashWrite>& writes) {
  for (const auto& w : writes) {
    std::string& slot = hashes[w.key][w.field];
    switch (w.op) {
      case Op::kIncrBy:
        slot = std::to_string((slot.empty() ? 0 : std::stoll(slot)) + std::stoll(w.value));
        break;
      case Op::kIncrByFloat:
        slot = std::to_string((slot.empty() ? 0.0 : std::stod(slot)) + std::stod(w.value));
        break;
      case Op::kSet:
        slot = w.value;
        break;
    }
  }
}

class StatsRecorderTest : public ::testing::Test {
 protected:
  kube::FakeClock clock_;
  FakeSink sink_;
};

TEST_F(StatsRecorderTest, AggregatesEventsPerLabelSetIntoOneBatch) {
  StatsRecorder stats(sink_, clock_);
  for (int i = 0; i < 3; ++i) stats.RecordEvent("processor", kDeployments, "upsert");
  stats.RecordEvent("processor", kDeployments, "delete");
  stats.RecordEvent("synchronizer", "v1/configmaps", "upsert");
  stats.RecordError("synchronizer", kDeployments, "Invalid");
  stats.RecordBucketOperation("upload", "success");
  stats.RecordBucketOperation("upload", "success");

  ASSERT_TRUE(stats.FlushNow());
  auto batches = sink_.Batches();
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_THAT(batches[0], UnorderedElementsAre(
                              W(Op::kIncrBy, "stats:events", "processor|apps/v1/deployments|upsert", "3"),
                              W(Op::kIncrBy, "stats:events", "processor|apps/v1/deployments|delete", "1"),
                              W(Op::kIncrBy, "stats:events", "synchronizer|v1/configmaps|upsert", "1"),
                              W(Op::kIncrBy, "stats:errors", "synchronizer|apps/v1/deployments|Invalid", "1"),
                              W(Op::kIncrBy, "stats:bucket", "upload|success", "2")));
}

TEST_F(StatsRecorderTest, EachFlushSendsOnlyTheDeltaSinceThePreviousOne) {
  StatsRecorder stats(sink_, clock_);
  stats.RecordEvent("processor", kDeployments, "upsert");
  stats.RecordEvent("processor", kDeployments, "upsert");
  stats.FlushNow();
  stats.RecordEvent("processor", kDeployments, "upsert");
  stats.FlushNow();
  stats.FlushNow();  // nothing new: the sink is not called

  auto batches = sink_.Batches();
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_THAT(batches[0], ElementsAre(W(Op::kIncrBy, "stats:events", "processor|apps/v1/deployments|upsert", "2")));
  EXPECT_THAT(batches[1], ElementsAre(W(Op::kIncrBy, "stats:events", "processor|apps/v1/deployments|upsert", "1")));
  EXPECT_EQ(sink_.Calls(), 2);
}

TEST_F(StatsRecorderTest, FlusherWritesEveryIntervalOnTheClock) {
  StatsRecorder stats(sink_, clock_, StatsOptions{500ms});
  ASSERT_TRUE(clock_.BlockUntilWaiters(1));
  stats.RecordEvent("processor", kDeployments, "upsert");

  clock_.Advance(499ms);
  EXPECT_EQ(clock_.Waiters(), 1u);  // still waiting for its deadline: nothing flushed
  EXPECT_THAT(sink_.Batches(), IsEmpty());

  clock_.Advance(1ms);
  // The flusher waits again (deadline ahead) only after it flushed.
  ASSERT_TRUE(clock_.BlockUntilWaiters(1));
  ASSERT_EQ(sink_.Batches().size(), 1u);

  stats.RecordEvent("processor", kDeployments, "delete");
  clock_.Advance(500ms);
  ASSERT_TRUE(clock_.BlockUntilWaiters(1));
  auto batches = sink_.Batches();
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_THAT(batches[1], ElementsAre(W(Op::kIncrBy, "stats:events", "processor|apps/v1/deployments|delete", "1")));
}

TEST_F(StatsRecorderTest, DestructorFlushesWhatIsLeft) {
  {
    StatsRecorder stats(sink_, clock_);
    stats.RecordEvent("reconciler", kDeployments, "delete");
  }
  ASSERT_EQ(sink_.Batches().size(), 1u);
}

TEST_F(StatsRecorderTest, FailedFlushDropsItsDeltasAndRecordingContinues) {
  StatsRecorder stats(sink_, clock_);
  sink_.SetFailing(true);
  stats.RecordEvent("processor", kDeployments, "upsert");
  EXPECT_FALSE(stats.FlushNow());

  sink_.SetFailing(false);
  stats.RecordEvent("processor", kDeployments, "upsert");
  EXPECT_TRUE(stats.FlushNow());
  auto batches = sink_.Batches();
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_THAT(batches[0], ElementsAre(W(Op::kIncrBy, "stats:events", "processor|apps/v1/deployments|upsert", "1")));
}

TEST_F(StatsRecorderTest, LagObservationsLandInTheirBucketsWithSumAndLast) {
  StatsRecorder stats(sink_, clock_);
  stats.ObserveLag(kDeployments, 3ms);
  stats.ObserveLag(kDeployments, 5ms);    // exactly on a bound: le="0.005"
  stats.ObserveLag(kDeployments, 7ms);
  stats.ObserveLag(kDeployments, -2ms);   // clock skew counts as 0
  stats.ObserveLag(kDeployments, 45s);    // beyond the last bound: +Inf only
  stats.FlushNow();

  auto batches = sink_.Batches();
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_THAT(batches[0], UnorderedElementsAre(
                              W(Op::kIncrBy, "stats:lag", "apps/v1/deployments|le=0.005", "3"),
                              W(Op::kIncrBy, "stats:lag", "apps/v1/deployments|le=0.01", "1"),
                              W(Op::kIncrBy, "stats:lag", "apps/v1/deployments|le=+Inf", "1"),
                              W(Op::kIncrByFloat, "stats:lag", "apps/v1/deployments|sum", "45.015"),
                              W(Op::kSet, "stats:lag", "apps/v1/deployments|last", "45"),
                              // FakeClock's wall time: 2024-01-01T00:00:00Z.
                              W(Op::kSet, "stats:lag", "apps/v1/deployments|last_at", "1704067200")));
}

TEST_F(StatsRecorderTest, GaugesAreWrittenOnlyAfterTheyChange) {
  StatsRecorder stats(sink_, clock_);
  stats.SetObjectsInSync(kDeployments, 12);
  stats.SetObjectsInSync(kDeployments, 14);
  stats.SetLastResync(kDeployments, std::chrono::system_clock::time_point(1700000000500ms));
  stats.FlushNow();
  stats.FlushNow();  // unchanged gauges are not rewritten

  auto batches = sink_.Batches();
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_THAT(batches[0], UnorderedElementsAre(W(Op::kSet, "stats:objects", "apps/v1/deployments", "14"),
                                               W(Op::kSet, "stats:resync", "apps/v1/deployments", "1700000000.5")));
}

TEST_F(StatsRecorderTest, SeparatorInsideALabelValueIsReplaced) {
  StatsRecorder stats(sink_, clock_);
  stats.RecordError("synchronizer", kDeployments, "Bad|Reason");
  stats.FlushNow();
  auto batches = sink_.Batches();
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_THAT(batches[0], ElementsAre(W(Op::kIncrBy, "stats:errors", "synchronizer|apps/v1/deployments|Bad_Reason", "1")));
}

TEST_F(StatsRecorderTest, ConcurrentRecordingLosesNoEvent) {
  StatsRecorder stats(sink_, clock_);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 10000;
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          stats.RecordEvent("processor", kDeployments, "upsert");
          if (i % 100 == 0) stats.FlushNow();  // flushes race with recording
          stats.RecordEvent("processor", "v1/gvr" + std::to_string(t % 2), "upsert");
        }
      });
    }
  }
  stats.FlushNow();
  Hashes hashes;
  for (const auto& batch : sink_.Batches()) Apply(hashes, batch);
  auto snapshot = SnapshotFromHashes(hashes);
  EXPECT_EQ((snapshot.events[{"processor", kDeployments, "upsert"}]), std::uint64_t{kThreads * kPerThread});
  EXPECT_EQ((snapshot.events[{"processor", "v1/gvr0", "upsert"}]), std::uint64_t{kThreads * kPerThread / 2});
}

TEST_F(StatsRecorderTest, SnapshotReadsBackWhatTheRecorderWroteSummedOverReplicas) {
  FakeSink other_sink;
  Hashes hashes;
  {
    StatsRecorder replica_a(sink_, clock_);
    StatsRecorder replica_b(other_sink, clock_);
    replica_a.RecordEvent("synchronizer", kDeployments, "upsert");
    replica_b.RecordEvent("synchronizer", kDeployments, "upsert");
    replica_a.ObserveLag(kDeployments, 20ms);
    replica_b.ObserveLag(kDeployments, 2s);
    replica_a.SetObjectsInSync(kDeployments, 7);
    replica_a.SetLastResync("v1/configmaps", std::chrono::system_clock::time_point(1700000000s));
    replica_b.SetLastResync(kDeployments, std::chrono::system_clock::time_point(1700000100s));
    replica_a.RecordBucketOperation("delete", "error");
  }
  for (const auto& batch : sink_.Batches()) Apply(hashes, batch);
  for (const auto& batch : other_sink.Batches()) Apply(hashes, batch);

  StatsSnapshot s = SnapshotFromHashes(hashes);
  EXPECT_EQ((s.events[{"synchronizer", kDeployments, "upsert"}]), 2u);
  const auto& lag = s.lag[kDeployments];
  EXPECT_EQ(lag.count(), 2u);
  EXPECT_EQ(lag.buckets.at(0.025), 1u);
  EXPECT_EQ(lag.buckets.at(2.5), 1u);
  EXPECT_NEAR(lag.sum_seconds, 2.02, 1e-9);
  EXPECT_TRUE(s.CurrentLagSeconds(kDeployments).has_value());
  EXPECT_FALSE(s.CurrentLagSeconds("v1/secrets").has_value());
  EXPECT_EQ(s.ObjectsInSync(), 7);
  EXPECT_EQ(s.LastResync(), std::chrono::system_clock::time_point(1700000100s));
  EXPECT_EQ((s.bucket_operations[{"delete", "error"}]), 1u);
}

TEST_F(StatsRecorderTest, FailuresAreCountedOverReplicasAndTheLatestIsKeptWithItsObject) {
  FakeSink other_sink;
  Hashes hashes;
  {
    StatsRecorder replica_a(sink_, clock_);
    StatsRecorder replica_b(other_sink, clock_);
    replica_a.RecordFailure("synchronizer", kDeployments, "Invalid", "shop/web", "spec.replicas: Invalid value");
    clock_.Advance(5s);
    replica_b.RecordFailure("synchronizer", kDeployments, "Invalid", "shop/api", "spec.template: Required value");
  }
  for (const auto& batch : sink_.Batches()) Apply(hashes, batch);
  for (const auto& batch : other_sink.Batches()) Apply(hashes, batch);

  StatsSnapshot s = SnapshotFromHashes(hashes);
  EXPECT_EQ((s.failures[{"synchronizer", kDeployments, "Invalid"}]), 2u);
  const StatsSnapshot::FailureDetail& last = s.last_failure[{"synchronizer", kDeployments, "Invalid"}];
  EXPECT_EQ(last.object, "shop/api");
  EXPECT_EQ(last.message, "spec.template: Required value");
  EXPECT_EQ(last.at, clock_.Now());
}

// The manual's Object Namespace filter (6.2.8): events, errors and lag per object
// namespace; the lag per resource (status) adds every namespace up, its last
// observation the newest.
TEST_F(StatsRecorderTest, EventsErrorsAndLagAreKeptPerObjectNamespace) {
  Hashes hashes;
  {
    StatsRecorder recorder(sink_, clock_);
    recorder.RecordEvent("synchronizer", kDeployments, "upsert", "shop");
    recorder.RecordEvent("synchronizer", kDeployments, "upsert", "shop");
    recorder.RecordEvent("synchronizer", kDeployments, "upsert", "billing");
    recorder.RecordEvent("synchronizer", "v1/namespaces", "upsert");  // cluster-scoped
    recorder.RecordError("synchronizer", kDeployments, "Invalid", "shop");
    recorder.ObserveLag(kDeployments, 40ms, "shop");
    clock_.Advance(1s);
    recorder.ObserveLag(kDeployments, 2s, "billing");
  }
  for (const auto& batch : sink_.Batches()) Apply(hashes, batch);
  const StatsSnapshot s = SnapshotFromHashes(hashes);
  EXPECT_EQ((s.events.at({"synchronizer", kDeployments, "upsert", "shop"})), 2u);
  EXPECT_EQ((s.events.at({"synchronizer", kDeployments, "upsert", "billing"})), 1u);
  EXPECT_EQ((s.events.at({"synchronizer", "v1/namespaces", "upsert", ""})), 1u);
  EXPECT_EQ((s.errors.at({"synchronizer", kDeployments, "Invalid", "shop"})), 1u);
  EXPECT_EQ((s.lag_by_namespace.at({kDeployments, "shop"}).count()), 1u);
  EXPECT_EQ((s.lag_by_namespace.at({kDeployments, "billing"}).count()), 1u);
  const StatsSnapshot::LagHistogram& all = s.lag.at(kDeployments);
  EXPECT_EQ(all.count(), 2u);
  EXPECT_DOUBLE_EQ(all.sum_seconds, 2.04);
  EXPECT_EQ(all.last_seconds, 2.0);  // billing's, the newer
  EXPECT_EQ(s.CurrentLagSeconds(kDeployments), 2.0);
  // A field written without a namespace (cluster-scoped, or by an older version) reads
  // as namespace "".
  EXPECT_TRUE(hashes.at(std::string(kStatsEventsKey)).contains("synchronizer|v1/namespaces|upsert"));
}

TEST_F(StatsRecorderTest, TheLatestBacklogSampleIsWrittenOnceAndReadBackForRpoNow) {
  Hashes hashes;
  {
    StatsRecorder recorder(sink_, clock_);
    const auto oldest = clock_.Now() - 4s;
    recorder.SetBacklog(12, clock_.Now() - 9s);
    recorder.SetBacklog(5, oldest);  // only the latest sample is flushed
    ASSERT_TRUE(recorder.FlushNow());
    EXPECT_TRUE(recorder.FlushNow());  // nothing new: nothing sent
  }
  ASSERT_EQ(sink_.Batches().size(), 1u);
  for (const auto& batch : sink_.Batches()) Apply(hashes, batch);
  StatsSnapshot s = SnapshotFromHashes(hashes);
  ASSERT_TRUE(s.backlog);
  EXPECT_EQ(s.backlog->messages, 5u);
  EXPECT_EQ(s.backlog->sampled_at, clock_.Now());
  EXPECT_EQ(s.RpoSeconds(clock_.Now() + 1s), 5.0);
  {
    StatsRecorder recorder(sink_, clock_);
    recorder.SetBacklog(0, clock_.Now() - 1s);  // drained: the oldest is ignored
  }
  for (const auto& batch : sink_.Batches()) Apply(hashes, batch);
  s = SnapshotFromHashes(hashes);
  EXPECT_EQ(s.backlog->messages, 0u);
  EXPECT_EQ(s.backlog->oldest, std::nullopt);
  EXPECT_EQ(s.RpoSeconds(clock_.Now() + 1s), 0.0);
}

TEST_F(StatsRecorderTest, AMissingNamespaceIsReportedUntilAnObjectIsWrittenInIt) {
  FakeSink other_sink;
  Hashes hashes;
  {
    StatsRecorder replica_a(sink_, clock_);
    StatsRecorder replica_b(other_sink, clock_);
    replica_a.RecordNamespaceMissing("shop");
    replica_a.RecordNamespaceMissing("web");
    replica_b.RecordNamespaceMissing("api");
    clock_.Advance(5s);
    replica_b.RecordNamespacePresent("web");  // created since: the other replica wrote in it
    replica_a.RecordNamespacePresent("other");
  }
  for (const auto& batch : sink_.Batches()) Apply(hashes, batch);
  for (const auto& batch : other_sink.Batches()) Apply(hashes, batch);

  const StatsSnapshot s = SnapshotFromHashes(hashes);
  EXPECT_EQ(s.MissingNamespaces(clock_.Now(), std::chrono::hours(2)), (std::vector<std::string>{"api", "shop"}));
  // Nobody wrote to them for longer than the window: no longer reported.
  EXPECT_TRUE(s.MissingNamespaces(clock_.Now() + std::chrono::hours(3), std::chrono::hours(2)).empty());
}

TEST(StatsSnapshot, MalformedFieldsAreSkipped) {
  Hashes hashes;
  hashes["stats:events"] = {{"only|two", "1"}, {"a|b|c", "x"}, {"c|v1/pods|upsert", "4"}};
  hashes["stats:lag"] = {{"nogvr", "1"}, {"v1/pods|le=abc", "1"}, {"v1/pods|le=0.1", "2"}};
  hashes["stats:objects"] = {{"v1/pods", "many"}};
  hashes["stats:namespaces"] = {{"shop", "1"}, {"shop|missing", "soon"}, {"a|b|missing", "1"}};
  StatsSnapshot s = SnapshotFromHashes(hashes);
  EXPECT_TRUE(s.namespaces.empty());
  EXPECT_EQ(s.events.size(), 1u);
  EXPECT_EQ(s.lag["v1/pods"].count(), 2u);
  EXPECT_TRUE(s.objects_in_sync.empty());
}

TEST(StatsRecorderOptions, RejectNonPositiveInterval) {
  kube::FakeClock clock;
  FakeSink sink;
  EXPECT_THROW(StatsRecorder(sink, clock, StatsOptions{0ms}), std::invalid_argument);
}

}  // namespace
}  // namespace ro::kubesync

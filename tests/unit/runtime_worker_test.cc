// The shared worker loop: the one switch from a reconcile outcome to a queue action and
// its metric label (ro/runtime/worker.h). Real workqueue and rate limiter on a FakeClock,
// a scripted reconciler; no threads, no sleeps.
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <deque>
#include <functional>
#include <stdexcept>
#include <vector>

#include <nlohmann/json.hpp>

#include "ro/kube/clock.h"
#include "ro/kube/workqueue.h"
#include "ro/runtime/controller.h"
#include "ro/runtime/metrics.h"
#include "ro/runtime/worker.h"

namespace ro::runtime {
namespace {

using std::chrono::milliseconds;

// Answers each Reconcile with the next scripted step and records the requests.
class ScriptedReconciler final : public Reconciler {
 public:
  using Step = std::function<Result()>;
  void Then(Step step) { steps_.push_back(std::move(step)); }

  Result Reconcile(const Request& request, std::stop_token /*stop*/) override {
    seen.push_back(request);
    Step step = std::move(steps_.front());
    steps_.pop_front();
    return step();
  }

  std::vector<Request> seen;

 private:
  std::deque<Step> steps_;
};

class WorkerTest : public ::testing::Test {
 protected:
  WorkerTest()
      : queue_(kube::NewDefaultControllerRateLimiter(clock_), clock_),
        metrics_(registry_),
        worker_("things", queue_, reconciler_, metrics_, clock_) {
    metrics_.RegisterController("things");
  }

  // Queues `key` and runs one worker iteration on it.
  void ProcessOnce(const std::string& key) {
    queue_.Add(key);
    ASSERT_TRUE(worker_.ProcessNextWorkItem(std::stop_token{}));
  }

  double Total(const char* result) const { return metrics_.ReconcileTotal("things", result); }

  kube::FakeClock clock_;
  kube::RateLimitingQueue queue_;
  prometheus::Registry registry_;
  ControllerMetrics metrics_;
  ScriptedReconciler reconciler_;
  ReconcileWorker worker_;
};

TEST(DecideQueueActionTest, MapsEveryOutcomeToOneActionAndLabel) {
  struct Case {
    ReconcileOutcome outcome;
    QueueAction action;
    std::string_view label;
  };
  const std::vector<Case> cases = {
      {{Result{}, nullptr}, QueueAction::kForget, "success"},
      {{Result::Requeue(), nullptr}, QueueAction::kRequeueRateLimited, "requeue"},
      {{Result::RequeueAfter(milliseconds{500}), nullptr}, QueueAction::kRequeueAfter,
       "requeue_after"},
      {{Result{true, milliseconds{500}}, nullptr}, QueueAction::kRequeueAfter, "requeue_after"},
      {{Result{}, std::make_exception_ptr(std::runtime_error("boom"))}, QueueAction::kRetryError,
       "error"},
      {{Result::RequeueAfter(milliseconds{500}),
        std::make_exception_ptr(std::runtime_error("error wins"))},
       QueueAction::kRetryError, "error"},
      {{Result{}, std::make_exception_ptr(TerminalError("spec is nonsense"))},
       QueueAction::kDropTerminal, "error"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(DecideQueueAction(c.outcome), c.action);
    EXPECT_EQ(ResultLabel(c.action), c.label);
  }
}

TEST_F(WorkerTest, SuccessForgetsTheKeyAndCountsSuccess) {
  reconciler_.Then([] { return Result{}; });
  ProcessOnce("ns1/a");
  ASSERT_EQ(reconciler_.seen.size(), 1u);
  EXPECT_EQ(reconciler_.seen[0].key.ns, "ns1");
  EXPECT_EQ(reconciler_.seen[0].key.name, "a");
  EXPECT_EQ(queue_.Len(), 0u);
  EXPECT_EQ(queue_.DelayedLen(), 0u);
  EXPECT_EQ(Total("success"), 1);
  EXPECT_EQ(Total("error"), 0);
}

TEST_F(WorkerTest, AThrowingReconcileIsRetriedWithBackoffAndCountedAsError) {
  reconciler_.Then([]() -> Result { throw std::runtime_error("apiserver said no"); });
  ProcessOnce("ns1/a");
  EXPECT_EQ(queue_.NumRequeues("ns1/a"), 1);
  // The first per-item backoff is 5 ms: the key waits, it is not ready at once.
  EXPECT_EQ(queue_.Len(), 0u);
  EXPECT_EQ(queue_.DelayedLen(), 1u);
  EXPECT_EQ(Total("error"), 1);
  EXPECT_EQ(metrics_.ReconcileErrors("things"), 1);

  clock_.Advance(milliseconds{5});
  reconciler_.Then([]() -> Result { throw std::runtime_error("still no"); });
  ASSERT_TRUE(worker_.ProcessNextWorkItem(std::stop_token{}));
  EXPECT_EQ(queue_.NumRequeues("ns1/a"), 2);
  EXPECT_EQ(Total("error"), 2);
}

TEST_F(WorkerTest, AnExceptionNotDerivedFromStdExceptionIsCaughtToo) {
  reconciler_.Then([]() -> Result { throw 42; });
  ProcessOnce("ns1/a");
  EXPECT_EQ(queue_.NumRequeues("ns1/a"), 1);
  EXPECT_EQ(Total("error"), 1);
}

TEST_F(WorkerTest, SuccessAfterErrorsClearsTheBackoffHistory) {
  reconciler_.Then([]() -> Result { throw std::runtime_error("transient"); });
  ProcessOnce("ns1/a");
  ASSERT_EQ(queue_.NumRequeues("ns1/a"), 1);
  clock_.Advance(milliseconds{5});
  reconciler_.Then([] { return Result{}; });
  ASSERT_TRUE(worker_.ProcessNextWorkItem(std::stop_token{}));
  EXPECT_EQ(queue_.NumRequeues("ns1/a"), 0);
  EXPECT_EQ(Total("success"), 1);
}

TEST_F(WorkerTest, TerminalErrorIsCountedButNotRetried) {
  reconciler_.Then([]() -> Result { throw TerminalError("cannot ever work"); });
  ProcessOnce("ns1/a");
  EXPECT_EQ(queue_.Len(), 0u);
  EXPECT_EQ(queue_.DelayedLen(), 0u);
  EXPECT_EQ(queue_.NumRequeues("ns1/a"), 0);
  EXPECT_EQ(Total("error"), 1);
}

TEST_F(WorkerTest, RequeueAfterSchedulesTheKeyForLaterWithoutBackoff) {
  reconciler_.Then([] { return Result::RequeueAfter(milliseconds{30'000}); });
  ProcessOnce("ns1/a");
  EXPECT_EQ(queue_.DelayedLen(), 1u);
  EXPECT_EQ(queue_.NumRequeues("ns1/a"), 0);
  EXPECT_EQ(Total("requeue_after"), 1);

  clock_.Advance(milliseconds{29'999});
  EXPECT_EQ(queue_.Len(), 0u);
  clock_.Advance(milliseconds{1});
  reconciler_.Then([] { return Result{}; });
  ASSERT_TRUE(worker_.ProcessNextWorkItem(std::stop_token{}));  // ready now: does not block
  EXPECT_EQ(reconciler_.seen.size(), 2u);
}

TEST_F(WorkerTest, RequeueIsRateLimitedAndLabelledRequeue) {
  reconciler_.Then([] { return Result::Requeue(); });
  ProcessOnce("ns1/a");
  EXPECT_EQ(queue_.NumRequeues("ns1/a"), 1);
  EXPECT_EQ(Total("requeue"), 1);
  EXPECT_EQ(Total("error"), 0);
}

TEST_F(WorkerTest, KeysOfClusterScopedObjectsHaveNoNamespace) {
  reconciler_.Then([] { return Result{}; });
  ProcessOnce("cluster-wide");
  ASSERT_EQ(reconciler_.seen.size(), 1u);
  EXPECT_EQ(reconciler_.seen[0].key.ns, "");
  EXPECT_EQ(reconciler_.seen[0].key.name, "cluster-wide");
}

TEST_F(WorkerTest, AfterStopQueuedKeysAreDroppedWithoutReconciling) {
  std::stop_source stop;
  stop.request_stop();
  queue_.Add("ns1/a");
  ASSERT_TRUE(worker_.ProcessNextWorkItem(stop.get_token()));
  EXPECT_TRUE(reconciler_.seen.empty());
  EXPECT_EQ(queue_.Len(), 0u);
}

TEST_F(WorkerTest, ReturnsFalseOnceTheQueueIsShutDownAndDrained) {
  queue_.ShutDown();
  EXPECT_FALSE(worker_.ProcessNextWorkItem(std::stop_token{}));
}

TEST_F(WorkerTest, MetricsAreExposedUnderControllerRuntimeNames) {
  reconciler_.Then([] { return Result{}; });
  ProcessOnce("ns1/a");
  metrics_.TrackQueue("things", queue_);
  queue_.Add("ns1/b");
  metrics_.RefreshQueueDepths();
  const std::string text = SerializeMetrics(registry_);
  EXPECT_NE(text.find(R"(controller_runtime_reconcile_total{controller="things",result="success"} 1)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(controller_runtime_reconcile_errors_total{controller="things"} 0)"),
            std::string::npos);
  EXPECT_NE(text.find("controller_runtime_reconcile_time_seconds_bucket{controller=\"things\""),
            std::string::npos);
  EXPECT_NE(text.find(R"(workqueue_depth{name="things"} 1)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(workqueue_adds_total{name="things"} 1)"), std::string::npos) << text;
}

// client-go's queue metrics: an add of an item already waiting is not counted; the
// latency is the time from the first add to Get().
TEST_F(WorkerTest, QueueAddsAndLatencyAreMeasuredOnTheQueuesClock) {
  metrics_.TrackQueue("things", queue_);
  queue_.Add("ns1/b");
  queue_.Add("ns1/b");  // already waiting
  clock_.Advance(std::chrono::milliseconds(250));
  const std::optional<std::string> item = queue_.Get();
  ASSERT_EQ(item, "ns1/b");
  queue_.Done(*item);
  const std::string text = SerializeMetrics(registry_);
  EXPECT_NE(text.find(R"(workqueue_adds_total{name="things"} 1)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(workqueue_queue_duration_seconds_count{name="things"} 1)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(workqueue_queue_duration_seconds_sum{name="things"} 0.25)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(workqueue_queue_duration_seconds_bucket{name="things",le="0.1"} 0)"), std::string::npos);
  EXPECT_NE(text.find(R"(workqueue_queue_duration_seconds_bucket{name="things",le="1"} 1)"), std::string::npos);
}

TEST(GenerationChangedTest, PassesSpecChangesOnly) {
  const nlohmann::json v1 = {{"metadata", {{"generation", 1}, {"resourceVersion", "10"}}}};
  const nlohmann::json status_write = {{"metadata", {{"generation", 1}, {"resourceVersion", "11"}}}};
  const nlohmann::json spec_change = {{"metadata", {{"generation", 2}, {"resourceVersion", "12"}}}};
  EXPECT_FALSE(GenerationChanged(v1, status_write));
  EXPECT_TRUE(GenerationChanged(status_write, spec_change));
}

}  // namespace
}  // namespace ro::runtime

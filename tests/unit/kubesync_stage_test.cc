// The stage runtime (ro/kubesync/stage.h) and the processor and synchronizer as stages,
// without servers: InMemoryTransport for the wire, a FakeClock for NAK delays, a map of
// namespaces for the processor, a scripted kube::Transport and an in-memory tombstone
// store for the synchronizer.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <algorithm>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "../../src/kubesync/components/applied_state.h"
#include "../../src/kubesync/components/processor_stage.h"
#include "../../src/kubesync/components/stage_runner.h"
#include "../../src/kubesync/components/synchronizer_stage.h"
#include "kube_fake_transport.h"
#include "ro/kube/clock.h"
#include "ro/kube/errors.h"
#include "ro/kubesync/envelope.h"
#include "ro/kubesync/in_memory_transport.h"
#include "ro/kubesync/jetstream.h"
#include "ro/kubesync/kubesync_config.h"
#include "ro/kubesync/pipeline_context.h"
#include "ro/kubesync/pipeline_wire.h"
#include "ro/kubesync/stage.h"
#include "ro/kubesync/stats.h"
#include "ro/plugins/kubernetes/control_metadata.h"
#include "ro/plugins/kubernetes/namespace_metadata.h"

namespace ro::kubesync {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using Settlement = InMemoryTransport::Settlement;

// Polls `done` until it holds or `within` passed (never a bare sleep).
template <typename Fn>
bool Eventually(Fn&& done, std::chrono::milliseconds within = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return done();
}

// Statistics go nowhere (they have their own tests).
class NullSink final : public StatsSink {
 public:
  void Write(std::span<const HashWrite>) override {}
};

json ConfigMap(const std::string& ns, const std::string& name, const std::string& rv, const std::string& uid = "u-1") {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"namespace", ns}, {"uid", uid}, {"resourceVersion", rv}}},
          {"data", {{"k", "v" + rv}}}};
}

std::string EventFor(EventType type, json object, bool resync = false, std::int64_t generation = 0,
                     std::int64_t stream_created = 0) {
  Envelope e;
  e.type = type;
  e.resync = resync;
  e.config_generation = generation;
  e.stream_created = stream_created;
  e.gvr = {"", "v1", "configmaps"};
  e.observed_at = std::chrono::system_clock::now();
  e.object = std::move(object);
  return Encode(e);
}

// ---- StageRunner over InMemoryTransport -------------------------------------------------

class StageRunnerTest : public ::testing::Test {
 protected:
  static constexpr char kIn[] = "ks.t.events";
  static constexpr char kOut[] = "ks.t.apply";

  ~StageRunnerTest() override { Stop(); }

  // Runs `stage` over kIn with `lanes` lanes until Stop().
  void Start(StageRunner::Stage stage, std::size_t lanes = 2, std::chrono::milliseconds heartbeat = 0ms) {
    StageRunnerOptions options;
    options.lanes = lanes;
    options.in_progress_interval = heartbeat;
    options.fetch_timeout = 20ms;
    options.config_generation = generation_;
    if (batch_publishes_) options.publish_batch_bytes = kMaxBatchBytes;
    if (max_held_bytes_ > 0) options.max_held_bytes = max_held_bytes_;
    StageRunner::Hooks hooks;
    hooks.on_decode_failure = [this](std::uint64_t, const DecodeError&) { ++decode_failures_; };
    hooks.on_internal_error = [this](const Envelope&, const std::exception&) { ++internal_errors_; };
    ConsumerConfig consumer;
    consumer.filter_subject = kIn;
    runner_ = std::make_unique<StageRunner>([this, consumer] { return transport_.Subscribe(consumer); },
                                            [this] { return transport_.NewPublisher(); }, std::move(stage),
                                            std::move(hooks), ro::log::Logger(), options);
    thread_ = std::jthread([this](std::stop_token stop) { runner_->Run(stop); });
  }
  void Stop() {
    if (thread_.joinable()) {
      thread_.request_stop();
      thread_.join();
    }
  }
  std::vector<Settlement> Settled() const { return transport_.Settlements(kIn); }

  kube::FakeClock clock_;
  InMemoryTransport transport_{clock_};
  std::int64_t generation_ = 0;  // StageRunnerOptions::config_generation of Start
  bool batch_publishes_ = false;  // StageRunnerOptions::publish_batch_bytes of Start
  std::size_t max_held_bytes_ = 0;  // StageRunnerOptions::max_held_bytes of Start (0: default)
  std::unique_ptr<StageRunner> runner_;
  std::jthread thread_;
  std::atomic<int> decode_failures_{0};
  std::atomic<int> internal_errors_{0};
};

// A spec change rolls the Deployments one by one: until the previous pods are gone they
// must not handle the new pods' messages (made under a configuration they do not have).
TEST_F(StageRunnerTest, AMessageOfANewerConfigurationIsLeftToTheNewComponentsAndOlderOnesAreHandled) {
  generation_ = 2;
  std::mutex mu;
  std::vector<std::string> handled;
  Start([&](Envelope& e, const DeliveryInfo&, std::stop_token) {
    std::lock_guard lock(mu);
    handled.push_back(e.object["metadata"]["name"]);
    return Outcome::Ack();
  });
  transport_.Inject(kIn, EventFor(EventType::kUpsert, ConfigMap("ns", "newer", "1"), true, 3));
  transport_.Inject(kIn, EventFor(EventType::kUpsert, ConfigMap("ns", "same", "1"), true, 2));
  transport_.Inject(kIn, EventFor(EventType::kUpsert, ConfigMap("ns", "older", "1"), true, 1));
  transport_.Inject(kIn, EventFor(EventType::kUpsert, ConfigMap("ns", "unknown", "1"), true, 0));
  ASSERT_TRUE(Eventually([&] { return Settled().size() == 4; }));
  {
    std::lock_guard lock(mu);
    EXPECT_THAT(handled, ::testing::UnorderedElementsAre("same", "older", "unknown"));
  }
  const std::vector<Settlement> settled = Settled();
  const auto nak = std::find_if(settled.begin(), settled.end(),
                                [](const Settlement& s) { return s.kind == Settlement::Kind::kNak; });
  ASSERT_NE(nak, settled.end());
  EXPECT_EQ(nak->stream_sequence, 1u);
  EXPECT_EQ(nak->delay, 1000ms);
  EXPECT_EQ(std::count_if(settled.begin(), settled.end(),
                          [](const Settlement& s) { return s.kind == Settlement::Kind::kAck; }),
            3);
  EXPECT_EQ(transport_.Pending(kIn).size(), 1u);  // still there for a component of generation 3
}

// A nats-server that lost its store: the events still in flight from the lost stream
// (a processor's publish retried into the new stream, a listener's publish before it saw
// the new stream) would reach the destination after the listener's full re-publish and
// the reconcile that follows it, and re-create what the source deleted meanwhile (the
// deletion was lost with the stream). They are acked without reaching the stage.
TEST_F(StageRunnerTest, AMessageOfAStreamThatWasLostIsDroppedAndNewerOrUnknownOnesAreHandled) {
  transport_.SetStreamCreated(200);
  std::mutex mu;
  std::vector<std::string> handled;
  Start([&](Envelope& e, const DeliveryInfo&, std::stop_token) {
    std::lock_guard lock(mu);
    handled.push_back(e.object["metadata"]["name"]);
    return Outcome::Ack();
  });
  transport_.Inject(kIn, EventFor(EventType::kUpsert, ConfigMap("ns", "lost", "1"), false, 0, 100));
  transport_.Inject(kIn, EventFor(EventType::kUpsert, ConfigMap("ns", "current", "1"), false, 0, 200));
  transport_.Inject(kIn, EventFor(EventType::kUpsert, ConfigMap("ns", "newer", "1"), false, 0, 300));
  transport_.Inject(kIn, EventFor(EventType::kDelete, ConfigMap("ns", "unknown", "1"), false, 0, 0));
  ASSERT_TRUE(Eventually([&] { return Settled().size() == 4; }));
  {
    std::lock_guard lock(mu);
    EXPECT_THAT(handled, ::testing::UnorderedElementsAre("current", "newer", "unknown"));
  }
  for (const Settlement& s : Settled()) EXPECT_EQ(s.kind, Settlement::Kind::kAck) << s.stream_sequence;
  EXPECT_THAT(transport_.Pending(kIn), ::testing::IsEmpty());
}

TEST_F(StageRunnerTest, APublishIsAckedOnlyOnceStoredAndAFailedCommitRedeliversTheInput) {
  transport_.FailCommits(1);
  std::atomic<int> calls{0};
  Start([&](Envelope& e, const DeliveryInfo&, std::stop_token) {
    ++calls;
    return Outcome::Publish(kOut, "out-" + std::string(e.object["metadata"]["name"]));
  });
  transport_.Inject(kIn, EventFor(EventType::kUpsert, ConfigMap("ns", "a", "1")));
  ASSERT_TRUE(Eventually([&] { return transport_.Committed(kOut).size() == 1; }));
  ASSERT_TRUE(Eventually([&] { return transport_.Pending(kIn).empty(); }));
  const std::vector<Settlement> settled = Settled();
  ASSERT_EQ(settled.size(), 2u);
  EXPECT_EQ(settled[0].kind, Settlement::Kind::kNak);  // the commit failed: nothing was acked
  EXPECT_EQ(settled[0].delay, 0ms);
  EXPECT_EQ(settled[1].kind, Settlement::Kind::kAck);
  EXPECT_EQ(settled[1].delivery_count, 2u);
  EXPECT_EQ(calls.load(), 2);
  EXPECT_THAT(transport_.Committed(kOut), ::testing::ElementsAre("out-a"));
}

TEST_F(StageRunnerTest, AHeldMessageGetsInProgressHeartbeatsUntilItIsSettledAndNoneAfter) {
  std::atomic<bool> release{false};
  Start(
      [&](Envelope&, const DeliveryInfo&, std::stop_token stop) {
        // A slow destination: the message is held far longer than the heartbeat interval.
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (!release.load() && !stop.stop_requested() && std::chrono::steady_clock::now() < deadline) {
          std::this_thread::sleep_for(1ms);
        }
        return Outcome::Ack();
      },
      1, 20ms);
  const std::uint64_t held = transport_.Inject(kIn, EventFor(EventType::kUpsert, ConfigMap("ns", "a", "1")));
  ASSERT_TRUE(Eventually([&] { return transport_.Heartbeats(held) >= 3; }));
  release = true;
  ASSERT_TRUE(Eventually([&] { return transport_.Pending(kIn).empty(); }));
  // More messages while the heartbeats run: never one for a message already settled.
  for (int i = 0; i < 50; ++i) {
    transport_.Inject(kIn, EventFor(EventType::kUpsert, ConfigMap("ns", "b" + std::to_string(i), "1")));
  }
  ASSERT_TRUE(Eventually([&] { return transport_.Pending(kIn).empty(); }));
  Stop();
  EXPECT_EQ(transport_.HeartbeatsAfterSettlement(), 0u);
  EXPECT_EQ(Settled().size(), 51u);
}

TEST_F(StageRunnerTest, ANakWaitsTheBackoffAndAtLeastTheServersRetryAfter) {
  std::atomic<int> calls{0};
  Start([&](Envelope&, const DeliveryInfo& info, std::stop_token) {
    ++calls;
    return info.delivery_count == 1 ? Outcome::Nak(4s) : Outcome::Ack();
  });
  transport_.Inject(kIn, EventFor(EventType::kUpsert, ConfigMap("ns", "a", "1")));
  ASSERT_TRUE(Eventually([&] { return Settled().size() == 1; }));
  EXPECT_EQ(Settled()[0].kind, Settlement::Kind::kNak);
  EXPECT_EQ(Settled()[0].delay, 4s);
  // Not redelivered before its time (the fetcher keeps polling meanwhile).
  clock_.Advance(3900ms);
  EXPECT_FALSE(Eventually([&] { return calls.load() > 1; }, 300ms));
  clock_.Advance(200ms);
  ASSERT_TRUE(Eventually([&] { return Settled().size() == 2; }));
  EXPECT_EQ(Settled()[1].kind, Settlement::Kind::kAck);
}

TEST_F(StageRunnerTest, TermEndsAMessageAndAnUndecodableOneIsTerminatedWithoutReachingTheStage) {
  std::atomic<int> calls{0};
  Start([&](Envelope&, const DeliveryInfo&, std::stop_token) {
    ++calls;
    return Outcome::Term("Transform");
  });
  transport_.Inject(kIn, "not an envelope");
  transport_.Inject(kIn, EventFor(EventType::kUpsert, ConfigMap("ns", "a", "1")));
  ASSERT_TRUE(Eventually([&] { return Settled().size() == 2; }));
  for (const Settlement& s : Settled()) EXPECT_EQ(s.kind, Settlement::Kind::kTerm);
  EXPECT_EQ(decode_failures_.load(), 1);
  EXPECT_EQ(calls.load(), 1);
  EXPECT_TRUE(transport_.Pending(kIn).empty());
}

TEST_F(StageRunnerTest, AStageThatThrowsNaksTheMessageAndTheLaneGoesOn) {
  Start([&](Envelope& e, const DeliveryInfo&, std::stop_token) -> Outcome {
    if (e.object["metadata"]["name"] == "bad") throw std::runtime_error("bug");
    return Outcome::Ack();
  });
  transport_.Inject(kIn, EventFor(EventType::kUpsert, ConfigMap("ns", "bad", "1")));
  transport_.Inject(kIn, EventFor(EventType::kUpsert, ConfigMap("ns", "good", "1")));
  ASSERT_TRUE(Eventually([&] { return Settled().size() >= 2; }));
  EXPECT_GE(internal_errors_.load(), 1);
  int acks = 0;
  for (const Settlement& s : Settled()) acks += s.kind == Settlement::Kind::kAck ? 1 : 0;
  EXPECT_EQ(acks, 1);
}

// ---- Batches: several events in one message ---------------------------------------------

std::string BatchOf(const std::vector<std::string>& events) {
  BatchBuilder batch;
  for (const std::string& e : events) {
    if (!batch.Add(e)) ADD_FAILURE() << "batch full";
  }
  return batch.Take();
}

TEST_F(StageRunnerTest, ABatchsEventsGoToTheStageOneByOneAndTheMessageIsAckedOnceAllAre) {
  std::mutex mu;
  std::vector<std::string> handled;
  Start(
      [&](Envelope& e, const DeliveryInfo&, std::stop_token) {
        std::lock_guard lock(mu);
        handled.push_back(e.object["metadata"]["name"]);
        return Outcome::Ack();
      },
      /*lanes=*/4);
  std::vector<std::string> events;
  for (int i = 0; i < 20; ++i) {
    events.push_back(EventFor(EventType::kUpsert, ConfigMap("ns", "o" + std::to_string(i), "1")));
  }
  transport_.Inject(kIn, BatchOf(events));
  ASSERT_TRUE(Eventually([&] { return Settled().size() == 1; }));
  EXPECT_EQ(Settled()[0].kind, Settlement::Kind::kAck);
  std::lock_guard lock(mu);
  EXPECT_EQ(handled.size(), 20u);
  EXPECT_EQ(std::set<std::string>(handled.begin(), handled.end()).size(), 20u);
}

TEST_F(StageRunnerTest, ABatchWithANakedEventIsNakedOnceAfterTheLongestDelayAndRedeliveredWhole) {
  std::atomic<int> calls{0};
  Start(
      [&](Envelope& e, const DeliveryInfo& info, std::stop_token) {
        ++calls;
        if (e.object["metadata"]["name"] == "busy" && info.delivery_count == 1) return Outcome::Nak(2s);
        if (e.object["metadata"]["name"] == "slow" && info.delivery_count == 1) return Outcome::Nak();
        return Outcome::Ack();
      },
      /*lanes=*/3);
  transport_.Inject(kIn, BatchOf({EventFor(EventType::kUpsert, ConfigMap("ns", "a", "1")),
                                  EventFor(EventType::kUpsert, ConfigMap("ns", "busy", "1")),
                                  EventFor(EventType::kUpsert, ConfigMap("ns", "slow", "1")),
                                  EventFor(EventType::kUpsert, ConfigMap("ns", "b", "1"))}));
  ASSERT_TRUE(Eventually([&] { return Settled().size() == 1; }));
  EXPECT_EQ(Settled()[0].kind, Settlement::Kind::kNak);
  EXPECT_EQ(Settled()[0].delay, 2s);  // the server's Retry-After, longer than the backoff
  EXPECT_EQ(calls.load(), 4);
  clock_.Advance(2s);
  ASSERT_TRUE(Eventually([&] { return Settled().size() == 2; }));
  EXPECT_EQ(Settled()[1].kind, Settlement::Kind::kAck);
  EXPECT_EQ(Settled()[1].delivery_count, 2u);
  EXPECT_EQ(calls.load(), 8);  // every event again: the resourceVersion rule makes that harmless
}

TEST_F(StageRunnerTest, ABatchIsTerminatedOnlyWhenEveryEventIsAndAnInvalidMemberDoesNotStopTheOthers) {
  Start([&](Envelope& e, const DeliveryInfo&, std::stop_token) {
    return e.object["metadata"]["name"] == "ok" ? Outcome::Ack() : Outcome::Term("Invalid");
  });
  const std::string bad1 = EventFor(EventType::kUpsert, ConfigMap("ns", "bad1", "1"));
  const std::string bad2 = EventFor(EventType::kUpsert, ConfigMap("ns", "bad2", "1"));
  const std::string ok = EventFor(EventType::kUpsert, ConfigMap("ns", "ok", "1"));
  transport_.Inject(kIn, BatchOf({bad1, bad2}));
  ASSERT_TRUE(Eventually([&] { return Settled().size() == 1; }));
  EXPECT_EQ(Settled()[0].kind, Settlement::Kind::kTerm);
  transport_.Inject(kIn, BatchOf({bad1, ok}));
  ASSERT_TRUE(Eventually([&] { return Settled().size() == 2; }));
  EXPECT_EQ(Settled()[1].kind, Settlement::Kind::kAck);
  // A member that is not an envelope is reported; the batch's other events are handled.
  std::string with_invalid = BatchOf({ok, ok});
  with_invalid.insert(with_invalid.size() - 2, R"(,{"v":1})");
  transport_.Inject(kIn, with_invalid);
  ASSERT_TRUE(Eventually([&] { return Settled().size() == 3; }));
  EXPECT_EQ(Settled()[2].kind, Settlement::Kind::kAck);
  EXPECT_EQ(decode_failures_.load(), 1);
}

TEST_F(StageRunnerTest, ABatchsEventsOfANewerConfigurationLeaveTheWholeMessageToTheNewComponents) {
  generation_ = 2;
  std::atomic<int> calls{0};
  Start([&](Envelope&, const DeliveryInfo&, std::stop_token) {
    ++calls;
    return Outcome::Ack();
  });
  transport_.Inject(kIn, BatchOf({EventFor(EventType::kUpsert, ConfigMap("ns", "a", "1"), true, 2),
                                  EventFor(EventType::kUpsert, ConfigMap("ns", "b", "1"), true, 3)}));
  ASSERT_TRUE(Eventually([&] { return Settled().size() == 1; }));
  EXPECT_EQ(Settled()[0].kind, Settlement::Kind::kNak);
  EXPECT_EQ(Settled()[0].delay, 1000ms);
  EXPECT_EQ(calls.load(), 1);
}

TEST_F(StageRunnerTest, WithPublishBatchesALanesOutputsGoAsOneMessageAckedOnceStored) {
  batch_publishes_ = true;
  // All ten are fetched at once; the first is held in the stage while the fetcher queues
  // the others, so the lane takes them as one batch.
  for (int i = 0; i < 10; ++i) {
    transport_.Inject(kIn, EventFor(EventType::kUpsert, ConfigMap("ns", "o" + std::to_string(i), "1")));
  }
  std::atomic<bool> entered{false};
  std::atomic<bool> release{false};
  Start(
      [&](Envelope& e, const DeliveryInfo&, std::stop_token) {
        entered = true;
        Eventually([&] { return release.load(); });
        Envelope out;
        out.gvr = e.gvr;
        out.object = e.object;
        out.object["data"] = {{"k", "transformed"}};
        return Outcome::Publish(kOut, Encode(out));
      },
      /*lanes=*/1);
  ASSERT_TRUE(Eventually([&] { return entered.load(); }));
  release = true;
  ASSERT_TRUE(Eventually([&] { return Settled().size() == 10; }));
  for (const Settlement& s : Settled()) EXPECT_EQ(s.kind, Settlement::Kind::kAck);
  std::size_t events = 0;
  const std::vector<std::string> committed = transport_.Committed(kOut);
  for (const std::string& message : committed) {
    const DecodedMessage decoded = DecodeMessage(message);
    for (const Envelope& e : decoded.events) EXPECT_EQ(e.object["data"]["k"], "transformed");
    events += decoded.events.size();
  }
  EXPECT_EQ(events, 10u);
  EXPECT_LT(committed.size(), 10u);  // at least the events queued behind the first went together
}

// A backlog of large batches must not all be fetched into memory at once: over the
// budget of held bytes the fetcher waits until messages are settled.
TEST_F(StageRunnerTest, TheFetcherHoldsNoMoreThanItsByteBudgetOfUnsettledMessages) {
  max_held_bytes_ = 1;  // every message is over it: one held at a time
  std::atomic<int> in_stage{0};
  std::atomic<int> most_in_stage{0};
  std::atomic<int> handled{0};
  Start(
      [&](Envelope&, const DeliveryInfo&, std::stop_token) {
        const int now = ++in_stage;
        int seen = most_in_stage.load();
        while (now > seen && !most_in_stage.compare_exchange_weak(seen, now)) {
        }
        std::this_thread::sleep_for(2ms);  // widens the window two held messages would overlap in
        --in_stage;
        ++handled;
        return Outcome::Ack();
      },
      /*lanes=*/4);
  for (int i = 0; i < 20; ++i) {
    transport_.Inject(kIn, EventFor(EventType::kUpsert, ConfigMap("ns", "o" + std::to_string(i), "1")));
  }
  ASSERT_TRUE(Eventually([&] { return Settled().size() == 20; }));
  EXPECT_EQ(handled.load(), 20);
  EXPECT_EQ(most_in_stage.load(), 1);  // four lanes, but never two messages held at once
}

TEST_F(StageRunnerTest, OneObjectsEventsAreHandledInArrivalOrder) {
  std::mutex mu;
  std::map<std::string, std::vector<std::string>> seen;
  Start(
      [&](Envelope& e, const DeliveryInfo&, std::stop_token) {
        std::lock_guard lock(mu);
        seen[e.object["metadata"]["name"]].push_back(e.object["metadata"]["resourceVersion"]);
        return Outcome::Ack();
      },
      /*lanes=*/4);
  for (int rv = 1; rv <= 50; ++rv) {
    for (const char* name : {"a", "b", "c"}) {
      transport_.Inject(kIn, EventFor(EventType::kUpsert, ConfigMap("ns", name, std::to_string(rv))));
    }
  }
  ASSERT_TRUE(Eventually([&] { return Settled().size() == 150; }));
  std::lock_guard lock(mu);
  for (const char* name : {"a", "b", "c"}) {
    ASSERT_EQ(seen[name].size(), 50u);
    for (int rv = 1; rv <= 50; ++rv) EXPECT_EQ(seen[name][rv - 1], std::to_string(rv)) << name;
  }
}

TEST(StageOutcome, OneClassificationForEveryFailure) {
  EXPECT_EQ(OutcomeOf(kube::TransportError(kube::TransportError::Kind::kConnect, "connection refused")).kind, Outcome::Kind::kNak);
  const Outcome throttled = OutcomeOf(kube::ApiError(429, kube::StatusReason::kTooManyRequests, "slow down", {}, 7s));
  EXPECT_EQ(throttled.kind, Outcome::Kind::kNak);
  EXPECT_EQ(throttled.retry_after, 7s);
  EXPECT_EQ(OutcomeOf(kube::ApiError(503, kube::StatusReason::kServiceUnavailable, "down")).kind,
            Outcome::Kind::kNak);
  const Outcome invalid = OutcomeOf(kube::ApiError(422, kube::StatusReason::kInvalid, "bad"));
  EXPECT_EQ(invalid.kind, Outcome::Kind::kTerm);
  EXPECT_EQ(invalid.reason, "Invalid");
  EXPECT_EQ(OutcomeOf(NatsError("fetch", 26, 0, "timeout")).kind, Outcome::Kind::kNak);
  EXPECT_EQ(OutcomeOf(std::runtime_error("bug")).reason, "Internal");
}

// ---- ProcessorStage -----------------------------------------------------------------------

const json kProcessorConfig = json::parse(R"({
  "liveSynchronization": {"namespace": "dr-config", "name": "pre", "uid": "u-1", "generation": 5},
  "config": {"sourceName": "source", "destinationName": "destination",
             "replication": {"resources": [
               {"version": "v1", "resource": "configmaps",
                "filters": {"namespaceSelector": {"matchLabels": {"sync": "true"}}},
                "transformation": {"patch": [{"op": "replace", "path": "/data/k", "value": "patched"}]}}]}},
  "sourceCluster": {"name": "source", "namespace": "dr-config", "uid": "u-2", "resourceVersion": "7",
                    "kubeconfigPath": "/dev/null"},
  "destinationCluster": {"name": "destination", "namespace": "dr-config", "uid": "u-3", "resourceVersion": "8",
                         "kubeconfigPath": "/dev/null"},
  "natsUrl": "nats://nats:4222", "redisAddr": "redis:6379"
})");

// Namespaces from a map; a name in `failing` cannot be read right now.
class MapNamespaces final : public NamespaceLookup {
 public:
  std::optional<kube::ObjectPtr> Get(const std::string& ns) override {
    std::lock_guard lock(mu);
    if (failing.count(ns) != 0) return std::nullopt;
    const auto it = labels.find(ns);
    if (it == labels.end()) return kube::ObjectPtr();
    return std::make_shared<const json>(json{{"metadata", {{"name", ns}, {"labels", it->second}}}});
  }
  std::mutex mu;
  std::map<std::string, json> labels;
  std::set<std::string> failing;
};

class ProcessorStageTest : public ::testing::Test {
 protected:
  ProcessorStageTest() : context_(KubesyncConfigFromJson(kProcessorConfig), ComponentId::kProcessor, "p-1") {
    namespaces_.labels["selected"] = {{"sync", "true"}};
    namespaces_.labels["other"] = {{"sync", "false"}};
  }
  Outcome Handle(EventType type, json object) {
    Envelope e = Decode(EventFor(type, std::move(object)));
    return stage_.Handle(e, DeliveryInfo{}, std::stop_token{});
  }
  static Envelope Published(const Outcome& outcome) { return Decode(outcome.data); }

  NullSink sink_;
  kube::FakeClock clock_;
  StatsRecorder stats_{sink_, clock_};
  PipelineContext context_;
  MapNamespaces namespaces_;
  ProcessorStage stage_{context_, namespaces_, stats_, nullptr, ProcessorOptions{}};
};

TEST_F(ProcessorStageTest, AMatchingUpsertIsPublishedTransformedAndStampedOnTheApplySubject) {
  const Outcome outcome = Handle(EventType::kUpsert, ConfigMap("selected", "cm", "5"));
  ASSERT_EQ(outcome.kind, Outcome::Kind::kPublish);
  EXPECT_EQ(outcome.subject, context_.names().apply_subject());
  const Envelope out = Published(outcome);
  EXPECT_EQ(out.type, EventType::kUpsert);
  EXPECT_EQ(out.object["data"]["k"], "patched");
  const auto stamp = plugins::kubernetes::ReadStamp(out.object);
  ASSERT_TRUE(stamp.has_value());
  EXPECT_EQ(stamp->source_uid, "u-1");
  EXPECT_EQ(stamp->source_resource_version, "5");
}

TEST_F(ProcessorStageTest, TheApplyMessageCarriesTheProcessorsConfigurationGeneration) {
  // An event of the previous configuration (a listener not yet replaced) is decided under
  // this one, and says so.
  Envelope e = Decode(EventFor(EventType::kUpsert, ConfigMap("selected", "cm", "5"), false, 4));
  EXPECT_EQ(Published(stage_.Handle(e, DeliveryInfo{}, std::stop_token{})).config_generation, 5);
}

TEST_F(ProcessorStageTest, TheApplyMessageKeepsTheStreamIncarnationTheListenerPublishedInto) {
  Envelope e = Decode(EventFor(EventType::kUpsert, ConfigMap("selected", "cm", "5"), false, 4, 1234));
  EXPECT_EQ(Published(stage_.Handle(e, DeliveryInfo{}, std::stop_token{})).stream_created, 1234);
}

TEST_F(ProcessorStageTest, WithForcedNamespacesAnUpsertCarriesItsSourceNamespace) {
  EXPECT_TRUE(Published(Handle(EventType::kUpsert, ConfigMap("selected", "cm", "5"))).source_namespace.is_null())
      << "nobody reads it without forceNamespaceCreation";
  json config = kProcessorConfig;
  config["config"]["replication"]["forceNamespaceCreation"] = true;
  const PipelineContext forced(KubesyncConfigFromJson(config), ComponentId::kProcessor, "p-1");
  ProcessorStage stage(forced, namespaces_, stats_, nullptr, ProcessorOptions{});
  const auto handle = [&](EventType type, json object) {
    Envelope e = Decode(EventFor(type, std::move(object)));
    return Published(stage.Handle(e, DeliveryInfo{}, std::stop_token{}));
  };
  EXPECT_EQ(handle(EventType::kUpsert, ConfigMap("selected", "cm", "5")).source_namespace["labels"],
            json({{"sync", "true"}}));
  EXPECT_TRUE(handle(EventType::kDelete, ConfigMap("selected", "cm", "9")).source_namespace.is_null());
}

TEST_F(ProcessorStageTest, ANamespaceThatCannotBeReadIsRetriedNeverTurnedIntoADelete) {
  namespaces_.failing.insert("selected");
  const Outcome outcome = Handle(EventType::kUpsert, ConfigMap("selected", "cm", "5"));
  EXPECT_EQ(outcome.kind, Outcome::Kind::kNak);
  namespaces_.failing.clear();
  EXPECT_EQ(Handle(EventType::kUpsert, ConfigMap("selected", "cm", "5")).kind, Outcome::Kind::kPublish);
}

TEST_F(ProcessorStageTest, AnUnselectedUpsertBecomesAnEnsureAbsentThatLeavesNoTombstone) {
  const Outcome outcome = Handle(EventType::kUpsert, ConfigMap("other", "cm", "5"));
  ASSERT_EQ(outcome.kind, Outcome::Kind::kPublish);
  const Envelope out = Published(outcome);
  EXPECT_EQ(out.type, EventType::kDelete);
  EXPECT_FALSE(out.source_deleted);
}

TEST_F(ProcessorStageTest, ASourceDeletionIsMarkedForATombstone) {
  const Outcome outcome = Handle(EventType::kDelete, ConfigMap("selected", "cm", "9"));
  ASSERT_EQ(outcome.kind, Outcome::Kind::kPublish);
  const Envelope out = Published(outcome);
  EXPECT_EQ(out.type, EventType::kDelete);
  EXPECT_TRUE(out.source_deleted);
}

TEST_F(ProcessorStageTest, APatchThatCannotApplyEndsTheMessage) {
  json object = ConfigMap("selected", "cm", "5");
  object.erase("data");  // "replace /data/k" needs it
  const Outcome outcome = Handle(EventType::kUpsert, object);
  EXPECT_EQ(outcome.kind, Outcome::Kind::kTerm);
  EXPECT_EQ(outcome.reason, "Transform");
}

TEST_F(ProcessorStageTest, TheProcessorStageRunsOnTheRuntimeAndAcksOnlyWhatWasStored) {
  InMemoryTransport transport(clock_);
  StageRunnerOptions options;
  options.fetch_timeout = 20ms;
  ConsumerConfig consumer = ProcessorConsumerConfig(context_.names());
  StageRunner runner([&] { return transport.Subscribe(consumer); }, [&] { return transport.NewPublisher(); },
                     [&](Envelope& e, const DeliveryInfo& info, std::stop_token stop) {
                       return stage_.Handle(e, info, stop);
                     },
                     {}, ro::log::Logger(), options);
  std::jthread thread([&](std::stop_token stop) { runner.Run(stop); });
  const std::string events = context_.names().events_subject();
  const std::string apply = context_.names().apply_subject();
  transport.Inject(events, EventFor(EventType::kUpsert, ConfigMap("selected", "a", "1")));
  transport.Inject(events, EventFor(EventType::kUpsert, ConfigMap("other", "b", "2")));
  transport.Inject(events, EventFor(EventType::kDelete, ConfigMap("selected", "c", "3")));
  ASSERT_TRUE(Eventually([&] { return transport.Committed(apply).size() == 3; }));
  ASSERT_TRUE(Eventually([&] { return transport.Pending(events).empty(); }));
  for (const Settlement& s : transport.Settlements(events)) EXPECT_EQ(s.kind, Settlement::Kind::kAck);
  thread.request_stop();
}

// ---- SynchronizerStage --------------------------------------------------------------------

class MapTombstones final : public TombstoneStore {
 public:
  std::optional<Entry> GetEntry(std::string_view key) override {
    std::lock_guard lock(mu);
    if (failing) throw NatsError("kv get", 26, 0, "timeout");
    if (hidden_reads > 0) {  // another replica's write not seen yet
      --hidden_reads;
      return std::nullopt;
    }
    const auto it = values.find(std::string(key));
    if (it == values.end()) return std::nullopt;
    return Entry{it->second.first, it->second.second};
  }
  bool Update(std::string_view key, std::string_view value, std::uint64_t revision) override {
    std::lock_guard lock(mu);
    if (failing) throw NatsError("kv update", 26, 0, "timeout");
    const auto it = values.find(std::string(key));
    if ((it == values.end() ? 0 : it->second.second) != revision) return false;
    values[std::string(key)] = {std::string(value), ++last_revision};
    ++puts;
    return true;
  }
  std::mutex mu;
  std::map<std::string, std::pair<std::string, std::uint64_t>> values;  // value, revision (0: none)
  std::uint64_t last_revision = 0;
  bool failing = false;
  int hidden_reads = 0;
  int puts = 0;
};

json Status(int code, const std::string& reason, const std::string& message, int retry_after_seconds = 0) {
  json status = {{"kind", "Status"}, {"apiVersion", "v1"}, {"status", "Failure"},
                 {"code", code},     {"reason", reason},   {"message", message}};
  if (retry_after_seconds > 0) status["details"] = {{"retryAfterSeconds", retry_after_seconds}};
  return status;
}

class SynchronizerStageTest : public ::testing::Test {
 protected:
  static kube::RestConfig Config() {
    kube::RestConfig config;
    config.server = "https://destination";
    return config;
  }
  SynchronizerStageTest()
      : context_(KubesyncConfigFromJson(kProcessorConfig), ComponentId::kSynchronizer, "s-1"),
        processor_context_(KubesyncConfigFromJson(kProcessorConfig), ComponentId::kProcessor, "p-1") {}

  // The destination form of a source event, as the processor publishes it.
  Envelope Apply(EventType type, json source_object) {
    Envelope e = Decode(EventFor(type, std::move(source_object)));
    MapNamespaces namespaces;
    namespaces.labels["selected"] = {{"sync", "true"}};
    ProcessorStage processor(processor_context_, namespaces, stats_, nullptr, ProcessorOptions{});
    const Outcome published = processor.Handle(e, DeliveryInfo{}, std::stop_token{});
    EXPECT_EQ(published.kind, Outcome::Kind::kPublish);
    return Decode(published.data);
  }
  Outcome Handle(Envelope e) { return stage_.Handle(e, DeliveryInfo{}, std::stop_token{}); }
  bool Sent(const std::string& method) const {
    for (const auto& request : transport_->requests) {
      if (request.method == method) return true;
    }
    return false;
  }

  NullSink sink_;
  kube::FakeClock clock_;
  StatsRecorder stats_{sink_, clock_};
  PipelineContext context_;
  PipelineContext processor_context_;
  std::shared_ptr<kube::testing::FakeTransport> transport_ = std::make_shared<kube::testing::FakeTransport>();
  kube::DynamicClient destination_{Config(), transport_};
  AppliedStateCache cache_{{{"", "v1", "configmaps"}}, context_.stamp().managed_by, clock_, 10min};
  MapTombstones tombstones_;
  SynchronizerStage stage_{context_, destination_, cache_, tombstones_, stats_, SynchronizerOptions{}};
};

TEST_F(SynchronizerStageTest, AnAbsentObjectIsCreated) {
  Envelope e = Apply(EventType::kUpsert, ConfigMap("selected", "cm", "5"));
  json created = e.object;
  created["metadata"]["resourceVersion"] = "100";
  created["metadata"]["uid"] = "d-1";
  transport_->Respond("POST", "/api/v1/namespaces/selected/configmaps", 201, created.dump());
  EXPECT_EQ(Handle(std::move(e)).kind, Outcome::Kind::kAck);
}

TEST_F(SynchronizerStageTest, A503IsRetriedAndNeverDeletesOrOverwritesAnything) {
  transport_->Respond("POST", "/api/v1/namespaces/selected/configmaps", 503,
                      Status(503, "ServiceUnavailable", "etcd is down").dump());
  const Outcome outcome = Handle(Apply(EventType::kUpsert, ConfigMap("selected", "cm", "5")));
  EXPECT_EQ(outcome.kind, Outcome::Kind::kNak);
  EXPECT_FALSE(Sent("DELETE"));
  EXPECT_FALSE(Sent("PUT"));
}

TEST_F(SynchronizerStageTest, A429sRetryAfterTravelsWithTheNak) {
  transport_->Respond("POST", "/api/v1/namespaces/selected/configmaps", 429,
                      Status(429, "TooManyRequests", "slow down", 4).dump());
  const Outcome outcome = Handle(Apply(EventType::kUpsert, ConfigMap("selected", "cm", "5")));
  EXPECT_EQ(outcome.kind, Outcome::Kind::kNak);
  EXPECT_EQ(outcome.retry_after, 4s);
  EXPECT_EQ(NakDelay(1, outcome.retry_after), 4s);
}

TEST_F(SynchronizerStageTest, AnInvalidObjectEndsItsMessage) {
  transport_->Respond("POST", "/api/v1/namespaces/selected/configmaps", 422,
                      Status(422, "Invalid", "data: Invalid value").dump());
  const Outcome outcome = Handle(Apply(EventType::kUpsert, ConfigMap("selected", "cm", "5")));
  EXPECT_EQ(outcome.kind, Outcome::Kind::kTerm);
  EXPECT_EQ(outcome.reason, "Invalid");
}

TEST_F(SynchronizerStageTest, ASourceDeletionStoresItsTombstoneFirstAndBlocksOlderUpserts) {
  // The object is not at the destination: nothing to delete, but the tombstone is kept.
  // "Absent" is confirmed with a GET (another replica may be creating it right now).
  transport_->Respond("GET", "/api/v1/namespaces/selected/configmaps/cm", 404,
                      Status(404, "NotFound", "configmaps \"cm\" not found").dump());
  EXPECT_EQ(Handle(Apply(EventType::kDelete, ConfigMap("selected", "cm", "9"))).kind, Outcome::Kind::kAck);
  EXPECT_EQ(tombstones_.puts, 1);
  ASSERT_EQ(transport_->requests.size(), 1u);
  transport_->requests.clear();
  // A redelivered older upsert of the same object never re-creates it (no request at all).
  EXPECT_EQ(Handle(Apply(EventType::kUpsert, ConfigMap("selected", "cm", "5"))).kind, Outcome::Kind::kAck);
  EXPECT_TRUE(transport_->requests.empty());
  // Nor after a restart: a fresh cache reads the durable tombstone.
  AppliedStateCache fresh_cache({{"", "v1", "configmaps"}}, context_.stamp().managed_by, clock_, 10min);
  SynchronizerStage restarted(context_, destination_, fresh_cache, tombstones_, stats_, SynchronizerOptions{});
  Envelope late = Apply(EventType::kUpsert, ConfigMap("selected", "cm", "5"));
  EXPECT_EQ(restarted.Handle(late, DeliveryInfo{}, std::stop_token{}).kind, Outcome::Kind::kAck);
  EXPECT_TRUE(transport_->requests.empty());
}

TEST_F(SynchronizerStageTest, AnEarlierDeletionNeverReplacesALaterDeletionsTombstone) {
  for (int i = 0; i < 2; ++i) {  // each "absent" is confirmed with a GET
    transport_->Respond("GET", "/api/v1/namespaces/selected/configmaps/cm", 404,
                        Status(404, "NotFound", "configmaps \"cm\" not found").dump());
  }
  // Deletions of two incarnations of one name, handled out of order (redelivery, replicas).
  EXPECT_EQ(Handle(Apply(EventType::kDelete, ConfigMap("selected", "cm", "20", "u-2"))).kind, Outcome::Kind::kAck);
  EXPECT_EQ(Handle(Apply(EventType::kDelete, ConfigMap("selected", "cm", "9", "u-1"))).kind, Outcome::Kind::kAck);
  ASSERT_EQ(tombstones_.values.size(), 1u);
  EXPECT_NE(tombstones_.values.begin()->second.first.find("\"20\""), std::string::npos);
  EXPECT_EQ(tombstones_.puts, 1);
  // So a late upsert of the later incarnation still finds the later deletion.
  transport_->requests.clear();
  EXPECT_EQ(Handle(Apply(EventType::kUpsert, ConfigMap("selected", "cm", "15", "u-2"))).kind, Outcome::Kind::kAck);
  EXPECT_TRUE(transport_->requests.empty());
}

TEST_F(SynchronizerStageTest, ACreateThatRacedTheSourceDeletionOnAnotherReplicaIsUndone) {
  // Another replica saves the tombstone of rv 9 while this one creates rv 5: the check
  // before the create does not see it yet, the one after the create does.
  const json tombstone = {{"uid", "u-1"}, {"resourceVersion", "9"}};
  ASSERT_TRUE(tombstones_.Update(EscapeKeyValueKey("v1/configmaps/selected/cm"), tombstone.dump(), 0));
  tombstones_.hidden_reads = 1;
  Envelope e = Apply(EventType::kUpsert, ConfigMap("selected", "cm", "5"));
  json created = e.object;
  created["metadata"]["resourceVersion"] = "100";
  created["metadata"]["uid"] = "d-1";
  transport_->Respond("POST", "/api/v1/namespaces/selected/configmaps", 201, created.dump());
  transport_->Respond("DELETE", "/api/v1/namespaces/selected/configmaps/cm", 200, Status(200, "", "").dump());
  EXPECT_EQ(Handle(std::move(e)).kind, Outcome::Kind::kAck);
  ASSERT_EQ(transport_->requests.size(), 2u);
  EXPECT_EQ(transport_->requests[0].method, "POST");
  EXPECT_EQ(transport_->requests[1].method, "DELETE");
  // With preconditions: only the copy it created.
  EXPECT_NE(transport_->requests[1].body.find("\"d-1\""), std::string::npos);
  EXPECT_NE(transport_->requests[1].body.find("\"100\""), std::string::npos);
}

TEST_F(SynchronizerStageTest, ATombstoneThatCannotBeStoredNaksTheDeletion) {
  tombstones_.failing = true;
  EXPECT_EQ(Handle(Apply(EventType::kDelete, ConfigMap("selected", "cm", "9"))).kind, Outcome::Kind::kNak);
  EXPECT_TRUE(transport_->requests.empty());
}

TEST_F(SynchronizerStageTest, AMissingNamespaceWithoutForcedCreationEndsTheMessage) {
  transport_->Respond("POST", "/api/v1/namespaces/selected/configmaps", 404,
                      Status(404, "NotFound", "namespaces \"selected\" not found").dump());
  const Outcome outcome = Handle(Apply(EventType::kUpsert, ConfigMap("selected", "cm", "5")));
  EXPECT_EQ(outcome.kind, Outcome::Kind::kTerm);
  EXPECT_EQ(outcome.reason, "NamespaceNotFound");
  EXPECT_FALSE(Sent("DELETE"));
}

TEST_F(SynchronizerStageTest, AForcedNamespaceIsCreatedWithTheSourceLabelsThenTheObject) {
  json config = kProcessorConfig;
  config["config"]["replication"]["forceNamespaceCreation"] = true;
  const PipelineContext forced(KubesyncConfigFromJson(config), ComponentId::kSynchronizer, "s-1");
  const PipelineContext forced_processor(KubesyncConfigFromJson(config), ComponentId::kProcessor, "p-1");
  SynchronizerStage stage(forced, destination_, cache_, tombstones_, stats_, SynchronizerOptions{});
  MapNamespaces namespaces;
  namespaces.labels["selected"] = {{"sync", "true"}};
  ProcessorStage processor(forced_processor, namespaces, stats_, nullptr, ProcessorOptions{});
  Envelope event = Decode(EventFor(EventType::kUpsert, ConfigMap("selected", "cm", "5")));
  Envelope e = Decode(processor.Handle(event, DeliveryInfo{}, std::stop_token{}).data);
  json created = e.object;
  created["metadata"]["resourceVersion"] = "100";
  transport_->Respond("POST", "/api/v1/namespaces/selected/configmaps", 404,
                      Status(404, "NotFound", "namespaces \"selected\" not found").dump());
  transport_->Respond("POST", "/api/v1/namespaces", 201, R"({"metadata":{"name":"selected"}})");
  transport_->Respond("GET", "/api/v1/namespaces/selected/configmaps/cm", 404,
                      Status(404, "NotFound", "configmaps \"cm\" not found").dump());
  transport_->Respond("POST", "/api/v1/namespaces/selected/configmaps", 201, created.dump());
  EXPECT_EQ(stage.Handle(e, DeliveryInfo{}, std::stop_token{}).kind, Outcome::Kind::kAck);
  ASSERT_EQ(transport_->requests.size(), 4u);
  const json ns = json::parse(transport_->requests[1].body);
  EXPECT_EQ(transport_->requests[1].path.rfind("/api/v1/namespaces?", 0), 0u) << transport_->requests[1].path;
  EXPECT_EQ(ns["metadata"]["name"], "selected");
  EXPECT_EQ(ns["metadata"]["labels"]["sync"], "true");
  EXPECT_EQ(ns["metadata"]["labels"][std::string(plugins::kubernetes::kNamespaceCreatedByLabel)],
            forced.stamp().managed_by);
}

}  // namespace
}  // namespace ro::kubesync

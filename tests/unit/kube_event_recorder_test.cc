#include "ro/kube/event_recorder.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "ro/kube/clock.h"
#include "ro/kube/errors.h"

namespace ro::kube {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// Events stored in memory like the apiserver would; can fail or block on demand.
struct SinkState {
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, json> events;  // "ns/name" -> event
  std::vector<std::string> calls;      // "create ns/name", "patch ns/name"
  int transport_failures = 0;          // next calls that fail with TransportError
  bool forbid = false;                 // calls fail with 403
  bool blocked = false;                // calls wait until unblocked
  int attempts = 0;                    // calls made (successful or not)

  bool WaitForAttempts(int n) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, 10s, [&] { return attempts >= n; });
  }
};

class FakeSink final : public EventSink {
 public:
  explicit FakeSink(SinkState& s) : s_(s) {}

  json Create(const std::string& ns, const json& event) override {
    std::unique_lock lock(s_.mu);
    Enter(lock);
    const std::string key = ns + "/" + event.at("metadata").at("name").get<std::string>();
    s_.calls.push_back("create " + key);
    if (s_.events.contains(key)) throw ApiError(409, StatusReason::kAlreadyExists, "exists");
    s_.events[key] = event;
    return event;
  }

  json Patch(const std::string& ns, const std::string& name, const json& patch) override {
    std::unique_lock lock(s_.mu);
    Enter(lock);
    const std::string key = ns + "/" + name;
    s_.calls.push_back("patch " + key);
    const auto it = s_.events.find(key);
    if (it == s_.events.end()) throw ApiError(404, StatusReason::kNotFound, "not found");
    it->second.merge_patch(patch);
    return it->second;
  }

 private:
  void Enter(std::unique_lock<std::mutex>& lock) {
    ++s_.attempts;
    s_.cv.notify_all();
    s_.cv.wait(lock, [&] { return !s_.blocked; });
    if (s_.forbid) throw ApiError(403, StatusReason::kForbidden, "forbidden");
    if (s_.transport_failures > 0) {
      --s_.transport_failures;
      throw TransportError(TransportError::Kind::kConnect, "connection refused");
    }
  }
  SinkState& s_;
};

json Pod(const std::string& ns, const std::string& name) {
  json meta = {{"name", name}, {"uid", "uid-" + name}, {"resourceVersion", "42"}};
  if (!ns.empty()) meta["namespace"] = ns;
  return {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", meta}};
}

class EventRecorderTest : public ::testing::Test {
 protected:
  std::unique_ptr<EventRecorder> Make(EventRecorderOptions o = {}) {
    if (o.component.empty()) o.component = "test-controller";
    if (o.host.empty()) o.host = "node-1";
    return std::make_unique<EventRecorder>(std::make_unique<FakeSink>(state_), o, clock_);
  }
  std::vector<json> Stored() {
    std::lock_guard lock(state_.mu);
    std::vector<json> out;
    for (const auto& [k, v] : state_.events) out.push_back(v);
    return out;
  }
  std::vector<std::string> Calls() {
    std::lock_guard lock(state_.mu);
    return state_.calls;
  }

  FakeClock clock_;
  SinkState state_;
};

TEST_F(EventRecorderTest, CreatesAnEventReferencingTheObject) {
  auto r = Make();
  r->Event(Pod("ns1", "web-0"), EventType::kWarning, "SyncFailed", "cannot reach bucket");
  ASSERT_TRUE(r->WaitForIdle(10s));
  const std::vector<json> events = Stored();
  ASSERT_EQ(events.size(), 1u);
  const json& e = events[0];
  EXPECT_EQ(e["apiVersion"], "v1");
  EXPECT_EQ(e["kind"], "Event");
  EXPECT_EQ(e["metadata"]["namespace"], "ns1");
  EXPECT_EQ(e["metadata"]["name"].get<std::string>().rfind("web-0.", 0), 0u);
  EXPECT_EQ(e["involvedObject"], json::parse(R"({"apiVersion": "v1", "kind": "Pod",
      "namespace": "ns1", "name": "web-0", "uid": "uid-web-0", "resourceVersion": "42"})"));
  EXPECT_EQ(e["reason"], "SyncFailed");
  EXPECT_EQ(e["message"], "cannot reach bucket");
  EXPECT_EQ(e["type"], "Warning");
  EXPECT_EQ(e["source"], json::parse(R"({"component": "test-controller", "host": "node-1"})"));
  EXPECT_EQ(e["count"], 1);
  EXPECT_EQ(e["firstTimestamp"], "2024-01-01T00:00:00Z");
  EXPECT_EQ(e["lastTimestamp"], "2024-01-01T00:00:00Z");
}

TEST_F(EventRecorderTest, RepeatsArePatchedIntoOneEventWithACount) {
  auto r = Make();
  r->Event(Pod("ns1", "web-0"), EventType::kNormal, "Synced", "ok");
  ASSERT_TRUE(r->WaitForIdle(10s));
  clock_.Advance(90s);
  json newer = Pod("ns1", "web-0");
  newer["metadata"]["resourceVersion"] = "43";  // same object, newer version
  r->Event(newer, EventType::kNormal, "Synced", "ok");
  r->Event(newer, EventType::kNormal, "Synced", "ok");
  ASSERT_TRUE(r->WaitForIdle(10s));
  const std::vector<json> events = Stored();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["count"], 3);
  EXPECT_EQ(events[0]["firstTimestamp"], "2024-01-01T00:00:00Z");
  EXPECT_EQ(events[0]["lastTimestamp"], "2024-01-01T00:01:30Z");
  const std::vector<std::string> calls = Calls();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[1].rfind("patch ns1/web-0.", 0), 0u);
}

TEST_F(EventRecorderTest, DifferentMessagesOrObjectsAreSeparateEvents) {
  auto r = Make();
  r->Event(Pod("ns1", "web-0"), EventType::kNormal, "Synced", "one");
  r->Event(Pod("ns1", "web-0"), EventType::kNormal, "Synced", "two");
  r->Event(Pod("ns1", "web-1"), EventType::kNormal, "Synced", "one");
  r->Event(Pod("ns1", "web-0"), EventType::kWarning, "Synced", "one");
  ASSERT_TRUE(r->WaitForIdle(10s));
  EXPECT_EQ(Stored().size(), 4u);
}

TEST_F(EventRecorderTest, EventsAboutClusterScopedObjectsGoToDefault) {
  auto r = Make();
  r->Event(Pod("", "node-a"), EventType::kNormal, "Seen", "hello");
  ASSERT_TRUE(r->WaitForIdle(10s));
  const std::vector<json> events = Stored();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["metadata"]["namespace"], "default");
  EXPECT_FALSE(events[0]["involvedObject"].contains("namespace"));
}

TEST_F(EventRecorderTest, AnExpiredAggregateIsCreatedAgainKeepingTheCount) {
  auto r = Make();
  r->Event(Pod("ns1", "web-0"), EventType::kNormal, "Synced", "ok");
  ASSERT_TRUE(r->WaitForIdle(10s));
  {
    std::lock_guard lock(state_.mu);
    state_.events.clear();  // the apiserver's event TTL removed it
  }
  r->Event(Pod("ns1", "web-0"), EventType::kNormal, "Synced", "ok");
  ASSERT_TRUE(r->WaitForIdle(10s));
  const std::vector<json> events = Stored();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["count"], 2);
  r->Event(Pod("ns1", "web-0"), EventType::kNormal, "Synced", "ok");
  ASSERT_TRUE(r->WaitForIdle(10s));
  EXPECT_EQ(Stored().at(0)["count"], 3);  // patches the new one
}

TEST_F(EventRecorderTest, TransportErrorsAreRetriedAfterTheInterval) {
  EventRecorderOptions o;
  o.retry_interval = 10s;
  auto r = Make(o);
  state_.transport_failures = 2;
  r->Event(Pod("ns1", "web-0"), EventType::kNormal, "Synced", "ok");
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(state_.WaitForAttempts(i + 1));  // the sender is now in its retry wait
    ASSERT_TRUE(clock_.BlockUntilWaiters(1));
    EXPECT_EQ(clock_.NextDeadline() - clock_.SteadyNow(), 10s);
    clock_.Advance(10s);
  }
  ASSERT_TRUE(r->WaitForIdle(10s));
  EXPECT_EQ(Stored().size(), 1u);
}

TEST_F(EventRecorderTest, GivesUpAfterMaxAttemptsAndKeepsWorking) {
  EventRecorderOptions o;
  o.max_attempts = 2;
  o.retry_interval = 1s;
  auto r = Make(o);
  state_.transport_failures = 2;
  r->Event(Pod("ns1", "web-0"), EventType::kNormal, "Lost", "x");
  ASSERT_TRUE(state_.WaitForAttempts(1));
  ASSERT_TRUE(clock_.BlockUntilWaiters(1));
  clock_.Advance(1s);
  ASSERT_TRUE(r->WaitForIdle(10s));
  EXPECT_TRUE(Stored().empty());
  r->Event(Pod("ns1", "web-0"), EventType::kNormal, "Kept", "y");
  ASSERT_TRUE(r->WaitForIdle(10s));
  EXPECT_EQ(Stored().size(), 1u);
}

TEST_F(EventRecorderTest, ApiErrorsAreNotRetriedAndNeverReachTheCaller) {
  auto r = Make();
  state_.forbid = true;
  EXPECT_NO_THROW(r->Event(Pod("ns1", "web-0"), EventType::kNormal, "Synced", "ok"));
  ASSERT_TRUE(r->WaitForIdle(10s));
  EXPECT_EQ(Calls().size(), 0u);  // failed in Enter() before recording
  EXPECT_TRUE(Stored().empty());
}

TEST_F(EventRecorderTest, DropsEventsWhenTheQueueIsFullWithoutBlocking) {
  EventRecorderOptions o;
  o.queue_capacity = 3;
  auto r = Make(o);
  {
    std::lock_guard lock(state_.mu);
    state_.blocked = true;
  }
  r->Event(Pod("ns1", "p0"), EventType::kNormal, "R", "m");  // the sender blocks on it
  for (int i = 0; i < 100 && r->Dropped() == 0; ++i) {
    r->Event(Pod("ns1", "p" + std::to_string(i + 1)), EventType::kNormal, "R", "m");
  }
  EXPECT_GE(r->Dropped(), 1u);
  {
    std::lock_guard lock(state_.mu);
    state_.blocked = false;
  }
  state_.cv.notify_all();
  ASSERT_TRUE(r->WaitForIdle(10s));
  EXPECT_LE(Stored().size(), 4u);  // 1 in flight + 3 queued at most
  EXPECT_GE(Stored().size(), 3u);
}

// client-go's EventSourceObjectSpamFilter: 25 events per involved object, then one per
// 5 minutes; other objects have their own budget.
TEST_F(EventRecorderTest, AStormAboutOneObjectIsCutAfterTheBurstAndRefillsSlowly) {
  auto r = Make();
  for (int i = 0; i < 40; ++i) {
    r->Event(Pod("ns1", "web-0"), EventType::kWarning, "ReplicationFailed", "object " + std::to_string(i));
  }
  r->Event(Pod("ns1", "web-1"), EventType::kWarning, "ReplicationFailed", "another object");
  ASSERT_TRUE(r->WaitForIdle(10s));
  EXPECT_EQ(Stored().size(), 26u);  // 25 about web-0, 1 about web-1
  EXPECT_EQ(r->Filtered(), 15u);
  // Repeats count against the budget too (client-go filters before it aggregates).
  r->Event(Pod("ns1", "web-0"), EventType::kWarning, "ReplicationFailed", "object 0");
  EXPECT_EQ(r->Filtered(), 16u);
  clock_.Advance(299s);
  r->Event(Pod("ns1", "web-0"), EventType::kWarning, "ReplicationFailed", "object 41");
  EXPECT_EQ(r->Filtered(), 17u);
  clock_.Advance(1s);  // one token refilled after 5 minutes
  r->Event(Pod("ns1", "web-0"), EventType::kWarning, "ReplicationFailed", "object 42");
  r->Event(Pod("ns1", "web-0"), EventType::kWarning, "ReplicationFailed", "object 43");
  ASSERT_TRUE(r->WaitForIdle(10s));
  EXPECT_EQ(Stored().size(), 27u);
  EXPECT_EQ(r->Filtered(), 18u);
}

TEST_F(EventRecorderTest, TheSpamFilterCanBeTurnedOff) {
  EventRecorderOptions o;
  o.spam_burst = 0;
  auto r = Make(o);
  for (int i = 0; i < 40; ++i) r->Event(Pod("ns1", "web-0"), EventType::kNormal, "Seen", std::to_string(i));
  ASSERT_TRUE(r->WaitForIdle(10s));
  EXPECT_EQ(Stored().size(), 40u);
  EXPECT_EQ(r->Filtered(), 0u);
}

TEST_F(EventRecorderTest, RequiresAComponent) {
  EventRecorderOptions o;
  EXPECT_THROW(EventRecorder(std::make_unique<FakeSink>(state_), o, clock_), std::invalid_argument);
}

}  // namespace
}  // namespace ro::kube

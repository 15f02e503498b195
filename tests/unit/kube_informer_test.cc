#include "ro/kube/informer.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "kube_fake_lister_watcher.h"
#include "ro/kube/clock.h"
#include "ro/kube/errors.h"

namespace ro::kube {
namespace {

using namespace std::chrono_literals;
using testing::ConfigMap;
using testing::FakeListerWatcher;

std::string Describe(const ObjectPtr& o) {
  return ObjectStoreKey(*o) + "@" + ObjectResourceVersion(*o);
}

// A handler that records each call as one line and lets the test wait for them.
class Recorder {
 public:
  explicit Recorder(std::string name = "") : name_(std::move(name)) {}

  ResourceEventHandler Handler() {
    return ResourceEventHandler{
        [this](const ObjectPtr& o) { Record("add " + Describe(o)); },
        [this](const ObjectPtr& old_o, const ObjectPtr& new_o) {
          Record("update " + Describe(old_o) + "->" + ObjectResourceVersion(*new_o) +
                 (old_o == new_o ? " (same)" : ""));
        },
        [this](const ObjectPtr& o, bool unknown) {
          Record("delete " + Describe(o) + (unknown ? " (final state unknown)" : ""));
        }};
  }

  std::vector<std::string> WaitFor(std::size_t n) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, 10s, [&] { return lines_.size() >= n; });
    return lines_;
  }

 private:
  void Record(std::string line) {
    std::lock_guard lock(mu_);
    lines_.push_back(name_ + line);
    cv_.notify_all();
  }
  const std::string name_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;
};

using Lines = std::vector<std::string>;

class InformerTest : public ::testing::Test {
 protected:
  void Make(InformerOptions options = {}) {
    options.reflector.backoff_jitter = 0;
    options.reflector.min_watch_timeout = 0s;
    auto lw = std::make_unique<FakeListerWatcher>();
    lw_ = lw.get();
    informer_ = std::make_unique<SharedInformer>(std::move(lw), std::move(options), clock_);
  }
  void TearDown() override { informer_.reset(); }

  FakeClock clock_;
  FakeListerWatcher* lw_ = nullptr;
  std::unique_ptr<SharedInformer> informer_;
};

TEST_F(InformerTest, DeliversAddUpdateDeleteInOrderAndKeepsTheStore) {
  Make();
  Recorder rec;
  informer_->AddEventHandler(rec.Handler());
  lw_->PushList({ConfigMap("ns", "a", "1")}, "10");
  lw_->PushEvent(WatchEventType::kAdded, ConfigMap("ns", "b", "11"));
  lw_->PushEvent(WatchEventType::kModified, ConfigMap("ns", "a", "12"));
  lw_->PushEvent(WatchEventType::kDeleted, ConfigMap("ns", "b", "13"));
  informer_->Start();
  EXPECT_EQ(rec.WaitFor(4), (Lines{"add ns/a@1", "add ns/b@11", "update ns/a@1->12",
                                   "delete ns/b@13"}));
  EXPECT_EQ(informer_->store().ListKeys(), (std::vector<std::string>{"ns/a"}));
  EXPECT_EQ(ObjectResourceVersion(*informer_->store().Get("ns/a")), "12");
  ASSERT_TRUE(lw_->WaitForActionsConsumed());  // the reflector notes the RV after the sink
  EXPECT_EQ(informer_->LastSyncResourceVersion(), "13");
}

TEST_F(InformerTest, HasSyncedOnlyAfterTheInitialListWasDispatched) {
  Make();
  std::mutex gate_mu;
  std::condition_variable gate_cv;
  bool open = false;
  informer_->AddEventHandler({[&](const ObjectPtr&) {
                                std::unique_lock lock(gate_mu);
                                gate_cv.wait(lock, [&] { return open; });
                              },
                              nullptr, nullptr});
  lw_->PushList({ConfigMap("ns", "a", "1"), ConfigMap("ns", "b", "1")}, "10");
  EXPECT_FALSE(informer_->HasSynced());
  informer_->Start();
  ASSERT_TRUE(lw_->WaitForWatchCalls(1));
  EXPECT_EQ(informer_->store().Size(), 2u);   // the store is already filled...
  EXPECT_FALSE(informer_->HasSynced());       // ...but the handler has not seen it all
  {
    std::lock_guard lock(gate_mu);
    open = true;
  }
  gate_cv.notify_all();
  EXPECT_TRUE(informer_->WaitForCacheSync(std::stop_token{}, 10s));
  EXPECT_TRUE(informer_->HasSynced());
}

TEST_F(InformerTest, WaitForCacheSyncTimesOutOnTheInformerClock) {
  Make();  // no list scripted: the list keeps failing
  informer_->Start();
  bool synced = true;
  std::jthread waiter([&] { synced = informer_->WaitForCacheSync(std::stop_token{}, 5s); });
  ASSERT_TRUE(clock_.BlockUntilWaiters(3));  // dispatcher, reflector backoff, the waiter
  clock_.Advance(5s);
  waiter.join();
  EXPECT_FALSE(synced);
}

TEST_F(InformerTest, RelistAfterGoneTellsHandlersExactlyTheDifference) {
  Make();
  Recorder rec;
  informer_->AddEventHandler(rec.Handler());
  lw_->PushList({ConfigMap("ns", "same", "1"), ConfigMap("ns", "changed", "1"),
                 ConfigMap("ns", "vanished", "1")},
                "10");
  lw_->PushEvent(WatchEventType::kBookmark, testing::Bookmark("11"));
  lw_->PushWatchError(std::make_exception_ptr(ApiError(410, StatusReason::kGone, "compacted")));
  lw_->PushList({ConfigMap("ns", "same", "1"), ConfigMap("ns", "changed", "20"),
                 ConfigMap("ns", "new", "21")},
                "30");
  informer_->Start();
  const Lines lines = rec.WaitFor(6);
  EXPECT_EQ(Lines(lines.begin() + 3, lines.end()),
            (Lines{"delete ns/vanished@1 (final state unknown)", "update ns/changed@1->20",
                   "add ns/new@21"}));
  EXPECT_EQ(informer_->store().ListKeys(), (std::vector<std::string>{"ns/changed", "ns/new", "ns/same"}));
  ASSERT_TRUE(lw_->WaitForWatchCalls(2));
  EXPECT_EQ(informer_->ListCount(), 2);
}

TEST_F(InformerTest, ResyncRedeliversEveryCachedObjectAsAnUpdateToItself) {
  InformerOptions o;
  o.resync_period = 30s;
  Make(o);
  Recorder rec;
  informer_->AddEventHandler(rec.Handler());
  lw_->PushList({ConfigMap("ns", "a", "1"), ConfigMap("ns", "b", "2")}, "10");
  informer_->Start();
  ASSERT_TRUE(informer_->WaitForCacheSync(std::stop_token{}, 10s));
  ASSERT_TRUE(lw_->WaitForWatchCalls(1));
  ASSERT_TRUE(clock_.BlockUntilWaiters(1));  // the dispatcher waiting for the resync time
  clock_.Advance(30s);
  EXPECT_EQ(rec.WaitFor(4), (Lines{"add ns/a@1", "add ns/b@2", "update ns/a@1->1 (same)",
                                   "update ns/b@2->2 (same)"}));
}

TEST_F(InformerTest, ZeroResyncPeriodNeverResyncs) {
  Make();
  Recorder rec;
  informer_->AddEventHandler(rec.Handler());
  lw_->PushList({ConfigMap("ns", "a", "1")}, "10");
  informer_->Start();
  ASSERT_TRUE(informer_->WaitForCacheSync(std::stop_token{}, 10s));
  clock_.Advance(24h);
  lw_->PushEvent(WatchEventType::kModified, ConfigMap("ns", "a", "2"));
  EXPECT_EQ(rec.WaitFor(2), (Lines{"add ns/a@1", "update ns/a@1->2"}));
}

TEST_F(InformerTest, LateHandlerFirstReceivesTheCachedObjects) {
  Make();
  Recorder early("early ");
  informer_->AddEventHandler(early.Handler());
  lw_->PushList({ConfigMap("ns", "a", "1"), ConfigMap("ns", "b", "1")}, "10");
  informer_->Start();
  ASSERT_TRUE(informer_->WaitForCacheSync(std::stop_token{}, 10s));
  Recorder late("late ");
  informer_->AddEventHandler(late.Handler());
  lw_->PushEvent(WatchEventType::kModified, ConfigMap("ns", "a", "2"));
  EXPECT_EQ(late.WaitFor(3), (Lines{"late add ns/a@1", "late add ns/b@1", "late update ns/a@1->2"}));
  EXPECT_EQ(early.WaitFor(3).size(), 3u);
}

TEST_F(InformerTest, HandlersAreCalledInRegistrationOrder) {
  Make();
  std::mutex mu;
  std::vector<std::string> order;
  std::condition_variable cv;
  for (const std::string name : {"first", "second", "third"}) {
    informer_->AddEventHandler({[&, name](const ObjectPtr&) {
                                  std::lock_guard lock(mu);
                                  order.push_back(name);
                                  cv.notify_all();
                                },
                                nullptr, nullptr});
  }
  lw_->PushList({ConfigMap("ns", "a", "1")}, "10");
  informer_->Start();
  std::unique_lock lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return order.size() == 3; }));
  EXPECT_EQ(order, (std::vector<std::string>{"first", "second", "third"}));
}

TEST_F(InformerTest, AThrowingHandlerDoesNotStopDispatch) {
  Make();
  informer_->AddEventHandler({[](const ObjectPtr&) { throw std::runtime_error("boom"); }, nullptr,
                              nullptr});
  Recorder rec;
  informer_->AddEventHandler(rec.Handler());
  lw_->PushList({ConfigMap("ns", "a", "1")}, "10");
  lw_->PushEvent(WatchEventType::kAdded, ConfigMap("ns", "b", "11"));
  informer_->Start();
  EXPECT_EQ(rec.WaitFor(2), (Lines{"add ns/a@1", "add ns/b@11"}));
}

TEST_F(InformerTest, StopReturnsWhileTheWatchIsOpen) {
  Make();
  lw_->PushList({}, "10");
  informer_->Start();
  ASSERT_TRUE(lw_->WaitForWatchCalls(1));
  informer_->Stop();
  informer_->Stop();  // idempotent
  informer_->Start();  // not restartable: no effect
  EXPECT_EQ(lw_->watch_versions().size(), 1u);
}

}  // namespace
}  // namespace ro::kube

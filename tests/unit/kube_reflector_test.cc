#include "ro/kube/reflector.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
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
using nlohmann::json;
using testing::Bookmark;
using testing::ConfigMap;
using testing::FakeListerWatcher;

// Records every sink call as one line: "replace@10 ns/a ns/b", "add ns/c@11", ...
class RecordingSink final : public ReflectorSink {
 public:
  void Replace(std::vector<ObjectPtr> objects, const std::string& rv) override {
    std::string line = "replace@" + rv;
    for (const ObjectPtr& o : objects) line += " " + ObjectStoreKey(*o);
    Record(line);
  }
  void Add(ObjectPtr o) override { Record("add " + Describe(*o)); }
  void Update(ObjectPtr o) override { Record("update " + Describe(*o)); }
  void Delete(ObjectPtr o) override { Record("delete " + Describe(*o)); }
  // With `streams`: lists as "begin", "page ns/a ns/b", ..., "end@10".
  bool StreamsLists() const override { return streams; }
  void BeginList() override { Record("begin"); }
  void ListPage(std::vector<ObjectPtr> objects) override {
    std::string line = "page";
    for (const ObjectPtr& o : objects) line += " " + ObjectStoreKey(*o);
    Record(line);
  }
  void EndList(const std::string& rv) override { Record("end@" + rv); }

  // Waits (real time) until `n` calls were recorded; returns them.
  std::vector<std::string> WaitForCalls(std::size_t n) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, 10s, [&] { return calls_.size() >= n; });
    return calls_;
  }
  std::vector<std::string> calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }

  bool throw_on_add = false;
  bool streams = false;
  std::vector<ObjectPtr> last_objects;

 private:
  static std::string Describe(const json& o) { return ObjectStoreKey(o) + "@" + ObjectResourceVersion(o); }
  void Record(std::string line) {
    if (throw_on_add && line.rfind("add ", 0) == 0) {
      throw std::runtime_error("sink rejects adds");
    }
    std::lock_guard lock(mu_);
    calls_.push_back(std::move(line));
    cv_.notify_all();
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> calls_;
};

ReflectorOptions NoJitter() {
  ReflectorOptions o;
  o.backoff_jitter = 0;
  o.min_watch_timeout = 0s;
  return o;
}

std::exception_ptr Gone() {
  return std::make_exception_ptr(ApiError(410, StatusReason::kGone, "too old resource version"));
}
std::exception_ptr Broken() {
  return std::make_exception_ptr(
      TransportError(TransportError::Kind::kBrokenStream, "connection reset"));
}

class ReflectorTest : public ::testing::Test {
 protected:
  void Start(ReflectorOptions options = NoJitter()) {
    reflector_ = std::make_unique<Reflector>(lw_, sink_, std::move(options), clock_);
    thread_ = std::jthread([this](std::stop_token stop) { reflector_->Run(stop); });
  }
  void TearDown() override {
    thread_.request_stop();
    if (thread_.joinable()) thread_.join();
  }
  // Blocks until the reflector waits on the clock and returns how long it will wait.
  std::chrono::milliseconds PendingWait() {
    EXPECT_TRUE(clock_.BlockUntilWaiters(1));
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock_.NextDeadline() -
                                                                 clock_.SteadyNow());
  }

  FakeClock clock_;
  FakeListerWatcher lw_;
  RecordingSink sink_;
  std::unique_ptr<Reflector> reflector_;
  std::jthread thread_;
};

TEST_F(ReflectorTest, ListsThenWatchesFromTheListResourceVersion) {
  lw_.PushList({ConfigMap("ns", "a", "5"), ConfigMap("ns", "b", "7")}, "10");
  lw_.PushEvent(WatchEventType::kAdded, ConfigMap("ns", "c", "11"));
  lw_.PushEvent(WatchEventType::kModified, ConfigMap("ns", "a", "12"));
  lw_.PushEvent(WatchEventType::kDeleted, ConfigMap("ns", "b", "13"));
  Start();
  EXPECT_EQ(sink_.WaitForCalls(4), (std::vector<std::string>{"replace@10 ns/a ns/b", "add ns/c@11",
                                                             "update ns/a@12", "delete ns/b@13"}));
  ASSERT_TRUE(lw_.WaitForActionsConsumed());
  EXPECT_EQ(lw_.watch_versions().at(0), "10");
  EXPECT_EQ(reflector_->LastSyncResourceVersion(), "13");
  EXPECT_EQ(reflector_->ListCount(), 1);
}

// A sink that keeps a reduced form of each object takes the list page by page (the fake
// lister-watcher delivers a list as one page), never as a Replace.
TEST_F(ReflectorTest, AStreamingSinkTakesTheListPageByPage) {
  sink_.streams = true;
  lw_.PushList({ConfigMap("ns", "a", "5"), ConfigMap("ns", "b", "7")}, "10");
  lw_.PushEvent(WatchEventType::kAdded, ConfigMap("ns", "c", "11"));
  lw_.PushWatchError(Gone());
  lw_.PushList({ConfigMap("ns", "c", "11")}, "20");
  Start();
  EXPECT_EQ(sink_.WaitForCalls(7), (std::vector<std::string>{"begin", "page ns/a ns/b", "end@10", "add ns/c@11",
                                                             "begin", "page ns/c", "end@20"}));
  ASSERT_TRUE(lw_.WaitForWatchCalls(2));
  EXPECT_EQ(lw_.watch_versions().at(1), "20");
  EXPECT_EQ(reflector_->ListCount(), 2);
}

TEST_F(ReflectorTest, ListsWithPagingAndAConsistentRead) {
  lw_.PushList({}, "1");
  Start();
  ASSERT_TRUE(lw_.WaitForWatchCalls(1));
  const ListOptions options = lw_.list_options().at(0);
  EXPECT_EQ(options.limit, 500);
  EXPECT_EQ(options.resource_version, "");
}

TEST_F(ReflectorTest, BookmarkAdvancesResourceVersionWithoutTouchingTheSink) {
  lw_.PushList({}, "10");
  lw_.PushEvent(WatchEventType::kBookmark, Bookmark("20"));
  lw_.PushClose();
  Start();
  ASSERT_TRUE(lw_.WaitForWatchCalls(2));
  EXPECT_EQ(lw_.watch_versions(), (std::vector<std::string>{"10", "20"}));
  EXPECT_EQ(sink_.calls(), (std::vector<std::string>{"replace@10"}));
}

TEST_F(ReflectorTest, RewatchesFromLastResourceVersionWhenServerClosesAHealthyWatch) {
  lw_.PushList({}, "10");
  lw_.PushEvent(WatchEventType::kAdded, ConfigMap("ns", "a", "11"));
  lw_.PushClose();
  Start();
  ASSERT_TRUE(lw_.WaitForWatchCalls(2));
  EXPECT_EQ(lw_.watch_versions(), (std::vector<std::string>{"10", "11"}));
  EXPECT_EQ(lw_.list_options().size(), 1u);  // no relist
  EXPECT_EQ(clock_.Waiters(), 0u);            // and no backoff
}

TEST_F(ReflectorTest, BacksOffWhenAWatchClosesAtOnceWithoutEvents) {
  lw_.PushList({}, "10");
  lw_.PushClose();
  Start();
  EXPECT_EQ(PendingWait(), 800ms);
  clock_.Advance(800ms);
  ASSERT_TRUE(lw_.WaitForWatchCalls(2));
  EXPECT_EQ(lw_.watch_versions().at(1), "10");
}

TEST_F(ReflectorTest, RelistsAfterGoneAndReplacesTheSinkContent) {
  lw_.PushList({ConfigMap("ns", "a", "5")}, "10");
  lw_.PushEvent(WatchEventType::kAdded, ConfigMap("ns", "b", "11"));
  lw_.PushWatchError(Gone());
  lw_.PushList({ConfigMap("ns", "b", "11"), ConfigMap("ns", "c", "30")}, "40");
  Start();
  EXPECT_EQ(sink_.WaitForCalls(3), (std::vector<std::string>{"replace@10 ns/a", "add ns/b@11",
                                                             "replace@40 ns/b ns/c"}));
  ASSERT_TRUE(lw_.WaitForWatchCalls(2));
  EXPECT_EQ(lw_.watch_versions().at(1), "40");
  EXPECT_EQ(reflector_->ListCount(), 2);
}

TEST_F(ReflectorTest, ResumesByWatchingFromTheInitialResourceVersionWithoutListing) {
  lw_.PushEvent(WatchEventType::kModified, ConfigMap("ns", "a", "21"));
  ReflectorOptions options = NoJitter();
  options.initial_resource_version = "20";
  Start(options);
  EXPECT_EQ(sink_.WaitForCalls(1), (std::vector<std::string>{"update ns/a@21"}));
  EXPECT_EQ(lw_.watch_versions().at(0), "20");
  EXPECT_TRUE(lw_.list_options().empty());
  EXPECT_EQ(reflector_->ListCount(), 0);
  ASSERT_TRUE(lw_.WaitForActionsConsumed());  // the RV is noted after the sink call
  EXPECT_EQ(reflector_->LastSyncResourceVersion(), "21");
}

TEST_F(ReflectorTest, ResumeFromACompactedResourceVersionRelists) {
  lw_.PushWatchError(Gone());
  lw_.PushList({ConfigMap("ns", "a", "30")}, "40");
  ReflectorOptions options = NoJitter();
  options.initial_resource_version = "5";
  Start(options);
  EXPECT_EQ(PendingWait(), 800ms);  // a watch that failed at once backs off first
  clock_.Advance(800ms);
  EXPECT_EQ(sink_.WaitForCalls(1), (std::vector<std::string>{"replace@40 ns/a"}));
  ASSERT_TRUE(lw_.WaitForWatchCalls(2));
  EXPECT_EQ(lw_.watch_versions(), (std::vector<std::string>{"5", "40"}));
  EXPECT_EQ(reflector_->ListCount(), 1);
}

TEST_F(ReflectorTest, GoneOnAFreshWatchRelistsAfterBackoff) {
  lw_.PushList({}, "10");
  lw_.PushWatchError(Gone());
  lw_.PushList({}, "50");
  Start();
  EXPECT_EQ(PendingWait(), 800ms);
  clock_.Advance(800ms);
  ASSERT_TRUE(lw_.WaitForWatchCalls(2));
  EXPECT_EQ(lw_.watch_versions().at(1), "50");
}

TEST_F(ReflectorTest, TransportErrorsBackOffExponentiallyUpToTheCap) {
  lw_.PushList({}, "10");
  for (int i = 0; i < 8; ++i) lw_.PushWatchError(Broken());
  Start();
  const std::vector<std::chrono::milliseconds> expected = {800ms,   1600ms,  3200ms,  6400ms,
                                                           12800ms, 25600ms, 30000ms, 30000ms};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(PendingWait(), expected[i]) << "failure " << i + 1;
    clock_.Advance(expected[i]);
    ASSERT_TRUE(lw_.WaitForWatchCalls(i + 2));
  }
  // Every re-watch resumes from the same resourceVersion; nothing was relisted.
  for (const std::string& rv : lw_.watch_versions()) EXPECT_EQ(rv, "10");
  EXPECT_EQ(lw_.list_options().size(), 1u);
}

TEST_F(ReflectorTest, BackoffResetsAfterAHealthyWatch) {
  lw_.PushList({}, "10");
  lw_.PushWatchError(Broken());
  lw_.PushWatchError(Broken());
  Start();
  EXPECT_EQ(PendingWait(), 800ms);
  clock_.Advance(800ms);
  EXPECT_EQ(PendingWait(), 1600ms);
  lw_.PushEvent(WatchEventType::kAdded, ConfigMap("ns", "a", "11"));
  lw_.PushWatchError(Broken());
  clock_.Advance(1600ms);
  EXPECT_EQ(PendingWait(), 800ms);  // the watch delivered an event: healthy
}

TEST_F(ReflectorTest, JitterStretchesBackoffByUpToTheFactor) {
  lw_.PushList({}, "10");
  lw_.PushWatchError(Broken());
  ReflectorOptions o = NoJitter();
  o.backoff_jitter = 1.0;
  Start(o);
  const auto wait = PendingWait();
  EXPECT_GE(wait, 800ms);
  EXPECT_LT(wait, 1600ms);
}

TEST_F(ReflectorTest, FailedListIsRetriedWithBackoffHonouringRetryAfter) {
  lw_.PushListError(std::make_exception_ptr(
      ApiError(429, StatusReason::kTooManyRequests, "slow down", {}, std::chrono::seconds{5})));
  lw_.PushList({ConfigMap("ns", "a", "1")}, "10");
  Start();
  EXPECT_EQ(PendingWait(), 5000ms);
  clock_.Advance(5000ms);
  EXPECT_EQ(sink_.WaitForCalls(1).at(0), "replace@10 ns/a");
}

TEST_F(ReflectorTest, ApiErrorsOnWatchAreRetriedWithoutRelisting) {
  lw_.PushList({}, "10");
  lw_.PushWatchError(std::make_exception_ptr(ApiError(503, StatusReason::kServiceUnavailable, "down")));
  Start();
  EXPECT_EQ(PendingWait(), 800ms);
  clock_.Advance(800ms);
  ASSERT_TRUE(lw_.WaitForWatchCalls(2));
  EXPECT_EQ(lw_.list_options().size(), 1u);
}

TEST_F(ReflectorTest, RelistsAfterTheSinkRejectsAnEvent) {
  sink_.throw_on_add = true;
  lw_.PushList({}, "10");
  lw_.PushEvent(WatchEventType::kAdded, ConfigMap("ns", "a", "11"));
  lw_.PushList({ConfigMap("ns", "a", "11")}, "12");
  Start();
  EXPECT_EQ(PendingWait(), 800ms);
  clock_.Advance(800ms);
  EXPECT_EQ(sink_.WaitForCalls(2).at(1), "replace@12 ns/a");
}

TEST_F(ReflectorTest, PassesAServerSideWatchTimeoutBetweenOneAndTwoTimesTheMinimum) {
  lw_.PushList({}, "10");
  ReflectorOptions o = NoJitter();
  o.min_watch_timeout = 300s;
  // Record the options of the watch through a thin wrapper.
  struct Capturing final : ListerWatcher {
    explicit Capturing(FakeListerWatcher& inner) : inner_(inner) {}
    ObjectList List(const ListOptions& options) override { return inner_.List(options); }
    void Watch(const WatchOptions& options, const std::function<void(WatchEvent&&)>& on_event,
               std::stop_token stop) override {
      timeout_seconds.store(options.timeout_seconds);
      allow_bookmarks.store(options.allow_bookmarks);
      inner_.Watch(options, on_event, stop);
    }
    std::string Describe() const override { return "capturing"; }
    FakeListerWatcher& inner_;
    std::atomic<int64_t> timeout_seconds{-1};
    std::atomic<bool> allow_bookmarks{false};
  } capturing(lw_);
  Reflector reflector(capturing, sink_, o, clock_);
  std::jthread t([&](std::stop_token stop) { reflector.Run(stop); });
  ASSERT_TRUE(lw_.WaitForWatchCalls(1));
  EXPECT_GE(capturing.timeout_seconds.load(), 300);
  EXPECT_LT(capturing.timeout_seconds.load(), 600);
  EXPECT_TRUE(capturing.allow_bookmarks.load());
}

TEST_F(ReflectorTest, AppliesTheTransformBeforeFreezingObjects) {
  json with_fields = ConfigMap("ns", "a", "5");
  with_fields["metadata"]["managedFields"] = json::array({{{"manager", "kubectl"}}});
  lw_.PushList({with_fields}, "10");
  struct Keeping final : ReflectorSink {
    void Replace(std::vector<ObjectPtr> objects, const std::string&) override {
      std::lock_guard lock(mu);
      kept = std::move(objects);
      cv.notify_all();
    }
    void Add(ObjectPtr) override {}
    void Update(ObjectPtr) override {}
    void Delete(ObjectPtr) override {}
    std::mutex mu;
    std::condition_variable cv;
    std::vector<ObjectPtr> kept;
  } keeping;
  ReflectorOptions o = NoJitter();
  o.transform = StripManagedFields;
  Reflector reflector(lw_, keeping, o, clock_);
  std::jthread t([&](std::stop_token stop) { reflector.Run(stop); });
  std::unique_lock lock(keeping.mu);
  ASSERT_TRUE(keeping.cv.wait_for(lock, 10s, [&] { return !keeping.kept.empty(); }));
  EXPECT_FALSE(keeping.kept[0]->at("metadata").contains("managedFields"));
  EXPECT_EQ(keeping.kept[0]->at("metadata").at("name"), "a");
}

// A burst of watch events (one read of the stream) is made durable by one sink Flush,
// and the resourceVersion moves past the burst only after that Flush returned; a Flush
// that throws leaves it where it was and the reflector relists.
TEST_F(ReflectorTest, AdvancesTheResourceVersionOnlyAfterTheSinkFlushedABurst) {
  struct Bursting final : ListerWatcher {
    ObjectList List(const ListOptions&) override {
      ++lists;
      ObjectList list;
      list.resource_version = "10";
      return list;
    }
    void Watch(const WatchOptions& options, const std::function<void(WatchEvent&&)>& on_event,
               std::stop_token stop) override {
      if (watches++ == 0) {
        on_event(WatchEvent{WatchEventType::kAdded, ConfigMap("ns", "a", "11")});
        on_event(WatchEvent{WatchEventType::kAdded, ConfigMap("ns", "b", "12")});
        rv_before_flush = reflector->LastSyncResourceVersion();
        options.on_batch_end();
        rv_after_flush = reflector->LastSyncResourceVersion();
        on_event(WatchEvent{WatchEventType::kAdded, ConfigMap("ns", "c", "13")});
        options.on_batch_end();  // this Flush throws
        return;
      }
      std::mutex mu;
      std::condition_variable_any cv;
      std::unique_lock lock(mu);
      cv.wait(lock, stop, [] { return false; });
    }
    std::string Describe() const override { return "bursting"; }
    Reflector* reflector = nullptr;
    std::atomic<int> lists{0};
    int watches = 0;
    std::string rv_before_flush, rv_after_flush;
  } bursting;
  struct Buffering final : ReflectorSink {
    void Replace(std::vector<ObjectPtr>, const std::string&) override {}
    void Add(ObjectPtr o) override { buffered.push_back(ObjectStoreKey(*o)); }
    void Update(ObjectPtr) override {}
    void Delete(ObjectPtr) override {}
    void Flush() override {
      ++flushes;
      if (flushes == 2) throw std::runtime_error("JetStream did not ack");
      flushed = buffered;
    }
    std::vector<std::string> buffered, flushed;
    int flushes = 0;
  } buffering;
  Reflector reflector(bursting, buffering, NoJitter(), clock_);
  bursting.reflector = &reflector;
  std::jthread t([&](std::stop_token stop) { reflector.Run(stop); });
  ASSERT_TRUE(clock_.BlockUntilWaiters(1));  // the backoff after the failed Flush
  EXPECT_EQ(bursting.rv_before_flush, "10");
  EXPECT_EQ(bursting.rv_after_flush, "12");
  EXPECT_EQ(buffering.flushed, (std::vector<std::string>{"ns/a", "ns/b"}));
  EXPECT_EQ(reflector.LastSyncResourceVersion(), "12");  // not 13: its burst was not flushed
  EXPECT_EQ(buffering.flushes, 2);
  EXPECT_EQ(bursting.lists.load(), 1);
  clock_.Advance(800ms);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (bursting.lists.load() < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);  // polls the real reflector thread, with a deadline
  }
  EXPECT_EQ(bursting.lists.load(), 2);  // relisted
}

TEST_F(ReflectorTest, StopsPromptlyWhileWatchingOrBackingOff) {
  lw_.PushList({}, "10");
  Start();
  ASSERT_TRUE(lw_.WaitForWatchCalls(1));
  thread_.request_stop();
  thread_.join();  // returns: the watch honours the stop token

  FakeListerWatcher failing;  // no scripted list: fails and backs off on the fake clock
  Reflector r(failing, sink_, NoJitter(), clock_);
  std::jthread t([&](std::stop_token stop) { r.Run(stop); });
  ASSERT_TRUE(clock_.BlockUntilWaiters(1));
  t.request_stop();
  t.join();
  EXPECT_EQ(r.ListCount(), 0);
}

}  // namespace
}  // namespace ro::kube

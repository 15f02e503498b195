#include "ro/kube/leader_election.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ro/kube/clock.h"
#include "ro/kube/errors.h"

namespace ro::kube {
namespace {

using namespace std::chrono_literals;

// One Lease in memory with the apiserver's optimistic concurrency: every write bumps
// the resourceVersion, an Update at a stale one is a Conflict. Shared by candidates.
class FakeLease {
 public:
  std::optional<ResourceLock::Observed> Get() {
    std::lock_guard lock(mu_);
    MaybeFail();
    if (!exists_) return std::nullopt;
    return ResourceLock::Observed{record_, std::to_string(rv_)};
  }
  void Create(const LeaderElectionRecord& r) {
    std::lock_guard lock(mu_);
    MaybeFail();
    if (exists_) throw ApiError(409, StatusReason::kAlreadyExists, "exists");
    exists_ = true;
    Write(r);
  }
  void Update(const LeaderElectionRecord& r, const std::string& rv) {
    std::lock_guard lock(mu_);
    MaybeFail();
    if (rv != std::to_string(rv_)) throw ApiError(409, StatusReason::kConflict, "stale");
    Write(r);
  }
  // Another process writes the record directly.
  void Set(const LeaderElectionRecord& r) {
    std::lock_guard lock(mu_);
    exists_ = true;
    Write(r);
  }
  LeaderElectionRecord record() {
    std::lock_guard lock(mu_);
    return record_;
  }
  int writes() {
    std::lock_guard lock(mu_);
    return writes_;
  }
  void SetUnreachable(bool down) {
    std::lock_guard lock(mu_);
    down_ = down;
  }

 private:
  void MaybeFail() {
    if (down_) throw TransportError(TransportError::Kind::kConnect, "connection refused");
  }
  void Write(const LeaderElectionRecord& r) {
    record_ = r;
    ++rv_;
    ++writes_;
  }
  std::mutex mu_;
  bool exists_ = false;
  bool down_ = false;
  LeaderElectionRecord record_;
  int rv_ = 0;
  int writes_ = 0;
};

class FakeLock final : public ResourceLock {
 public:
  explicit FakeLock(FakeLease& lease) : lease_(lease) {}
  std::optional<Observed> Get() override { return lease_.Get(); }
  void Create(const LeaderElectionRecord& r) override { lease_.Create(r); }
  void Update(const LeaderElectionRecord& r, const std::string& rv) override { lease_.Update(r, rv); }
  std::string Describe() const override { return "ns/lease"; }

 private:
  FakeLease& lease_;
};

// Collects callbacks and lets the test wait for them.
struct Events {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> lines;
  void Add(std::string line) {
    std::lock_guard lock(mu);
    lines.push_back(std::move(line));
    cv.notify_all();
  }
  bool WaitFor(const std::string& line) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, 10s, [&] {
      return std::find(lines.begin(), lines.end(), line) != lines.end();
    });
  }
  bool Has(const std::string& line) {
    std::lock_guard lock(mu);
    return std::find(lines.begin(), lines.end(), line) != lines.end();
  }
};

class LeaderElectionTest : public ::testing::Test {
 protected:
  LeaderElectionConfig Config(const std::string& id) {
    LeaderElectionConfig c;
    c.identity = id;
    c.on_started_leading = [this, id](std::stop_token stop) {
      events_.Add(id + " started");
      // Works until told to stop (on the fake clock nothing else wakes it).
      std::mutex mu;
      std::condition_variable_any cv;
      std::unique_lock lock(mu);
      cv.wait(lock, stop, [] { return false; });
      events_.Add(id + " work stopped");
    };
    c.on_stopped_leading = [this, id] { events_.Add(id + " stopped"); };
    c.on_new_leader = [this, id](const std::string& leader) { events_.Add(id + " sees " + leader); };
    return c;
  }

  std::unique_ptr<LeaderElector> Elector(LeaderElectionConfig c) {
    return std::make_unique<LeaderElector>(std::make_unique<FakeLock>(lease_), std::move(c), clock_);
  }

  FakeClock clock_;
  FakeLease lease_;
  Events events_;
};

TEST_F(LeaderElectionTest, AcquiresAnAbsentLeaseAndRecordsTheHolder) {
  auto e = Elector(Config("a"));
  std::jthread run([&](std::stop_token stop) { e->Run(stop); });
  ASSERT_TRUE(events_.WaitFor("a started"));
  EXPECT_TRUE(events_.Has("a sees a"));
  EXPECT_TRUE(e->IsLeader());
  EXPECT_EQ(e->Leader(), "a");
  const LeaderElectionRecord r = lease_.record();
  EXPECT_EQ(r.holder_identity, "a");
  EXPECT_EQ(r.lease_duration_seconds, 15);
  EXPECT_EQ(r.acquire_time, r.renew_time);
  EXPECT_EQ(r.lease_transitions, 0);
}

TEST_F(LeaderElectionTest, RenewsEveryRetryPeriodKeepingAcquireTime) {
  auto e = Elector(Config("a"));
  std::jthread run([&](std::stop_token stop) { e->Run(stop); });
  ASSERT_TRUE(events_.WaitFor("a started"));
  const LeaderElectionRecord first = lease_.record();
  ASSERT_TRUE(clock_.BlockUntilWaiters(1));
  EXPECT_EQ(clock_.NextDeadline() - clock_.SteadyNow(), 2s);
  const int writes = lease_.writes();
  clock_.Advance(2s);
  ASSERT_TRUE(clock_.BlockUntilWaiters(1));
  EXPECT_EQ(lease_.writes(), writes + 1);
  const LeaderElectionRecord renewed = lease_.record();
  EXPECT_EQ(renewed.acquire_time, first.acquire_time);
  EXPECT_EQ(renewed.renew_time - first.renew_time, 2s);
  EXPECT_EQ(renewed.lease_transitions, 0);
}

TEST_F(LeaderElectionTest, WaitsWhileAnotherHolderRenewsAndTakesOverAfterExpiry) {
  const auto t0 = clock_.Now();
  lease_.Set({"other", 15, t0, t0, 3});
  auto e = Elector(Config("a"));
  std::jthread run([&](std::stop_token stop) { e->Run(stop); });
  ASSERT_TRUE(events_.WaitFor("a sees other"));
  EXPECT_FALSE(e->IsLeader());
  // "other" renews now and then; each change restarts the 15 s lease on our clock.
  // (Written before the clock moves, so every retry of "a" sees a fresh renewal.)
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(clock_.BlockUntilWaiters(1));
    lease_.Set({"other", 15, t0, clock_.Now() + 5s, 3});
    clock_.Advance(5s);
  }
  ASSERT_TRUE(clock_.BlockUntilWaiters(1));
  EXPECT_FALSE(events_.Has("a started"));
  // Then "other" dies: the record stops changing. After 15 s unchanged, "a" takes over.
  for (int i = 0; i < 20 && !events_.Has("a started"); ++i) {
    ASSERT_TRUE(clock_.BlockUntilWaiters(1));
    clock_.Advance(clock_.NextDeadline() - clock_.SteadyNow());
  }
  ASSERT_TRUE(events_.WaitFor("a started"));
  EXPECT_TRUE(events_.Has("a sees a"));
  const LeaderElectionRecord r = lease_.record();
  EXPECT_EQ(r.holder_identity, "a");
  EXPECT_EQ(r.lease_transitions, 4);
  EXPECT_GT(r.acquire_time, t0);
}

TEST_F(LeaderElectionTest, TakesOverAReleasedLeaseAtOnce) {
  const auto t0 = clock_.Now();
  lease_.Set({"", 1, t0, t0, 2});
  auto e = Elector(Config("a"));
  std::jthread run([&](std::stop_token stop) { e->Run(stop); });
  ASSERT_TRUE(events_.WaitFor("a started"));
  EXPECT_EQ(lease_.record().lease_transitions, 3);
}

TEST_F(LeaderElectionTest, StopsLeadingWhenRenewalFailsForTheRenewDeadline) {
  auto e = Elector(Config("a"));
  std::jthread run([&](std::stop_token stop) { e->Run(stop); });
  ASSERT_TRUE(events_.WaitFor("a started"));
  lease_.SetUnreachable(true);
  // Renewal attempts every 2 s; the deadline (10 s) passes after a few failures.
  for (int i = 0; i < 20 && !events_.Has("a stopped"); ++i) {
    if (clock_.BlockUntilWaiters(1, 50ms)) clock_.Advance(2s);
  }
  ASSERT_TRUE(events_.WaitFor("a stopped"));
  EXPECT_TRUE(events_.Has("a work stopped"));
  EXPECT_FALSE(e->IsLeader());
  run.join();  // Run returned by itself
  lease_.SetUnreachable(false);
  EXPECT_EQ(lease_.record().holder_identity, "a");  // lost, not released
}

TEST_F(LeaderElectionTest, CleanStopReleasesTheLeaseAfterTheWorkReturned) {
  auto e = Elector(Config("a"));
  std::jthread run([&](std::stop_token stop) { e->Run(stop); });
  ASSERT_TRUE(events_.WaitFor("a started"));
  run.request_stop();
  run.join();
  EXPECT_TRUE(events_.Has("a work stopped"));
  EXPECT_TRUE(events_.Has("a stopped"));
  const LeaderElectionRecord r = lease_.record();
  EXPECT_EQ(r.holder_identity, "");
  EXPECT_EQ(r.lease_duration_seconds, 1);
  EXPECT_EQ(r.lease_transitions, 0);

  // A second candidate now acquires without waiting for expiry.
  auto b = Elector(Config("b"));
  std::jthread run_b([&](std::stop_token stop) { b->Run(stop); });
  ASSERT_TRUE(events_.WaitFor("b started"));
  EXPECT_EQ(lease_.record().lease_transitions, 1);
}

TEST_F(LeaderElectionTest, CleanStopWithoutReleaseOnCancelKeepsTheHolder) {
  LeaderElectionConfig c = Config("a");
  c.release_on_cancel = false;
  auto e = Elector(c);
  std::jthread run([&](std::stop_token stop) { e->Run(stop); });
  ASSERT_TRUE(events_.WaitFor("a started"));
  run.request_stop();
  run.join();
  EXPECT_EQ(lease_.record().holder_identity, "a");
}

TEST_F(LeaderElectionTest, StopBeforeLeadingReturnsWithoutCallbacks) {
  lease_.Set({"other", 15, clock_.Now(), clock_.Now(), 0});
  auto e = Elector(Config("a"));
  std::jthread run([&](std::stop_token stop) { e->Run(stop); });
  ASSERT_TRUE(events_.WaitFor("a sees other"));
  run.request_stop();
  run.join();
  EXPECT_FALSE(events_.Has("a started"));
  EXPECT_FALSE(events_.Has("a stopped"));
  EXPECT_EQ(lease_.record().holder_identity, "other");
}

TEST_F(LeaderElectionTest, OnlyOneOfTwoCandidatesLeads) {
  auto a = Elector(Config("a"));
  auto b = Elector(Config("b"));
  std::jthread run_a([&](std::stop_token stop) { a->Run(stop); });
  std::jthread run_b([&](std::stop_token stop) { b->Run(stop); });
  {
    std::unique_lock lock(events_.mu);
    ASSERT_TRUE(events_.cv.wait_for(lock, 10s, [&] {
      for (const std::string& l : events_.lines) {
        if (l == "a started" || l == "b started") return true;
      }
      return false;
    }));
  }
  // The loser (whose create or update conflicted) retries after its jittered period.
  ASSERT_TRUE(clock_.BlockUntilWaiters(2));
  clock_.Advance(5s);
  const std::string winner = a->IsLeader() ? "a" : "b";
  const std::string loser = winner == "a" ? "b" : "a";
  ASSERT_TRUE(events_.WaitFor(loser + " sees " + winner));
  EXPECT_NE(a->IsLeader(), b->IsLeader());
  EXPECT_FALSE(events_.Has(loser + " started"));
}

TEST_F(LeaderElectionTest, RejectsInconsistentDurations) {
  LeaderElectionConfig c = Config("a");
  c.renew_deadline = 15s;
  EXPECT_THROW(Elector(c), std::invalid_argument);
  c = Config("a");
  c.retry_period = 9s;  // 1.2 * 9 s > 10 s
  EXPECT_THROW(Elector(c), std::invalid_argument);
  c = Config("");
  EXPECT_THROW(Elector(c), std::invalid_argument);
  c = Config("a");
  c.on_started_leading = nullptr;
  EXPECT_THROW(Elector(c), std::invalid_argument);
}

}  // namespace
}  // namespace ro::kube

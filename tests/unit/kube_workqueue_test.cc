#include "ro/kube/workqueue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ro/kube/clock.h"

namespace ro::kube {
namespace {

using namespace std::chrono_literals;

TEST(WorkQueue, ItemAddedTwiceBeforeGetIsProcessedOnce) {
  FakeClock clock;
  WorkQueue q(clock);
  q.Add("ns/a");
  q.Add("ns/b");
  q.Add("ns/a");
  EXPECT_EQ(q.Len(), 2u);
  EXPECT_EQ(q.Get(), "ns/a");
  EXPECT_EQ(q.Get(), "ns/b");
  EXPECT_EQ(q.Len(), 0u);
}

TEST(WorkQueue, ItemReaddedWhileProcessingIsRequeuedAfterDone) {
  FakeClock clock;
  WorkQueue q(clock);
  q.Add("ns/a");
  ASSERT_EQ(q.Get(), "ns/a");
  q.Add("ns/a");  // changed again while a worker reconciles it
  q.Add("ns/a");
  EXPECT_EQ(q.Len(), 0u);  // not handed to a second worker concurrently
  q.Done("ns/a");
  EXPECT_EQ(q.Len(), 1u);
  EXPECT_EQ(q.Get(), "ns/a");
  q.Done("ns/a");
  EXPECT_EQ(q.Len(), 0u);
}

TEST(WorkQueue, GetBlocksUntilAnItemIsAdded) {
  FakeClock clock;
  WorkQueue q(clock);
  std::optional<std::string> got;
  std::jthread worker([&] { got = q.Get(); });
  ASSERT_TRUE(clock.BlockUntilWaiters(1));
  q.Add("ns/a");
  worker.join();
  EXPECT_EQ(got, "ns/a");
}

TEST(WorkQueue, ShutDownWakesAllWaitersWithNothing) {
  FakeClock clock;
  WorkQueue q(clock);
  std::atomic<int> nothing{0};
  std::vector<std::jthread> workers;
  for (int i = 0; i < 3; ++i) {
    workers.emplace_back([&] {
      if (!q.Get()) ++nothing;
    });
  }
  ASSERT_TRUE(clock.BlockUntilWaiters(3));
  q.ShutDown();
  workers.clear();  // joins
  EXPECT_EQ(nothing.load(), 3);
  EXPECT_TRUE(q.ShuttingDown());
}

TEST(WorkQueue, ShutDownStillHandsOutQueuedItemsButAcceptsNoNewOnes) {
  FakeClock clock;
  WorkQueue q(clock);
  q.Add("a");
  q.ShutDown();
  q.Add("b");
  EXPECT_EQ(q.Get(), "a");
  EXPECT_EQ(q.Get(), std::nullopt);
}

TEST(WorkQueue, ShutDownWithDrainWaitsForItemsBeingProcessed) {
  FakeClock clock;
  WorkQueue q(clock);
  q.Add("a");
  ASSERT_EQ(q.Get(), "a");
  std::atomic<bool> drained{false};
  std::jthread closer([&] {
    q.ShutDownWithDrain();
    drained = true;
  });
  // The closer cannot finish while "a" is processing; Done() releases it.
  while (!q.ShuttingDown()) std::this_thread::yield();
  EXPECT_FALSE(drained.load());
  q.Done("a");
  closer.join();
  EXPECT_TRUE(drained.load());
}

TEST(WorkQueue, AddAfterMakesTheItemReadyWhenTheClockGetsThere) {
  FakeClock clock;
  WorkQueue q(clock);
  q.AddAfter("a", 10s);
  EXPECT_EQ(q.Len(), 0u);
  EXPECT_EQ(q.DelayedLen(), 1u);
  std::optional<std::string> got;
  std::jthread worker([&] { got = q.Get(); });
  ASSERT_TRUE(clock.BlockUntilWaiters(1));
  EXPECT_EQ(clock.NextDeadline() - clock.SteadyNow(), 10s);
  clock.Advance(9s);
  ASSERT_TRUE(clock.BlockUntilWaiters(1));  // still waiting
  EXPECT_FALSE(got.has_value());
  clock.Advance(1s);
  worker.join();
  EXPECT_EQ(got, "a");
  EXPECT_EQ(q.DelayedLen(), 0u);
}

TEST(WorkQueue, AddAfterKeepsTheEarlierReadyTime) {
  FakeClock clock;
  WorkQueue q(clock);
  q.AddAfter("a", 10s);
  q.AddAfter("a", 30s);
  q.AddAfter("a", 5s);
  EXPECT_EQ(q.DelayedLen(), 1u);
  clock.Advance(5s);
  EXPECT_EQ(q.Get(), "a");
}

TEST(WorkQueue, AnEarlierDelayedItemWakesAWaitingWorker) {
  FakeClock clock;
  WorkQueue q(clock);
  q.AddAfter("late", 60s);
  std::optional<std::string> got;
  std::jthread worker([&] { got = q.Get(); });
  ASSERT_TRUE(clock.BlockUntilWaiters(1));
  q.AddAfter("early", 1s);
  // The worker re-reads the earliest deadline.
  while (clock.NextDeadline() != clock.SteadyNow() + 1s) std::this_thread::yield();
  clock.Advance(1s);
  worker.join();
  EXPECT_EQ(got, "early");
}

TEST(WorkQueue, NonPositiveDelayAddsAtOnce) {
  FakeClock clock;
  WorkQueue q(clock);
  q.AddAfter("a", 0s);
  q.AddAfter("b", -1s);
  EXPECT_EQ(q.Len(), 2u);
}

TEST(WorkQueue, ShutDownDropsDelayedItems) {
  FakeClock clock;
  WorkQueue q(clock);
  q.AddAfter("a", 1s);
  q.ShutDown();
  clock.Advance(2s);
  EXPECT_EQ(q.Get(), std::nullopt);
}

TEST(RateLimiter, ItemExponentialDoublesPerFailureUpToTheCap) {
  auto limiter = NewItemExponentialRateLimiter(5ms, 1000s);
  EXPECT_EQ(limiter->When("a"), 5ms);
  EXPECT_EQ(limiter->When("a"), 10ms);
  EXPECT_EQ(limiter->When("a"), 20ms);
  EXPECT_EQ(limiter->When("b"), 5ms);  // per item
  EXPECT_EQ(limiter->NumRequeues("a"), 3);
  for (int i = 0; i < 100; ++i) limiter->When("a");
  EXPECT_EQ(limiter->When("a"), 1000s);
  limiter->Forget("a");
  EXPECT_EQ(limiter->NumRequeues("a"), 0);
  EXPECT_EQ(limiter->When("a"), 5ms);
}

TEST(RateLimiter, BucketAllowsTheBurstThenSpacesByQps) {
  FakeClock clock;
  auto limiter = NewBucketRateLimiter(10.0, 100, clock);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(limiter->When("x"), 0ns) << i;
  EXPECT_EQ(limiter->When("x"), 100ms);
  EXPECT_EQ(limiter->When("y"), 200ms);  // shared by all items
  clock.Advance(1s);                     // refills 10 tokens; 2 were already owed
  for (int i = 0; i < 8; ++i) ASSERT_EQ(limiter->When("x"), 0ns) << i;
  EXPECT_EQ(limiter->When("x"), 100ms);
}

TEST(RateLimiter, DefaultControllerLimiterIsTheMaxOfBothLimits) {
  FakeClock clock;
  auto limiter = NewDefaultControllerRateLimiter(clock);
  EXPECT_EQ(limiter->When("a"), 5ms);
  EXPECT_EQ(limiter->When("a"), 10ms);
  EXPECT_EQ(limiter->NumRequeues("a"), 2);
  for (int i = 0; i < 98; ++i) limiter->When("item-" + std::to_string(i));
  // Tokens are spent: a fresh item now waits for the bucket, not its own 5 ms.
  EXPECT_EQ(limiter->When("fresh"), 100ms);
  limiter->Forget("a");
  EXPECT_EQ(limiter->NumRequeues("a"), 0);
}

TEST(RateLimitingQueue, AddRateLimitedDelaysByTheItemsBackoff) {
  FakeClock clock;
  RateLimitingQueue q(NewItemExponentialRateLimiter(1s, 60s), clock);
  q.AddRateLimited("a");
  q.AddRateLimited("a");  // 1 s then 2 s; the earlier ready time wins
  EXPECT_EQ(q.NumRequeues("a"), 2);
  EXPECT_EQ(q.Len(), 0u);
  clock.Advance(1s);
  EXPECT_EQ(q.Get(), "a");
  q.Forget("a");
  q.Done("a");
  EXPECT_EQ(q.NumRequeues("a"), 0);
}

}  // namespace
}  // namespace ro::kube

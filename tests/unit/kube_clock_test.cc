#include "ro/kube/clock.h"

#include <gtest/gtest.h>

#include "ro/common/time.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace ro::kube {
namespace {

using namespace std::chrono_literals;

TEST(FakeClock, StartsAtTheGivenWallTimeAndMovesOnlyWhenAdvanced) {
  FakeClock clock;
  EXPECT_EQ(common::FormatRfc3339(clock.Now()), "2024-01-01T00:00:00Z");
  const auto steady = clock.SteadyNow();
  clock.Advance(1500ms);
  EXPECT_EQ(clock.SteadyNow() - steady, 1500ms);
  EXPECT_EQ(common::FormatRfc3339Micro(clock.Now()), "2024-01-01T00:00:01.500000Z");
}

TEST(FakeClock, SleeperWakesWhenTimeReachesItsDeadline) {
  FakeClock clock;
  std::atomic<bool> woke{false};
  std::jthread sleeper([&] { woke = clock.SleepFor(10s, std::stop_token{}); });
  ASSERT_TRUE(clock.BlockUntilWaiters(1));
  clock.Advance(9s);
  ASSERT_TRUE(clock.BlockUntilWaiters(1));
  EXPECT_FALSE(woke.load());
  clock.Advance(1s);
  sleeper.join();
  EXPECT_TRUE(woke.load());
  EXPECT_EQ(clock.Waiters(), 0u);
}

TEST(FakeClock, StopInterruptsASleep) {
  FakeClock clock;
  std::atomic<bool> result{true};
  std::jthread sleeper([&](std::stop_token stop) { result = clock.SleepFor(1h, stop); });
  ASSERT_TRUE(clock.BlockUntilWaiters(1));
  sleeper.request_stop();
  sleeper.join();
  EXPECT_FALSE(result.load());
}

TEST(FakeClock, WaitUntilReturnsWhenThePredicateBecomesTrue) {
  FakeClock clock;
  std::mutex mu;
  std::condition_variable_any cv;
  bool ready = false;
  std::atomic<bool> result{false};
  std::jthread waiter([&] {
    std::unique_lock lock(mu);
    result = clock.WaitUntil(lock, cv, Clock::SteadyTime::max(), std::stop_token{}, [&] { return ready; });
  });
  ASSERT_TRUE(clock.BlockUntilWaiters(1));
  EXPECT_EQ(clock.NextDeadline(), Clock::SteadyTime::max());
  {
    std::lock_guard lock(mu);
    ready = true;
  }
  cv.notify_all();
  waiter.join();
  EXPECT_TRUE(result.load());
}

TEST(FakeClock, NextDeadlineIsTheEarliestPendingOne) {
  FakeClock clock;
  std::jthread a([&] { clock.SleepFor(5s, std::stop_token{}); });
  std::jthread b([&] { clock.SleepFor(3s, std::stop_token{}); });
  ASSERT_TRUE(clock.BlockUntilWaiters(2));
  EXPECT_EQ(clock.NextDeadline() - clock.SteadyNow(), 3s);
  clock.Advance(3s);
  b.join();
  ASSERT_TRUE(clock.BlockUntilWaiters(1));
  EXPECT_EQ(clock.NextDeadline() - clock.SteadyNow(), 2s);
  clock.Advance(2s);
}

TEST(RealClock, WaitUntilTimesOutAtTheDeadline) {
  RealClock clock;
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock lock(mu);
  const auto start = clock.SteadyNow();
  EXPECT_FALSE(clock.WaitUntil(lock, cv, start + 1ms, std::stop_token{}, [] { return false; }));
  EXPECT_GE(clock.SteadyNow() - start, 1ms);
}

}  // namespace
}  // namespace ro::kube

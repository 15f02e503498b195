// The SynchronizationPlan's decision with time driven by the test: runs on a one-minute
// schedule, each concurrencyPolicy, deadlines, suspend, history pruning.
#include "synchronizationplan/plan_decision.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ro/common/time.h"

namespace ro::controllers {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using TimePoint = std::chrono::system_clock::time_point;
using State = PlanRun::State;

TimePoint At(const char* text) { return common::ParseRfc3339(text); }

class PlanDecisionTest : public ::testing::Test {
 protected:
  PlanDecision Decide(std::optional<TimePoint> last, const char* now) {
    return DecidePlan(every_minute_, settings_, last, created_, runs_, At(now));
  }

  const CronSchedule every_minute_ = CronSchedule::Parse("* * * * *");
  const TimePoint created_ = At("2024-01-01T10:00:30Z");
  PlanSettings settings_;
  std::vector<PlanRun> runs_;
};

TEST_F(PlanDecisionTest, NothingIsDueBeforeTheFirstScheduleTime) {
  const PlanDecision d = Decide(std::nullopt, "2024-01-01T10:00:45Z");
  EXPECT_FALSE(d.start);
  EXPECT_EQ(common::FormatRfc3339(*d.next), "2024-01-01T10:01:00Z");
}

TEST_F(PlanDecisionTest, EachMinuteStartsOneRun) {
  PlanDecision d = Decide(std::nullopt, "2024-01-01T10:01:00Z");
  ASSERT_TRUE(d.start);
  EXPECT_EQ(common::FormatRfc3339(*d.start), "2024-01-01T10:01:00Z");
  d = Decide(At("2024-01-01T10:01:00Z"), "2024-01-01T10:01:30Z");
  EXPECT_FALSE(d.start);
  d = Decide(At("2024-01-01T10:01:00Z"), "2024-01-01T10:02:05Z");
  EXPECT_EQ(common::FormatRfc3339(*d.start), "2024-01-01T10:02:00Z");
}

TEST_F(PlanDecisionTest, AfterDowntimeOnlyTheLatestMissedTimeRuns) {
  const PlanDecision d = Decide(At("2024-01-01T10:01:00Z"), "2024-01-01T12:30:10Z");
  EXPECT_EQ(common::FormatRfc3339(*d.start), "2024-01-01T12:30:00Z");
}

TEST_F(PlanDecisionTest, NoRunPastTheStartingDeadline) {
  settings_.starting_deadline = std::chrono::seconds{30};
  const CronSchedule hourly = CronSchedule::Parse("@hourly");
  PlanDecision d = DecidePlan(hourly, settings_, At("2024-01-01T10:00:00Z"), created_, runs_,
                              At("2024-01-01T11:00:50Z"));
  EXPECT_FALSE(d.start);
  EXPECT_THAT(d.skipped, HasSubstr("deadline"));
  d = DecidePlan(hourly, settings_, At("2024-01-01T10:00:00Z"), created_, runs_,
                 At("2024-01-01T11:00:20Z"));
  EXPECT_EQ(common::FormatRfc3339(*d.start), "2024-01-01T11:00:00Z");
}

TEST_F(PlanDecisionTest, SuspendStartsNothing) {
  settings_.suspend = true;
  const PlanDecision d = Decide(std::nullopt, "2024-01-01T10:05:00Z");
  EXPECT_FALSE(d.start);
  EXPECT_EQ(d.skipped, "suspended");
}

TEST_F(PlanDecisionTest, ConcurrencyPolicies) {
  runs_ = {{"plan-1", State::kActive, At("2024-01-01T10:01:00Z"), std::nullopt}};
  PlanDecision d = Decide(At("2024-01-01T10:01:00Z"), "2024-01-01T10:02:00Z");  // Allow
  EXPECT_TRUE(d.start);
  EXPECT_THAT(d.active, ElementsAre("plan-1"));
  EXPECT_THAT(d.delete_runs, IsEmpty());

  settings_.concurrency = ConcurrencyPolicy::kForbid;
  d = Decide(At("2024-01-01T10:01:00Z"), "2024-01-01T10:02:00Z");
  EXPECT_FALSE(d.start);
  EXPECT_THAT(d.skipped, HasSubstr("plan-1 is still active"));

  settings_.concurrency = ConcurrencyPolicy::kReplace;
  d = Decide(At("2024-01-01T10:01:00Z"), "2024-01-01T10:02:00Z");
  EXPECT_TRUE(d.start);
  EXPECT_THAT(d.delete_runs, ElementsAre("plan-1"));
  EXPECT_THAT(d.active, IsEmpty());
}

TEST_F(PlanDecisionTest, HistoryKeepsTheNewestFinishedRuns) {
  runs_ = {{"s1", State::kSucceeded, At("2024-01-01T10:01:00Z"), At("2024-01-01T10:01:05Z")},
           {"s3", State::kSucceeded, At("2024-01-01T10:03:00Z"), At("2024-01-01T10:03:05Z")},
           {"s2", State::kSucceeded, At("2024-01-01T10:02:00Z"), At("2024-01-01T10:02:05Z")},
           {"f1", State::kFailed, At("2024-01-01T10:04:00Z"), At("2024-01-01T10:04:05Z")}};
  PlanDecision d = Decide(At("2024-01-01T10:04:00Z"), "2024-01-01T10:04:30Z");
  EXPECT_THAT(d.delete_runs, ElementsAre("s1"));
  EXPECT_EQ(common::FormatRfc3339(*d.last_successful), "2024-01-01T10:03:05Z");
  settings_.successful_history = 0;
  settings_.failed_history = 0;
  d = Decide(At("2024-01-01T10:04:00Z"), "2024-01-01T10:04:30Z");
  EXPECT_THAT(d.delete_runs, ElementsAre("s1", "s2", "s3", "f1"));
}

}  // namespace
}  // namespace ro::controllers

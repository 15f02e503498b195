// What a SynchronizationPlan should do now (CronJob semantics where the manual is silent):
// pure, from the plan's spec, its last schedule time, its Synchronizations and the time.
//
// - The run due is the most recent schedule time in (last, now], where `last` is
//   status.lastScheduleTime (else the plan's creation), moved up to now -
//   startingDeadlineSeconds when that is later: after downtime at most one catch-up run,
//   and none when every missed time is past the deadline.
// - suspend: nothing starts (the missed times are not run on resume if past the deadline).
// - concurrencyPolicy: Allow starts it anyway; Forbid skips it while a run is active (and
//   tries again at the next reconcile, like CronJob, until the deadline passes); Replace
//   deletes the active runs and starts it.
// - History: finished runs beyond successfulJobsHistoryLimit / failedJobsHistoryLimit
//   (default 2) are deleted, oldest first.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "synchronizationplan/cron_schedule.h"

namespace ro::controllers {

enum class ConcurrencyPolicy { kAllow, kForbid, kReplace };

struct PlanSettings {
  bool suspend = false;
  std::optional<std::chrono::seconds> starting_deadline;
  ConcurrencyPolicy concurrency = ConcurrencyPolicy::kAllow;
  int successful_history = 2;
  int failed_history = 2;
};

// One Synchronization the plan owns.
struct PlanRun {
  enum class State { kActive, kSucceeded, kFailed };
  std::string name;
  State state = State::kActive;
  std::chrono::system_clock::time_point scheduled;  // its schedule time (or creation)
  std::optional<std::chrono::system_clock::time_point> completed;
};

struct PlanDecision {
  // Create the run of this schedule time.
  std::optional<std::chrono::system_clock::time_point> start;
  // A due run that was not started, and why ("suspended", "Forbid: ... still active",
  // "missed its starting deadline").
  std::string skipped;
  std::vector<std::string> delete_runs;  // Replace: the active runs; history pruning
  // The next schedule time after now (requeue then); nullopt when the schedule never fires.
  std::optional<std::chrono::system_clock::time_point> next;
  std::vector<std::string> active;  // names of active runs (after deletions)
  std::optional<std::chrono::system_clock::time_point> last_successful;
};

// REQUIRES: `runs` are the plan's own Synchronizations.
PlanDecision DecidePlan(const CronSchedule& schedule, const PlanSettings& settings,
                        std::optional<std::chrono::system_clock::time_point> last_schedule,
                        std::chrono::system_clock::time_point created,
                        const std::vector<PlanRun>& runs, std::chrono::system_clock::time_point now);

}  // namespace ro::controllers

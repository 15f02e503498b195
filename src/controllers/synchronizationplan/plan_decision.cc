#include "synchronizationplan/plan_decision.h"

#include <algorithm>

namespace ro::controllers {

PlanDecision DecidePlan(const CronSchedule& schedule, const PlanSettings& settings,
                        std::optional<std::chrono::system_clock::time_point> last_schedule,
                        std::chrono::system_clock::time_point created,
                        const std::vector<PlanRun>& runs, std::chrono::system_clock::time_point now) {
  PlanDecision d;
  d.next = schedule.Next(now);

  // The most recent schedule time in (earliest, now].
  std::chrono::system_clock::time_point earliest = last_schedule.value_or(created);
  bool past_deadline = false;
  if (settings.starting_deadline && now - *settings.starting_deadline > earliest) {
    earliest = now - *settings.starting_deadline;
    past_deadline = true;
  }
  std::optional<std::chrono::system_clock::time_point> due;
  for (std::optional<std::chrono::system_clock::time_point> t = schedule.Next(earliest);
       t && *t <= now; t = schedule.Next(*t)) {
    due = t;
  }
  if (!due && past_deadline) {
    // A time between the last run and the deadline was missed for good.
    const std::optional<std::chrono::system_clock::time_point> missed =
        schedule.Next(last_schedule.value_or(created));
    if (missed && *missed <= now) d.skipped = "missed its starting deadline";
  }

  std::vector<const PlanRun*> active;
  std::vector<const PlanRun*> succeeded;
  std::vector<const PlanRun*> failed;
  for (const PlanRun& run : runs) {
    (run.state == PlanRun::State::kActive      ? active
     : run.state == PlanRun::State::kSucceeded ? succeeded
                                               : failed)
        .push_back(&run);
    if (run.state == PlanRun::State::kSucceeded && run.completed &&
        (!d.last_successful || *run.completed > *d.last_successful)) {
      d.last_successful = run.completed;
    }
  }

  bool replaced = false;
  if (due) {
    if (settings.suspend) {
      d.skipped = "suspended";
    } else if (!active.empty() && settings.concurrency == ConcurrencyPolicy::kForbid) {
      d.skipped = "concurrencyPolicy Forbid: " + active.front()->name + " is still active";
    } else {
      if (settings.concurrency == ConcurrencyPolicy::kReplace) {
        for (const PlanRun* run : active) d.delete_runs.push_back(run->name);
        replaced = true;
      }
      d.start = due;
    }
  }
  if (!replaced) {
    for (const PlanRun* run : active) d.active.push_back(run->name);
  }

  const auto prune = [&](std::vector<const PlanRun*>& finished, int keep) {
    std::sort(finished.begin(), finished.end(),
              [](const PlanRun* a, const PlanRun* b) { return a->scheduled < b->scheduled; });
    const std::size_t limit = static_cast<std::size_t>(std::max(keep, 0));
    for (std::size_t i = 0; i + limit < finished.size(); ++i) {
      d.delete_runs.push_back(finished[i]->name);
    }
  };
  prune(succeeded, settings.successful_history);
  prune(failed, settings.failed_history);
  return d;
}

}  // namespace ro::controllers

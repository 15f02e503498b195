// The status a LiveSynchronization shows (docs/livesynchronization.md, "Status"; CRD
// deploy/crds/automation.astronetes.io_livesynchronizations.yaml), computed purely from
// what the reconcile observed: the Ready condition, the phase, the components' state,
// the pipeline statistics read from Redis (kubesync/stats.h) and the recovery Task.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ro/kube/gvr.h"
#include "ro/kubesync/runner/component_runner.h"
#include "ro/kubesync/stats.h"
#include "ro/runtime/conditions.h"

namespace ro::controllers::livesync {

// status.phase values.
inline constexpr const char* kPhasePending = "Pending";      // components starting
inline constexpr const char* kPhaseRunning = "Running";      // Ready=True
inline constexpr const char* kPhaseSuspended = "Suspended";  // spec.suspend
inline constexpr const char* kPhaseFailed = "Failed";        // a Problem (see livesync_references.h)

// A lag observation older than this no longer describes the pipeline: with no events
// flowing nothing lags (lagSeconds 0). A minute spans several stats flushes (500 ms)
// and status refreshes (10 s).
inline constexpr std::chrono::seconds kLagFreshness{60};

// The Degraded condition (docs/livesynchronization.md, "Conditions"): True while an
// event failed for good (kubesync_failed_events_total) less than `window` ago.
inline constexpr const char* kDegradedCondition = "Degraded";
inline constexpr const char* kReasonReplicationFailures = "ReplicationFailures";
inline constexpr const char* kReasonNoRecentFailures = "NoRecentFailures";
// The Warning Event for new permanent failures.
inline constexpr const char* kReasonReplicationFailed = "ReplicationFailed";

struct StatusInputs {
  int64_t generation = 0;                   // metadata.generation
  runtime::Condition ready;                 // type Ready; lastTransitionTime set by BuildStatus
  std::string phase;
  std::vector<kubesync::runner::ComponentStatus> components;
  // The configured resources (DistinctGvrs), empty when the configuration is invalid.
  std::vector<kube::GroupVersionResource> gvrs;
  // nullopt when Redis could not be read: the previous statistics are kept.
  std::optional<kubesync::StatsSnapshot> stats;
  std::optional<std::string> task_name;     // the recovery Task, when one exists
  std::chrono::system_clock::time_point now;
  // How long a permanent failure keeps Degraded=True: the resync period, after which
  // the failed objects have been retried.
  std::chrono::seconds failure_window{3600};
};

// Degraded from the statistics: True (ReplicationFailures, naming the latest failure and
// how many happened within `window` before `now`) or False (NoRecentFailures).
runtime::Condition DegradedCondition(const kubesync::StatsSnapshot& stats, std::chrono::system_clock::time_point now,
                                     std::chrono::seconds window);

// One Warning Event's worth of new permanent failures of one (component, gvr, reason).
struct FailureReport {
  kubesync::StatsSnapshot::ErrorKey key;
  std::uint64_t count = 0;  // new since the previous report
  std::string message;      // the Event message
};
// The failures in `stats` beyond `seen` (counts per key already reported; updated to
// the snapshot's). A key not in `seen` counts as new only when its latest failure is
// not older than `since` (the controller's start: failures from before it were
// reported by its predecessor).
std::vector<FailureReport> NewFailures(std::map<kubesync::StatsSnapshot::ErrorKey, std::uint64_t>& seen,
                                       const kubesync::StatsSnapshot& stats,
                                       std::chrono::system_clock::time_point since);

// The whole desired status: observedGeneration, conditions (Ready, and Degraded from the
// statistics when there are any, set with the
// lastTransitionTime rule of conditions.h on `previous`'s conditions), phase,
// components[], taskName, and from the statistics resources[] {group, version,
// resource, objects, lastEventTime}, lastResyncTime and lagSeconds (the largest fresh
// last observation over the resources, milliseconds precision; 0 when none is fresh;
// absent before the first). Without statistics, or without gvrs, those three fields are
// copied from `previous`. `previous` is object["status"] (may be null).
nlohmann::json BuildStatus(const nlohmann::json& previous, const StatusInputs& inputs);

}  // namespace ro::controllers::livesync

// The status a LiveSynchronization shows (docs/livesynchronization.md, "Status"; CRD
// deploy/crds/automation.astronetes.io_livesynchronizations.yaml), computed purely from
// what the reconcile observed: the Ready condition, the phase, the components' state,
// the pipeline statistics read from Redis (kubesync/stats.h) and the recovery Task.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <cstdint>
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
};

// The whole desired status: observedGeneration, conditions (Ready set with the
// lastTransitionTime rule of conditions.h on `previous`'s conditions), phase,
// components[], taskName, and from the statistics resources[] {group, version,
// resource, objects, lastEventTime}, lastResyncTime and lagSeconds (the largest fresh
// last observation over the resources, milliseconds precision; 0 when none is fresh;
// absent before the first). Without statistics, or without gvrs, those three fields are
// copied from `previous`. `previous` is object["status"] (may be null).
nlohmann::json BuildStatus(const nlohmann::json& previous, const StatusInputs& inputs);

}  // namespace ro::controllers::livesync

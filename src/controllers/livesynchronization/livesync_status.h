// The status a LiveSynchronization shows (docs/livesynchronization.md, "Status"; CRD
// deploy/crds/automation.astronetes.io_livesynchronizations.yaml), computed purely from
// what the reconcile observed: the Ready condition, the phase, the components' state,
// the pipeline statistics read from Redis (kubesync/stats.h) and the recovery Task.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <cstddef>
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

// The DestinationNamespacesMissing condition (docs/livesynchronization.md, "Namespaces
// in the destination"): True while objects could not be written because their namespace
// does not exist in the destination cluster (and forceNamespaceCreation is off), naming
// the namespaces; a Warning Event with the same reason when it becomes True or the list
// changes, a Normal one when it becomes False.
inline constexpr const char* kNamespacesMissingCondition = "DestinationNamespacesMissing";
inline constexpr const char* kReasonNamespacesNotFound = "NamespacesNotFound";
inline constexpr const char* kReasonNamespacesExist = "NamespacesExist";
// At most this many namespaces are named in its message ("and N more").
inline constexpr std::size_t kMaxNamedNamespaces = 10;

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
  // spec.config.destinationName and replication.forceNamespaceCreation, for the
  // DestinationNamespacesMissing message.
  std::string destination_name;
  bool force_namespace_creation = false;
};

// Degraded from the statistics: True (ReplicationFailures, naming the latest failure and
// how many happened within `window` before `now`) or False (NoRecentFailures).
runtime::Condition DegradedCondition(const kubesync::StatsSnapshot& stats, std::chrono::system_clock::time_point now,
                                     std::chrono::seconds window);

// DestinationNamespacesMissing from the statistics: True (NamespacesNotFound) naming the
// namespaces StatsSnapshot::MissingNamespaces reports within `window` before `now`, else
// False (NamespacesExist).
runtime::Condition NamespacesMissingCondition(const kubesync::StatsSnapshot& stats,
                                              std::chrono::system_clock::time_point now,
                                              std::chrono::seconds window, const std::string& destination_name,
                                              bool force_namespace_creation);

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

// The whole desired status: observedGeneration, conditions (Ready, and Degraded and
// DestinationNamespacesMissing from the statistics when there are any, set with the
// lastTransitionTime rule of conditions.h on `previous`'s conditions), phase,
// components[], taskName, and from the statistics resources[] {group, version,
// resource, objects, lastEventTime}, objects (their sum), lastResyncTime and lagSeconds
// (the largest fresh last observation over the resources, milliseconds precision; 0 when
// none is fresh; absent before the first). Without statistics, or without gvrs, those
// fields are copied from `previous`. `previous` is object["status"] (may be null).
nlohmann::json BuildStatus(const nlohmann::json& previous, const StatusInputs& inputs);

}  // namespace ro::controllers::livesync

// Whether a kubernetes-objects-transformation run changed what it should have
// (docs/automation.md "A run that changes nothing"). A run that completes without a
// failure but selected no object, or recovered fewer objects than the
// LiveSynchronization its Task was generated from reports replicated, did nothing
// useful: the TaskRun still Succeeds, with a warning naming what selected nothing, in
// which cluster, and why. Pure: decided from the Task's config, the run's report and,
// when the TaskRun controller could read it, the LiveSynchronization.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "ro/kube/gvr.h"
#include "ro/plugins/tasks/object_transformation.h"
#include "ro/plugins/tasks/task_spec.h"

namespace ro::plugins::tasks {

// Warning reasons (the TaskRun's Ready and Warning conditions, its Event).
// The run changed no object at all.
inline constexpr std::string_view kReasonNothingRecovered = "NothingRecovered";
// The run changed fewer objects of some resource than the LiveSynchronization reports
// replicated.
inline constexpr std::string_view kReasonFewerObjectsRecovered = "FewerObjectsRecovered";

// What a LiveSynchronization reports replicated (status.resources[*].objects), for the
// resources a Task recovers in full.
struct ReplicatedObjects {
  std::string live_synchronization;                        // "<namespace>/<name>"
  std::map<kube::GroupVersionResource, int64_t> objects;  // per resource
};

// The counts of `live_sync` (a LiveSynchronization object) that `config` (its recovery
// Task's) can be held to: a resource's count is kept only when every
// spec.config.replication.resources[] entry of that resource is one of the Task's
// resources[] (the generated Task leaves out entries without a recoveryProcess, whose
// objects the run does not touch). nullopt when the status has no resources[] yet.
std::optional<ReplicatedObjects> ReplicatedObjectsOf(const nlohmann::json& live_sync,
                                                     const TransformationConfig& config);

// A completed run that deserves attention.
struct RecoveryWarning {
  std::string reason;   // kReasonNothingRecovered or kReasonFewerObjectsRecovered
  std::string message;  // what selected nothing, in which cluster, and why
};

// The warning for a run that finished with `report` (nullopt when it failed: failures
// have their own reason, or when nothing is wrong). `cluster` names the cluster the
// run changed ("" for the cluster the operator runs in). `replicated`, when known,
// adds the per-resource comparison:
//   patched == 0 (every resource)         -> NothingRecovered, per resources[] entry why:
//     "namespace selector sync=true matches no namespace in cluster-2", "no
//     apps/v1/deployments in cluster-2", "none of the 4 apps/v1/deployments in
//     cluster-2 is in the 2 namespaces selected by namespace selector sync=true", ...
//   patched of a resource < replicated    -> FewerObjectsRecovered, naming the resource
//     and both counts
std::optional<RecoveryWarning> CheckRecovery(const TransformationConfig& config,
                                             const TransformationReport& report,
                                             std::string_view cluster,
                                             const ReplicatedObjects* replicated);

}  // namespace ro::plugins::tasks

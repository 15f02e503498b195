// The TaskRun controller (manual 7.1 and 8.2; docs/automation.md "TaskRun"): runs the
// Task named by spec.taskName (same namespace) once.
//
//   (no phase) / Pending
//     the Task is missing, or a reference (KubernetesCluster, Bucket, their Secrets,
//     the ClusterRole) does not resolve  -> Pending with that reason, looked at again
//     every few seconds and when the Task changes; after --start-timeout from the
//     TaskRun's creation -> Failed with the same reason
//     the Task's spec is invalid         -> Failed InvalidTask
//     otherwise                          -> start:
//       kubernetes-objects-transformation: Running (startTime), one pass
//         (plugins::tasks::ObjectTransformer), then Succeeded, or Failed ObjectsFailed,
//         with objectsPatched / objectsFailed and the summary in message; a Succeeded
//         run that changed nothing, or fewer objects than the Task's LiveSynchronization
//         (when readable here) reports replicated, has Ready's reason NothingRecovered /
//         FewerObjectsRecovered, a Warning condition and a Warning Event saying why
//         (plugins::tasks::CheckRecovery);
//       custom-image: finalizer (only with clusterRole), ServiceAccount and
//         ClusterRoleBinding (only with clusterRole), Pod; Running with podName.
//   Running
//     transformation: the pass is repeated (a restart interrupted it); objects the run
//       already changed are recognised and not written again.
//     custom-image: the Pod is read every --pod-poll-interval; Succeeded/Failed end the
//       run after the ServiceAccount and ClusterRoleBinding are deleted; a Pod deleted
//       before it finished fails the run (PodDeleted).
//   Succeeded / Failed: never run again (create a new TaskRun to run the Task again).
//   spec.dryRun (kubernetes-objects-transformation): the same pass with every write sent
//     with dryRun=All; status.dryRun true from the start, status.dryRunReport at the end
//     (per object: Patch with its JSON Patch, Unchanged, Skip or Fail with why); nothing
//     changes and no recovery metric counts it. custom-image: Failed DryRunNotSupported.
//   Deleted while running: the ClusterRoleBinding and ServiceAccount are deleted (the
//     finalizer waits for it); the Pod goes with its ownerReference.
//
// Expected problems become the phase, the Ready condition, an Event and a log line;
// unexpected ones (apiserver unavailable) are retried with backoff by the worker.
#pragma once

#include <chrono>

#include "ro/runtime/controller.h"

namespace ro::runtime {
class FlagSet;
class Manager;
}  // namespace ro::runtime

namespace ro::controllers {

// Ready reasons of a TaskRun beyond Running and Succeeded (docs/automation.md), besides
// the reference reasons of run_target.h (ClusterNotFound, BucketNotFound,
// SecretNotFound, SecretKeyMissing, InvalidKubeconfig, InvalidBucket).
inline constexpr const char* kReasonTaskNotFound = "TaskNotFound";
inline constexpr const char* kReasonInvalidTask = "InvalidTask";
inline constexpr const char* kReasonRunClusterRoleNotFound = "ClusterRoleNotFound";
inline constexpr const char* kReasonObjectsFailed = "ObjectsFailed";
inline constexpr const char* kReasonDestinationError = "DestinationError";
inline constexpr const char* kReasonPodFailed = "PodFailed";
inline constexpr const char* kReasonPodDeleted = "PodDeleted";
inline constexpr const char* kReasonCreateFailed = "CreateFailed";
inline constexpr const char* kReasonNameConflict = "NameConflict";
// spec.dryRun on a custom-image Task.
inline constexpr const char* kReasonDryRunNotSupported = "DryRunNotSupported";
// Reasons of a Succeeded run with a warning: plugins::tasks::kReasonNothingRecovered and
// kReasonFewerObjectsRecovered (ro/plugins/tasks/recovery_check.h).

// Finalizer a custom-image TaskRun with a clusterRole carries until its
// ClusterRoleBinding (cluster-scoped: no garbage collection) is deleted.
inline constexpr const char* kTaskRunCleanupFinalizer = "automation.astronetes.io/taskrun-cleanup";

struct TaskRunOptions {
  // How long a TaskRun waits (Pending) for its Task and the objects the Task names,
  // counted from its creation. Covers `kubectl apply -f dir/` creating the TaskRun a
  // moment before the Task; a TaskRun for a Task that never comes fails after it.
  std::chrono::milliseconds start_timeout{std::chrono::seconds{60}};
  // How often a Pending TaskRun looks again (Task changes are watched; references
  // and the ClusterRole are not).
  std::chrono::milliseconds pending_recheck{std::chrono::seconds{5}};
  // How often the Pod of a running custom-image TaskRun is read. Polling one Pod per
  // running TaskRun is cheaper than caching every Pod of the cluster.
  std::chrono::milliseconds pod_poll_interval{std::chrono::seconds{5}};
  // Limit of each request to a destination KubernetesCluster.
  std::chrono::milliseconds cluster_timeout{std::chrono::seconds{30}};
  // Client-side rate limit (requests/s) of the writes of a run, to a KubernetesCluster or
  // to this cluster; 0: none (the default: a recovery is one request at a time, and its
  // speed is the RTO; the apiserver's own flow control still applies).
  int run_qps = 0;
};

// automation.astronetes.io/v1alpha1 TaskRun.
runtime::ObjectType TaskRunType();

// Registers --start-timeout, --pending-recheck, --pod-poll-interval, --cluster-timeout,
// --run-qps.
void AddTaskRunFlags(runtime::FlagSet& flags, TaskRunOptions* options);

// Registers the controller: For(TaskRun) + Watches(Task -> its unfinished TaskRuns).
void SetupTaskRunController(runtime::Manager& manager, const TaskRunOptions& options);

}  // namespace ro::controllers

// The objects a custom-image TaskRun creates (manual 7.2.1, docs/automation.md
// "custom-image"), rendered from the TaskRun and its Task's config, and how the Pod's
// state reads as the run's outcome. Pure functions: the taskrun controller does the I/O.
//
//   Pod                 <TaskRun name>-<first 8 characters of its uid>, in the TaskRun's
//                       namespace, controller ownerReference to the TaskRun
//   ServiceAccount      same name as the Pod, ownerReference to the TaskRun
//                       (only with clusterRole)
//   ClusterRoleBinding  taskrun-<namespace>-<TaskRun name>-<uid prefix>, binding
//                       clusterRole to that ServiceAccount (only with clusterRole;
//                       cluster-scoped, so deleted by the controller, not by the garbage
//                       collector)
//
// Every one carries the label kTaskRunUidKey and the annotations kTaskRunAnnotation and
// kTaskAnnotation (run_metadata.h). Names longer than Kubernetes allows are shortened with a hash suffix (RunObjectName).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "ro/plugins/tasks/run_metadata.h"
#include "ro/plugins/tasks/task_spec.h"

namespace ro::plugins::tasks {

// The container's name in the Pod.
inline constexpr std::string_view kTaskContainerName = "task";

// `base` when it is at most `max_length` characters, else its first characters, '-',
// and 10 hex digits of SHA-256(base), `max_length` in all. Stable across processes.
// REQUIRES: max_length > 11.
std::string BoundedName(std::string_view base, std::size_t max_length);

// Name of the Pod and the ServiceAccount of `taskrun`: "<name>-<uid[0:8]>", at most 253
// characters. REQUIRES: metadata.name and metadata.uid set.
std::string RunObjectName(const nlohmann::json& taskrun);
// Name of the ClusterRoleBinding: "taskrun-<namespace>-<name>-<uid[0:8]>", <= 253.
std::string RunClusterRoleBindingName(const nlohmann::json& taskrun);

// The controller ownerReference to `taskrun` (blockOwnerDeletion: the Pod goes with the
// TaskRun under foreground deletion).
nlohmann::json TaskRunOwnerReference(const nlohmann::json& taskrun);
// True when `object` has an ownerReference with `uid`.
bool IsOwnedBy(const nlohmann::json& object, std::string_view uid);

// The Pod: restartPolicy from the Task (Never by default), one container "task" with
// `image` and `command`, the ServiceAccount (and its token) only with clusterRole, and
// secure defaults: no privilege escalation, every capability dropped, the RuntimeDefault
// seccomp profile, no service links. It does not force runAsNonRoot: the manual's busybox
// sample runs as root.
nlohmann::json RenderPod(const nlohmann::json& taskrun, std::string_view task_name,
                         const CustomImageConfig& config, RestartPolicy restart_policy);
nlohmann::json RenderServiceAccount(const nlohmann::json& taskrun, std::string_view task_name);
// REQUIRES: config.cluster_role.
nlohmann::json RenderClusterRoleBinding(const nlohmann::json& taskrun, std::string_view task_name,
                                        const CustomImageConfig& config);

// What a Pod's status says about the run.
struct PodOutcome {
  enum class State { kRunning, kSucceeded, kFailed };
  State state = State::kRunning;
  // For people: "Pending: ErrImagePull: ..." / "container task exited with code 1: ..." /
  // "" when there is nothing to say.
  std::string message;
};

// Succeeded/Failed phases end the run; Pending, Running, Unknown and a missing phase
// keep it running (with waiting reasons such as ImagePullBackOff in the message).
PodOutcome ReadPodOutcome(const nlohmann::json& pod);

}  // namespace ro::plugins::tasks

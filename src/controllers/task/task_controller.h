// The Task controller (manual 7 and 8.2; reasons: docs/automation.md "Task").
//
// A Task does nothing by itself: the controller checks that a TaskRun could run it and
// says so in the Ready condition, with status.plugin:
//   - the spec parses for its plugin (plugins::tasks::ParseTask): InvalidConfig,
//     InvalidPatch, InvalidSelector or InvalidRegex naming the field;
//   - kubernetes-objects-transformation: the KubernetesCluster destinationName (when
//     set) and the Bucket bucketName (when a resource restores originals) exist in the
//     Task's namespace: ClusterNotFound, BucketNotFound;
//   - custom-image: the ClusterRole clusterRole (when set) exists: ClusterRoleNotFound.
// It re-checks at once when a KubernetesCluster or Bucket of the namespace changes, and
// every --recheck-interval while it names a ClusterRole (ClusterRoles are not watched).
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "ro/runtime/condition_reconciler.h"
#include "ro/runtime/controller.h"

namespace ro::runtime {
class FlagSet;
class Manager;
}  // namespace ro::runtime

namespace ro::controllers {

// Ready reasons (docs/automation.md). Invalid specs report the reason of their first
// problem (InvalidConfig, InvalidPatch, InvalidSelector, InvalidRegex:
// ro/plugins/kubernetes/config_error.h).
inline constexpr const char* kReasonTaskValid = "Valid";
inline constexpr const char* kReasonTaskClusterNotFound = "ClusterNotFound";
inline constexpr const char* kReasonTaskBucketNotFound = "BucketNotFound";
inline constexpr const char* kReasonTaskDatabaseNotFound = "DatabaseNotFound";
inline constexpr const char* kReasonTaskClusterRoleNotFound = "ClusterRoleNotFound";

struct TaskOptions {
  // Re-check period of Tasks that name a ClusterRole (ClusterRoles are not watched: one
  // GET per such Task and period). KubernetesClusters and Buckets are watched.
  std::chrono::milliseconds recheck_interval{std::chrono::minutes{1}};
};

// automation.astronetes.io/v1alpha1 Task.
runtime::ObjectType TaskType();

// Registers --recheck-interval.
void AddTaskFlags(runtime::FlagSet& flags, TaskOptions* options);

// Registers the controller: For(Task) + Watches(KubernetesCluster, Bucket).
void SetupTaskController(runtime::Manager& manager, const TaskOptions& options);

// --- The decision, with its lookups injected (unit-testable) --------------------------

struct TaskLookups {
  // Whether KubernetesCluster / Bucket ns/name exists.
  std::function<bool(const std::string& ns, const std::string& name)> cluster_exists;
  std::function<bool(const std::string& ns, const std::string& name)> bucket_exists;
  // Whether Database ns/name exists (zookeeper-nodes-from-backup).
  std::function<bool(const std::string& ns, const std::string& name)> database_exists;
  // Whether ClusterRole `name` exists. Throws for failures other than "not found".
  std::function<bool(const std::string& name)> cluster_role_exists;
};

// Observes one Task object (status.plugin in fields).
runtime::Observation ObserveTask(const nlohmann::json& task, const TaskLookups& lookups,
                                 const TaskOptions& options);

// The KubernetesCluster (or Database) / Bucket names a Task references in its namespace
// (destinationName / bucketName); empty entries ignored.
std::vector<std::string> TaskClusterNames(const nlohmann::json& task);
std::vector<std::string> TaskBucketNames(const nlohmann::json& task);

}  // namespace ro::controllers

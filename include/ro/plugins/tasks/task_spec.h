// The typed, validated spec of a Task (automation.astronetes.io/v1alpha1; manual 7 and
// 8.2, docs/automation.md): the plugin, its restart policy and its configuration.
//
//   custom-image                       image*, command*[], clusterRole
//   kubernetes-objects-transformation  sourceName, destinationName, bucketName,
//                                      resources*[] {identifier* {group, version*,
//                                      resources*}, patch {operations[], patchOptions},
//                                      filter {selector, namespaceSelector, nameSelector},
//                                      fromOriginal {enabled}},
//                                      order (Dependencies | AsListed)
//   kubernetes-objects-from-backup     bucketName*, basePath*, destinationName,
//                                      namespaces[], namespaceMapping {from: to}, namespaceSuffix,
//                                      namespaceLabels {k: v}, existing (Skip | Update),
//                                      order (Dependencies | AsListed)
//
// Parsing collects every problem and throws one kubernetes::ConfigError listing them all,
// with field paths from the object root ("spec.config.resources[0].patch.operations[1].path")
// and the reasons of ro/plugins/kubernetes/config_error.h (InvalidConfig, InvalidPatch,
// InvalidSelector, InvalidRegex). References to other objects (KubernetesCluster, Bucket,
// ClusterRole) are checked by the controllers, not here.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "ro/kube/gvr.h"
#include "ro/plugins/kubernetes/config_error.h"
#include "ro/plugins/kubernetes/json_patch.h"
#include "ro/plugins/kubernetes/object_filter.h"

namespace ro::plugins::tasks {

// spec.plugin values (manual 7.2).
inline constexpr std::string_view kCustomImagePlugin = "custom-image";
inline constexpr std::string_view kTransformationPlugin = "kubernetes-objects-transformation";
inline constexpr std::string_view kRestorePlugin = "kubernetes-objects-from-backup";
inline constexpr std::string_view kZooKeeperRestorePlugin = "zookeeper-nodes-from-backup";

// spec.restartPolicy. Omitted means kNever.
enum class RestartPolicy { kNever, kOnFailure };

// "Never", "OnFailure" (the Pod restartPolicy spelling).
std::string_view ToString(RestartPolicy policy);

// custom-image (manual 7.2.1.2): run `image` with `command` as a Pod in the Task's
// namespace.
struct CustomImageConfig {
  std::string image;                 // non-empty
  std::vector<std::string> command;  // non-empty; command[0] is the executable
  // ClusterRole bound to the run's ServiceAccount while the run lasts; nullopt: the Pod
  // runs without API credentials.
  std::optional<std::string> cluster_role;
};

// One kubernetes-objects-transformation resources[] entry.
struct TransformationResource {
  std::size_t index = 0;           // position in spec.config.resources
  kube::GroupVersionResource gvr;  // identifier {group, version, resources}
  kubernetes::JsonPatch patch;     // patch.operations (may be empty with from_original)
  kubernetes::PatchOptions patch_options;
  kubernetes::ObjectFilter filter;  // filter; absent selects every object of the GVR
  // fromOriginal.enabled: restore the object from its original in the bucket first, then
  // apply `patch` (when any).
  bool from_original = false;
};

// spec.config.order of kubernetes-objects-transformation (docs/automation.md "Order").
enum class ResourceOrder {
  // The default: resources[] entries in the stages of ro/plugins/kubernetes/apply_order.h
  // (CRDs, namespaces, ... workloads, routing, admission), the listed order within a stage.
  kDependencies,
  // resources[] as listed.
  kAsListed,
};

// kubernetes-objects-transformation (manual 8.2 "Understanding the TaskRun").
struct TransformationConfig {
  // The source KubernetesCluster, informational (the run never touches it); "" if unset.
  std::string source_name;
  // The KubernetesCluster (in the Task's namespace) whose objects are changed; "" means
  // the cluster the operator runs in (the manual's generated Task sets none: the recovery
  // Task lives in the destination cluster, manual 3.1).
  std::string destination_name;
  // The Bucket (in the Task's namespace) holding the originals; "" if unset. Required
  // when some resource sets fromOriginal.
  std::string bucket_name;
  // In configuration order. May be empty (a run then changes nothing).
  std::vector<TransformationResource> resources;
  // The LiveSynchronization the Task belongs to (LiveSynchronizationOf), whenever it
  // names one: fromOriginal restores the bucket originals kept under its namespace/name
  // (docs/kubesync.md "Bucket object path"), and a run compares what it recovered with
  // what it reports replicated (recovery_check.h). Required when some resource sets
  // fromOriginal.
  std::optional<kube::ObjectKey> live_synchronization;
  // The order in which a run processes resources[].
  ResourceOrder order = ResourceOrder::kDependencies;

  // True when some resource sets fromOriginal.
  bool UsesOriginals() const;
};

// kubernetes-objects-from-backup (docs/backup.md "Restoring"): creates the objects of a
// Backup (its index.json under basePath in the Bucket) in a cluster.
struct RestoreConfig {
  std::string bucket_name;       // required: the Bucket the Backup wrote to
  std::string base_path;         // required: the Backup's status.basePath (no '/' at the ends)
  // kRestorePlugin: a KubernetesCluster, "": the cluster the operator runs in.
  // kZooKeeperRestorePlugin: the Database (required).
  std::string destination_name;
  // kZooKeeperRestorePlugin: where the backup's rootPath is restored (absolute); "": the
  // same path. The fields below are kRestorePlugin's (rejected for ZooKeeper).
  std::string root_path;
  // Restore only these namespaces of the backup (before mapping); empty: all of them.
  std::vector<std::string> namespaces;
  // Namespace of the backup -> namespace it is restored into (a drill copy: "shop" ->
  // "shop-drill"); unmapped namespaces keep their name.
  std::vector<std::pair<std::string, std::string>> namespace_mapping;
  // Appended to every namespace namespace_mapping does not name ("-drill": "shop" is
  // restored as "shop-drill"); "" none.
  std::string namespace_suffix;
  // Labels added to the restored Namespace objects (a drill's marker).
  std::vector<std::pair<std::string, std::string>> namespace_labels;
  // An object that exists in the destination: kSkip leaves it as it is (the default:
  // a restore never overwrites), kUpdate restores the backup's fields over it.
  enum class Existing { kSkip, kUpdate };
  Existing existing = Existing::kSkip;
  ResourceOrder order = ResourceOrder::kDependencies;

  // The namespace `ns` of the backup is restored into.
  std::string MapNamespace(const std::string& ns) const;
};

// Immutable after ParseTask; thread-safe for concurrent readers.
struct TaskSpec {
  std::string plugin;  // one of the k*Plugin names above
  // For custom-image: the Pod's restartPolicy. kubernetes-objects-transformation retries
  // transient errors itself and ignores it (docs/automation.md).
  RestartPolicy restart_policy = RestartPolicy::kNever;
  std::variant<CustomImageConfig, TransformationConfig, RestoreConfig> config;

  // REQUIRES: plugin == kCustomImagePlugin (resp. kTransformationPlugin, kRestorePlugin or
  // kZooKeeperRestorePlugin).
  const CustomImageConfig& custom_image() const;
  const TransformationConfig& transformation() const;
  const RestoreConfig& restore() const;
};

// The LiveSynchronization `task` belongs to: the annotation
// kubernetes::kLiveSynchronizationAnnotation ("<namespace>/<name>", set by the
// LiveSynchronization controller on the Task it generates, recovery_task.h), else an
// ownerReference of kind LiveSynchronization in group automation.astronetes.io (same
// namespace as the Task), else nullopt. A malformed annotation (no '/', an empty part)
// reads as nullopt.
std::optional<kube::ObjectKey> LiveSynchronizationOf(const nlohmann::json& task);

// Parses and validates a whole Task object (its spec, and its metadata for
// LiveSynchronizationOf). Throws kubernetes::ConfigError listing every problem; a
// spec.config that carries fields of the other plugin is not a problem (the CRD schema
// is the union of both plugins).
TaskSpec ParseTask(const nlohmann::json& task);

}  // namespace ro::plugins::tasks

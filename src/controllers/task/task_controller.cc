#include "task/task_controller.h"

#include <memory>
#include <utility>

#include <nlohmann/json.hpp>

#include "bucket/bucket_controller.h"
#include "database/database_controller.h"
#include "kubernetescluster/kubernetescluster_controller.h"
#include "ro/common/log.h"
#include "ro/kube/client.h"
#include "ro/kube/errors.h"
#include "ro/kube/informer.h"
#include "ro/plugins/kubernetes/config_error.h"
#include "ro/plugins/tasks/task_spec.h"
#include "ro/runtime/informer_cache.h"
#include "ro/runtime/manager.h"
#include "ro/runtime/options.h"
#include "ro/runtime/secrets.h"

namespace ro::controllers {

using nlohmann::json;
using runtime::ConditionStatus;
using runtime::Observation;
namespace tasks = plugins::tasks;

namespace {

constexpr const char* kController = "task";

const kube::GroupVersionResource& ClusterRolesGvr() {
  static const kube::GroupVersionResource kGvr{"rbac.authorization.k8s.io", "v1", "clusterroles"};
  return kGvr;
}

std::string ConfigString(const json& task, const char* key) {
  const json spec = task.value("spec", json::object());
  if (!spec.is_object()) return "";
  const json config = spec.value("config", json::object());
  if (!config.is_object() || !config.contains(key) || !config[key].is_string()) return "";
  return config[key].get<std::string>();
}

Observation Result(ConditionStatus status, std::string reason, std::string message,
                   const std::string& plugin, std::chrono::milliseconds recheck_after) {
  Observation o;
  o.status = status;
  o.reason = std::move(reason);
  o.message = std::move(message);
  o.fields["plugin"] = plugin.empty() ? std::nullopt : std::optional<std::string>(plugin);
  o.recheck_after = recheck_after;
  return o;
}

std::string Join(const std::vector<std::string>& words) {
  std::string out;
  for (const std::string& w : words) out += (out.empty() ? "" : " ") + w;
  return out;
}

Observation ObserveCustomImage(const tasks::TaskSpec& spec, const TaskLookups& lookups,
                               const TaskOptions& options) {
  const tasks::CustomImageConfig& config = spec.custom_image();
  std::string message = "Each TaskRun runs image " + config.image + " with command [" +
                        Join(config.command) + "] as a Pod (restartPolicy " +
                        std::string(tasks::ToString(spec.restart_policy)) + ")";
  if (!config.cluster_role) {
    return Result(ConditionStatus::kTrue, kReasonTaskValid, message + ", without API credentials",
                  spec.plugin, std::chrono::milliseconds{0});
  }
  // The role may be deleted later: look again every recheck_interval either way.
  if (!lookups.cluster_role_exists(*config.cluster_role)) {
    return Result(ConditionStatus::kFalse, kReasonTaskClusterRoleNotFound,
                  "spec.config.clusterRole: ClusterRole " + *config.cluster_role +
                      " does not exist",
                  spec.plugin, options.recheck_interval);
  }
  return Result(ConditionStatus::kTrue, kReasonTaskValid,
                message + ", under a ServiceAccount bound to ClusterRole " + *config.cluster_role,
                spec.plugin, options.recheck_interval);
}

Observation ObserveTransformation(const std::string& ns, const tasks::TaskSpec& spec,
                                  const TaskLookups& lookups) {
  const tasks::TransformationConfig& config = spec.transformation();
  const std::chrono::milliseconds no_recheck{0};  // assets are watched
  if (!config.destination_name.empty() && !lookups.cluster_exists(ns, config.destination_name)) {
    return Result(ConditionStatus::kFalse, kReasonTaskClusterNotFound,
                  "spec.config.destinationName: KubernetesCluster " + ns + "/" +
                      config.destination_name + " does not exist",
                  spec.plugin, no_recheck);
  }
  if (config.UsesOriginals() && !lookups.bucket_exists(ns, config.bucket_name)) {
    return Result(ConditionStatus::kFalse, kReasonTaskBucketNotFound,
                  "spec.config.bucketName: Bucket " + ns + "/" + config.bucket_name +
                      " does not exist",
                  spec.plugin, no_recheck);
  }
  const std::size_t n = config.resources.size();
  std::string message = "Each TaskRun changes " + std::to_string(n) +
                        (n == 1 ? " resource type" : " resource types") + " in " +
                        (config.destination_name.empty()
                             ? std::string("the cluster the operator runs in")
                             : "KubernetesCluster " + ns + "/" + config.destination_name);
  if (config.UsesOriginals()) {
    message += ", restoring originals from Bucket " + ns + "/" + config.bucket_name +
               " stored by LiveSynchronization " + config.live_synchronization->ToString();
  }
  return Result(ConditionStatus::kTrue, kReasonTaskValid, message, spec.plugin, no_recheck);
}

// kubernetes-objects-from-backup and zookeeper-nodes-from-backup: the destination (a
// KubernetesCluster, none for the operator's own cluster, or a Database) and the Bucket
// exist.
Observation ObserveRestore(const std::string& ns, const tasks::TaskSpec& spec, const TaskLookups& lookups) {
  const tasks::RestoreConfig& config = spec.restore();
  const std::chrono::milliseconds no_recheck{0};  // assets are watched
  const bool zookeeper = spec.plugin == tasks::kZooKeeperRestorePlugin;
  const std::string destination =
      zookeeper ? "Database " + ns + "/" + config.destination_name
                : (config.destination_name.empty() ? std::string("the cluster the operator runs in")
                                                   : "KubernetesCluster " + ns + "/" + config.destination_name);
  const bool destination_missing =
      zookeeper ? !lookups.database_exists || !lookups.database_exists(ns, config.destination_name)
                : !config.destination_name.empty() && !lookups.cluster_exists(ns, config.destination_name);
  if (destination_missing) {
    return Result(ConditionStatus::kFalse, zookeeper ? kReasonTaskDatabaseNotFound : kReasonTaskClusterNotFound,
                  "spec.config.destinationName: " + destination + " does not exist", spec.plugin, no_recheck);
  }
  if (!lookups.bucket_exists(ns, config.bucket_name)) {
    return Result(ConditionStatus::kFalse, kReasonTaskBucketNotFound,
                  "spec.config.bucketName: Bucket " + ns + "/" + config.bucket_name + " does not exist",
                  spec.plugin, no_recheck);
  }
  return Result(ConditionStatus::kTrue, kReasonTaskValid,
                std::string("Each TaskRun restores the ") + (zookeeper ? "znodes of the " : "") + "backup at " +
                    config.base_path + " of Bucket " + ns + "/" + config.bucket_name + " into " + destination +
                    (config.root_path.empty() ? std::string() : " under " + config.root_path),
                spec.plugin, no_recheck);
}

class TaskReconciler final : public runtime::ConditionReconciler {
 public:
  TaskReconciler(const kube::Store& tasks_store, runtime::StatusWriter writer,
                 kube::DynamicClient& client, const kube::Store& clusters,
                 const kube::Store& buckets, const kube::Store& databases, TaskOptions options)
      : ConditionReconciler(TaskType(), tasks_store, std::move(writer)),
        client_(client),
        clusters_(clusters),
        buckets_(buckets),
        databases_(databases),
        options_(options) {}

 protected:
  Observation Observe(const json& object, std::stop_token /*stop*/) override {
    TaskLookups lookups;
    lookups.cluster_exists = [this](const std::string& ns, const std::string& name) {
      return clusters_.Get(kube::ObjectKey{ns, name}.ToString()) != nullptr;
    };
    lookups.bucket_exists = [this](const std::string& ns, const std::string& name) {
      return buckets_.Get(kube::ObjectKey{ns, name}.ToString()) != nullptr;
    };
    lookups.database_exists = [this](const std::string& ns, const std::string& name) {
      return databases_.Get(kube::ObjectKey{ns, name}.ToString()) != nullptr;
    };
    lookups.cluster_role_exists = [this](const std::string& name) {
      try {
        client_.Get(ClusterRolesGvr(), "", name);
        return true;
      } catch (const kube::ApiError& e) {
        if (kube::IsNotFound(e)) return false;
        throw;
      }
    };
    return ObserveTask(object, lookups, options_);
  }

 private:
  kube::DynamicClient& client_;
  const kube::Store& clusters_;
  const kube::Store& buckets_;
  const kube::Store& databases_;
  const TaskOptions options_;
};

}  // namespace

runtime::ObjectType TaskType() {
  return {kube::GroupVersionResource{"automation.astronetes.io", "v1alpha1", "tasks"}, "Task"};
}

void AddTaskFlags(runtime::FlagSet& flags, TaskOptions* options) {
  flags.AddDuration("--recheck-interval", &options->recheck_interval,
                    "How often Tasks that name a ClusterRole check it again");
}

std::vector<std::string> TaskClusterNames(const json& task) {
  return {ConfigString(task, "destinationName")};
}

std::vector<std::string> TaskBucketNames(const json& task) {
  return {ConfigString(task, "bucketName")};
}

Observation ObserveTask(const json& task, const TaskLookups& lookups, const TaskOptions& options) {
  const std::string ns = task.at("metadata").value("namespace", "");
  tasks::TaskSpec spec;
  try {
    spec = tasks::ParseTask(task);
  } catch (const plugins::kubernetes::ConfigError& e) {
    // status.plugin only describes a valid spec.
    return Result(ConditionStatus::kFalse, e.reason(), e.what(), "", std::chrono::milliseconds{0});
  }
  if (spec.plugin == tasks::kCustomImagePlugin) return ObserveCustomImage(spec, lookups, options);
  if (spec.plugin == tasks::kRestorePlugin || spec.plugin == tasks::kZooKeeperRestorePlugin) {
    return ObserveRestore(ns, spec, lookups);
  }
  return ObserveTransformation(ns, spec, lookups);
}

void SetupTaskController(runtime::Manager& manager, const TaskOptions& options) {
  const runtime::ObjectType type = TaskType();
  const kube::Store& tasks_store = manager.cache().Get(type.gvr).store();
  const kube::GroupVersionResource clusters_gvr = KubernetesClusterType().gvr;
  const kube::GroupVersionResource buckets_gvr = BucketType().gvr;
  const kube::Store& clusters = manager.cache().Get(clusters_gvr).store();
  const kube::Store& buckets = manager.cache().Get(buckets_gvr).store();
  const kube::GroupVersionResource databases_gvr = DatabaseType().gvr;
  const kube::Store& databases = manager.cache().Get(databases_gvr).store();
  runtime::StatusWriter writer(manager.client(), manager.recorder(),
                               log::Logger(json{{"controller", kController}}), manager.clock());
  // MapSecretToReferrers maps any object of a namespace to the referrers naming it.
  manager
      .NewController(kController,
                     std::make_unique<TaskReconciler>(tasks_store, std::move(writer),
                                                      manager.client(), clusters, buckets, databases,
                                                      options))
      .For(type, runtime::OnGenerationChange())
      .Watches(clusters_gvr, runtime::MapSecretToReferrers(tasks_store, TaskClusterNames),
               runtime::OnGenerationChange())
      .Watches(buckets_gvr, runtime::MapSecretToReferrers(tasks_store, TaskBucketNames),
               runtime::OnGenerationChange())
      .Watches(databases_gvr, runtime::MapSecretToReferrers(tasks_store, TaskClusterNames),
               runtime::OnGenerationChange());
}

}  // namespace ro::controllers

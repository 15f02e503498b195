#include "taskrun/taskrun_controller.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "ro/common/log.h"
#include "ro/common/object_meta.h"
#include "ro/common/time.h"
#include "ro/kube/client.h"
#include "ro/kube/errors.h"
#include "ro/kube/informer.h"
#include "ro/plugins/kubernetes/apply_order.h"
#include "ro/plugins/kubernetes/config_error.h"
#include "ro/plugins/tasks/backup_restore.h"
#include "ro/plugins/tasks/custom_image.h"
#include "ro/plugins/tasks/object_transformation.h"
#include "ro/plugins/tasks/recovery_check.h"
#include "ro/plugins/tasks/run_metadata.h"
#include "ro/plugins/tasks/task_spec.h"
#include "ro/plugins/tasks/zookeeper_restore.h"
#include "ro/plugins/zookeeper_client.h"
#include "ro/runtime/finalizers.h"
#include "ro/runtime/informer_cache.h"
#include "ro/runtime/manager.h"
#include "ro/runtime/options.h"
#include "ro/runtime/status.h"
#include "bucket/bucket_controller.h"
#include "database/database_controller.h"
#include "kubernetescluster/kubernetescluster_controller.h"
#include "task/task_controller.h"
#include "taskrun/run_status.h"
#include "taskrun/run_target.h"

namespace ro::controllers {

using nlohmann::json;
using runtime::Request;
using runtime::Result;
namespace tasks = plugins::tasks;

namespace {

constexpr const char* kController = "taskrun";

const kube::GroupVersionResource kPods{"", "v1", "pods"};
const kube::GroupVersionResource kServiceAccounts{"", "v1", "serviceaccounts"};
const kube::GroupVersionResource kClusterRoleBindings{"rbac.authorization.k8s.io", "v1",
                                                      "clusterrolebindings"};
const kube::GroupVersionResource kClusterRoles{"rbac.authorization.k8s.io", "v1", "clusterroles"};
const kube::GroupVersionResource kLiveSynchronizations{"automation.astronetes.io", "v1alpha1",
                                                       "livesynchronizations"};

std::string TaskNameOf(const json& taskrun) {
  const json spec = taskrun.value("spec", json::object());
  return spec.is_object() ? spec.value("taskName", "") : "";
}

// spec.dryRun (false when absent or not a boolean).
bool DryRunRequested(const json& taskrun) {
  const json spec = taskrun.value("spec", json::object());
  return spec.is_object() && spec.value("dryRun", json(false)).is_boolean() &&
         spec.value("dryRun", false);
}

// status.dryRun: whether the run that started is a dry run.
bool DryRunStarted(const json& taskrun) {
  const json status = taskrun.value("status", json::object());
  return status.is_object() && status.value("dryRun", json(false)).is_boolean() &&
         status.value("dryRun", false);
}

// status.dryRunReport of a finished dry run (the CRD's schema).
json DryRunReport(const tasks::TransformationReport& report) {
  json objects = json::array();
  for (const tasks::PlannedChange& change : report.planned) {
    json entry = {{"resource", change.resource},
                  {"name", change.name},
                  {"action", std::string(tasks::ToString(change.action))}};
    if (!change.ns.empty()) entry["namespace"] = change.ns;
    if (change.action == tasks::PlannedAction::kPatch) entry["patch"] = json::parse(change.patch);
    if (!change.message.empty()) entry["message"] = change.message;
    objects.push_back(std::move(entry));
  }
  json resources = json::array();
  for (const tasks::ResourceReport& resource : report.resources) {
    resources.push_back({{"index", resource.index},
                         {"resource", resource.gvr.ToString()},
                         {"stage", std::string(plugins::kubernetes::ToString(
                                       plugins::kubernetes::ApplyStageOf(resource.gvr)))},
                         {"objects", resource.objects},
                         {"selected", resource.selected}});
  }
  json out = {{"objects", std::move(objects)}, {"resources", std::move(resources)}};
  if (report.planned_omitted > 0) out["omitted"] = report.planned_omitted;
  return out;
}

std::string StatusString(const json& taskrun, const char* key) {
  const json status = taskrun.value("status", json::object());
  if (!status.is_object() || !status.contains(key) || !status[key].is_string()) return "";
  return status[key].get<std::string>();
}

// Spec changes, and the start of a deletion (finalizer work), wake the reconciler; its
// own status and finalizer writes do not.
bool SpecChangedOrDeleting(const json& old_object, const json& new_object) {
  return runtime::GenerationChanged(old_object, new_object) ||
         (!common::Deleting(old_object) && common::Deleting(new_object));
}

// An object the run must create exists and belongs to someone else.
class NameConflict : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Bounds of ro_recovery_duration_seconds (RTO): a recovery of a few Deployments takes
// about a second, a large one or one with a custom-image Pod minutes.
const prometheus::Histogram::BucketBoundaries kRecoveryDurationBuckets = {0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};

// What every finished TaskRun adds (docs/metrics.md "Recovery"). Thread-safe
// (prometheus-cpp's metrics are).
class RecoveryMetrics {
 public:
  explicit RecoveryMetrics(prometheus::Registry& registry)
      : runs_(prometheus::BuildCounter()
                  .Name("ro_recovery_runs_total")
                  .Help("Finished TaskRuns, by Task and result (Succeeded or the failure reason)")
                  .Register(registry)),
        duration_(prometheus::BuildHistogram()
                      .Name("ro_recovery_duration_seconds")
                      .Help("RTO: time from a TaskRun's creation to its end, by Task and phase")
                      .Register(registry)),
        objects_(prometheus::BuildCounter()
                     .Name("ro_recovery_objects_total")
                     .Help("Objects a TaskRun recovered or failed to recover, by Task")
                     .Register(registry)) {}

  // `taskrun` finished with `update` at `now`.
  void Finished(const json& taskrun, const RunUpdate& update, std::chrono::system_clock::time_point now) {
    const std::string ns = common::MetadataString(taskrun, "namespace");
    const std::string task = TaskNameOf(taskrun);
    const std::string phase(ToString(update.phase));
    runs_.Add({{"namespace", ns}, {"task", task}, {"result", update.phase == RunPhase::kSucceeded ? phase : ReasonOr(update, phase)}})
        .Increment();
    try {
      const auto created = common::ParseRfc3339(common::MetadataString(taskrun, "creationTimestamp"));
      duration_.Add({{"namespace", ns}, {"task", task}, {"phase", phase}}, kRecoveryDurationBuckets)
          .Observe(std::max(0.0, std::chrono::duration<double>(now - created).count()));
    } catch (const std::exception&) {
      // No creationTimestamp (never from the apiserver): no RTO to observe.
    }
    if (update.objects_patched) {
      objects_.Add({{"namespace", ns}, {"task", task}, {"result", "recovered"}})
          .Increment(static_cast<double>(*update.objects_patched));
    }
    if (update.objects_failed) {
      objects_.Add({{"namespace", ns}, {"task", task}, {"result", "failed"}})
          .Increment(static_cast<double>(*update.objects_failed));
    }
  }

 private:
  static std::string ReasonOr(const RunUpdate& update, const std::string& fallback) {
    return update.reason.empty() ? fallback : update.reason;
  }

  prometheus::Family<prometheus::Counter>& runs_;
  prometheus::Family<prometheus::Histogram>& duration_;
  prometheus::Family<prometheus::Counter>& objects_;
};

class TaskRunReconciler final : public runtime::Reconciler {
 public:
  TaskRunReconciler(runtime::ObjectType type, kube::DynamicClient& client,
                    kube::EventRecorder& recorder, const kube::Store& taskruns,
                    const kube::Store& tasks_store, const kube::Store& clusters,
                    const kube::Store& buckets, const kube::Store& databases, kube::Clock& clock,
                    TaskRunOptions options, prometheus::Registry& registry)
      : type_(std::move(type)),
        client_(client),
        taskruns_(taskruns),
        tasks_(tasks_store),
        clock_(clock),
        options_(options),
        log_(json{{"controller", kController}}),
        writer_(client, recorder, log_, clock),
        resolver_(client, clusters, buckets, options.cluster_timeout, options.run_qps, &databases),
        metrics_(registry) {}

  Result Reconcile(const Request& request, std::stop_token stop) override {
    const kube::ObjectPtr object = taskruns_.Get(request.ToString());
    if (!object) return {};  // deleted: its Pod and ServiceAccount go with it
    const json& taskrun = *object;
    const RunPhase phase = PhaseOf(taskrun);
    if (common::Deleting(taskrun) || IsFinished(phase)) {
      // Only the cleanup a finalizer stands for is left to do.
      return Cleanup(taskrun) ? Result{} : Result::Requeue();
    }
    if (phase == RunPhase::kRunning) return Resume(taskrun, stop);
    return Start(taskrun, stop);
  }

 private:
  std::string Namespace(const json& taskrun) const { return common::MetadataString(taskrun, "namespace"); }
  std::string TaskKey(const json& taskrun) const {
    return kube::ObjectKey{Namespace(taskrun), TaskNameOf(taskrun)}.ToString();
  }
  std::string TaskRef(const json& taskrun) const {
    return "Task " + TaskKey(taskrun) + " (spec.taskName)";
  }

  Result Write(const json& taskrun, const RunUpdate& update, Result then) {
    return writer_.Write(type_.gvr, taskrun, update) ? then : Result::Requeue();
  }

  // Ends the run: cleanup first (so a Succeeded/Failed TaskRun never leaves a
  // ClusterRoleBinding behind), then the final status.
  Result Finish(const json& taskrun, RunUpdate update) {
    const std::optional<json> cleaned = Cleanup(taskrun);
    if (!cleaned) return Result::Requeue();
    // Counted once: a finished run is never reconciled into another end (Reconcile
    // only cleans up after it), and a conflict retries before anything is counted.
    if (!writer_.Write(type_.gvr, *cleaned, update)) return Result::Requeue();
    // A dry run recovers nothing: it is no RTO sample.
    if (!DryRunStarted(*cleaned) && !update.dry_run.value_or(false)) {
      metrics_.Finished(*cleaned, update, clock_.Now());
    }
    return Result{};
  }

  Result Fail(const json& taskrun, std::string reason, std::string message) {
    RunUpdate update;
    update.phase = RunPhase::kFailed;
    update.reason = std::move(reason);
    update.message = std::move(message);
    return Finish(taskrun, std::move(update));
  }

  // Pending with `reason` until --start-timeout after creation, then Failed.
  Result WaitOrFail(const json& taskrun, const std::string& reason, const std::string& message) {
    std::chrono::system_clock::time_point created = clock_.Now();
    try {
      created = common::ParseRfc3339(common::MetadataString(taskrun, "creationTimestamp"));
    } catch (const common::TimeError&) {
      // No usable creationTimestamp (never from an apiserver): count from now.
    }
    const auto deadline = created + options_.start_timeout;
    const auto now = clock_.Now();
    if (now >= deadline) return Fail(taskrun, reason, message);
    RunUpdate update;
    update.phase = RunPhase::kPending;
    update.reason = reason;
    update.message = message + "; waiting until " + common::FormatRfc3339(deadline);
    const auto remaining =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now) +
        std::chrono::milliseconds{1};
    return Write(taskrun, update, Result::RequeueAfter(std::min(options_.pending_recheck, remaining)));
  }

  Result Start(const json& taskrun, std::stop_token stop) {
    const kube::ObjectPtr task = tasks_.Get(TaskKey(taskrun));
    if (!task) return WaitOrFail(taskrun, kReasonTaskNotFound, TaskRef(taskrun) + " does not exist");
    tasks::TaskSpec spec;
    try {
      spec = tasks::ParseTask(*task);
    } catch (const plugins::kubernetes::ConfigError& e) {
      return Fail(taskrun, kReasonInvalidTask, TaskRef(taskrun) + " is invalid: " + e.what());
    }
    const bool dry_run = DryRunRequested(taskrun);
    if (spec.plugin == tasks::kCustomImagePlugin) {
      if (dry_run) {
        return Fail(taskrun, kReasonDryRunNotSupported,
                    TaskRef(taskrun) + " runs a container (custom-image), whose effects a dry run "
                                       "cannot know; dryRun is for kubernetes-objects-transformation");
      }
      const tasks::CustomImageConfig& config = spec.custom_image();
      if (config.cluster_role && !ClusterRoleExists(*config.cluster_role)) {
        return WaitOrFail(taskrun, kReasonRunClusterRoleNotFound,
                          "ClusterRole " + *config.cluster_role + " (clusterRole of " +
                              TaskRef(taskrun) + ") does not exist");
      }
      return StartCustomImage(taskrun, spec);
    }
    std::unique_ptr<ResolvedTarget> target;
    try {
      target = ResolveTarget(Namespace(taskrun), spec);
    } catch (const ReferenceError& e) {
      return WaitOrFail(taskrun, e.reason(), e.what());
    }
    RunUpdate running;
    running.phase = RunPhase::kRunning;
    const bool restore = spec.plugin == tasks::kRestorePlugin || spec.plugin == tasks::kZooKeeperRestorePlugin;
    running.message = dry_run ? "Dry run: finding what the Task would change"
                              : (restore ? "Restoring the backup at " + spec.restore().base_path
                                         : "Changing the objects the Task selects");
    running.dry_run = dry_run;
    // The Running write is preconditioned on the resourceVersion read: a TaskRun that
    // finished meanwhile (a stale cache) is never run again.
    const std::optional<json> started = writer_.Write(type_.gvr, taskrun, running);
    if (!started) return Result::Requeue();
    return RunTransformation(*started, spec, *target, stop);
  }

  Result Resume(const json& cached, std::stop_token stop) {
    if (!StatusString(cached, "podName").empty()) return FollowPod(cached);
    // A transformation pass was interrupted (restart) or its final write conflicted.
    // The cache may lag behind a finished run: confirm with the apiserver first.
    json taskrun;
    try {
      taskrun = client_.Get(type_.gvr, Namespace(cached), common::MetadataString(cached, "name"));
    } catch (const kube::ApiError& e) {
      if (kube::IsNotFound(e)) return {};
      throw;
    }
    if (PhaseOf(taskrun) != RunPhase::kRunning || common::Deleting(taskrun)) return {};
    const kube::ObjectPtr task = tasks_.Get(TaskKey(taskrun));
    if (!task) {
      return Fail(taskrun, kReasonTaskNotFound,
                  TaskRef(taskrun) + " was deleted while the run was in progress");
    }
    tasks::TaskSpec spec;
    try {
      spec = tasks::ParseTask(*task);
    } catch (const plugins::kubernetes::ConfigError& e) {
      return Fail(taskrun, kReasonInvalidTask, TaskRef(taskrun) + " is invalid: " + e.what());
    }
    if (spec.plugin == tasks::kCustomImagePlugin) {
      return Fail(taskrun, kReasonInvalidTask,
                  TaskRef(taskrun) + " changed its plugin while the run was in progress");
    }
    std::unique_ptr<ResolvedTarget> target;
    try {
      target = ResolveTarget(Namespace(taskrun), spec);
    } catch (const ReferenceError& e) {
      return Fail(taskrun, e.reason(), e.what());
    }
    log_.Info("resuming an interrupted run", {{"object", runtime::ObjectRef(taskrun)}});
    return RunTransformation(taskrun, spec, *target, stop);
  }

  std::unique_ptr<ResolvedTarget> ResolveTarget(const std::string& ns, const tasks::TaskSpec& spec) const {
    if (spec.plugin == tasks::kRestorePlugin) return resolver_.Resolve(ns, spec.restore());
    if (spec.plugin == tasks::kZooKeeperRestorePlugin) return resolver_.ResolveZooKeeper(ns, spec.restore());
    return resolver_.Resolve(ns, spec.transformation());
  }

  Result RunTransformation(const json& taskrun, const tasks::TaskSpec& spec,
                           const ResolvedTarget& target, std::stop_token stop) {
    const std::string ns = Namespace(taskrun);
    const std::string name = common::MetadataString(taskrun, "name");
    // Fixed when the run started (status.dryRun), whatever spec says now.
    const bool dry_run = DryRunStarted(taskrun);
    tasks::TransformerOptions transformer_options;
    transformer_options.dry_run = dry_run;
    const tasks::RunIdentity run{ns, name, common::MetadataString(taskrun, "uid")};
    const log::Logger run_log = log_.WithFields({{"taskRun", ns + "/" + name}});
    tasks::TransformationReport report;
    try {
      if (spec.plugin == tasks::kRestorePlugin) {
        report = tasks::BackupRestorer(spec.restore(), run, target.target, run_log, clock_, transformer_options)
                     .Run(stop);
      } else if (spec.plugin == tasks::kZooKeeperRestorePlugin) {
        report = RestoreZooKeeper(spec.restore(), target, run_log, transformer_options, stop);
      } else {
        report = tasks::ObjectTransformer(spec.transformation(), run, target.target, run_log, clock_,
                                          transformer_options)
                     .Run(stop);
      }
    } catch (const tasks::RestoreError& e) {
      return Fail(taskrun, e.reason(), e.what());
    } catch (const std::exception& e) {
      const auto* zookeeper = dynamic_cast<const plugins::ZooKeeperError*>(&e);
      if (zookeeper != nullptr ? !zookeeper->retryable() : !kube::IsRetryable(e)) {
        return Fail(taskrun, kReasonDestinationError,
                    std::string("The destination cluster refused the run: ") + e.what());
      }
      // Unavailable for now: say so, and let the worker repeat the pass with backoff.
      RunUpdate waiting;
      waiting.phase = RunPhase::kRunning;
      waiting.message = std::string("Waiting for the destination cluster: ") + e.what();
      writer_.Write(type_.gvr, taskrun, waiting);
      throw;
    }
    if (stop.stop_requested()) return {};  // still Running: the next start resumes it
    RunUpdate update;
    update.phase = report.Succeeded() ? RunPhase::kSucceeded : RunPhase::kFailed;
    if (!report.Succeeded()) {
      update.reason = report.failed > 0 ? kReasonObjectsFailed : kReasonDestinationError;
    }
    update.message = report.Summary();
    update.objects_patched = report.patched;
    update.objects_failed = report.failed;
    if (dry_run) update.dry_run_report = DryRunReport(report).dump();
    if (report.Succeeded() && spec.plugin == tasks::kTransformationPlugin) {
      const std::optional<tasks::ReplicatedObjects> replicated = ReadReplicated(spec.transformation());
      if (const std::optional<tasks::RecoveryWarning> warning =
              tasks::CheckRecovery(spec.transformation(), report, target.target.destination_cluster.name,
                                   replicated ? &*replicated : nullptr)) {
        update.reason = warning->reason;
        update.message += ". " + warning->message;
        update.warning = warning->message;
      }
    }
    return Finish(taskrun, std::move(update));
  }

  // A zookeeper-nodes-from-backup pass: connects to the Database (an unreachable one
  // throws a retryable ZooKeeperError) and restores.
  tasks::TransformationReport RestoreZooKeeper(const tasks::RestoreConfig& config, const ResolvedTarget& target,
                                               const log::Logger& run_log, const tasks::TransformerOptions& options,
                                               std::stop_token stop) {
    const sync::DatabaseTarget& database = *target.database;
    plugins::ZooKeeperOptions zk_options;
    zk_options.servers = database.servers;
    zk_options.digest = database.digest;
    zk_options.connect_timeout = options_.cluster_timeout;
    plugins::ZooKeeperClient client(zk_options);
    tasks::ZooKeeperTarget zk_target;
    zk_target.destination = &client;
    zk_target.database_name = database.name;
    if (database.digest) zk_target.identity = {plugins::zk_perm::kAll, "digest", plugins::DigestAclId(*database.digest)};
    zk_target.read_bucket = target.target.read_original;
    return tasks::ZooKeeperRestorer(config, zk_target, run_log, options).Run(stop);
  }

  // What the LiveSynchronization the Task was generated from reports replicated, when it
  // is readable in this cluster. In the 3-cluster architecture it lives in the
  // management cluster, not here: nullopt, and the comparison is skipped without a
  // message (docs/automation.md), as for any other failure to read it.
  std::optional<tasks::ReplicatedObjects> ReadReplicated(const tasks::TransformationConfig& config) {
    if (!config.live_synchronization) return std::nullopt;
    const kube::ObjectKey& key = *config.live_synchronization;
    try {
      return tasks::ReplicatedObjectsOf(client_.Get(kLiveSynchronizations, key.ns, key.name), config);
    } catch (const std::exception& e) {
      log_.Debug("LiveSynchronization not readable, recovered objects not compared",
                 {{"liveSynchronization", key.ToString()}, {"error", e.what()}});
      return std::nullopt;
    }
  }

  bool ClusterRoleExists(const std::string& name) {
    try {
      client_.Get(kClusterRoles, "", name);
      return true;
    } catch (const kube::ApiError& e) {
      if (kube::IsNotFound(e)) return false;
      throw;
    }
  }

  // Creates `object`, or accepts an existing one this run created before (same uid
  // label). Throws NameConflict when the name belongs to someone else.
  json CreateOwned(const kube::GroupVersionResource& gvr, const std::string& ns,
                   const json& object, const std::string& uid) {
    try {
      return client_.Create(gvr, ns, object);
    } catch (const kube::ApiError& e) {
      if (!kube::IsAlreadyExists(e)) throw;
    }
    const std::string name = object.at("metadata").at("name").get<std::string>();
    json existing = client_.Get(gvr, ns, name);
    if (common::Label(existing, tasks::kTaskRunUidKey) != uid) {
      throw NameConflict(object.value("kind", gvr.resource) + " " + name +
                         " already exists and was not created by this TaskRun");
    }
    return existing;
  }

  Result StartCustomImage(const json& cached, const tasks::TaskSpec& spec) {
    const tasks::CustomImageConfig& config = spec.custom_image();
    const std::string ns = Namespace(cached);
    const std::string uid = common::MetadataString(cached, "uid");
    const std::string task_name = TaskNameOf(cached);
    json taskrun = cached;
    json pod;
    try {
      if (config.cluster_role) {
        // The finalizer first: the ClusterRoleBinding must not outlive the TaskRun.
        if (!runtime::HasFinalizer(taskrun, kTaskRunCleanupFinalizer)) {
          json with_finalizer = taskrun;
          runtime::AddFinalizer(with_finalizer, kTaskRunCleanupFinalizer);
          try {
            taskrun = client_.Update(type_.gvr, ns, with_finalizer);
          } catch (const kube::ApiError& e) {
            if (kube::IsConflict(e)) return Result::Requeue();
            throw;
          }
        }
        CreateOwned(kServiceAccounts, ns, tasks::RenderServiceAccount(taskrun, task_name), uid);
        CreateOwned(kClusterRoleBindings, "",
                    tasks::RenderClusterRoleBinding(taskrun, task_name, config), uid);
      }
      pod = CreateOwned(kPods, ns,
                        tasks::RenderPod(taskrun, task_name, config, spec.restart_policy), uid);
    } catch (const NameConflict& e) {
      return Fail(taskrun, kReasonNameConflict, e.what());
    } catch (const kube::ApiError& e) {
      if (kube::IsRetryable(e)) throw;
      return Fail(taskrun, kReasonCreateFailed, std::string("Creating the run's objects failed: ") + e.what());
    }
    const std::string pod_name = common::MetadataString(pod, "name");
    RunUpdate running;
    running.phase = RunPhase::kRunning;
    running.message = "Pod " + pod_name + " created";
    running.pod_name = pod_name;
    return Write(taskrun, running, Result::RequeueAfter(options_.pod_poll_interval));
  }

  Result FollowPod(const json& taskrun) {
    const std::string pod_name = StatusString(taskrun, "podName");
    json pod;
    try {
      pod = client_.Get(kPods, Namespace(taskrun), pod_name);
    } catch (const kube::ApiError& e) {
      if (!kube::IsNotFound(e)) throw;
      return Fail(taskrun, kReasonPodDeleted, "Pod " + pod_name + " was deleted before it finished");
    }
    const tasks::PodOutcome outcome = tasks::ReadPodOutcome(pod);
    RunUpdate update;
    update.pod_name = pod_name;
    switch (outcome.state) {
      case tasks::PodOutcome::State::kRunning:
        update.phase = RunPhase::kRunning;
        update.message = "Pod " + pod_name + ": " + outcome.message;
        return Write(taskrun, update, Result::RequeueAfter(options_.pod_poll_interval));
      case tasks::PodOutcome::State::kSucceeded:
        update.phase = RunPhase::kSucceeded;
        update.message = "Pod " + pod_name + " succeeded" +
                         (outcome.message.empty() ? "" : ": " + outcome.message);
        return Finish(taskrun, std::move(update));
      case tasks::PodOutcome::State::kFailed:
        update.phase = RunPhase::kFailed;
        update.reason = kReasonPodFailed;
        update.message = "Pod " + pod_name + " failed" +
                         (outcome.message.empty() ? "" : ": " + outcome.message);
        return Finish(taskrun, std::move(update));
    }
    return Result::RequeueAfter(options_.pod_poll_interval);
  }

  // Deletes `gvr` ns/name when this run created it (uid label); anything else is left.
  void DeleteOwned(const kube::GroupVersionResource& gvr, const std::string& ns,
                   const std::string& name, const std::string& uid) {
    json object;
    try {
      object = client_.Get(gvr, ns, name);
    } catch (const kube::ApiError& e) {
      if (kube::IsNotFound(e)) return;
      throw;
    }
    if (common::Label(object, tasks::kTaskRunUidKey) != uid) return;
    kube::DeleteOptions options;
    options.precondition_uid = common::MetadataString(object, "uid");
    try {
      client_.Delete(gvr, ns, name, options);
    } catch (const kube::ApiError& e) {
      if (!kube::IsNotFound(e)) throw;
    }
  }

  // With the cleanup finalizer: deletes the ClusterRoleBinding and ServiceAccount of the
  // run and drops the finalizer. Returns the TaskRun as stored afterwards (itself when
  // there was nothing to do), nullopt on Conflict.
  std::optional<json> Cleanup(const json& taskrun) {
    if (!runtime::HasFinalizer(taskrun, kTaskRunCleanupFinalizer)) return taskrun;
    const std::string ns = Namespace(taskrun);
    const std::string uid = common::MetadataString(taskrun, "uid");
    DeleteOwned(kClusterRoleBindings, "", tasks::RunClusterRoleBindingName(taskrun), uid);
    DeleteOwned(kServiceAccounts, ns, tasks::RunObjectName(taskrun), uid);
    json without = taskrun;
    runtime::RemoveFinalizer(without, kTaskRunCleanupFinalizer);
    try {
      json stored = client_.Update(type_.gvr, ns, without);
      log_.Info("run credentials removed", {{"object", runtime::ObjectRef(taskrun)}});
      return stored;
    } catch (const kube::ApiError& e) {
      if (kube::IsConflict(e)) return std::nullopt;
      if (kube::IsNotFound(e)) return without;
      throw;
    }
  }

  // Constant after construction.
  const runtime::ObjectType type_;
  kube::DynamicClient& client_;
  const kube::Store& taskruns_;
  const kube::Store& tasks_;
  kube::Clock& clock_;
  const TaskRunOptions options_;
  const log::Logger log_;
  RunStatusWriter writer_;
  const TargetResolver resolver_;
  RecoveryMetrics metrics_;
};

// A Task maps to the TaskRuns of its namespace that name it and have not finished.
runtime::MapFunc MapTaskToRuns(const kube::Store& taskruns) {
  return [&taskruns](const json& task) {
    std::vector<Request> requests;
    const std::string ns = common::MetadataString(task, "namespace");
    const std::string name = common::MetadataString(task, "name");
    for (const kube::ObjectPtr& run : taskruns.ListByNamespace(ns)) {
      if (TaskNameOf(*run) == name && !IsFinished(PhaseOf(*run))) {
        requests.push_back(Request{kube::ObjectKey{ns, common::MetadataString(*run, "name")}});
      }
    }
    return requests;
  };
}

}  // namespace

runtime::ObjectType TaskRunType() {
  return {kube::GroupVersionResource{"automation.astronetes.io", "v1alpha1", "taskruns"},
          "TaskRun"};
}

void AddTaskRunFlags(runtime::FlagSet& flags, TaskRunOptions* options) {
  flags.AddDuration("--start-timeout", &options->start_timeout,
                    "How long a TaskRun waits for its Task and the objects it names");
  flags.AddDuration("--pending-recheck", &options->pending_recheck,
                    "How often a waiting TaskRun looks again");
  flags.AddDuration("--pod-poll-interval", &options->pod_poll_interval,
                    "How often the Pod of a running custom-image TaskRun is read");
  flags.AddDuration("--cluster-timeout", &options->cluster_timeout,
                    "Limit of each request to a destination KubernetesCluster");
  flags.AddInt("--run-qps", &options->run_qps,
               "Client-side rate limit (requests/s) of a run's writes; 0: none");
}

void SetupTaskRunController(runtime::Manager& manager, const TaskRunOptions& options) {
  const runtime::ObjectType type = TaskRunType();
  const kube::Store& taskruns = manager.cache().Get(type.gvr).store();
  const kube::Store& tasks_store = manager.cache().Get(TaskType().gvr).store();
  const kube::Store& clusters = manager.cache().Get(KubernetesClusterType().gvr).store();
  const kube::Store& buckets = manager.cache().Get(BucketType().gvr).store();
  const kube::Store& databases = manager.cache().Get(DatabaseType().gvr).store();
  runtime::WatchOptions watch;
  watch.update_predicate = SpecChangedOrDeleting;
  manager
      .NewController(kController, std::make_unique<TaskRunReconciler>(
                                      type, manager.client(), manager.recorder(), taskruns,
                                      tasks_store, clusters, buckets, databases, manager.clock(), options,
                                      manager.registry()))
      .For(type, watch)
      .Watches(TaskType().gvr, MapTaskToRuns(taskruns), runtime::OnGenerationChange());
}

}  // namespace ro::controllers

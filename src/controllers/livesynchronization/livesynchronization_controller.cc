#include "livesynchronization/livesynchronization_controller.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "bucket/bucket_controller.h"
#include "livesynchronization/livesync_references.h"
#include "livesynchronization/livesync_status.h"
#include "livesynchronization/pipeline_credentials.h"
#include "livesynchronization/pipeline_stats.h"
#include "livesynchronization/recovery_task_sync.h"
#include "livesynchronization/source_resources.h"
#include "ro/common/log.h"
#include "ro/common/object_meta.h"
#include "ro/kube/client.h"
#include "ro/kube/config.h"
#include "ro/kube/errors.h"
#include "ro/kube/event_recorder.h"
#include "ro/kube/informer.h"
#include "ro/kubesync/jetstream.h"
#include "ro/kubesync/runner/local_runner.h"
#include "ro/runtime/finalizers.h"
#include "ro/runtime/informer_cache.h"
#include "ro/runtime/manager.h"
#include "ro/runtime/options.h"
#include "ro/runtime/cluster_kubeconfig.h"
#include "ro/runtime/secrets.h"
#include "ro/runtime/status.h"

namespace ro::controllers {

namespace fs = std::filesystem;
using nlohmann::json;
using runtime::ConditionStatus;
namespace runner = kubesync::runner;
namespace pk = plugins::kubernetes;

namespace {

constexpr const char* kController = "livesynchronization";
// A Bucket's Secret keys (kAccessKeyIdKey, kSecretAccessKeyKey) come from
// bucket/bucket_controller.h (manual 5.3).
// A problem may clear without an event this controller watches (a CRD installed on the
// source cluster, a Secret fixed): look again after this long.
constexpr std::chrono::seconds kProblemRecheck{30};

const kube::GroupVersionResource kClustersGvr{"assets.astronetes.io", "v1alpha1", "kubernetesclusters"};
const kube::GroupVersionResource kBucketsGvr{"assets.astronetes.io", "v1alpha1", "buckets"};

kubesync::ObjectIdentity IdentityOf(const json& object) {
  const json& metadata = common::Member(object, "metadata");
  return {common::StringMember(metadata, "name"), common::StringMember(metadata, "namespace"), common::StringMember(metadata, "uid"),
          common::StringMember(metadata, "resourceVersion")};
}

runtime::Condition ReadyCondition(ConditionStatus status, std::string reason, std::string message) {
  runtime::Condition condition;
  condition.type = std::string(runtime::kReadyCondition);
  condition.status = status;
  condition.reason = std::move(reason);
  condition.message = std::move(message);
  return condition;
}

std::string WaitingFor(const std::vector<runner::ComponentStatus>& components) {
  std::string text;
  for (const auto& c : components) {
    if (c.ready) continue;
    if (!text.empty()) text += "; ";
    text += c.name + " " + std::to_string(c.ready_replicas) + "/" + std::to_string(c.replicas) + " ready";
    if (!c.message.empty()) text += " (" + c.message + ")";
  }
  return text;
}

std::string DefaultKubesyncBinary() {
  std::error_code error;
  const fs::path self = fs::read_symlink("/proc/self/exe", error);
  return error ? std::string("kubesync") : (self.parent_path() / "kubesync").string();
}

std::string DefaultRuntimeDir() {
  const char* tmp = std::getenv("TMPDIR");
  const fs::path base = tmp != nullptr && *tmp != '\0' ? fs::path(tmp) : fs::path("/tmp");
  return (base / "resiliency-operator" / "livesynchronization").string();
}

class LiveSyncReconciler final : public runtime::Reconciler {
 public:
  LiveSyncReconciler(runtime::Manager& manager, const LiveSynchronizationOptions& options,
                     std::unique_ptr<runner::ComponentRunner> component_runner)
      : live_syncs_(manager.cache().Get(LiveSynchronizationType().gvr).store()),
        clusters_(manager.cache().Get(kClustersGvr).store()),
        buckets_(manager.cache().Get(kBucketsGvr).store()),
        client_(manager.client()),
        recorder_(manager.recorder()),
        clock_(manager.clock()),
        options_(options),
        runner_(std::move(component_runner)),
        tasks_(manager.client(), manager.cache().Get(livesync::TaskType().gvr).store()),
        source_resources_(livesync::SourceResourceOptions{options.discovery_timeout}, manager.clock()),
        stats_(StatsRedisOptions()),
        credentials_(manager.client(), manager.clock()),
        log_(json{{"controller", kController}}),
        started_(manager.clock().Now()) {}

  runtime::Result Reconcile(const runtime::Request& request, std::stop_token /*stop*/) override {
    const kube::ObjectKey key = request.key;
    const kube::ObjectPtr cached = live_syncs_.Get(request.ToString());
    if (!cached) {
      // Gone without our finalizer having run (it was removed by hand): stop what runs.
      runner_->Teardown(key, SecurityFor(key));
      Forget(key);
      return {};
    }
    const json& live_sync = *cached;
    if (common::Member(live_sync.at("metadata"), "deletionTimestamp").is_string()) return Finalize(live_sync);
    switch (runtime::EnsureFinalizer(client_, Gvr(), live_sync, kLiveSynchronizationFinalizer)) {
      case runtime::WriteOutcome::kUnchanged: break;
      case runtime::WriteOutcome::kWritten:
      case runtime::WriteOutcome::kConflict: return runtime::Result::Requeue();  // read the new object
    }

    std::optional<pk::LiveSyncConfig> config;
    std::optional<livesync::Problem> problem = livesync::CheckPlugin(live_sync);
    if (!problem) {
      try {
        config = pk::ParseLiveSyncConfig(common::Member(live_sync.at("spec"), "config"));
      } catch (const pk::ConfigError& e) {
        problem = livesync::ConfigProblem(e);
      }
    }
    if (!problem) problem = livesync::FindConflict(live_sync, live_syncs_.ListByNamespace(key.ns));
    runner::PipelineInputs inputs;
    if (!problem) problem = ResolveInputs(live_sync, *config, &inputs);
    if (!problem) problem = source_resources_.Check(key, inputs.source_kubeconfig, *config);
    if (!problem && options_.pipeline_security) {
      try {
        inputs.credentials = credentials_.Ensure(live_sync);
        std::lock_guard lock(security_mu_);
        security_[key] =
            kubesync::ControllerSecurity(*inputs.credentials, runner::NatsServerName(key), runner::RedisServerName(key));
      } catch (const livesync::CredentialsConflict& e) {
        problem = livesync::Problem{livesync::kReasonComponentsFailed, e.what()};
      }
    }
    if (problem) return ReportProblem(live_sync, *problem, config);

    const runner::PipelinePlan plan = runner::PlanPipeline(std::move(inputs), *config);
    std::vector<runner::ComponentStatus> components;
    try {
      components = runner_->Apply(plan);
    } catch (const runner::RunnerError& e) {
      return ReportProblem(live_sync, {livesync::kReasonComponentsFailed, e.what()}, config);
    }

    std::string task_conflict;
    const std::optional<std::string> task =
        EnsureRecoveryTask(live_sync, *config, plan.inputs.destination_kubeconfig, &task_conflict);
    if (!task_conflict.empty()) {
      recorder_.Event(live_sync, kube::EventType::kWarning, "TaskNotControlled", task_conflict);
      log_.Warn("recovery Task not written", {{"object", runtime::ObjectRef(live_sync)}, {"reason", task_conflict}});
    }

    const bool suspended = plan.inputs.suspended;
    const bool ready = runner::AllReady(components);
    runtime::Condition condition;
    std::string phase;
    if (suspended) {
      condition = ReadyCondition(ConditionStatus::kFalse, livesync::kReasonSuspended,
                                 "spec.suspend is true: the pipeline components are stopped; NATS and Redis keep "
                                 "their state and replication resumes where it stopped");
      phase = livesync::kPhaseSuspended;
    } else if (ready) {
      condition = ReadyCondition(ConditionStatus::kTrue, livesync::kReasonRunning,
                                 "Replicating " + std::to_string(config->DistinctGvrs().size()) +
                                     " resources from KubernetesCluster " + config->source_name +
                                     " to KubernetesCluster " + config->destination_name + " (" +
                                     std::string(runner_->name()) + " runner)");
      phase = livesync::kPhaseRunning;
    } else {
      condition = ReadyCondition(ConditionStatus::kFalse, livesync::kReasonComponentsNotReady,
                                 "Waiting for: " + WaitingFor(components));
      phase = livesync::kPhasePending;
    }
    livesync::StatusInputs status;
    status.ready = std::move(condition);
    status.phase = phase;
    status.components = std::move(components);
    status.gvrs = config->DistinctGvrs();
    status.stats = ReadStats(key);
    status.failure_window = std::max(std::chrono::seconds{60}, std::chrono::duration_cast<std::chrono::seconds>(
                                                                   config->replication.resync_period));
    status.task_name = task;
    status.destination_name = config->destination_name;
    status.force_namespace_creation = config->replication.force_namespace_creation;
    if (!WriteStatus(live_sync, std::move(status))) return runtime::Result::Requeue();

    std::chrono::milliseconds next = options_.status_refresh_interval;
    if (!suspended && !ready && runner_->StartupPollInterval().count() > 0) {
      next = std::min(next, runner_->StartupPollInterval());
    }
    return runtime::Result::RequeueAfter(next);
  }

 private:
  static const kube::GroupVersionResource& Gvr() {
    static const kube::GroupVersionResource gvr = LiveSynchronizationType().gvr;
    return gvr;
  }

  static kubesync::RedisOptions StatsRedisOptions() {
    kubesync::RedisOptions options;
    // A status refresh must not hold a worker: Redis is local to the pipeline and
    // answers in microseconds when it is up.
    options.connect_timeout = std::chrono::milliseconds{500};
    options.command_timeout = std::chrono::milliseconds{1000};
    return options;
  }

  void Forget(const kube::ObjectKey& key) {
    source_resources_.Forget(key);
    stats_.Forget(key);
    {
      std::lock_guard lock(security_mu_);
      security_.erase(key);
    }
    {
      std::lock_guard lock(identity_mu_);
      destinations_.erase(key);
    }
    std::lock_guard lock(failures_mu_);
    seen_failures_.erase(key);
  }

  std::optional<kubesync::StatsSnapshot> ReadStats(const kube::ObjectKey& key) {
    const std::optional<runner::Endpoints> endpoints = runner_->ControllerEndpoints(key);
    if (!endpoints) return std::nullopt;
    kubesync::ClientSecurity security;
    {
      std::lock_guard lock(security_mu_);
      if (const auto found = security_.find(key); found != security_.end()) security = found->second;
    }
    return stats_.Read(key, endpoints->redis_addr, security);
  }

  // The controller's credentials for the pipeline of `key` (clean-up after a restart
  // included): remembered from the last reconcile, else read from the Secret; off when
  // there are none.
  kubesync::ClientSecurity SecurityFor(const kube::ObjectKey& key) {
    {
      std::lock_guard lock(security_mu_);
      if (const auto found = security_.find(key); found != security_.end()) return found->second;
    }
    try {
      if (const std::optional<kubesync::PipelineCredentials> stored = credentials_.Get(key)) {
        return kubesync::ControllerSecurity(*stored, runner::NatsServerName(key), runner::RedisServerName(key));
      }
    } catch (const std::exception& e) {
      log_.Info("pipeline credentials not readable; cleaning up without them",
                {{"liveSynchronization", key.ToString()}, {"error", e.what()}});
    }
    return {};
  }

  // The kubeconfig of a KubernetesCluster from its Secret, or a ClusterNotReady problem.
  std::optional<livesync::Problem> ReadKubeconfig(const json& cluster, const char* field, std::string* out) {
    const std::string where =
        std::string("spec.config.") + field + ": KubernetesCluster " + common::Name(cluster) + ": ";
    try {
      *out = runtime::ResolveClusterKubeconfig(cluster, [this](const std::string& ns, const std::string& name) {
               return runtime::GetSecret(client_, ns, name);
             }).text;
    } catch (const runtime::KubeconfigReferenceError& e) {
      return livesync::Problem{livesync::kReasonClusterNotReady, where + e.what()};
    }
    return std::nullopt;
  }

  // Everything the pipeline needs from the assets and their Secrets.
  std::optional<livesync::Problem> ResolveInputs(const json& live_sync, const pk::LiveSyncConfig& config,
                                                 runner::PipelineInputs* inputs) {
    const std::string ns = common::StringMember(live_sync.at("metadata"), "namespace");
    const auto lookup = [](const kube::Store& store, const std::string& ns_) {
      return [&store, ns_](const std::string& name) { return store.Get(ns_ + "/" + name); };
    };
    const livesync::ReferenceCheck check =
        livesync::CheckReferences(config, lookup(clusters_, ns), lookup(buckets_, ns));
    if (check.problem) return check.problem;
    const livesync::References& refs = check.references;

    inputs->live_synchronization = IdentityOf(live_sync);
    inputs->generation = common::Generation(live_sync);
    inputs->spec_config = std::make_shared<const json>(common::Member(live_sync.at("spec"), "config"));
    inputs->suspended = common::Member(live_sync.at("spec"), "suspend").is_boolean() &&
                        live_sync.at("spec").at("suspend").get<bool>();
    inputs->source_cluster = IdentityOf(*refs.source_cluster);
    inputs->destination_cluster = IdentityOf(*refs.destination_cluster);
    if (auto p = ReadKubeconfig(*refs.source_cluster, "sourceName", &inputs->source_kubeconfig)) return p;
    if (auto p = ReadKubeconfig(*refs.destination_cluster, "destinationName", &inputs->destination_kubeconfig)) {
      return p;
    }
    if (refs.bucket) {
      const std::string where = "spec.config.bucketName: Bucket " + *config.bucket_name + ": ";
      std::string secret_name;
      runner::BucketInputs bucket;
      try {
        bucket = livesync::BucketInputsFrom(*refs.bucket, &secret_name);
      } catch (const std::invalid_argument& e) {
        return livesync::Problem{livesync::kReasonBucketNotReady, where + e.what()};
      }
      const std::optional<json> secret = runtime::GetSecret(client_, ns, secret_name);
      if (!secret) {
        return livesync::Problem{livesync::kReasonBucketNotReady, where + "Secret " + secret_name + " does not exist"};
      }
      try {
        const std::optional<std::string> id = runtime::SecretValue(*secret, kAccessKeyIdKey);
        const std::optional<std::string> key = runtime::SecretValue(*secret, kSecretAccessKeyKey);
        if (!id || !key) {
          return livesync::Problem{livesync::kReasonBucketNotReady, where + "Secret " + secret_name + " lacks " +
                                                                        (id ? kSecretAccessKeyKey : kAccessKeyIdKey)};
        }
        bucket.access_key_id = *id;
        bucket.secret_access_key = *key;
      } catch (const std::invalid_argument& e) {
        return livesync::Problem{livesync::kReasonBucketNotReady, where + "Secret " + secret_name + ": " + e.what()};
      }
      // The originals' encryption: the Bucket's spec.encryption and key Secret, the same
      // ones every reader (recovery, TaskRuns) uses.
      try {
        const plugins::BucketEncryptionSpec encryption =
            plugins::BucketEncryptionFromSpec(common::Member(*refs.bucket, "spec"));
        bucket.server_side_encryption = encryption.sse_algorithm;
        bucket.sse_kms_key_id = encryption.sse_kms_key_id;
        const std::optional<BucketEncryptionKeys> keys = ReadBucketEncryptionKeys(
            *refs.bucket, [this](const std::string& secret_ns, const std::string& key_secret) {
              return runtime::GetSecret(client_, secret_ns, key_secret);
            });
        if (keys) {
          bucket.encryption_key_name = keys->key_name;
          bucket.encryption_keys = keys->values;
        }
      } catch (const plugins::BucketEncryptionError& e) {
        return livesync::Problem{livesync::kReasonBucketNotReady, where + e.what()};
      } catch (const plugins::S3ConfigError& e) {
        return livesync::Problem{livesync::kReasonBucketNotReady, where + e.what()};
      }
      inputs->bucket = std::move(bucket);
    }
    return std::nullopt;
  }

  // Ready=False with `problem`: the pipeline components stop (what is replicated stays,
  // and so does the recovery Task that can still restore it).
  runtime::Result ReportProblem(const json& live_sync, const livesync::Problem& problem,
                                const std::optional<pk::LiveSyncConfig>& config) {
    const kube::ObjectKey key{common::StringMember(live_sync.at("metadata"), "namespace"),
                              common::StringMember(live_sync.at("metadata"), "name")};
    livesync::StatusInputs status;
    status.ready = ReadyCondition(ConditionStatus::kFalse, problem.reason, problem.message);
    status.phase = livesync::kPhaseFailed;
    status.components = runner_->StopPipeline(key);
    if (config) status.gvrs = config->DistinctGvrs();
    status.stats = ReadStats(key);
    if (const kube::ObjectPtr task = tasks_.Existing(live_sync)) status.task_name = key.name;
    if (!WriteStatus(live_sync, std::move(status))) return runtime::Result::Requeue();
    return runtime::Result::RequeueAfter(kProblemRecheck);
  }

  // Writes the status when it changed; on a change of the Ready condition records an
  // Event (Normal when True, Suspended or starting; Warning for a problem) and logs it. Returns false
  // on a Conflict (the caller requeues).
  bool WriteStatus(const json& live_sync, livesync::StatusInputs inputs) {
    const json previous = common::Member(live_sync, "status");
    inputs.generation = common::Generation(live_sync);
    inputs.now = clock_.Now();
    if (inputs.stats) ReportFailures(live_sync, *inputs.stats);
    const runtime::Condition condition = inputs.ready;
    const std::optional<runtime::Condition> before =
        runtime::FindStatusCondition(common::Member(previous, "conditions"), runtime::kReadyCondition);
    const json desired = livesync::BuildStatus(previous, inputs);
    const runtime::WriteOutcome outcome = runtime::UpdateStatusIfChanged(client_, Gvr(), live_sync, desired);
    if (outcome == runtime::WriteOutcome::kConflict) return false;
    if (outcome == runtime::WriteOutcome::kWritten) ReportNamespaces(live_sync, previous, desired);
    const bool changed = !before || before->status != condition.status || before->reason != condition.reason ||
                         before->message != condition.message;
    if (outcome == runtime::WriteOutcome::kWritten && changed) {
      // Running, Suspended (the user's choice) and ComponentsNotReady (starting) are
      // normal; every problem is a Warning.
      const bool normal = condition.status == ConditionStatus::kTrue ||
                          condition.reason == livesync::kReasonSuspended ||
                          condition.reason == livesync::kReasonComponentsNotReady;
      recorder_.Event(live_sync, normal ? kube::EventType::kNormal : kube::EventType::kWarning, condition.reason,
                      condition.message);
      const json fields = {{"object", runtime::ObjectRef(live_sync)},
                           {"condition",
                            {{"type", condition.type},
                             {"status", std::string(runtime::ToString(condition.status))},
                             {"reason", condition.reason},
                             {"message", condition.message}}}};
      if (normal) {
        log_.Info("condition changed", fields);
      } else {
        log_.Warn("condition changed", fields);
      }
    }
    return true;
  }

  // DestinationNamespacesMissing written with another status or list of namespaces than
  // before: a Warning Event (and log line) naming them, or a Normal one once none is
  // missing any more.
  void ReportNamespaces(const json& live_sync, const json& previous, const json& desired) {
    const std::optional<runtime::Condition> before =
        runtime::FindStatusCondition(common::Member(previous, "conditions"), livesync::kNamespacesMissingCondition);
    const std::optional<runtime::Condition> after =
        runtime::FindStatusCondition(common::Member(desired, "conditions"), livesync::kNamespacesMissingCondition);
    if (!after || (before && before->status == after->status && before->message == after->message)) return;
    const bool missing = after->status == ConditionStatus::kTrue;
    if (!missing && !before) return;  // nothing was ever missing
    recorder_.Event(live_sync, missing ? kube::EventType::kWarning : kube::EventType::kNormal, after->reason,
                    after->message);
    const json fields = {{"object", runtime::ObjectRef(live_sync)},
                         {"condition",
                          {{"type", after->type},
                           {"status", std::string(runtime::ToString(after->status))},
                           {"reason", after->reason},
                           {"message", after->message}}}};
    if (missing) {
      log_.Warn("condition changed", fields);
    } else {
      log_.Info("condition changed", fields);
    }
  }

  // A Warning Event (ReplicationFailed) per (component, resource, reason) whose
  // permanent failures grew since the previous status refresh, and a log line.
  void ReportFailures(const json& live_sync, const kubesync::StatsSnapshot& stats) {
    const kube::ObjectKey key{common::StringMember(live_sync.at("metadata"), "namespace"),
                              common::StringMember(live_sync.at("metadata"), "name")};
    std::vector<livesync::FailureReport> reports;
    {
      std::lock_guard lock(failures_mu_);
      reports = livesync::NewFailures(seen_failures_[key], stats, started_);
    }
    for (const livesync::FailureReport& report : reports) {
      recorder_.Event(live_sync, kube::EventType::kWarning, livesync::kReasonReplicationFailed, report.message);
      log_.Warn("events failed for good", {{"object", runtime::ObjectRef(live_sync)},
                                           {"component", report.key.component},
                                           {"resource", report.key.gvr},
                                           {"reason", report.key.reason},
                                           {"count", report.count},
                                           {"message", report.message}});
    }
  }

  // The destination cluster of LiveSynchronization `key` behind `kubeconfig`: a client
  // (failing fast: the next reconcile retries) and whether it is the cluster this
  // controller runs in (kube-system uids compared). Both are kept per LiveSynchronization
  // while its kubeconfig is unchanged, so a known destination costs no request and no
  // new connection; Forget drops them. Throws kube::ApiError / TransportError /
  // ConfigError when the destination must be asked and cannot be.
  std::shared_ptr<kube::DynamicClient> Destination(const kube::ObjectKey& key, const std::string& kubeconfig,
                                                   bool* here) {
    std::string local;
    DestinationEntry entry;
    {
      std::lock_guard lock(identity_mu_);
      local = local_identity_;
      if (auto it = destinations_.find(key); it != destinations_.end() && it->second.kubeconfig == kubeconfig) {
        entry = it->second;
      }
    }
    if (!entry.client) {
      kube::RestConfig rest = kube::LoadKubeconfig(kubeconfig, "", "", kube::KubeconfigOrigin::kSecret);
      rest.timeout = options_.discovery_timeout;
      rest.max_retries = 0;
      entry.kubeconfig = kubeconfig;
      entry.client = std::make_shared<kube::DynamicClient>(std::move(rest));
    }
    if (local.empty()) local = livesync::ClusterIdentity(client_);
    if (entry.identity.empty()) entry.identity = livesync::ClusterIdentity(*entry.client);
    std::lock_guard lock(identity_mu_);
    local_identity_ = local;
    destinations_[key] = entry;
    *here = local == entry.identity;
    return entry.client;
  }

  // The recovery Task: in this cluster (2-cluster architecture) or, when the destination
  // is another cluster, there (3-cluster architecture, recovery_task_sync.h). When the
  // destination cannot be reached to tell, the Task is left as it is until the next
  // reconcile (replication does not depend on it).
  std::optional<std::string> EnsureRecoveryTask(const json& live_sync, const pk::LiveSyncConfig& config,
                                                const std::string& destination_kubeconfig, std::string* conflict) {
    const kube::ObjectKey key{common::StringMember(live_sync.at("metadata"), "namespace"),
                              common::StringMember(live_sync.at("metadata"), "name")};
    bool here = true;
    try {
      const std::shared_ptr<kube::DynamicClient> destination = Destination(key, destination_kubeconfig, &here);
      if (!here) return livesync::RemoteRecoveryTaskSync::Ensure(*destination, live_sync, config, conflict);
    } catch (const std::exception& e) {
      log_.Warn("recovery Task not checked: the destination cluster could not be asked",
                {{"object", runtime::ObjectRef(live_sync)}, {"error", e.what()}});
      if (!here) return std::nullopt;
      if (const kube::ObjectPtr existing = tasks_.Existing(live_sync)) {
        return common::StringMember(live_sync.at("metadata"), "name");
      }
      return std::nullopt;
    }
    return tasks_.Ensure(live_sync, config, conflict);
  }

  // Deletes the Task the LiveSynchronization has in its destination cluster when that
  // is another cluster. Best effort: an unreachable destination keeps its Task (it can
  // still recover; delete it by hand), and the LiveSynchronization is not held back.
  void DeleteRemoteRecoveryTask(const json& live_sync) {
    const std::optional<pk::LiveSyncConfig> config = [&]() -> std::optional<pk::LiveSyncConfig> {
      try {
        return pk::ParseLiveSyncConfig(common::Member(live_sync.at("spec"), "config"));
      } catch (const pk::ConfigError&) {
        return std::nullopt;
      }
    }();
    if (!config) return;
    runner::PipelineInputs inputs;
    if (ResolveInputs(live_sync, *config, &inputs)) return;  // the destination cannot be resolved
    try {
      const kube::ObjectKey key{common::StringMember(live_sync.at("metadata"), "namespace"),
                                common::StringMember(live_sync.at("metadata"), "name")};
      bool here = true;
      const std::shared_ptr<kube::DynamicClient> destination = Destination(key, inputs.destination_kubeconfig, &here);
      if (!here) livesync::RemoteRecoveryTaskSync::Delete(*destination, live_sync);
    } catch (const std::exception& e) {
      log_.Warn("recovery Task in the destination cluster not deleted",
                {{"object", runtime::ObjectRef(live_sync)}, {"error", e.what()}});
    }
  }

  // The finalizer: the pipeline goes (its state with it), the Task goes, destination
  // objects stay.
  runtime::Result Finalize(const json& live_sync) {
    if (!runtime::HasFinalizer(live_sync, kLiveSynchronizationFinalizer)) return {};
    const kube::ObjectKey key{common::StringMember(live_sync.at("metadata"), "namespace"),
                              common::StringMember(live_sync.at("metadata"), "name")};
    runner_->Teardown(key, SecurityFor(key));
    tasks_.Delete(live_sync);
    DeleteRemoteRecoveryTask(live_sync);
    Forget(key);
    if (runtime::DropFinalizer(client_, Gvr(), live_sync, kLiveSynchronizationFinalizer) ==
        runtime::WriteOutcome::kConflict) {
      return runtime::Result::Requeue();
    }
    log_.Info("pipeline removed; destination objects are kept", {{"object", runtime::ObjectRef(live_sync)}});
    return {};
  }

  // Constant after construction.
  const kube::Store& live_syncs_;
  const kube::Store& clusters_;
  const kube::Store& buckets_;
  kube::DynamicClient& client_;
  kube::EventRecorder& recorder_;
  kube::Clock& clock_;
  const LiveSynchronizationOptions options_;
  const std::unique_ptr<runner::ComponentRunner> runner_;
  livesync::RecoveryTaskSync tasks_;
  // Destination clusters (Destination()): this cluster's identity, and per
  // LiveSynchronization its destination's kubeconfig, client and identity.
  struct DestinationEntry {
    std::string kubeconfig;
    std::shared_ptr<kube::DynamicClient> client;
    std::string identity;  // empty until asked
  };
  std::mutex identity_mu_;
  std::string local_identity_;                                  // guarded by identity_mu_
  std::map<kube::ObjectKey, DestinationEntry> destinations_;    // guarded by identity_mu_
  livesync::SourceResourceChecker source_resources_;
  livesync::PipelineStatsReader stats_;
  livesync::PipelineCredentialStore credentials_;
  std::mutex security_mu_;
  // The controller's credentials per pipeline, from the last reconcile.
  std::map<kube::ObjectKey, kubesync::ClientSecurity> security_;  // guarded by security_mu_
  const log::Logger log_;
  // Failures from before this time were reported by a previous controller process.
  const kube::Clock::WallTime started_;

  std::mutex failures_mu_;
  // Permanent failure counts already reported, per LiveSynchronization.
  std::map<kube::ObjectKey, std::map<kubesync::StatsSnapshot::ErrorKey, std::uint64_t>>
      seen_failures_;  // guarded by failures_mu_
};

// The LiveSynchronizations of `object`'s namespace whose spec.config field `key` (or
// one of `keys`) names `object`.
runtime::MapFunc MapAssetToLiveSyncs(const kube::Store& live_syncs, std::vector<std::string> keys) {
  return [&live_syncs, keys = std::move(keys)](const json& object) {
    const std::string ns = common::StringMember(common::Member(object, "metadata"), "namespace");
    const std::string name = common::StringMember(common::Member(object, "metadata"), "name");
    std::vector<runtime::Request> requests;
    for (const kube::ObjectPtr& live_sync : live_syncs.ListByNamespace(ns)) {
      const json& config = common::Member(common::Member(*live_sync, "spec"), "config");
      for (const std::string& key : keys) {
        if (common::StringMember(config, key.c_str()) == name) {
          requests.push_back({kube::ObjectKey{ns, common::StringMember(live_sync->at("metadata"), "name")}});
          break;
        }
      }
    }
    return requests;
  };
}

// Every other LiveSynchronization of the namespace: one appearing, changing or going
// may start or end a conflict (livesync::FindConflict).
runtime::MapFunc MapToSiblings(const kube::Store& live_syncs) {
  return [&live_syncs](const json& object) {
    const std::string ns = common::StringMember(common::Member(object, "metadata"), "namespace");
    const std::string name = common::StringMember(common::Member(object, "metadata"), "name");
    std::vector<runtime::Request> requests;
    for (const kube::ObjectPtr& sibling : live_syncs.ListByNamespace(ns)) {
      const std::string other = common::StringMember(sibling->at("metadata"), "name");
      if (other != name) requests.push_back({kube::ObjectKey{ns, other}});
    }
    return requests;
  };
}

}  // namespace

runtime::ObjectType LiveSynchronizationType() {
  return {kube::GroupVersionResource{"automation.astronetes.io", "v1alpha1", "livesynchronizations"},
          "LiveSynchronization"};
}

void AddLiveSynchronizationFlags(runtime::FlagSet& flags, LiveSynchronizationOptions* options) {
  flags.AddString("--component-runner", &options->component_runner,
                  "How pipeline components run: deployments (Kubernetes objects) or local (processes on this host)");
  flags.AddString("--kubesync-image", &options->deployments.kubesync_image,
                  "Image of the kubesync components (deployments runner)");
  flags.AddString("--nats-image", &options->deployments.nats_image, "Image of NATS (deployments runner)");
  flags.AddString("--redis-image", &options->deployments.redis_image, "Image of Redis (deployments runner)");
  flags.AddString("--kubesync-binary", &options->kubesync_binary,
                  "kubesync binary of the local runner (default: next to this binary)");
  flags.AddString("--nats-server-binary", &options->nats_server_binary, "nats-server of the local runner");
  flags.AddString("--redis-server-binary", &options->redis_server_binary, "redis-server of the local runner");
  flags.AddString("--runtime-dir", &options->runtime_dir,
                  "Directory of the local runner's files (default: $TMPDIR/resiliency-operator/livesynchronization)");
  flags.AddDuration("--status-refresh-interval", &options->status_refresh_interval,
                    "How often status (statistics, components) is refreshed");
  flags.AddDuration("--discovery-timeout", &options->discovery_timeout,
                    "Per-request timeout of API discovery on source clusters");
  flags.AddBool("--pipeline-security", &options->pipeline_security,
                "Per-pipeline NATS/Redis credentials, TLS and JetStream encryption at rest (default true; "
                "false is insecure, see docs/security.md)");
}

std::unique_ptr<runner::ComponentRunner> MakeComponentRunner(const LiveSynchronizationOptions& options,
                                                            kube::DynamicClient& client) {
  if (options.component_runner == "deployments") {
    runner::DeploymentsRunnerOptions deployments = options.deployments;
    // The operator's namespace (downward API in deploy/operator), for the NetworkPolicy.
    if (const char* ns = std::getenv("POD_NAMESPACE"); ns != nullptr && *ns != '\0') {
      deployments.operator_namespace = ns;
    }
    return std::make_unique<runner::DeploymentsRunner>(client, std::move(deployments));
  }
  if (options.component_runner == "local") {
    runner::LocalRunnerOptions local;
    local.kubesync_binary = options.kubesync_binary.empty() ? DefaultKubesyncBinary() : options.kubesync_binary;
    local.nats_server_binary = options.nats_server_binary;
    local.redis_server_binary = options.redis_server_binary;
    local.runtime_dir = options.runtime_dir.empty() ? DefaultRuntimeDir() : options.runtime_dir;
    return std::make_unique<runner::LocalRunner>(std::move(local));
  }
  throw std::invalid_argument("--component-runner: \"" + options.component_runner +
                              "\" is not one of deployments, local");
}

void SetupLiveSynchronizationController(runtime::Manager& manager, const LiveSynchronizationOptions& options) {
  if (options.status_refresh_interval.count() <= 0) {
    throw std::invalid_argument("--status-refresh-interval must be positive");
  }
  kubesync::OpenNatsLibrary();  // the finalizer deletes streams
  std::unique_ptr<runner::ComponentRunner> component_runner = MakeComponentRunner(options, manager.client());
  const bool deployments = component_runner->name() == "deployments";
  log::Logger(json{{"controller", kController}})
      .Info("component runner", {{"runner", std::string(component_runner->name())}});
  if (!options.pipeline_security) {
    log::Logger(json{{"controller", kController}})
        .Warn("pipeline security is off (--pipeline-security=false): every pipeline's NATS and Redis accept "
              "clients without credentials or TLS and JetStream stores replicated objects unencrypted");
  }

  const runtime::ObjectType type = LiveSynchronizationType();
  const kube::Store& live_syncs = manager.cache().Get(type.gvr).store();
  runtime::Controller& controller =
      manager.NewController(kController, std::make_unique<LiveSyncReconciler>(manager, options,
                                                                              std::move(component_runner)));
  controller.For(type, runtime::OnGenerationChange())
      .Watches(type.gvr, MapToSiblings(live_syncs), runtime::OnGenerationChange())
      .Watches(kClustersGvr, MapAssetToLiveSyncs(live_syncs, {"sourceName", "destinationName"}))
      .Watches(kBucketsGvr, MapAssetToLiveSyncs(live_syncs, {"bucketName"}))
      .Owns(livesync::TaskType());
  if (deployments) {
    controller.Owns(runtime::ObjectType{kube::GroupVersionResource{"apps", "v1", "deployments"}, "Deployment"})
        .Owns(runtime::ObjectType{runtime::SecretsGvr(), "Secret"}, runtime::MetadataOnly());
  }
}

}  // namespace ro::controllers

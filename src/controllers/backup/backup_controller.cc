#include "backup/backup_controller.h"

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "bucket/bucket_controller.h"
#include "kubernetescluster/kubernetescluster_controller.h"
#include "ro/common/log.h"
#include "ro/common/object_meta.h"
#include "ro/kube/client.h"
#include "ro/kube/informer.h"
#include "ro/plugins/backup/kubernetes_backup.h"
#include "ro/plugins/kubernetes/config_error.h"
#include "ro/plugins/s3_client.h"
#include "ro/runtime/informer_cache.h"
#include "ro/runtime/manager.h"
#include "taskrun/run_status.h"
#include "taskrun/run_target.h"

namespace ro::controllers {

using nlohmann::json;
using runtime::Request;
using runtime::Result;
namespace backup = plugins::backup;

namespace {

constexpr const char* kController = "backup";

// Bounds of ro_backup_duration_seconds: a few namespaces take a second, 10,000 objects
// tens of seconds, a whole cluster minutes.
const prometheus::Histogram::BucketBoundaries kDurationBuckets = {1, 5, 10, 30, 60, 300, 900, 3600};

class BackupMetrics {
 public:
  explicit BackupMetrics(prometheus::Registry& registry)
      : runs_(prometheus::BuildCounter()
                  .Name("ro_backup_runs_total")
                  .Help("Finished or retried Backup runs, by result (Succeeded or the failure reason)")
                  .Register(registry)),
        objects_(prometheus::BuildCounter()
                     .Name("ro_backup_objects_total")
                     .Help("Objects written to buckets by successful Backups")
                     .Register(registry)
                     .Add({})),
        bytes_(prometheus::BuildCounter()
                   .Name("ro_backup_bytes_total")
                   .Help("Bytes written to buckets by successful Backups")
                   .Register(registry)
                   .Add({})),
        duration_(prometheus::BuildHistogram()
                      .Name("ro_backup_duration_seconds")
                      .Help("Duration of successful Backups")
                      .Register(registry)
                      .Add({}, kDurationBuckets)) {}

  void Succeeded(const backup::BackupResult& result) {
    runs_.Add({{"result", "Succeeded"}}).Increment();
    objects_.Increment(static_cast<double>(result.entries.size()));
    bytes_.Increment(static_cast<double>(result.bytes));
    duration_.Observe(std::chrono::duration<double>(result.duration).count());
  }
  void Failed(const std::string& reason) { runs_.Add({{"result", reason}}).Increment(); }

 private:
  prometheus::Family<prometheus::Counter>& runs_;
  prometheus::Counter& objects_;
  prometheus::Counter& bytes_;
  prometheus::Histogram& duration_;
};

std::string RestartPolicyOf(const json& object) {
  const json spec = object.value("spec", json::object());
  return spec.is_object() ? spec.value("restartPolicy", "Never") : "Never";
}

std::string Joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

class BackupReconciler final : public runtime::Reconciler {
 public:
  BackupReconciler(runtime::ObjectType type, kube::DynamicClient& client, kube::EventRecorder& recorder,
                   const kube::Store& backups, const kube::Store& clusters, const kube::Store& buckets,
                   kube::Clock& clock, BackupOptions options, prometheus::Registry& registry)
      : type_(std::move(type)),
        backups_(backups),
        clusters_(clusters),
        clock_(clock),
        options_(options),
        log_(json{{"controller", kController}}),
        writer_(client, recorder, log_, clock),
        resolver_(client, clusters, buckets, options.cluster_timeout),
        metrics_(registry) {}

  Result Reconcile(const Request& request, std::stop_token stop) override {
    const kube::ObjectPtr object = backups_.Get(request.ToString());
    if (!object) return {};
    const json& backup_object = *object;
    if (common::Deleting(backup_object) || IsFinished(PhaseOf(backup_object))) return {};

    backup::KubernetesBackupConfig config;
    try {
      config = backup::ParseKubernetesBackup(backup_object);
    } catch (const plugins::kubernetes::ConfigError& e) {
      return Fail(backup_object, kReasonBackupInvalidConfig, e.what());
    }
    const std::string ns = common::MetadataString(backup_object, "namespace");
    plugins::tasks::AssetIdentity cluster_identity;
    plugins::tasks::AssetIdentity bucket_identity;
    std::unique_ptr<kube::DynamicClient> source;
    std::unique_ptr<plugins::S3Client> bucket;
    try {
      source = resolver_.ClusterClient(ns, config.cluster_name, "spec.config.source.kubernetesCluster.name",
                                       &cluster_identity);
      bucket = resolver_.BucketClient(ns, config.bucket_name, "spec.config.destination.bucket.name",
                                      &bucket_identity);
    } catch (const ReferenceError& e) {
      RunUpdate pending;
      pending.phase = RunPhase::kPending;
      pending.reason = e.reason();
      pending.message = e.what();
      return Write(backup_object, pending, Result::RequeueAfter(options_.pending_recheck));
    }

    const std::string what = Describe(config);
    RunUpdate running;
    running.phase = RunPhase::kRunning;
    running.message = "Backing up " + what;
    running.fields = {{"basePath", config.base_path}};
    const std::optional<json> started = writer_.Write(type_.gvr, backup_object, running);
    if (!started) return Result::Requeue();

    backup::BackupIdentity identity;
    identity.ns = ns;
    identity.name = common::MetadataString(*started, "name");
    identity.uid = common::MetadataString(*started, "uid");
    identity.cluster_name = config.cluster_name;
    if (const kube::ObjectPtr cluster = clusters_.Get(kube::ObjectKey{ns, config.cluster_name}.ToString())) {
      const json status = cluster->value("status", json::object());
      identity.cluster_server = status.is_object() ? status.value("server", "") : "";
      identity.cluster_server_version = status.is_object() ? status.value("serverVersion", "") : "";
    }
    identity.start = clock_.Now();
    plugins::S3Client* bucket_client = bucket.get();
    backup::KubernetesBackup run(
        config, *source,
        [bucket_client](const std::string& key, const std::string& body) {
          bucket_client->PutObject(key, body, "application/json");
        },
        log_.WithFields({{"backup", ns + "/" + identity.name}}));
    backup::BackupResult result;
    try {
      result = run.Run(identity, stop);
    } catch (const backup::BackupError& e) {
      metrics_.Failed(e.reason());
      if (RestartPolicyOf(*started) == "OnFailure") {
        RunUpdate retry;
        retry.phase = RunPhase::kRunning;
        retry.reason = kReasonBackupRetrying;
        retry.message = std::string(e.what()) + "; running again in " +
                        std::to_string(options_.retry_interval.count() / 1000) + " s (restartPolicy OnFailure)";
        return Write(*started, retry, Result::RequeueAfter(options_.retry_interval));
      }
      return Fail(*started, e.reason(), e.what());
    }
    if (stop.stop_requested()) return {};  // still Running: the next start runs it again

    RunUpdate done;
    done.phase = RunPhase::kSucceeded;
    done.message = "Backed up " + std::to_string(result.entries.size()) + " objects (" +
                   std::to_string(result.bytes) + " bytes) of " + what + " to " + config.base_path + "/ in " +
                   std::to_string(result.duration.count()) + " ms";
    done.counters = {{"objects", static_cast<int64_t>(result.entries.size())},
                     {"bytes", result.bytes},
                     {"durationMilliseconds", result.duration.count()}};
    done.fields = {{"basePath", config.base_path},
                   {"index", config.base_path + "/" + std::string(backup::kIndexKey)}};
    if (!writer_.Write(type_.gvr, *started, done)) return Result::Requeue();
    metrics_.Succeeded(result);
    return {};
  }

 private:
  static std::string Describe(const backup::KubernetesBackupConfig& config) {
    return (config.namespaces.empty() ? std::string("every namespace")
                                      : "namespaces " + Joined(config.namespaces)) +
           " of KubernetesCluster " + config.cluster_name + " to Bucket " + config.bucket_name;
  }

  Result Write(const json& object, const RunUpdate& update, Result then) {
    return writer_.Write(type_.gvr, object, update) ? then : Result::Requeue();
  }

  Result Fail(const json& object, std::string reason, std::string message) {
    RunUpdate update;
    update.phase = RunPhase::kFailed;
    update.reason = std::move(reason);
    update.message = std::move(message);
    return Write(object, update, Result{});
  }

  const runtime::ObjectType type_;
  const kube::Store& backups_;
  const kube::Store& clusters_;
  kube::Clock& clock_;
  const BackupOptions options_;
  const log::Logger log_;
  RunStatusWriter writer_;
  const TargetResolver resolver_;
  BackupMetrics metrics_;
};

// A KubernetesCluster or Bucket maps to the unfinished Backups of its namespace.
runtime::MapFunc MapToUnfinishedBackups(const kube::Store& backups) {
  return [&backups](const json& asset) {
    std::vector<Request> requests;
    const std::string ns = common::MetadataString(asset, "namespace");
    for (const kube::ObjectPtr& object : backups.ListByNamespace(ns)) {
      if (!IsFinished(PhaseOf(*object))) {
        requests.push_back(Request{kube::ObjectKey{ns, common::MetadataString(*object, "name")}});
      }
    }
    return requests;
  };
}

}  // namespace

runtime::ObjectType BackupType() {
  return {kube::GroupVersionResource{"automation.astronetes.io", "v1alpha1", "backups"}, "Backup"};
}

void SetupBackupController(runtime::Manager& manager, const BackupOptions& options) {
  const runtime::ObjectType type = BackupType();
  const kube::Store& backups = manager.cache().Get(type.gvr).store();
  const kube::Store& clusters = manager.cache().Get(KubernetesClusterType().gvr).store();
  const kube::Store& buckets = manager.cache().Get(BucketType().gvr).store();
  manager
      .NewController(kController, std::make_unique<BackupReconciler>(
                                      type, manager.client(), manager.recorder(), backups, clusters,
                                      buckets, manager.clock(), options, manager.registry()))
      .For(type, runtime::OnGenerationChange())
      .Watches(KubernetesClusterType().gvr, MapToUnfinishedBackups(backups), runtime::OnGenerationChange())
      .Watches(BucketType().gvr, MapToUnfinishedBackups(backups), runtime::OnGenerationChange());
}

}  // namespace ro::controllers

#include "backup/backup_controller.h"

#include <functional>
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
#include "database/database_controller.h"
#include "kubernetescluster/kubernetescluster_controller.h"
#include "ro/common/log.h"
#include "ro/common/object_meta.h"
#include "ro/kube/client.h"
#include "ro/kube/informer.h"
#include "ro/plugins/backup/kubernetes_backup.h"
#include "ro/plugins/backup/zookeeper_backup.h"
#include "ro/plugins/zookeeper/nodes_sync.h"
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
                   const kube::Store& databases, kube::Clock& clock, BackupOptions options, prometheus::Registry& registry)
      : type_(std::move(type)),
        backups_(backups),
        clusters_(clusters),
        clock_(clock),
        options_(options),
        log_(json{{"controller", kController}}),
        writer_(client, recorder, log_, clock),
        resolver_(client, clusters, buckets, options.cluster_timeout, /*run_qps=*/0, &databases),
        metrics_(registry) {}

  Result Reconcile(const Request& request, std::stop_token stop) override {
    const kube::ObjectPtr object = backups_.Get(request.ToString());
    if (!object) return {};
    const json& backup_object = *object;
    if (common::Deleting(backup_object) || IsFinished(PhaseOf(backup_object))) return {};

    const std::string ns = common::MetadataString(backup_object, "namespace");
    Prepared prepared;
    try {
      prepared = backup::BackupPluginOf(backup_object) == backup::kZooKeeperBackupPlugin
                     ? PrepareZooKeeper(backup_object, ns)
                     : PrepareKubernetes(backup_object, ns);
    } catch (const plugins::kubernetes::ConfigError& e) {
      return Fail(backup_object, kReasonBackupInvalidConfig, e.what());
    } catch (const ReferenceError& e) {
      RunUpdate pending;
      pending.phase = RunPhase::kPending;
      pending.reason = e.reason();
      pending.message = e.what();
      return Write(backup_object, pending, Result::RequeueAfter(options_.pending_recheck));
    }

    RunUpdate running;
    running.phase = RunPhase::kRunning;
    running.message = "Backing up " + prepared.what;
    running.fields = {{"basePath", prepared.base_path}};
    const std::optional<json> started = writer_.Write(type_.gvr, backup_object, running);
    if (!started) return Result::Requeue();

    backup::BackupIdentity identity;
    identity.ns = ns;
    identity.name = common::MetadataString(*started, "name");
    identity.uid = common::MetadataString(*started, "uid");
    identity.start = clock_.Now();
    backup::BackupResult result;
    try {
      result = prepared.run(identity, log_.WithFields({{"backup", ns + "/" + identity.name}}), stop);
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
    done.message = "Backed up " + std::to_string(result.entries.size()) + " " + prepared.unit + " (" +
                   std::to_string(result.bytes) + " bytes) of " + prepared.what + " to " + prepared.base_path +
                   "/ in " + std::to_string(result.duration.count()) + " ms";
    done.counters = {{"objects", static_cast<int64_t>(result.entries.size())},
                     {"bytes", result.bytes},
                     {"durationMilliseconds", result.duration.count()}};
    done.fields = {{"basePath", prepared.base_path},
                   {"index", prepared.base_path + "/" + std::string(backup::kIndexKey)}};
    if (!writer_.Write(type_.gvr, *started, done)) return Result::Requeue();
    metrics_.Succeeded(result);
    return {};
  }

 private:
  // A Backup whose configuration and references resolved: what to say, and the run.
  struct Prepared {
    std::string what;       // "namespaces shop of KubernetesCluster c to Bucket b"
    std::string unit;       // "objects" or "znodes"
    std::string base_path;
    // Fills the identity's source fields, runs the plugin. Throws BackupError.
    std::function<backup::BackupResult(backup::BackupIdentity&, log::Logger, std::stop_token)> run;
  };

  // kubernetes-objects-to-bucket. Throws ConfigError, ReferenceError.
  Prepared PrepareKubernetes(const json& backup_object, const std::string& ns) const {
    const backup::KubernetesBackupConfig config = backup::ParseKubernetesBackup(backup_object);
    plugins::tasks::AssetIdentity cluster_identity;
    plugins::tasks::AssetIdentity bucket_identity;
    std::shared_ptr<kube::DynamicClient> source =
        resolver_.ClusterClient(ns, config.cluster_name, "spec.config.source.kubernetesCluster.name", &cluster_identity);
    std::shared_ptr<plugins::S3Client> bucket =
        resolver_.BucketClient(ns, config.bucket_name, "spec.config.destination.bucket.name", &bucket_identity);
    Prepared out;
    out.what = (config.namespaces.empty() ? std::string("every namespace")
                                          : "namespaces " + Joined(config.namespaces)) +
               " of KubernetesCluster " + config.cluster_name + " to Bucket " + config.bucket_name;
    out.unit = "objects";
    out.base_path = config.base_path;
    out.run = [this, config, ns, source, bucket](backup::BackupIdentity& identity, log::Logger log,
                                                  std::stop_token stop) {
      identity.cluster_name = config.cluster_name;
      if (const kube::ObjectPtr cluster = clusters_.Get(kube::ObjectKey{ns, config.cluster_name}.ToString())) {
        const json status = cluster->value("status", json::object());
        identity.cluster_server = status.is_object() ? status.value("server", "") : "";
        identity.cluster_server_version = status.is_object() ? status.value("serverVersion", "") : "";
      }
      return backup::KubernetesBackup(config, *source, Writer(bucket), std::move(log)).Run(identity, stop);
    };
    return out;
  }

  // zookeeper-nodes-to-bucket. Throws ConfigError, ReferenceError.
  Prepared PrepareZooKeeper(const json& backup_object, const std::string& ns) const {
    const backup::ZooKeeperBackupConfig config = backup::ParseZooKeeperBackup(backup_object);
    const sync::DatabaseTarget database =
        resolver_.Database(ns, config.database_name, "spec.config.source.database.name");
    plugins::tasks::AssetIdentity bucket_identity;
    std::shared_ptr<plugins::S3Client> bucket =
        resolver_.BucketClient(ns, config.bucket_name, "spec.config.destination.bucket.name", &bucket_identity);
    Prepared out;
    out.what = config.root_path + " of Database " + config.database_name + " to Bucket " + config.bucket_name;
    out.unit = "znodes";
    out.base_path = config.base_path;
    out.run = [this, config, database, bucket](backup::BackupIdentity& identity, log::Logger log,
                                               std::stop_token stop) {
      identity.database_name = database.name;
      identity.database_servers = database.servers;
      identity.root_path = config.root_path;
      plugins::ZooKeeperOptions options;
      options.servers = database.servers;
      options.digest = database.digest;
      options.connect_timeout = options_.cluster_timeout;
      options.read_sessions = plugins::zookeeper::kReadSessions;
      std::unique_ptr<plugins::ZooKeeperClient> client;
      try {
        client = std::make_unique<plugins::ZooKeeperClient>(options);
      } catch (const plugins::ZooKeeperError& e) {
        const bool auth = e.code() == plugins::ZooKeeperError::Code::kAuthFailed;
        throw backup::BackupError(auth ? "SourceForbidden" : "SourceUnavailable",
                                  "connecting to Database " + database.name + ": " + e.what(), !auth);
      }
      return backup::ZooKeeperBackup(config, *client, Writer(bucket), std::move(log)).Run(identity, stop);
    };
    return out;
  }

  static backup::ObjectWriter Writer(std::shared_ptr<plugins::S3Client> bucket) {
    return [bucket = std::move(bucket)](const std::string& key, const std::string& body) {
      bucket->PutObject(key, body, "application/json");
    };
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
  const kube::Store& databases = manager.cache().Get(DatabaseType().gvr).store();
  manager
      .NewController(kController, std::make_unique<BackupReconciler>(
                                      type, manager.client(), manager.recorder(), backups, clusters,
                                      buckets, databases, manager.clock(), options, manager.registry()))
      .For(type, runtime::OnGenerationChange())
      .Watches(KubernetesClusterType().gvr, MapToUnfinishedBackups(backups), runtime::OnGenerationChange())
      .Watches(BucketType().gvr, MapToUnfinishedBackups(backups), runtime::OnGenerationChange())
      .Watches(DatabaseType().gvr, MapToUnfinishedBackups(backups), runtime::OnGenerationChange());
}

}  // namespace ro::controllers

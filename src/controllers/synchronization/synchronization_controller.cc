#include "synchronization/synchronization_controller.h"

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

#include "database/database_controller.h"
#include "ro/common/log.h"
#include "ro/common/object_meta.h"
#include "ro/kube/client.h"
#include "ro/kube/informer.h"
#include "ro/plugins/kubernetes/config_error.h"
#include "ro/plugins/zookeeper/nodes_sync.h"
#include "ro/plugins/zookeeper_client.h"
#include "ro/runtime/conditions.h"
#include "ro/runtime/informer_cache.h"
#include "ro/runtime/manager.h"
#include "ro/runtime/options.h"
#include "ro/runtime/secrets.h"
#include "ro/kube/errors.h"
#include "ro/plugins/tasks/custom_image.h"
#include "synchronization/sync_job.h"
#include "synchronization/sync_run.h"
#include "taskrun/run_status.h"
#include "taskrun/run_target.h"

namespace ro::controllers {

using nlohmann::json;
using runtime::Request;
using runtime::Result;
namespace zk = plugins::zookeeper;

namespace {

constexpr const char* kController = "synchronization";
const kube::GroupVersionResource kJobs{"batch", "v1", "jobs"};
const kube::GroupVersionResource kPods{"", "v1", "pods"};
const kube::GroupVersionResource kSecrets{"", "v1", "secrets"};


// Bounds of ro_synchronization_duration_seconds: a small tree takes well under a second,
// 10,000 znodes a few seconds, a large ensemble minutes.
const prometheus::Histogram::BucketBoundaries kDurationBuckets = {0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300};

// The counts of every copy, for Prometheus (docs/zookeeper.md "Metrics"). Thread-safe
// (prometheus-cpp's metrics are).
class SyncMetrics {
 public:
  explicit SyncMetrics(prometheus::Registry& registry)
      : znodes_(prometheus::BuildCounter()
                    .Name("ro_synchronization_znodes_total")
                    .Help("Znodes handled by Synchronization copies, by what was done to them")
                    .Register(registry)),
        bytes_(prometheus::BuildCounter()
                   .Name("ro_synchronization_written_bytes_total")
                   .Help("Znode data bytes written to destinations")
                   .Register(registry)
                   .Add({})),
        runs_(prometheus::BuildCounter()
                  .Name("ro_synchronization_runs_total")
                  .Help("Finished Synchronization copies, by result (Succeeded or the failure reason)")
                  .Register(registry)),
        duration_(prometheus::BuildHistogram()
                      .Name("ro_synchronization_duration_seconds")
                      .Help("Duration of successful Synchronization copies")
                      .Register(registry)
                      .Add({}, kDurationBuckets)) {}

  void Succeeded(const plugins::zookeeper::NodesSyncResult& result) {
    const plugins::zookeeper::NodesCounts& c = result.counts;
    for (const auto& [label, value] : {std::pair{"created", c.created}, std::pair{"updated", c.updated},
                                       std::pair{"deleted", c.deleted}, std::pair{"unchanged", c.unchanged},
                                       std::pair{"skipped", c.skipped}}) {
      znodes_.Add({{"result", label}}).Increment(static_cast<double>(value));
    }
    bytes_.Increment(static_cast<double>(c.bytes));
    duration_.Observe(std::chrono::duration<double>(result.duration).count());
    runs_.Add({{"result", "Succeeded"}}).Increment();
  }
  void Failed(const std::string& reason) { runs_.Add({{"result", reason}}).Increment(); }

 private:
  prometheus::Family<prometheus::Counter>& znodes_;
  prometheus::Counter& bytes_;
  prometheus::Family<prometheus::Counter>& runs_;
  prometheus::Histogram& duration_;
};

// A reference does not resolve yet: the run waits (Pending) with this reason.
struct Waiting {
  std::string reason;
  std::string message;
};

json ConfigOf(const json& sync) {
  const json spec = sync.value("spec", json::object());
  return spec.is_object() ? spec.value("config", json::object()) : json::object();
}

std::string RestartPolicyOf(const json& sync) {
  const json spec = sync.value("spec", json::object());
  return spec.is_object() ? spec.value("restartPolicy", "Never") : "Never";
}

class SynchronizationReconciler final : public runtime::Reconciler {
 public:
  SynchronizationReconciler(runtime::ObjectType type, kube::DynamicClient& client,
                            kube::EventRecorder& recorder, const kube::Store& syncs,
                            const kube::Store& databases, kube::Clock& clock,
                            SynchronizationOptions options, prometheus::Registry& registry)
      : type_(std::move(type)),
        client_(client),
        syncs_(syncs),
        databases_(databases),
        options_(options),
        log_(json{{"controller", kController}}),
        writer_(client, recorder, log_, clock),
        metrics_(registry) {}

  Result Reconcile(const Request& request, std::stop_token stop) override {
    const kube::ObjectPtr object = syncs_.Get(request.ToString());
    if (!object) return {};
    const json& sync = *object;
    if (common::Deleting(sync) || IsFinished(PhaseOf(sync))) return {};  // never again

    zk::NodesSyncConfig config;
    try {
      config = zk::ParseNodesSyncConfig(ConfigOf(sync));
    } catch (const plugins::kubernetes::ConfigError& e) {
      return Fail(sync, kReasonSyncInvalidConfig, std::string("spec.config: ") + e.what());
    }
    const std::string ns = common::MetadataString(sync, "namespace");
    if (options_.runner == kSynchronizationRunnerJob) {
      // Started before (this process or a previous one): follow it, never start another.
      if (std::optional<json> job = client_.GetIfExists(kJobs, ns, sync::JobName(sync))) {
        if (!plugins::tasks::IsOwnedBy(*job, common::Uid(sync))) {
          return Fail(sync, kReasonSyncJobFailed,
                      "Job " + ns + "/" + sync::JobName(sync) + " exists and does not belong to this Synchronization");
        }
        return FollowJob(sync, *job, config);
      }
    }
    sync::DatabaseTarget source;
    sync::DatabaseTarget destination;
    if (std::optional<Waiting> waiting = Resolve(ns, config.source_name, "sourceName", source)) {
      return Wait(sync, *waiting);
    }
    if (std::optional<Waiting> waiting =
            Resolve(ns, config.destination_name, "destinationName", destination)) {
      return Wait(sync, *waiting);
    }

    RunUpdate running;
    running.phase = RunPhase::kRunning;
    running.message = "Copying " + config.root_path + " from Database " + source.name +
                      " to Database " + destination.name;
    if (options_.runner == kSynchronizationRunnerJob) {
      running.message = "Job " + sync::JobName(sync) + ": " + running.message;
      const std::optional<json> started = writer_.Write(type_.gvr, sync, running);
      if (!started) return Result::Requeue();
      return StartJob(*started, source, destination);
    }
    const std::optional<json> started = writer_.Write(type_.gvr, sync, running);
    if (!started) return Result::Requeue();
    return RunLocal(*started, config, source, destination, stop);
  }

 private:
  Result Write(const json& sync, const RunUpdate& update, Result then) {
    return writer_.Write(type_.gvr, sync, update) ? then : Result::Requeue();
  }

  Result Fail(const json& sync, std::string reason, std::string message) {
    RunUpdate update;
    update.phase = RunPhase::kFailed;
    update.reason = std::move(reason);
    update.message = std::move(message);
    return Write(sync, update, Result{});
  }

  Result Wait(const json& sync, const Waiting& waiting) {
    RunUpdate update;
    update.phase = RunPhase::kPending;
    update.reason = waiting.reason;
    update.message = waiting.message;
    return Write(sync, update, Result::RequeueAfter(options_.pending_recheck));
  }

  // Fills `out` from Database `name` (ResolveDatabase), or says why the run must wait.
  std::optional<Waiting> Resolve(const std::string& ns, const std::string& name,
                                 const char* field, sync::DatabaseTarget& out) {
    try {
      out = ResolveDatabase(client_, databases_, ns, name, field);
    } catch (const ReferenceError& e) {
      return Waiting{e.reason(), e.what()};
    }
    return std::nullopt;
  }

  // The local runner: the copy on this worker.
  Result RunLocal(const json& sync, const zk::NodesSyncConfig& config, const sync::DatabaseTarget& source,
                  const sync::DatabaseTarget& destination, std::stop_token stop) {
    const sync::CopyOutcome outcome = sync::RunCopy(config, source, destination, options_.connect_timeout);
    if (stop.stop_requested()) return {};
    if (!outcome.succeeded && RestartPolicyOf(sync) == "OnFailure") {
      metrics_.Failed(outcome.reason);
      RunUpdate retry;
      retry.phase = RunPhase::kRunning;
      retry.reason = kReasonSyncRetrying;
      retry.message = outcome.message + "; running again in " +
                      std::to_string(options_.retry_interval.count() / 1000) + " s";
      return Write(sync, retry, Result::RequeueAfter(options_.retry_interval));
    }
    return Finish(sync, config.root_path, outcome, "");
  }

  // The job runner: the run file's Secret, then the Job (both idempotent: a restart in
  // between finds them).
  Result StartJob(const json& sync, const sync::DatabaseTarget& source, const sync::DatabaseTarget& destination) {
    const std::string ns = common::Namespace(sync);
    try {
      client_.Create(kSecrets, ns,
                     sync::RenderRunSecret(
                         sync, sync::RunFileJson(ConfigOf(sync), source, destination, options_.connect_timeout)));
    } catch (const std::exception& e) {
      if (!kube::IsAlreadyExists(e)) throw;
      // Written by an attempt that stopped before the Job: the same run, kept as it is.
      const json stored = client_.Get(kSecrets, ns, sync::RunSecretName(sync));
      if (!plugins::tasks::IsOwnedBy(stored, common::Uid(sync))) {
        return Fail(sync, kReasonSyncJobFailed,
                    "Secret " + ns + "/" + sync::RunSecretName(sync) + " exists and does not belong to this Synchronization");
      }
    }
    try {
      client_.Create(kJobs, ns, sync::RenderJob(sync, options_.job));
      log_.Info("job created", {{"synchronization", ns + "/" + common::Name(sync)}, {"job", sync::JobName(sync)}});
    } catch (const std::exception& e) {
      if (!kube::IsAlreadyExists(e)) throw;
    }
    return Result::RequeueAfter(options_.job_poll);
  }

  Result FollowJob(const json& sync, const json& job, const zk::NodesSyncConfig& config) {
    const std::string ns = common::Namespace(sync);
    const std::string job_name = common::Name(job);
    kube::ListOptions pods_of_job;
    pods_of_job.label_selector = "controller-uid=" + common::Uid(job);
    const sync::JobResult result = sync::ReadJob(job, client_.List(kPods, ns, pods_of_job).items);
    switch (result.state) {
      case sync::JobResult::State::kRunning: {
        RunUpdate running;
        running.phase = RunPhase::kRunning;
        running.message = "Job " + job_name + ": Copying " + config.root_path + " from Database " +
                          config.source_name + " to Database " + config.destination_name +
                          (result.message.empty() ? "" : " (" + result.message + ")");
        return Write(sync, running, Result::RequeueAfter(options_.job_poll));
      }
      case sync::JobResult::State::kSucceeded:
        if (result.outcome) return Finish(sync, config.root_path, *result.outcome, job_name);
        {
          sync::CopyOutcome done;
          done.succeeded = true;
          return Finish(sync, config.root_path, done, job_name);
        }
      case sync::JobResult::State::kFailed:
        if (result.outcome) return Finish(sync, config.root_path, *result.outcome, job_name);
        {
          sync::CopyOutcome failed;
          failed.reason = kReasonSyncJobFailed;
          failed.message = "Job " + job_name + " failed" + (result.message.empty() ? "" : ": " + result.message);
          return Finish(sync, config.root_path, failed, job_name);
        }
    }
    return Result::RequeueAfter(options_.job_poll);
  }

  // Succeeded with the counts, or Failed with the outcome's reason; the metrics; the run
  // file's Secret (job runner) is deleted: its credentials are not needed any more.
  Result Finish(const json& sync, const std::string& root_path, const sync::CopyOutcome& outcome,
                const std::string& job_name) {
    const std::string prefix = job_name.empty() ? "" : "Job " + job_name + ": ";
    if (!job_name.empty()) {
      try {
        client_.Delete(kSecrets, common::Namespace(sync), sync::RunSecretName(sync));
      } catch (const std::exception& e) {
        if (!kube::IsNotFound(e)) throw;
      }
    }
    // The metrics count a run once: after its final status is stored (a Conflict
    // requeues and finishes again).
    if (!outcome.succeeded) {
      RunUpdate failed;
      failed.phase = RunPhase::kFailed;
      failed.reason = outcome.reason;
      failed.message = prefix + outcome.message;
      if (!writer_.Write(type_.gvr, sync, failed)) return Result::Requeue();
      metrics_.Failed(outcome.reason);
      return {};
    }
    RunUpdate update;
    update.phase = RunPhase::kSucceeded;
    const zk::NodesCounts& c = outcome.result.counts;
    update.message = prefix + "Copied " + root_path + ": " + std::to_string(c.created) + " created, " +
                     std::to_string(c.updated) + " updated, " + std::to_string(c.deleted) + " deleted, " +
                     std::to_string(c.unchanged) + " unchanged, " + std::to_string(c.skipped) + " skipped in " +
                     std::to_string(outcome.result.duration.count()) + " ms";
    update.counters = {{"nodesCreated", c.created},     {"nodesUpdated", c.updated},
                       {"nodesDeleted", c.deleted},     {"nodesUnchanged", c.unchanged},
                       {"nodesSkipped", c.skipped},     {"bytesWritten", c.bytes},
                       {"durationMilliseconds", outcome.result.duration.count()}};
    if (!writer_.Write(type_.gvr, sync, update)) return Result::Requeue();
    metrics_.Succeeded(outcome.result);
    return {};
  }

  const runtime::ObjectType type_;
  kube::DynamicClient& client_;
  const kube::Store& syncs_;
  const kube::Store& databases_;
  const SynchronizationOptions options_;
  const log::Logger log_;
  RunStatusWriter writer_;
  SyncMetrics metrics_;
};

// A Database maps to the unfinished Synchronizations of its namespace that name it.
runtime::MapFunc MapDatabaseToSyncs(const kube::Store& syncs) {
  return [&syncs](const json& database) {
    std::vector<Request> requests;
    const std::string ns = common::MetadataString(database, "namespace");
    const std::string name = common::MetadataString(database, "name");
    for (const kube::ObjectPtr& sync : syncs.ListByNamespace(ns)) {
      const json config = ConfigOf(*sync);
      if (IsFinished(PhaseOf(*sync)) || !config.is_object()) continue;
      if (config.value("sourceName", "") == name || config.value("destinationName", "") == name) {
        requests.push_back(Request{kube::ObjectKey{ns, common::MetadataString(*sync, "name")}});
      }
    }
    return requests;
  };
}

}  // namespace

runtime::ObjectType SynchronizationType() {
  return {kube::GroupVersionResource{"automation.astronetes.io", "v1alpha1", "synchronizations"},
          "Synchronization"};
}

void AddSynchronizationFlags(runtime::FlagSet& flags, SynchronizationOptions* options) {
  flags.AddString("--runner", &options->runner,
                  "Where a copy runs: \"local\" (on the controller's worker) or \"job\" (a Job of --plugin-image)");
  flags.AddString("--plugin-image", &options->job.image, "job runner: the image of the copy's pod (the operator's)");
  flags.AddString("--plugin-image-pull-policy", &options->job.image_pull_policy,
                  "job runner: imagePullPolicy of the copy's pod");
  flags.AddDuration("--job-poll", &options->job_poll, "job runner: how often a running Job is read");
  flags.AddDuration("--pending-recheck", &options->pending_recheck,
                    "How often a waiting Synchronization looks at its Databases again");
  flags.AddDuration("--retry-interval", &options->retry_interval,
                    "restartPolicy OnFailure: pause before a failed copy runs again");
  flags.AddDuration("--connect-timeout", &options->connect_timeout,
                    "How long each ZooKeeper session may take to establish");
}

void SetupSynchronizationController(runtime::Manager& manager,
                                    const SynchronizationOptions& options) {
  if (options.runner != kSynchronizationRunnerLocal && options.runner != kSynchronizationRunnerJob) {
    throw std::invalid_argument("--runner: \"" + options.runner + "\" is neither \"local\" nor \"job\"");
  }
  const runtime::ObjectType type = SynchronizationType();
  const kube::Store& syncs = manager.cache().Get(type.gvr).store();
  const kube::Store& databases = manager.cache().Get(DatabaseType().gvr).store();
  manager
      .NewController(kController, std::make_unique<SynchronizationReconciler>(
                                      type, manager.client(), manager.recorder(), syncs,
                                      databases, manager.clock(), options, manager.registry()))
      .For(type, runtime::OnGenerationChange())
      .Watches(DatabaseType().gvr, MapDatabaseToSyncs(syncs), runtime::WatchOptions{});
}

}  // namespace ro::controllers

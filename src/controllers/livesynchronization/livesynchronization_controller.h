// The LiveSynchronization controller (manual 6.2.1-6.2.7, tutorials 8.1 and 8.2;
// docs/livesynchronization.md). For each LiveSynchronization it:
//
//   1. checks the spec (plugin, ParseLiveSyncConfig), the one-per-namespace rule, the
//      KubernetesClusters and Bucket it names (exist, Ready), and that the source
//      cluster serves every configured resource; a problem is Ready=False with its
//      reason, a Warning Event and a log line, the pipeline components are stopped and
//      nothing replicated is touched;
//   2. renders the pipeline (kubesync/runner) and has the ComponentRunner run it:
//      Deployments (default) or local processes (--component-runner=local); with
//      spec.suspend the pipeline components stop while NATS and Redis keep their state;
//   3. keeps the recovery Task in step (recovery_task_sync.h);
//   4. reports status: Ready (Running / ComponentsNotReady / Suspended / a problem),
//      phase, components[], per-resource object counts, lastResyncTime and lagSeconds
//      from the pipeline's Redis, taskName; refreshed every --status-refresh-interval
//      and written only when it changed;
//   5. on deletion (finalizer) tears the pipeline down (components, Redis keys, stream,
//      servers) and deletes the Task. Destination objects are kept: it is a standby.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "ro/kubesync/runner/component_runner.h"
#include "ro/kubesync/runner/deployments_runner.h"
#include "ro/runtime/controller.h"

namespace ro::kube {
class DynamicClient;
}  // namespace ro::kube

namespace ro::runtime {
class FlagSet;
class Manager;
}  // namespace ro::runtime

namespace ro::controllers {

// The finalizer that keeps a deleted LiveSynchronization until its pipeline is gone.
inline constexpr const char* kLiveSynchronizationFinalizer = "automation.astronetes.io/livesynchronization-cleanup";

struct LiveSynchronizationOptions {
  // "deployments" (Kubernetes objects; production) or "local" (processes on this host).
  std::string component_runner = "deployments";
  // Images of the deployments runner.
  kubesync::runner::DeploymentsRunnerOptions deployments;
  // Local runner: the kubesync binary ("" = next to this controller's binary), the
  // servers (absolute paths or $PATH names) and the runtime directory ("" =
  // ${TMPDIR:-/tmp}/resiliency-operator/livesynchronization).
  std::string kubesync_binary;
  std::string nats_server_binary = "nats-server";
  std::string redis_server_binary = "redis-server";
  std::string runtime_dir;
  // How often status (statistics, components) is refreshed while nothing changes.
  std::chrono::milliseconds status_refresh_interval{std::chrono::seconds{10}};
  // Per-request timeout of the discovery on the source cluster.
  std::chrono::milliseconds discovery_timeout{std::chrono::seconds{10}};
  // Per-pipeline credentials, TLS and JetStream encryption at rest (docs/security.md).
  // Off only with --pipeline-security=false, logged as a warning at start.
  bool pipeline_security = true;
};

// automation.astronetes.io/v1alpha1 LiveSynchronization.
runtime::ObjectType LiveSynchronizationType();

// Registers --component-runner, --kubesync-image, --nats-image, --redis-image,
// --kubesync-binary, --nats-server-binary, --redis-server-binary, --runtime-dir,
// --status-refresh-interval, --discovery-timeout and --pipeline-security.
void AddLiveSynchronizationFlags(runtime::FlagSet& flags, LiveSynchronizationOptions* options);

// The runner `options` ask for. Throws std::invalid_argument for an unknown runner name
// or (local) a missing binary.
std::unique_ptr<kubesync::runner::ComponentRunner> MakeComponentRunner(const LiveSynchronizationOptions& options,
                                                                      kube::DynamicClient& client);

// Registers the controller: For(LiveSynchronization), Watches(LiveSynchronization ->
// its namespace's others, for the one-per-namespace rule), Watches(KubernetesCluster,
// Bucket -> the LiveSynchronizations naming them), Owns(Task), and with the deployments
// runner Owns(Deployment) and Owns(Secret, metadata only). Throws std::invalid_argument
// (bad options).
void SetupLiveSynchronizationController(runtime::Manager& manager, const LiveSynchronizationOptions& options);

}  // namespace ro::controllers

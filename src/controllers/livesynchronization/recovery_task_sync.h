// Keeps the recovery Task of a LiveSynchronization (manual 8.2, "Understanding the
// TaskRun"; plugins/kubernetes/recovery_task.h) in step with its spec: created when a
// recoveryProcess has an effect, updated when it differs (a user's edit is reverted:
// "this object should not be tampered with"), deleted when no recoveryProcess remains or
// the LiveSynchronization goes. The Task has a controller ownerReference to the
// LiveSynchronization; a Task of the same name that something else controls is left
// alone (and reported).
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <optional>
#include <string>

#include "ro/kube/gvr.h"
#include "ro/kube/store.h"
#include "ro/plugins/kubernetes/live_sync_config.h"
#include "ro/runtime/controller.h"

namespace ro::kube {
class DynamicClient;
}  // namespace ro::kube

namespace ro::controllers::livesync {

// automation.astronetes.io/v1alpha1 Task.
runtime::ObjectType TaskType();

// The desired Task of `live_sync` (with its ownerReference), or nullopt when no
// resources[] entry has a recovery effect (pure).
std::optional<nlohmann::json> DesiredRecoveryTask(const nlohmann::json& live_sync,
                                                  const plugins::kubernetes::LiveSyncConfig& config);

// Thread-safe (stateless apart from its references).
class RecoveryTaskSync {
 public:
  // `tasks` is the Task informer's cache; both must outlive this object.
  RecoveryTaskSync(kube::DynamicClient& client, const kube::Store& tasks);

  // Creates, updates or deletes the Task. Returns its name when a Task of this
  // LiveSynchronization exists afterwards. `conflict` is set to a message when a Task
  // of that name exists that this LiveSynchronization does not control. Throws
  // kube::ApiError (Conflict: the cache was stale, requeue) / TransportError.
  std::optional<std::string> Ensure(const nlohmann::json& live_sync,
                                    const plugins::kubernetes::LiveSyncConfig& config, std::string* conflict);

  // The cached Task of `live_sync` when this LiveSynchronization controls it, else
  // nullptr.
  kube::ObjectPtr Existing(const nlohmann::json& live_sync) const;

  // Deletes the Task when this LiveSynchronization controls it (the finalizer).
  void Delete(const nlohmann::json& live_sync);

 private:
  kube::DynamicClient& client_;
  const kube::Store& tasks_;
};

// The 3-cluster architecture (manual 2.1): when the destination KubernetesCluster is
// another cluster than the one this controller runs in, the recovery Task lives in the
// destination cluster, so that the operator installed there recovers while the
// management cluster is down. Same name, and the namespace of the LiveSynchronization's
// name there (created when missing). The owner is in another cluster, so instead of an
// ownerReference (the destination's garbage collector would delete the Task) it carries
// the label kubesync.astronetes.io/managed-by=<ManagedById> and the annotation
// kubesync.astronetes.io/live-synchronization=<ns>/<name>; a Task there without them is
// not ours and is left alone (conflict). Its spec has no destinationName: it recovers
// the cluster it is in (the management cluster's KubernetesClusters are unknown there);
// a bucketName (fromOriginal) names a Bucket the user also creates in the destination.

// The desired Task in the destination cluster (pure), or nullopt (no recovery effect).
std::optional<nlohmann::json> DesiredRemoteRecoveryTask(const nlohmann::json& live_sync,
                                                        const plugins::kubernetes::LiveSyncConfig& config);

// Identity of the cluster behind `client`: the uid of its kube-system Namespace (unique
// per cluster, stable for its life). Throws kube::ApiError / TransportError.
std::string ClusterIdentity(kube::DynamicClient& client);

// Stateless; every call reads the Task from the destination (one GET).
class RemoteRecoveryTaskSync {
 public:
  // Creates, updates or deletes the Task in the cluster of `destination`, like
  // RecoveryTaskSync::Ensure. Throws kube::ApiError / TransportError.
  static std::optional<std::string> Ensure(kube::DynamicClient& destination, const nlohmann::json& live_sync,
                                           const plugins::kubernetes::LiveSyncConfig& config, std::string* conflict);
  // Deletes the Task in the cluster of `destination` when it is ours.
  static void Delete(kube::DynamicClient& destination, const nlohmann::json& live_sync);
};

}  // namespace ro::controllers::livesync

// The Backup controller (API reference 9.2; docs/backup.md): runs each Backup once with
// its plugin (kubernetes-objects-to-bucket, ro/plugins/backup/kubernetes_backup.h). It
// runs in the synchronization-controller binary: both kinds are one-shot copies of an
// asset.
//
//   (no phase) / Pending
//     spec invalid (plugin, config)           -> Failed InvalidConfig
//     the KubernetesCluster or the Bucket (or a Secret they name) is missing or unusable
//                                             -> Pending (ClusterNotFound, BucketNotFound,
//                                                SecretNotFound, SecretKeyMissing,
//                                                InvalidKubeconfig, InvalidBucket, ...);
//                                                looked at again every --pending-recheck and
//                                                when a KubernetesCluster or Bucket changes
//     otherwise                               -> Running (startTime), the backup, then
//   Running -> Succeeded with objects, bytes, durationMilliseconds, basePath and
//              message; or Failed with the BackupError's reason (SourceUnavailable,
//              SourceForbidden, SourceError, NamespaceNotFound, BucketUnavailable,
//              BucketError). With restartPolicy OnFailure a failed run stays Running
//              (reason Retrying) and runs again after --retry-interval.
//   Succeeded / Failed: never run again (create a new Backup to back up again).
//   A controller restarted in the middle finds Running and runs the backup again
//   (objects are overwritten with their current state; the index is written last).
//
// Metrics (docs/backup.md): ro_backup_runs_total{result}, ro_backup_objects_total,
// ro_backup_bytes_total, ro_backup_duration_seconds.
#pragma once

#include <chrono>

#include "ro/runtime/controller.h"

namespace ro::runtime {
class Manager;
}  // namespace ro::runtime

namespace ro::controllers {

inline constexpr const char* kReasonBackupInvalidConfig = "InvalidConfig";
inline constexpr const char* kReasonBackupRetrying = "Retrying";

struct BackupOptions {
  // How often a Pending Backup looks at its references again.
  std::chrono::milliseconds pending_recheck{std::chrono::seconds{5}};
  // restartPolicy OnFailure: the pause before a failed run runs again.
  std::chrono::milliseconds retry_interval{std::chrono::seconds{30}};
  // Limit of each request to the source KubernetesCluster.
  std::chrono::milliseconds cluster_timeout{std::chrono::seconds{30}};
};

// automation.astronetes.io/v1alpha1 Backup.
runtime::ObjectType BackupType();

// Registers the controller: For(Backup) + Watches(KubernetesCluster, Bucket, Database -> the
// unfinished Backups of their namespace).
void SetupBackupController(runtime::Manager& manager, const BackupOptions& options);

}  // namespace ro::controllers

// The Synchronization controller (manual 6.1, 6.3; docs/zookeeper.md): runs each
// Synchronization once with its plugin (zookeeper-to-zookeeper-nodes).
//
//   (no phase) / Pending
//     spec.config invalid                       -> Failed InvalidConfig
//     a Database (sourceName, destinationName) is missing or not Ready, or the Secret
//     with its credentials is                   -> Pending (DatabaseNotFound,
//                                                  DatabaseNotReady, SecretNotFound,
//                                                  SecretKeyMissing); looked at again every
//                                                  --pending-recheck and when a Database changes
//     otherwise                                 -> Running (startTime), the copy, then
//   Running -> Succeeded with the counts (nodesCreated, nodesUpdated, nodesDeleted,
//              nodesUnchanged, nodesSkipped, bytesWritten, durationSeconds), or
//              Failed with the first error (reason Unreachable, NotAuthorized,
//              RootPathMissing, ZooKeeperError); with restartPolicy OnFailure a failed
//              copy stays Running (reason Retrying) and runs again after --retry-interval.
//   Succeeded / Failed: never run again (create a new Synchronization to copy again).
//
// Metrics (docs/zookeeper.md): ro_synchronization_znodes_total{result}, ..._written_bytes_total,
// ..._runs_total{result}, ..._duration_seconds.
//
// Runners (docs/zookeeper.md): "local" runs the copy inside the controller process, on
// the worker that reconciles the object; a controller restarted in the middle finds the
// phase Running and runs the copy again, which is idempotent. "job" (deploy/operator)
// runs it as a Job of the operator image (sync_job.h) and follows the Job: its pod's
// termination message carries the outcome; restartPolicy OnFailure becomes the Job's
// backoffLimit; a Job that ends without an outcome is Failed JobFailed.
#pragma once

#include <chrono>

#include <string>
#include <string_view>

#include "ro/runtime/controller.h"
#include "synchronization/sync_job.h"

namespace ro::runtime {
class FlagSet;
class Manager;
}  // namespace ro::runtime

namespace ro::controllers {

// Ready reasons of a Synchronization beyond Pending, Running and Succeeded.
inline constexpr const char* kReasonSyncInvalidConfig = "InvalidConfig";
inline constexpr const char* kReasonSyncDatabaseNotFound = "DatabaseNotFound";
inline constexpr const char* kReasonSyncDatabaseNotReady = "DatabaseNotReady";
inline constexpr const char* kReasonSyncSecretNotFound = "SecretNotFound";
inline constexpr const char* kReasonSyncSecretKeyMissing = "SecretKeyMissing";
inline constexpr const char* kReasonSyncUnreachable = "Unreachable";
inline constexpr const char* kReasonSyncNotAuthorized = "NotAuthorized";
inline constexpr const char* kReasonSyncRootPathMissing = "RootPathMissing";
inline constexpr const char* kReasonSyncZooKeeperError = "ZooKeeperError";
inline constexpr const char* kReasonSyncRetrying = "Retrying";
// The Job ended without an outcome of the copy (image not pulled, killed, deadline), or a
// Job/Secret of its name belongs to something else.
inline constexpr const char* kReasonSyncJobFailed = "JobFailed";

// --runner values.
inline constexpr std::string_view kSynchronizationRunnerLocal = "local";
inline constexpr std::string_view kSynchronizationRunnerJob = "job";

struct SynchronizationOptions {
  // How often a Pending Synchronization looks at its Databases again (their changes are
  // watched too; Secrets are not).
  std::chrono::milliseconds pending_recheck{std::chrono::seconds{5}};
  // restartPolicy OnFailure: the pause before a failed copy runs again.
  std::chrono::milliseconds retry_interval{std::chrono::seconds{30}};
  // How long each ZooKeeper session may take to establish.
  std::chrono::milliseconds connect_timeout{std::chrono::seconds{10}};
  // "local" (the copy on the reconciling worker) or "job" (a Job of job.image in the
  // Synchronization's namespace; deploy/operator sets it). docs/zookeeper.md, "Runners".
  std::string runner = std::string(kSynchronizationRunnerLocal);
  sync::JobRunnerOptions job;
  // Job runner: how often a running Job and its pods are read.
  std::chrono::milliseconds job_poll{std::chrono::seconds{2}};
};

// automation.astronetes.io/v1alpha1 Synchronization.
runtime::ObjectType SynchronizationType();

// Registers --pending-recheck, --retry-interval, --connect-timeout, --runner,
// --plugin-image, --plugin-image-pull-policy, --job-poll.
void AddSynchronizationFlags(runtime::FlagSet& flags, SynchronizationOptions* options);

// Registers the controller: For(Synchronization) + Watches(Database -> the unfinished
// Synchronizations of its namespace that name it).
void SetupSynchronizationController(runtime::Manager& manager,
                                    const SynchronizationOptions& options);

}  // namespace ro::controllers

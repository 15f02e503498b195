// The kubernetes-objects-from-backup Task plugin (docs/backup.md "Restoring"): one pass
// that creates the objects of a Backup in a cluster.
//
//   1. read <basePath>/index.json from the Bucket (missing: RestoreError BackupNotFound;
//      not an index: InvalidBackup);
//   2. keep its objects of config.namespaces (all when empty; CRDs always), group them by
//      resource and process the resources in the stages of
//      ro/plugins/kubernetes/apply_order.h (order Dependencies) or in the index's order
//      (AsListed); after CRDs, wait until each is Established;
//   3. for each object: read it, check its SHA-256 against the index (a mismatch fails
//      that object), map its namespace (namespaceMapping), drop kubesync's control label
//      and annotations (the copy is not a replica), add namespaceLabels to Namespaces,
//      then create it, or, when it exists: leave it (existing Skip, the default) or lay the
//      backup's fields over it (RestoreFromOriginal) and update it (existing Update).
//
// One object failing never stops the others. Dry run (TransformerOptions::dry_run): every
// create and update is sent with dryRun=All and the report's `planned` says per object
// Create (patch: the whole object as the destination would store it, as one "add /"),
// Patch, Unchanged, Skip or Fail. Objects restored carry the run's two annotations, and a
// pass repeated after a restart finds the objects it created (existing) and skips them.
#pragma once

#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>

#include <nlohmann/json.hpp>

#include "ro/common/log.h"
#include "ro/plugins/tasks/object_transformation.h"
#include "ro/plugins/tasks/task_spec.h"

namespace ro::plugins::tasks {

// The backup cannot be read at all. reason(): BackupNotFound, InvalidBackup, BucketError.
class RestoreError : public std::runtime_error {
 public:
  RestoreError(std::string reason, const std::string& message)
      : std::runtime_error(message), reason_(std::move(reason)) {}
  const std::string& reason() const noexcept { return reason_; }

 private:
  std::string reason_;
};

// Reads and parses <base_path>/index.json with `read`. Throws RestoreError: BucketError
// (the read failed), BackupNotFound (no index: the Backup did not finish, or base_path is
// wrong), InvalidBackup (not a BackupIndex with an objects list).
nlohmann::json ReadBackupIndex(const OriginalReader& read, const std::string& base_path);

// Reads `key` with `read`, retrying a retryable S3Error up to options.max_attempts times
// with options' backoff on `clock`. nullopt when the key does not exist. Throws the last
// error (S3Error, BucketEncryptionError, ...), or std::runtime_error when `stop` ends the
// wait.
std::optional<std::string> ReadBackupFile(const OriginalReader& read, const std::string& key,
                                          const TransformerOptions& options, kube::Clock& clock,
                                          std::stop_token stop);

// Runs one restore pass. Not thread-safe; cheap to construct.
class BackupRestorer {
 public:
  // `target.destination` and `target.read_original` (reads keys of the Bucket) are
  // required: std::invalid_argument otherwise.
  BackupRestorer(RestoreConfig config, RunIdentity run, TransformationTarget target, log::Logger log,
                 kube::Clock& clock = kube::DefaultClock(), TransformerOptions options = {});

  // Throws RestoreError (above), kube::ApiError / TransportError when the destination is
  // unavailable (retryable: repeat the pass later). report.patched counts the objects
  // created or updated (or found created by this run).
  TransformationReport Run(std::stop_token stop);

 private:
  const RestoreConfig config_;
  const RunIdentity run_;
  const TransformationTarget target_;
  const log::Logger log_;
  kube::Clock& clock_;
  const TransformerOptions options_;
};

}  // namespace ro::plugins::tasks

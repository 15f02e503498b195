// The zookeeper-nodes-from-backup Task plugin (docs/backup.md "Restoring a ZooKeeper
// backup"): one pass that writes the znodes of a zookeeper-nodes-to-bucket Backup into a
// Database.
//
//   spec:
//     plugin: zookeeper-nodes-from-backup
//     config:
//       bucketName: backups               (required)
//       basePath: zk/2026-12-06           (required: the Backup's status.basePath)
//       destinationName: zookeeper-2      (required: a Database of the Task's namespace)
//       rootPath: /app-restored           (optional: where the backup's rootPath goes;
//                                          default: the same path)
//       existing: Skip | Update           (optional; Skip: a znode that exists keeps its
//                                          data and ACL; Update: they are set to the
//                                          backup's)
//
// The pass:
//   1. reads <basePath>/index.json (RestoreError BackupNotFound, InvalidBackup: not an
//      index, or the index of another plugin);
//   2. reads every znode file, checks its SHA-256 against the index, and maps its path
//      under rootPath (a file that fails fails that znode and everything below it);
//   3. reads the same paths in the destination (one pipelined ReadMany) and plans with
//      zookeeper::PlanWrites: creates (parents first, in zoo_multi transactions), data
//      updates and ACLs (existing: Update only for znodes that exist), the ACLs last;
//      missing ancestors of rootPath are created empty, with the open ACL.
// It never deletes: znodes of the destination that the backup does not have stay.
// Ephemeral znodes of the backup are restored as persistent ones (like the
// zookeeper-to-zookeeper-nodes plugin). A repeated pass finds what it created and leaves
// it (Unchanged).
//
// Dry run: nothing is written; the report's `planned` lists per znode (resource
// "zookeeper/znodes", name = the destination path) Create (the patch adds {dataBytes,
// dataSha256, acl}: never the data, which often holds credentials, and digest ids as
// "user:x"), Patch (those replaced), Unchanged, Skip (exists; existing: Skip) or Fail.
#pragma once

#include <stop_token>
#include <string>

#include "ro/common/log.h"
#include "ro/plugins/tasks/backup_restore.h"
#include "ro/plugins/tasks/object_transformation.h"
#include "ro/plugins/tasks/task_spec.h"
#include "ro/plugins/zookeeper_client.h"

namespace ro::plugins::tasks {

// Where a ZooKeeper restore writes.
struct ZooKeeperTarget {
  ZooKeeperClient* destination = nullptr;  // required
  std::string database_name;               // log field database.name
  // The destination session's identity (world:anyone, or its digest id): the provisional
  // ACL of created znodes with children (zookeeper::PlanOptions::own_identity).
  ZooKeeperAcl identity{zk_perm::kAll, "world", "anyone"};
  OriginalReader read_bucket;  // required: reads keys of the Bucket
};

// Runs one restore pass into a Database. Not thread-safe; cheap to construct.
class ZooKeeperRestorer {
 public:
  // std::invalid_argument when target.destination or target.read_bucket is missing.
  ZooKeeperRestorer(RestoreConfig config, ZooKeeperTarget target, log::Logger log, TransformerOptions options = {});

  // Throws RestoreError (BackupNotFound, InvalidBackup, BucketError), ZooKeeperError when
  // the destination fails a read or a transaction (retryable() ones: repeat the pass
  // later). report.patched counts the znodes created or updated; report.skipped those left
  // as they were because they exist (existing: Skip).
  TransformationReport Run(std::stop_token stop);

 private:
  const RestoreConfig config_;
  const ZooKeeperTarget target_;
  const log::Logger log_;
  const TransformerOptions options_;
};

}  // namespace ro::plugins::tasks

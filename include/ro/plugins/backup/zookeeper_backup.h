// The zookeeper-nodes-to-bucket Backup plugin (API reference 9.2; docs/backup.md
// "ZooKeeper"): writes the tree of a Database under rootPath to a Bucket, one file per
// znode (data and ACL), then an index in the format of the kubernetes-objects-to-bucket
// plugin's (kubernetes_backup.h: BackupEntry, BackupResult, BackupIndexJson).
//
//   spec:
//     plugin: zookeeper-nodes-to-bucket
//     restartPolicy: OnFailure | Never          (Never when omitted)
//     config:
//       source:
//         database:
//           name: zookeeper-1                   (required; a Database of the namespace)
//           rootPath: /app                      (optional; default "/": the whole tree
//                                                but /zookeeper)
//           excludePathRegexp: "^/app/tmp"      (optional RE2, as the Synchronization
//                                                plugin's: excluded paths and what is
//                                                below them are not backed up)
//           ignoreEphemeral: true               (optional; default false: ephemeral
//                                                znodes are backed up, marked so)
//       destination:
//         bucket: {name: backups, basePath: zk/2026-12-06}   (as kubernetes-objects-to-bucket)
//
// In the bucket, under <basePath>/:
//   znodes<path>   one znode (ZnodeKey), compact JSON (ZnodeFileJson):
//                  {"path": "/app/config", "data": "<base64>", "acl": [{"perms": 31,
//                   "scheme": "world", "id": "anyone"}], "ephemeral": false,
//                   "ctime": RFC 3339, "mtime": RFC 3339, "version": 3}
//                  rootPath itself included (unless "/": every server has it)
//   index.json     written last; "plugin": "zookeeper-nodes-to-bucket", "source":
//                  {"database": {"name", "servers"}, "rootPath"}, objects[] with resource
//                  "zookeeper/znodes" and name = the znode's path
//
// The tree is read depth by depth with pipelined reads (zookeeper/nodes_sync.h ReadLevel);
// like ZooKeeper's own snapshots it is fuzzy: a znode changed during the run is stored
// as it was when its depth was read.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "ro/common/log.h"
#include "ro/plugins/backup/kubernetes_backup.h"
#include "ro/plugins/zookeeper/nodes_plan.h"
#include "ro/plugins/zookeeper_client.h"

namespace ro::plugins::backup {

inline constexpr std::string_view kZooKeeperBackupPlugin = "zookeeper-nodes-to-bucket";
// BackupEntry::resource of a znode.
inline constexpr std::string_view kZnodeResource = "zookeeper/znodes";

// spec.plugin of a Backup object, "" when absent or not a string.
std::string BackupPluginOf(const nlohmann::json& backup);

// spec.config of a zookeeper-nodes-to-bucket Backup, validated.
struct ZooKeeperBackupConfig {
  std::string database_name;
  std::string root_path = "/";  // absolute, no trailing '/' (except "/")
  std::string exclude_path_regexp;
  bool ignore_ephemeral = false;
  std::string bucket_name;
  std::string base_path;  // no leading or trailing '/', never empty
};

// Parses a whole Backup object. Throws kubernetes::ConfigError listing every problem with
// its field path ("spec.config.source.database.rootPath"); a plugin other than
// kZooKeeperBackupPlugin is a problem of spec.plugin.
ZooKeeperBackupConfig ParseZooKeeperBackup(const nlohmann::json& backup);

// The key of znode `path` relative to the base path: "znodes" + path ("/app/x" ->
// "znodes/app/x").
std::string ZnodeKey(std::string_view path);

// One znode as stored (see above). `stat` may be null (then no times or version).
std::string ZnodeFileJson(std::string_view path, const zookeeper::Znode& node, const ZooKeeperStat* stat);

// A znode file read back: its path and node (data decoded; children left 0). Throws
// std::invalid_argument naming what is wrong.
std::pair<std::string, zookeeper::Znode> ParseZnodeFile(std::string_view body);

struct ZooKeeperBackupOptions {
  // Paths read per pipelined ReadMany.
  std::size_t read_chunk = 2000;
  // Attempts per read and per write for transient errors (connection loss, timeouts,
  // 5xx from the bucket), with backoff from initial_backoff doubling up to max_backoff.
  int max_attempts = 5;
  std::chrono::milliseconds initial_backoff{200};
  std::chrono::milliseconds max_backoff{5'000};
};

// One backup of a Database's tree. Not thread-safe; one Run per object.
class ZooKeeperBackup {
 public:
  // `source` and `write` must outlive the object.
  ZooKeeperBackup(ZooKeeperBackupConfig config, ZooKeeperClient& source, ObjectWriter write, log::Logger log,
                  ZooKeeperBackupOptions options = {});

  // Reads the tree and writes every znode, then the index (identity.database_name and
  // root_path name the source in it). Throws BackupError: RootPathNotFound (rootPath
  // missing), SourceForbidden (a znode the credentials may not read), SourceUnavailable /
  // SourceError, BucketUnavailable / BucketError. Returns early (without an index) when
  // `stop` is requested.
  BackupResult Run(const BackupIdentity& identity, std::stop_token stop);

 private:
  const ZooKeeperBackupConfig config_;
  ZooKeeperClient& source_;
  const ObjectWriter write_;
  const log::Logger log_;
  const ZooKeeperBackupOptions options_;
};

}  // namespace ro::plugins::backup

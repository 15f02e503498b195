// The zookeeper-to-zookeeper-nodes plugin run (manual 6.3): reads both trees under
// rootPath with pipelined requests, plans (nodes_plan.h) and applies the writes to the
// destination in zoo_multi transactions.
#pragma once

#include <chrono>
#include <string>

#include "ro/plugins/zookeeper/nodes_plan.h"
#include "ro/plugins/zookeeper_client.h"

namespace ro::plugins::zookeeper {

// What a run did.
struct NodesSyncResult {
  NodesCounts counts;
  std::chrono::milliseconds duration{0};
};

// A tree read under `root_path` (the root included unless it is "/"), not descending into
// excluded paths. `excluded` counts the excluded paths met (tops of excluded subtrees).
struct ReadTreeResult {
  ZnodeTree tree;
  bool root_exists = false;
  std::int64_t excluded = 0;
};

// Reads the tree level by level, each level with one pipelined ReadMany. Throws
// ZooKeeperError (kNoAuth on a node the session may not read, transport failures).
ReadTreeResult ReadTree(ZooKeeperClient& client, const std::string& root_path,
                        const PathFilter& filter);

// The plugin's run failed for a reason of its own (not a ZooKeeper call): the source
// rootPath is missing, or the destination's is and createRootPath is not set.
class NodesSyncError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Makes the destination tree under config.root_path equal to the source's. Both trees
// are read completely (at the same time, the destination's on a second thread) before the
// first write, so a source that cannot be read changes
// nothing; a failed transaction leaves the earlier ones applied (each is atomic), and a
// second run finishes the job. `destination_identity` is the destination session's ACL
// identity (PlanOptions::own_identity). Throws NodesSyncError, ZooKeeperError.
NodesSyncResult SyncNodes(ZooKeeperClient& source, ZooKeeperClient& destination,
                          const NodesSyncConfig& config,
                          const ZooKeeperAcl& destination_identity = {zk_perm::kAll, "world",
                                                                      "anyone"});

}  // namespace ro::plugins::zookeeper

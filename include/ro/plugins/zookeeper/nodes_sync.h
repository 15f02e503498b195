// The zookeeper-to-zookeeper-nodes plugin run (manual 6.3): reads both trees under
// rootPath depth by depth with pipelined requests, plans (nodes_plan.h) and applies the
// writes to the destination in zoo_multi transactions, the creates of a depth while the
// next depth is read.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ro/plugins/zookeeper/nodes_plan.h"
#include "ro/plugins/zookeeper_client.h"

namespace ro::plugins::zookeeper {

// Sessions a run opens with each Database (ZooKeeperOptions::read_sessions): one for
// everything, three more that only read.
inline constexpr std::size_t kReadSessions = 4;

// What a run did.
struct NodesSyncResult {
  NodesCounts counts;
  std::chrono::milliseconds duration{0};
};

// One depth of a tree: the nodes read at that depth and the paths of the next.
struct TreeLevel {
  ZnodeTree nodes;                // "/" itself is never included (it is never copied)
  std::vector<std::string> next;  // children of `nodes`, excluded paths left out
  std::int64_t excluded = 0;      // excluded children met (tops of excluded subtrees)
  // The stat of each of `nodes` (ReadLevel's keep_stats only: the Backup plugin's times
  // and versions).
  std::map<std::string, ZooKeeperStat> stats;
};

// Reads data, stat, ACL and children's names of `paths` (one depth) with one pipelined
// ReadMany (with each stat in `stats` when keep_stats); a path gone since its parent
// listed it is left out. Znode::children counts
// the children in `next`. Throws ZooKeeperError (kNoAuth on a node the session may not
// read, transport failures).
TreeLevel ReadLevel(ZooKeeperClient& client, const std::vector<std::string>& paths,
                    const PathFilter& filter, bool keep_stats = false);

// The plugin's run failed for a reason of its own (not a ZooKeeper call): the source
// rootPath is missing, or the destination's is and createRootPath is not set.
class NodesSyncError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Makes the destination tree under config.root_path equal to the source's. Both trees
// are read depth by depth at the same time (the destination's on a second thread). The
// creates of znodes missing in the destination are sent as soon as their depth is read,
// while the next depth is read; everything that changes an existing destination znode
// (data, ACL, delete) waits until both whole trees are read. So a source that cannot be
// read completely overwrites and deletes nothing (at most it adds znodes a next run would
// add too), a failed transaction leaves the earlier ones applied (each is atomic), and a
// second run finishes the job. `destination_identity` is the destination session's ACL
// identity (PlanOptions::own_identity). Throws NodesSyncError, ZooKeeperError.
NodesSyncResult SyncNodes(ZooKeeperClient& source, ZooKeeperClient& destination,
                          const NodesSyncConfig& config,
                          const ZooKeeperAcl& destination_identity = {zk_perm::kAll, "world",
                                                                      "anyone"});

}  // namespace ro::plugins::zookeeper

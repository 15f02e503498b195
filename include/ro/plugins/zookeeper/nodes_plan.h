// The zookeeper-to-zookeeper-nodes plugin's decisions (manual 6.3), pure: its
// configuration, which paths are excluded, what to write to make a destination tree equal
// to a source tree, and how to cut the writes into zoo_multi transactions. No server here;
// nodes_sync.h reads the trees and applies the plan. The rules are in docs/zookeeper.md.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ro/plugins/zookeeper_client.h"

namespace re2 {
class RE2;
}

namespace ro::plugins::zookeeper {

// The plugin name in Synchronization spec.plugin.
inline constexpr std::string_view kNodesPluginName = "zookeeper-to-zookeeper-nodes";

// ZooKeeper's default jute.maxbuffer (0xfffff: one byte under 1 MiB), the largest
// request a server accepts unless its operator raised the Java system property.
inline constexpr std::size_t kDefaultJuteMaxBuffer = 0xfffff;
// Writes per zoo_multi at most: a transaction is applied (and fsynced) as one, and a
// thousand ops keep one failed batch cheap to retry and the server's latency for others low.
inline constexpr std::size_t kDefaultMaxBatchOperations = 1000;

// spec.config of a Synchronization running the plugin (manual 6.3.2).
struct NodesSyncConfig {
  std::string source_name;       // sourceName: a Database
  std::string destination_name;  // destinationName: a Database
  std::string root_path;         // rootPath: absolute, no trailing '/' (except "/")
  // createRootPath (or the manual samples' spelling createRoutePath): create rootPath
  // and its missing ancestors in the destination instead of failing.
  bool create_root_path = false;
  bool ignore_ephemeral = false;   // ignoreEphemeral
  std::string exclude_path_regexp; // excludePathRegexp (RE2); "" excludes nothing
  // juteMaxBuffer: the destination server's jute.maxbuffer; every transaction stays below.
  std::size_t jute_max_buffer = kDefaultJuteMaxBuffer;
  // maxBatchOperations: writes per transaction at most.
  std::size_t max_batch_operations = kDefaultMaxBatchOperations;
};

// The parent of an absolute znode path ("/a/b" -> "/a", "/a" -> "/", "/" -> "/").
std::string ParentPath(std::string_view path);
// The path of child `name` of `parent` ("/" + "a" -> "/a", "/a" + "b" -> "/a/b").
std::string ChildPath(std::string_view parent, std::string_view name);

// Whether a destination znode's ACL (as read) equals `source`'s, as sets. ZooKeeper shows
// a session without ADMIN permission on a node its digest ids as "user:x" (ZOOKEEPER-1392);
// when `destination` has such an entry, digest ids are compared by user only (such a
// session could not set the ACL anyway).
bool SameAcl(const std::vector<ZooKeeperAcl>& destination, const std::vector<ZooKeeperAcl>& source);

// Why `path` is not an absolute znode path usable as a rootPath ("must be an absolute
// path such as /app", ...), "" when it is. "/" is one.
std::string RootPathProblem(const std::string& path);

// Parses and validates spec.config. Throws ro::plugins::kubernetes::ConfigError listing
// every problem (missing names, a relative or malformed rootPath, createRootPath and
// createRoutePath both set to different values, an excludePathRegexp RE2 rejects).
NodesSyncConfig ParseNodesSyncConfig(const nlohmann::json& config);

// Which paths the plugin leaves alone on both sides. A path is excluded when the regular
// expression matches anywhere in it (RE2 partial match; anchor with ^...$ for the whole
// path), and so is everything below it. ZooKeeper's own /zookeeper subtree (quotas,
// dynamic configuration) is always excluded. Thread-safe (immutable).
class PathFilter {
 public:
  // Throws ro::plugins::kubernetes::ConfigError when RE2 rejects `regexp`.
  explicit PathFilter(const std::string& regexp);
  ~PathFilter();
  PathFilter(PathFilter&&) noexcept;
  PathFilter& operator=(PathFilter&&) noexcept;

  // True when `path` or one of its ancestors is excluded.
  bool Excluded(std::string_view path) const;

 private:
  std::unique_ptr<re2::RE2> regexp_;  // null: only /zookeeper is excluded
};

// One znode as the plan sees it.
struct Znode {
  std::string data;
  std::vector<ZooKeeperAcl> acl;
  bool ephemeral = false;
  // Children the run copies below it (not excluded). A created node with some gets the
  // provisional ACL (PlanOptions::own_identity) until the end of the run.
  std::size_t children = 0;
};

// A tree by absolute path. Sorted, so parents come before their children.
using ZnodeTree = std::map<std::string, Znode>;

// What a run did, for status and metrics.
struct NodesCounts {
  std::int64_t created = 0;
  std::int64_t updated = 0;    // data and/or ACL changed
  std::int64_t deleted = 0;
  std::int64_t unchanged = 0;
  std::int64_t skipped = 0;    // excluded subtrees' tops and ignored ephemerals
  std::int64_t bytes = 0;      // data bytes written (creates and updates)
  std::int64_t writes = 0;     // write operations sent (creates, sets, deletes, ACLs)
  std::int64_t transactions = 0;  // zoo_multi calls

  bool operator==(const NodesCounts&) const = default;
};

struct PlanOptions {
  bool ignore_ephemeral = false;
  // The destination session's own identity (world:anyone without credentials, else its
  // digest id). A node created with children to come below it gets this identity with
  // every permission until its exact ACL is set at the end of the run, so an ACL that
  // does not let us create children (read-only, someone else's digest) cannot stop the
  // copy of its subtree.
  ZooKeeperAcl own_identity{zk_perm::kAll, "world", "anyone"};
};

// The writes that make `destination` equal to `source` (both read under the same root,
// with `filter` applied), in the order they must be applied.
struct NodesPlan {
  std::vector<ZooKeeperOp> creates;  // parents before children; exact paths, persistent
  std::vector<ZooKeeperOp> updates;  // kSet of data that differs
  std::vector<ZooKeeperOp> deletes;  // children before parents
  // ACLs set after every other write: nodes whose ACL differs, and nodes created with a
  // provisional ACL (see PlanOptions::own_identity).
  std::vector<std::pair<std::string, std::vector<ZooKeeperAcl>>> acls;
  NodesCounts counts;  // created/updated/deleted/unchanged/skipped/bytes; writes counted on apply
};

// The creates, updates and ACLs for the nodes of `source`, compared with the same paths
// in `destination`: any set of nodes, a whole tree or one depth of it (the run plans level
// by level). Source nodes missing in the destination are created (ephemeral ones as
// persistent, or skipped with ignore_ephemeral; sequential names are kept as they are);
// a created node with children (Znode::children) gets the provisional ACL; nodes whose
// data differs are set; nodes whose ACL differs (as a set) get the source's. Excluded
// paths are never written. `deletes` stays empty. Pure.
NodesPlan PlanWrites(const ZnodeTree& source, const ZnodeTree& destination,
                     const PathFilter& filter, const PlanOptions& options);

// The deletes, children first, of the destination nodes missing in the source: both
// whole trees (data and ACLs are not looked at). With ignore_ephemeral, a destination
// ephemeral node whose parent stays is left alone (counted skipped). Excluded paths are
// never deleted. Only `deletes` and counts.deleted/skipped are filled. Pure.
NodesPlan PlanDeletes(const ZnodeTree& source, const ZnodeTree& destination,
                      const PathFilter& filter, const PlanOptions& options);

// An upper bound of the bytes `op` takes in a multi request on the wire (jute encoding).
std::size_t EncodedSize(const ZooKeeperOp& op);

// Cuts `ops` (kept in order) into transactions of at most `max_operations` ops whose
// encoded size stays below `jute_max_buffer` (request framing included). An op too large
// for any transaction goes alone (the server then refuses it with an error naming it).
std::vector<std::vector<ZooKeeperOp>> SplitIntoTransactions(std::vector<ZooKeeperOp> ops,
                                                            std::size_t jute_max_buffer,
                                                            std::size_t max_operations);

}  // namespace ro::plugins::zookeeper

#include "ro/plugins/zookeeper/nodes_sync.h"

#include <algorithm>
#include <future>
#include <iterator>
#include <optional>
#include <utility>

namespace ro::plugins::zookeeper {
namespace {

// Source paths of one depth read at a time: their creates are sent while the next chunk
// is read, so a wide tree (most znodes at one depth) overlaps its reads and writes too.
// ReadMany keeps about 1,500 paths in flight, so a chunk of 2,000 keeps it busy.
constexpr std::size_t kReadChunk = 2000;

// What applying some ops cost.
struct Applied {
  std::int64_t writes = 0;
  std::int64_t transactions = 0;
};

// Applies `ops` in transactions, in order.
Applied Apply(ZooKeeperClient& client, std::vector<ZooKeeperOp> ops,
              const NodesSyncConfig& config) {
  Applied applied;
  for (std::vector<ZooKeeperOp>& transaction : SplitIntoTransactions(
           std::move(ops), config.jute_max_buffer, config.max_batch_operations)) {
    client.Multi(transaction);
    applied.writes += static_cast<std::int64_t>(transaction.size());
    ++applied.transactions;
  }
  return applied;
}

void Add(NodesCounts& into, const NodesCounts& counts) {
  into.created += counts.created;
  into.updated += counts.updated;
  into.deleted += counts.deleted;
  into.unchanged += counts.unchanged;
  into.skipped += counts.skipped;
  into.bytes += counts.bytes;
  into.writes += counts.writes;
  into.transactions += counts.transactions;
}

void Add(NodesCounts& into, const Applied& applied) {
  into.writes += applied.writes;
  into.transactions += applied.transactions;
}

// Keeps what PlanDeletes needs of a planned depth (paths and modes), not the data.
void Remember(ZnodeTree& tree, ZnodeTree&& level) {
  for (auto& [path, node] : level) {
    tree.emplace(path, Znode{{}, {}, node.ephemeral, node.children});
  }
}

// The creates of one depth, sent while the next depth is read. Each depth waits for the
// previous one (parents first); the first failure is rethrown by Wait/Then.
class CreateStream {
 public:
  CreateStream(ZooKeeperClient& destination, const NodesSyncConfig& config)
      : destination_(destination), config_(config) {}
  ~CreateStream() {
    if (pending_.valid()) pending_.wait();  // never leave a write behind a throw
  }

  // Waits for the previous depth, then starts sending `creates`.
  void Then(std::vector<ZooKeeperOp> creates, NodesCounts& counts) {
    Wait(counts);
    if (creates.empty()) return;
    pending_ = std::async(std::launch::async, [this, ops = std::move(creates)]() mutable {
      return Apply(destination_, std::move(ops), config_);
    });
  }

  // Waits for what was sent; counts it. Throws its ZooKeeperError.
  void Wait(NodesCounts& counts) {
    if (!pending_.valid()) return;
    Add(counts, pending_.get());
  }

 private:
  ZooKeeperClient& destination_;
  const NodesSyncConfig& config_;
  std::future<Applied> pending_;
};

// The top depth read: rootPath must exist in the source, and in the destination unless
// createRootPath (then its missing ancestors are created here, persistent and empty;
// rootPath itself comes with the plan). Throws NodesSyncError, ZooKeeperError.
void CheckRootPath(const TreeLevel& source, const TreeLevel& destination,
                   ZooKeeperClient& destination_client, const NodesSyncConfig& config) {
  const std::string& root = config.root_path;
  if (root == "/") return;  // every server has it
  if (!source.nodes.contains(root)) {
    throw NodesSyncError("rootPath " + root + " does not exist in the source");
  }
  if (destination.nodes.contains(root)) return;
  if (!config.create_root_path) {
    throw NodesSyncError("rootPath " + root +
                         " does not exist in the destination (set createRootPath: true to "
                         "create it)");
  }
  const std::string parent = ParentPath(root);
  if (parent == "/" || destination_client.Exists(parent)) return;
  ZooKeeperCreateOptions options;
  options.create_parents = true;
  try {
    destination_client.Create(parent, "", options);
  } catch (const ZooKeeperError& e) {
    if (e.code() != ZooKeeperError::Code::kNodeExists) throw;
  }
}

}  // namespace

TreeLevel ReadLevel(ZooKeeperClient& client, const std::vector<std::string>& paths,
                    const PathFilter& filter, bool keep_stats) {
  TreeLevel out;
  std::vector<ZooKeeperRead> reads = client.ReadMany(paths, /*with_children=*/true);
  for (std::size_t i = 0; i < paths.size(); ++i) {
    ZooKeeperRead& read = reads[i];
    if (!read.exists) continue;  // gone since its parent listed it
    std::size_t children = 0;
    for (const std::string& name : read.children) {
      std::string child = ChildPath(paths[i], name);
      if (filter.Excluded(child)) {
        ++out.excluded;
      } else {
        out.next.push_back(std::move(child));
        ++children;
      }
    }
    // "/" itself is never copied: every server has it, and its ACL is the server's.
    if (paths[i] != "/") {
      out.nodes.emplace(paths[i], Znode{std::move(read.data), std::move(read.acl),
                                        read.stat.ephemeral_owner != 0, children});
      if (keep_stats) out.stats.emplace(paths[i], read.stat);
    }
  }
  return out;
}

NodesSyncResult SyncNodes(ZooKeeperClient& source, ZooKeeperClient& destination,
                          const NodesSyncConfig& config, const ZooKeeperAcl& destination_identity) {
  const auto started = std::chrono::steady_clock::now();
  const PathFilter filter(config.exclude_path_regexp);
  const std::string& root = config.root_path;
  NodesSyncResult result;

  if (filter.Excluded(root)) {
    // Nothing under it is copied or deleted; the source's root must still exist.
    if (!source.Exists(root)) {
      throw NodesSyncError("rootPath " + root + " does not exist in the source");
    }
    result.counts.skipped = 1;
    result.duration = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
    return result;
  }

  PlanOptions plan_options;
  plan_options.ignore_ephemeral = config.ignore_ephemeral;
  plan_options.own_identity = destination_identity;

  // What changes existing destination znodes waits for both whole trees.
  ZnodeTree source_tree;
  ZnodeTree destination_tree;
  std::vector<ZooKeeperOp> updates;
  std::vector<std::pair<std::string, std::vector<ZooKeeperAcl>>> acls;
  CreateStream creates(destination, config);

  std::vector<std::string> source_paths{root};
  std::vector<std::string> destination_paths{root};
  for (bool top = true; !source_paths.empty() || !destination_paths.empty(); top = false) {
    // The destination's depth on a second thread (two sessions, usually two ensembles)
    // while the source's is read in chunks; each chunk's creates go out while the next
    // chunk is read.
    std::future<TreeLevel> reading_destination = std::async(std::launch::async, [&] {
      return ReadLevel(destination, destination_paths, filter);
    });
    std::optional<TreeLevel> to;
    const auto destination_level = [&]() -> TreeLevel& {
      if (!to) to = reading_destination.get();
      return *to;
    };
    std::vector<std::string> next_source;
    try {
      for (std::size_t begin = 0; begin < source_paths.size(); begin += kReadChunk) {
        const std::vector<std::string> chunk(
            source_paths.begin() + static_cast<std::ptrdiff_t>(begin),
            source_paths.begin() +
                static_cast<std::ptrdiff_t>(std::min(begin + kReadChunk, source_paths.size())));
        TreeLevel from = ReadLevel(source, chunk, filter);
        const TreeLevel& there = destination_level();
        if (top) CheckRootPath(from, there, destination, config);
        NodesPlan plan = PlanWrites(from.nodes, there.nodes, filter, plan_options);
        Add(result.counts, plan.counts);
        result.counts.skipped += from.excluded;
        std::move(plan.updates.begin(), plan.updates.end(), std::back_inserter(updates));
        std::move(plan.acls.begin(), plan.acls.end(), std::back_inserter(acls));
        creates.Then(std::move(plan.creates), result.counts);
        Remember(source_tree, std::move(from.nodes));
        std::move(from.next.begin(), from.next.end(), std::back_inserter(next_source));
      }
      destination_level();
    } catch (...) {
      if (!to) reading_destination.wait();
      throw;
    }
    Remember(destination_tree, std::move(to->nodes));
    source_paths = std::move(next_source);
    destination_paths = std::move(to->next);
  }
  creates.Wait(result.counts);

  // Both trees are complete: now what changes or removes destination znodes.
  Add(result.counts, Apply(destination, std::move(updates), config));
  NodesPlan deletes = PlanDeletes(source_tree, destination_tree, filter, plan_options);
  result.counts.deleted += deletes.counts.deleted;
  result.counts.skipped += deletes.counts.skipped;
  Add(result.counts, Apply(destination, std::move(deletes.deletes), config));
  for (const auto& [path, acl] : acls) {
    destination.SetAcl(path, acl);
    ++result.counts.writes;
  }
  result.duration = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  return result;
}

}  // namespace ro::plugins::zookeeper

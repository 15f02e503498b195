#include "ro/plugins/zookeeper/nodes_sync.h"

#include <future>
#include <utility>

namespace ro::plugins::zookeeper {
namespace {

std::string ChildPath(const std::string& parent, const std::string& name) {
  return parent == "/" ? "/" + name : parent + "/" + name;
}

std::string ParentOf(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  return slash == 0 ? "/" : path.substr(0, slash);
}

// Applies `ops` in transactions, counting what was sent.
void Apply(ZooKeeperClient& client, std::vector<ZooKeeperOp> ops, const NodesSyncConfig& config,
           NodesCounts& counts) {
  for (std::vector<ZooKeeperOp>& transaction : SplitIntoTransactions(
           std::move(ops), config.jute_max_buffer, config.max_batch_operations)) {
    client.Multi(transaction);
    counts.writes += static_cast<std::int64_t>(transaction.size());
    ++counts.transactions;
  }
}

}  // namespace

ReadTreeResult ReadTree(ZooKeeperClient& client, const std::string& root_path,
                        const PathFilter& filter) {
  ReadTreeResult out;
  if (filter.Excluded(root_path)) {
    out.root_exists = client.Exists(root_path).has_value();
    out.excluded = 1;
    return out;
  }
  std::vector<std::string> level{root_path};
  bool first = true;
  while (!level.empty()) {
    std::vector<ZooKeeperRead> reads = client.ReadMany(level, /*with_children=*/true);
    std::vector<std::string> next;
    for (std::size_t i = 0; i < level.size(); ++i) {
      ZooKeeperRead& read = reads[i];
      if (!read.exists) continue;  // gone since its parent listed it
      if (first) out.root_exists = true;
      for (const std::string& name : read.children) {
        std::string child = ChildPath(level[i], name);
        if (filter.Excluded(child)) {
          ++out.excluded;
        } else {
          next.push_back(std::move(child));
        }
      }
      // "/" itself is never copied: every server has it, and its ACL is the server's.
      if (level[i] != "/") {
        out.tree.emplace(std::move(level[i]), Znode{std::move(read.data), std::move(read.acl),
                                                    read.stat.ephemeral_owner != 0});
      }
    }
    first = false;
    level = std::move(next);
  }
  return out;
}

NodesSyncResult SyncNodes(ZooKeeperClient& source, ZooKeeperClient& destination,
                          const NodesSyncConfig& config, const ZooKeeperAcl& destination_identity) {
  const auto started = std::chrono::steady_clock::now();
  const PathFilter filter(config.exclude_path_regexp);

  // Both trees at once: two sessions, usually two ensembles, so the reads overlap. The
  // future's result (or exception) is collected before anything is written.
  std::future<ReadTreeResult> reading_destination = std::async(
      std::launch::async, [&] { return ReadTree(destination, config.root_path, filter); });
  ReadTreeResult from;
  try {
    from = ReadTree(source, config.root_path, filter);
  } catch (...) {
    reading_destination.wait();
    throw;
  }
  ReadTreeResult to = reading_destination.get();
  if (!from.root_exists) {
    throw NodesSyncError("rootPath " + config.root_path + " does not exist in the source");
  }
  if (!to.root_exists && config.root_path != "/") {
    if (!config.create_root_path) {
      throw NodesSyncError("rootPath " + config.root_path +
                           " does not exist in the destination (set createRootPath: true to "
                           "create it)");
    }
    // The ancestors, persistent and empty; rootPath itself comes with the plan.
    const std::string parent = ParentOf(config.root_path);
    if (parent != "/" && !destination.Exists(parent)) {
      ZooKeeperCreateOptions options;
      options.create_parents = true;
      try {
        destination.Create(parent, "", options);
      } catch (const ZooKeeperError& e) {
        if (e.code() != ZooKeeperError::Code::kNodeExists) throw;
      }
    }
  }

  PlanOptions plan_options;
  plan_options.ignore_ephemeral = config.ignore_ephemeral;
  plan_options.own_identity = destination_identity;
  NodesPlan plan = PlanNodes(from.tree, to.tree, filter, plan_options);
  NodesSyncResult result;
  result.counts = plan.counts;
  result.counts.skipped += from.excluded;

  Apply(destination, std::move(plan.creates), config, result.counts);
  Apply(destination, std::move(plan.updates), config, result.counts);
  Apply(destination, std::move(plan.deletes), config, result.counts);
  for (const auto& [path, acl] : plan.acls) {
    destination.SetAcl(path, acl);
    ++result.counts.writes;
  }
  result.duration = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  return result;
}

}  // namespace ro::plugins::zookeeper

#include "ro/plugins/tasks/zookeeper_restore.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "ro/common/digest.h"
#include "ro/kube/clock.h"
#include "ro/plugins/backup/zookeeper_backup.h"
#include "ro/plugins/zookeeper/nodes_plan.h"

namespace ro::plugins::tasks {

namespace {

using nlohmann::json;
namespace zk = plugins::zookeeper;

// `path` (under `from`) moved under `to`. "/" when it is `from` itself and `to` is "/".
std::string MovePath(const std::string& path, const std::string& from, const std::string& to) {
  if (from == to) return path;
  const std::string rest = from == "/" ? path : path.substr(from.size());  // "" or "/x..."
  if (to == "/") return rest.empty() ? "/" : rest;
  return to + rest;
}

// A znode as the dry-run report shows it: the size and SHA-256 of its data, never the
// data (znodes often hold credentials; a TaskRun's status is no place for them), and its
// ACL with digest ids as ZooKeeper shows them to a session without ADMIN ("user:x": the
// rest is a password hash).
json ReportValue(const zk::Znode& node) {
  json acl = json::array();
  for (const ZooKeeperAcl& entry : node.acl) {
    std::string id = entry.id;
    if (entry.scheme == "digest") id = id.substr(0, id.find(':')) + ":x";
    acl.push_back({{"perms", entry.perms}, {"scheme", entry.scheme}, {"id", std::move(id)}});
  }
  return {{"dataBytes", node.data.size()}, {"dataSha256", common::Sha256Hex(node.data)}, {"acl", std::move(acl)}};
}

}  // namespace

ZooKeeperRestorer::ZooKeeperRestorer(RestoreConfig config, ZooKeeperTarget target, log::Logger log,
                                     TransformerOptions options)
    : config_(std::move(config)), target_(std::move(target)), log_(std::move(log)), options_(std::move(options)) {
  if (target_.destination == nullptr || !target_.read_bucket) {
    throw std::invalid_argument("ZooKeeperRestorer: a destination client and a bucket reader are required");
  }
}

TransformationReport ZooKeeperRestorer::Run(std::stop_token stop) {
  TransformationReport report;
  report.dry_run = options_.dry_run;
  report.verb = "restored";
  const json database = {{"name", target_.database_name}};
  const std::string resource(backup::kZnodeResource);

  const json index = ReadBackupIndex(target_.read_bucket, config_.base_path);
  const std::string plugin = index.value("plugin", "");
  if (plugin != backup::kZooKeeperBackupPlugin) {
    throw RestoreError("InvalidBackup", config_.base_path + " holds a backup of plugin " + plugin +
                                            ", not of " + std::string(backup::kZooKeeperBackupPlugin) +
                                            ": restore it with " + std::string(kRestorePlugin));
  }
  const json source = index.value("source", json::object());
  const std::string backup_root = source.is_object() ? source.value("rootPath", "/") : "/";
  if (!zk::RootPathProblem(backup_root).empty()) {
    throw RestoreError("InvalidBackup", config_.base_path + "/index.json: source.rootPath " + backup_root +
                                            " is not an absolute znode path");
  }
  const std::string root = config_.root_path.empty() ? backup_root : config_.root_path;

  // The backup's znodes, read and checked, under their destination paths. Parents come
  // before their children in the index (the backup reads depth by depth).
  zk::ZnodeTree tree;
  std::vector<std::string> order;                // destination paths, in the index's order
  std::set<std::string> failed;                               // destination paths
  std::vector<std::pair<std::string, std::string>> failures;  // path, why; in order
  for (const json& object : index.value("objects", json::array())) {
    if (stop.stop_requested()) return report;
    if (!object.is_object() || object.value("resource", "") != resource) continue;
    const std::string path = object.value("name", "");
    const std::string key = object.value("key", "");
    const bool under_root = backup_root == "/" || path == backup_root || path.starts_with(backup_root + "/");
    if (!zk::RootPathProblem(path).empty() || path == "/" || key.empty() || !under_root) {
      throw RestoreError("InvalidBackup", config_.base_path + "/index.json: object " + object.dump() +
                                              " has no valid znode path under " + backup_root + " or no key");
    }
    const std::string moved = MovePath(path, backup_root, root);
    if (moved == "/") continue;  // the backup of "/" under "/": every server has it
    const auto fail = [&](std::string error) {
      failed.insert(moved);
      failures.emplace_back(moved, std::move(error));
    };
    if (failed.count(zk::ParentPath(moved)) > 0) {
      fail("its parent znode " + zk::ParentPath(moved) + " is not restored");
      continue;
    }
    std::optional<std::string> body;
    try {
      body = ReadBackupFile(target_.read_bucket, config_.base_path + "/" + key, options_, kube::DefaultClock(), stop);
    } catch (const std::exception& e) {
      fail("reading " + key + " from the bucket: " + e.what());
      continue;
    }
    if (!body) {
      fail(key + " is listed in the index but missing from the bucket");
      continue;
    }
    if (const std::string sha = object.value("sha256", ""); !sha.empty() && common::Sha256Hex(*body) != sha) {
      fail(key + " does not match the SHA-256 of the index: changed or damaged in the bucket");
      continue;
    }
    try {
      auto [stored_path, node] = backup::ParseZnodeFile(*body);
      if (stored_path != path) throw std::invalid_argument("it holds znode " + stored_path + ", the index says " + path);
      node.ephemeral = false;  // restored as a persistent znode
      tree.emplace(moved, std::move(node));
      order.push_back(moved);
    } catch (const std::exception& e) {
      fail(key + " is not a znode file: " + e.what());
    }
  }
  for (auto& [path, node] : tree) {
    if (const auto parent = tree.find(zk::ParentPath(path)); parent != tree.end()) ++parent->second.children;
  }

  // The same paths in the destination, and rootPath's ancestors.
  std::vector<std::string> paths(order);
  std::vector<std::string> ancestors;
  for (std::string up = zk::ParentPath(root); root != "/" && up != "/"; up = zk::ParentPath(up)) ancestors.push_back(up);
  paths.insert(paths.end(), ancestors.begin(), ancestors.end());
  const std::vector<ZooKeeperRead> reads = target_.destination->ReadMany(paths, /*with_children=*/false);
  zk::ZnodeTree existing;
  for (std::size_t i = 0; i < order.size(); ++i) {
    if (reads[i].exists) {
      existing.emplace(order[i], zk::Znode{reads[i].data, reads[i].acl, reads[i].stat.ephemeral_owner != 0, 0});
    }
  }
  std::vector<std::string> missing_ancestors;  // top first
  for (std::size_t i = order.size(); i < paths.size(); ++i) {
    if (!reads[i].exists) missing_ancestors.insert(missing_ancestors.begin(), paths[i]);
  }

  zk::PlanOptions plan_options;
  plan_options.own_identity = target_.identity;
  const zk::PathFilter filter("");
  zk::NodesPlan plan = zk::PlanWrites(tree, existing, filter, plan_options);
  const bool update = config_.existing == RestoreConfig::Existing::kUpdate;
  if (!update) {
    plan.updates.clear();
    std::erase_if(plan.acls, [&](const auto& acl) { return existing.count(acl.first) > 0; });
  }

  // What happens to each znode, in the index's order (the report, the counts, the log).
  const auto report_failure = [&](const std::string& path, const std::string& error) {
    log_.Error("error restoring znode", {{"database", database}, {"path", path}, {"error", error}});
    ++report.failed;
    if (report.failures.size() < options_.max_reported_failures) report.failures.push_back({resource + " " + path, error});
    if (options_.dry_run) {
      AddPlannedChange(&report, PlannedChange{resource, "", path, PlannedAction::kFail, "[]", error},
                       options_.max_planned_bytes);
    }
  };
  for (const auto& [path, error] : failures) report_failure(path, error);
  for (const std::string& path : order) {
    const zk::Znode& wanted = tree.at(path);
    PlannedChange change{resource, "", path, PlannedAction::kUnchanged, "[]", ""};
    const auto current = existing.find(path);
    if (current == existing.end()) {
      change.action = PlannedAction::kCreate;
      if (options_.dry_run) change.patch = ChangeBetween(json(nullptr), ReportValue(wanted)).dump();
      ++report.patched;
    } else if (current->second.data == wanted.data && zk::SameAcl(current->second.acl, wanted.acl)) {
      change.action = PlannedAction::kUnchanged;
    } else if (!update) {
      change.action = PlannedAction::kSkip;
      change.message = "exists with other data or ACL; existing: Skip leaves it";
      ++report.skipped;
    } else {
      change.action = PlannedAction::kPatch;
      if (options_.dry_run) change.patch = ChangeBetween(ReportValue(current->second), ReportValue(wanted)).dump();
      ++report.patched;
    }
    if (options_.dry_run) AddPlannedChange(&report, std::move(change), options_.max_planned_bytes);
  }
  if (options_.dry_run || stop.stop_requested()) {
    log_.Info(options_.dry_run ? "dry run: znodes planned" : "restore interrupted",
              {{"database", database}, {"rootPath", root}, {"znodes", order.size()}});
    return report;
  }

  // The writes: rootPath's missing ancestors, creates (parents first), data, ACLs last.
  for (const std::string& ancestor : missing_ancestors) {
    try {
      target_.destination->Create(ancestor, "");
    } catch (const ZooKeeperError& e) {
      if (e.code() != ZooKeeperError::Code::kNodeExists) throw;
    }
  }
  std::int64_t transactions = 0;
  for (std::vector<ZooKeeperOp>& ops : zk::SplitIntoTransactions(std::move(plan.creates), zk::kDefaultJuteMaxBuffer,
                                                                 zk::kDefaultMaxBatchOperations)) {
    target_.destination->Multi(ops);
    ++transactions;
  }
  for (std::vector<ZooKeeperOp>& ops : zk::SplitIntoTransactions(std::move(plan.updates), zk::kDefaultJuteMaxBuffer,
                                                                 zk::kDefaultMaxBatchOperations)) {
    target_.destination->Multi(ops);
    ++transactions;
  }
  for (const auto& [path, acl] : plan.acls) target_.destination->SetAcl(path, acl);
  log_.Info("znodes restored", {{"database", database},
                                {"rootPath", root},
                                {"restored", report.patched},
                                {"skipped", report.skipped},
                                {"failed", report.failed},
                                {"transactions", transactions}});
  return report;
}

}  // namespace ro::plugins::tasks

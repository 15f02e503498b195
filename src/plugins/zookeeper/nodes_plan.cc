#include "ro/plugins/zookeeper/nodes_plan.h"

#include <re2/re2.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "ro/plugins/kubernetes/config_error.h"

namespace ro::plugins::zookeeper {
namespace {

using json = nlohmann::json;
using kubernetes::ConfigError;
using kubernetes::ConfigProblem;
namespace reason = kubernetes::reason;

// ZooKeeper's own subtree: quotas and the dynamic configuration, written by the server.
constexpr std::string_view kSystemRoot = "/zookeeper";

// jute framing of a multi request beyond its ops: the length prefix (4), the request
// header (xid 4, type 4) and the closing multi header (type 4, done 1, err 4), rounded
// up generously: the server counts the packet, not our estimate.
constexpr std::size_t kMultiFraming = 1024;
// Per op: its multi header (type 4, done 1, err 4).
constexpr std::size_t kOpHeader = 9;


std::vector<ZooKeeperAcl> Sorted(std::vector<ZooKeeperAcl> acl) {
  std::sort(acl.begin(), acl.end(), [](const ZooKeeperAcl& a, const ZooKeeperAcl& b) {
    return std::tie(a.scheme, a.id, a.perms) < std::tie(b.scheme, b.id, b.perms);
  });
  return acl;
}

// Digest ids as a session without ADMIN on the node reads them: "user:x".
std::vector<ZooKeeperAcl> Redacted(std::vector<ZooKeeperAcl> acl) {
  for (ZooKeeperAcl& entry : acl) {
    const std::size_t colon = entry.id.find(':');
    if (entry.scheme == "digest" && colon != std::string::npos) entry.id = entry.id.substr(0, colon) + ":x";
  }
  return acl;
}

bool IsRedactedDigest(const ZooKeeperAcl& entry) {
  return entry.scheme == "digest" && entry.id.size() > 2 && entry.id.ends_with(":x");
}

}  // namespace

std::string ParentPath(std::string_view path) {
  const std::size_t slash = path.rfind('/');
  if (slash == 0 || slash == std::string_view::npos) return "/";
  return std::string(path.substr(0, slash));
}

std::string ChildPath(std::string_view parent, std::string_view name) {
  std::string out(parent == "/" ? "" : parent);
  out += '/';
  out += name;
  return out;
}

bool SameAcl(const std::vector<ZooKeeperAcl>& destination, const std::vector<ZooKeeperAcl>& source) {
  if (destination.size() != source.size()) return false;
  if (destination == source || Sorted(destination) == Sorted(source)) return true;
  return std::any_of(destination.begin(), destination.end(), IsRedactedDigest) &&
         Sorted(Redacted(destination)) == Sorted(Redacted(source));
}

std::string RootPathProblem(const std::string& path) {
  if (path.empty() || path.front() != '/') return "must be an absolute path such as /app";
  if (path == "/") return "";
  if (path.back() == '/') return "must not end with '/'";
  if (path.find("//") != std::string::npos) return "must not contain an empty segment (//)";
  for (std::size_t start = 1; start <= path.size();) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    const std::string_view segment(path.data() + start, end - start);
    if (segment == "." || segment == "..") return "must not contain . or .. segments";
    start = end + 1;
  }
  return "";
}

NodesSyncConfig ParseNodesSyncConfig(const json& config) {
  std::vector<ConfigProblem> problems;
  NodesSyncConfig out;
  if (!config.is_object()) {
    throw ConfigError({{"", std::string(reason::kInvalidConfig),
                        "spec.config must be an object with sourceName, destinationName and "
                        "rootPath"}});
  }
  const auto string_field = [&](const char* name, bool required, std::string& into) {
    const auto it = config.find(name);
    if (it == config.end() || it->is_null()) {
      if (required) problems.push_back({name, std::string(reason::kInvalidConfig), "is required"});
      return;
    }
    if (!it->is_string() || (required && it->get<std::string>().empty())) {
      problems.push_back({name, std::string(reason::kInvalidConfig), "must be a non-empty string"});
      return;
    }
    into = it->get<std::string>();
  };
  const auto bool_field = [&](const char* name) -> std::optional<bool> {
    const auto it = config.find(name);
    if (it == config.end() || it->is_null()) return std::nullopt;
    if (!it->is_boolean()) {
      problems.push_back({name, std::string(reason::kInvalidConfig), "must be true or false"});
      return std::nullopt;
    }
    return it->get<bool>();
  };
  const auto size_field = [&](const char* name, std::size_t minimum, std::size_t& into) {
    const auto it = config.find(name);
    if (it == config.end() || it->is_null()) return;
    if (!it->is_number_integer() || it->get<std::int64_t>() < static_cast<std::int64_t>(minimum)) {
      problems.push_back({name, std::string(reason::kInvalidConfig),
                          "must be an integer >= " + std::to_string(minimum)});
      return;
    }
    into = it->get<std::size_t>();
  };

  string_field("sourceName", true, out.source_name);
  string_field("destinationName", true, out.destination_name);
  string_field("rootPath", true, out.root_path);
  if (!out.root_path.empty()) {
    const std::string problem = RootPathProblem(out.root_path);
    if (!problem.empty()) {
      problems.push_back({"rootPath", std::string(reason::kInvalidConfig), problem});
    }
  }
  const std::optional<bool> create_root = bool_field("createRootPath");
  const std::optional<bool> create_route = bool_field("createRoutePath");
  if (create_root && create_route && *create_root != *create_route) {
    problems.push_back({"createRoutePath", std::string(reason::kInvalidConfig),
                        "is the manual's spelling of createRootPath; both are set and disagree"});
  }
  out.create_root_path = create_root.value_or(create_route.value_or(false));
  out.ignore_ephemeral = bool_field("ignoreEphemeral").value_or(false);
  string_field("excludePathRegexp", false, out.exclude_path_regexp);
  if (!out.exclude_path_regexp.empty()) {
    try {
      PathFilter filter(out.exclude_path_regexp);
    } catch (const ConfigError& e) {
      problems.insert(problems.end(), e.problems().begin(), e.problems().end());
    }
  }
  // A transaction must hold the largest znode ZooKeeper allows plus framing, so a limit
  // under 4 KiB is a typo rather than a server setting.
  size_field("juteMaxBuffer", 4096, out.jute_max_buffer);
  size_field("maxBatchOperations", 1, out.max_batch_operations);
  if (!problems.empty()) throw ConfigError(std::move(problems));
  return out;
}

PathFilter::PathFilter(const std::string& regexp) {
  if (regexp.empty()) return;
  RE2::Options options;
  options.set_log_errors(false);
  regexp_ = std::make_unique<re2::RE2>(regexp, options);
  if (!regexp_->ok()) {
    throw ConfigError({{"excludePathRegexp", std::string(reason::kInvalidRegex),
                        "\"" + regexp + "\" is not a valid RE2 regular expression: " +
                            regexp_->error()}});
  }
}
PathFilter::~PathFilter() = default;
PathFilter::PathFilter(PathFilter&&) noexcept = default;
PathFilter& PathFilter::operator=(PathFilter&&) noexcept = default;

bool PathFilter::Excluded(std::string_view path) const {
  // Every ancestor, then the path itself: "/a/b/c" -> "/a", "/a/b", "/a/b/c".
  for (std::size_t end = path.find('/', 1);; end = path.find('/', end + 1)) {
    const std::string_view prefix = path.substr(0, end);
    if (prefix == kSystemRoot) return true;
    if (regexp_ && RE2::PartialMatch(prefix, *regexp_)) return true;
    if (end == std::string_view::npos) return false;
  }
}

NodesPlan PlanWrites(const ZnodeTree& source, const ZnodeTree& destination,
                     const PathFilter& filter, const PlanOptions& options) {
  NodesPlan plan;
  for (const auto& [path, node] : source) {
    if (filter.Excluded(path)) {
      ++plan.counts.skipped;
      continue;
    }
    if (node.ephemeral && options.ignore_ephemeral) {
      ++plan.counts.skipped;
      continue;
    }
    const auto there = destination.find(path);
    if (there == destination.end()) {
      ZooKeeperOp op;
      op.kind = ZooKeeperOp::Kind::kCreate;
      op.path = path;
      op.data = node.data;
      op.acl = node.acl;
      plan.counts.bytes += static_cast<std::int64_t>(node.data.size());
      ++plan.counts.created;
      // Children to come below it: our identity too, until the end of the run.
      if (node.children > 0) {
        std::vector<ZooKeeperAcl> exact = op.acl.empty() ? OpenAcl() : op.acl;
        const bool we_may_all =
            std::any_of(exact.begin(), exact.end(), [&](const ZooKeeperAcl& a) {
              return (a.perms & zk_perm::kAll) == zk_perm::kAll &&
                     ((a.scheme == "world" && a.id == "anyone") ||
                      (a.scheme == options.own_identity.scheme &&
                       a.id == options.own_identity.id));
            });
        if (!we_may_all) {
          op.acl = exact;
          op.acl.push_back(options.own_identity);
          plan.acls.emplace_back(op.path, std::move(exact));
        }
      }
      plan.creates.push_back(std::move(op));
      continue;
    }
    bool changed = false;
    if (there->second.data != node.data) {
      ZooKeeperOp op;
      op.kind = ZooKeeperOp::Kind::kSet;
      op.path = path;
      op.data = node.data;
      plan.counts.bytes += static_cast<std::int64_t>(node.data.size());
      plan.updates.push_back(std::move(op));
      changed = true;
    }
    if (!SameAcl(there->second.acl, node.acl)) {
      plan.acls.emplace_back(path, node.acl.empty() ? OpenAcl() : node.acl);
      changed = true;
    }
    ++(changed ? plan.counts.updated : plan.counts.unchanged);
  }
  return plan;
}

NodesPlan PlanDeletes(const ZnodeTree& source, const ZnodeTree& destination,
                      const PathFilter& filter, const PlanOptions& options) {
  NodesPlan plan;
  const auto deleted = [&](const std::string& path) {
    return destination.contains(path) && !source.contains(path) && !filter.Excluded(path);
  };
  // Children first: reverse order visits "/a/b" before "/a".
  for (auto it = destination.rbegin(); it != destination.rend(); ++it) {
    const std::string& path = it->first;
    if (!deleted(path)) continue;
    if (it->second.ephemeral && options.ignore_ephemeral && !deleted(ParentPath(path))) {
      ++plan.counts.skipped;
      continue;
    }
    ZooKeeperOp op;
    op.kind = ZooKeeperOp::Kind::kDelete;
    op.path = path;
    ++plan.counts.deleted;
    plan.deletes.push_back(std::move(op));
  }
  return plan;
}

std::size_t EncodedSize(const ZooKeeperOp& op) {
  // Strings and buffers: int32 length + bytes.
  std::size_t size = kOpHeader + 4 + op.path.size();
  switch (op.kind) {
    case ZooKeeperOp::Kind::kCreate: {
      size += 4 + op.data.size() + 4 /*acl count*/ + 4 /*flags*/;
      const std::vector<ZooKeeperAcl> acl = op.acl.empty() ? OpenAcl() : op.acl;
      for (const ZooKeeperAcl& entry : acl) {
        size += 4 /*perms*/ + 4 + entry.scheme.size() + 4 + entry.id.size();
      }
      break;
    }
    case ZooKeeperOp::Kind::kSet:
      size += 4 + op.data.size() + 4 /*version*/;
      break;
    case ZooKeeperOp::Kind::kDelete:
      size += 4 /*version*/;
      break;
  }
  return size;
}

std::vector<std::vector<ZooKeeperOp>> SplitIntoTransactions(std::vector<ZooKeeperOp> ops,
                                                            std::size_t jute_max_buffer,
                                                            std::size_t max_operations) {
  const std::size_t budget =
      jute_max_buffer > kMultiFraming ? jute_max_buffer - kMultiFraming : 0;
  max_operations = std::max<std::size_t>(max_operations, 1);
  std::vector<std::vector<ZooKeeperOp>> out;
  std::vector<ZooKeeperOp> current;
  std::size_t current_bytes = 0;
  for (ZooKeeperOp& op : ops) {
    const std::size_t size = EncodedSize(op);
    if (!current.empty() &&
        (current.size() >= max_operations || current_bytes + size > budget)) {
      out.push_back(std::move(current));
      current.clear();
      current_bytes = 0;
    }
    current_bytes += size;
    current.push_back(std::move(op));
  }
  if (!current.empty()) out.push_back(std::move(current));
  return out;
}

}  // namespace ro::plugins::zookeeper

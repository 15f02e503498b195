#include "ro/plugins/backup/zookeeper_backup.h"

#include <algorithm>
#include <utility>

#include <nlohmann/json.hpp>

#include "../kubernetes/config_reader.h"
#include "backup_config.h"
#include "backup_retries.h"
#include "ro/common/base64.h"
#include "ro/common/digest.h"
#include "ro/common/time.h"
#include "ro/plugins/kubernetes/config_error.h"
#include "ro/plugins/zookeeper/nodes_sync.h"

namespace ro::plugins::backup {

namespace {

using nlohmann::json;
using kubernetes::ConfigError;
using kubernetes::ConfigProblem;
using kubernetes::internal::AddProblem;
using kubernetes::internal::Field;
using kubernetes::internal::Member;
using kubernetes::internal::RequiredString;
using kubernetes::internal::TypedMember;
namespace reason = kubernetes::reason;
using internal::Side;
using internal::WithRetries;
using Problems = std::vector<ConfigProblem>;

std::string Rfc3339Millis(std::int64_t unix_ms) {
  return common::FormatRfc3339(std::chrono::system_clock::time_point(std::chrono::milliseconds(unix_ms)));
}

}  // namespace

std::string BackupPluginOf(const json& backup) {
  if (!backup.is_object()) return "";
  const json spec = backup.value("spec", json::object());
  if (!spec.is_object()) return "";
  const auto plugin = spec.find("plugin");
  return plugin != spec.end() && plugin->is_string() ? plugin->get<std::string>() : "";
}

ZooKeeperBackupConfig ParseZooKeeperBackup(const json& backup) {
  Problems problems;
  ZooKeeperBackupConfig out;
  const json* spec = internal::BackupSpec(backup, kZooKeeperBackupPlugin, &problems);
  if (spec == nullptr) throw ConfigError(std::move(problems));
  const std::string base = "spec.config";
  const json* config = TypedMember(*spec, "config", json::value_t::object, "an object", base, &problems);
  if (config == nullptr && Member(*spec, "config") == nullptr) {
    AddProblem(&problems, base, reason::kInvalidConfig, "required");
  }
  if (config != nullptr) {
    const std::string source_field = Field(base, "source");
    const json* source = TypedMember(*config, "source", json::value_t::object, "an object", source_field, &problems);
    if (source == nullptr && Member(*config, "source") == nullptr) {
      AddProblem(&problems, source_field, reason::kInvalidConfig, "required");
    }
    if (source != nullptr) {
      const std::string database_field = Field(source_field, "database");
      const json* database =
          TypedMember(*source, "database", json::value_t::object, "an object", database_field, &problems);
      if (database == nullptr && Member(*source, "database") == nullptr) {
        AddProblem(&problems, database_field, reason::kInvalidConfig, "required: {name, rootPath}");
      }
      if (database != nullptr) {
        out.database_name = RequiredString(*database, "name", Field(database_field, "name"), "the Database", &problems);
        const std::string root_field = Field(database_field, "rootPath");
        if (const json* root = TypedMember(*database, "rootPath", json::value_t::string, "a string", root_field,
                                           &problems)) {
          out.root_path = root->get<std::string>();
          if (const std::string problem = zookeeper::RootPathProblem(out.root_path); !problem.empty()) {
            AddProblem(&problems, root_field, reason::kInvalidConfig, problem);
          }
        }
        const std::string exclude_field = Field(database_field, "excludePathRegexp");
        if (const json* exclude = TypedMember(*database, "excludePathRegexp", json::value_t::string, "a string",
                                              exclude_field, &problems)) {
          out.exclude_path_regexp = exclude->get<std::string>();
          try {
            zookeeper::PathFilter check(out.exclude_path_regexp);
          } catch (const ConfigError& e) {
            AddProblem(&problems, exclude_field, reason::kInvalidConfig, e.what());
          }
        }
        if (const json* ephemeral = TypedMember(*database, "ignoreEphemeral", json::value_t::boolean, "true or false",
                                                Field(database_field, "ignoreEphemeral"), &problems)) {
          out.ignore_ephemeral = ephemeral->get<bool>();
        }
      }
      if (Member(*source, "kubernetesCluster") != nullptr) {
        AddProblem(&problems, Field(source_field, "kubernetesCluster"), reason::kInvalidConfig,
                   std::string(kZooKeeperBackupPlugin) + " backs up a database; use " +
                       std::string(kKubernetesBackupPlugin) + " for a kubernetesCluster");
      }
    }
    internal::ParseBucketDestination(backup, *config, &problems, &out.bucket_name, &out.base_path);
  } else {
    std::string ignored;
    internal::ParseBucketDestination(backup, json::object(), nullptr, &ignored, &out.base_path);
  }
  if (!problems.empty()) throw ConfigError(std::move(problems));
  return out;
}

std::string ZnodeKey(std::string_view path) { return "znodes" + std::string(path); }

std::string ZnodeFileJson(std::string_view path, const zookeeper::Znode& node, const ZooKeeperStat* stat) {
  json acl = json::array();
  for (const ZooKeeperAcl& entry : node.acl) {
    acl.push_back({{"perms", entry.perms}, {"scheme", entry.scheme}, {"id", entry.id}});
  }
  json out = {{"path", path}, {"data", common::EncodeBase64(node.data)}, {"acl", std::move(acl)},
              {"ephemeral", node.ephemeral}};
  if (stat != nullptr) {
    out["ctime"] = Rfc3339Millis(stat->ctime_ms);
    out["mtime"] = Rfc3339Millis(stat->mtime_ms);
    out["version"] = stat->version;
  }
  return out.dump();
}

std::pair<std::string, zookeeper::Znode> ParseZnodeFile(std::string_view body) {
  const json file = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!file.is_object()) throw std::invalid_argument("not a JSON object");
  const auto path = file.find("path");
  if (path == file.end() || !path->is_string() || !zookeeper::RootPathProblem(path->get<std::string>()).empty() ||
      *path == "/") {
    throw std::invalid_argument("path: missing or not an absolute znode path");
  }
  zookeeper::Znode node;
  const auto data = file.find("data");
  if (data == file.end() || !data->is_string()) throw std::invalid_argument("data: missing or not a string");
  try {
    node.data = common::DecodeBase64(data->get<std::string>());
  } catch (const std::exception& e) {
    throw std::invalid_argument(std::string("data: not base64: ") + e.what());
  }
  const auto acl = file.find("acl");
  if (acl == file.end() || !acl->is_array() || acl->empty()) throw std::invalid_argument("acl: missing or empty");
  for (const json& entry : *acl) {
    if (!entry.is_object() || !entry.value("perms", json()).is_number_integer() ||
        !entry.value("scheme", json()).is_string() || !entry.value("id", json()).is_string()) {
      throw std::invalid_argument("acl: entries need perms (integer), scheme and id (strings)");
    }
    node.acl.push_back({entry["perms"].get<std::int32_t>(), entry["scheme"].get<std::string>(),
                        entry["id"].get<std::string>()});
  }
  const auto ephemeral = file.find("ephemeral");
  node.ephemeral = ephemeral != file.end() && ephemeral->is_boolean() && ephemeral->get<bool>();
  return {path->get<std::string>(), std::move(node)};
}

ZooKeeperBackup::ZooKeeperBackup(ZooKeeperBackupConfig config, ZooKeeperClient& source, ObjectWriter write,
                                 log::Logger log, ZooKeeperBackupOptions options)
    : config_(std::move(config)),
      source_(source),
      write_(std::move(write)),
      log_(std::move(log)),
      options_(options) {}

BackupResult ZooKeeperBackup::Run(const BackupIdentity& identity, std::stop_token stop) {
  const auto started = std::chrono::steady_clock::now();
  BackupResult result;
  const zookeeper::PathFilter filter(config_.exclude_path_regexp);
  const std::string database = "Database " + identity.database_name;
  const std::string& root = config_.root_path;

  const auto put = [&](const std::string& relative, const std::string& body) {
    WithRetries([&] { write_(config_.base_path + "/" + relative, body); return 0; }, options_, Side::kBucket,
                "writing " + config_.base_path + "/" + relative + " to the bucket", stop);
  };

  const bool root_exists = WithRetries([&] { return source_.Exists(root).has_value(); }, options_, Side::kSource,
                                       "reading " + root + " of " + database, stop);
  if (!root_exists) {
    throw BackupError("RootPathNotFound",
                      "rootPath " + root + " (spec.config.source.database.rootPath) does not exist in " + database,
                      false);
  }
  std::int64_t skipped = 0;
  std::vector<std::string> paths;
  if (!filter.Excluded(root)) paths.push_back(root);
  while (!paths.empty()) {
    std::vector<std::string> next;
    for (std::size_t begin = 0; begin < paths.size(); begin += options_.read_chunk) {
      if (stop.stop_requested()) return result;
      const std::vector<std::string> chunk(
          paths.begin() + static_cast<std::ptrdiff_t>(begin),
          paths.begin() + static_cast<std::ptrdiff_t>(std::min(paths.size(), begin + options_.read_chunk)));
      zookeeper::TreeLevel level = WithRetries(
          [&] { return zookeeper::ReadLevel(source_, chunk, filter, /*keep_stats=*/true); }, options_,
          Side::kSource, "reading " + std::to_string(chunk.size()) + " znodes under " + root + " of " + database,
          stop);
      skipped += level.excluded;
      for (auto& [path, node] : level.nodes) {
        if (node.ephemeral && config_.ignore_ephemeral) {
          ++skipped;
          continue;
        }
        const std::string body = ZnodeFileJson(path, node, &level.stats.at(path));
        const std::string key = ZnodeKey(path);
        put(key, body);
        result.entries.push_back({key, std::string(kZnodeResource), "", path, common::Sha256Hex(body),
                                  static_cast<std::int64_t>(body.size())});
        result.bytes += static_cast<std::int64_t>(body.size());
        ++result.by_resource[std::string(kZnodeResource)];
      }
      next.insert(next.end(), std::make_move_iterator(level.next.begin()), std::make_move_iterator(level.next.end()));
    }
    paths = std::move(next);
  }
  log_.Info("tree backed up", {{"database", {{"name", identity.database_name}}},
                               {"rootPath", root},
                               {"znodes", result.entries.size()},
                               {"skipped", skipped}});
  if (stop.stop_requested()) return result;
  result.duration = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  put(std::string(kIndexKey), BackupIndexJson(identity, result, std::chrono::system_clock::now()));
  return result;
}

}  // namespace ro::plugins::backup

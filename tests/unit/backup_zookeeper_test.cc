// The zookeeper-nodes-to-bucket Backup plugin's pure parts
// (ro/plugins/backup/zookeeper_backup.h): the config, the znode file and its key, the
// index; and the zookeeper-nodes-from-backup Task's config (task_spec.h).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>

#include "ro/plugins/backup/zookeeper_backup.h"
#include "ro/plugins/kubernetes/config_error.h"
#include "ro/plugins/tasks/task_spec.h"

namespace ro::plugins::backup {
namespace {

using nlohmann::json;

json Backup(json config, std::string plugin = "zookeeper-nodes-to-bucket") {
  return {{"metadata", {{"name", "nightly"}, {"namespace", "dr"}}},
          {"spec", {{"plugin", plugin}, {"config", std::move(config)}}}};
}

const json kConfig = json::parse(R"({
  "source": {"database": {"name": "zookeeper-1", "rootPath": "/app", "excludePathRegexp": "^/app/tmp",
                          "ignoreEphemeral": true}},
  "destination": {"bucket": {"name": "backups", "basePath": "zk/"}}})");

template <typename Parse>
std::string Problems(Parse parse, const json& object) {
  try {
    parse(object);
  } catch (const kubernetes::ConfigError& e) {
    std::string out;
    for (const auto& p : e.problems()) out += (out.empty() ? "" : ", ") + p.field;
    return out;
  }
  return "accepted";
}

std::string BackupProblems(const json& backup) { return Problems(ParseZooKeeperBackup, backup); }

TEST(ZooKeeperBackupTest, ConfigNamesDatabaseRootFilterAndBucket) {
  EXPECT_EQ(BackupPluginOf(Backup(kConfig)), "zookeeper-nodes-to-bucket");
  const ZooKeeperBackupConfig config = ParseZooKeeperBackup(Backup(kConfig));
  EXPECT_EQ(config.database_name, "zookeeper-1");
  EXPECT_EQ(config.root_path, "/app");
  EXPECT_EQ(config.exclude_path_regexp, "^/app/tmp");
  EXPECT_TRUE(config.ignore_ephemeral);
  EXPECT_EQ(config.bucket_name, "backups");
  EXPECT_EQ(config.base_path, "zk");
  json defaults = json::parse(R"({"source": {"database": {"name": "zookeeper-1"}},
                                  "destination": {"bucket": {"name": "backups"}}})");
  const ZooKeeperBackupConfig whole = ParseZooKeeperBackup(Backup(defaults));
  EXPECT_EQ(whole.root_path, "/");
  EXPECT_FALSE(whole.ignore_ephemeral);
  EXPECT_EQ(whole.base_path, "dr/nightly");
}

TEST(ZooKeeperBackupTest, BadConfigNamesEachField) {
  EXPECT_EQ(BackupProblems(Backup(kConfig, "kubernetes-objects-to-bucket")), "spec.plugin");
  EXPECT_EQ(BackupProblems(Backup(json::object())), "spec.config.source, spec.config.destination");
  json bad = kConfig;
  bad["source"]["database"]["name"] = "";
  bad["source"]["database"]["rootPath"] = "app/";
  bad["source"]["database"]["excludePathRegexp"] = "(";
  bad["source"]["database"]["ignoreEphemeral"] = "yes";
  bad["source"]["kubernetesCluster"] = {{"name", "cluster-1"}};
  EXPECT_EQ(BackupProblems(Backup(bad)),
            "spec.config.source.database.name, spec.config.source.database.rootPath, "
            "spec.config.source.database.excludePathRegexp, spec.config.source.database.ignoreEphemeral, "
            "spec.config.source.kubernetesCluster");
  // The Kubernetes plugin names this one for a database.
  json database = kConfig;
  try {
    ParseKubernetesBackup(Backup(database, "kubernetes-objects-to-bucket"));
    FAIL() << "accepted";
  } catch (const kubernetes::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("zookeeper-nodes-to-bucket"), std::string::npos) << e.what();
  }
}

TEST(ZooKeeperBackupTest, AZnodeFileKeepsBinaryDataAndTheAclAndReadsBack) {
  EXPECT_EQ(ZnodeKey("/app/config"), "znodes/app/config");
  zookeeper::Znode node;
  node.data = std::string("\x00\xff{bin}", 7);
  node.acl = {{zk_perm::kRead, "world", "anyone"}, {zk_perm::kAll, "digest", "admin:x+y/z="}};
  node.ephemeral = true;
  ZooKeeperStat stat;
  stat.ctime_ms = 1'765'000'000'000;
  stat.mtime_ms = 1'765'000'001'500;
  stat.version = 4;
  const std::string body = ZnodeFileJson("/app/config", node, &stat);
  const json file = json::parse(body);
  EXPECT_EQ(file["version"], 4);
  EXPECT_EQ(file["mtime"], "2025-12-06T05:46:41Z");
  const auto [path, back] = ParseZnodeFile(body);
  EXPECT_EQ(path, "/app/config");
  EXPECT_EQ(back.data, node.data);
  EXPECT_EQ(back.acl, node.acl);
  EXPECT_TRUE(back.ephemeral);
  for (const char* broken : {R"([])", R"({"path": "app", "data": "", "acl": [{"perms": 31, "scheme": "world", "id": "anyone"}]})",
                             R"({"path": "/a", "data": "!!", "acl": [{"perms": 31, "scheme": "world", "id": "anyone"}]})",
                             R"({"path": "/a", "data": "", "acl": []})", R"(not json)"}) {
    EXPECT_THROW(ParseZnodeFile(broken), std::invalid_argument) << broken;
  }
}

TEST(ZooKeeperBackupTest, TheIndexNamesTheDatabaseAndTheRootPath) {
  BackupIdentity identity;
  identity.ns = "dr";
  identity.name = "nightly";
  identity.database_name = "zookeeper-1";
  identity.database_servers = {"zk-0:2181", "zk-1:2181"};
  identity.root_path = "/app";
  BackupResult result;
  result.entries.push_back({"znodes/app", "zookeeper/znodes", "", "/app", "ab", 10});
  result.by_resource["zookeeper/znodes"] = 1;
  result.bytes = 10;
  const json index = json::parse(BackupIndexJson(identity, result, std::chrono::system_clock::now()));
  EXPECT_EQ(index["plugin"], "zookeeper-nodes-to-bucket");
  EXPECT_EQ(index["source"], json::parse(R"({"database": {"name": "zookeeper-1", "servers": ["zk-0:2181", "zk-1:2181"]},
                                             "rootPath": "/app"})"));
  EXPECT_EQ(index["objects"][0]["name"], "/app");
  EXPECT_FALSE(index["objects"][0].contains("namespace"));
}

json Task(json config) {
  return {{"metadata", {{"name", "restore-zk"}, {"namespace", "dr"}}},
          {"spec", {{"plugin", "zookeeper-nodes-from-backup"}, {"config", std::move(config)}}}};
}

TEST(ZooKeeperRestoreTaskTest, ConfigNeedsTheDatabaseAndTakesARootPath) {
  const tasks::TaskSpec spec = tasks::ParseTask(Task(json::parse(
      R"({"bucketName": "backups", "basePath": "/zk/", "destinationName": "zookeeper-2", "rootPath": "/copy",
          "existing": "Update"})")));
  EXPECT_EQ(spec.plugin, "zookeeper-nodes-from-backup");
  EXPECT_EQ(spec.restore().base_path, "zk");
  EXPECT_EQ(spec.restore().destination_name, "zookeeper-2");
  EXPECT_EQ(spec.restore().root_path, "/copy");
  EXPECT_EQ(spec.restore().existing, tasks::RestoreConfig::Existing::kUpdate);
  EXPECT_EQ(Problems(tasks::ParseTask, Task(json::parse(
                R"({"bucketName": "backups", "basePath": "zk", "rootPath": "copy", "namespaceSuffix": "-x"})"))),
            "spec.config.destinationName, spec.config.rootPath, spec.config.namespaceSuffix");
}

}  // namespace
}  // namespace ro::plugins::backup

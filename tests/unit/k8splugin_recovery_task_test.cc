// BuildRecoveryTask: the kubernetes-objects-transformation Task generated from the
// recoveryProcess settings (manual 8.2).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "ro/plugins/kubernetes/recovery_task.h"

namespace ro::plugins::kubernetes {
namespace {

using nlohmann::json;

TEST(BuildRecoveryTask, IncludesOnlyEntriesWhoseRecoveryDoesSomething) {
  const LiveSyncConfig config = ParseLiveSyncConfig(json::parse(R"({
    "sourceName": "source", "destinationName": "destination", "bucketName": "bucket-dev",
    "replication": {"resources": [
      {"group": "apps", "version": "v1", "resource": "deployments",
       "filters": {"selector": {"matchLabels": {"tier": "web"}},
                   "nameSelector": {"excludeRegex": ["-test$"]}},
       "recoveryProcess": {"fromPatch": [{"op": "remove", "path": "/spec/paused"}],
                           "patchOptions": {"skipIfNotFoundOnDelete": true}}},
      {"version": "v1", "resource": "services"},
      {"version": "v1", "resource": "configmaps", "recoveryProcess": {}},
      {"group": "batch", "version": "v1", "resource": "cronjobs",
       "recoveryProcess": {"fromOriginal": {"enabled": true}}}
    ]}})"));
  EXPECT_TRUE(HasRecoveryProcess(config));
  const json task = BuildRecoveryTask(config, "dr-config", "pre");
  EXPECT_EQ(task["metadata"]["name"], "pre");
  EXPECT_EQ(task["metadata"]["namespace"], "dr-config");
  EXPECT_EQ(task["spec"]["plugin"], "kubernetes-objects-transformation");
  EXPECT_EQ(task["spec"]["config"], json::parse(R"({
    "sourceName": "source", "destinationName": "destination", "bucketName": "bucket-dev",
    "resources": [
      {"identifier": {"group": "apps", "version": "v1", "resources": "deployments"},
       "patch": {"operations": [{"op": "remove", "path": "/spec/paused"}],
                 "patchOptions": {"skipIfNotFoundOnDelete": true}},
       "filter": {"selector": {"matchLabels": {"tier": "web"}},
                  "nameSelector": {"excludeRegex": ["-test$"]}}},
      {"identifier": {"group": "batch", "version": "v1", "resources": "cronjobs"},
       "fromOriginal": {"enabled": true}}
    ]})"))
      << task.dump(2);
}

TEST(BuildRecoveryTask, WithoutRecoveryProcessesTheResourcesAreEmpty) {
  const LiveSyncConfig config = ParseLiveSyncConfig(json::parse(R"({"sourceName": "a",
    "destinationName": "b", "replication": {"resources": [{"version": "v1", "resource": "secrets"}]}})"));
  EXPECT_FALSE(HasRecoveryProcess(config));
  const json task = BuildRecoveryTask(config, "ns", "ls");
  EXPECT_EQ(task["spec"]["config"]["resources"], json::array());
  EXPECT_FALSE(task["spec"]["config"].contains("bucketName"));
}

}  // namespace
}  // namespace ro::plugins::kubernetes

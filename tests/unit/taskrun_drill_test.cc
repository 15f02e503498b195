// The objects of a DR drill (src/controllers/taskrun/drill.h): what `roctl drill run`
// creates from a recovery Task, and the Tasks it refuses.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>

#include "taskrun/drill.h"

namespace ro::controllers {
namespace {

using nlohmann::json;

const json kRecovery = json::parse(R"({"metadata": {"name": "recover", "namespace": "dr"},
  "spec": {"plugin": "kubernetes-objects-transformation",
    "config": {"destinationName": "cluster-2", "bucketName": "originals", "resources": [
      {"identifier": {"group": "apps", "version": "v1", "resources": "deployments"},
       "patch": {"operations": [{"op": "replace", "path": "/spec/replicas", "value": 1}]},
       "fromOriginal": {"enabled": true},
       "filter": {"namespaceSelector": {"matchLabels": {"sync": "true"}}, "selector": {"matchLabels": {"tier": "web"}}}},
      {"identifier": {"version": "v1", "resources": "services"},
       "fromOriginal": {"enabled": true},
       "filter": {"namespaceSelector": {"matchLabels": {"sync": "true"}}}}]}}})");

TEST(DrillTest, BackupRestoreAndRecoveryOfACopySelectedByTheDrillLabel) {
  const DrillObjects drill = RenderDrill(kRecovery, "d1", "", "-drill");
  EXPECT_EQ(drill.backup["spec"]["config"], json::parse(R"({
    "source": {"kubernetesCluster": {"name": "cluster-2", "namespaceSelector": {"matchLabels": {"sync": "true"}}}},
    "destination": {"bucket": {"name": "originals", "basePath": "drills/dr/d1"}}})"));
  EXPECT_EQ(drill.backup["metadata"]["labels"]["automation.astronetes.io/drill"], "d1");
  const json& restore = drill.restore_task["spec"];
  EXPECT_EQ(restore["plugin"], "kubernetes-objects-from-backup");
  EXPECT_EQ(restore["config"]["namespaceSuffix"], "-drill");
  EXPECT_EQ(restore["config"]["namespaceLabels"], json({{"automation.astronetes.io/drill", "d1"}}));
  EXPECT_EQ(drill.restore_run["spec"]["taskName"], "d1-restore");
  const json& resources = drill.recovery_task["spec"]["config"]["resources"];
  ASSERT_EQ(resources.size(), 1u) << "the services entry only restores originals: left out";
  EXPECT_EQ(resources[0]["filter"]["namespaceSelector"],
            json::parse(R"({"matchLabels": {"automation.astronetes.io/drill": "d1"}})"));
  EXPECT_EQ(resources[0]["filter"]["selector"], json::parse(R"({"matchLabels": {"tier": "web"}})"));
  EXPECT_FALSE(resources[0].contains("fromOriginal"));
  EXPECT_FALSE(drill.recovery_task["spec"]["config"].contains("bucketName"));
  EXPECT_EQ(drill.recovery_run["spec"]["taskName"], "d1-recovery");
  EXPECT_EQ(drill.notes.size(), 3u);
}

TEST(DrillTest, TasksThatCannotBeDrilledSayWhy) {
  json local = kRecovery;
  local["spec"]["config"].erase("destinationName");
  EXPECT_THROW(RenderDrill(local, "d", "", "-drill"), std::invalid_argument);
  json no_bucket = kRecovery;
  no_bucket["spec"]["config"].erase("bucketName");
  EXPECT_THROW(RenderDrill(no_bucket, "d", "", "-drill"), std::invalid_argument);
  EXPECT_NO_THROW(RenderDrill(no_bucket, "d", "backups", "-drill"));
  json mixed = kRecovery;
  mixed["spec"]["config"]["resources"][1]["filter"]["namespaceSelector"]["matchLabels"]["sync"] = "other";
  EXPECT_THROW(RenderDrill(mixed, "d", "", "-drill"), std::invalid_argument);
  json image = kRecovery;
  image["spec"]["plugin"] = "custom-image";
  EXPECT_THROW(RenderDrill(image, "d", "", "-drill"), std::invalid_argument);
}

}  // namespace
}  // namespace ro::controllers

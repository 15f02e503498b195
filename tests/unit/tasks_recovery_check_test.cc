// The decision that a transformation run which completed did nothing useful
// (docs/automation.md "A run that changes nothing is not a plain success"): pure, on the
// Task's config, the run's report and the LiveSynchronization's status.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <optional>
#include <string>

#include "ro/plugins/tasks/recovery_check.h"

namespace ro::plugins::tasks {
namespace {

using nlohmann::json;

const kube::GroupVersionResource kDeployments{"apps", "v1", "deployments"};
const kube::GroupVersionResource kStatefulSets{"apps", "v1", "statefulsets"};

TransformationResource Resource(std::size_t index, kube::GroupVersionResource gvr, const json& filter) {
  TransformationResource r;
  r.index = index;
  r.gvr = std::move(gvr);
  r.filter = kubernetes::ObjectFilter::FromJson(filter);
  return r;
}

// The generated Task of tutorial 8.2: deployments of the namespaces labelled sync=true.
TransformationConfig Generated() {
  TransformationConfig config;
  config.destination_name = "cluster-2";
  config.resources = {Resource(0, kDeployments, json::parse(R"({"namespaceSelector": {"matchLabels": {"sync": "true"}}})"))};
  config.live_synchronization = kube::ObjectKey{"dr", "livesync"};
  return config;
}

ResourceReport Counts(std::size_t index, kube::GroupVersionResource gvr, int64_t objects, int64_t selected,
                      int64_t patched, std::optional<int64_t> namespaces = std::nullopt) {
  ResourceReport r;
  r.index = index;
  r.gvr = std::move(gvr);
  r.listed = true;
  r.objects = objects;
  r.selected = selected;
  r.patched = patched;
  r.namespaces_selected = namespaces;
  return r;
}

TransformationReport Report(std::vector<ResourceReport> resources) {
  TransformationReport report;
  for (const ResourceReport& r : resources) report.patched += r.patched;
  report.resources = std::move(resources);
  return report;
}

TEST(RecoveryCheckTest, ANamespaceSelectorMatchingNoNamespaceIsNothingRecovered) {
  const TransformationReport report = Report({Counts(0, kDeployments, 3, 0, 0, 0)});
  const std::optional<RecoveryWarning> warning = CheckRecovery(Generated(), report, "cluster-2", nullptr);
  ASSERT_TRUE(warning);
  EXPECT_EQ(warning->reason, "NothingRecovered");
  EXPECT_EQ(warning->message,
            "Nothing recovered in cluster-2: resources[0] (apps/v1/deployments): namespace selector sync=true "
            "matches no namespace in cluster-2");
}

TEST(RecoveryCheckTest, EachEntryThatSelectedNothingSaysWhy) {
  TransformationConfig config = Generated();
  config.resources.push_back(Resource(1, kStatefulSets, json::parse(R"({"selector": {"matchLabels": {"app": "db"}}})")));
  config.resources.push_back(Resource(2, kDeployments, json::parse(R"({"nameSelector": {"regex": ["^web$"]}})")));
  const TransformationReport report = Report({Counts(0, kDeployments, 4, 0, 0, 2),
                                              Counts(1, kStatefulSets, 0, 0, 0),
                                              Counts(2, kDeployments, 4, 0, 0)});
  const std::optional<RecoveryWarning> warning = CheckRecovery(config, report, "", nullptr);
  ASSERT_TRUE(warning);
  EXPECT_EQ(warning->reason, "NothingRecovered");
  EXPECT_EQ(warning->message,
            "Nothing recovered in the cluster the operator runs in: "
            "resources[0] (apps/v1/deployments): none of the 4 apps/v1/deployments in the cluster the operator runs "
            "in is in the 2 namespaces selected by namespace selector sync=true; "
            "resources[1] (apps/v1/statefulsets): no apps/v1/statefulsets with labels app=db in the cluster the "
            "operator runs in; "
            "resources[2] (apps/v1/deployments): none of the 4 apps/v1/deployments in the cluster the operator runs "
            "in is selected by name selector {\"regex\":[\"^web$\"]}");
}

TEST(RecoveryCheckTest, SelectedObjectsDeletedDuringTheRunAreNamed) {
  TransformationReport report = Report({Counts(0, kDeployments, 1, 1, 0, 1)});
  report.gone = 1;
  const std::optional<RecoveryWarning> warning = CheckRecovery(Generated(), report, "cluster-2", nullptr);
  ASSERT_TRUE(warning);
  EXPECT_EQ(warning->message,
            "Nothing recovered in cluster-2: resources[0] (apps/v1/deployments): the 1 selected object was deleted "
            "during the run");
}

TEST(RecoveryCheckTest, ARunThatChangedSomethingOrFailedHasNoWarning) {
  EXPECT_FALSE(CheckRecovery(Generated(), Report({Counts(0, kDeployments, 3, 2, 2, 1)}), "cluster-2", nullptr));
  // An entry of a Task with several that selected nothing is not a warning by itself.
  TransformationConfig config = Generated();
  config.resources.push_back(Resource(1, kStatefulSets, json::object()));
  EXPECT_FALSE(CheckRecovery(config, Report({Counts(0, kDeployments, 3, 2, 2, 1), Counts(1, kStatefulSets, 0, 0, 0)}),
                             "cluster-2", nullptr));
  // Failures have their own reason (ObjectsFailed, DestinationError).
  TransformationReport failed = Report({Counts(0, kDeployments, 3, 3, 0, 1)});
  failed.failed = 3;
  EXPECT_FALSE(CheckRecovery(Generated(), failed, "cluster-2", nullptr));
  TransformationReport unserved;
  unserved.resource_errors = {"resources[0] (apps/v1/deployments): not served by the destination cluster"};
  EXPECT_FALSE(CheckRecovery(Generated(), unserved, "cluster-2", nullptr));
}

TEST(RecoveryCheckTest, ATaskWithoutResourcesRecoversNothing) {
  TransformationConfig config;
  const std::optional<RecoveryWarning> warning = CheckRecovery(config, TransformationReport{}, "cluster-2", nullptr);
  ASSERT_TRUE(warning);
  EXPECT_EQ(warning->message, "Nothing recovered in cluster-2: the Task has no resources");
}

json LiveSync(const json& status_resources) {
  return {{"metadata", {{"namespace", "dr"}, {"name", "livesync"}}},
          {"spec",
           {{"config",
             {{"replication",
               {{"resources", json::parse(R"([
                  {"group": "apps", "version": "v1", "resource": "deployments",
                   "recoveryProcess": {"fromPatch": [{"op": "replace", "path": "/spec/replicas", "value": 1}]}},
                  {"version": "v1", "resource": "secrets"},
                  {"group": "apps", "version": "v1", "resource": "statefulsets"},
                  {"group": "apps", "version": "v1", "resource": "statefulsets",
                   "recoveryProcess": {"fromPatch": [{"op": "replace", "path": "/spec/replicas", "value": 1}]}}])")}}}}}}},
          {"status", {{"resources", status_resources}}}};
}

TEST(RecoveryCheckTest, ReplicatedCountsAreKeptForResourcesTheTaskRecoversInFull) {
  TransformationConfig config = Generated();
  config.resources.push_back(Resource(1, kStatefulSets, json::object()));
  const std::optional<ReplicatedObjects> replicated = ReplicatedObjectsOf(LiveSync(json::parse(R"([
      {"group": "apps", "version": "v1", "resource": "deployments", "objects": 3},
      {"group": "", "version": "v1", "resource": "secrets", "objects": 5},
      {"group": "apps", "version": "v1", "resource": "statefulsets", "objects": 4}])")),
                                                                    config);
  ASSERT_TRUE(replicated);
  EXPECT_EQ(replicated->live_synchronization, "dr/livesync");
  // secrets: not in the Task; statefulsets: one of the two entries has no recovery.
  EXPECT_EQ(replicated->objects, (std::map<kube::GroupVersionResource, int64_t>{{kDeployments, 3}}));
  EXPECT_FALSE(ReplicatedObjectsOf(json{{"metadata", {{"name", "x"}}}}, config)) << "no status yet";
}

TEST(RecoveryCheckTest, FewerObjectsThanReplicatedIsAWarningNamingTheResourceAndBothCounts) {
  ReplicatedObjects replicated{"dr/livesync", {{kDeployments, 3}}};
  const TransformationReport report = Report({Counts(0, kDeployments, 5, 1, 1, 1)});
  const std::optional<RecoveryWarning> warning = CheckRecovery(Generated(), report, "cluster-2", &replicated);
  ASSERT_TRUE(warning);
  EXPECT_EQ(warning->reason, "FewerObjectsRecovered");
  EXPECT_EQ(warning->message,
            "Fewer objects recovered than replicated: apps/v1/deployments: 1 recovered, but LiveSynchronization "
            "dr/livesync reports 3 replicated");
  // As many (or more: objects created in the standby since) is fine.
  EXPECT_FALSE(CheckRecovery(Generated(), Report({Counts(0, kDeployments, 5, 3, 3, 1)}), "cluster-2", &replicated));
  // Nothing recovered at all: NothingRecovered, with the comparison too.
  const std::optional<RecoveryWarning> nothing =
      CheckRecovery(Generated(), Report({Counts(0, kDeployments, 3, 0, 0, 0)}), "cluster-2", &replicated);
  ASSERT_TRUE(nothing);
  EXPECT_EQ(nothing->reason, "NothingRecovered");
  EXPECT_NE(nothing->message.find("; apps/v1/deployments: 0 recovered, but LiveSynchronization dr/livesync reports "
                                  "3 replicated"),
            std::string::npos)
      << nothing->message;
}

}  // namespace
}  // namespace ro::plugins::tasks

// ParseTask: the manual's Task samples (7.2.1.3, 8.2) parse as documented, the Task the
// LiveSynchronization controller generates (recovery_task.h) parses, and bad specs are
// rejected with every problem named by field.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>

#include "ro/plugins/kubernetes/live_sync_config.h"
#include "ro/plugins/kubernetes/recovery_task.h"
#include "ro/plugins/tasks/task_spec.h"

namespace ro::plugins::tasks {
namespace {

using kubernetes::ConfigError;
using kubernetes::ConfigProblem;
using nlohmann::json;

json Task(json spec, json metadata = {{"name", "t"}, {"namespace", "dr"}}) {
  return {{"apiVersion", "automation.astronetes.io/v1alpha1"},
          {"kind", "Task"},
          {"metadata", std::move(metadata)},
          {"spec", std::move(spec)}};
}

// The problems ParseTask reports for `task`; fails the test when it accepts it.
std::vector<ConfigProblem> Problems(const json& task) {
  try {
    ParseTask(task);
  } catch (const ConfigError& e) {
    return e.problems();
  }
  ADD_FAILURE() << "expected a ConfigError for " << task.dump();
  return {};
}

// "field: reason" of every problem, for one-line assertions.
std::string Fields(const std::vector<ConfigProblem>& problems) {
  std::string out;
  for (const ConfigProblem& p : problems) out += (out.empty() ? "" : ", ") + p.field + ": " + p.reason;
  return out;
}

// Manual 8.2 "Understanding the TaskRun", exactly as printed.
const json kGeneratedTaskSpec = json::parse(R"({
  "plugin": "kubernetes-objects-transformation",
  "config": {"resources": [{
    "identifier": {"group": "apps", "version": "v1", "resources": "deployments"},
    "patch": {"operations": [{"op": "replace", "path": "/spec/replicas", "value": 1}]},
    "filter": {"namespaceSelector": {"matchLabels": {"sync": "true"}}}}]}
})");

TEST(TaskSpecTest, ManualBashSampleRunsBusyboxEcho) {
  const TaskSpec spec = ParseTask(Task(json::parse(R"({"plugin": "custom-image",
      "config": {"image": "busybox", "command": ["echo", "hello world"]}})")));
  EXPECT_EQ(spec.plugin, kCustomImagePlugin);
  EXPECT_EQ(spec.restart_policy, RestartPolicy::kNever);
  EXPECT_EQ(spec.custom_image().image, "busybox");
  EXPECT_EQ(spec.custom_image().command, (std::vector<std::string>{"echo", "hello world"}));
  EXPECT_FALSE(spec.custom_image().cluster_role);
}

TEST(TaskSpecTest, ManualKubectlSampleBindsClusterAdmin) {
  const TaskSpec spec = ParseTask(Task(json::parse(R"({"plugin": "custom-image",
      "restartPolicy": "OnFailure",
      "config": {"image": "bitnami/kubectl:1.27", "command": ["kubectl", "cluster-info"],
                 "clusterRole": "cluster-admin"}})")));
  EXPECT_EQ(spec.restart_policy, RestartPolicy::kOnFailure);
  EXPECT_EQ(spec.custom_image().cluster_role, "cluster-admin");
}

TEST(TaskSpecTest, ManualGeneratedTaskPatchesDeploymentsOfTheLocalCluster) {
  const TaskSpec spec = ParseTask(Task(kGeneratedTaskSpec));
  const TransformationConfig& config = spec.transformation();
  EXPECT_EQ(config.destination_name, "");  // the cluster the operator runs in
  ASSERT_EQ(config.resources.size(), 1u);
  const TransformationResource& r = config.resources[0];
  EXPECT_EQ(r.gvr, (kube::GroupVersionResource{"apps", "v1", "deployments"}));
  EXPECT_EQ(r.patch.size(), 1u);
  EXPECT_FALSE(r.from_original);
  json labels = {{"sync", "true"}};
  const json deployment = {{"metadata", {{"name", "web"}, {"namespace", "a"}}}};
  EXPECT_TRUE(r.filter.Matches(deployment, &labels));
  labels = {{"sync", "false"}};
  EXPECT_FALSE(r.filter.Matches(deployment, &labels));
  EXPECT_FALSE(config.UsesOriginals());
}

TEST(TaskSpecTest, TheTaskTheLiveSynchronizationControllerGeneratesParses) {
  const kubernetes::LiveSyncConfig ls = kubernetes::ParseLiveSyncConfig(json::parse(R"({
    "sourceName": "cluster-1", "destinationName": "cluster-2", "bucketName": "originals",
    "replication": {"resources": [
      {"group": "apps", "version": "v1", "resource": "deployments",
       "filters": {"namespaceSelector": {"matchLabels": {"sync": "true"}},
                   "nameSelector": {"excludeRegex": ["^skip-"]}},
       "transformation": {"patch": [{"op": "replace", "path": "/spec/replicas", "value": 0}]},
       "recoveryProcess": {"fromPatch": [{"op": "replace", "path": "/spec/replicas", "value": 1}],
                           "patchOptions": {"skipIfNotFoundOnDelete": true}}},
      {"group": "", "version": "v1", "resource": "configmaps",
       "recoveryProcess": {"fromOriginal": {"enabled": true}}}]}})"));
  const TaskSpec spec = ParseTask(kubernetes::BuildRecoveryTask(ls, "dr", "active-passive"));
  const TransformationConfig& config = spec.transformation();
  EXPECT_EQ(config.source_name, "cluster-1");
  EXPECT_EQ(config.destination_name, "cluster-2");
  EXPECT_EQ(config.bucket_name, "originals");
  ASSERT_EQ(config.resources.size(), 2u);
  EXPECT_TRUE(config.resources[0].patch_options.skip_if_not_found_on_delete);
  EXPECT_TRUE(config.resources[0].filter.MatchesName("web"));
  EXPECT_FALSE(config.resources[0].filter.MatchesName("skip-me"));
  EXPECT_TRUE(config.resources[1].from_original);
  EXPECT_TRUE(config.resources[1].patch.empty());
  ASSERT_TRUE(config.live_synchronization);
  EXPECT_EQ(config.live_synchronization->ToString(), "dr/active-passive");
}

TEST(TaskSpecTest, CustomImageWithoutImageOrCommandNamesBothFields) {
  EXPECT_EQ(Fields(Problems(Task({{"plugin", "custom-image"}, {"config", json::object()}}))),
            "spec.config.image: InvalidConfig, spec.config.command: InvalidConfig");
  EXPECT_EQ(Fields(Problems(Task({{"plugin", "custom-image"},
                                  {"config", {{"image", ""}, {"command", json::array()}}}}))),
            "spec.config.image: InvalidConfig, spec.config.command: InvalidConfig");
  EXPECT_EQ(Fields(Problems(Task({{"plugin", "custom-image"},
                                  {"config", {{"image", "busybox"}, {"command", {"echo", 3}}}}}))),
            "spec.config.command[1]: InvalidConfig");
}

TEST(TaskSpecTest, InvalidPatchPathIsReportedWithItsField) {
  json spec = kGeneratedTaskSpec;
  spec["config"]["resources"][0]["patch"]["operations"][0]["path"] = "spec/replicas";
  const std::vector<ConfigProblem> problems = Problems(Task(spec));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].field, "spec.config.resources[0].patch.operations[0].path");
  EXPECT_EQ(problems[0].reason, "InvalidPatch");
}

TEST(TaskSpecTest, DeleteIsASynonymOfRemove) {
  json spec = kGeneratedTaskSpec;
  spec["config"]["resources"][0]["patch"]["operations"][0] = {{"op", "delete"},
                                                             {"path", "/spec/strategy"}};
  const TaskSpec parsed = ParseTask(Task(spec));
  EXPECT_EQ(parsed.transformation().resources[0].patch.op(0), kubernetes::PatchOp::kRemove);
}

TEST(TaskSpecTest, UnknownPatchOperationIsReportedWithItsField) {
  json spec = kGeneratedTaskSpec;
  spec["config"]["resources"][0]["patch"]["operations"][0] = {{"op", "erase"},
                                                             {"path", "/spec/strategy"}};
  EXPECT_EQ(Fields(Problems(Task(spec))), "spec.config.resources[0].patch.operations[0].op: InvalidPatch");
}

TEST(TaskSpecTest, InvalidRegexAndSelectorAreReported) {
  json spec = kGeneratedTaskSpec;
  spec["config"]["resources"][0]["filter"] = json::parse(R"({
    "nameSelector": {"regex": ["*.test"]},
    "selector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}})");
  const std::string fields = Fields(Problems(Task(spec)));
  EXPECT_NE(fields.find("spec.config.resources[0].filter.nameSelector.regex[0]: InvalidRegex"),
            std::string::npos)
      << fields;
  EXPECT_NE(fields.find("InvalidSelector"), std::string::npos) << fields;
}

TEST(TaskSpecTest, IdentifierNeedsVersionAndPluralResource) {
  json spec = kGeneratedTaskSpec;
  spec["config"]["resources"][0]["identifier"] = {{"group", "apps"}, {"resources", "Deployment"}};
  EXPECT_EQ(Fields(Problems(Task(spec))),
            "spec.config.resources[0].identifier.version: InvalidConfig, "
            "spec.config.resources[0].identifier.resources: InvalidConfig");
}

TEST(TaskSpecTest, AResourceThatChangesNothingIsRejected) {
  json spec = kGeneratedTaskSpec;
  spec["config"]["resources"][0].erase("patch");
  EXPECT_EQ(Fields(Problems(Task(spec))), "spec.config.resources[0]: InvalidConfig");
}

TEST(TaskSpecTest, FromOriginalNeedsBucketAndLiveSynchronization) {
  json spec = kGeneratedTaskSpec;
  spec["config"]["resources"][0]["fromOriginal"] = {{"enabled", true}};
  const std::vector<ConfigProblem> problems = Problems(Task(spec));
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_EQ(problems[0].field, "spec.config.resources[0].fromOriginal.enabled");
  EXPECT_NE(problems[0].message.find("bucketName"), std::string::npos);
  EXPECT_NE(problems[1].message.find("kubesync.astronetes.io/live-synchronization"),
            std::string::npos);

  spec["config"]["bucketName"] = "originals";
  const json annotated =
      Task(spec, {{"name", "t"},
                  {"namespace", "dr"},
                  {"annotations", {{"kubesync.astronetes.io/live-synchronization", "dr/pre"}}}});
  EXPECT_EQ(ParseTask(annotated).transformation().live_synchronization->ToString(), "dr/pre");
}

TEST(TaskSpecTest, ATaskWithoutOriginalsStillNamesItsLiveSynchronization) {
  // The recovery compares what it changed with what the LiveSynchronization replicated.
  const json annotated = Task(kGeneratedTaskSpec, {{"name", "t"},
                                                   {"namespace", "dr"},
                                                   {"annotations", {{"kubesync.astronetes.io/live-synchronization", "dr/pre"}}}});
  EXPECT_EQ(ParseTask(annotated).transformation().live_synchronization->ToString(), "dr/pre");
  EXPECT_FALSE(ParseTask(Task(kGeneratedTaskSpec)).transformation().live_synchronization);
}

TEST(TaskSpecTest, LiveSynchronizationComesFromAnnotationThenOwnerReference) {
  const json owned = {{"metadata",
                       {{"name", "t"},
                        {"namespace", "dr"},
                        {"ownerReferences",
                         {{{"apiVersion", "apps/v1"}, {"kind", "LiveSynchronization"}, {"name", "x"}},
                          {{"apiVersion", "automation.astronetes.io/v1alpha1"},
                           {"kind", "LiveSynchronization"},
                           {"name", "pre"}}}}}}};
  EXPECT_EQ(LiveSynchronizationOf(owned)->ToString(), "dr/pre");
  json annotated = owned;
  annotated["metadata"]["annotations"] = {{"kubesync.astronetes.io/live-synchronization", "other/ls"}};
  EXPECT_EQ(LiveSynchronizationOf(annotated)->ToString(), "other/ls");
  annotated["metadata"]["annotations"]["kubesync.astronetes.io/live-synchronization"] = "no-slash";
  EXPECT_FALSE(LiveSynchronizationOf(annotated));
  EXPECT_FALSE(LiveSynchronizationOf(json{{"metadata", {{"name", "t"}}}}));
}

TEST(TaskSpecTest, UnknownPluginAndRestartPolicyAreRejected) {
  EXPECT_EQ(Fields(Problems(Task({{"plugin", "shell"}, {"restartPolicy", "Always"},
                                  {"config", json::object()}}))),
            "spec.restartPolicy: InvalidConfig, spec.plugin: InvalidConfig");
  EXPECT_EQ(Fields(Problems(json{{"metadata", {{"name", "t"}}}})), "spec: InvalidConfig");
}

TEST(TaskSpecTest, AnEmptyResourceListIsAValidTaskThatChangesNothing) {
  const TaskSpec spec = ParseTask(Task({{"plugin", "kubernetes-objects-transformation"},
                                        {"config", {{"resources", json::array()}}}}));
  EXPECT_TRUE(spec.transformation().resources.empty());
  EXPECT_EQ(Fields(Problems(Task({{"plugin", "kubernetes-objects-transformation"},
                                  {"config", json::object()}}))),
            "spec.config.resources: InvalidConfig");
}

TEST(TaskSpecTest, OrderDefaultsToDependenciesAndAcceptsAsListed) {
  json spec = kGeneratedTaskSpec;
  EXPECT_EQ(ParseTask(Task(spec)).transformation().order, ResourceOrder::kDependencies);
  spec["config"]["order"] = "AsListed";
  EXPECT_EQ(ParseTask(Task(spec)).transformation().order, ResourceOrder::kAsListed);
  spec["config"]["order"] = "Random";
  EXPECT_EQ(Fields(Problems(Task(spec))), "spec.config.order: InvalidConfig");
}

TEST(TaskSpecTest, ARestoreFromABackupNamesItsBucketAndBasePath) {
  const TaskSpec spec = ParseTask(Task(json::parse(R"({"plugin": "kubernetes-objects-from-backup",
    "config": {"bucketName": "backups", "basePath": "/dr/app/", "destinationName": "cluster-2",
               "namespaces": ["app"], "namespaceMapping": {"app": "app-drill"}, "namespaceLabels": {"drill": "true"},
               "existing": "Update", "order": "AsListed"}})")));
  const RestoreConfig& config = spec.restore();
  EXPECT_EQ(config.bucket_name, "backups");
  EXPECT_EQ(config.base_path, "dr/app");
  EXPECT_EQ(config.destination_name, "cluster-2");
  EXPECT_EQ(config.namespaces, (std::vector<std::string>{"app"}));
  EXPECT_EQ(config.MapNamespace("app"), "app-drill");
  EXPECT_EQ(config.MapNamespace("other"), "other");
  EXPECT_EQ(config.namespace_labels, (std::vector<std::pair<std::string, std::string>>{{"drill", "true"}}));
  EXPECT_EQ(config.existing, RestoreConfig::Existing::kUpdate);
  EXPECT_EQ(config.order, ResourceOrder::kAsListed);
  EXPECT_EQ(Fields(Problems(Task(json::parse(R"({"plugin": "kubernetes-objects-from-backup",
    "config": {"namespaceMapping": {"a": 1}, "existing": "Overwrite"}})")))),
            "spec.config.bucketName: InvalidConfig, spec.config.basePath: InvalidConfig, "
            "spec.config.namespaceMapping.a: InvalidConfig, spec.config.existing: InvalidConfig");
}

}  // namespace
}  // namespace ro::plugins::tasks

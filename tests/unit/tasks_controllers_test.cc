// The Task controller's decision (Ready reasons of docs/automation.md, with lookups
// injected) and the TaskRun status it writes (phase, Ready, times, counts). The real
// controllers run in tests/e2e/tasks_*_test.cc.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <string>

#include "ro/common/time.h"
#include "task/task_controller.h"
#include "taskrun/run_status.h"

namespace ro::controllers {
namespace {

using nlohmann::json;
using runtime::ConditionStatus;
using runtime::Observation;

json Task(json spec) {
  return {{"apiVersion", "automation.astronetes.io/v1alpha1"},
          {"kind", "Task"},
          {"metadata", {{"name", "t"}, {"namespace", "dr"}, {"generation", 2}}},
          {"spec", std::move(spec)}};
}

const json kCustomImage = json::parse(R"({"plugin": "custom-image",
  "config": {"image": "bitnami/kubectl:1.27", "command": ["kubectl", "cluster-info"],
             "clusterRole": "cluster-admin"}})");

const json kTransformation = json::parse(R"({"plugin": "kubernetes-objects-transformation",
  "config": {"destinationName": "cluster-2", "bucketName": "originals",
    "resources": [{"identifier": {"group": "apps", "version": "v1", "resources": "deployments"},
                   "fromOriginal": {"enabled": true}}]}})");

json WithLiveSync(json task) {
  task["metadata"]["annotations"] = {{"kubesync.astronetes.io/live-synchronization", "dr/pre"}};
  return task;
}

TaskLookups Everything(bool exists) {
  TaskLookups lookups;
  lookups.cluster_exists = [exists](const std::string&, const std::string&) { return exists; };
  lookups.bucket_exists = [exists](const std::string&, const std::string&) { return exists; };
  lookups.cluster_role_exists = [exists](const std::string&) { return exists; };
  lookups.database_exists = [exists](const std::string&, const std::string&) { return exists; };
  return lookups;
}

TaskOptions Options() {
  TaskOptions options;
  options.recheck_interval = std::chrono::seconds{7};
  return options;
}

// The two restore plugins name their destination (a KubernetesCluster, or a Database).
TEST(TaskObserveTest, RestoresNeedTheirDestinationAndBucket) {
  const json kubernetes = json::parse(R"({"plugin": "kubernetes-objects-from-backup",
    "config": {"bucketName": "backups", "basePath": "dr/app", "destinationName": "cluster-2"}})");
  const json zookeeper = json::parse(R"({"plugin": "zookeeper-nodes-from-backup",
    "config": {"bucketName": "backups", "basePath": "zk", "destinationName": "zookeeper-2", "rootPath": "/copy"}})");
  Observation o = ObserveTask(Task(kubernetes), Everything(true), Options());
  EXPECT_EQ(o.status, ConditionStatus::kTrue);
  EXPECT_EQ(o.message, "Each TaskRun restores the backup at dr/app of Bucket dr/backups into KubernetesCluster dr/cluster-2");
  o = ObserveTask(Task(zookeeper), Everything(true), Options());
  EXPECT_EQ(o.status, ConditionStatus::kTrue);
  EXPECT_EQ(o.message,
            "Each TaskRun restores the znodes of the backup at zk of Bucket dr/backups into Database dr/zookeeper-2 "
            "under /copy");
  o = ObserveTask(Task(zookeeper), Everything(false), Options());
  EXPECT_EQ(o.reason, "DatabaseNotFound");
  EXPECT_EQ(o.message, "spec.config.destinationName: Database dr/zookeeper-2 does not exist");
  o = ObserveTask(Task(kubernetes), Everything(false), Options());
  EXPECT_EQ(o.reason, "ClusterNotFound");
}

TEST(TaskObserveTest, ValidCustomImageReportsPluginAndRechecksItsClusterRole) {
  const Observation o = ObserveTask(Task(kCustomImage), Everything(true), Options());
  EXPECT_EQ(o.status, ConditionStatus::kTrue);
  EXPECT_EQ(o.reason, "Valid");
  EXPECT_EQ(o.fields.at("plugin"), "custom-image");
  EXPECT_NE(o.message.find("cluster-admin"), std::string::npos) << o.message;
  EXPECT_EQ(o.recheck_after, std::chrono::seconds{7});
}

TEST(TaskObserveTest, MissingClusterRoleIsClusterRoleNotFound) {
  const Observation o = ObserveTask(Task(kCustomImage), Everything(false), Options());
  EXPECT_EQ(o.status, ConditionStatus::kFalse);
  EXPECT_EQ(o.reason, "ClusterRoleNotFound");
  EXPECT_NE(o.message.find("spec.config.clusterRole"), std::string::npos) << o.message;
}

TEST(TaskObserveTest, TransformationChecksClusterThenBucket) {
  TaskLookups lookups = Everything(true);
  lookups.cluster_exists = [](const std::string& ns, const std::string& name) {
    EXPECT_EQ(ns, "dr");
    EXPECT_EQ(name, "cluster-2");
    return false;
  };
  Observation o = ObserveTask(WithLiveSync(Task(kTransformation)), lookups, Options());
  EXPECT_EQ(o.reason, "ClusterNotFound");
  EXPECT_EQ(o.recheck_after, std::chrono::milliseconds{0});  // clusters are watched

  lookups = Everything(true);
  lookups.bucket_exists = [](const std::string&, const std::string&) { return false; };
  o = ObserveTask(WithLiveSync(Task(kTransformation)), lookups, Options());
  EXPECT_EQ(o.reason, "BucketNotFound");

  o = ObserveTask(WithLiveSync(Task(kTransformation)), Everything(true), Options());
  EXPECT_EQ(o.status, ConditionStatus::kTrue);
  EXPECT_EQ(o.fields.at("plugin"), "kubernetes-objects-transformation");
  EXPECT_NE(o.message.find("LiveSynchronization dr/pre"), std::string::npos) << o.message;
}

TEST(TaskObserveTest, TheManualsGeneratedTaskActsOnTheLocalClusterWithoutLookups) {
  const json spec = json::parse(R"({"plugin": "kubernetes-objects-transformation",
    "config": {"resources": [{"identifier": {"group": "apps", "version": "v1", "resources": "deployments"},
      "patch": {"operations": [{"op": "replace", "path": "/spec/replicas", "value": 1}]},
      "filter": {"namespaceSelector": {"matchLabels": {"sync": "true"}}}}]}})");
  const Observation o = ObserveTask(Task(spec), Everything(false), Options());
  EXPECT_EQ(o.status, ConditionStatus::kTrue);
  EXPECT_NE(o.message.find("the cluster the operator runs in"), std::string::npos) << o.message;
}

TEST(TaskObserveTest, InvalidSpecShowsTheFirstProblemsReasonAndClearsPlugin) {
  json spec = kTransformation;
  spec["config"]["resources"][0]["patch"] = {
      {"operations", {{{"op", "replace"}, {"path", "spec/replicas"}, {"value", 1}}}}};
  const Observation o = ObserveTask(WithLiveSync(Task(spec)), Everything(true), Options());
  EXPECT_EQ(o.status, ConditionStatus::kFalse);
  EXPECT_EQ(o.reason, "InvalidPatch");
  EXPECT_NE(o.message.find("spec.config.resources[0].patch.operations[0].path"), std::string::npos)
      << o.message;
  EXPECT_EQ(o.fields.at("plugin"), std::nullopt);
}

TEST(TaskObserveTest, ReferencedNamesMapAssetsBackToTasks) {
  EXPECT_EQ(TaskClusterNames(Task(kTransformation)), std::vector<std::string>{"cluster-2"});
  EXPECT_EQ(TaskBucketNames(Task(kTransformation)), std::vector<std::string>{"originals"});
  EXPECT_EQ(TaskClusterNames(Task(kCustomImage)), std::vector<std::string>{""});
}

// --- TaskRun status ---------------------------------------------------------------------

json TaskRun(json status = nullptr) {
  json run = {{"metadata", {{"name", "r"}, {"namespace", "dr"}, {"generation", 1}}},
              {"spec", {{"taskName", "t"}}}};
  if (!status.is_null()) run["status"] = std::move(status);
  return run;
}

const auto kT0 = common::ParseRfc3339("2024-05-01T10:00:00Z");
const auto kT1 = common::ParseRfc3339("2024-05-01T10:00:30Z");

json ConditionOf(const json& status, const std::string& type) {
  for (const json& c : status["conditions"]) {
    if (c["type"] == type) return c;
  }
  return nullptr;
}

json ReadyOf(const json& status) { return ConditionOf(status, "Ready"); }

TEST(TaskRunStatusTest, PhasesMapToReadyAndSetTimesOnce) {
  RunUpdate pending;
  pending.phase = RunPhase::kPending;
  pending.reason = "TaskNotFound";
  pending.message = "Task dr/t does not exist";
  json status = DesiredRunStatus(TaskRun(), pending, kT0);
  EXPECT_EQ(status["phase"], "Pending");
  EXPECT_EQ(ReadyOf(status)["status"], "False");
  EXPECT_EQ(ReadyOf(status)["reason"], "TaskNotFound");
  EXPECT_FALSE(status.contains("startTime"));

  RunUpdate running;
  running.phase = RunPhase::kRunning;
  running.message = "Pod p created";
  running.pod_name = "p";
  status = DesiredRunStatus(TaskRun(status), running, kT0);
  EXPECT_EQ(status["startTime"], "2024-05-01T10:00:00Z");
  EXPECT_EQ(status["podName"], "p");
  EXPECT_EQ(ReadyOf(status)["status"], "Unknown");
  EXPECT_EQ(ReadyOf(status)["reason"], "Running");
  EXPECT_EQ(status["observedGeneration"], 1);

  RunUpdate done;
  done.phase = RunPhase::kSucceeded;
  done.message = "2 objects patched";
  done.objects_patched = 2;
  done.objects_failed = 0;
  status = DesiredRunStatus(TaskRun(status), done, kT1);
  EXPECT_EQ(status["phase"], "Succeeded");
  EXPECT_EQ(status["startTime"], "2024-05-01T10:00:00Z");  // kept
  EXPECT_EQ(status["completionTime"], "2024-05-01T10:00:30Z");
  EXPECT_EQ(status["podName"], "p");  // kept
  EXPECT_EQ(status["objectsPatched"], 2);
  EXPECT_EQ(status["objectsFailed"], 0);
  EXPECT_EQ(ReadyOf(status)["status"], "True");
  EXPECT_EQ(ReadyOf(status)["reason"], "Succeeded");
  EXPECT_EQ(PhaseOf(TaskRun(status)), RunPhase::kSucceeded);
  EXPECT_TRUE(IsFinished(PhaseOf(TaskRun(status))));
}

TEST(TaskRunStatusTest, FailureWithoutAReasonSaysFailed) {
  RunUpdate failed;
  failed.phase = RunPhase::kFailed;
  const json status = DesiredRunStatus(TaskRun(), failed, kT0);
  EXPECT_EQ(ReadyOf(status)["reason"], "Failed");
  EXPECT_EQ(status["completionTime"], "2024-05-01T10:00:00Z");
  EXPECT_FALSE(status.contains("startTime"));  // it never started
  EXPECT_EQ(PhaseOf(TaskRun()), RunPhase::kNone);
  EXPECT_EQ(PhaseOf(TaskRun({{"phase", "Bogus"}})), RunPhase::kNone);
}

TEST(TaskRunStatusTest, ASuccessThatDidNothingCarriesTheWarning) {
  RunUpdate done;
  done.phase = RunPhase::kSucceeded;
  done.reason = "NothingRecovered";
  done.message = "0 objects patched. Nothing recovered in cluster-2: ...";
  done.warning = "Nothing recovered in cluster-2: ...";
  done.objects_patched = 0;
  const json status = DesiredRunStatus(TaskRun(), done, kT0);
  EXPECT_EQ(status["phase"], "Succeeded");
  EXPECT_EQ(status["objectsPatched"], 0);
  EXPECT_EQ(ReadyOf(status)["status"], "True");
  EXPECT_EQ(ReadyOf(status)["reason"], "NothingRecovered");
  const json warning = ConditionOf(status, "Warning");
  ASSERT_TRUE(warning.is_object()) << status.dump();
  EXPECT_EQ(warning["status"], "True");
  EXPECT_EQ(warning["reason"], "NothingRecovered");
  EXPECT_EQ(warning["message"], "Nothing recovered in cluster-2: ...");

  // Without a warning there is no Warning condition.
  done.reason.clear();
  done.warning.clear();
  const json plain = DesiredRunStatus(TaskRun(status), done, kT1);
  EXPECT_EQ(ReadyOf(plain)["reason"], "Succeeded");
  EXPECT_TRUE(ConditionOf(plain, "Warning").is_null()) << plain.dump();
}

}  // namespace
}  // namespace ro::controllers

// The LiveSynchronization controller's decisions without servers: what stops a
// LiveSynchronization from running (plugin, configuration, the one-per-namespace rule,
// its assets), the Bucket's connection settings, the status it shows and the recovery
// Task it keeps (manual 8.2).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "livesynchronization/livesync_references.h"
#include "livesynchronization/livesync_status.h"
#include "livesynchronization/recovery_task_sync.h"
#include "ro/common/time.h"
#include "ro/plugins/kubernetes/control_metadata.h"
#include "ro/plugins/kubernetes/live_sync_config.h"

namespace {

using nlohmann::json;
namespace livesync = ro::controllers::livesync;
namespace pk = ro::plugins::kubernetes;
using ro::kube::ObjectPtr;

json LiveSync(const std::string& name, const std::string& created, json config) {
  return {{"apiVersion", "automation.astronetes.io/v1alpha1"},
          {"kind", "LiveSynchronization"},
          {"metadata", {{"name", name}, {"namespace", "dr"}, {"uid", name + "-uid"}, {"creationTimestamp", created}}},
          {"spec", {{"plugin", "kubernetes-objects-to-kubernetes"}, {"config", std::move(config)}}}};
}

json Config(const std::string& source, const std::string& destination, const std::string& bucket = "") {
  json config = {{"sourceName", source},
                 {"destinationName", destination},
                 {"replication", {{"resources", json::array({{{"version", "v1"}, {"resource", "configmaps"}}})}}}};
  if (!bucket.empty()) config["bucketName"] = bucket;
  return config;
}

std::vector<ObjectPtr> Ptrs(std::initializer_list<json> objects) {
  std::vector<ObjectPtr> out;
  for (const json& o : objects) out.push_back(std::make_shared<const json>(o));
  return out;
}

json Asset(const std::string& name, const std::string& ready, int64_t generation = 1, int64_t observed = 1) {
  return {{"metadata", {{"name", name}, {"namespace", "dr"}, {"generation", generation}}},
          {"status",
           {{"conditions", json::array({{{"type", "Ready"},
                                         {"status", ready},
                                         {"reason", ready == "True" ? "Connected" : "Unreachable"},
                                         {"message", "checked"},
                                         {"observedGeneration", observed}}})}}}};
}

livesync::AssetLookup Lookup(std::map<std::string, json> assets) {
  auto shared = std::make_shared<std::map<std::string, json>>(std::move(assets));
  return [shared](const std::string& name) -> ObjectPtr {
    const auto found = shared->find(name);
    return found == shared->end() ? nullptr : std::make_shared<const json>(found->second);
  };
}

TEST(LiveSyncReferencesTest, OnlyTheKubernetesObjectsPluginIsAccepted) {
  json ls = LiveSync("a", "2024-01-01T00:00:00Z", Config("s", "d"));
  EXPECT_FALSE(livesync::CheckPlugin(ls));
  ls["spec"]["plugin"] = "zookeeper-to-zookeeper-nodes";
  const auto problem = livesync::CheckPlugin(ls);
  ASSERT_TRUE(problem);
  EXPECT_EQ(problem->reason, "InvalidConfig");
  EXPECT_NE(problem->message.find("spec.plugin"), std::string::npos);
}

TEST(LiveSyncReferencesTest, ConfigProblemsNameTheirFieldUnderSpecConfig) {
  json config = Config("s", "d");
  config["replication"]["resources"][0]["filters"] = {{"nameSelector", {{"excludeRegex", json::array({"*.test"})}}}};
  try {
    pk::ParseLiveSyncConfig(config);
    FAIL() << "the manual's \"*.test\" must be rejected";
  } catch (const pk::ConfigError& e) {
    const livesync::Problem problem = livesync::ConfigProblem(e);
    EXPECT_EQ(problem.reason, "InvalidRegex");
    EXPECT_NE(problem.message.find("spec.config.replication.resources[0].filters.nameSelector.excludeRegex[0]"),
              std::string::npos)
        << problem.message;
  }
}

TEST(LiveSyncReferencesTest, TheOlderOfTwoSharingAClusterWins) {
  json older = LiveSync("first", "2024-01-01T00:00:00Z", Config("cluster-1", "cluster-2"));
  json newer = LiveSync("second", "2024-01-02T00:00:00Z", Config("cluster-3", "cluster-1"));
  const auto siblings = Ptrs({older, newer});
  EXPECT_FALSE(livesync::FindConflict(older, siblings));
  const auto problem = livesync::FindConflict(newer, siblings);
  ASSERT_TRUE(problem);
  EXPECT_EQ(problem->reason, "ConflictingLiveSynchronization");
  EXPECT_NE(problem->message.find("first"), std::string::npos);
  EXPECT_NE(problem->message.find("KubernetesCluster cluster-1"), std::string::npos);
}

TEST(LiveSyncReferencesTest, SameCreationTimeIsDecidedByName) {
  json a = LiveSync("a", "2024-01-01T00:00:00Z", Config("s", "d"));
  json b = LiveSync("b", "2024-01-01T00:00:00Z", Config("s", "d"));
  EXPECT_FALSE(livesync::FindConflict(a, Ptrs({a, b})));
  EXPECT_TRUE(livesync::FindConflict(b, Ptrs({a, b})));
}

TEST(LiveSyncReferencesTest, ASharedBucketConflictsAndDisjointOnesDoNot) {
  json a = LiveSync("a", "2024-01-01T00:00:00Z", Config("s1", "d1", "backups"));
  json b = LiveSync("b", "2024-01-02T00:00:00Z", Config("s2", "d2", "backups"));
  json c = LiveSync("c", "2024-01-03T00:00:00Z", Config("s3", "d3", "other"));
  const auto shared = livesync::FindConflict(b, Ptrs({a, b, c}));
  ASSERT_TRUE(shared);
  EXPECT_NE(shared->message.find("Bucket backups"), std::string::npos);
  EXPECT_FALSE(livesync::FindConflict(c, Ptrs({a, b, c})));
}

TEST(LiveSyncReferencesTest, AnOlderOneBeingDeletedNoLongerBlocks) {
  json older = LiveSync("first", "2024-01-01T00:00:00Z", Config("s", "d"));
  older["metadata"]["deletionTimestamp"] = "2024-02-01T00:00:00Z";
  json newer = LiveSync("second", "2024-01-02T00:00:00Z", Config("s", "d"));
  EXPECT_FALSE(livesync::FindConflict(newer, Ptrs({older, newer})));
}

TEST(LiveSyncReferencesTest, MissingAndUnreadyAssetsAreReportedInOrder) {
  const pk::LiveSyncConfig config = pk::ParseLiveSyncConfig(Config("cluster-1", "cluster-2", "backups"));
  const auto none = Lookup({});
  EXPECT_EQ(livesync::CheckReferences(config, none, none).problem->reason, "SourceClusterNotFound");
  EXPECT_EQ(livesync::CheckReferences(config, Lookup({{"cluster-1", Asset("cluster-1", "True")}}), none)
                .problem->reason,
            "DestinationClusterNotFound");
  const auto unready = livesync::CheckReferences(
      config, Lookup({{"cluster-1", Asset("cluster-1", "True")}, {"cluster-2", Asset("cluster-2", "False")}}), none);
  EXPECT_EQ(unready.problem->reason, "ClusterNotReady");
  EXPECT_NE(unready.problem->message.find("cluster-2"), std::string::npos);
  const auto clusters = Lookup({{"cluster-1", Asset("cluster-1", "True")}, {"cluster-2", Asset("cluster-2", "True")}});
  EXPECT_EQ(livesync::CheckReferences(config, clusters, none).problem->reason, "BucketNotFound");
  EXPECT_EQ(livesync::CheckReferences(config, clusters, Lookup({{"backups", Asset("backups", "False")}}))
                .problem->reason,
            "BucketNotReady");
  const auto ok = livesync::CheckReferences(config, clusters, Lookup({{"backups", Asset("backups", "True")}}));
  EXPECT_FALSE(ok.problem);
  EXPECT_TRUE(ok.references.bucket);
}

TEST(LiveSyncReferencesTest, AReadyConditionOfAnOlderGenerationDoesNotCount) {
  std::string why;
  EXPECT_TRUE(livesync::AssetReady(Asset("c", "True", 2, 2), &why));
  EXPECT_FALSE(livesync::AssetReady(Asset("c", "True", 3, 2), &why));
  EXPECT_FALSE(livesync::AssetReady(json::parse(R"({"metadata": {"name": "c"}})"), &why));
}

TEST(LiveSyncReferencesTest, BucketSettingsComeFromTheProviderBlock) {
  json bucket = json::parse(R"({"metadata": {"name": "backups", "namespace": "dr", "uid": "u"},
      "spec": {"generic": {"endpoint": "127.0.0.1:9000", "name": "dr-originals", "useSSL": false},
               "secretName": "bucket-credentials"}})");
  std::string secret;
  const auto inputs = livesync::BucketInputsFrom(bucket, &secret);
  EXPECT_EQ(inputs.provider, "generic");
  EXPECT_EQ(inputs.endpoint, "127.0.0.1:9000");
  EXPECT_EQ(inputs.bucket_name, "dr-originals");
  EXPECT_FALSE(inputs.use_ssl);
  EXPECT_EQ(secret, "bucket-credentials") << "spec.secretName is the fallback";
  EXPECT_THROW(livesync::BucketInputsFrom(json::parse(R"({"metadata": {"name": "b"}, "spec": {}})"), &secret),
               std::invalid_argument);
}

livesync::StatusInputs RunningInputs(std::chrono::system_clock::time_point now) {
  livesync::StatusInputs in;
  in.generation = 4;
  in.ready.status = ro::runtime::ConditionStatus::kTrue;
  in.ready.reason = "Running";
  in.ready.message = "Replicating";
  in.phase = "Running";
  in.components = {{"nats", true, 1, 1, "pid 1"}, {"processor", true, 1, 1, "pid 2"}};
  in.gvrs = {{"apps", "v1", "deployments"}, {"", "v1", "services"}};
  ro::kubesync::StatsSnapshot stats;
  stats.objects_in_sync["apps/v1/deployments"] = 3;
  stats.last_resync["apps/v1/deployments"] = now - std::chrono::minutes(5);
  ro::kubesync::StatsSnapshot::LagHistogram lag;
  lag.last_seconds = 0.01234;
  lag.last_at = now - std::chrono::seconds(2);
  stats.lag["apps/v1/deployments"] = lag;
  in.stats = stats;
  in.task_name = "active-passive";
  in.now = now;
  return in;
}

TEST(LiveSyncStatusTest, ShowsCountsLagResyncComponentsAndTask) {
  const auto now = ro::common::ParseRfc3339("2024-03-01T12:00:00Z");
  json status = livesync::BuildStatus(json(), RunningInputs(now));
  EXPECT_EQ(status["observedGeneration"], 4);
  EXPECT_EQ(status["phase"], "Running");
  EXPECT_EQ(status["conditions"][0]["type"], "Ready");
  EXPECT_EQ(status["conditions"][0]["status"], "True");
  EXPECT_EQ(status["conditions"][0]["observedGeneration"], 4);
  EXPECT_EQ(status["resources"][0]["objects"], 3);
  EXPECT_EQ(status["resources"][0]["lastEventTime"], "2024-03-01T11:59:58Z");
  EXPECT_EQ(status["resources"][1]["objects"], 0);
  EXPECT_EQ(status["lastResyncTime"], "2024-03-01T11:55:00Z");
  EXPECT_DOUBLE_EQ(status["lagSeconds"].get<double>(), 0.012);
  EXPECT_EQ(status["components"][1]["message"], "pid 2");
  EXPECT_EQ(status["taskName"], "active-passive");
}

TEST(LiveSyncStatusTest, RpoNowIsTheAgeOfTheOldestChangeStillWaiting) {
  const auto now = ro::common::ParseRfc3339("2024-03-01T12:00:00Z");
  livesync::StatusInputs in = RunningInputs(now);
  EXPECT_FALSE(livesync::BuildStatus(json(), in).contains("rpoSeconds")) << "no backlog sample yet";
  in.stats->backlog = ro::kubesync::StatsSnapshot::Backlog{4, now - std::chrono::milliseconds(2340), now};
  EXPECT_DOUBLE_EQ(livesync::BuildStatus(json(), in)["rpoSeconds"].get<double>(), 2.3);
  in.stats->backlog = ro::kubesync::StatsSnapshot::Backlog{0, std::nullopt, now - std::chrono::seconds(1)};
  EXPECT_EQ(livesync::BuildStatus(json(), in)["rpoSeconds"], 0);
}

TEST(LiveSyncStatusTest, AnOldLagObservationMeansNothingLags) {
  const auto now = ro::common::ParseRfc3339("2024-03-01T12:00:00Z");
  livesync::StatusInputs in = RunningInputs(now);
  in.stats->lag["apps/v1/deployments"].last_at = now - std::chrono::minutes(10);
  EXPECT_EQ(livesync::BuildStatus(json(), in)["lagSeconds"], 0);
}

TEST(LiveSyncStatusTest, WithoutStatisticsThePreviousOnesAreKept) {
  const auto now = ro::common::ParseRfc3339("2024-03-01T12:00:00Z");
  json previous = livesync::BuildStatus(json(), RunningInputs(now));
  livesync::StatusInputs in = RunningInputs(now + std::chrono::seconds(10));
  in.stats.reset();
  json status = livesync::BuildStatus(previous, in);
  EXPECT_EQ(status["resources"], previous["resources"]);
  EXPECT_EQ(status["lagSeconds"], previous["lagSeconds"]);
  EXPECT_EQ(status, previous) << "an unchanged observation gives an unchanged status (no write)";
}

TEST(LiveSyncStatusTest, TransitionTimeMovesOnlyWhenReadyChanges) {
  const auto now = ro::common::ParseRfc3339("2024-03-01T12:00:00Z");
  json running = livesync::BuildStatus(json(), RunningInputs(now));
  livesync::StatusInputs suspended = RunningInputs(now + std::chrono::minutes(1));
  suspended.ready.status = ro::runtime::ConditionStatus::kFalse;
  suspended.ready.reason = "Suspended";
  suspended.phase = "Suspended";
  json status = livesync::BuildStatus(running, suspended);
  EXPECT_EQ(status["conditions"][0]["reason"], "Suspended");
  EXPECT_EQ(status["conditions"][0]["lastTransitionTime"], "2024-03-01T12:01:00Z");
  EXPECT_EQ(status["phase"], "Suspended");
}

ro::kubesync::StatsSnapshot WithFailure(std::chrono::system_clock::time_point at, std::uint64_t count) {
  ro::kubesync::StatsSnapshot stats;
  stats.failures[{"synchronizer", "apps/v1/deployments", "Invalid"}] = count;
  stats.last_failure[{"synchronizer", "apps/v1/deployments", "Invalid"}] = {"shop/web", "spec.replicas: Invalid", at};
  return stats;
}

TEST(LiveSyncStatusTest, DegradedWhileAFailureIsRecentThenNot) {
  const auto now = ro::common::ParseRfc3339("2024-03-01T12:00:00Z");
  const auto recent = livesync::DegradedCondition(WithFailure(now - std::chrono::minutes(5), 1), now,
                                                  std::chrono::seconds(3600));
  EXPECT_EQ(recent.type, "Degraded");
  EXPECT_EQ(recent.status, ro::runtime::ConditionStatus::kTrue);
  EXPECT_EQ(recent.reason, "ReplicationFailures");
  EXPECT_THAT(recent.message, ::testing::HasSubstr("synchronizer apps/v1/deployments shop/web (Invalid)"));
  const auto old = livesync::DegradedCondition(WithFailure(now - std::chrono::hours(2), 1), now,
                                               std::chrono::seconds(3600));
  EXPECT_EQ(old.status, ro::runtime::ConditionStatus::kFalse);
  EXPECT_EQ(old.reason, "NoRecentFailures");

  livesync::StatusInputs in = RunningInputs(now);
  in.stats = WithFailure(now - std::chrono::minutes(1), 3);
  const json status = livesync::BuildStatus(json(), in);
  ASSERT_EQ(status["conditions"].size(), 3u);
  EXPECT_EQ(status["conditions"][1]["type"], "Degraded");
  EXPECT_EQ(status["conditions"][1]["status"], "True");
}

TEST(LiveSyncStatusTest, TheObjectsColumnIsTheSumOverResources) {
  const auto now = ro::common::ParseRfc3339("2024-03-01T12:00:00Z");
  livesync::StatusInputs in = RunningInputs(now);
  in.stats->objects_in_sync["v1/services"] = 2;
  EXPECT_EQ(livesync::BuildStatus(json(), in)["objects"], 5);
}

TEST(LiveSyncStatusTest, MissingDestinationNamespacesAreNamedUntilTheyExist) {
  const auto now = ro::common::ParseRfc3339("2024-03-01T12:00:00Z");
  livesync::StatusInputs in = RunningInputs(now);
  in.destination_name = "cluster-2";
  in.stats->namespaces["shop"].missing_at = now - std::chrono::seconds(30);
  in.stats->namespaces["web"].missing_at = now - std::chrono::seconds(20);
  const json missing = livesync::BuildStatus(json(), in);
  const auto condition = ro::runtime::FindStatusCondition(missing["conditions"], "DestinationNamespacesMissing");
  ASSERT_TRUE(condition);
  EXPECT_EQ(condition->status, ro::runtime::ConditionStatus::kTrue);
  EXPECT_EQ(condition->reason, "NamespacesNotFound");
  EXPECT_THAT(condition->message,
              ::testing::HasSubstr("2 namespace(s) missing in destination cluster cluster-2: shop, web"));
  EXPECT_THAT(condition->message, ::testing::HasSubstr("forceNamespaceCreation: true"));

  // The user created "shop"; "web" is still missing.
  in.now = now + std::chrono::seconds(10);
  in.stats->namespaces["shop"].present_at = now + std::chrono::seconds(5);
  const json one = livesync::BuildStatus(missing, in);
  EXPECT_THAT(ro::runtime::FindStatusCondition(one["conditions"], "DestinationNamespacesMissing")->message,
              ::testing::HasSubstr("1 namespace(s) missing in destination cluster cluster-2: web;"));

  in.stats->namespaces["web"].present_at = now + std::chrono::seconds(6);
  const auto none = ro::runtime::FindStatusCondition(livesync::BuildStatus(one, in)["conditions"],
                                                     "DestinationNamespacesMissing");
  EXPECT_EQ(none->status, ro::runtime::ConditionStatus::kFalse);
  EXPECT_EQ(none->reason, "NamespacesExist");
}

TEST(LiveSyncStatusTest, AtMostTenMissingNamespacesAreNamed) {
  const auto now = ro::common::ParseRfc3339("2024-03-01T12:00:00Z");
  ro::kubesync::StatsSnapshot stats;
  for (int i = 0; i < 13; ++i) stats.namespaces["ns-" + std::to_string(10 + i)].missing_at = now;
  const auto c = livesync::NamespacesMissingCondition(stats, now, std::chrono::seconds(60), "cluster-2", true);
  EXPECT_THAT(c.message, ::testing::HasSubstr("13 namespace(s) missing"));
  EXPECT_THAT(c.message, ::testing::HasSubstr("ns-19 and 3 more"));
  EXPECT_THAT(c.message, ::testing::HasSubstr("forceNamespaceCreation is on"));
}

TEST(LiveSyncStatusTest, NewFailuresReportsOnlyTheGrowthAndNothingFromBeforeTheStart) {
  const auto start = ro::common::ParseRfc3339("2024-03-01T12:00:00Z");
  std::map<ro::kubesync::StatsSnapshot::ErrorKey, std::uint64_t> seen;
  // Failed before this controller started: its predecessor reported it.
  EXPECT_TRUE(livesync::NewFailures(seen, WithFailure(start - std::chrono::minutes(1), 4), start).empty());
  const auto reports = livesync::NewFailures(seen, WithFailure(start + std::chrono::minutes(1), 6), start);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].count, 2u);
  EXPECT_THAT(reports[0].message, ::testing::HasSubstr("2 event(s) failed for good"));
  EXPECT_THAT(reports[0].message, ::testing::HasSubstr("shop/web"));
  EXPECT_TRUE(livesync::NewFailures(seen, WithFailure(start + std::chrono::minutes(1), 6), start).empty());
  // First seen after the start: all of it is new.
  std::map<ro::kubesync::StatsSnapshot::ErrorKey, std::uint64_t> fresh;
  EXPECT_EQ(livesync::NewFailures(fresh, WithFailure(start + std::chrono::minutes(2), 3), start).at(0).count, 3u);
}

TEST(LiveSyncRecoveryTaskTest, TheActivePassiveTutorialGeneratesTheManualsTask) {
  json config = json::parse(R"({
    "sourceName": "cluster-1", "destinationName": "cluster-2",
    "replication": {"resources": [
      {"group": "apps", "version": "v1", "resource": "deployments",
       "filters": {"namespaceSelector": {"matchLabels": {"sync": "true"}}},
       "transformation": {"patch": [{"op": "replace", "path": "/spec/replicas", "value": 0}]},
       "recoveryProcess": {"fromPatch": [{"op": "replace", "path": "/spec/replicas", "value": 1}]}},
      {"group": "", "version": "v1", "resource": "services",
       "filters": {"namespaceSelector": {"matchLabels": {"sync": "true"}}}}]}})");
  json ls = LiveSync("active-passive", "2024-01-01T00:00:00Z", config);
  const auto task = livesync::DesiredRecoveryTask(ls, pk::ParseLiveSyncConfig(config));
  ASSERT_TRUE(task);
  EXPECT_EQ((*task)["metadata"]["name"], "active-passive");
  EXPECT_EQ((*task)["metadata"]["ownerReferences"][0]["uid"], "active-passive-uid");
  EXPECT_EQ((*task)["metadata"]["ownerReferences"][0]["controller"], true);
  EXPECT_EQ((*task)["spec"]["plugin"], "kubernetes-objects-transformation");
  const json& resources = (*task)["spec"]["config"]["resources"];
  ASSERT_EQ(resources.size(), 1u);
  EXPECT_EQ(resources[0]["identifier"], json::parse(R"({"group": "apps", "version": "v1", "resources": "deployments"})"));
  EXPECT_EQ(resources[0]["patch"]["operations"],
            json::parse(R"([{"op": "replace", "path": "/spec/replicas", "value": 1}])"));
  EXPECT_EQ(resources[0]["filter"]["namespaceSelector"]["matchLabels"]["sync"], "true");
}

TEST(LiveSyncRecoveryTaskTest, TheDestinationClustersTaskIsLabelledInsteadOfOwned) {
  // 3-cluster architecture: the owner lives in another cluster, whose garbage collector
  // would delete a Task with an ownerReference to an unknown uid.
  json config = json::parse(R"({"sourceName": "cluster-1", "destinationName": "cluster-2",
    "replication": {"resources": [
      {"group": "apps", "version": "v1", "resource": "deployments",
       "recoveryProcess": {"fromPatch": [{"op": "replace", "path": "/spec/replicas", "value": 1}]}}]}})");
  json ls = LiveSync("active-passive", "2024-01-01T00:00:00Z", config);
  const auto task = livesync::DesiredRemoteRecoveryTask(ls, pk::ParseLiveSyncConfig(config));
  ASSERT_TRUE(task);
  EXPECT_FALSE((*task)["metadata"].contains("ownerReferences"));
  EXPECT_EQ((*task)["metadata"]["name"], "active-passive");
  EXPECT_EQ((*task)["metadata"]["namespace"], ls["metadata"]["namespace"]);
  EXPECT_EQ((*task)["metadata"]["labels"]["kubesync.astronetes.io/managed-by"],
            pk::ManagedById(ls["metadata"]["namespace"].get<std::string>(), "active-passive"));
  EXPECT_EQ((*task)["metadata"]["annotations"]["kubesync.astronetes.io/live-synchronization"],
            ls["metadata"]["namespace"].get<std::string>() + "/active-passive");
  // The same Task otherwise, recovering the cluster it is in (no destinationName: the
  // KubernetesCluster cluster-2 exists only in the management cluster).
  json local = *livesync::DesiredRecoveryTask(ls, pk::ParseLiveSyncConfig(config));
  EXPECT_EQ(local["spec"]["config"]["destinationName"], "cluster-2");
  local["spec"]["config"].erase("destinationName");
  EXPECT_EQ((*task)["spec"], local["spec"]);
  EXPECT_FALSE(livesync::DesiredRemoteRecoveryTask(LiveSync("a", "2024-01-01T00:00:00Z", Config("s", "d")),
                                                   pk::ParseLiveSyncConfig(Config("s", "d"))));
}

TEST(LiveSyncRecoveryTaskTest, NoRecoveryProcessMeansNoTask) {
  json config = Config("s", "d");
  EXPECT_FALSE(livesync::DesiredRecoveryTask(LiveSync("a", "2024-01-01T00:00:00Z", config),
                                             pk::ParseLiveSyncConfig(config)));
}

}  // namespace

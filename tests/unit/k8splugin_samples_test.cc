// The manual's LiveSynchronization samples (6.2.2, 6.2.3, 6.2.5, 8.1, 8.2) as JSON: each
// must parse as documented, or be rejected where the manual's sample is itself invalid.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <string>

#include "ro/plugins/kubernetes/live_sync_config.h"
#include "ro/plugins/kubernetes/recovery_task.h"

namespace ro::plugins::kubernetes {
namespace {

using nlohmann::json;

// The ConfigError thrown by parsing `config`; fails the test when none is thrown.
ConfigError ParseError(const json& config) {
  try {
    ParseLiveSyncConfig(config);
  } catch (const ConfigError& e) {
    return e;
  }
  ADD_FAILURE() << "expected a ConfigError";
  return ConfigError(std::vector<ConfigProblem>{{"", "none", "no error"}});
}

// Manual 6.2.2 "Configuring a LiveSynchronization".
const json kConfiguring = json::parse(R"({
  "sourceName": "source", "destinationName": "destination",
  "observability": {"enabled": false},
  "replication": {"resources": [{
    "group": "apps", "version": "v1", "resource": "deployments",
    "transformation": {"patch": [{"op": "replace", "path": "/spec/replicas", "value": 0}]},
    "filters": {"namespaceSelector": {"matchLabels": {"disaster-recovery": "enabled"}}},
    "recoveryProcess": {"fromPatch": [{"op": "replace", "path": "/spec/replicas", "value": 1}]}
  }]}
})");

// Manual 8.2, the active-passive tutorial.
const json kActivePassive = json::parse(R"({
  "sourceName": "cluster-1", "destinationName": "cluster-2",
  "replication": {"resources": [
    {"group": "apps", "version": "v1", "resource": "deployments",
     "filters": {"namespaceSelector": {"matchLabels": {"sync": "true"}}},
     "transformation": {"patch": [{"op": "replace", "path": "/spec/replicas", "value": 0}]},
     "recoveryProcess": {"fromPatch": [{"op": "replace", "path": "/spec/replicas", "value": 1}]}},
    {"group": "", "version": "v1", "resource": "services",
     "filters": {"namespaceSelector": {"matchLabels": {"sync": "true"}}}},
    {"group": "", "version": "v1", "resource": "secrets",
     "filters": {"namespaceSelector": {"matchLabels": {"sync": "true"}}}},
    {"group": "rbac.authorization.k8s.io", "version": "v1", "resource": "roles",
     "filters": {"namespaceSelector": {"matchLabels": {"sync": "true"}}}},
    {"group": "rbac.authorization.k8s.io", "version": "v1", "resource": "rolebindings",
     "filters": {"namespaceSelector": {"matchLabels": {"sync": "true"}}}},
    {"group": "", "version": "v1", "resource": "serviceaccounts",
     "filters": {"namespaceSelector": {"matchLabels": {"sync": "true"}},
                 "nameSelector": {"excludeRegex": ["^(default|deployer|builder)$"]}}},
    {"group": "networking.k8s.io", "version": "v1", "resource": "ingresses",
     "filters": {"namespaceSelector": {"matchLabels": {"sync": "true"}}}}
  ]}
})");

TEST(ManualSamples, ConfiguringSampleParsesWithDefaults) {
  const LiveSyncConfig c = ParseLiveSyncConfig(kConfiguring);
  EXPECT_EQ(c.source_name, "source");
  EXPECT_EQ(c.destination_name, "destination");
  EXPECT_FALSE(c.bucket_name.has_value());
  EXPECT_EQ(c.replication.resync_period, std::chrono::hours(1));
  EXPECT_FALSE(c.replication.force_namespace_creation);
  EXPECT_FALSE(c.observability.enabled);
  EXPECT_EQ(c.observability.interval, std::chrono::seconds(30));
  ASSERT_EQ(c.replication.resources.size(), 1u);
  const ResourceRule& r = c.replication.resources[0];
  EXPECT_EQ(r.gvr.ToString(), "apps/v1/deployments");
  ASSERT_TRUE(r.transformation.has_value());
  ASSERT_EQ(r.transformation->patch.size(), 1u);
  EXPECT_EQ(r.transformation->patch.op(0), PatchOp::kReplace);
  EXPECT_EQ(r.transformation->patch.path(0), "/spec/replicas");
  EXPECT_EQ(r.transformation->patch.value(0), 0);
  EXPECT_EQ(r.transformation_fingerprint.size(), 16u);
  ASSERT_TRUE(r.filter.namespace_selector().has_value());
  EXPECT_EQ(r.filter.namespace_selector()->ToString(), "disaster-recovery=enabled");
  EXPECT_FALSE(r.filter.selector().has_value());
  ASSERT_TRUE(r.recovery.has_value());
  EXPECT_EQ(r.recovery->from_patch.value(0), 1);
  EXPECT_FALSE(r.recovery->from_original);
}

TEST(ManualSamples, NameSelectorSampleParses) {
  const LiveSyncConfig c = ParseLiveSyncConfig(json::parse(R"({
    "sourceName": "source", "destinationName": "destination",
    "observability": {"enabled": false},
    "replication": {"resources": [{"version": "v1", "resource": "configmaps",
                                   "filters": {"nameSelector": {"regex": ["config.*"]}}}]}})"));
  const ResourceRule& r = c.replication.resources.at(0);
  EXPECT_EQ(r.gvr.group, "");
  EXPECT_EQ(r.gvr.ToString(), "v1/configmaps");
  EXPECT_EQ(r.filter.name_regex(), std::vector<std::string>{"config.*"});
  EXPECT_TRUE(r.filter.MatchesName("app-config-1"));
  EXPECT_FALSE(r.filter.MatchesName("settings"));
}

TEST(ManualSamples, GlobExcludeRegexSampleIsRejectedAtItsField) {
  const ConfigError e = ParseError(json::parse(R"({
    "sourceName": "source", "destinationName": "destination",
    "observability": {"enabled": false},
    "replication": {"resources": [{"version": "v1", "resource": "configmaps",
                                   "filters": {"nameSelector": {"excludeRegex": ["*.test"]}}}]}})"));
  ASSERT_EQ(e.problems().size(), 1u);
  const ConfigProblem& p = e.problems()[0];
  EXPECT_EQ(p.field, "replication.resources[0].filters.nameSelector.excludeRegex[0]");
  EXPECT_EQ(p.reason, "InvalidRegex");
  EXPECT_EQ(e.reason(), "InvalidRegex");
  // The RE2 diagnosis and a suggestion of the intended expression.
  EXPECT_NE(p.message.find("\"*.test\""), std::string::npos) << p.message;
  EXPECT_NE(p.message.find("no argument for repetition operator"), std::string::npos)
      << p.message;
  EXPECT_NE(p.message.find(R"("\\.test$")"), std::string::npos) << p.message;
}

TEST(ManualSamples, SelectorSampleParses) {
  const LiveSyncConfig c = ParseLiveSyncConfig(json::parse(R"({
    "sourceName": "source", "destinationName": "destination",
    "observability": {"enabled": false},
    "replication": {"resources": [{"group": "apps", "version": "v1", "resource": "deployments",
      "filters": {"selector": {"matchLabels": {"disaster-recovery": "enabled"}}}}]}})"));
  ASSERT_TRUE(c.replication.resources.at(0).filter.selector().has_value());
  EXPECT_EQ(c.replication.resources[0].filter.selector()->ToString(), "disaster-recovery=enabled");
}

TEST(ManualSamples, TransformationSampleWithRemoveParses) {
  const LiveSyncConfig c = ParseLiveSyncConfig(json::parse(R"({
    "sourceName": "source", "destinationName": "destination",
    "replication": {"resources": [{"group": "apps", "version": "v1", "resource": "deployments",
      "transformation": {"patch": [{"op": "replace", "path": "/spec/replicas", "value": 0},
                                   {"op": "remove", "path": "/spec/strategy"}]}}]}})"));
  const JsonPatch& p = c.replication.resources.at(0).transformation->patch;
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p.op(1), PatchOp::kRemove);
  EXPECT_TRUE(p.value(1).is_null());
}

TEST(ManualSamples, BucketSampleWithTwoDisjointDeploymentTransformationsParses) {
  const LiveSyncConfig c = ParseLiveSyncConfig(json::parse(R"({
    "sourceName": "source", "destinationName": "destination", "bucketName": "bucket-dev",
    "observability": {"enabled": false},
    "replication": {"resources": [
      {"group": "apps", "version": "v1", "resource": "deployments",
       "transformation": {"patch": [{"op": "replace", "path": "/spec/replicas", "value": 0}]},
       "filters": {"namespaceSelector": {"matchLabels": {"env": "pre"}}},
       "recoveryProcess": {"fromPatch": [{"op": "replace", "path": "/spec/replicas", "value": 1}]}},
      {"group": "apps", "version": "v1", "resource": "deployments",
       "transformation": {"patch": [{"op": "replace", "path": "/spec/replicas", "value": 0}]},
       "filters": {"namespaceSelector": {"matchLabels": {"env": "pre-second"}}},
       "recoveryProcess": {"fromPatch": [{"op": "replace", "path": "/spec/replicas", "value": 1}]}},
      {"group": "", "version": "v1", "resource": "services",
       "filters": {"namespaceSelector": {"matchLabels": {"env": "pre"}}}},
      {"group": "", "version": "v1", "resource": "services",
       "filters": {"namespaceSelector": {"matchLabels": {"env": "pre-second"}}}},
      {"group": "", "version": "v1", "resource": "secrets",
       "filters": {"namespaceSelector": {"matchLabels": {"env": "pre"}}}}
    ]}})"));
  EXPECT_EQ(c.bucket_name, "bucket-dev");
  EXPECT_EQ(c.replication.resources.size(), 5u);
  EXPECT_EQ(c.DistinctGvrs().size(), 3u);
}

TEST(ManualSamples, ResyncPeriodOfThreeHoursTwentyFiveMinutesTwelveSeconds) {
  json config = kConfiguring;
  config["replication"]["resyncPeriod"] = "3h25m12s";
  EXPECT_EQ(ParseLiveSyncConfig(config).replication.resync_period, std::chrono::seconds(12312));
  config["replication"]["resyncPeriod"] = "1h0m0s";
  EXPECT_EQ(ParseLiveSyncConfig(config).replication.resync_period, std::chrono::hours(1));
}

TEST(ManualSamples, ActiveActiveSampleParses) {
  json config = kActivePassive;
  config["replication"]["resources"][0].erase("transformation");
  config["replication"]["resources"][0].erase("recoveryProcess");
  const LiveSyncConfig c = ParseLiveSyncConfig(config);
  EXPECT_EQ(c.replication.resources.size(), 7u);
  EXPECT_FALSE(HasRecoveryProcess(c));
  const ResourceRule& sa = c.replication.resources[5];
  EXPECT_EQ(sa.gvr.ToString(), "v1/serviceaccounts");
  EXPECT_FALSE(sa.filter.MatchesName("default"));
  EXPECT_FALSE(sa.filter.MatchesName("builder"));
  EXPECT_TRUE(sa.filter.MatchesName("default-app"));  // anchored explicitly
}

TEST(ManualSamples, ActivePassiveSampleParsesClean) {
  const LiveSyncConfig c = ParseLiveSyncConfig(kActivePassive);
  EXPECT_EQ(c.replication.resources.size(), 7u);
  EXPECT_EQ(c.DistinctGvrs().size(), 7u);
  EXPECT_TRUE(HasRecoveryProcess(c));
}

TEST(ManualSamples, ActivePassiveRecoveryTaskIsTheTutorialsTask) {
  const json task = BuildRecoveryTask(ParseLiveSyncConfig(kActivePassive), "dr", "active-passive");
  const json expected = json::parse(R"({
    "apiVersion": "automation.astronetes.io/v1alpha1",
    "kind": "Task",
    "metadata": {"name": "active-passive", "namespace": "dr",
                 "annotations": {"kubesync.astronetes.io/live-synchronization": "dr/active-passive"}},
    "spec": {
      "plugin": "kubernetes-objects-transformation",
      "config": {
        "sourceName": "cluster-1",
        "destinationName": "cluster-2",
        "resources": [{
          "identifier": {"group": "apps", "version": "v1", "resources": "deployments"},
          "patch": {"operations": [{"op": "replace", "path": "/spec/replicas", "value": 1}]},
          "filter": {"namespaceSelector": {"matchLabels": {"sync": "true"}}}
        }]
      }
    }})");
  EXPECT_EQ(task, expected) << task.dump(2);
}

}  // namespace
}  // namespace ro::plugins::kubernetes

// Validation of a LiveSynchronization spec.config: every problem is collected with its
// field path and reason code (docs/kubesync.md "Configuration validation").
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "ro/plugins/kubernetes/live_sync_config.h"

namespace ro::plugins::kubernetes {
namespace {

using nlohmann::json;

// "<field> <reason>" of every problem found in `config`, or {} when it parses.
std::vector<std::string> Problems(const json& config) {
  try {
    ParseLiveSyncConfig(config);
  } catch (const ConfigError& e) {
    std::vector<std::string> out;
    for (const ConfigProblem& p : e.problems()) out.push_back(p.field + " " + p.reason);
    return out;
  }
  return {};
}

// The message of the only problem of `config`.
std::string OnlyMessage(const json& config) {
  try {
    ParseLiveSyncConfig(config);
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.problems().size(), 1u) << e.what();
    return e.problems().front().message;
  }
  return "<no error>";
}

json Minimal() {
  return json::parse(R"({"sourceName": "a", "destinationName": "b",
    "replication": {"resources": [{"group": "apps", "version": "v1", "resource": "deployments"}]}})");
}

// Minimal() with resources[0] replaced by `resource`.
json WithResource(const json& resource) {
  json c = Minimal();
  c["replication"]["resources"][0] = resource;
  return c;
}

json Deployments(const json& extra) {
  json r = {{"group", "apps"}, {"version", "v1"}, {"resource", "deployments"}};
  r.update(extra);
  return r;
}

using Strings = std::vector<std::string>;

TEST(LiveSyncConfig, MinimalConfigParses) {
  const LiveSyncConfig c = ParseLiveSyncConfig(Minimal());
  EXPECT_EQ(c.replication.resources.size(), 1u);
  EXPECT_FALSE(c.replication.resources[0].transformation.has_value());
  EXPECT_EQ(c.replication.resources[0].transformation_fingerprint, "");
  EXPECT_TRUE(c.replication.resources[0].filter.MatchesEverything());
}

TEST(LiveSyncConfig, GroupDefaultsToTheCoreGroup) {
  const LiveSyncConfig c =
      ParseLiveSyncConfig(WithResource({{"version", "v1"}, {"resource", "configmaps"}}));
  EXPECT_EQ(c.replication.resources[0].gvr, (kube::GroupVersionResource{"", "v1", "configmaps"}));
}

TEST(LiveSyncConfig, MissingRequiredFieldsAreAllReported) {
  EXPECT_EQ(Problems(json::object()), (Strings{"sourceName InvalidConfig",
                                               "destinationName InvalidConfig",
                                               "replication InvalidConfig"}));
  EXPECT_EQ(Problems(json::parse(R"({"sourceName": "", "destinationName": 3,
                                     "replication": {"resources": []}})")),
            (Strings{"sourceName InvalidConfig", "destinationName InvalidConfig",
                     "replication.resources InvalidConfig"}));
  EXPECT_EQ(Problems(json::array()), (Strings{" InvalidConfig"}));
}

TEST(LiveSyncConfig, ResourceEntriesNeedVersionAndLowerCasePluralResource) {
  EXPECT_EQ(Problems(WithResource({{"group", "apps"}})),
            (Strings{"replication.resources[0].version InvalidConfig",
                     "replication.resources[0].resource InvalidConfig"}));
  EXPECT_EQ(Problems(WithResource({{"group", "apps"}, {"version", "v1"}, {"resource", "Deployment"}})),
            (Strings{"replication.resources[0].resource InvalidConfig"}));
  EXPECT_EQ(Problems(WithResource({{"group", "Apps!"}, {"version", "v1"}, {"resource", "x"}})),
            (Strings{"replication.resources[0].group InvalidConfig"}));
  EXPECT_EQ(Problems(WithResource("deployments")), (Strings{"replication.resources[0] InvalidConfig"}));
}

TEST(LiveSyncConfig, SourceAndDestinationMustDiffer) {
  json c = Minimal();
  c["destinationName"] = "a";
  EXPECT_EQ(Problems(c), (Strings{"destinationName InvalidConfig"}));
}

TEST(LiveSyncConfig, MistypedOptionalFieldsAreInvalidConfig) {
  json c = Minimal();
  c["replication"]["forceNamespaceCreation"] = "yes";
  c["replication"]["adoptExisting"] = 1;
  c["observability"] = {{"enabled", 1}};
  c["bucketName"] = "";
  EXPECT_EQ(Problems(c), (Strings{"bucketName InvalidConfig",
                                  "replication.forceNamespaceCreation InvalidConfig",
                                  "replication.adoptExisting InvalidConfig",
                                  "observability.enabled InvalidConfig"}));
}

TEST(LiveSyncConfig, AdoptExistingIsOffUnlessSet) {
  json c = Minimal();
  EXPECT_FALSE(ParseLiveSyncConfig(c).replication.adopt_existing);
  c["replication"]["adoptExisting"] = true;
  EXPECT_TRUE(ParseLiveSyncConfig(c).replication.adopt_existing);
}

TEST(LiveSyncConfig, UnknownFieldsAreIgnored) {
  json c = Minimal();
  c["somethingElse"] = {{"x", 1}};
  c["replication"]["resources"][0]["extra"] = true;
  EXPECT_EQ(Problems(c), Strings{});
}

TEST(LiveSyncConfig, ResyncPeriodIsAGoDurationGreaterThanZero) {
  json c = Minimal();
  c["replication"]["resyncPeriod"] = "90s";
  EXPECT_EQ(ParseLiveSyncConfig(c).replication.resync_period, std::chrono::seconds(90));
  c["replication"]["resyncPeriod"] = "1.5h";
  EXPECT_EQ(ParseLiveSyncConfig(c).replication.resync_period, std::chrono::minutes(90));
  for (const json& bad : {json("0s"), json("-1h"), json("1x"), json("1"), json(3600)}) {
    c["replication"]["resyncPeriod"] = bad;
    EXPECT_EQ(Problems(c), (Strings{"replication.resyncPeriod InvalidResyncPeriod"})) << bad;
  }
  c["replication"]["resyncPeriod"] = "0s";
  EXPECT_NE(OnlyMessage(c).find("greater than zero"), std::string::npos);
}

TEST(LiveSyncConfig, ResyncPeriodDirectlyUnderConfigIsAccepted) {
  // The manual's 6.2.5 text: spec.config.resyncPeriod.
  json c = Minimal();
  c["resyncPeriod"] = "3h25m12s";
  EXPECT_EQ(ParseLiveSyncConfig(c).replication.resync_period,
            std::chrono::hours(3) + std::chrono::minutes(25) + std::chrono::seconds(12));
  c["resyncPeriod"] = "0s";
  EXPECT_EQ(Problems(c), (Strings{"resyncPeriod InvalidResyncPeriod"}));
  c["resyncPeriod"] = 60;
  EXPECT_EQ(Problems(c), (Strings{"resyncPeriod InvalidResyncPeriod"}));
}

TEST(LiveSyncConfig, ResyncPeriodInBothPlacesMustAgree) {
  json c = Minimal();
  c["resyncPeriod"] = "1h";
  c["replication"]["resyncPeriod"] = "60m";  // the same duration, spelled differently
  EXPECT_EQ(ParseLiveSyncConfig(c).replication.resync_period, std::chrono::hours(1));
  c["replication"]["resyncPeriod"] = "2h";
  EXPECT_EQ(Problems(c), (Strings{"resyncPeriod InvalidResyncPeriod"}));
  const std::string message = OnlyMessage(c);
  EXPECT_NE(message.find("\"1h\" conflicts with replication.resyncPeriod \"2h\""), std::string::npos)
      << message;
  // An invalid nested value is its own problem, not also a conflict.
  c["replication"]["resyncPeriod"] = "0s";
  EXPECT_EQ(Problems(c), (Strings{"replication.resyncPeriod InvalidResyncPeriod"}));
}

TEST(LiveSyncConfig, ObservabilityIntervalDefaultsAndValidates) {
  json c = Minimal();
  c["observability"] = {{"enabled", true}, {"interval", "15m"}};
  const LiveSyncConfig parsed = ParseLiveSyncConfig(c);
  EXPECT_TRUE(parsed.observability.enabled);
  EXPECT_EQ(parsed.observability.interval, std::chrono::minutes(15));
  c["observability"]["interval"] = "0s";
  EXPECT_EQ(Problems(c), (Strings{"observability.interval InvalidConfig"}));
}

TEST(LiveSyncConfig, InvalidSelectorNamesTheSelectorPart) {
  const json c = WithResource(Deployments({{"filters",
      {{"selector", {{"matchExpressions", {{{"key", "tier"}, {"operator", "Gt"}, {"values", {"1"}}}}}}},
       {"namespaceSelector", {{"matchLabels", {{"env", "not valid!"}}}}}}}}));
  EXPECT_EQ(Problems(c),
            (Strings{"replication.resources[0].filters.selector.matchExpressions[0].operator InvalidSelector",
                     "replication.resources[0].filters.namespaceSelector.matchLabels.env InvalidSelector"}));
  const json not_object = WithResource(Deployments({{"filters", {{"selector", "app=web"}}}}));
  EXPECT_EQ(Problems(not_object), (Strings{"replication.resources[0].filters.selector InvalidSelector"}));
}

TEST(LiveSyncConfig, EveryInvalidRegexIsReportedWithItsIndex) {
  const json c = WithResource(Deployments({{"filters", {{"nameSelector",
      {{"regex", {"ok", "(unclosed"}}, {"excludeRegex", {"*.test", "fine$", 7}}}}}}}));
  EXPECT_EQ(Problems(c), (Strings{"replication.resources[0].filters.nameSelector.regex[1] InvalidRegex",
                                  "replication.resources[0].filters.nameSelector.excludeRegex[0] InvalidRegex",
                                  "replication.resources[0].filters.nameSelector.excludeRegex[2] InvalidConfig"}));
}

TEST(LiveSyncConfig, PatchOperationsAreValidated) {
  const json c = WithResource(Deployments({{"transformation", {{"patch", json::parse(R"([
      {"op": "replace", "path": "/spec/replicas", "value": 0},
      {"op": "delete", "path": "/spec/strategy"},
      {"op": "move", "path": "/spec/a", "from": "/spec/b"},
      {"op": "replace", "path": "spec/replicas", "value": 1},
      {"op": "add", "path": "/metadata/labels/x"},
      {"op": "replace", "path": "/metadata/name", "value": "other"},
      {"op": "remove", "path": "/metadata"},
      {"op": "add", "path": "/kind", "value": "Other"},
      {"op": "replace", "path": "/apiVersion", "value": "v2"},
      {"op": "replace", "path": "/metadata/namespace", "value": "x"},
      {"op": "remove", "path": "/metadata/uid"},
      {"op": "replace", "path": "", "value": {}},
      {"op": "add", "path": "/a~2b", "value": 1},
      "not an object"
    ])")}}}}));
  const std::string p = "replication.resources[0].transformation.patch";
  EXPECT_EQ(Problems(c), (Strings{p + "[2].op InvalidPatch",
                                  p + "[3].path InvalidPatch", p + "[4].value InvalidPatch",
                                  p + "[5].path InvalidPatch", p + "[6].path InvalidPatch",
                                  p + "[7].path InvalidPatch", p + "[8].path InvalidPatch",
                                  p + "[9].path InvalidPatch", p + "[10].path InvalidPatch",
                                  p + "[11].path InvalidPatch", p + "[12].path InvalidPatch",
                                  p + "[13] InvalidPatch"}));
}

TEST(LiveSyncConfig, DeleteOpIsASynonymOfRemove) {
  // The manual's 6.2.6 table: "Accepted values are “replace” and “delete”".
  const json c = WithResource(Deployments(
      {{"transformation", {{"patch", {{{"op", "delete"}, {"path", "/spec/strategy"}}}}}},
       {"recoveryProcess", {{"fromPatch", {{{"op", "delete"}, {"path", "/spec/paused"}}}}}}}));
  const LiveSyncConfig parsed = ParseLiveSyncConfig(c);
  const ResourceRule& rule = parsed.replication.resources.at(0);
  ASSERT_EQ(rule.transformation->patch.size(), 1u);
  EXPECT_EQ(rule.transformation->patch.op(0), PatchOp::kRemove);
  EXPECT_EQ(rule.recovery->from_patch.op(0), PatchOp::kRemove);
  // Normalised once: the generated Task and the fingerprint see "remove".
  EXPECT_EQ(rule.recovery->from_patch.ToJson(),
            json::parse(R"([{"op": "remove", "path": "/spec/paused"}])"));
  const json with_remove = WithResource(Deployments(
      {{"transformation", {{"patch", {{{"op", "remove"}, {"path", "/spec/strategy"}}}}}}}));
  EXPECT_EQ(rule.transformation_fingerprint,
            ParseLiveSyncConfig(with_remove).replication.resources.at(0).transformation_fingerprint);
}

TEST(LiveSyncConfig, UnknownOpNamesTheFieldAndTheAllowedOps) {
  const json c = WithResource(Deployments(
      {{"recoveryProcess", {{"fromPatch", {{{"op", "erase"}, {"path", "/spec/strategy"}}}}}}}));
  EXPECT_EQ(Problems(c), (Strings{"replication.resources[0].recoveryProcess.fromPatch[0].op InvalidPatch"}));
  const std::string message = OnlyMessage(c);
  EXPECT_NE(message.find("unknown op \"erase\""), std::string::npos) << message;
  EXPECT_NE(message.find("add, replace, remove (or delete"), std::string::npos) << message;
}

TEST(LiveSyncConfig, RecoveryPatchIsValidatedLikeTransformations) {
  const json c = WithResource(Deployments({{"recoveryProcess",
      {{"fromPatch", {{{"op", "replace"}, {"path", "/metadata/name"}, {"value", "x"}}}},
       {"patchOptions", {{"skipIfNotFoundOnDelete", "yes"}}}}}}));
  EXPECT_EQ(Problems(c),
            (Strings{"replication.resources[0].recoveryProcess.fromPatch[0].path InvalidPatch",
                     "replication.resources[0].recoveryProcess.patchOptions.skipIfNotFoundOnDelete InvalidConfig"}));
}

TEST(LiveSyncConfig, FromOriginalNeedsABucket) {
  json c = WithResource(Deployments({{"recoveryProcess", {{"fromOriginal", {{"enabled", true}}}}}}));
  EXPECT_EQ(Problems(c),
            (Strings{"replication.resources[0].recoveryProcess.fromOriginal.enabled InvalidConfig"}));
  c["bucketName"] = "bucket-dev";
  const LiveSyncConfig parsed = ParseLiveSyncConfig(c);
  EXPECT_TRUE(parsed.replication.resources[0].recovery->from_original);
  EXPECT_TRUE(parsed.replication.resources[0].recovery->HasEffect());
}

TEST(LiveSyncConfig, TwoTransformationsOfOneResourceWithoutDisjointFiltersOverlap) {
  const json patch = {{"patch", {{{"op", "replace"}, {"path", "/spec/replicas"}, {"value", 0}}}}};
  json c = Minimal();
  c["replication"]["resources"] = {
      Deployments({{"transformation", patch}}),
      {{"version", "v1"}, {"resource", "services"}, {"transformation", patch}},
      Deployments({{"transformation", patch}, {"filters", {{"selector", {{"matchLabels", {{"a", "1"}}}}}}}})};
  EXPECT_EQ(Problems(c), (Strings{"replication.resources[2] OverlappingTransformations"}));
  const std::string message = OnlyMessage(c);
  EXPECT_NE(message.find("overlaps replication.resources[0]"), std::string::npos) << message;
  EXPECT_NE(message.find("apps/v1/deployments"), std::string::npos) << message;
}

TEST(LiveSyncConfig, DisjointSelectorsOrEntriesWithoutTransformationDoNotOverlap) {
  const json patch = {{"patch", {{{"op", "replace"}, {"path", "/spec/replicas"}, {"value", 0}}}}};
  json c = Minimal();
  c["replication"]["resources"] = {
      Deployments({{"transformation", patch},
                   {"filters", {{"selector", {{"matchLabels", {{"tier", "web"}}}}}}}}),
      Deployments({{"transformation", patch},
                   {"filters", {{"selector", {{"matchExpressions",
                       {{{"key", "tier"}, {"operator", "NotIn"}, {"values", {"web"}}}}}}}}}}),
      Deployments(json::object()),
      Deployments({{"transformation", json::object()}})};
  EXPECT_EQ(Problems(c), Strings{});
}

TEST(LiveSyncConfig, ComponentsGetDocumentedDefaults) {
  const LiveSyncConfig c = ParseLiveSyncConfig(Minimal());
  EXPECT_EQ(c.components.Get(ComponentKind::kSynchronizer).concurrent_tasks, 8);
  EXPECT_EQ(c.components.Get(ComponentKind::kProcessor).concurrent_tasks, 8);
  EXPECT_EQ(c.components.Get(ComponentKind::kReconciler).concurrent_tasks, 2);
  EXPECT_EQ(c.components.Get(ComponentKind::kEventsListener).concurrent_tasks, 256);
  for (std::size_t i = 0; i < kComponentKindCount; ++i) {
    const ComponentConfig& component = c.components.by_kind[i];
    EXPECT_EQ(component.replicas, 1);
    EXPECT_EQ(component.log_level, LogLevel::kInfo);
    EXPECT_EQ(component.image_pull_policy, "IfNotPresent");
    EXPECT_EQ(component.resources, nullptr);
  }
}

TEST(LiveSyncConfig, ComponentSettingsAreParsed) {
  json c = Minimal();
  c["components"] = json::parse(R"({
    "synchronizer": {"logLevel": "debug", "imagePullPolicy": "Always", "concurrentTasks": 16,
                     "replicas": 3, "resources": {"limits": {"cpu": "500m", "memory": "256Mi"},
                                                  "requests": {"cpu": 1}}},
    "metricsExporter": {"replicas": 0},
    "unknownComponent": {"replicas": "many"}})");
  const LiveSyncConfig parsed = ParseLiveSyncConfig(c);
  const ComponentConfig& s = parsed.components.Get(ComponentKind::kSynchronizer);
  EXPECT_EQ(s.log_level, LogLevel::kDebug);
  EXPECT_EQ(s.image_pull_policy, "Always");
  EXPECT_EQ(s.concurrent_tasks, 16);
  EXPECT_EQ(s.replicas, 3);
  ASSERT_NE(s.resources, nullptr);
  EXPECT_EQ((*s.resources)["limits"]["memory"], "256Mi");
  EXPECT_EQ(parsed.components.Get(ComponentKind::kMetricsExporter).replicas, 0);
}

TEST(LiveSyncConfig, InvalidComponentSettingsAreAllReported) {
  json c = Minimal();
  c["components"] = json::parse(R"({
    "processor": {"logLevel": "verbose", "imagePullPolicy": "Sometimes", "concurrentTasks": 0,
                  "replicas": -1},
    "reconciler": {"concurrentTasks": 2.5, "replicas": 4294967296, "resources": {"limits": 3}},
    "nats": "big"})");
  EXPECT_EQ(Problems(c), (Strings{"components.processor.logLevel InvalidComponent",
                                  "components.processor.imagePullPolicy InvalidComponent",
                                  "components.processor.concurrentTasks InvalidComponent",
                                  "components.processor.replicas InvalidComponent",
                                  "components.reconciler.resources InvalidComponent",
                                  "components.reconciler.concurrentTasks InvalidComponent",
                                  "components.reconciler.replicas InvalidComponent",
                                  "components.nats InvalidComponent"}));
}

TEST(LiveSyncConfig, NatsRunsOneThreeOrFiveServers) {
  for (int replicas : {1, 3, 5}) {
    json c = Minimal();
    c["components"]["nats"]["replicas"] = replicas;
    EXPECT_EQ(Problems(c), Strings{}) << replicas;
  }
  for (int replicas : {0, 2, 4, 7}) {
    json c = Minimal();
    c["components"]["nats"]["replicas"] = replicas;
    EXPECT_EQ(Problems(c), Strings{"components.nats.replicas InvalidComponent"}) << replicas;
  }
}

TEST(LiveSyncConfig, ProblemsToMessageListsTheFirstFewAndCountsTheRest) {
  const std::vector<ConfigProblem> problems = {
      {"a", "InvalidConfig", "first"}, {"b", "InvalidConfig", "second"},
      {"", "InvalidConfig", "third"}, {"d", "InvalidRegex", "fourth"}, {"e", "InvalidRegex", "fifth"}};
  EXPECT_EQ(ProblemsToMessage(problems), "a: first; b: second; third; and 2 more");
  EXPECT_EQ(ProblemsToMessage(problems, 5), "a: first; b: second; third; d: fourth; e: fifth");
  EXPECT_EQ(ProblemsToMessage({}), "");
  const ConfigError e(problems);
  EXPECT_STREQ(e.what(), "a: first; b: second; third; and 2 more");
  EXPECT_EQ(e.reason(), "InvalidConfig");
}

TEST(LiveSyncConfig, RouteReturnsTheFirstMatchingEntryOfTheGvr) {
  json c = Minimal();
  c["replication"]["resources"] = {
      Deployments({{"filters", {{"selector", {{"matchLabels", {{"tier", "web"}}}}}}}}),
      Deployments({{"filters", {{"nameSelector", {{"regex", {"^api-"}}}}}}}),
      {{"version", "v1"}, {"resource", "configmaps"}}};
  const LiveSyncConfig parsed = ParseLiveSyncConfig(c);
  const kube::GroupVersionResource deployments{"apps", "v1", "deployments"};
  const json web = {{"metadata", {{"name", "api-web"}, {"namespace", "n"}, {"labels", {{"tier", "web"}}}}}};
  const json api = {{"metadata", {{"name", "api-1"}, {"namespace", "n"}}}};
  const json other = {{"metadata", {{"name", "worker"}, {"namespace", "n"}}}};
  EXPECT_EQ(parsed.Route(deployments, web, nullptr), &parsed.replication.resources[0]);
  EXPECT_EQ(parsed.Route(deployments, api, nullptr), &parsed.replication.resources[1]);
  EXPECT_EQ(parsed.Route(deployments, other, nullptr), nullptr);
  EXPECT_EQ(parsed.Route({"", "v1", "configmaps"}, other, nullptr), &parsed.replication.resources[2]);
  EXPECT_EQ(parsed.Route({"", "v1", "secrets"}, other, nullptr), nullptr);
  EXPECT_TRUE(parsed.Replicates(deployments));
  EXPECT_FALSE(parsed.Replicates({"", "v1", "secrets"}));
}

}  // namespace
}  // namespace ro::plugins::kubernetes

// ObjectFilter: label selector, namespace selector and name regexes with Go
// regexp.MatchString (unanchored) semantics; provable disjointness of selectors.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "ro/plugins/kubernetes/object_filter.h"

namespace ro::plugins::kubernetes {
namespace {

using kube::LabelSelector;
using nlohmann::json;

json Object(const std::string& name, const std::string& ns, const json& labels = nullptr) {
  json meta = {{"name", name}};
  if (!ns.empty()) meta["namespace"] = ns;
  if (!labels.is_null()) meta["labels"] = labels;
  return {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", meta}};
}

ObjectFilter Filter(const char* text) { return ObjectFilter::FromJson(json::parse(text)); }

TEST(ObjectFilter, AbsentFiltersSelectEverything) {
  const ObjectFilter f = ObjectFilter::FromJson(json(nullptr));
  EXPECT_TRUE(f.MatchesEverything());
  EXPECT_TRUE(f.Matches(Object("a", "n"), nullptr));
  EXPECT_TRUE(f.Matches(Object("node-1", ""), nullptr));
  EXPECT_TRUE(ObjectFilter().Matches(Object("a", "n"), nullptr));
  EXPECT_TRUE(Filter("{}").MatchesEverything());
}

TEST(ObjectFilter, SelectorMatchesTheObjectsLabels) {
  const ObjectFilter f = Filter(R"({"selector": {"matchLabels": {"disaster-recovery": "enabled"}}})");
  EXPECT_TRUE(f.Matches(Object("a", "n", {{"disaster-recovery", "enabled"}}), nullptr));
  EXPECT_FALSE(f.Matches(Object("a", "n", {{"disaster-recovery", "disabled"}}), nullptr));
  EXPECT_FALSE(f.Matches(Object("a", "n"), nullptr));
}

TEST(ObjectFilter, NamespaceSelectorMatchesTheNamespacesLabels) {
  const ObjectFilter f = Filter(R"({"namespaceSelector": {"matchLabels": {"sync": "true"}}})");
  const json synced = {{"sync", "true"}};
  EXPECT_TRUE(f.Matches(Object("a", "n"), &synced));
  const json unsynced = {{"sync", "false"}};
  EXPECT_FALSE(f.Matches(Object("a", "n"), &unsynced));
  const json none;  // a namespace without labels
  EXPECT_FALSE(f.Matches(Object("a", "n"), &none));
  EXPECT_FALSE(f.Matches(Object("a", "n"), nullptr));  // namespace unknown
}

TEST(ObjectFilter, ClusterScopedObjectsNeverMatchANamespaceSelector) {
  const json labels = {{"sync", "true"}};
  EXPECT_FALSE(Filter(R"({"namespaceSelector": {"matchLabels": {"sync": "true"}}})")
                   .Matches(Object("crd", ""), &labels));
  EXPECT_FALSE(Filter(R"({"namespaceSelector": {}})").Matches(Object("crd", ""), &labels));
  EXPECT_TRUE(Filter(R"({"namespaceSelector": {}})").Matches(Object("a", "n"), &labels));
}

TEST(ObjectFilter, NamespaceSelectorWithNotInMatchesNamespacesWithoutTheLabel) {
  const ObjectFilter f = Filter(
      R"({"namespaceSelector": {"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}})");
  const json none = json::object();
  EXPECT_TRUE(f.Matches(Object("a", "n"), &none));
  const json prod = {{"env", "prod"}};
  EXPECT_FALSE(f.Matches(Object("a", "n"), &prod));
}

TEST(ObjectFilter, RegexIsUnanchoredLikeGoMatchString) {
  const ObjectFilter f = Filter(R"({"nameSelector": {"regex": ["config.*"]}})");
  EXPECT_TRUE(f.MatchesName("config"));
  EXPECT_TRUE(f.MatchesName("app-config-v2"));
  EXPECT_FALSE(f.MatchesName("conf"));
  const ObjectFilter anchored = Filter(R"({"nameSelector": {"regex": ["^config$"]}})");
  EXPECT_TRUE(anchored.MatchesName("config"));
  EXPECT_FALSE(anchored.MatchesName("app-config"));
}

TEST(ObjectFilter, AtLeastOneRegexMustMatchAndNoExcludeRegex) {
  const ObjectFilter f =
      Filter(R"({"nameSelector": {"regex": ["^web-", "^api-"], "excludeRegex": ["-test$", "canary"]}})");
  EXPECT_TRUE(f.MatchesName("web-1"));
  EXPECT_TRUE(f.MatchesName("api-2"));
  EXPECT_FALSE(f.MatchesName("worker"));
  EXPECT_FALSE(f.MatchesName("web-test"));
  EXPECT_FALSE(f.MatchesName("api-canary-1"));
  const ObjectFilter only_exclude = Filter(R"({"nameSelector": {"excludeRegex": ["\\.test$"]}})");
  EXPECT_TRUE(only_exclude.MatchesName("settings"));
  EXPECT_FALSE(only_exclude.MatchesName("settings.test"));
  EXPECT_TRUE(only_exclude.MatchesName("settings-test"));
}

TEST(ObjectFilter, EmptyRegexListSelectsAllNames) {
  EXPECT_TRUE(Filter(R"({"nameSelector": {"regex": [], "excludeRegex": []}})").MatchesName("x"));
}

TEST(ObjectFilter, AllCriteriaMustHold) {
  const ObjectFilter f = Filter(R"({"selector": {"matchLabels": {"app": "web"}},
      "namespaceSelector": {"matchLabels": {"sync": "true"}},
      "nameSelector": {"excludeRegex": ["^tmp-"]}})");
  const json synced = {{"sync", "true"}};
  EXPECT_TRUE(f.Matches(Object("web", "n", {{"app", "web"}}), &synced));
  EXPECT_FALSE(f.Matches(Object("tmp-web", "n", {{"app", "web"}}), &synced));
  EXPECT_FALSE(f.Matches(Object("web", "n", {{"app", "db"}}), &synced));
  EXPECT_FALSE(f.Matches(Object("web", "n", {{"app", "web"}}), nullptr));
}

TEST(ObjectFilter, ToJsonReturnsTheFiltersAsGiven) {
  const json given = json::parse(R"({"selector": {"matchLabels": {"a": "b"}},
      "nameSelector": {"excludeRegex": ["^(default|deployer|builder)$"]}})");
  EXPECT_EQ(ObjectFilter::FromJson(given).ToJson(), given);
  EXPECT_EQ(ObjectFilter().ToJson(), json::object());
}

TEST(ObjectFilter, ThrowingFromJsonReportsEveryProblem) {
  try {
    Filter(R"({"selector": 3, "nameSelector": {"regex": ["a(", "[z-a]"]}})");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    ASSERT_EQ(e.problems().size(), 3u);
    EXPECT_EQ(e.problems()[0].field, "selector");
    EXPECT_EQ(e.problems()[0].reason, "InvalidSelector");
    EXPECT_EQ(e.problems()[1].field, "nameSelector.regex[0]");
    EXPECT_EQ(e.problems()[2].field, "nameSelector.regex[1]");
    EXPECT_EQ(e.problems()[2].reason, "InvalidRegex");
  }
}

TEST(SelectorsProvablyDisjoint, DifferentValuesOfOneKeyAreDisjoint) {
  EXPECT_TRUE(SelectorsProvablyDisjoint(LabelSelector::Parse("env=pre"),
                                        LabelSelector::Parse("env=pre-second")));
  EXPECT_FALSE(SelectorsProvablyDisjoint(LabelSelector::Parse("env=pre"),
                                         LabelSelector::Parse("env=pre")));
  EXPECT_FALSE(SelectorsProvablyDisjoint(LabelSelector::Parse("env=pre"),
                                         LabelSelector::Parse("tier=web")));
}

TEST(SelectorsProvablyDisjoint, SetOperatorsThatCannotBothHold) {
  const auto disjoint = [](const char* a, const char* b) {
    return SelectorsProvablyDisjoint(LabelSelector::Parse(a), LabelSelector::Parse(b));
  };
  EXPECT_TRUE(disjoint("env in (a,b)", "env in (c)"));
  EXPECT_FALSE(disjoint("env in (a,b)", "env in (b,c)"));
  EXPECT_TRUE(disjoint("env in (a,b)", "env notin (a,b,c)"));
  EXPECT_FALSE(disjoint("env in (a,b)", "env notin (a)"));
  EXPECT_TRUE(disjoint("env=a", "env!=a"));
  EXPECT_TRUE(disjoint("env", "!env"));
  EXPECT_TRUE(disjoint("!env", "env=a"));
  EXPECT_FALSE(disjoint("!env", "env!=a"));
  EXPECT_FALSE(disjoint("env notin (a)", "env notin (b)"));
  EXPECT_FALSE(disjoint("", "env=a"));
}

TEST(FiltersProvablyDisjoint, NeedsBothSelectorsOrBothNamespaceSelectors) {
  const ObjectFilter pre = Filter(R"({"namespaceSelector": {"matchLabels": {"env": "pre"}}})");
  const ObjectFilter second = Filter(R"({"namespaceSelector": {"matchLabels": {"env": "pre-second"}}})");
  const ObjectFilter label_pre = Filter(R"({"selector": {"matchLabels": {"env": "pre"}}})");
  const ObjectFilter label_other = Filter(R"({"selector": {"matchLabels": {"env": "other"}}})");
  EXPECT_TRUE(FiltersProvablyDisjoint(pre, second));
  EXPECT_TRUE(FiltersProvablyDisjoint(label_pre, label_other));
  EXPECT_FALSE(FiltersProvablyDisjoint(pre, label_other));
  EXPECT_FALSE(FiltersProvablyDisjoint(pre, pre));
  EXPECT_FALSE(FiltersProvablyDisjoint(ObjectFilter(), pre));
}

}  // namespace
}  // namespace ro::plugins::kubernetes

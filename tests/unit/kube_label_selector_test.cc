#include "ro/kube/label_selector.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>

namespace ro::kube {
namespace {

using nlohmann::json;
using Labels = LabelSelector::Labels;

// The `part()` of the SelectorError thrown by `fn`, or "<no error>".
template <typename Fn>
std::string ErrorPart(const Fn& fn) {
  try {
    fn();
  } catch (const SelectorError& e) {
    return e.part();
  }
  return "<no error>";
}

std::string Canonical(std::string_view text) { return LabelSelector::Parse(text).ToString(); }

TEST(LabelSelector, EmptySelectorMatchesEverything) {
  const LabelSelector s = LabelSelector::Parse("");
  EXPECT_TRUE(s.Empty());
  EXPECT_TRUE(s.Matches(Labels{}));
  EXPECT_TRUE(s.Matches(Labels{{"a", "b"}}));
  EXPECT_EQ(s.ToString(), "");
  EXPECT_TRUE(LabelSelector::FromJson(json::object()).Matches(Labels{{"x", "y"}}));
}

TEST(LabelSelector, NullJsonSelectorMatchesNothing) {
  const LabelSelector s = LabelSelector::FromJson(json(nullptr));
  EXPECT_TRUE(s.MatchesNothing());
  EXPECT_FALSE(s.Empty());
  EXPECT_FALSE(s.Matches(Labels{}));
  EXPECT_FALSE(s.Matches(Labels{{"a", "b"}}));
}

TEST(LabelSelector, ParsesEveryOperatorOfTheStringForm) {
  const LabelSelector s = LabelSelector::Parse("a=b,c!=d,e in (x,y),f notin (z),g,!h");
  ASSERT_EQ(s.requirements().size(), 6u);
  const Labels good{{"a", "b"}, {"e", "y"}, {"g", ""}};
  EXPECT_TRUE(s.Matches(good));
  Labels bad = good;
  bad["a"] = "other";
  EXPECT_FALSE(s.Matches(bad));
  bad = good;
  bad["c"] = "d";
  EXPECT_FALSE(s.Matches(bad));
  bad = good;
  bad["e"] = "w";
  EXPECT_FALSE(s.Matches(bad));
  bad = good;
  bad["f"] = "z";
  EXPECT_FALSE(s.Matches(bad));
  bad = good;
  bad.erase("g");
  EXPECT_FALSE(s.Matches(bad));
  bad = good;
  bad["h"] = "anything";
  EXPECT_FALSE(s.Matches(bad));
}

TEST(LabelSelector, NotEqualsAndNotInMatchObjectsWithoutTheKey) {
  EXPECT_TRUE(LabelSelector::Parse("c!=d").Matches(Labels{}));
  EXPECT_TRUE(LabelSelector::Parse("f notin (z)").Matches(Labels{}));
  EXPECT_FALSE(LabelSelector::Parse("e in (x)").Matches(Labels{}));
  EXPECT_FALSE(LabelSelector::Parse("a=b").Matches(Labels{}));
}

TEST(LabelSelector, ToStringIsCanonicalAndRoundTrips) {
  EXPECT_EQ(Canonical(" z = 1 , a in ( y , x ) , !m , k "), "a in (x,y),k,!m,z=1");
  EXPECT_EQ(Canonical("a==b"), "a=b");
  EXPECT_EQ(Canonical("a notin (b,a,b)"), "a notin (a,b)");
  const LabelSelector s = LabelSelector::Parse("tier notin (db),app=web,!legacy");
  EXPECT_EQ(LabelSelector::Parse(s.ToString()), s);
}

TEST(LabelSelector, AcceptsEmptyValuesAndPrefixedKeys) {
  const LabelSelector s = LabelSelector::Parse("example.com/role=,app.kubernetes.io/name in (a,)");
  EXPECT_TRUE(s.Matches(Labels{{"example.com/role", ""}, {"app.kubernetes.io/name", ""}}));
  EXPECT_FALSE(s.Matches(Labels{{"example.com/role", "x"}, {"app.kubernetes.io/name", "a"}}));
  EXPECT_EQ(s.ToString(), "app.kubernetes.io/name in (,a),example.com/role=");
}

TEST(LabelSelector, KeywordsAreValuesInsideValuePositions) {
  EXPECT_TRUE(LabelSelector::Parse("a=in").Matches(Labels{{"a", "in"}}));
  EXPECT_TRUE(LabelSelector::Parse("a in (notin)").Matches(Labels{{"a", "notin"}}));
}

TEST(LabelSelector, ReportsSyntaxErrorsNearTheBadToken) {
  EXPECT_EQ(ErrorPart([] { LabelSelector::Parse("a in x"); }), "x");
  EXPECT_EQ(ErrorPart([] { LabelSelector::Parse("a in (x"); }), "end of selector");
  EXPECT_EQ(ErrorPart([] { LabelSelector::Parse("a b"); }), "b");
  EXPECT_EQ(ErrorPart([] { LabelSelector::Parse(",a"); }), ",");
  EXPECT_EQ(ErrorPart([] { LabelSelector::Parse("!"); }), "end of selector");
}

TEST(LabelSelector, RejectsOperatorsThatAreNotLabelOperators) {
  EXPECT_EQ(ErrorPart([] { LabelSelector::Parse("a>1"); }), ">");
  EXPECT_EQ(ErrorPart([] { LabelSelector::Parse("a<1"); }), "<");
}

TEST(LabelSelector, RejectsInWithoutValuesInStringForm) {
  EXPECT_EQ(ErrorPart([] { LabelSelector::Parse("a in ()"); }), "a");
}

TEST(LabelSelector, RejectsBadKeysAndValuesByKubernetesRules) {
  EXPECT_EQ(ErrorPart([] { LabelSelector::Parse("-a=b"); }), "-a");
  EXPECT_EQ(ErrorPart([] { LabelSelector::Parse("a=b-"); }), "b-");
  EXPECT_EQ(ErrorPart([] { LabelSelector::Parse("Example.com/a=b"); }), "Example.com/a");
  EXPECT_EQ(ErrorPart([] { LabelSelector::Parse("/a=b"); }), "/a");
  EXPECT_EQ(ErrorPart([] { LabelSelector::Parse("a/b/c"); }), "a/b/c");
  EXPECT_EQ(ErrorPart([] { LabelSelector::Parse(std::string(64, 'k')); }), std::string(64, 'k'));
  EXPECT_EQ(ErrorPart([] { LabelSelector::Parse("a=" + std::string(64, 'v')); }),
            std::string(64, 'v'));
  EXPECT_EQ(ErrorPart([] { LabelSelector::Parse("a=" + std::string(63, 'v')); }), "<no error>");
  EXPECT_EQ(ErrorPart([] { LabelSelector::Parse("a in (ok,b@d)"); }), "b@d");
}

TEST(LabelSelector, ValidatesKeysAndValuesDirectly) {
  EXPECT_EQ(ValidateLabelKey("app.kubernetes.io/name"), "");
  EXPECT_EQ(ValidateLabelKey("a_b.c-d"), "");
  EXPECT_NE(ValidateLabelKey(""), "");
  EXPECT_NE(ValidateLabelKey("a..b-/x"), "");
  EXPECT_NE(ValidateLabelKey(std::string(254, 'a') + "/x"), "");
  EXPECT_EQ(ValidateLabelValue(""), "");
  EXPECT_NE(ValidateLabelValue("_x"), "");
}

TEST(LabelSelector, FromJsonCombinesMatchLabelsAndExpressions) {
  const json selector = json::parse(R"({
    "matchLabels": {"app": "web"},
    "matchExpressions": [
      {"key": "tier", "operator": "In", "values": ["front", "edge"]},
      {"key": "env", "operator": "NotIn", "values": ["dev"]},
      {"key": "owner", "operator": "Exists"},
      {"key": "legacy", "operator": "DoesNotExist", "values": []}
    ]})");
  const LabelSelector s = LabelSelector::FromJson(selector);
  EXPECT_EQ(s.ToString(), "app=web,env notin (dev),!legacy,owner,tier in (edge,front)");
  EXPECT_TRUE(s.Matches(Labels{{"app", "web"}, {"tier", "edge"}, {"owner", "me"}}));
  EXPECT_FALSE(s.Matches(Labels{{"app", "web"}, {"tier", "edge"}}));
  EXPECT_FALSE(s.Matches(Labels{{"app", "web"}, {"tier", "edge"}, {"owner", "me"}, {"env", "dev"}}));
  EXPECT_EQ(LabelSelector::Parse(s.ToString()), s);
}

TEST(LabelSelector, FromJsonNamesTheBadField) {
  EXPECT_EQ(ErrorPart([] {
              LabelSelector::FromJson(json::parse(
                  R"({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]})"));
            }),
            "matchExpressions[0].operator");
  EXPECT_EQ(ErrorPart([] {
              LabelSelector::FromJson(json::parse(
                  R"({"matchExpressions": [{"key": "a", "operator": "Exists"},
                                           {"key": "b", "operator": "In", "values": []}]})"));
            }),
            "matchExpressions[1].values");
  EXPECT_EQ(ErrorPart([] {
              LabelSelector::FromJson(json::parse(
                  R"({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]})"));
            }),
            "matchExpressions[0].values");
  EXPECT_EQ(ErrorPart([] {
              LabelSelector::FromJson(json::parse(
                  R"({"matchExpressions": [{"key": "bad key", "operator": "Exists"}]})"));
            }),
            "matchExpressions[0].key");
  EXPECT_EQ(ErrorPart([] { LabelSelector::FromJson(json::parse(R"({"matchLabels": {"a": "b c"}})")); }),
            "matchLabels.a");
  EXPECT_EQ(ErrorPart([] { LabelSelector::FromJson(json::parse(R"({"matchLabels": {"a": 1}})")); }),
            "matchLabels.a");
  EXPECT_EQ(ErrorPart([] { LabelSelector::FromJson(json::parse(R"("a=b")")); }), "selector");
}

TEST(LabelSelector, SelectorErrorIsAnInvalidArgument) {
  EXPECT_THROW(LabelSelector::Parse("a in"), std::invalid_argument);
}

TEST(LabelSelector, MatchesJsonLabelsAndWholeObjects) {
  const LabelSelector s = LabelSelector::Parse("app=web,!legacy");
  EXPECT_TRUE(s.Matches(json{{"app", "web"}}));
  EXPECT_FALSE(s.Matches(json(nullptr)));
  EXPECT_TRUE(s.MatchesObject(json::parse(R"({"metadata": {"labels": {"app": "web"}}})")));
  EXPECT_FALSE(s.MatchesObject(json::parse(R"({"metadata": {"name": "x"}})")));
  EXPECT_TRUE(LabelSelector::Parse("!legacy").MatchesObject(json::parse(R"({"metadata": {}})")));
}

}  // namespace
}  // namespace ro::kube

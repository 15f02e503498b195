#include "ro/kube/label_selector.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "../../src/kube/label_selector_lexer.h"

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

TEST(LabelSelector, GreaterAndLessThanCompareIntegers) {
  const LabelSelector gt = LabelSelector::Parse("a>1");
  ASSERT_EQ(gt.requirements().size(), 1u);
  EXPECT_EQ(gt.requirements()[0].op, LabelRequirement::Operator::kGreaterThan);
  EXPECT_TRUE(gt.Matches(Labels{{"a", "2"}}));
  EXPECT_TRUE(gt.Matches(Labels{{"a", "10"}}));  // as integers, not strings
  EXPECT_FALSE(gt.Matches(Labels{{"a", "1"}}));
  EXPECT_FALSE(gt.Matches(Labels{{"a", "v2"}}));  // not an integer: no match
  EXPECT_FALSE(gt.Matches(Labels{}));             // the key must exist
  EXPECT_TRUE(LabelSelector::Parse("a<007").Matches(Labels{{"a", "-3"}}));
  EXPECT_EQ(Canonical("b<5 , a>1"), "a>1,b<5");
  EXPECT_EQ(ErrorPart([] { LabelSelector::Parse("a>b"); }), "b");
  EXPECT_EQ(ErrorPart([] { LabelSelector::Parse("a>"); }), "");
  EXPECT_EQ(ErrorPart([] { LabelSelector::Parse("a>-1"); }), "-1");  // not a label value
  EXPECT_EQ(ErrorPart([] { LabelSelector::Parse("a>99999999999999999999"); }),
            "99999999999999999999");  // overflows int64
}

TEST(LabelSelector, AnEmptyValueSetIsTheEmptyValue) {
  const LabelSelector s = LabelSelector::Parse("a in ()");
  ASSERT_EQ(s.requirements().size(), 1u);
  EXPECT_EQ(s.requirements()[0].values, (std::vector<std::string>{""}));
  EXPECT_EQ(s.ToString(), "a in ()");
  EXPECT_FALSE(s.Matches(Labels{}));
  EXPECT_TRUE(s.Matches(Labels{{"a", ""}}));
  EXPECT_FALSE(s.Matches(Labels{{"a", "x"}}));
  EXPECT_EQ(LabelSelector::Parse(s.ToString()), s);
}

TEST(LabelSelector, InAndNotInAreKeysOutsideTheOperatorPosition) {
  EXPECT_TRUE(LabelSelector::Parse("notin=in").Matches(Labels{{"notin", "in"}}));
  EXPECT_EQ(Canonical("notin=in"), "notin=in");
  const LabelSelector s = LabelSelector::Parse("in in (in),notin notin (notin),!in");
  EXPECT_EQ(s.ToString(), "in in (in),!in,notin notin (notin)");
  EXPECT_EQ(LabelSelector::Parse(s.ToString()), s);
  EXPECT_TRUE(LabelSelector::Parse("in").Matches(Labels{{"in", "x"}}));
  EXPECT_NE(ErrorPart([] { LabelSelector::Parse("a in in"); }), "<no error>");
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


// ---- apimachinery's tables (k8s.io/apimachinery/pkg/labels/selector_test.go) ----

// TestSelectorParse: valid strings, whose String() is the input without spaces, and
// invalid ones.
TEST(LabelSelectorApimachinery, SelectorParse) {
  for (const char* good : {"x=a,y=b,z=c", "", "x!=a,y=b", "x=", "x= ", "x=,z= ", "x= ,z= ",
                           "!x", "x>1", "x>1,z<5"}) {
    SCOPED_TRACE(good);
    std::string without_spaces(good);
    std::erase(without_spaces, ' ');
    try {
      EXPECT_EQ(LabelSelector::Parse(good).ToString(), without_spaces);
    } catch (const SelectorError& e) {
      ADD_FAILURE() << e.what();
    }
  }
  for (const char* bad : {"x=a||y=b", "x==a==b", "!x=a", "x<a"}) {
    EXPECT_THROW(LabelSelector::Parse(bad), SelectorError) << bad;
  }
}

// TestDeterministicParse.
TEST(LabelSelectorApimachinery, DeterministicParse) {
  EXPECT_EQ(Canonical("x=a,a=x"), Canonical("a=x,x=a"));
}

// TestSelectorMatches.
TEST(LabelSelectorApimachinery, SelectorMatches) {
  struct Case {
    const char* selector;
    Labels labels;
    bool match;
  };
  const Labels labelset{{"foo", "bar"}, {"baz", "blah"}};
  const std::vector<Case> cases = {
      {"", {{"x", "y"}}, true},
      {"x=y", {{"x", "y"}}, true},
      {"x=y,z=w", {{"x", "y"}, {"z", "w"}}, true},
      {"x!=y,z!=w", {{"x", "z"}, {"z", "a"}}, true},
      {"notin=in", {{"notin", "in"}}, true},  // in and notin as key and value
      {"x", {{"x", "z"}}, true},
      {"!x", {{"y", "z"}}, true},
      {"x>1", {{"x", "2"}}, true},
      {"x<1", {{"x", "0"}}, true},
      {"x=z", {}, false},
      {"x=y", {{"x", "z"}}, false},
      {"x=y,z=w", {{"x", "w"}, {"z", "w"}}, false},
      {"x!=y,z!=w", {{"x", "z"}, {"z", "w"}}, false},
      {"x", {{"y", "z"}}, false},
      {"!x", {{"x", "z"}}, false},
      {"x>1", {{"x", "0"}}, false},
      {"x<1", {{"x", "2"}}, false},
      {"foo=bar", labelset, true},
      {"baz=blah", labelset, true},
      {"foo=bar,baz=blah", labelset, true},
      {"foo=blah", labelset, false},
      {"baz=bar", labelset, false},
      {"foo=bar,foobar=bar,baz=blah", labelset, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.selector);
    try {
      EXPECT_EQ(LabelSelector::Parse(c.selector).Matches(c.labels), c.match);
    } catch (const SelectorError& e) {
      ADD_FAILURE() << e.what();
    }
  }
}

using internal::ScanSelector;
using internal::SelectorLexeme;
using internal::SelectorLexer;
using T = internal::SelectorToken;

std::vector<T> Tokens(std::string_view text) {
  std::vector<T> out;
  for (const SelectorLexeme& l : ScanSelector(text)) out.push_back(l.token);
  return out;
}

// TestLexer: one token per input; the literal is the input.
TEST(LabelSelectorApimachinery, Lexer) {
  const std::vector<std::pair<const char*, T>> cases = {
      {"", T::kEnd},
      {",", T::kComma},
      {"notin", T::kNotIn},
      {"in", T::kIn},
      {"=", T::kEquals},
      {"==", T::kDoubleEquals},
      {">", T::kGreaterThan},
      {"<", T::kLessThan},
      {"!", T::kDoesNotExist},  // the longest token wins: "!" here, "!=" below
      {"!=", T::kNotEquals},
      {"(", T::kOpenPar},
      {")", T::kClosedPar},
      {"~", T::kIdentifier},  // anything but the symbols is part of an identifier
      {"||", T::kIdentifier},
  };
  for (const auto& [text, token] : cases) {
    SelectorLexer lexer(text);
    EXPECT_EQ(lexer.Lex(), (SelectorLexeme{token, text})) << text;
  }
}

// TestLexerSequence and TestParserLookahead (the same sequences, with the final end).
TEST(LabelSelectorApimachinery, LexerSequenceAndParserLookahead) {
  const std::vector<std::pair<const char*, std::vector<T>>> cases = {
      {"key in ( value )", {T::kIdentifier, T::kIn, T::kOpenPar, T::kIdentifier, T::kClosedPar}},
      {"key notin ( value )",
       {T::kIdentifier, T::kNotIn, T::kOpenPar, T::kIdentifier, T::kClosedPar}},
      {"key in ( value1, value2 )",
       {T::kIdentifier, T::kIn, T::kOpenPar, T::kIdentifier, T::kComma, T::kIdentifier,
        T::kClosedPar}},
      {"key", {T::kIdentifier}},
      {"!key", {T::kDoesNotExist, T::kIdentifier}},
      {"()", {T::kOpenPar, T::kClosedPar}},
      {"", {}},
      {"x in (),y",
       {T::kIdentifier, T::kIn, T::kOpenPar, T::kClosedPar, T::kComma, T::kIdentifier}},
      {"== != (), = notin",
       {T::kDoubleEquals, T::kNotEquals, T::kOpenPar, T::kClosedPar, T::kComma, T::kEquals,
        T::kNotIn}},
      {"key>2", {T::kIdentifier, T::kGreaterThan, T::kIdentifier}},
      {"key<1", {T::kIdentifier, T::kLessThan, T::kIdentifier}},
  };
  for (const auto& [text, tokens] : cases) {
    std::vector<T> want = tokens;
    want.push_back(T::kEnd);
    EXPECT_EQ(Tokens(text), want) << text;
  }
  SelectorLexer lexer("a");
  lexer.Lex();
  EXPECT_EQ(lexer.Lex().token, T::kEnd);
  EXPECT_EQ(lexer.Lex().token, T::kEnd);  // and stays there
}

// TestSetSelectorParser: validity, and (where the Go table compares them) the parsed
// requirements, sorted by key.
TEST(LabelSelectorApimachinery, SetSelectorParser) {
  using Op = LabelRequirement::Operator;
  using Reqs = std::vector<LabelRequirement>;
  struct Case {
    const char* in;
    bool valid;
    bool compare;
    Reqs out;
  };
  const std::vector<Case> cases = {
      {"", true, true, {}},
      {"\rx", true, true, {{"x", Op::kExists, {}}}},
      {"this-is-a-dns.domain.com/key-with-dash", true, true,
       {{"this-is-a-dns.domain.com/key-with-dash", Op::kExists, {}}}},
      {"this-is-another-dns.domain.com/key-with-dash in (so,what)", true, true,
       {{"this-is-another-dns.domain.com/key-with-dash", Op::kIn, {"so", "what"}}}},
      {"0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)", true, true,
       {{"0.1.2.domain/99", Op::kNotIn, {"10.10.100.1", "tick.tack.clock"}}}},
      {"foo  in\t (abc)", true, true, {{"foo", Op::kIn, {"abc"}}}},
      {"x notin\n (abc)", true, true, {{"x", Op::kNotIn, {"abc"}}}},
      {"x  notin\t\t\t(abc,def)", true, true, {{"x", Op::kNotIn, {"abc", "def"}}}},
      {"x in (abc,def)", true, true, {{"x", Op::kIn, {"abc", "def"}}}},
      {"x in (abc,)", true, true, {{"x", Op::kIn, {"", "abc"}}}},
      {"x in ()", true, true, {{"x", Op::kIn, {""}}}},
      {"x notin (abc,,def),bar,z in (),w", true, true,
       {{"bar", Op::kExists, {}},
        {"w", Op::kExists, {}},
        {"x", Op::kNotIn, {"", "abc", "def"}},
        {"z", Op::kIn, {""}}}},
      {"x,y in (a)", true, false, {}},
      {"x=a", true, true, {{"x", Op::kEquals, {"a"}}}},
      {"x>1", true, true, {{"x", Op::kGreaterThan, {"1"}}}},
      {"x<7", true, true, {{"x", Op::kLessThan, {"7"}}}},
      {"x=a,y!=b", true, true, {{"x", Op::kEquals, {"a"}}, {"y", Op::kNotEquals, {"b"}}}},
      {"x=a,y!=b,z in (h,i,j)", true, true,
       {{"x", Op::kEquals, {"a"}}, {"y", Op::kNotEquals, {"b"}}, {"z", Op::kIn, {"h", "i", "j"}}}},
      {"x=a||y=b", false, false, {}},
      {"x,,y", false, false, {}},
      {",x,y", false, false, {}},
      {"x nott in (y)", false, false, {}},
      {"x notin ( )", true, true, {{"x", Op::kNotIn, {""}}}},
      {"x notin (, a)", true, true, {{"x", Op::kNotIn, {"", "a"}}}},
      {"a in (xyz),", false, false, {}},
      {"a in (xyz)b notin ()", false, false, {}},
      {"a ", true, true, {{"a", Op::kExists, {}}}},
      {"a in (x,y,notin, z,in)", true, true,
       {{"a", Op::kIn, {"in", "notin", "x", "y", "z"}}}},  // in/notin as values
      {"a in (xyz abc)", false, false, {}},              // no comma
      {"a notin(", false, false, {}},                    // badly formed
      {"a (", false, false, {}},                         // cpar
      {"(", false, false, {}},                           // opar
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.in);
    if (!c.valid) {
      EXPECT_THROW(LabelSelector::Parse(c.in), SelectorError);
      continue;
    }
    try {
      const LabelSelector s = LabelSelector::Parse(c.in);
      if (c.compare) {
        EXPECT_EQ(s.requirements(), c.out);
      }
    } catch (const SelectorError& e) {
      ADD_FAILURE() << e.what();
    }
  }
}

}  // namespace
}  // namespace ro::kube

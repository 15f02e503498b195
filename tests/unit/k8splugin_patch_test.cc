// JsonPatch: RFC 6902 add/replace/remove applied to objects, skipIfNotFoundOnDelete,
// TransformError naming the failing operation, and the json-patch-tests conformance
// tables (github.com/json-patch/json-patch-tests, tests.json and spec_tests.json).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "ro/plugins/kubernetes/json_patch.h"

namespace ro::plugins::kubernetes {
namespace {

using nlohmann::json;

json Deployment() {
  return json::parse(R"({"apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "n", "labels": {"app": "web"}},
    "spec": {"replicas": 3, "strategy": {"type": "RollingUpdate"},
             "template": {"spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}}})");
}

JsonPatch Patch(const char* text) { return JsonPatch::FromJson(json::parse(text)); }

TEST(JsonPatch, ReplaceAddAndRemoveApplyInOrder) {
  const JsonPatch p = Patch(R"([
    {"op": "replace", "path": "/spec/replicas", "value": 0},
    {"op": "add", "path": "/metadata/labels/standby", "value": "true"},
    {"op": "add", "path": "/spec/template/spec/containers/-", "value": {"name": "sidecar"}},
    {"op": "add", "path": "/spec/template/spec/containers/0/env", "value": []},
    {"op": "remove", "path": "/spec/strategy"}])");
  json d = Deployment();
  p.Apply(d, {});
  EXPECT_EQ(d["spec"]["replicas"], 0);
  EXPECT_EQ(d["metadata"]["labels"]["standby"], "true");
  EXPECT_EQ(d["spec"]["template"]["spec"]["containers"].size(), 2u);
  EXPECT_EQ(d["spec"]["template"]["spec"]["containers"][0]["env"], json::array());
  EXPECT_FALSE(d["spec"].contains("strategy"));
}

TEST(JsonPatch, AppliedLeavesTheInputUntouched) {
  const json d = Deployment();
  const json out = Patch(R"([{"op": "replace", "path": "/spec/replicas", "value": 0}])").Applied(d, {});
  EXPECT_EQ(d["spec"]["replicas"], 3);
  EXPECT_EQ(out["spec"]["replicas"], 0);
}

TEST(JsonPatch, PointerEscapesSelectKeysWithSlashes) {
  json d = Deployment();
  d["metadata"]["annotations"] = {{"example.com/owner", "team-a"}};
  Patch(R"([{"op": "replace", "path": "/metadata/annotations/example.com~1owner", "value": "team-b"}])")
      .Apply(d, {});
  EXPECT_EQ(d["metadata"]["annotations"]["example.com/owner"], "team-b");
}

TEST(JsonPatch, RemoveOfAnAbsentPathFailsUnlessSkipIfNotFoundOnDelete) {
  const JsonPatch p = Patch(R"([{"op": "remove", "path": "/spec/paused"},
                                {"op": "replace", "path": "/spec/replicas", "value": 1}])");
  json d = Deployment();
  try {
    p.Apply(d, {});
    FAIL() << "expected TransformError";
  } catch (const TransformError& e) {
    EXPECT_EQ(e.op_index(), 0u);
    EXPECT_EQ(e.op(), PatchOp::kRemove);
    EXPECT_EQ(e.path(), "/spec/paused");
    EXPECT_NE(std::string(e.what()).find("patch operation 0 (remove /spec/paused) failed"),
              std::string::npos)
        << e.what();
  }
  json skipped = Deployment();
  p.Apply(skipped, PatchOptions{.skip_if_not_found_on_delete = true});
  EXPECT_EQ(skipped["spec"]["replicas"], 1);
  // A remove under a missing parent is also "not found".
  json other = Deployment();
  Patch(R"([{"op": "remove", "path": "/status/conditions/0"}])")
      .Apply(other, PatchOptions{.skip_if_not_found_on_delete = true});
  EXPECT_EQ(other, Deployment());
}

TEST(JsonPatch, ReplaceOfAnAbsentPathFailsEvenWithSkipIfNotFound) {
  const JsonPatch p = Patch(R"([{"op": "replace", "path": "/spec/paused", "value": true}])");
  json d = Deployment();
  try {
    p.Apply(d, PatchOptions{.skip_if_not_found_on_delete = true});
    FAIL() << "expected TransformError";
  } catch (const TransformError& e) {
    EXPECT_EQ(e.op(), PatchOp::kReplace);
    EXPECT_NE(std::string(e.what()).find("paused"), std::string::npos) << e.what();
    // nlohmann's "[json.exception...]" tag is not shown.
    EXPECT_EQ(std::string(e.what()).find("[json.exception"), std::string::npos) << e.what();
  }
}

TEST(JsonPatch, AddNeedsAnExistingParent) {
  json d = Deployment();
  EXPECT_THROW(Patch(R"([{"op": "add", "path": "/spec/missing/child", "value": 1}])").Apply(d, {}),
               TransformError);
  EXPECT_THROW(Patch(R"([{"op": "add", "path": "/spec/template/spec/containers/5", "value": 1}])")
                   .Apply(d, {}),
               TransformError);
}

TEST(JsonPatch, AccessorsAndToJsonDescribeTheOperations) {
  const json given = json::parse(R"([{"op": "replace", "path": "/spec/replicas", "value": 1},
                                     {"op": "remove", "path": "/spec/strategy"}])");
  const JsonPatch p = JsonPatch::FromJson(given);
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p.op(0), PatchOp::kReplace);
  EXPECT_EQ(p.path(1), "/spec/strategy");
  EXPECT_EQ(p.value(0), 1);
  EXPECT_EQ(p.ToJson(), given);
  EXPECT_TRUE(JsonPatch().empty());
  EXPECT_TRUE(JsonPatch::FromJson(json(nullptr)).empty());
  EXPECT_EQ(JsonPatch().ToJson(), json::array());
}

TEST(JsonPatch, ValueNullIsAValidValueForReplace) {
  json d = Deployment();
  Patch(R"([{"op": "replace", "path": "/spec/strategy", "value": null}])").Apply(d, {});
  EXPECT_TRUE(d["spec"]["strategy"].is_null());
}

TEST(JsonPatch, ThrowingFromJsonNamesFieldsRelativeToTheList) {
  try {
    Patch(R"([{"op": "test", "path": "/a", "value": 1}, {"op": "add", "path": "/kind", "value": 1}])");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    ASSERT_EQ(e.problems().size(), 2u);
    EXPECT_EQ(e.problems()[0].field, "[0].op");
    EXPECT_EQ(e.problems()[1].field, "[1].path");
    EXPECT_EQ(e.reason(), "InvalidPatch");
  }
  EXPECT_THROW(Patch(R"({"op": "add"})"), ConfigError);
}

TEST(JsonPatch, PatchOpNamesAreTheRfcNames) {
  EXPECT_EQ(PatchOpName(PatchOp::kAdd), "add");
  EXPECT_EQ(PatchOpName(PatchOp::kReplace), "replace");
  EXPECT_EQ(PatchOpName(PatchOp::kRemove), "remove");
}

// ---- RFC 6902 conformance: the json-patch-tests tables ----
//
// Every enabled record of tests.json and spec_tests.json, restated as a row. What the
// suite expects of an implementation of the whole RFC, we expect of ours with two
// deliberate restrictions, both refused up front by FromJson (ConfigError):
//   - only add, replace and remove exist (test, move, copy and unknown ops are refused);
//   - a path must not be "" (a transformation never replaces the whole object).
// A missing "value" is refused by FromJson too; every other error is a TransformError
// from Apply.
enum class Outcome {
  kApplies,   // Apply gives `expected`
  kFails,     // Apply throws TransformError
  kRefused,   // FromJson throws ConfigError
};

struct ConformanceCase {
  const char* source;  // which table and record
  const char* doc;
  const char* patch;
  Outcome outcome;
  const char* expected = "null";  // kApplies only
};

const std::vector<ConformanceCase>& ConformanceCases() {
  using enum Outcome;
  static const std::vector<ConformanceCase> cases = {
      // tests.json
      {"tests: empty patch on an empty object", R"({})", R"([])", kApplies, R"({})"},
      {"tests: empty patch", R"({"foo": 1})", R"([])", kApplies, R"({"foo": 1})"},
      {"tests: member order does not matter", R"({"foo": 1, "bar": 2})", R"([])", kApplies,
       R"({"bar": 2, "foo": 1})"},
      {"tests: member order inside an array", R"([{"foo": 1, "bar": 2}])", R"([])", kApplies,
       R"([{"bar": 2, "foo": 1}])"},
      {"tests: member order one level down", R"({"foo": {"foo": 1, "bar": 2}})", R"([])",
       kApplies, R"({"foo": {"bar": 2, "foo": 1}})"},
      {"tests: add replaces an existing member", R"({"foo": null})",
       R"([{"op": "add", "path": "/foo", "value": 1}])", kApplies, R"({"foo": 1})"},
      {"tests: add into a top-level array", R"([])",
       R"([{"op": "add", "path": "/0", "value": "foo"}])", kApplies, R"(["foo"])"},
      {"tests: top-level array, empty patch", R"(["foo"])", R"([])", kApplies, R"(["foo"])"},
      {"tests: add a numeric string", R"({})", R"([{"op": "add", "path": "/foo", "value": "1"}])",
       kApplies, R"({"foo": "1"})"},
      {"tests: add an integer", R"({})", R"([{"op": "add", "path": "/foo", "value": 1}])",
       kApplies, R"({"foo": 1})"},
      {"tests: add at the root turns an object into an array", R"({})",
       R"([{"op": "add", "path": "", "value": []}])", kRefused},
      {"tests: add at the root turns an array into an object", R"([])",
       R"([{"op": "add", "path": "", "value": {}}])", kRefused},
      {"tests: append to a root array", R"([])", R"([{"op": "add", "path": "/-", "value": "hi"}])",
       kApplies, R"(["hi"])"},
      {"tests: add at / is the empty member name", R"({})",
       R"([{"op": "add", "path": "/", "value": 1}])", kApplies, R"({"": 1})"},
      {"tests: a trailing slash is an empty member name", R"({"foo": {}})",
       R"([{"op": "add", "path": "/foo/", "value": 1}])", kApplies, R"({"foo": {"": 1}})"},
      {"tests: add a composite value", R"({"foo": 1})",
       R"([{"op": "add", "path": "/bar", "value": [1, 2]}])", kApplies,
       R"({"foo": 1, "bar": [1, 2]})"},
      {"tests: add into a composite value", R"({"foo": 1, "baz": [{"qux": "hello"}]})",
       R"([{"op": "add", "path": "/baz/0/foo", "value": "world"}])", kApplies,
       R"({"foo": 1, "baz": [{"qux": "hello", "foo": "world"}]})"},
      {"tests: add past the end of an array", R"({"bar": [1, 2]})",
       R"([{"op": "add", "path": "/bar/8", "value": "5"}])", kFails},
      {"tests: add at a negative index", R"({"bar": [1, 2]})",
       R"([{"op": "add", "path": "/bar/-1", "value": "5"}])", kFails},
      {"tests: add true", R"({"foo": 1})", R"([{"op": "add", "path": "/bar", "value": true}])",
       kApplies, R"({"foo": 1, "bar": true})"},
      {"tests: add false", R"({"foo": 1})", R"([{"op": "add", "path": "/bar", "value": false}])",
       kApplies, R"({"foo": 1, "bar": false})"},
      {"tests: add null", R"({"foo": 1})", R"([{"op": "add", "path": "/bar", "value": null}])",
       kApplies, R"({"foo": 1, "bar": null})"},
      {"tests: 0 is a member name in an object", R"({"foo": 1})",
       R"([{"op": "add", "path": "/0", "value": "bar"}])", kApplies,
       R"({"foo": 1, "0": "bar"})"},
      {"tests: add at the array's size appends", R"(["foo"])",
       R"([{"op": "add", "path": "/1", "value": "bar"}])", kApplies, R"(["foo", "bar"])"},
      {"tests: add inserts in the middle", R"(["foo", "sil"])",
       R"([{"op": "add", "path": "/1", "value": "bar"}])", kApplies,
       R"(["foo", "bar", "sil"])"},
      {"tests: add inserts at the front", R"(["foo", "sil"])",
       R"([{"op": "add", "path": "/0", "value": "bar"}])", kApplies,
       R"(["bar", "foo", "sil"])"},
      {"tests: add at last index + 1", R"(["foo", "sil"])",
       R"([{"op": "add", "path": "/2", "value": "bar"}])", kApplies,
       R"(["foo", "sil", "bar"])"},
      {"tests: add at an index greater than the size", R"(["foo", "sil"])",
       R"([{"op": "add", "path": "/3", "value": "bar"}])", kFails},
      {"tests: test op with a numeric-looking member name", R"({"1e0": "foo"})",
       R"([{"op": "test", "path": "/1e0", "value": "foo"}])", kRefused},
      {"tests: test op with a bad array index", R"(["foo", "bar"])",
       R"([{"op": "test", "path": "/1e0", "value": "bar"}])", kRefused},
      {"tests: a member name on an array", R"(["foo", "sil"])",
       R"([{"op": "add", "path": "/bar", "value": 42}])", kFails},
      {"tests: an added array is not flattened", R"(["foo", "sil"])",
       R"([{"op": "add", "path": "/1", "value": ["bar", "baz"]}])", kApplies,
       R"(["foo", ["bar", "baz"], "sil"])"},
      {"tests: remove a member", R"({"foo": 1, "bar": [1, 2, 3, 4]})",
       R"([{"op": "remove", "path": "/bar"}])", kApplies, R"({"foo": 1})"},
      {"tests: remove a nested member", R"({"foo": 1, "baz": [{"qux": "hello"}]})",
       R"([{"op": "remove", "path": "/baz/0/qux"}])", kApplies, R"({"foo": 1, "baz": [{}]})"},
      {"tests: replace with an array", R"({"foo": 1, "baz": [{"qux": "hello"}]})",
       R"([{"op": "replace", "path": "/foo", "value": [1, 2, 3, 4]}])", kApplies,
       R"({"foo": [1, 2, 3, 4], "baz": [{"qux": "hello"}]})"},
      {"tests: replace a nested member", R"({"foo": [1, 2, 3, 4], "baz": [{"qux": "hello"}]})",
       R"([{"op": "replace", "path": "/baz/0/qux", "value": "world"}])", kApplies,
       R"({"foo": [1, 2, 3, 4], "baz": [{"qux": "world"}]})"},
      {"tests: replace an element", R"(["foo"])",
       R"([{"op": "replace", "path": "/0", "value": "bar"}])", kApplies, R"(["bar"])"},
      {"tests: replace an element with 0", R"([""])",
       R"([{"op": "replace", "path": "/0", "value": 0}])", kApplies, R"([0])"},
      {"tests: replace an element with true", R"([""])",
       R"([{"op": "replace", "path": "/0", "value": true}])", kApplies, R"([true])"},
      {"tests: replace an element with false", R"([""])",
       R"([{"op": "replace", "path": "/0", "value": false}])", kApplies, R"([false])"},
      {"tests: replace an element with null", R"([""])",
       R"([{"op": "replace", "path": "/0", "value": null}])", kApplies, R"([null])"},
      {"tests: a replacing array is not flattened", R"(["foo", "sil"])",
       R"([{"op": "replace", "path": "/1", "value": ["bar", "baz"]}])", kApplies,
       R"(["foo", ["bar", "baz"]])"},
      {"tests: replace the whole document", R"({"foo": "bar"})",
       R"([{"op": "replace", "path": "", "value": {"baz": "qux"}}])", kRefused},
      {"tests: replace under a missing parent", R"({"bar": "baz"})",
       R"([{"op": "replace", "path": "/foo/bar", "value": false}])", kFails},
      {"tests: spurious members on a test op", R"({"foo": 1})",
       R"([{"op": "test", "path": "/foo", "value": 1, "spurious": 1}])", kRefused},
      {"tests: test a null member", R"({"foo": null})",
       R"([{"op": "test", "path": "/foo", "value": null}])", kRefused},
      {"tests: replace a null member", R"({"foo": null})",
       R"([{"op": "replace", "path": "/foo", "value": "truthy"}])", kApplies,
       R"({"foo": "truthy"})"},
      {"tests: move a null member", R"({"foo": null})",
       R"([{"op": "move", "from": "/foo", "path": "/bar"}])", kRefused},
      {"tests: copy a null member", R"({"foo": null})",
       R"([{"op": "copy", "from": "/foo", "path": "/bar"}])", kRefused},
      {"tests: remove a null member", R"({"foo": null})", R"([{"op": "remove", "path": "/foo"}])",
       kApplies, R"({})"},
      {"tests: replace a member with null", R"({"foo": "bar"})",
       R"([{"op": "replace", "path": "/foo", "value": null}])", kApplies, R"({"foo": null})"},
      {"tests: test ignores member order", R"({"foo": {"foo": 1, "bar": 2}})",
       R"([{"op": "test", "path": "/foo", "value": {"bar": 2, "foo": 1}}])", kRefused},
      {"tests: test ignores nested member order", R"({"foo": [{"foo": 1, "bar": 2}]})",
       R"([{"op": "test", "path": "/foo", "value": [{"bar": 2, "foo": 1}]}])", kRefused},
      {"tests: test passes", R"({"foo": {"bar": [1, 2, 5, 4]}})",
       R"([{"op": "test", "path": "/foo", "value": {"bar": [1, 2, 5, 4]}}])", kRefused},
      {"tests: test fails", R"({"foo": {"bar": [1, 2, 5, 4]}})",
       R"([{"op": "test", "path": "/foo", "value": [1, 2]}])", kRefused},
      {"tests: test the empty member name", R"({"": 1})",
       R"([{"op": "test", "path": "/", "value": 1}])", kRefused},
      {"tests: test escaped and special member names", R"({"foo": ["bar", "baz"], "a/b": 1})",
       R"([{"op": "test", "path": "/a~1b", "value": 1}])", kRefused},
      {"tests: move to the same location", R"({"foo": 1})",
       R"([{"op": "move", "from": "/foo", "path": "/foo"}])", kRefused},
      {"tests: move a member", R"({"foo": 1, "baz": [{"qux": "hello"}]})",
       R"([{"op": "move", "from": "/foo", "path": "/bar"}])", kRefused},
      {"tests: move into an array", R"({"baz": [{"qux": "hello"}], "bar": 1})",
       R"([{"op": "move", "from": "/baz/0/qux", "path": "/baz/1"}])", kRefused},
      {"tests: copy an element", R"({"baz": [{"qux": "hello"}], "bar": 1})",
       R"([{"op": "copy", "from": "/baz/0", "path": "/boo"}])", kRefused},
      {"tests: add at the root replaces the document", R"({"foo": "bar"})",
       R"([{"op": "add", "path": "", "value": {"baz": "qux"}}])", kRefused},
      {"tests: add at - appends", R"([1, 2])",
       R"([{"op": "add", "path": "/-", "value": {"foo": ["bar", "baz"]}}])", kApplies,
       R"([1, 2, {"foo": ["bar", "baz"]}])"},
      {"tests: add at - appends n levels down", R"([1, 2, [3, [4, 5]]])",
       R"([{"op": "add", "path": "/2/1/-", "value": {"foo": ["bar", "baz"]}}])", kApplies,
       R"([1, 2, [3, [4, 5, {"foo": ["bar", "baz"]}]]])"},
      {"tests: remove through a bad array index", R"({"foo": 1, "baz": [{"qux": "hello"}]})",
       R"([{"op": "remove", "path": "/baz/1e0/qux"}])", kFails},
      {"tests: remove an element", R"([1, 2, 3, 4])", R"([{"op": "remove", "path": "/0"}])",
       kApplies, R"([2, 3, 4])"},
      {"tests: repeated removes", R"([1, 2, 3, 4])",
       R"([{"op": "remove", "path": "/1"}, {"op": "remove", "path": "/2"}])", kApplies,
       R"([1, 3])"},
      {"tests: remove at a bad array index", R"([1, 2, 3, 4])",
       R"([{"op": "remove", "path": "/1e0"}])", kFails},
      {"tests: replace at a bad array index", R"([""])",
       R"([{"op": "replace", "path": "/1e0", "value": false}])", kFails},
      {"tests: copy from a bad array index", R"({"baz": [1, 2, 3], "bar": 1})",
       R"([{"op": "copy", "from": "/baz/1e0", "path": "/boo"}])", kRefused},
      {"tests: move from a bad array index", R"({"foo": 1, "baz": [1, 2, 3, 4]})",
       R"([{"op": "move", "from": "/baz/1e0", "path": "/foo"}])", kRefused},
      {"tests: add at a bad array index", R"(["foo", "sil"])",
       R"([{"op": "add", "path": "/1e0", "value": "bar"}])", kFails},
      {"tests: add without value", R"([1])", R"([{"op": "add", "path": "/-"}])", kRefused},
      {"tests: replace without value", R"([1])", R"([{"op": "replace", "path": "/0"}])",
       kRefused},
      {"tests: test without value", R"([null])", R"([{"op": "test", "path": "/0"}])", kRefused},
      {"tests: test without value, false element", R"([false])",
       R"([{"op": "test", "path": "/0"}])", kRefused},
      {"tests: copy without from", R"([1])", R"([{"op": "copy", "path": "/-"}])", kRefused},
      {"tests: move without from", R"({"foo": 1})", R"([{"op": "move", "path": ""}])", kRefused},
      {"tests: unknown op", R"({"foo": 1})", R"([{"op": "spam", "path": "/foo", "value": 1}])",
       kRefused},
      {"tests: test at index 00", R"(["foo", "bar"])",
       R"([{"op": "test", "path": "/00", "value": "foo"}])", kRefused},
      {"tests: test at index 01", R"(["foo", "bar"])",
       R"([{"op": "test", "path": "/01", "value": "bar"}])", kRefused},
      {"tests: remove a missing member", R"({"foo": "bar"})",
       R"([{"op": "remove", "path": "/baz"}])", kFails},
      {"tests: remove a missing element", R"(["foo", "bar"])",
       R"([{"op": "remove", "path": "/2"}])", kFails},
      {"tests: member names are case-sensitive", R"({"foo": "bar"})",
       R"([{"op": "add", "path": "/FOO", "value": "BAR"}])", kApplies,
       R"({"foo": "bar", "FOO": "BAR"})"},

      // spec_tests.json (RFC 6902 section 4.1 and appendix A)
      {"spec 4.1: add under a missing member", R"({"q": {"bar": 2}})",
       R"([{"op": "add", "path": "/a/b", "value": 1}])", kFails},
      {"spec A.1: add an object member", R"({"foo": "bar"})",
       R"([{"op": "add", "path": "/baz", "value": "qux"}])", kApplies,
       R"({"baz": "qux", "foo": "bar"})"},
      {"spec A.2: add an array element", R"({"foo": ["bar", "baz"]})",
       R"([{"op": "add", "path": "/foo/1", "value": "qux"}])", kApplies,
       R"({"foo": ["bar", "qux", "baz"]})"},
      {"spec A.3: remove an object member", R"({"baz": "qux", "foo": "bar"})",
       R"([{"op": "remove", "path": "/baz"}])", kApplies, R"({"foo": "bar"})"},
      {"spec A.4: remove an array element", R"({"foo": ["bar", "qux", "baz"]})",
       R"([{"op": "remove", "path": "/foo/1"}])", kApplies, R"({"foo": ["bar", "baz"]})"},
      {"spec A.5: replace a value", R"({"baz": "qux", "foo": "bar"})",
       R"([{"op": "replace", "path": "/baz", "value": "boo"}])", kApplies,
       R"({"baz": "boo", "foo": "bar"})"},
      {"spec A.6: move a value", R"({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {}})",
       R"([{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}])", kRefused},
      {"spec A.7: move an array element", R"({"foo": ["all", "grass", "cows", "eat"]})",
       R"([{"op": "move", "from": "/foo/1", "path": "/foo/3"}])", kRefused},
      {"spec A.8: test succeeds", R"({"baz": "qux", "foo": ["a", 2, "c"]})",
       R"([{"op": "test", "path": "/baz", "value": "qux"}])", kRefused},
      {"spec A.9: test fails", R"({"baz": "qux"})",
       R"([{"op": "test", "path": "/baz", "value": "bar"}])", kRefused},
      {"spec A.10: add a nested member object", R"({"foo": "bar"})",
       R"([{"op": "add", "path": "/child", "value": {"grandchild": {}}}])", kApplies,
       R"({"foo": "bar", "child": {"grandchild": {}}})"},
      {"spec A.11: unrecognized members are ignored", R"({"foo": "bar"})",
       R"([{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}])", kApplies,
       R"({"foo": "bar", "baz": "qux"})"},
      {"spec A.12: add to a nonexistent target", R"({"foo": "bar"})",
       R"([{"op": "add", "path": "/baz/bat", "value": "qux"}])", kFails},
      // The record has two "op" members; the JSON parser keeps the last ("remove"), and
      // removing the missing /baz fails.
      {"spec A.13: an operation with two op members", R"({"foo": "bar"})",
       R"([{"op": "add", "path": "/baz", "value": "qux", "op": "remove"}])", kFails},
      {"spec A.14: ~ escape order", R"({"/": 9, "~1": 10})",
       R"([{"op": "test", "path": "/~01", "value": 10}])", kRefused},
      {"spec A.15: test compares strings and numbers", R"({"/": 9, "~1": 10})",
       R"([{"op": "test", "path": "/~01", "value": "10"}])", kRefused},
      {"spec A.16: add an array value", R"({"foo": ["bar"]})",
       R"([{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}])", kApplies,
       R"({"foo": ["bar", ["abc", "def"]]})"},
  };
  return cases;
}

TEST(JsonPatchConformance, JsonPatchTestsTables) {
  for (const ConformanceCase& c : ConformanceCases()) {
    SCOPED_TRACE(c.source);
    const json patch = json::parse(c.patch);
    if (c.outcome == Outcome::kRefused) {
      EXPECT_THROW(JsonPatch::FromJson(patch), ConfigError);
      continue;
    }
    JsonPatch p;
    try {
      p = JsonPatch::FromJson(patch);
    } catch (const ConfigError& e) {
      ADD_FAILURE() << "refused: " << e.what();
      continue;
    }
    json doc = json::parse(c.doc);
    if (c.outcome == Outcome::kFails) {
      EXPECT_THROW(p.Apply(doc, {}), TransformError) << "gave " << doc.dump();
      continue;
    }
    try {
      p.Apply(doc, {});
      EXPECT_EQ(doc, json::parse(c.expected));
    } catch (const TransformError& e) {
      ADD_FAILURE() << e.what();
    }
  }
}

// RFC 6902 4.1: the parent of an add's target must be an object or an array. The tables
// above only reach it through missing members; a parent that exists as a scalar or null
// is the same error (nlohmann's patch asserted here, and did nothing with NDEBUG).
TEST(JsonPatchConformance, AddUnderAScalarOrNullParentFails) {
  for (const char* doc : {R"({"foo": 1})", R"({"foo": "text"})", R"({"foo": true})",
                          R"({"foo": 1.5})", R"({"foo": null})"}) {
    SCOPED_TRACE(doc);
    json d = json::parse(doc);
    try {
      Patch(R"([{"op": "add", "path": "/foo/bar", "value": 2}])").Apply(d, {});
      FAIL() << "expected TransformError, got " << d.dump();
    } catch (const TransformError& e) {
      EXPECT_EQ(e.op(), PatchOp::kAdd);
      EXPECT_EQ(e.path(), "/foo/bar");
      EXPECT_NE(std::string(e.what()).find("not an object or array"), std::string::npos)
          << e.what();
    }
    EXPECT_EQ(d, json::parse(doc));
  }
  json in_array = json::parse(R"({"a": [1, "x"]})");
  EXPECT_THROW(Patch(R"([{"op": "add", "path": "/a/1/b", "value": 2}])").Apply(in_array, {}),
               TransformError);
  EXPECT_THROW(Patch(R"([{"op": "add", "path": "/a/0/-", "value": 2}])").Apply(in_array, {}),
               TransformError);
}

TEST(JsonPatchConformance, RemoveAndReplaceUnderAScalarParentAreNotFound) {
  const JsonPatch remove = Patch(R"([{"op": "remove", "path": "/spec/replicas/x"}])");
  json d = Deployment();
  EXPECT_THROW(remove.Apply(d, {}), TransformError);
  remove.Apply(d, PatchOptions{.skip_if_not_found_on_delete = true});
  EXPECT_EQ(d, Deployment());
  EXPECT_THROW(
      Patch(R"([{"op": "replace", "path": "/spec/replicas/x", "value": 1}])").Apply(d, {}),
      TransformError);
}

}  // namespace
}  // namespace ro::plugins::kubernetes

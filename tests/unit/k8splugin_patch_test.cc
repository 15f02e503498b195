// JsonPatch: RFC 6902 add/replace/remove applied to objects, skipIfNotFoundOnDelete, and
// TransformError naming the failing operation.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>

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

}  // namespace
}  // namespace ro::plugins::kubernetes

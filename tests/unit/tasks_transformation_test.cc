// The kubernetes-objects-transformation plugin: restoring an original, the object a run
// writes, and one pass of ObjectTransformer against a scripted transport (conflicts,
// per-object failures, objects already changed by the run, originals from a bucket).
// The real apiserver and bucket are covered by tests/e2e/tasks_transformation_test.cc.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include "kube_fake_transport.h"
#include "ro/kube/client.h"
#include "ro/plugins/kubernetes/json_patch.h"
#include "ro/plugins/tasks/object_transformation.h"

namespace ro::plugins::tasks {
namespace {

using kube::testing::FakeTransport;
using nlohmann::json;

const RunIdentity kRun{"dr", "restore-apps", "run-uid-1"};

json Deployment(const std::string& ns, const std::string& name, int replicas,
                const std::string& resource_version = "10") {
  return {{"apiVersion", "apps/v1"},
          {"kind", "Deployment"},
          {"metadata",
           {{"name", name},
            {"namespace", ns},
            {"uid", "uid-" + name},
            {"resourceVersion", resource_version},
            {"labels", {{"app", name}}},
            {"annotations",
             {{"kubesync.astronetes.io/source-resource-version", "7"},
              {"kubesync.astronetes.io/transformation", "abc"}}}}},
          {"spec", {{"replicas", replicas}, {"template", {{"spec", {{"containers", {{{"name", "c"}, {"image", "nginx:1"}}}}}}}}}},
          {"status", {{"replicas", replicas}}}};
}

TransformationResource ReplicasTo(int replicas) {
  TransformationResource r;
  r.gvr = {"apps", "v1", "deployments"};
  r.patch = kubernetes::JsonPatch::FromJson(
      json::array({{{"op", "replace"}, {"path", "/spec/replicas"}, {"value", replicas}}}));
  return r;
}

TEST(TransformationTest, RestoreTakesTheSourceSpecAndKeepsDestinationMetadata) {
  json current = Deployment("a", "web", 0, "55");
  current["spec"]["paused"] = true;  // only the destination has it: kept
  json original = Deployment("a", "web", 3);
  original["metadata"].erase("resourceVersion");
  original["metadata"]["uid"] = "source-uid";
  original["metadata"]["labels"]["tier"] = "front";
  original["metadata"]["annotations"]["kubesync.astronetes.io/source-resource-version"] = "6";
  original["metadata"]["annotations"]["team"] = "web";
  original["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2";
  original["status"] = {{"replicas", 99}};

  const json restored = RestoreFromOriginal(current, original);
  EXPECT_EQ(restored["spec"]["replicas"], 3);
  EXPECT_EQ(restored["spec"]["paused"], true);
  EXPECT_EQ(restored["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:2");
  EXPECT_EQ(restored["status"], current["status"]);
  EXPECT_EQ(restored["metadata"]["uid"], "uid-web");
  EXPECT_EQ(restored["metadata"]["resourceVersion"], "55");
  EXPECT_EQ(restored["metadata"]["labels"]["tier"], "front");
  EXPECT_EQ(restored["metadata"]["annotations"]["team"], "web");
  // kubesync's control annotations describe the destination copy: kept.
  EXPECT_EQ(restored["metadata"]["annotations"]["kubesync.astronetes.io/source-resource-version"], "7");
  EXPECT_EQ(restored["metadata"]["annotations"]["kubesync.astronetes.io/transformation"], "abc");
  EXPECT_EQ(current["spec"]["replicas"], 0);  // input untouched
}

TEST(TransformationTest, TransformRestoresThenPatchesThenStampsTheRun) {
  const json original = Deployment("a", "web", 3);
  const json out = TransformObject(Deployment("a", "web", 0), ReplicasTo(2), &original, kRun);
  EXPECT_EQ(out["spec"]["replicas"], 2);
  EXPECT_EQ(out["metadata"]["annotations"]["automation.astronetes.io/taskrun-uid"], "run-uid-1");
  EXPECT_EQ(out["metadata"]["annotations"]["automation.astronetes.io/taskrun"], "dr/restore-apps");
  EXPECT_TRUE(ChangedByRun(out, "run-uid-1"));
  EXPECT_FALSE(ChangedByRun(out, "another-run"));
  EXPECT_FALSE(ChangedByRun(json::object(), "run-uid-1"));

  TransformationResource remove;
  remove.gvr = {"apps", "v1", "deployments"};
  remove.patch = kubernetes::JsonPatch::FromJson(
      json::array({{{"op", "remove"}, {"path", "/spec/strategy"}}}));
  EXPECT_THROW(TransformObject(Deployment("a", "web", 0), remove, nullptr, kRun),
               kubernetes::TransformError);
}

TEST(TransformationTest, ChangeBetweenIsTheJsonPatchOfWhatTheWriteDecides) {
  const json before = Deployment("a", "web", 0, "10");
  json after = before;
  after["spec"]["replicas"] = 1;
  after["metadata"]["resourceVersion"] = "11";
  after["metadata"]["generation"] = 2;
  after["metadata"]["managedFields"] = json::array({{{"manager", "m"}}});
  after["status"]["replicas"] = 1;
  after["metadata"]["annotations"]["automation.astronetes.io/taskrun-uid"] = "u";
  after["metadata"]["annotations"]["automation.astronetes.io/taskrun"] = "dr/r";
  after["metadata"]["labels"]["tier"] = "front";
  EXPECT_EQ(ChangeBetween(before, after),
            json::parse(R"([{"op":"add","path":"/metadata/labels/tier","value":"front"},
                            {"op":"replace","path":"/spec/replicas","value":1}])"));
  // Only the run's annotations added to an object without annotations: no change.
  json bare = before;
  bare["metadata"].erase("annotations");
  json stamped = bare;
  stamped["metadata"]["annotations"] = {{"automation.astronetes.io/taskrun-uid", "u"}};
  EXPECT_EQ(ChangeBetween(bare, stamped), json::array());
  // Applying the change to `before` gives `after` (what a test compares).
  EXPECT_EQ(ChangeBetween(before.patch(ChangeBetween(before, after)), after), json::array());
}

TEST(TransformationTest, WebhookServicesAreTheServicesItsWebhooksCallEachOnce) {
  const json configuration = json::parse(R"({"webhooks": [
    {"name": "a", "clientConfig": {"service": {"namespace": "hooks", "name": "svc", "path": "/a"}}},
    {"name": "b", "clientConfig": {"url": "https://hooks.example.com/b"}},
    {"name": "c", "clientConfig": {"service": {"namespace": "hooks", "name": "svc", "path": "/c"}}},
    {"name": "d", "clientConfig": {"service": {"namespace": "other", "name": "svc2"}}}]})");
  EXPECT_EQ(WebhookServices(configuration),
            (std::vector<kube::ObjectKey>{{"hooks", "svc"}, {"other", "svc2"}}));
  EXPECT_TRUE(WebhookServices(json::object()).empty());
}

TEST(TransformationTest, IngressServicesAreItsBackendServicesInItsNamespaceEachOnce) {
  const json ingress = json::parse(R"({"metadata": {"name": "web", "namespace": "shop"}, "spec": {
    "defaultBackend": {"service": {"name": "fallback", "port": {"number": 80}}},
    "rules": [
      {"host": "a.example.com", "http": {"paths": [
        {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
        {"path": "/static", "pathType": "Prefix", "backend": {"resource": {"kind": "StorageBucket", "name": "b"}}}]}},
      {"host": "b.example.com", "http": {"paths": [
        {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"name": "http"}}}}]}},
      {"host": "c.example.com"}]}})");
  EXPECT_EQ(IngressServices(ingress), (std::vector<kube::ObjectKey>{{"shop", "fallback"}, {"shop", "web"}}));
  // extensions/v1beta1 and networking.k8s.io/v1beta1 name the Service with serviceName.
  const json beta = json::parse(R"({"metadata": {"name": "old", "namespace": "shop"}, "spec": {
    "backend": {"serviceName": "legacy", "servicePort": 80}}})");
  EXPECT_EQ(IngressServices(beta), (std::vector<kube::ObjectKey>{{"shop", "legacy"}}));
  EXPECT_TRUE(IngressServices(json::object()).empty());
}

TEST(TransformationTest, ASecretsValuesNeverReachAReport) {
  const kube::GroupVersionResource secrets{"", "v1", "secrets"};
  const json created = ChangeBetween(json(nullptr), json::parse(R"({"kind": "Secret",
    "metadata": {"name": "db", "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"stringData\":{\"p\":\"s3cr3t\"}}", "team": "web"}},
    "data": {"p": "czNjcjN0"}, "stringData": {"q": "s3cr3t"}, "type": "Opaque"})"));
  const json redacted = RedactSecretValues(secrets, created);
  EXPECT_EQ(redacted.dump().find("s3cr3t"), std::string::npos) << redacted.dump();
  EXPECT_EQ(redacted.dump().find("czNjcjN0"), std::string::npos) << redacted.dump();
  EXPECT_EQ(redacted[0]["value"]["data"]["p"], "(redacted)");
  EXPECT_EQ(redacted[0]["value"]["metadata"]["annotations"]["team"], "web");
  EXPECT_EQ(redacted[0]["value"]["type"], "Opaque");
  const json changed = json::parse(R"([{"op": "replace", "path": "/data/p", "value": "bmV3"},
    {"op": "add", "path": "/data", "value": {"a": "YQ=="}},
    {"op": "replace", "path": "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration", "value": "x"},
    {"op": "remove", "path": "/data/old"},
    {"op": "replace", "path": "/metadata/labels/tier", "value": "front"}])");
  EXPECT_EQ(RedactSecretValues(secrets, changed), json::parse(R"J([{"op": "replace", "path": "/data/p", "value": "(redacted)"},
    {"op": "add", "path": "/data", "value": {"a": "(redacted)"}},
    {"op": "replace", "path": "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration", "value": "(redacted)"},
    {"op": "remove", "path": "/data/old"},
    {"op": "replace", "path": "/metadata/labels/tier", "value": "front"}])J"));
  // Other kinds keep their values: a ConfigMap's data is what a reviewer must see.
  const json configmap = json::parse(R"([{"op": "replace", "path": "/data/p", "value": "v"}])");
  EXPECT_EQ(RedactSecretValues({"", "v1", "configmaps"}, configmap), configmap);
}

TEST(TransformationTest, SummaryOfADryRunSaysNothingChanged) {
  TransformationReport report;
  report.dry_run = true;
  report.patched = 2;
  report.planned = {{"apps/v1/deployments", "a", "web", PlannedAction::kPatch, "[]", ""},
                    {"apps/v1/deployments", "a", "db", PlannedAction::kUnchanged, "[]", ""}};
  report.failed = 1;
  report.failures = {{"apps/v1/deployments a/x", "boom"}};
  EXPECT_EQ(report.Summary(),
            "Dry run, nothing changed: 2 objects would be patched (1 changed, 1 only annotated), "
            "1 would fail: apps/v1/deployments a/x: boom");
}

TEST(TransformationTest, SummaryCountsAndListsFailures) {
  TransformationReport report;
  report.patched = 3;
  EXPECT_EQ(report.Summary(), "3 objects patched");
  EXPECT_TRUE(report.Succeeded());
  report.failed = 2;
  report.failures = {{"apps/v1/deployments a/x", "boom"}};
  report.resource_errors = {"resources[1] (v1/foos): not served by the destination cluster"};
  EXPECT_FALSE(report.Succeeded());
  EXPECT_EQ(report.Summary(),
            "3 objects patched, 2 failed: apps/v1/deployments a/x: boom; and 1 more; "
            "resources[1] (v1/foos): not served by the destination cluster");
}

// --- One pass against a scripted apiserver ---------------------------------------------

const char* const kCoreVersions = R"({"kind":"APIVersions","versions":["v1"]})";
const char* const kGroups = R"({"kind":"APIGroupList","groups":[
  {"name":"apps","versions":[{"groupVersion":"apps/v1","version":"v1"}]}]})";
const char* const kCoreV1 = R"({"kind":"APIResourceList","groupVersion":"v1","resources":[
  {"name":"namespaces","namespaced":false,"kind":"Namespace","verbs":["get","list"]}]})";
const char* const kAppsV1 = R"({"kind":"APIResourceList","groupVersion":"apps/v1","resources":[
  {"name":"deployments","namespaced":true,"kind":"Deployment","verbs":["get","list","update"]}]})";

// An initializer list of one json is that json, not an array of it (nlohmann's brace
// rules): take the items as a vector.
std::string List(const std::vector<json>& items) {
  return json{{"kind", "List"}, {"metadata", {{"resourceVersion", "100"}}}, {"items", json(items)}}.dump();
}

std::string Status(int code, const std::string& reason) {
  return json{{"kind", "Status"}, {"status", "Failure"}, {"reason", reason}, {"code", code},
              {"message", reason}}
      .dump();
}

kube::RestConfig FakeConfig() {
  kube::RestConfig config;
  config.server = "https://fake";
  return config;
}

class TransformerPassTest : public ::testing::Test {
 protected:
  // Namespaces first: FakeTransport answers the first scripted prefix that matches, and
  // "/api" would match "/api/v1/namespaces" too.
  void ScriptDiscovery(bool with_namespaces) {
    if (with_namespaces) {
      transport_->Respond(
          "GET", "/api/v1/namespaces", 200,
          List({{{"metadata", {{"name", "a"}, {"labels", {{"sync", "true"}}}}}},
                {{"metadata", {{"name", "b"}}}}}));
    }
    transport_->Respond("GET", "/api", 200, kCoreVersions);
    transport_->Respond("GET", "/apis", 200, kGroups);
    transport_->Respond("GET", "/api/v1", 200, kCoreV1);
    transport_->Respond("GET", "/apis/apps/v1", 200, kAppsV1);
  }

  TransformationReport Run(TransformationConfig config) {
    TransformationTarget target;
    target.destination = &client_;
    target.read_original = [this](const std::string& key) -> std::optional<std::string> {
      const auto it = bucket_.find(key);
      if (it == bucket_.end()) return std::nullopt;
      return it->second;
    };
    TransformerOptions options;
    options.initial_backoff = std::chrono::milliseconds{0};
    options.dry_run = dry_run_;
    ObjectTransformer transformer(std::move(config), kRun, std::move(target), log::Logger(),
                                  kube::DefaultClock(), options);
    return transformer.Run({});
  }

  // Discovery and empty lists of deployments and namespaces.
  void ScriptEmptyLists() {
    transport_->Respond("GET", "/api/v1/namespaces", 200, List({}));
    ScriptDiscovery(false);
    transport_->Respond("GET", "/apis/apps/v1/deployments", 200, List({}));
  }

 public:
  TransformationReport RunPublic(TransformationConfig config) { return Run(std::move(config)); }

 protected:
  // The bodies of the PUTs the pass sent, by path.
  std::map<std::string, json> Puts() const {
    std::map<std::string, json> puts;
    for (const kube::HttpRequest& r : transport_->requests) {
      if (r.method == "PUT") puts[r.path.substr(0, r.path.find('?'))] = json::parse(r.body);
    }
    return puts;
  }

  std::shared_ptr<FakeTransport> transport_ = std::make_shared<FakeTransport>();
  kube::DynamicClient client_{FakeConfig(), transport_};
  std::map<std::string, std::string> bucket_;
  bool dry_run_ = false;
};

const char* const kWebPath = "/apis/apps/v1/namespaces/a/deployments/web";

TEST_F(TransformerPassTest, PatchesOnlyObjectsInSelectedNamespaces) {
  ScriptDiscovery(true);
  transport_->Respond("GET", "/apis/apps/v1/deployments", 200,
                      List({Deployment("a", "web", 0), Deployment("b", "db", 0)}));
  transport_->Respond("PUT", kWebPath, 200, Deployment("a", "web", 1, "11").dump());
  TransformationConfig config;
  TransformationResource resource = ReplicasTo(1);
  resource.filter = kubernetes::ObjectFilter::FromJson(
      json::parse(R"({"namespaceSelector": {"matchLabels": {"sync": "true"}}})"));
  config.resources = {resource};

  const TransformationReport report = Run(config);
  EXPECT_EQ(report.patched, 1);
  EXPECT_EQ(report.failed, 0);
  // What the entry selected, for CheckRecovery (recovery_check.h).
  ASSERT_EQ(report.resources.size(), 1u);
  const ResourceReport& counts = report.resources[0];
  EXPECT_EQ(counts.gvr.ToString(), "apps/v1/deployments");
  EXPECT_TRUE(counts.listed);
  EXPECT_EQ(counts.objects, 2);
  EXPECT_EQ(counts.selected, 1);
  EXPECT_EQ(counts.patched, 1);
  EXPECT_EQ(counts.namespaces_selected, std::optional<int64_t>(1));
  const auto puts = Puts();
  ASSERT_EQ(puts.size(), 1u);
  const json& written = puts.at(kWebPath);
  EXPECT_EQ(written["spec"]["replicas"], 1);
  EXPECT_EQ(written["metadata"]["resourceVersion"], "10");  // optimistic concurrency
  EXPECT_TRUE(ChangedByRun(written, "run-uid-1"));
}

TEST_F(TransformerPassTest, ConflictIsRedoneOnAFreshRead) {
  ScriptDiscovery(false);
  transport_->Respond("GET", "/apis/apps/v1/deployments", 200, List({Deployment("a", "web", 0)}));
  transport_->Respond("PUT", kWebPath, 409, Status(409, "Conflict"));
  json fresh = Deployment("a", "web", 0, "12");
  fresh["spec"]["paused"] = true;
  transport_->Respond("GET", kWebPath, 200, fresh.dump());
  transport_->Respond("PUT", kWebPath, 200, Deployment("a", "web", 1, "13").dump());
  TransformationConfig config;
  config.resources = {ReplicasTo(1)};

  const TransformationReport report = Run(config);
  EXPECT_EQ(report.patched, 1);
  const json written = Puts().at(kWebPath);  // the last PUT (a copy: Puts() is a temporary)
  EXPECT_EQ(written["metadata"]["resourceVersion"], "12");
  EXPECT_EQ(written["spec"]["paused"], true);  // the concurrent change survives
}

TEST_F(TransformerPassTest, OneFailingObjectDoesNotStopTheOthers) {
  ScriptDiscovery(false);
  json no_strategy = Deployment("a", "api", 0);
  json with_strategy = Deployment("a", "web", 0);
  with_strategy["spec"]["strategy"] = {{"type", "Recreate"}};
  transport_->Respond("GET", "/apis/apps/v1/deployments", 200, List({no_strategy, with_strategy}));
  transport_->Respond("PUT", kWebPath, 200, with_strategy.dump());
  TransformationResource resource;
  resource.gvr = {"apps", "v1", "deployments"};
  resource.patch = kubernetes::JsonPatch::FromJson(
      json::array({{{"op", "remove"}, {"path", "/spec/strategy"}}}));
  TransformationConfig config;
  config.resources = {resource};

  const TransformationReport report = Run(config);
  EXPECT_EQ(report.patched, 1);
  EXPECT_EQ(report.failed, 1);
  ASSERT_EQ(report.failures.size(), 1u);
  EXPECT_EQ(report.failures[0].object, "apps/v1/deployments a/api");
  EXPECT_NE(report.failures[0].error.find("patch"), std::string::npos);
}

TEST_F(TransformerPassTest, ObjectsThisRunAlreadyChangedAreCountedNotWritten) {
  ScriptDiscovery(false);
  json done = Deployment("a", "web", 1);
  done["metadata"]["annotations"]["automation.astronetes.io/taskrun-uid"] = "run-uid-1";
  json by_older_run = Deployment("a", "api", 0);
  by_older_run["metadata"]["annotations"]["automation.astronetes.io/taskrun-uid"] = "old-run";
  transport_->Respond("GET", "/apis/apps/v1/deployments", 200, List({done, by_older_run}));
  transport_->Respond("PUT", "/apis/apps/v1/namespaces/a/deployments/api", 200, by_older_run.dump());
  TransformationConfig config;
  config.resources = {ReplicasTo(1)};

  const TransformationReport report = Run(config);
  EXPECT_EQ(report.patched, 2);
  EXPECT_EQ(Puts().size(), 1u);  // only the object an older run changed is written
}

TEST_F(TransformerPassTest, FromOriginalRestoresFromTheLiveSynchronizationsBucketPath) {
  ScriptDiscovery(false);
  transport_->Respond("GET", "/apis/apps/v1/deployments", 200,
                      List({Deployment("a", "web", 0), Deployment("a", "lost", 0)}));
  transport_->Respond("PUT", kWebPath, 200, Deployment("a", "web", 3).dump());
  bucket_["dr/active-passive/apps-v1-deployments/a.web"] = Deployment("a", "web", 3).dump();
  TransformationResource resource;
  resource.gvr = {"apps", "v1", "deployments"};
  resource.from_original = true;
  TransformationConfig config;
  config.bucket_name = "originals";
  config.live_synchronization = kube::ObjectKey{"dr", "active-passive"};
  config.resources = {resource};

  const TransformationReport report = Run(config);
  EXPECT_EQ(report.patched, 1);
  EXPECT_EQ(report.failed, 1);
  EXPECT_EQ(Puts().at(kWebPath)["spec"]["replicas"], 3);
  ASSERT_EQ(report.failures.size(), 1u);
  EXPECT_EQ(report.failures[0].error,
            "no original in the bucket at dr/active-passive/apps-v1-deployments/a.lost");
}

TEST_F(TransformerPassTest, AResourceTheDestinationDoesNotServeIsAResourceError) {
  ScriptDiscovery(false);  // a miss right after a refresh does not refresh again
  TransformationResource resource = ReplicasTo(1);
  resource.gvr = {"example.com", "v1", "widgets"};
  TransformationConfig config;
  config.resources = {resource};

  const TransformationReport report = Run(config);
  EXPECT_FALSE(report.Succeeded());
  ASSERT_EQ(report.resource_errors.size(), 1u);
  EXPECT_EQ(report.resource_errors[0],
            "resources[0] (example.com/v1/widgets): not served by the destination cluster");
}

TEST_F(TransformerPassTest, ADryRunSendsDryRunWritesAndReportsEachObjectsPatch) {
  dry_run_ = true;
  ScriptDiscovery(false);
  json no_strategy = Deployment("a", "api", 0);
  json web = Deployment("a", "web", 0);
  web["spec"]["strategy"] = {{"type", "Recreate"}};
  transport_->Respond("GET", "/apis/apps/v1/deployments", 200, List({no_strategy, web}));
  // The destination's dry-run answer: the object as it would store it (a defaulted field
  // shows in the patch; the resourceVersion does not change on a dry run).
  json answer = web;
  answer["spec"].erase("strategy");
  answer["spec"]["progressDeadlineSeconds"] = 600;
  answer["metadata"]["annotations"]["automation.astronetes.io/taskrun-uid"] = "run-uid-1";
  transport_->Respond("PUT", kWebPath, 200, answer.dump());
  TransformationResource resource;
  resource.gvr = {"apps", "v1", "deployments"};
  resource.patch = kubernetes::JsonPatch::FromJson(
      json::array({{{"op", "remove"}, {"path", "/spec/strategy"}}}));
  TransformationConfig config;
  config.resources = {resource};

  const TransformationReport report = Run(config);
  EXPECT_TRUE(report.dry_run);
  EXPECT_EQ(report.patched, 1);
  EXPECT_EQ(report.failed, 1);
  int puts = 0;
  for (const kube::HttpRequest& r : transport_->requests) {
    if (r.method != "PUT") continue;
    ++puts;
    EXPECT_NE(r.path.find("dryRun=All"), std::string::npos) << r.path;
  }
  EXPECT_EQ(puts, 1);
  ASSERT_EQ(report.planned.size(), 2u);
  EXPECT_EQ(report.planned[0].name, "api");
  EXPECT_EQ(report.planned[0].action, PlannedAction::kFail);
  EXPECT_NE(report.planned[0].message.find("patch"), std::string::npos);
  EXPECT_EQ(report.planned[1].resource, "apps/v1/deployments");
  EXPECT_EQ(report.planned[1].ns, "a");
  EXPECT_EQ(report.planned[1].action, PlannedAction::kPatch);
  EXPECT_EQ(json::parse(report.planned[1].patch),
            json::parse(R"([{"op":"remove","path":"/spec/strategy"},
                            {"op":"add","path":"/spec/progressDeadlineSeconds","value":600}])"));
  EXPECT_EQ(report.planned_omitted, 0);
}

// The resources a pass with `order` processed, in processing order, for a Task listing
// deployments before namespaces.
std::vector<std::string> OrderSeen(TransformerPassTest& test, ResourceOrder order) {
  TransformationResource deployments = ReplicasTo(1);
  TransformationResource namespaces = ReplicasTo(1);
  namespaces.gvr = {"", "v1", "namespaces"};
  namespaces.index = 1;
  TransformationConfig config;
  config.order = order;
  config.resources = {deployments, namespaces};
  std::vector<std::string> seen;
  for (const ResourceReport& resource : test.RunPublic(config).resources) {
    seen.push_back(resource.gvr.resource);
  }
  return seen;
}

TEST_F(TransformerPassTest, ResourcesRunInDependencyOrderByDefault) {
  ScriptEmptyLists();
  EXPECT_EQ(OrderSeen(*this, ResourceOrder::kDependencies),
            (std::vector<std::string>{"namespaces", "deployments"}));
}

TEST_F(TransformerPassTest, ResourcesRunAsListedWhenTheTaskSaysSo) {
  ScriptEmptyLists();
  EXPECT_EQ(OrderSeen(*this, ResourceOrder::kAsListed),
            (std::vector<std::string>{"deployments", "namespaces"}));
}

}  // namespace
}  // namespace ro::plugins::tasks

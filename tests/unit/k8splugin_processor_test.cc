// DecideProcessing: filter -> bucket action -> transform -> sanitize -> stamp, per event.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>

#include "ro/plugins/kubernetes/bucket_object.h"
#include "ro/plugins/kubernetes/processor_decision.h"

namespace ro::plugins::kubernetes {
namespace {

using kube::GroupVersionResource;
using nlohmann::json;

const GroupVersionResource kDeployments{"apps", "v1", "deployments"};
const GroupVersionResource kSecrets{"", "v1", "secrets"};
const GroupVersionResource kPods{"", "v1", "pods"};

LiveSyncConfig Config(bool bucket) {
  json c = json::parse(R"({"sourceName": "source", "destinationName": "destination",
    "replication": {"resources": [
      {"group": "apps", "version": "v1", "resource": "deployments",
       "filters": {"namespaceSelector": {"matchLabels": {"sync": "true"}}},
       "transformation": {"patch": [{"op": "replace", "path": "/spec/replicas", "value": 0}]}},
      {"version": "v1", "resource": "secrets"}]}})");
  if (bucket) c["bucketName"] = "bucket-dev";
  return ParseLiveSyncConfig(c);
}

const StampInfo kStamp = MakeStampInfo("dr-config", "pre", "dr-config", "source");
const json kSynced = {{"sync", "true"}};
const json kUnsynced = {{"sync", "false"}};

json Deployment() {
  return json::parse(R"({"apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "helloworld", "namespace": "test-namespace-one", "uid": "7c2a",
                 "resourceVersion": "936", "generation": 2, "labels": {"app": "hello"},
                 "ownerReferences": [{"uid": "x"}]},
    "spec": {"replicas": 3}, "status": {"readyReplicas": 3}})");
}

ProcessorDecision Decide(const LiveSyncConfig& config, EventType type, const GroupVersionResource& gvr,
                         json& object, const json* ns_labels, bool resync = false) {
  return DecideProcessing(config, kStamp,
                          ProcessorEvent{type, resync, gvr, object, ns_labels});
}

TEST(DecideProcessing, MatchingUpsertBecomesTheTransformedSanitizedStampedObject) {
  const LiveSyncConfig config = Config(false);
  json object = Deployment();
  const ProcessorDecision d = Decide(config, EventType::kUpsert, kDeployments, object, &kSynced);
  EXPECT_EQ(d.action, ProcessorAction::kUpsert);
  EXPECT_EQ(d.reason, "matched");
  EXPECT_EQ(d.rule, &config.replication.resources[0]);
  EXPECT_EQ(d.name, "helloworld");
  EXPECT_EQ(d.ns, "test-namespace-one");
  EXPECT_EQ(d.source_uid, "7c2a");
  EXPECT_EQ(d.source_resource_version, "936");
  EXPECT_EQ(d.bucket_action, BucketAction::kNone);
  EXPECT_EQ(object["spec"]["replicas"], 0);
  EXPECT_FALSE(object.contains("status"));
  EXPECT_FALSE(object["metadata"].contains("uid"));
  EXPECT_FALSE(object["metadata"].contains("ownerReferences"));
  EXPECT_EQ(object["metadata"]["labels"]["app"], "hello");
  const auto stamp = ReadStamp(object);
  ASSERT_TRUE(stamp.has_value());
  EXPECT_EQ(stamp->managed_by, "dr-config.pre");
  EXPECT_EQ(stamp->source_uid, "7c2a");
  EXPECT_EQ(stamp->source_resource_version, "936");
  EXPECT_EQ(stamp->transformation_fingerprint, config.replication.resources[0].transformation_fingerprint);
}

TEST(DecideProcessing, WithABucketTheUntransformedOriginalIsUploaded) {
  const LiveSyncConfig config = Config(true);
  json object = Deployment();
  const ProcessorDecision d = Decide(config, EventType::kUpsert, kDeployments, object, &kSynced);
  EXPECT_EQ(d.action, ProcessorAction::kUpsert);
  EXPECT_EQ(d.bucket_action, BucketAction::kPut);
  EXPECT_EQ(d.bucket_path, "dr-config/pre/apps-v1-deployments/test-namespace-one.helloworld");
  EXPECT_EQ(d.bucket_body, BucketObjectBody(kDeployments, Deployment(), kStamp));
  EXPECT_EQ(json::parse(d.bucket_body)["spec"]["replicas"], 3);
  EXPECT_EQ(object["spec"]["replicas"], 0);
}

TEST(DecideProcessing, UpsertThatNoFilterMatchesEnsuresAbsence) {
  const LiveSyncConfig config = Config(true);
  json object = Deployment();
  const ProcessorDecision d = Decide(config, EventType::kUpsert, kDeployments, object, &kUnsynced);
  EXPECT_EQ(d.action, ProcessorAction::kEnsureAbsent);
  EXPECT_EQ(d.reason, "filtered-out");
  EXPECT_EQ(d.rule, nullptr);
  EXPECT_EQ(d.bucket_action, BucketAction::kDelete);
  EXPECT_EQ(d.bucket_path, "dr-config/pre/apps-v1-deployments/test-namespace-one.helloworld");
  EXPECT_EQ(object, json::parse(R"({"apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "helloworld", "namespace": "test-namespace-one",
      "labels": {"kubesync.astronetes.io/managed-by": "dr-config.pre"},
      "annotations": {"kubesync.astronetes.io/live-synchronization": "dr-config/pre",
                      "kubesync.astronetes.io/source-cluster": "dr-config/source",
                      "kubesync.astronetes.io/source-uid": "7c2a",
                      "kubesync.astronetes.io/source-resource-version": "936"}}})"));
}

TEST(DecideProcessing, FilteredOutResyncUpsertsDoNotTouchTheBucket) {
  const LiveSyncConfig config = Config(true);
  json object = Deployment();
  const ProcessorDecision d =
      Decide(config, EventType::kUpsert, kDeployments, object, &kUnsynced, /*resync=*/true);
  EXPECT_EQ(d.action, ProcessorAction::kEnsureAbsent);
  EXPECT_EQ(d.bucket_action, BucketAction::kNone);
}

TEST(DecideProcessing, DeletesAreNeverFilteredAndKeepTheSourceIdentity) {
  const LiveSyncConfig config = Config(true);
  json object = Deployment();
  // The namespace lost its label before the delete: the copy must still go.
  const ProcessorDecision d = Decide(config, EventType::kDelete, kDeployments, object, &kUnsynced);
  EXPECT_EQ(d.action, ProcessorAction::kEnsureAbsent);
  EXPECT_EQ(d.reason, "source-deleted");
  EXPECT_EQ(d.bucket_action, BucketAction::kDelete);
  const auto stamp = ReadStamp(object);
  ASSERT_TRUE(stamp.has_value());
  EXPECT_EQ(stamp->source_uid, "7c2a");
  EXPECT_EQ(stamp->source_resource_version, "936");
  EXPECT_FALSE(object.contains("spec"));
}

TEST(DecideProcessing, PruningDeleteFromAStubWorks) {
  const LiveSyncConfig config = Config(false);
  json destination = Deployment();
  Stamp(destination, kStamp, SourceVersion{"src-uid", "1000", ""});
  json stub = SourceStubFromStamped(destination);
  EXPECT_EQ(stub, SourceStub(destination["apiVersion"].get<std::string>(), destination["kind"].get<std::string>(),
                             destination["metadata"].value("namespace", ""),
                             destination["metadata"]["name"].get<std::string>(), "src-uid", "1000"));
  const ProcessorDecision d = Decide(config, EventType::kDelete, kDeployments, stub, nullptr);
  EXPECT_EQ(d.action, ProcessorAction::kEnsureAbsent);
  EXPECT_EQ(d.source_uid, "src-uid");
  EXPECT_EQ(d.source_resource_version, "1000");
}

TEST(DecideProcessing, ResourcesNotConfiguredAreDropped) {
  const LiveSyncConfig config = Config(false);
  json object = json::parse(R"({"metadata": {"name": "p", "namespace": "n"}})");
  const ProcessorDecision d = Decide(config, EventType::kUpsert, kPods, object, &kSynced);
  EXPECT_EQ(d.action, ProcessorAction::kDrop);
  EXPECT_EQ(d.reason, "resource-not-replicated");
}

TEST(DecideProcessing, ServiceAccountTokensAreDroppedEvenWhenSelected) {
  const LiveSyncConfig config = Config(true);
  json object = json::parse(R"({"metadata": {"name": "t", "namespace": "n"},
                                "type": "kubernetes.io/service-account-token"})");
  const ProcessorDecision d = Decide(config, EventType::kUpsert, kSecrets, object, &kSynced);
  EXPECT_EQ(d.action, ProcessorAction::kDrop);
  EXPECT_EQ(d.reason, "not-replicable");
  EXPECT_EQ(d.bucket_action, BucketAction::kNone);
  EXPECT_EQ(SelectRule(config, kSecrets, json::parse(R"({"metadata": {"name": "t", "namespace": "n"},
      "type": "kubernetes.io/service-account-token"})"), nullptr), nullptr);
}

TEST(DecideProcessing, ObjectsWithoutANameAreDropped) {
  const LiveSyncConfig config = Config(false);
  json object = json::parse(R"({"metadata": {"namespace": "n"}})");
  EXPECT_EQ(Decide(config, EventType::kUpsert, kSecrets, object, &kSynced).reason, "invalid-object");
}

TEST(DecideProcessing, EntriesWithoutTransformationCopyTheObject) {
  const LiveSyncConfig config = Config(false);
  json object = json::parse(R"({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
    "metadata": {"name": "s", "namespace": "n", "uid": "u", "resourceVersion": "5"},
    "data": {"k": "dg=="}})");
  const ProcessorDecision d = Decide(config, EventType::kUpsert, kSecrets, object, nullptr);
  EXPECT_EQ(d.action, ProcessorAction::kUpsert);
  EXPECT_EQ(object["data"]["k"], "dg==");
  EXPECT_EQ(ReadStamp(object)->transformation_fingerprint, "");
}

TEST(DecideProcessing, APatchThatCannotApplyThrowsTransformError) {
  const LiveSyncConfig config = ParseLiveSyncConfig(json::parse(R"({"sourceName": "a",
    "destinationName": "b", "replication": {"resources": [{"group": "apps", "version": "v1",
    "resource": "deployments", "transformation": {"patch": [{"op": "remove", "path": "/spec/paused"}]}}]}})"));
  json object = Deployment();
  EXPECT_THROW(Decide(config, EventType::kUpsert, kDeployments, object, nullptr), TransformError);
}

}  // namespace
}  // namespace ro::plugins::kubernetes

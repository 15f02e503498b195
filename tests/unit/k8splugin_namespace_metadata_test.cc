// The destination namespaces of forceNamespaceCreation: what they carry of the source
// namespace, their marks, and the merge patch that keeps them in step.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <optional>
#include <string>

#include "ro/plugins/kubernetes/control_metadata.h"
#include "ro/plugins/kubernetes/namespace_metadata.h"

namespace ro::plugins::kubernetes {
namespace {

using nlohmann::json;

StampInfo Info() { return MakeStampInfo("dr", "active-passive", "dr", "cluster-1"); }

json SourceNamespace() {
  return json::parse(R"({"apiVersion":"v1","kind":"Namespace","metadata":{
      "name":"shop","resourceVersion":"812","uid":"u-1",
      "labels":{"sync":"true","team":"web","kubernetes.io/metadata.name":"shop"},
      "annotations":{"owner":"web@example.com",
                     "kubectl.kubernetes.io/last-applied-configuration":"{...}",
                     "openshift.io/sa.scc.uid-range":"1000650000/10000",
                     "openshift.io/requester":"alice",
                     "kubesync.astronetes.io/source-uid":"x"}}})");
}

TEST(ReplicableNamespaceMetadata, KeepsTheApplicationsLabelsAndAnnotationsOnly) {
  EXPECT_EQ(ReplicableNamespaceMetadata(SourceNamespace()),
            json::parse(R"({"resourceVersion":"812","labels":{"sync":"true","team":"web"},
                            "annotations":{"owner":"web@example.com"}})"));
}

TEST(ReplicableNamespaceMetadata, AMalformedNamespaceReadsAsEmpty) {
  const json empty = json::parse(R"({"resourceVersion":"","labels":{},"annotations":{}})");
  EXPECT_EQ(ReplicableNamespaceMetadata(json()), empty);
  EXPECT_EQ(ReplicableNamespaceMetadata(json::parse(R"({"metadata":{"labels":[1],"annotations":{"a":1}}})")), empty);
}

TEST(CreatedNamespace, CarriesTheSourceMetadataAndIsMarkedAsCreatedNotAsReplicated) {
  const json ns = CreatedNamespace("shop", ReplicableNamespaceMetadata(SourceNamespace()), Info());
  EXPECT_EQ(ns["apiVersion"], "v1");
  EXPECT_EQ(ns["kind"], "Namespace");
  EXPECT_EQ(ns["metadata"]["name"], "shop");
  EXPECT_EQ(ns["metadata"]["labels"],
            json({{"sync", "true"}, {"team", "web"}, {std::string(kNamespaceCreatedByLabel), "dr.active-passive"}}));
  EXPECT_FALSE(ns["metadata"]["labels"].contains(std::string(kManagedByLabel)));  // never pruned
  EXPECT_EQ(ns["metadata"]["annotations"]["owner"], "web@example.com");
  EXPECT_EQ(ns["metadata"]["annotations"][std::string(kSourceResourceVersionAnnotation)], "812");
  EXPECT_EQ(ns["metadata"]["annotations"][std::string(kLiveSynchronizationAnnotation)], "dr/active-passive");
  EXPECT_EQ(ns["metadata"]["annotations"][std::string(kSourceClusterAnnotation)], "dr/cluster-1");
}

TEST(CreatedNamespace, WithoutSourceMetadataIsBareButMarked) {
  const json ns = CreatedNamespace("shop", json(), Info());
  EXPECT_EQ(ns["metadata"]["labels"], json({{std::string(kNamespaceCreatedByLabel), "dr.active-passive"}}));
  EXPECT_FALSE(ns["metadata"]["annotations"].contains(std::string(kSourceResourceVersionAnnotation)));
}

// The destination copy CreatedNamespace made, as the apiserver returns it.
json Created() {
  json ns = CreatedNamespace("shop", ReplicableNamespaceMetadata(SourceNamespace()), Info());
  ns["metadata"]["resourceVersion"] = "5000";
  ns["metadata"]["labels"]["kubernetes.io/metadata.name"] = "shop";  // the destination apiserver's own
  return ns;
}

TEST(NamespaceMetadataPatch, NothingToDoWhenInStep) {
  EXPECT_EQ(NamespaceMetadataPatch(Created(), ReplicableNamespaceMetadata(SourceNamespace()), Info()), std::nullopt);
}

TEST(NamespaceMetadataPatch, FollowsANewerSourceAddingChangingAndRemovingKeys) {
  json source = SourceNamespace();
  source["metadata"]["resourceVersion"] = "900";
  source["metadata"]["labels"] = {{"sync", "false"}, {"tier", "gold"}};  // team removed, sync changed, tier added
  source["metadata"]["annotations"] = json::object();                     // owner removed
  const std::optional<json> patch = NamespaceMetadataPatch(Created(), ReplicableNamespaceMetadata(source), Info());
  ASSERT_TRUE(patch);
  EXPECT_EQ(*patch, json::parse(R"({"metadata":{
      "resourceVersion":"5000",
      "labels":{"sync":"false","tier":"gold","team":null},
      "annotations":{"owner":null,"kubesync.astronetes.io/source-resource-version":"900"}}})"));
}

TEST(NamespaceMetadataPatch, AnOlderOrEqualSourceVersionNeverTurnsLabelsBack) {
  json source = SourceNamespace();
  source["metadata"]["labels"]["sync"] = "false";
  for (const char* rv : {"812", "700", ""}) {
    source["metadata"]["resourceVersion"] = rv;
    EXPECT_EQ(NamespaceMetadataPatch(Created(), ReplicableNamespaceMetadata(source), Info()), std::nullopt) << rv;
  }
}

TEST(NamespaceMetadataPatch, ANamespaceTheUserOrAnotherPipelineMadeIsLeftAlone) {
  json source = SourceNamespace();
  source["metadata"]["resourceVersion"] = "900";
  source["metadata"]["labels"]["sync"] = "false";
  json users = Created();
  users["metadata"]["labels"].erase(std::string(kNamespaceCreatedByLabel));
  EXPECT_EQ(NamespaceMetadataPatch(users, ReplicableNamespaceMetadata(source), Info()), std::nullopt);
  json others = Created();
  others["metadata"]["labels"][std::string(kNamespaceCreatedByLabel)] = "dr.other";
  EXPECT_EQ(NamespaceMetadataPatch(others, ReplicableNamespaceMetadata(source), Info()), std::nullopt);
  EXPECT_EQ(NamespaceMetadataPatch(Created(), json(), Info()), std::nullopt);
}

}  // namespace
}  // namespace ro::plugins::kubernetes

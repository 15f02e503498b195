// Sanitize and ShouldReplicate (docs/kubesync.md "Sanitizing").
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "ro/plugins/kubernetes/sanitizer.h"

namespace ro::plugins::kubernetes {
namespace {

using kube::GroupVersionResource;
using nlohmann::json;

const GroupVersionResource kDeployments{"apps", "v1", "deployments"};
const GroupVersionResource kServices{"", "v1", "services"};
const GroupVersionResource kSecrets{"", "v1", "secrets"};
const GroupVersionResource kConfigMaps{"", "v1", "configmaps"};

json Sanitized(const GroupVersionResource& gvr, json object) {
  Sanitize(gvr, object);
  return object;
}

TEST(Sanitize, StripsServerSetMetadataStatusAndOwnerReferences) {
  const json out = Sanitized(kDeployments, json::parse(R"({
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "n", "uid": "u-1", "resourceVersion": "42",
      "generation": 3, "creationTimestamp": "2024-01-01T00:00:00Z",
      "deletionTimestamp": "2024-01-02T00:00:00Z", "deletionGracePeriodSeconds": 30,
      "selfLink": "/apis/apps/v1/namespaces/n/deployments/web",
      "managedFields": [{"manager": "kubectl"}],
      "ownerReferences": [{"uid": "owner", "kind": "X", "name": "x", "apiVersion": "v1"}],
      "labels": {"app": "web"}, "annotations": {"a": "b"}, "finalizers": ["example.com/f"]},
    "spec": {"replicas": 2},
    "status": {"readyReplicas": 2}})"));
  EXPECT_EQ(out, json::parse(R"({
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "n", "labels": {"app": "web"},
                 "annotations": {"a": "b"}, "finalizers": ["example.com/f"]},
    "spec": {"replicas": 2}})"));
}

TEST(Sanitize, StripsAllocatedServiceAddressesAndPorts) {
  const json out = Sanitized(kServices, json::parse(R"({"kind": "Service", "metadata": {"name": "s"},
    "spec": {"type": "LoadBalancer", "clusterIP": "10.0.0.7", "clusterIPs": ["10.0.0.7"],
             "healthCheckNodePort": 31000, "externalTrafficPolicy": "Local",
             "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30080}, {"port": 443}]}})"));
  EXPECT_EQ(out["spec"], json::parse(R"({"type": "LoadBalancer", "externalTrafficPolicy": "Local",
             "ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]})"));
}

TEST(Sanitize, KeepsTheClusterIpOfHeadlessServices) {
  const json out = Sanitized(kServices, json::parse(R"({"metadata": {"name": "s"},
    "spec": {"clusterIP": "None", "clusterIPs": ["None"], "ports": [{"port": 80}]}})"));
  EXPECT_EQ(out["spec"]["clusterIP"], "None");
  EXPECT_EQ(out["spec"]["clusterIPs"], json::array({"None"}));
}

TEST(Sanitize, StripsServiceAccountTokenSecretReferences) {
  const json out = Sanitized({"", "v1", "serviceaccounts"}, json::parse(R"({
    "metadata": {"name": "app"}, "secrets": [{"name": "app-token-abcde"}],
    "imagePullSecrets": [{"name": "registry"}]})"));
  EXPECT_FALSE(out.contains("secrets"));
  EXPECT_EQ(out["imagePullSecrets"], json::parse(R"([{"name": "registry"}])"));
}

TEST(Sanitize, StripsTheBoundVolumeOfClaims) {
  const json out = Sanitized({"", "v1", "persistentvolumeclaims"}, json::parse(R"({
    "metadata": {"name": "data", "annotations": {
      "pv.kubernetes.io/bind-completed": "yes", "pv.kubernetes.io/bound-by-controller": "yes",
      "volume.kubernetes.io/selected-node": "node-1",
      "volume.beta.kubernetes.io/storage-provisioner": "ebs.csi.aws.com",
      "volume.kubernetes.io/storage-provisioner": "ebs.csi.aws.com", "team": "a"}},
    "spec": {"volumeName": "pvc-123", "storageClassName": "gp3",
             "resources": {"requests": {"storage": "1Gi"}}}})"));
  EXPECT_FALSE(out["spec"].contains("volumeName"));
  EXPECT_EQ(out["spec"]["storageClassName"], "gp3");
  EXPECT_EQ(out["metadata"]["annotations"], json::parse(R"({"team": "a"})"));
}

TEST(Sanitize, StripsTheGeneratedJobSelectorAndControllerUidLabels) {
  const json job = json::parse(R"({
    "metadata": {"name": "j", "labels": {"controller-uid": "u", "batch.kubernetes.io/controller-uid": "u",
                                         "job-name": "j"}},
    "spec": {"selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u"}},
             "template": {"metadata": {"labels": {"controller-uid": "u",
                                                   "batch.kubernetes.io/controller-uid": "u", "app": "x"}},
                          "spec": {"containers": []}}}})");
  const json out = Sanitized({"batch", "v1", "jobs"}, job);
  EXPECT_FALSE(out["spec"].contains("selector"));
  EXPECT_EQ(out["metadata"]["labels"], json::parse(R"({"job-name": "j"})"));
  EXPECT_EQ(out["spec"]["template"]["metadata"]["labels"], json::parse(R"({"app": "x"})"));
}

TEST(Sanitize, KeepsAManualJobSelector) {
  json job = json::parse(R"({"metadata": {"name": "j"},
    "spec": {"manualSelector": true, "selector": {"matchLabels": {"app": "x"}},
             "template": {"metadata": {"labels": {"app": "x"}}}}})");
  EXPECT_EQ(Sanitized({"batch", "v1", "jobs"}, job)["spec"], job["spec"]);
}

TEST(Sanitize, RecognisesKindsByGroupNotByResourceNameAlone) {
  // A CRD named "services" in another group is not a core Service.
  const json svc = json::parse(R"({"metadata": {"name": "s"}, "spec": {"clusterIP": "10.0.0.1"}})");
  EXPECT_EQ(Sanitized({"example.com", "v1", "services"}, svc)["spec"]["clusterIP"], "10.0.0.1");
}

TEST(Sanitize, ToleratesUnexpectedShapes) {
  EXPECT_EQ(Sanitized(kServices, json("text")), json("text"));
  EXPECT_EQ(Sanitized(kServices, json::parse(R"({"metadata": 3, "spec": []})")),
            json::parse(R"({"metadata": 3, "spec": []})"));
  EXPECT_EQ(Sanitized(kServices, json::parse(R"({"spec": {"ports": [1, {"nodePort": 1}]}})")),
            json::parse(R"({"spec": {"ports": [1, {}]}})"));
}

TEST(ShouldReplicate, ServiceAccountTokenSecretsAreNotReplicated) {
  EXPECT_FALSE(ShouldReplicate(kSecrets, json::parse(R"({"metadata": {"name": "t"},
                                                          "type": "kubernetes.io/service-account-token"})")));
  EXPECT_TRUE(ShouldReplicate(kSecrets, json::parse(R"({"metadata": {"name": "t"}, "type": "Opaque"})")));
  EXPECT_TRUE(ShouldReplicate(kSecrets, json::parse(R"({"metadata": {"name": "t"}})")));
}

TEST(ShouldReplicate, PerNamespaceCaConfigMapsAreNotReplicated) {
  EXPECT_FALSE(ShouldReplicate(kConfigMaps, json::parse(R"({"metadata": {"name": "kube-root-ca.crt"}})")));
  EXPECT_FALSE(
      ShouldReplicate(kConfigMaps, json::parse(R"({"metadata": {"name": "openshift-service-ca.crt"}})")));
  EXPECT_TRUE(ShouldReplicate(kConfigMaps, json::parse(R"({"metadata": {"name": "app-config"}})")));
}

TEST(ShouldReplicate, ControllerManagedEndpointSlicesAreNotReplicated) {
  const GroupVersionResource slices{"discovery.k8s.io", "v1", "endpointslices"};
  EXPECT_FALSE(ShouldReplicate(slices, json::parse(R"({"metadata": {"name": "s-abc",
      "labels": {"endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}}})")));
  EXPECT_TRUE(ShouldReplicate(slices, json::parse(R"({"metadata": {"name": "manual",
      "labels": {"endpointslice.kubernetes.io/managed-by": "me"}}})")));
}

TEST(ShouldReplicate, EverythingElseIsReplicated) {
  EXPECT_TRUE(ShouldReplicate(kDeployments, json::parse(R"({"metadata": {"name": "kube-root-ca.crt"}})")));
  EXPECT_TRUE(ShouldReplicate(kDeployments, json("odd")));
}

}  // namespace
}  // namespace ro::plugins::kubernetes

#include <gtest/gtest.h>

#include "kube_fake_transport.h"
#include "ro/kube/discovery.h"
#include "ro/kube/errors.h"

namespace ro::kube {
namespace {

using testing::FakeTransport;

constexpr auto kNever = std::chrono::hours{1};  // refresh interval no test reaches

const char* const kCoreVersions = R"({"kind":"APIVersions","versions":["v1"]})";
const char* const kCoreV1 = R"({"kind":"APIResourceList","groupVersion":"v1","resources":[
  {"name":"configmaps","singularName":"","namespaced":true,"kind":"ConfigMap",
   "verbs":["create","delete","get","list","patch","update","watch"],"shortNames":["cm"]},
  {"name":"namespaces","namespaced":false,"kind":"Namespace","verbs":["get","list"]},
  {"name":"namespaces/status","namespaced":false,"kind":"Namespace","verbs":["get","patch"]},
  {"name":"pods","namespaced":true,"kind":"Pod","verbs":["get"]},
  {"name":"pods/status","namespaced":true,"kind":"Pod","verbs":["get"]},
  {"name":"pods/log","namespaced":true,"kind":"Pod","verbs":["get"]}]})";

std::string Groups(bool with_crd) {
  std::string groups = R"({"kind":"APIGroupList","groups":[
    {"name":"apps","versions":[{"groupVersion":"apps/v1","version":"v1"}]},
    {"name":"metrics.k8s.io","versions":[{"groupVersion":"metrics.k8s.io/v1beta1","version":"v1beta1"}]})";
  if (with_crd) {
    groups += R"(,{"name":"x.io","versions":[{"groupVersion":"x.io/v1","version":"v1"},
                                             {"groupVersion":"x.io/v2","version":"v2"}]})";
  }
  return groups + "]}";
}

const char* const kAppsV1 = R"({"kind":"APIResourceList","groupVersion":"apps/v1","resources":[
  {"name":"deployments","namespaced":true,"kind":"Deployment","verbs":["get","list"]},
  {"name":"deployments/scale","namespaced":true,"kind":"Scale","verbs":["get"]}]})";
const char* const kUnavailable = "service unavailable";

void ScriptServer(FakeTransport& t, bool with_crd) {
  t.Respond("GET", "/api", 200, kCoreVersions);
  t.Respond("GET", "/apis", 200, Groups(with_crd));
  t.Respond("GET", "/api/v1", 200, kCoreV1);
  t.Respond("GET", "/apis/apps/v1", 200, kAppsV1);
  t.Respond("GET", "/apis/metrics.k8s.io/v1beta1", 503, kUnavailable);
  if (with_crd) {
    t.Respond("GET", "/apis/x.io/v1", 200,
              R"({"resources":[{"name":"widgets","namespaced":true,"kind":"Widget","verbs":["list"]}]})");
    t.Respond("GET", "/apis/x.io/v2", 200,
              R"({"resources":[{"name":"widgets","namespaced":true,"kind":"Widget","verbs":["list"]}]})");
  }
}

TEST(KubeDiscovery, RecordsKindScopeVerbsAndSubresources) {
  FakeTransport t;
  ScriptServer(t, false);
  Discovery discovery(t, kNever);
  const auto pods = discovery.Find({"", "v1", "pods"});
  ASSERT_TRUE(pods.has_value());
  EXPECT_EQ(pods->kind, "Pod");
  EXPECT_TRUE(pods->namespaced);
  EXPECT_TRUE(pods->HasSubresource("status"));
  EXPECT_TRUE(pods->HasSubresource("log"));
  EXPECT_FALSE(pods->HasSubresource("scale"));
  const auto ns = discovery.Find({"", "v1", "namespaces"});
  ASSERT_TRUE(ns.has_value());
  EXPECT_FALSE(ns->namespaced);
  const auto cm = discovery.Find({"", "v1", "configmaps"});
  ASSERT_TRUE(cm.has_value());
  EXPECT_TRUE(cm->HasVerb("watch"));
  EXPECT_EQ(cm->short_names, std::vector<std::string>{"cm"});
  const auto deploy = discovery.FindByKind("apps/v1", "Deployment");
  ASSERT_TRUE(deploy.has_value());
  EXPECT_EQ(deploy->gvr, (GroupVersionResource{"apps", "v1", "deployments"}));
  EXPECT_TRUE(deploy->HasSubresource("scale"));
}

TEST(KubeDiscovery, SubresourcesAreNotListedAsResources) {
  FakeTransport t;
  ScriptServer(t, false);
  Discovery discovery(t, kNever);
  for (const auto& r : discovery.All()) {
    EXPECT_EQ(r.gvr.resource.find('/'), std::string::npos) << r.gvr.ToString();
  }
  EXPECT_EQ(discovery.All().size(), 4u);  // configmaps, namespaces, pods, deployments
}

TEST(KubeDiscovery, AFailingAggregatedGroupDoesNotHideTheOthers) {
  FakeTransport t;
  ScriptServer(t, false);
  Discovery discovery(t, kNever);
  EXPECT_TRUE(discovery.Find({"apps", "v1", "deployments"}).has_value());
  EXPECT_FALSE(discovery.Find({"metrics.k8s.io", "v1beta1", "pods"}).has_value());
}

TEST(KubeDiscovery, AMissRefreshesSoANewCrdResolves) {
  FakeTransport t;
  ScriptServer(t, false);
  Discovery discovery(t, std::chrono::milliseconds{0});
  EXPECT_TRUE(discovery.Find({"", "v1", "pods"}).has_value());
  ScriptServer(t, true);  // the CRD is installed now
  const auto widgets = discovery.Find({"x.io", "v2", "widgets"});
  ASSERT_TRUE(widgets.has_value());
  EXPECT_EQ(widgets->kind, "Widget");
}

TEST(KubeDiscovery, MissesWithinTheRefreshIntervalDoNotRefetch) {
  FakeTransport t;
  ScriptServer(t, false);
  Discovery discovery(t, kNever);
  EXPECT_FALSE(discovery.Find({"x.io", "v1", "widgets"}).has_value());
  const size_t requests = t.requests.size();
  EXPECT_FALSE(discovery.Find({"x.io", "v1", "widgets"}).has_value());
  EXPECT_FALSE(discovery.FindByKind("x.io/v1", "Widget").has_value());
  EXPECT_EQ(t.requests.size(), requests);
}

TEST(KubeDiscovery, InvalidateRefetchesOnNextLookup) {
  FakeTransport t;
  ScriptServer(t, false);
  Discovery discovery(t, kNever);
  EXPECT_TRUE(discovery.Find({"", "v1", "pods"}).has_value());
  discovery.Invalidate();
  ScriptServer(t, true);
  EXPECT_TRUE(discovery.Find({"x.io", "v1", "widgets"}).has_value());
}

TEST(KubeDiscovery, FailureOfTheGroupListItselfIsAnError) {
  FakeTransport t;
  t.Respond("GET", "/api", 200, kCoreVersions);
  t.Respond("GET", "/apis", 401,
            R"({"kind":"Status","reason":"Unauthorized","code":401,"message":"Unauthorized"})");
  Discovery discovery(t, kNever);
  try {
    discovery.All();
    ADD_FAILURE();
  } catch (const ApiError& e) {
    EXPECT_TRUE(IsUnauthorized(e));
  }
}

}  // namespace
}  // namespace ro::kube

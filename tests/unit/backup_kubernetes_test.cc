// The kubernetes-objects-to-bucket Backup plugin's pure parts
// (ro/plugins/backup/kubernetes_backup.h): the config, what is backed up, the index.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>

#include "ro/plugins/backup/kubernetes_backup.h"
#include "ro/plugins/kubernetes/bucket_object.h"
#include "ro/plugins/kubernetes/config_error.h"

namespace ro::plugins::backup {
namespace {

using nlohmann::json;

json Backup(json config, std::string plugin = "kubernetes-objects-to-bucket") {
  return {{"metadata", {{"name", "nightly"}, {"namespace", "dr"}}},
          {"spec", {{"plugin", plugin}, {"config", std::move(config)}}}};
}

const json kConfig = json::parse(R"({
  "source": {"kubernetesCluster": {"name": "cluster-1", "namespaces": ["shop", "billing", "shop"]}},
  "destination": {"bucket": {"name": "backups", "basePath": "/team/a/"}}})");

// "field: reason" of every problem.
std::string Problems(const json& backup) {
  try {
    ParseKubernetesBackup(backup);
  } catch (const kubernetes::ConfigError& e) {
    std::string out;
    for (const auto& p : e.problems()) out += (out.empty() ? "" : ", ") + p.field;
    return out;
  }
  return "accepted";
}

TEST(KubernetesBackupTest, ConfigNamesClusterNamespacesBucketAndATrimmedBasePath) {
  const KubernetesBackupConfig config = ParseKubernetesBackup(Backup(kConfig));
  EXPECT_EQ(config.cluster_name, "cluster-1");
  EXPECT_EQ(config.namespaces, (std::vector<std::string>{"shop", "billing"}));
  EXPECT_EQ(config.bucket_name, "backups");
  EXPECT_EQ(config.base_path, "team/a");
  json defaults = kConfig;
  defaults["source"]["kubernetesCluster"].erase("namespaces");
  defaults["destination"]["bucket"].erase("basePath");
  const KubernetesBackupConfig every = ParseKubernetesBackup(Backup(defaults));
  EXPECT_TRUE(every.namespaces.empty());
  EXPECT_EQ(every.base_path, "dr/nightly");
}

TEST(KubernetesBackupTest, BadConfigNamesEachField) {
  EXPECT_EQ(Problems(Backup(kConfig, "velero")), "spec.plugin");
  EXPECT_EQ(Problems(Backup(json::object())), "spec.config.source, spec.config.destination");
  json bad = kConfig;
  bad["source"]["kubernetesCluster"]["name"] = "";
  bad["source"]["kubernetesCluster"]["namespaces"] = {"ok", 3};
  bad["destination"]["bucket"]["basePath"] = "a/../b";
  EXPECT_EQ(Problems(Backup(bad)),
            "spec.config.source.kubernetesCluster.name, spec.config.source.kubernetesCluster.namespaces[1], "
            "spec.config.destination.bucket.basePath");
  json database = kConfig;
  database["source"]["database"] = {{"name", "zookeeper-1"}};
  EXPECT_EQ(Problems(Backup(database)), "spec.config.source.database");
}

TEST(KubernetesBackupTest, DerivedResourcesAndControllerOwnedObjectsAreLeftOut) {
  kube::ApiResource deployments{{"apps", "v1", "deployments"}, "Deployment", true, {"get", "list"}, {}, {}};
  EXPECT_TRUE(ShouldBackUpResource(deployments));
  for (const kube::GroupVersionResource& gvr :
       {kube::GroupVersionResource{"", "v1", "events"}, {"events.k8s.io", "v1", "events"}, {"", "v1", "endpoints"},
        {"discovery.k8s.io", "v1", "endpointslices"}, {"coordination.k8s.io", "v1", "leases"},
        {"metrics.k8s.io", "v1beta1", "pods"}}) {
    kube::ApiResource resource = deployments;
    resource.gvr = gvr;
    EXPECT_FALSE(ShouldBackUpResource(resource)) << gvr.ToString();
  }
  kube::ApiResource cluster_scoped = deployments;
  cluster_scoped.namespaced = false;
  EXPECT_FALSE(ShouldBackUpResource(cluster_scoped));
  kube::ApiResource no_list = deployments;
  no_list.verbs = {"create"};
  EXPECT_FALSE(ShouldBackUpResource(no_list));

  const json owned = json::parse(R"({"metadata": {"name": "web-1", "ownerReferences": [{"kind": "Deployment", "controller": true}]}})");
  const json referenced = json::parse(R"({"metadata": {"name": "x", "ownerReferences": [{"kind": "Foo"}]}})");
  EXPECT_FALSE(ShouldBackUp({"apps", "v1", "replicasets"}, owned));
  EXPECT_TRUE(ShouldBackUp({"", "v1", "configmaps"}, referenced));
  EXPECT_FALSE(ShouldBackUp({"", "v1", "secrets"}, json::parse(R"({"metadata": {"name": "t"}, "type": "kubernetes.io/service-account-token"})")));
}

TEST(KubernetesBackupTest, TheLayoutIsTheOriginalsLayoutUnderTheBasePath) {
  const kube::GroupVersionResource deployments{"apps", "v1", "deployments"};
  EXPECT_EQ(kubernetes::BucketObjectKey("team/a", deployments, "shop", "web"), "team/a/apps-v1-deployments/shop.web");
  EXPECT_EQ(kubernetes::BucketObjectKey("", {"", "v1", "namespaces"}, "", "shop"), "v1-namespaces/shop");
  EXPECT_EQ(kubernetes::BucketObjectPath("dr", "pre", deployments, "shop", "web"),
            kubernetes::BucketObjectKey("dr/pre", deployments, "shop", "web"));
}

TEST(KubernetesBackupTest, TheIndexCountsAndListsEveryObject) {
  BackupIdentity identity;
  identity.ns = "dr";
  identity.name = "nightly";
  identity.uid = "u-1";
  identity.cluster_name = "cluster-1";
  identity.cluster_server_version = "v1.20.2";
  identity.start = std::chrono::system_clock::time_point{std::chrono::seconds{1'700'000'000}};
  BackupResult result;
  result.entries = {{"v1-namespaces/shop", "v1/namespaces", "", "shop", "aa", 10},
                    {"apps-v1-deployments/shop.web", "apps/v1/deployments", "shop", "web", "bb", 20}};
  result.by_resource = {{"v1/namespaces", 1}, {"apps/v1/deployments", 1}};
  result.namespaces = {"shop"};
  result.bytes = 30;
  const json index = json::parse(
      BackupIndexJson(identity, result, identity.start + std::chrono::seconds{3}));
  EXPECT_EQ(index["kind"], "BackupIndex");
  EXPECT_EQ(index["backup"], json({{"namespace", "dr"}, {"name", "nightly"}, {"uid", "u-1"}}));
  EXPECT_EQ(index["source"]["kubernetesCluster"], json({{"name", "cluster-1"}, {"serverVersion", "v1.20.2"}}));
  EXPECT_EQ(index["startTime"], "2023-11-14T22:13:20Z");
  EXPECT_EQ(index["completionTime"], "2023-11-14T22:13:23Z");
  EXPECT_EQ(index["counts"], json::parse(R"({"objects": 2, "bytes": 30,
    "resources": {"apps/v1/deployments": 1, "v1/namespaces": 1}})"));
  EXPECT_EQ(index["objects"][1], json::parse(R"({"key": "apps-v1-deployments/shop.web", "resource": "apps/v1/deployments",
    "namespace": "shop", "name": "web", "sha256": "bb", "bytes": 20})"));
  EXPECT_FALSE(index["objects"][0].contains("namespace"));
}

}  // namespace
}  // namespace ro::plugins::backup

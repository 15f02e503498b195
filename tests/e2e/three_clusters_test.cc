// The 3-cluster architecture (manual 2.1 and 6.2.1), as users run it: the operator is
// installed from its image (manual section 3) in a management cluster, which replicates
// tutorial 8.2's application from cluster 1 to cluster 2, and in cluster 2, which runs
// the recovery. Neither cluster 1 nor cluster 2 holds anything of the synchronization:
// the LiveSynchronization and the KubernetesClusters live in the management cluster, the
// recovery Task it generates lives in cluster 2, so recovery works with the management
// cluster gone. CTest labels: e2e, cluster (two clusters with a node each; root).
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "livesync_e2e.h"
#include "ro/testsupport/operator_install.h"

namespace {

namespace fs = std::filesystem;
namespace te = ro::testenv;
namespace ts = ro::testsupport;
namespace k8s = ro::plugins::kubernetes;
using livesync_e2e::ReadSample;
using nlohmann::json;
using ro::kube::GroupVersionResource;
using namespace std::chrono_literals;

constexpr auto kEventually = 300s;
constexpr auto kPoll = 1s;
constexpr const char* kUserNs = "dr";
constexpr const char* kApp = "shop";
constexpr const char* kLiveSync = "active-passive";
constexpr const char* kSample = "8.2-active-passive-livesync.yaml";

const GroupVersionResource kDeployments{"apps", "v1", "deployments"};
const GroupVersionResource kTasks{"automation.astronetes.io", "v1alpha1", "tasks"};
const GroupVersionResource kLiveSyncs{"automation.astronetes.io", "v1alpha1", "livesynchronizations"};

std::unique_ptr<te::KubeCluster> StartNodeCluster(const std::string& name) {
  te::KubeClusterOptions o;
  o.name = name;
  o.with_node = true;
  return std::make_unique<te::KubeCluster>(o);
}

class ThreeClustersTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    try {
      if (::geteuid() != 0) throw std::runtime_error("needs root: the node clusters use namespaces, mounts, iptables");
      const fs::path bin = ts::OperatorBinDir();
      dir_ = std::make_unique<te::TempDir>("three-clusters");
      auto source = std::async(std::launch::async,
                               [] { return std::make_unique<te::KubeCluster>(livesync_e2e::SourceClusterOptions()); });
      auto destination = std::async(std::launch::async, [] { return StartNodeCluster("cluster2"); });
      management_ = StartNodeCluster("management");
      cluster1_ = source.get();
      cluster2_ = destination.get();
      client1_ = livesync_e2e::AdminClient(*cluster1_);
      client2_ = livesync_e2e::AdminClient(*cluster2_);
      management_client_ = livesync_e2e::AdminClient(*management_);
      // The manual: install the operator in the management and the destination cluster.
      ts::BuildAndImportImages(*management_, bin);
      ts::BuildAndImportImages(*cluster2_, bin);
      ts::InstallOperator(*management_, *management_client_, "management e2e");
      ts::InstallOperator(*cluster2_, *client2_, "destination e2e");
      // The clusters as the management cluster's pods reach them.
      cluster1_->WriteKubeconfigForServer(dir_->path() / "cluster-1-kubeconfig.yaml",
                                          "https://" + management_->node().ExposeHostPort(cluster1_->apiserver().port()));
      cluster2_->WriteKubeconfigForServer(dir_->path() / "cluster-2-kubeconfig.yaml",
                                          "https://" + management_->node().ExposeHostPort(cluster2_->apiserver().port()));
    } catch (const std::exception& e) {
      setup_error_ = e.what();
    }
  }
  static void TearDownTestSuite() {
    client1_.reset();
    client2_.reset();
    management_client_.reset();
    management_.reset();
    cluster2_.reset();
    cluster1_.reset();
    dir_.reset();
  }
  void SetUp() override { ASSERT_TRUE(setup_error_.empty()) << setup_error_; }

  // A user's command in the working directory, kubectl on the management cluster in
  // namespace dr.
  static std::string ManagementCommand(const std::string& command) {
    te::RunOptions options;
    options.env = {{"KUBECONFIG", management_->kubeconfig_path().string()}};
    return te::RunCommand({"sh", "-c", "cd '" + dir_->path().string() + "' && kubectl -n " + kUserNs + " " + command},
                          options)
        .out;
  }

  static std::unique_ptr<te::TempDir> dir_;
  static std::unique_ptr<te::KubeCluster> management_;
  static std::unique_ptr<te::KubeCluster> cluster1_;
  static std::unique_ptr<te::KubeCluster> cluster2_;
  static std::unique_ptr<ro::kube::DynamicClient> management_client_;
  static std::unique_ptr<ro::kube::DynamicClient> client1_;
  static std::unique_ptr<ro::kube::DynamicClient> client2_;
  static std::string setup_error_;
};
std::unique_ptr<te::TempDir> ThreeClustersTest::dir_;
std::unique_ptr<te::KubeCluster> ThreeClustersTest::management_;
std::unique_ptr<te::KubeCluster> ThreeClustersTest::cluster1_;
std::unique_ptr<te::KubeCluster> ThreeClustersTest::cluster2_;
std::unique_ptr<ro::kube::DynamicClient> ThreeClustersTest::management_client_;
std::unique_ptr<ro::kube::DynamicClient> ThreeClustersTest::client1_;
std::unique_ptr<ro::kube::DynamicClient> ThreeClustersTest::client2_;
std::string ThreeClustersTest::setup_error_;

TEST_F(ThreeClustersTest, TheManagementClusterReplicatesAndTheDestinationRecoversWithoutIt) {
  // The application in cluster 1; its namespace in cluster 2 (labelled like in cluster
  // 1: the recovery Task selects it there).
  livesync_e2e::CreateSampleApplicationIn(*cluster1_, *cluster2_, kApp);
  json web = ts::Deployment(kApp, "web", 2, ts::kBusyboxImage);
  web["spec"]["template"]["spec"]["containers"][0]["command"] = json::array({"sleep", "3600"});
  web["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 1;
  cluster1_->Kubectl({"apply", "-f", "-"}, web.dump());
  cluster2_->Kubectl({"label", "namespace", kApp, "sync=true"});

  // Tutorial 8.2's steps, in the management cluster.
  management_->Kubectl({"create", "namespace", kUserNs});
  te::WriteFile(dir_->path() / "cluster-1.yaml", ReadSample("8.1-kubernetescluster-cluster-1.yaml"));
  te::WriteFile(dir_->path() / "cluster-2.yaml", ReadSample("8.1-kubernetescluster-cluster-2.yaml"));
  te::WriteFile(dir_->path() / "livesync.yaml", ReadSample(kSample));
  ManagementCommand("create secret generic cluster-1-kubeconfig --from-file=kubeconfig.yaml=cluster-1-kubeconfig.yaml");
  ManagementCommand("create -f cluster-1.yaml");
  ManagementCommand("create secret generic cluster-2-kubeconfig --from-file=kubeconfig.yaml=cluster-2-kubeconfig.yaml");
  ManagementCommand("create -f cluster-2.yaml");
  ManagementCommand("apply -f livesync.yaml");

  json ls;
  te::WaitFor(
      [&] {
        ls = management_client_->Get(kLiveSyncs, kUserNs, kLiveSync);
        for (const json& c : ls.value("status", json::object()).value("conditions", json::array())) {
          if (c.value("type", "") == "Ready") return c.value("status", "") == "True";
        }
        return false;
      },
      kEventually, "the LiveSynchronization Ready in the management cluster", kPoll);

  // Cluster 2 converges to cluster 1, object by object.
  livesync_e2e::ExpectConverged(*client1_, *client2_, kUserNs, kLiveSync,
                                ts::YamlToJson(ReadSample(kSample))["spec"]["config"], {kApp}, kEventually);
  EXPECT_EQ(client2_->Get(kDeployments, kApp, "web")["spec"]["replicas"], 0);

  // The recovery Task is where the recovery runs: in cluster 2, not in the management
  // cluster, labelled for the LiveSynchronization instead of owned by it.
  json task;
  te::WaitFor(
      [&] {
        const std::optional<json> t = client2_->GetIfExists(kTasks, kUserNs, kLiveSync);
        if (t) task = *t;
        return t.has_value();
      },
      kEventually, "the recovery Task in cluster 2", kPoll);
  EXPECT_FALSE(task["metadata"].contains("ownerReferences"));
  EXPECT_EQ(task["metadata"]["labels"]["kubesync.astronetes.io/managed-by"], k8s::ManagedById(kUserNs, kLiveSync));
  EXPECT_FALSE(management_client_->GetIfExists(kTasks, kUserNs, kLiveSync)) << "the Task belongs in the destination";
  te::WaitFor([&] { return management_client_->Get(kLiveSyncs, kUserNs, kLiveSync)["status"].contains("taskName"); },
              kEventually, "status.taskName", kPoll);
  // Neither cluster holds the synchronization's objects (cluster 1 not even the CRDs).
  EXPECT_EQ(cluster1_->Kubectl({"get", "crd", "-o", "name"}), "");
  EXPECT_EQ(cluster2_->Kubectl({"get", "livesynchronizations,kubernetesclusters", "-A", "-o", "name"}), "");

  // Disaster: the management cluster is gone too. The destination recovers on its own.
  management_->Stop();
  te::WriteFile(dir_->path() / "taskrun.yaml", ReadSample("8.2-taskrun.yaml"));
  te::RunOptions options;
  options.env = {{"KUBECONFIG", cluster2_->kubeconfig_path().string()}};
  te::RunCommand({"sh", "-c", "cd '" + dir_->path().string() + "' && sed -i 's/taskName: .*/taskName: " +
                                  std::string(kLiveSync) + "/' taskrun.yaml && kubectl -n " + kUserNs +
                                  " create -f taskrun.yaml"},
                 options);
  json run;
  te::WaitFor(
      [&] {
        run = json::parse(cluster2_->Kubectl({"-n", kUserNs, "get", "taskrun", "restore-apps", "-o", "json"}));
        const std::string phase = run["status"].value("phase", "");
        return phase == "Succeeded" || phase == "Failed";
      },
      kEventually, "TaskRun restore-apps to end in cluster 2", kPoll);
  EXPECT_EQ(run["status"]["phase"], "Succeeded") << run.dump();
  EXPECT_EQ(client2_->Get(kDeployments, kApp, "web")["spec"]["replicas"], 1);
  te::WaitFor(
      [&] {
        const json d = client2_->Get(kDeployments, kApp, "web");
        return d.value("status", json::object()).value("readyReplicas", 0) == 1;
      },
      kEventually, "the recovered Deployment shop/web running in cluster 2", kPoll);
}

}  // namespace

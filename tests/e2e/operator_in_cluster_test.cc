// The operator as users run it (issue "the operator as users run it"): its image, the
// install manifests and every component as a pod the kubelet starts, on the harness's
// node cluster (tests/testenv kube_node.h). CTest labels: e2e, cluster.
//
// Cluster 2 has a node and plays the manual's 2-cluster architecture: the operator is
// installed in it exactly as manual section 3 says (namespace, license Secret, CRDs,
// operator.yaml through the kustomize overlay deploy/overlays/local-images, which
// points the pipeline at the NATS and Redis images built from Debian's packages).
// Cluster 1 (no node) is the source; its apiserver is exposed to the pods at
// 10.244.0.1:<port> (KubeNode::ExposeHostPort), the address its kubeconfig Secret holds.
//
// Images: scripts/build-image.sh --binaries <Release tree>/bin (operator, nats, redis,
// busybox; cached, seconds when current) imported into the node's containerd. The
// Release tree is $RO_OPERATOR_BIN_DIR, default <source>/build/release/bin
// (scripts/test.sh builds it). A missing prerequisite fails the suite with what is
// missing; nothing is skipped.
//
// The test cases share one installation and run in file order; each one that needs the
// tutorial's LiveSynchronization starts it if it is not running yet, so any of them also
// runs alone (--gtest_filter).
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "livesync_e2e.h"
#include "ro/common/base64.h"
#include "ro/plugins/zookeeper_client.h"
#include "ro/testsupport/operator_install.h"

namespace {

namespace fs = std::filesystem;
namespace te = ro::testenv;
namespace ts = ro::testsupport;
namespace k8s = ro::plugins::kubernetes;
using livesync_e2e::kTutorialKinds;
using livesync_e2e::ReadSample;
using nlohmann::json;
using ro::kube::GroupVersionResource;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

using Clock = std::chrono::steady_clock;

// Pods on one node of 2 busy cores: scheduling, sandbox, start and readiness of a
// dozen pods take tens of seconds; generous.
constexpr auto kRollout = 300s;
constexpr auto kEventually = 180s;
constexpr auto kPoll = 1s;

constexpr const char* kOperatorNs = ts::kOperatorNamespace;
constexpr const char* kUserNs = "dr";      // where the user runs the tutorial
constexpr const char* kApp = "shop";       // the application namespace (both clusters)
constexpr const char* kLiveSync = "active-passive";
constexpr const char* kActivePassive = "8.2-active-passive-livesync.yaml";

// The pipeline's Deployments (name suffixes) and their status.components names. The
// tutorial does not turn observability on: no metrics exporter.
const std::vector<std::pair<std::string, std::string>> kParts = {
    {"nats", "nats"},           {"redis", "redis"},           {"eventslistener", "eventsListener"},
    {"processor", "processor"}, {"synchronizer", "synchronizer"}, {"reconciler", "reconciler"}};

const GroupVersionResource kDeployments{"apps", "v1", "deployments"};
const GroupVersionResource kSecrets{"", "v1", "secrets"};
const GroupVersionResource kLiveSyncs{"automation.astronetes.io", "v1alpha1", "livesynchronizations"};

long long Ms(Clock::duration d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); }

// A Deployment of the busybox image that stays up (so a recovered copy really runs).
json SleepingDeployment(const std::string& ns, const std::string& name, int replicas) {
  json d = ts::Deployment(ns, name, replicas, ts::kBusyboxImage);
  d["spec"]["template"]["spec"]["containers"][0]["command"] = json::array({"sleep", "3600"});
  d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 1;
  return d;
}

class OperatorInClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    try {
      SetUpEverything();
    } catch (const std::exception& e) {
      setup_error_ = e.what();
    }
  }

  static void SetUpEverything() {
    if (::geteuid() != 0) throw std::runtime_error("needs root: the node cluster uses namespaces, mounts and iptables");
    const fs::path bin = ts::OperatorBinDir();
    dir_ = std::make_unique<te::TempDir>("operator-in-cluster");
    auto source = std::async(std::launch::async,
                             [] { return std::make_unique<te::KubeCluster>(livesync_e2e::SourceClusterOptions()); });
    te::KubeClusterOptions o;
    o.name = "cluster2";
    o.with_node = true;
    cluster2_ = std::make_unique<te::KubeCluster>(o);
    cluster1_ = source.get();
    ts::BuildAndImportImages(*cluster2_, bin);
    client1_ = livesync_e2e::AdminClient(*cluster1_);
    client2_ = livesync_e2e::AdminClient(*cluster2_);
    // Cluster 1 as the pods see it: its apiserver at the node bridge's address.
    const std::string address = cluster2_->node().ExposeHostPort(cluster1_->apiserver().port());
    cluster1_->WriteKubeconfigForServer(dir_->path() / "cluster-1-for-pods.yaml", "https://" + address);
    // Cluster 2 as its own pods see it (the node forwards its apiserver port on the bridge).
    cluster2_->WriteKubeconfigForServer(dir_->path() / "cluster-2-for-pods.yaml",
                                        "https://10.244.0.1:" + std::to_string(cluster2_->apiserver().port()));
    // Manual section 3, in its order, with the local images (docs/installation.md).
    const auto took = ts::InstallOperator(*cluster2_, *client2_, "operator e2e");
    std::cout << "[bench] kubectl apply -k of operator.yaml -> 8 controllers Available: " << took.count() << " ms\n";
  }

  void SetUp() override { ASSERT_TRUE(setup_error_.empty()) << setup_error_; }

  static void TearDownTestSuite() {
    client1_.reset();
    client2_.reset();
    cluster2_.reset();
    cluster1_.reset();
    dir_.reset();
  }

  static std::string Kubectl(const std::vector<std::string>& args, std::string_view stdin_data = {}) {
    return cluster2_->Kubectl(args, stdin_data);
  }
  static json KubectlJson(const std::vector<std::string>& args) {
    std::vector<std::string> with = args;
    with.insert(with.end(), {"-o", "json"});
    return json::parse(Kubectl(with));
  }

  static void WaitForControllersAvailable() {
    for (const std::string& c : ts::OperatorControllers()) {
      WaitForDeployment(kOperatorNs, "resiliency-operator-" + c + "-controller");
    }
  }
  static void WaitForDeployment(const std::string& ns, const std::string& name) {
    ts::WaitForRollout(*cluster2_, *client2_, ns, name, kRollout);
  }

  // Running, ready pods of `selector` in `ns` (not being deleted).
  static std::vector<json> ReadyPods(const std::string& ns, const std::string& selector) {
    std::vector<json> pods;
    const json list = KubectlJson({"-n", ns, "get", "pods", "-l", selector});
    for (const json& pod : list["items"]) {
      if (pod["metadata"].contains("deletionTimestamp")) continue;
      if (pod["status"].value("phase", "") != "Running") continue;
      for (const json& c : pod["status"].value("conditions", json::array())) {
        if (c.value("type", "") == "Ready" && c.value("status", "") == "True") pods.push_back(pod);
      }
    }
    return pods;
  }

  static std::string ControllerSelector(const std::string& controller) {
    return "app.kubernetes.io/name=resiliency-operator,app.kubernetes.io/component=" + controller + "-controller";
  }
  static std::string PartSelector(const std::string& part) {
    return "app.kubernetes.io/name=kubesync,app.kubernetes.io/instance=" + k8s::ManagedById(kUserNs, kLiveSync) +
           ",app.kubernetes.io/component=" + part;
  }

  // The user's working directory: the two kubeconfig files as the pods must reach the
  // clusters, and a kubectl context on cluster 2 in namespace `dr`.
  static const fs::path& Workdir() {
    static const fs::path workdir = [] {
      const fs::path w = dir_->path() / "user";
      fs::create_directories(w);
      fs::copy_file(dir_->path() / "cluster-1-for-pods.yaml", w / "cluster-1-kubeconfig.yaml");
      fs::copy_file(dir_->path() / "cluster-2-for-pods.yaml", w / "cluster-2-kubeconfig.yaml");
      te::WriteFile(w / "kubeconfig", te::ReadFile(cluster2_->kubeconfig_path()), 0600);
      return w;
    }();
    return workdir;
  }
  static std::string UserCommand(const std::string& command) {
    te::RunOptions options;
    options.env = {{"KUBECONFIG", (Workdir() / "kubeconfig").string()}};
    return te::RunCommand({"sh", "-c", "cd '" + Workdir().string() + "' && " + command}, options).out;
  }

  static std::optional<json> LiveSync() { return client2_->GetIfExists(kLiveSyncs, kUserNs, kLiveSync); }
  static json Condition(const json& object, const std::string& type) {
    for (const json& c : object.value("status", json::object()).value("conditions", json::array())) {
      if (c.value("type", "") == type) return c;
    }
    return json();
  }
  static void WaitForLiveSyncReady(const std::string& status, const std::string& reason) {
    json last;
    te::WaitFor(
        [&] {
          const std::optional<json> ls = LiveSync();
          if (!ls) return false;
          last = Condition(*ls, "Ready");
          return last.is_object() && last.value("status", "") == status && last.value("reason", "") == reason &&
                 last.value("observedGeneration", int64_t{0}) == (*ls)["metadata"].value("generation", int64_t{0});
        },
        kRollout, "LiveSynchronization Ready=" + status + " " + reason + " (last: " + last.dump() + ")", kPoll);
  }

  // The application of the tutorials in cluster 1 (namespace shop, labelled sync=true)
  // with a Deployment whose pods can really run on cluster 2's node once recovered.
  static void CreateApplication() {
    livesync_e2e::CreateSampleApplicationIn(*cluster1_, *cluster2_, kApp);
    // The recovery Task selects the sync=true namespaces of cluster 2: label it as the
    // user's platform does in both clusters.
    Kubectl({"label", "namespace", kApp, "sync=true"});
    cluster1_->Kubectl({"apply", "-f", "-"}, SleepingDeployment(kApp, "web", 2).dump());
  }

  // What a user would look at when the pipeline does not come up: its pods, their events
  // and the last lines of each container's log (printed, never asserted).
  static void PrintPipelinePods() {
    const auto run = [](const std::vector<std::string>& args) {
      try {
        return Kubectl(args);
      } catch (const std::exception& e) {
        return std::string("(kubectl failed: ") + e.what() + ")";
      }
    };
    std::cout << "[diagnostics] pods:\n" << run({"-n", kUserNs, "get", "pods", "-o", "wide"}) << "\n";
    std::cout << "[diagnostics] events:\n" << run({"-n", kUserNs, "get", "events"}) << "\n";
    try {
      const json pods = KubectlJson({"-n", kUserNs, "get", "pods"});
      for (const json& pod : pods["items"]) {
        const std::string name = pod["metadata"]["name"];
        std::cout << "[diagnostics] logs of " << name << ":\n"
                  << run({"-n", kUserNs, "logs", "--tail=40", name}) << "\n";
        const json& statuses = pod["status"]["containerStatuses"];
        if (statuses.is_array() && !statuses.empty() && statuses[0].value("restartCount", 0) > 0) {
          std::cout << "[diagnostics] logs of " << name << " before its last restart:\n"
                    << run({"-n", kUserNs, "logs", "--previous", "--tail=40", name}) << "\n";
        }
      }
    } catch (const std::exception& e) {
      std::cout << "[diagnostics] " << e.what() << "\n";
    }
  }

  // Tutorial 8.2 verbatim, once: kubeconfig Secrets, KubernetesClusters, livesync.yaml.
  static void EnsureTutorialRunning() {
    if (!tutorial_started_) {
      tutorial_started_ = true;
      CreateApplication();
      Kubectl({"create", "namespace", kUserNs});
      UserCommand("kubectl config set-context --current --namespace=" + std::string(kUserNs));
      te::WriteFile(Workdir() / "cluster-1.yaml", ReadSample("8.1-kubernetescluster-cluster-1.yaml"));
      te::WriteFile(Workdir() / "cluster-2.yaml", ReadSample("8.1-kubernetescluster-cluster-2.yaml"));
      te::WriteFile(Workdir() / "livesync.yaml", ReadSample(kActivePassive));
      UserCommand("kubectl create secret generic cluster-1-kubeconfig --from-file=kubeconfig.yaml=cluster-1-kubeconfig.yaml");
      UserCommand("kubectl create -f cluster-1.yaml");
      UserCommand("kubectl create secret generic cluster-2-kubeconfig --from-file=kubeconfig.yaml=cluster-2-kubeconfig.yaml");
      UserCommand("kubectl create -f cluster-2.yaml");
      const auto applied = Clock::now();
      UserCommand("kubectl apply -f livesync.yaml");
      try {
        te::WaitFor([] { return client2_->GetIfExists(kDeployments, kApp, "web").has_value(); }, kRollout,
                    "the first object replicated (Deployment shop/web in cluster 2)", 200ms);
      } catch (const std::exception&) {
        PrintPipelinePods();
        throw;
      }
      std::cout << "[bench] kubectl apply of the LiveSynchronization -> first object replicated: "
                << Ms(Clock::now() - applied) << " ms\n";
      WaitForLiveSyncReady("True", "Running");
      std::cout << "[bench] kubectl apply of the LiveSynchronization -> Ready: " << Ms(Clock::now() - applied)
                << " ms\n";
    }
    ExpectConverges();
  }

  static json SpecConfig() { return ts::YamlToJson(ReadSample(kActivePassive))["spec"]["config"]; }

  // Cluster 2 holds exactly the expected form of cluster 1's application, object by object.
  static void ExpectConverges() {
    livesync_e2e::ExpectConverged(*client1_, *client2_, kUserNs, kLiveSync, SpecConfig(), {kApp}, kEventually);
  }

  static std::unique_ptr<te::TempDir> dir_;
  static std::unique_ptr<te::KubeCluster> cluster1_;
  static std::unique_ptr<te::KubeCluster> cluster2_;
  static std::unique_ptr<ro::kube::DynamicClient> client1_;
  static std::unique_ptr<ro::kube::DynamicClient> client2_;
  static std::string setup_error_;
  static bool tutorial_started_;
};
std::unique_ptr<te::TempDir> OperatorInClusterTest::dir_;
std::unique_ptr<te::KubeCluster> OperatorInClusterTest::cluster1_;
std::unique_ptr<te::KubeCluster> OperatorInClusterTest::cluster2_;
std::unique_ptr<ro::kube::DynamicClient> OperatorInClusterTest::client1_;
std::unique_ptr<ro::kube::DynamicClient> OperatorInClusterTest::client2_;
std::string OperatorInClusterTest::setup_error_;
bool OperatorInClusterTest::tutorial_started_ = false;

TEST_F(OperatorInClusterTest, EveryControllerRunsAsAPodOfTheImageAndLoadsTheLicense) {
  for (const std::string& c : ts::OperatorControllers()) {
    const std::vector<json> pods = ReadyPods(kOperatorNs, ControllerSelector(c));
    ASSERT_EQ(pods.size(), 1u) << c;
    const json& pod = pods.front();
    EXPECT_EQ(pod["spec"]["nodeName"], te::KubeNode::kNodeName);
    EXPECT_EQ(pod["spec"]["containers"][0]["image"], ts::kOperatorImage);
    EXPECT_EQ(pod["status"]["containerStatuses"][0]["restartCount"], 0) << c;
    const std::string logs = Kubectl({"-n", kOperatorNs, "logs", pod["metadata"]["name"].get<std::string>()});
    EXPECT_THAT(logs, HasSubstr("\"msg\":\"license loaded\"")) << c;
    EXPECT_THAT(logs, HasSubstr("operator e2e")) << c;
  }
}

TEST_F(OperatorInClusterTest, LeaderElectionHandsOverWhenTheLeaderPodIsDeleted) {
  const std::string name = "resiliency-operator-livesynchronization-controller";
  auto holder = [&] {
    const std::string h = Kubectl({"-n", kOperatorNs, "get", "lease", name, "-o", "jsonpath={.spec.holderIdentity}"});
    return h.substr(0, h.rfind('_'));  // "<pod name>_<random>"
  };
  std::string leader;
  te::WaitFor([&] { return !(leader = holder()).empty(); }, kEventually, "a leader", kPoll);
  const std::vector<json> pods = ReadyPods(kOperatorNs, ControllerSelector("livesynchronization"));
  ASSERT_EQ(pods.size(), 1u);
  ASSERT_EQ(pods.front()["metadata"]["name"], leader);
  const auto start = Clock::now();
  Kubectl({"-n", kOperatorNs, "delete", "pod", leader, "--wait=false"});
  std::string next;
  te::WaitFor(
      [&] {
        next = holder();
        return !next.empty() && next != leader;
      },
      kEventually, "the Lease to move to the replacement pod", kPoll);
  std::cout << "[bench] leader pod deleted -> Lease held by its replacement: " << Ms(Clock::now() - start) << " ms\n";
  WaitForDeployment(kOperatorNs, name);
  const std::vector<json> now = ReadyPods(kOperatorNs, ControllerSelector("livesynchronization"));
  ASSERT_EQ(now.size(), 1u);
  EXPECT_EQ(now.front()["metadata"]["name"], next);
  // The old leader released the Lease on SIGTERM (graceful shutdown) or it expired; either
  // way the new pod logged that it leads.
  EXPECT_THAT(Kubectl({"-n", kOperatorNs, "logs", next}), HasSubstr("leader"));
}

TEST_F(OperatorInClusterTest, RolloutRestartOfEachControllerLoadsTheNewLicense) {
  // Manual 4.1, step 1: the new license Secret, applied.
  Kubectl({"-n", kOperatorNs, "apply", "-f", "-"}, ts::LicenseSecret("operator e2e renewed"));
  // Step 2: the manual's eight commands, verbatim.
  for (const std::string& c : ts::OperatorControllers()) {
    Kubectl({"-n", kOperatorNs, "rollout", "restart", "deployment", "resiliency-operator-" + c + "-controller"});
  }
  WaitForControllersAvailable();
  for (const std::string& c : ts::OperatorControllers()) {
    const std::vector<json> pods = ReadyPods(kOperatorNs, ControllerSelector(c));
    ASSERT_EQ(pods.size(), 1u) << c;
    EXPECT_THAT(Kubectl({"-n", kOperatorNs, "logs", pods.front()["metadata"]["name"].get<std::string>()}),
                HasSubstr("operator e2e renewed"))
        << c;
  }
}

TEST_F(OperatorInClusterTest, Tutorial82RunsItsComponentsAsPodsAndReplicates) {
  EnsureTutorialRunning();
  // Every component is a Deployment of ready pods on the node, of the configured images.
  for (const auto& [part, component] : kParts) {
    const std::vector<json> pods = ReadyPods(kUserNs, PartSelector(part));
    ASSERT_EQ(pods.size(), 1u) << part;
    const std::string image = pods.front()["spec"]["containers"][0]["image"];
    if (part == "nats") {
      EXPECT_EQ(image, ts::kNatsImage);
    } else if (part == "redis") {
      EXPECT_EQ(image, ts::kRedisImage);
    } else {
      EXPECT_EQ(image, ts::kOperatorImage);
    }
  }
  const json ls = *LiveSync();
  for (const json& c : ls["status"]["components"]) EXPECT_EQ(c.value("ready", false), true) << c.dump();
  // Deployments arrive at replicas 0 (the tutorial's transformation).
  EXPECT_EQ(client2_->Get(kDeployments, kApp, "web")["spec"]["replicas"], 0);
  // Changes in cluster 1 follow.
  cluster1_->Kubectl({"apply", "-f", "-"}, ts::Secret(kApp, "web-config", "v2").dump());
  cluster1_->Kubectl({"apply", "-f", "-"}, SleepingDeployment(kApp, "worker", 1).dump());
  cluster1_->Kubectl({"-n", kApp, "delete", "ingress", "web"});
  ExpectConverges();
}

// Manual 2.3 in the cluster: the audit webhook's two pods from the operator's image
// issue their certificate, patch the CA bundle into the MutatingWebhookConfiguration and
// answer an admission review at each endpoint of their Service, over TLS checked against
// that bundle for the Service's DNS name. The harness's apiserver runs outside the node's
// network namespace and cannot reach Services or pods (a real control plane can), so the
// review is sent from inside the node, as the apiserver would send it;
// tests/integration/audit_webhook_test.cc has the apiserver itself call the same binary.
TEST_F(OperatorInClusterTest, TheAuditWebhookAnswersAtItsServicesEndpointsWithThePatchedCaBundle) {
  const std::vector<json> pods = ReadyPods(kOperatorNs, "app.kubernetes.io/component=audit-webhook");
  ASSERT_EQ(pods.size(), 2u);
  for (const json& pod : pods) EXPECT_EQ(pod["spec"]["containers"][0]["image"], ts::kOperatorImage);
  std::string bundle;
  te::WaitFor(
      [&] {
        bundle = Kubectl({"get", "mutatingwebhookconfiguration", "resiliency-operator-audit", "-o",
                          "jsonpath={.webhooks[0].clientConfig.caBundle}"});
        return !bundle.empty();
      },
      kEventually, "the webhook to patch its CA bundle in", kPoll);
  const fs::path ca = Workdir() / "audit-webhook-ca.pem";
  te::WriteFile(ca, ro::common::DecodeBase64(bundle));
  // The Service's endpoints: both replicas, each sent the review (the node's network
  // namespace reaches pods directly; its own traffic does not go through kube-proxy).
  std::vector<std::string> endpoints;
  std::string port;
  te::WaitFor(
      [&] {
        const json subsets = KubectlJson({"-n", kOperatorNs, "get", "endpoints", "resiliency-operator-audit-webhook"})
                                 .value("subsets", json::array());
        endpoints.clear();
        if (subsets.empty()) return false;
        for (const json& address : subsets[0].value("addresses", json::array())) endpoints.push_back(address["ip"]);
        port = std::to_string(subsets[0]["ports"][0]["port"].get<int>());
        return endpoints.size() == 2;
      },
      kEventually, "both replicas behind the webhook's Service", kPoll);
  const std::string host = "resiliency-operator-audit-webhook.resiliency-operator.svc";
  const json review = {
      {"apiVersion", "admission.k8s.io/v1"},
      {"kind", "AdmissionReview"},
      {"request",
       {{"uid", "e2e-review-1"},
        {"operation", "CREATE"},
        {"userInfo", {{"username", "alice"}, {"uid", "alice-uid"}}},
        {"object",
         {{"apiVersion", "automation.astronetes.io/v1alpha1"},
          {"kind", "LiveSynchronization"},
          {"metadata", {{"name", "audited"}, {"namespace", kUserNs}}},
          {"spec", {{"suspend", true}}}}}}}};
  for (const std::string& ip : endpoints) {
    SCOPED_TRACE(ip);
    json answer;
    te::WaitFor(
        [&] {
          try {
            answer = json::parse(cluster2_->node().RunInNode(
                {"curl", "-sS", "--fail", "--max-time", "5", "--cacert", ca.string(), "--resolve",
                 host + ":" + port + ":" + ip, "-H", "Content-Type: application/json", "--data-binary", review.dump(),
                 "https://" + host + ":" + port + "/mutate"}));
            return true;
          } catch (const std::exception& e) {
            std::cout << "[audit] " << ip << " not answering yet: " << e.what() << "\n";
            return false;
          }
        },
        kEventually, "the webhook at " + ip + " to answer", kPoll);
    ASSERT_EQ(answer["response"]["uid"], "e2e-review-1") << answer.dump();
    EXPECT_EQ(answer["response"]["allowed"], true);
    const json patch = json::parse(ro::common::DecodeBase64(answer["response"]["patch"].get<std::string>()));
    const json annotations = review["request"]["object"].patch(patch)["metadata"]["annotations"];
    EXPECT_EQ(annotations["audit.astronetes.io/last-update-username"], "alice");
    EXPECT_EQ(annotations["audit.astronetes.io/last-update-user-uid"], "alice-uid");
    EXPECT_EQ(annotations["audit.astronetes.io/last-update-time"].get<std::string>().size(), 30u);
  }
  // The certificate both replicas serve lives in one Secret of the TLS type.
  EXPECT_EQ(Kubectl({"-n", kOperatorNs, "get", "secret", "resiliency-operator-audit-webhook-tls", "-o",
                     "jsonpath={.type}"}),
            "kubernetes.io/tls");
}

TEST_F(OperatorInClusterTest, APodOfAnotherNamespaceCannotUseThePipelinesNatsOrRedis) {
  EnsureTutorialRunning();
  // docs/security.md: the NetworkPolicy admits only the pipeline and the controller; the
  // node's bridge CNI does not enforce NetworkPolicy, so what refuses this pod here is
  // what refuses it on any CNI: Redis' TLS + ACL (default user off) and NATS' TLS + users.
  EXPECT_EQ(KubectlJson({"-n", kUserNs, "get", "networkpolicy", std::string(kLiveSync) + "-kubesync-servers"})
                ["spec"]["podSelector"]["matchExpressions"][0]["values"],
            json::parse(R"(["nats", "redis"])"));
  Kubectl({"create", "namespace", "intruder"});
  const std::string redis = std::string(kLiveSync) + "-redis." + kUserNs + ".svc.cluster.local";
  const std::string nats = std::string(kLiveSync) + "-nats." + kUserNs + ".svc.cluster.local";
  const std::string nats_script =
      "printf 'CONNECT {\"verbose\":false}\\r\\nSUB ks.> 1\\r\\nPING\\r\\n' | nc -w 3 " + nats +
      " 4222; echo; echo finished";
  // redis-cli in plain text, then over TLS without the pipeline's CA or a password.
  const std::string redis_script = "redis-cli -h " + redis + " -p 6379 PING 2>&1; echo; redis-cli --tls --insecure -h " +
                                   redis + " -p 6379 KEYS '*' 2>&1; echo; echo finished";
  const auto container = [](const char* name, const char* image, const std::string& script) {
    return json{{"name", name},
                {"image", image},
                {"imagePullPolicy", "Never"},
                {"command", json::array({"sh", "-c", script})}};
  };
  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", {{"name", "probe"}, {"namespace", "intruder"}}},
              {"spec",
               {{"restartPolicy", "Never"},
                {"containers", json::array({container("nats", ts::kBusyboxImage, nats_script),
                                            container("redis", ts::kRedisImage, redis_script)})}}}};
  Kubectl({"apply", "-f", "-"}, pod.dump());
  te::WaitFor([] { return Kubectl({"-n", "intruder", "get", "pod", "probe", "-o", "jsonpath={.status.phase}"}) ==
                          "Succeeded"; },
              kRollout, "the probe pod to finish", kPoll);
  const std::string nats_out = Kubectl({"-n", "intruder", "logs", "probe", "-c", "nats"});
  EXPECT_THAT(nats_out, HasSubstr("finished"));
  EXPECT_THAT(nats_out, HasSubstr("\"tls_required\":true")) << nats_out;  // NATS: TLS first
  EXPECT_THAT(nats_out, Not(HasSubstr("PONG"))) << nats_out;
  const std::string redis_out = Kubectl({"-n", "intruder", "logs", "probe", "-c", "redis"});
  EXPECT_THAT(redis_out, HasSubstr("finished"));
  EXPECT_THAT(redis_out, HasSubstr("NOAUTH")) << redis_out;  // TLS spoken, but no user: nothing
  EXPECT_THAT(redis_out, Not(HasSubstr("PONG"))) << redis_out;  // plain text: no answer at all
  Kubectl({"delete", "namespace", "intruder", "--wait=false"});
}

TEST_F(OperatorInClusterTest, ComponentSettingsAreWhatThePodsRun) {
  EnsureTutorialRunning();
  // spec.config.components (manual 6.2.4) on the running LiveSynchronization.
  Kubectl({"-n", kUserNs, "patch", "livesynchronization", kLiveSync, "--type=merge", "-p",
           R"({"spec":{"config":{"components":{
                 "processor":{"replicas":2,"logLevel":"debug","imagePullPolicy":"Never",
                              "resources":{"requests":{"cpu":"10m","memory":"32Mi"},"limits":{"memory":"256Mi"}}},
                 "synchronizer":{"concurrentTasks":7}}}}})"});
  WaitForLiveSyncReady("True", "Running");
  WaitForDeployment(kUserNs, std::string(kLiveSync) + "-processor");
  WaitForDeployment(kUserNs, std::string(kLiveSync) + "-synchronizer");
  const std::vector<json> processors = ReadyPods(kUserNs, PartSelector("processor"));
  ASSERT_EQ(processors.size(), 2u);
  for (const json& pod : processors) {
    const json& container = pod["spec"]["containers"][0];
    EXPECT_EQ(container["imagePullPolicy"], "Never");
    EXPECT_EQ(container["resources"]["requests"]["memory"], "32Mi");
    EXPECT_EQ(container["resources"]["limits"]["memory"], "256Mi");
    const std::string name = pod["metadata"]["name"];
    // Debug lines come from a pod running at logLevel debug.
    te::WaitFor([&] { return Kubectl({"-n", kUserNs, "logs", name}).find("\"level\":\"debug\"") != std::string::npos; },
                kEventually, "debug log lines of " + name, kPoll);
  }
  const std::vector<json> synchronizers = ReadyPods(kUserNs, PartSelector("synchronizer"));
  ASSERT_EQ(synchronizers.size(), 1u);
  EXPECT_THAT(Kubectl({"-n", kUserNs, "logs", synchronizers.front()["metadata"]["name"].get<std::string>()}),
              HasSubstr("\"concurrentTasks\":7"));
  // Replication goes on with two processors.
  cluster1_->Kubectl({"apply", "-f", "-"}, ts::Secret(kApp, "web-config", "v3").dump());
  ExpectConverges();
}

// Writes in cluster 1 from its own thread (and client) until Stop(): Secrets chaos-0 to
// chaos-39 of the application namespace created, updated and deleted, about 20 changes
// per second. A failed write fails the test.
class SecretChurn {
 public:
  explicit SecretChurn(te::KubeCluster& cluster)
      : thread_([this, client = livesync_e2e::AdminClient(cluster)] { Run(*client); }) {}
  ~SecretChurn() { Stop(); }
  int writes() const { return writes_.load(); }
  // Stops and joins; returns the number of writes made.
  int Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return writes_.load();
  }

 private:
  void Run(ro::kube::DynamicClient& client) {
    int i = 0;
    while (!stop_.load()) {
      const std::string name = "chaos-" + std::to_string(i % 40);
      try {
        if (i % 7 == 6) {
          try {
            client.Delete(kSecrets, kApp, name);
          } catch (const ro::kube::ApiError& e) {
            if (e.reason() != ro::kube::StatusReason::kNotFound) throw;
          }
        } else {
          json secret = ts::Secret(kApp, name, "v" + std::to_string(i));
          try {
            json current = client.Get(kSecrets, kApp, name);
            secret["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"];
            client.Update(kSecrets, kApp, secret);
          } catch (const ro::kube::ApiError& e) {
            if (e.reason() != ro::kube::StatusReason::kNotFound) throw;
            client.Create(kSecrets, kApp, secret);
          }
        }
        ++writes_;
      } catch (const std::exception& e) {
        ADD_FAILURE() << "write to cluster 1 failed: " << e.what();
      }
      ++i;
      std::this_thread::sleep_for(50ms);
    }
  }

  std::atomic<bool> stop_{false};
  std::atomic<int> writes_{0};
  std::thread thread_;  // last: starts once the members above exist
};

TEST_F(OperatorInClusterTest, DeletingAnyComponentPodLosesNothing) {
  EnsureTutorialRunning();
  SecretChurn churn(*cluster1_);
  for (const auto& [part, component] : kParts) {
    const std::vector<json> pods = ReadyPods(kUserNs, PartSelector(part));
    ASSERT_FALSE(pods.empty()) << part;
    const std::string victim = pods.front()["metadata"]["name"];
    Kubectl({"-n", kUserNs, "delete", "pod", victim, "--wait=false"});
    te::WaitFor(
        [&] {
          for (const json& pod : ReadyPods(kUserNs, PartSelector(part))) {
            if (pod["metadata"]["name"] != victim) return true;
          }
          return false;
        },
        kRollout, "a replacement of " + victim + " ready", kPoll);
  }
  const int writes = churn.Stop();
  std::cout << "[chaos] " << writes << " writes while deleting one pod of each of " << kParts.size()
            << " components\n";
  ExpectConverges();
}

TEST_F(OperatorInClusterTest, SuspendStopsTheComponentPodsAndResumeLosesNothing) {
  EnsureTutorialRunning();
  UserCommand("kubectl patch livesynchronization active-passive -p '{\"spec\":{\"suspend\":true}}' --type=merge");
  WaitForLiveSyncReady("False", "Suspended");
  te::WaitFor(
      [&] {
        for (const char* part : {"eventslistener", "processor", "synchronizer", "reconciler"}) {
          if (!KubectlJson({"-n", kUserNs, "get", "pods", "-l", PartSelector(part)})["items"].empty()) return false;
        }
        return true;
      },
      kEventually, "the pipeline's component pods gone", kPoll);
  EXPECT_EQ(ReadyPods(kUserNs, PartSelector("nats")).size(), 1u) << "NATS keeps its stream while suspended";
  cluster1_->Kubectl({"apply", "-f", "-"}, SleepingDeployment(kApp, "late", 1).dump());
  cluster1_->Kubectl({"apply", "-f", "-"}, ts::Secret(kApp, "web-config", "changed-while-suspended").dump());
  EXPECT_FALSE(client2_->GetIfExists(kDeployments, kApp, "late"));
  UserCommand("kubectl patch livesynchronization active-passive -p '{\"spec\":{\"suspend\":false}}' --type=merge");
  WaitForLiveSyncReady("True", "Running");
  ExpectConverges();
  EXPECT_TRUE(client2_->GetIfExists(kDeployments, kApp, "late"));
}

// A change of spec.config.replication rolls the component Deployments one by one; the
// new events listener publishes everything again while the previous processor and
// synchronizer pods (previous configuration) still consume. Found by the in-cluster demo:
// they ended part of the new listener's objects as "namespace missing", which then waited
// for the periodic resync (1 h). Each message carries its configuration's generation and
// the previous pods leave newer messages to the new ones.
TEST_F(OperatorInClusterTest, AReplicationChangeRollsThePodsAndLeavesNothingForTheResync) {
  EnsureTutorialRunning();
  const std::string late = "shop-late";
  // A selected namespace cluster 2 does not have: its objects wait (forceNamespaceCreation off).
  livesync_e2e::CreateSampleApplicationIn(*cluster1_, *cluster2_, late, /*destination_namespace=*/false);
  te::WaitFor(
      [] {
        const std::optional<json> ls = LiveSync();
        if (!ls) return false;
        for (const json& c : (*ls)["status"].value("conditions", json::array())) {
          if (c.value("type", "") == "DestinationNamespacesMissing" && c.value("status", "") == "True") return true;
        }
        return false;
      },
      kEventually, "condition DestinationNamespacesMissing", kPoll);
  const int64_t generation = (*LiveSync())["metadata"]["generation"];
  UserCommand("kubectl patch livesynchronization active-passive --type=merge -p "
              "'{\"spec\":{\"config\":{\"replication\":{\"forceNamespaceCreation\":true}}}}'");
  // The roll happened: every component pod is of the new configuration.
  te::WaitFor([&] { return (*LiveSync())["status"].value("observedGeneration", int64_t{0}) > generation; },
              kEventually, "the LiveSynchronization to observe the change", kPoll);
  for (const char* part : {"eventslistener", "processor", "synchronizer", "reconciler"}) {
    WaitForDeployment(kUserNs, std::string(kLiveSync) + "-" + part);
  }
  // Everything arrives now, well before the periodic resync, in both namespaces.
  json config = SpecConfig();
  config["replication"]["forceNamespaceCreation"] = true;
  livesync_e2e::ExpectConverged(*client1_, *client2_, kUserNs, kLiveSync, config, {kApp, late}, kEventually);
  EXPECT_EQ(client2_->Get(GroupVersionResource{"", "v1", "namespaces"}, "", late)["metadata"]["labels"]["sync"], "true");
  // Back to the tutorial's state for the tests after this one (the recovery recovers the
  // sync=true namespaces of cluster 2: shop alone).
  UserCommand("kubectl patch livesynchronization active-passive --type=merge -p "
              "'{\"spec\":{\"config\":{\"replication\":{\"forceNamespaceCreation\":false}}}}'");
  cluster1_->Kubectl({"delete", "namespace", late, "--wait=false"});
  cluster2_->Kubectl({"delete", "namespace", late, "--wait=false"});
}

// Scale-out (issue 15): components.nats.replicas 3 runs NATS as a StatefulSet of three
// members of one JetStream cluster (routes with mutual TLS, found through a headless
// Service), the stream at 3 replicas. The pipeline moves onto it and replicates; a member
// killed at once (pod deleted with grace period 0) while cluster 1 changes loses
// nothing. Back to one server afterwards, which loses nothing either.
TEST_F(OperatorInClusterTest, ANatsClusterOfThreePodsLosesNothingWhenAMemberIsKilled) {
  EnsureTutorialRunning();
  const std::string nats = std::string(kLiveSync) + "-nats";
  const GroupVersionResource stateful_sets{"apps", "v1", "statefulsets"};
  const auto set_nats_replicas = [&](int replicas) {
    const int64_t generation = (*LiveSync())["metadata"]["generation"];
    UserCommand("kubectl patch livesynchronization active-passive --type=merge -p "
                "'{\"spec\":{\"config\":{\"components\":{\"nats\":{\"replicas\":" +
                std::to_string(replicas) + "}}}}}'");
    te::WaitFor([&] { return (*LiveSync())["status"].value("observedGeneration", int64_t{0}) > generation; },
                kEventually, "the LiveSynchronization to observe nats.replicas " + std::to_string(replicas), kPoll);
  };
  set_nats_replicas(3);
  try {
    te::WaitFor(
        [&] {
          return ReadyPods(kUserNs, PartSelector("nats")).size() == 3 &&
                 !client2_->GetIfExists(kDeployments, kUserNs, nats).has_value();
        },
        kRollout, "three ready NATS members and no NATS Deployment", kPoll);
    WaitForLiveSyncReady("True", "Running");
  } catch (const std::exception&) {
    PrintPipelinePods();
    throw;
  }
  const json set = client2_->Get(stateful_sets, kUserNs, nats);
  EXPECT_EQ(set["spec"]["serviceName"], nats + "-routes");
  // The members formed one cluster and the stream has a leader and two followers: the
  // JetStream meta leader logs each member joining, the stream leader its election.
  te::WaitFor(
      [&] {
        std::string logs;
        for (int i = 0; i < 3; ++i) logs += Kubectl({"-n", kUserNs, "logs", nats + "-" + std::to_string(i)});
        return logs.find("new stream leader for '$G > KS_dr_active-passive'") != std::string::npos;
      },
      kEventually, "a stream leader elected in the NATS cluster", kPoll);
  ExpectConverges();

  // kill -9 of a member during writes: its pod goes at once, a new one (empty store)
  // joins, catches up, and nothing the pipeline carried is lost.
  {
    SecretChurn churn(*cluster1_);
    te::WaitFor([&] { return churn.writes() >= 20; }, kEventually, "20 writes in cluster 1 before the kill", 100ms);
    const std::string victim = nats + "-0";
    const std::string uid = client2_->Get({"", "v1", "pods"}, kUserNs, victim)["metadata"]["uid"];
    Kubectl({"-n", kUserNs, "delete", "pod", victim, "--grace-period=0", "--force", "--wait=false"});
    te::WaitFor(
        [&] {
          for (const json& pod : ReadyPods(kUserNs, PartSelector("nats"))) {
            if (pod["metadata"]["name"] == victim && pod["metadata"]["uid"] != uid) return true;
          }
          return false;
        },
        kRollout, "a new " + victim + " ready", kPoll);
    std::cout << "[chaos] " << churn.Stop() << " writes while a NATS member was killed and replaced\n";
  }
  ExpectConverges();

  set_nats_replicas(1);
  te::WaitFor(
      [&] {
        return ReadyPods(kUserNs, PartSelector("nats")).size() == 1 &&
               !client2_->GetIfExists(stateful_sets, kUserNs, nats).has_value();
      },
      kRollout, "one NATS server and no StatefulSet", kPoll);
  WaitForDeployment(kUserNs, nats);
  WaitForLiveSyncReady("True", "Running");
  cluster1_->Kubectl({"apply", "-f", "-"}, ts::Secret(kApp, "after-nats-cluster", "v1").dump());
  ExpectConverges();
}

TEST_F(OperatorInClusterTest, TheTutorialsTaskRunRecoversTheApplication) {
  EnsureTutorialRunning();
  // "Recover from disaster": pause, then run the generated Task.
  UserCommand("kubectl patch livesynchronization active-passive -p '{\"spec\":{\"suspend\":true}}' --type=merge");
  WaitForLiveSyncReady("False", "Suspended");
  te::WriteFile(Workdir() / "taskrun.yaml", ReadSample("8.2-taskrun.yaml"));
  // The sample names the Task set-test-label; the generated one is named after the
  // LiveSynchronization (as the tutorial says to check with kubectl get task).
  UserCommand("sed -i 's/taskName: .*/taskName: active-passive/' taskrun.yaml && kubectl create -f taskrun.yaml");
  json last;
  te::WaitFor(
      [&] {
        last = KubectlJson({"-n", kUserNs, "get", "taskrun", "restore-apps"});
        return last["status"].value("phase", "") == "Succeeded";
      },
      kEventually, "TaskRun restore-apps Succeeded", kPoll);
  EXPECT_EQ(client2_->Get(kDeployments, kApp, "web")["spec"]["replicas"], 1);
  // The recovered application really runs on cluster 2's node.
  te::WaitFor([&] { return ReadyPods(kApp, "app=web").size() == 1; }, kRollout, "a ready pod of shop/web", kPoll);
  UserCommand("kubectl patch livesynchronization active-passive -p '{\"spec\":{\"suspend\":false}}' --type=merge");
}

TEST_F(OperatorInClusterTest, CustomImageTasksRunRealPodsAndReportTheExitCode) {
  Kubectl({"create", "namespace", "automation"});
  for (const auto& [name, command] : std::vector<std::pair<std::string, json>>{
           {"hello", json::array({"echo", "hello world"})}, {"fails", json::array({"sh", "-c", "echo failing; exit 3"})}}) {
    json task = {{"apiVersion", "automation.astronetes.io/v1alpha1"},
                 {"kind", "Task"},
                 {"metadata", {{"name", name}, {"namespace", "automation"}}},
                 {"spec",
                  {{"plugin", "custom-image"},
                   {"config", {{"image", ts::kBusyboxImage}, {"command", command}}}}}};
    Kubectl({"apply", "-f", "-"}, task.dump());
    json run = {{"apiVersion", "automation.astronetes.io/v1alpha1"},
                {"kind", "TaskRun"},
                {"metadata", {{"name", name}, {"namespace", "automation"}}},
                {"spec", {{"taskName", name}}}};
    Kubectl({"apply", "-f", "-"}, run.dump());
  }
  auto wait_end = [&](const std::string& name) {
    json last;
    te::WaitFor(
        [&] {
          last = KubectlJson({"-n", "automation", "get", "taskrun", name});
          const std::string phase = last["status"].value("phase", "");
          return phase == "Succeeded" || phase == "Failed";
        },
        kRollout, "TaskRun automation/" + name + " to end", kPoll);
    return last;
  };
  const json hello = wait_end("hello");
  EXPECT_EQ(hello["status"]["phase"], "Succeeded") << hello.dump();
  const std::string pod = hello["status"]["podName"];
  EXPECT_EQ(Kubectl({"-n", "automation", "get", "pod", pod, "-o", "jsonpath={.status.phase}"}), "Succeeded");
  EXPECT_THAT(Kubectl({"-n", "automation", "logs", pod}), HasSubstr("hello world"));
  const json fails = wait_end("fails");
  EXPECT_EQ(fails["status"]["phase"], "Failed") << fails.dump();
  EXPECT_THAT(fails["status"].value("message", ""), HasSubstr("exited with code 3")) << fails.dump();
}

// Tutorial 8.3's one-shot Synchronization, created verbatim (generateName), as the
// installed operator runs it: a Job of the operator's image on the node, whose pod reaches
// both ZooKeeper servers and reports its counts back through its termination message.
TEST_F(OperatorInClusterTest, Tutorial83SynchronizationRunsAsAJobOfTheOperatorImage) {
  te::ZooKeeperServer source_server;
  te::ZooKeeperServer destination_server;
  const auto connect = [](const te::ZooKeeperServer& server) {
    ro::plugins::ZooKeeperOptions options;
    options.servers = {server.connect_string()};
    options.connect_timeout = 20s;
    return std::make_unique<ro::plugins::ZooKeeperClient>(options);
  };
  const auto source = connect(source_server);
  const auto destination = connect(destination_server);
  source->Create("/app/config/db", "host=db-1", {.create_parents = true});
  source->Create("/app/binary", std::string("\0\1\2\377", 4));

  constexpr const char* kZkNs = "zookeeper-sync";
  Kubectl({"create", "namespace", kZkNs});
  for (const auto& [file, server] :
       {std::pair{"8.3-database-zookeeper-1.yaml", &source_server}, {"8.3-database-zookeeper-2.yaml", &destination_server}}) {
    // The pods reach the host's servers at the node bridge's address.
    Kubectl({"-n", kZkNs, "create", "-f", "-"},
            livesync_e2e::DatabaseSample(file, cluster2_->node().ExposeHostPort(server->port())));
  }
  const std::string created =
      Kubectl({"-n", kZkNs, "create", "-f", "-", "-o", "name"}, ReadSample("8.3-synchronization-once.yaml"));
  const std::string name = created.substr(created.find('/') + 1, created.find_last_not_of('\n') - created.find('/'));
  json sync;
  try {
    te::WaitFor(
        [&] {
          sync = KubectlJson({"-n", kZkNs, "get", "synchronization", name});
          const std::string phase = sync["status"].value("phase", "");
          return phase == "Succeeded" || phase == "Failed";
        },
        kRollout, "Synchronization " + name + " to finish", kPoll);
  } catch (const te::WaitTimeout&) {
    std::cout << "[diagnostics] synchronization: " << sync.dump() << "\n"
              << Kubectl({"-n", kZkNs, "get", "databases,jobs,pods,events", "-o", "wide"}) << "\n"
              << Kubectl({"-n", kOperatorNs, "logs", "--tail=30", "deploy/resiliency-operator-synchronization-controller"})
              << "\n";
    throw;
  }
  ASSERT_EQ(sync["status"].value("phase", ""), "Succeeded") << sync.dump();
  EXPECT_EQ(sync["status"].value("nodesCreated", 0), 4);  // /app, /app/config, db, binary
  EXPECT_THAT(sync["status"].value("message", ""), HasSubstr("Job " + name));
  EXPECT_EQ(destination->Get("/app/config/db")->data, "host=db-1");
  EXPECT_EQ(destination->Get("/app/binary")->data, std::string("\0\1\2\377", 4));
  // The copy ran in a pod of the operator's image, owned by the Synchronization; its run
  // file (with any Database credentials) is gone once the run ended.
  const json job = KubectlJson({"-n", kZkNs, "get", "job", name});
  EXPECT_EQ(job["metadata"]["ownerReferences"][0]["uid"], sync["metadata"]["uid"]);
  EXPECT_EQ(job["spec"]["template"]["spec"]["containers"][0]["image"], ts::kOperatorImage);
  const json pods = KubectlJson({"-n", kZkNs, "get", "pods", "-l", "job-name=" + name});
  ASSERT_EQ(pods["items"].size(), 1u);
  EXPECT_EQ(pods["items"][0]["status"]["phase"], "Succeeded");
  EXPECT_THAT(Kubectl({"-n", kZkNs, "logs", pods["items"][0]["metadata"]["name"].get<std::string>()}),
              HasSubstr("znodes copied"));
  EXPECT_FALSE(client2_->GetIfExists(GroupVersionResource{"", "v1", "secrets"}, kZkNs, name + "-run").has_value())
      << "the run file's Secret outlived the run";
  Kubectl({"delete", "namespace", kZkNs, "--wait=false"});
}

// docs/metrics.md as deploy/prometheus/podmonitors.yaml scrapes it in a cluster: with
// observability on, the LiveSynchronization's metrics-exporter pod serves the pipeline's
// series (RPO now, events by object namespace) on its port "metrics", and so do the
// controllers' and the audit webhook's pods (the controller-runtime names). Read from
// inside the node, where the pods are reachable.
TEST_F(OperatorInClusterTest, ThePodsServeTheMetricsThePodMonitorsScrape) {
  // The tutorial's LiveSynchronization, still running after the recovery test (whose
  // scaled-up standby is no longer the transformed source: no convergence check here).
  ASSERT_TRUE(tutorial_started_) << "runs after the tutorial's tests";
  Kubectl({"-n", kUserNs, "patch", "livesynchronization", kLiveSync, "--type=merge", "-p",
           R"({"spec":{"config":{"observability":{"enabled":true}}}})"});
  WaitForLiveSyncReady("True", "Running");
  WaitForDeployment(kUserNs, std::string(kLiveSync) + "-metricsexporter");
  // A change to count while the exporter runs.
  client1_->Patch(kDeployments, kApp, "web", ro::kube::PatchType::kMergePatch,
                  R"({"metadata":{"labels":{"metrics-e2e":"1"}}})");
  const auto scrape = [&](const json& pod) {
    const json& container = pod["spec"]["containers"][0];
    int port = 0;
    for (const json& p : container.value("ports", json::array())) {
      if (p.value("name", "") == "metrics") port = p["containerPort"];
    }
    EXPECT_NE(port, 0) << pod["metadata"]["name"] << " has no port named metrics";
    return cluster2_->node().RunInNode({"curl", "-sS", "--fail", "--max-time", "5",
                                        "http://" + pod["status"]["podIP"].get<std::string>() + ":" +
                                            std::to_string(port) + "/metrics"});
  };
  std::string text;
  te::WaitFor(
      [&] {
        const std::vector<json> exporters = ReadyPods(kUserNs, PartSelector("metricsexporter"));
        if (exporters.size() != 1) return false;
        text = scrape(exporters.front());
        return text.find("kubesync_events_processed_total{") != std::string::npos &&
               text.find("object_namespace=\"shop\"") != std::string::npos;
      },
      kEventually, "the metrics exporter to serve the pipeline's series", kPoll);
  EXPECT_THAT(text, HasSubstr("kubesync_rpo_seconds{"));
  EXPECT_THAT(text, HasSubstr("kubesync_replication_lag_seconds_bucket{"));
  EXPECT_THAT(text, HasSubstr("livesynchronization=\"" + std::string(kLiveSync) + "\""));
  for (const std::string& c : ts::OperatorControllers()) {
    const std::vector<json> pods = ReadyPods(kOperatorNs, ControllerSelector(c));
    ASSERT_FALSE(pods.empty()) << c;
    EXPECT_THAT(scrape(pods.front()), HasSubstr("controller_runtime_reconcile_total{")) << c;
  }
  const std::vector<json> webhooks = ReadyPods(kOperatorNs, "app.kubernetes.io/component=audit-webhook");
  ASSERT_FALSE(webhooks.empty());
  EXPECT_THAT(scrape(webhooks.front()), HasSubstr("controller=\"audit-webhook-certificate\""));
}

TEST_F(OperatorInClusterTest, UninstallInTheManualsOrderLeavesNothingBehind) {
  // Manual 3.3, step 1: the synchronizations, then the assets.
  for (const char* kind : {"livesynchronizations.automation.astronetes.io", "synchronizationplans.automation.astronetes.io",
                           "synchronizations.automation.astronetes.io", "buckets.assets.astronetes.io",
                           "databases.assets.astronetes.io", "kubernetesclusters.assets.astronetes.io"}) {
    Kubectl({"delete", kind, "-A", "--all", "--timeout=180s"});
  }
  // The pipeline's pods went with the LiveSynchronization (its finalizer ran in the pod).
  te::WaitFor([&] { return KubectlJson({"-n", kUserNs, "get", "pods,deployments,services"})["items"].empty(); },
              kEventually, "the pipeline's objects gone", kPoll);
  // Step 2: the operator, then the CRDs.
  Kubectl({"-n", kOperatorNs, "delete", "-k", (te::SourceDir() / "deploy/overlays/local-images").string(),
           "--timeout=180s"});
  Kubectl({"delete", "-f", (te::SourceDir() / "deploy/crds/all.yaml").string(), "--timeout=180s"});
  // Step 4: the license Secret is still there to delete (the manifests do not own it).
  Kubectl({"-n", kOperatorNs, "delete", "secret", "license-key"});
  te::WaitFor([&] { return KubectlJson({"-n", kOperatorNs, "get", "pods"})["items"].empty(); }, kEventually,
              "the operator's pods gone", kPoll);
  EXPECT_EQ(Kubectl({"get", "crd", "-o", "name"}), "");
  EXPECT_EQ(Kubectl({"get", "clusterrole,clusterrolebinding", "-l", "app.kubernetes.io/name=resiliency-operator",
                     "-o", "name"}),
            "");
  // The audit webhook's certificate Secret goes with its MutatingWebhookConfiguration
  // (owner reference, garbage collection), a moment later.
  std::string left;
  try {
    te::WaitFor(
        [&] {
          left = Kubectl({"-n", kOperatorNs, "get", "all,secrets,roles,rolebindings,serviceaccounts", "-o", "name"});
          return left.find("resiliency-operator-") == std::string::npos;
        },
        kEventually, "nothing of the operator's left in its namespace", kPoll);
  } catch (const te::WaitTimeout&) {
    ADD_FAILURE() << "left behind:\n" << left;
  }
  // Left: the leader-election Leases, the controllers' runtime state rather than the
  // manifests' objects (`kubectl delete namespace resiliency-operator` removes them). A
  // pod may not get to release its Lease: `kubectl delete -f` removes its Role and token
  // together with its Deployment, so the Lease just expires.
}

}  // namespace

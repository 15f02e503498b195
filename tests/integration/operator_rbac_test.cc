// The operator's RBAC (deploy/operator/operator.yaml) is enough, and no more, for each
// of the eight controllers: applied on a real apiserver with kube-controller-manager
// (which creates the ServiceAccount token Secrets), each controller binary runs with a
// kubeconfig holding ITS ServiceAccount's token, acquires its Lease and reconciles; the
// same token is Forbidden outside the controller's role. Each binary gets the args of
// its Deployment, so the manifest's flags and its RBAC are checked together.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "ro/kube/client.h"
#include "ro/kube/config.h"
#include "ro/kube/errors.h"
#include "ro/testenv/testenv.h"
#include "ro/testsupport/controller_process.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ro::testenv::KubeCluster;
using ro::testenv::PortLease;
using ro::testenv::Process;

constexpr std::chrono::seconds kTimeout{120};
constexpr const char* kOperatorNamespace = "resiliency-operator";
constexpr const char* kNamespace = "rbac-test";

// The controllers, named as in deploy/operator/build.sh.
const std::vector<std::string>& ControllerNames() {
  static const std::vector<std::string> names = {
      "bucket",          "database",            "kubernetescluster", "livesynchronization",
      "synchronization", "synchronizationplan", "task",              "taskrun"};
  return names;
}

// "resiliency-operator-<name>-controller": the Deployment, ServiceAccount and Lease.
std::string ObjectName(const std::string& controller) {
  return "resiliency-operator-" + controller + "-controller";
}

// One controller binary, as its ServiceAccount, with the args of its Deployment in
// operator.yaml except the ports and the license path (local here).
class Controller : public ro::testsupport::ControllerProcess {
 public:
  Controller(const std::string& name, const fs::path& kubeconfig, const fs::path& dir,
             const std::vector<std::string>& manifest_args)
      : ControllerProcess(Options(name, kubeconfig, dir, manifest_args)), name_(name) {}

  const std::string& name() const { return name_; }

 private:
  static ro::testsupport::ControllerProcessOptions Options(const std::string& name, const fs::path& kubeconfig,
                                                           const fs::path& dir,
                                                           const std::vector<std::string>& manifest_args) {
    ro::testsupport::ControllerProcessOptions options;
    options.binary = name + "-controller";
    options.kubeconfig = kubeconfig;
    options.dir = dir;
    options.license_file = dir / "license";
    for (const std::string& arg : manifest_args) {
      const bool local = arg.rfind("--health-probe-bind-address", 0) == 0 ||
                         arg.rfind("--metrics-bind-address", 0) == 0 ||
                         arg.rfind("--license-file", 0) == 0;
      if (!local) options.args.push_back(arg);
    }
    options.env = {{"POD_NAMESPACE", kOperatorNamespace}, {"POD_NAME", name + "-pod"}};
    options.ready_path = "/healthz";
    options.ready_timeout = std::chrono::seconds{60};
    return options;
  }

  std::string name_;
};

// The container's args with $(VAR) replaced by the value of its env entry VAR, as the
// kubelet expands them (valueFrom entries are left alone: the test sets those itself).
std::vector<std::string> ExpandedArgs(const json& container) {
  std::vector<std::string> args = container.value("args", json::array()).get<std::vector<std::string>>();
  for (const json& env : container.value("env", json::array())) {
    if (!env.contains("value")) continue;
    const std::string ref = "$(" + env["name"].get<std::string>() + ")";
    for (std::string& arg : args) {
      for (std::size_t at = arg.find(ref); at != std::string::npos; at = arg.find(ref, at)) {
        arg.replace(at, ref.size(), env["value"].get<std::string>());
      }
    }
  }
  return args;
}

class OperatorRbacTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::make_unique<ro::testenv::TempDir>("operator-rbac");
    ro::testenv::KubeClusterOptions options;
    options.name = "rbac";
    options.with_controller_manager = true;
    cluster_ = std::make_unique<KubeCluster>(options);
    s3_ = std::make_unique<ro::testenv::S3Server>();
    s3_->CreateBucket("rbac-bucket");
    zookeeper_ = std::make_unique<ro::testenv::ZooKeeperServer>();
    ro::testenv::WriteFile(dir_->path() / "license", "rbac-test-license");

    const fs::path source = ro::testenv::SourceDir();
    cluster_->Kubectl({"apply", "-f", (source / "deploy/crds/all.yaml").string()});
    cluster_->Kubectl({"wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"});
    cluster_->Kubectl({"create", "namespace", "resiliency-operator"});
    cluster_->Kubectl(
        {"-n", "resiliency-operator", "apply", "-f", (source / "deploy/operator/operator.yaml").string()});
    cluster_->Kubectl({"create", "namespace", kNamespace});
    CreateInputs();

    for (const std::string& name : ControllerNames()) {
      const fs::path kubeconfig = dir_->path() / ("kubeconfig-" + name);
      cluster_->WriteKubeconfig(kubeconfig, ServiceAccountToken(name));
      kubeconfigs_[name] = kubeconfig;
    }
    for (const std::string& name : ControllerNames()) {
      const json deployment = json::parse(cluster_->Kubectl(
          {"-n", kOperatorNamespace, "get", "deployment", ObjectName(name), "-o", "json"}));
      const json& container = deployment["spec"]["template"]["spec"]["containers"][0];
      controllers_.push_back(std::make_unique<Controller>(name, kubeconfigs_[name], dir_->path(),
                                                          ExpandedArgs(container)));
    }
  }

  static void TearDownTestSuite() {
    controllers_.clear();
    zookeeper_.reset();
    s3_.reset();
    cluster_.reset();
    dir_.reset();
  }

  static void Apply(const json& object) { cluster_->Kubectl({"apply", "-f", "-"}, object.dump()); }

  // One good input per controller, in kNamespace. The automation samples are the
  // manual's (tests/samples/), applied as a user would.
  static void CreateInputs() {
    auto secret = [](const std::string& name, const json& data) {
      return json{{"apiVersion", "v1"},
                  {"kind", "Secret"},
                  {"metadata", {{"name", name}, {"namespace", kNamespace}}},
                  {"stringData", data}};
    };
    auto asset = [](const std::string& kind, const std::string& name, json spec) {
      return json{{"apiVersion", "assets.astronetes.io/v1alpha1"},
                  {"kind", kind},
                  {"metadata", {{"name", name}, {"namespace", kNamespace}}},
                  {"spec", std::move(spec)}};
    };
    Apply(secret("self-kubeconfig",
                 {{"kubeconfig.yaml", ro::testenv::ReadFile(cluster_->kubeconfig_path())}}));
    Apply(asset("KubernetesCluster", "self", {{"secretName", "self-kubeconfig"}}));
    Apply(secret("s3", {{"accessKeyID", s3_->access_key()}, {"secretAccessKey", s3_->secret_key()}}));
    Apply(asset("Bucket", "dr",
                {{"generic",
                  {{"name", "rbac-bucket"}, {"endpoint", s3_->endpoint()}, {"secretName", "s3"}}}}));
    Apply(asset("Database", "zk",
                {{"zookeeper", {{"client", {{"servers", {zookeeper_->connect_string()}}}}}}}));

    const fs::path samples = ro::testenv::SourceDir() / "tests/samples";
    for (const char* sample : {"6.2.2-livesynchronization.yaml", "6.3.1-synchronizationplan.yaml",
                               "7.2.1.3-task-custom-image-bash.yaml", "8.2-taskrun.yaml"}) {
      cluster_->Kubectl({"-n", kNamespace, "apply", "-f", (samples / sample).string()});
    }
    // generateName: create, and remember the name the server picked.
    const std::string created = cluster_->Kubectl(
        {"-n", kNamespace, "create", "-f", (samples / "6.3.1-synchronization.yaml").string(),
         "-o", "name"});
    synchronization_name_ = created.substr(created.find('/') + 1);
    while (!synchronization_name_.empty() && synchronization_name_.back() == '\n') {
      synchronization_name_.pop_back();
    }
  }

  // The token kube-controller-manager put into the ServiceAccount's token Secret.
  static std::string ServiceAccountToken(const std::string& controller) { return AccountToken(ObjectName(controller)); }
  static std::string AccountToken(const std::string& account) {
    std::string token;
    ro::testenv::WaitFor(
        [&] {
          const json secrets = json::parse(cluster_->Kubectl(
              {"-n", kOperatorNamespace, "get", "secrets", "-o", "json"}));
          for (const json& s : secrets["items"]) {
            if (s.value("type", "") != "kubernetes.io/service-account-token") continue;
            const json annotations = s["metadata"].value("annotations", json::object());
            if (annotations.value("kubernetes.io/service-account.name", "") != account) continue;
            if (!s.contains("data") || !s["data"].contains("token")) continue;
            token = cluster_->Kubectl({"-n", kOperatorNamespace, "get", "secret",
                                       s["metadata"]["name"].get<std::string>(), "-o",
                                       "go-template={{.data.token | base64decode}}"});
            return !token.empty();
          }
          return false;
        },
        kTimeout, "the token Secret of " + account);
    return token;
  }

  // The Ready condition's "status/reason" of an object, when it was computed from the
  // object's current generation ("" otherwise, or when unreadable).
  static std::string Ready(const std::string& resource, const std::string& name) {
    try {
      const json object = json::parse(
          cluster_->Kubectl({"-n", kNamespace, "get", resource, name, "-o", "json"}));
      for (const json& c :
           object.value("status", json::object()).value("conditions", json::array())) {
        if (c.value("type", "") == "Ready" &&
            c.value("observedGeneration", -1) == object["metadata"].value("generation", 0)) {
          return c.value("status", "") + "/" + c.value("reason", "");
        }
      }
    } catch (const ro::testenv::TestEnvError&) {
    }
    return "";
  }

  static std::string LeaseHolder(const std::string& lease) {
    try {
      const json object = json::parse(cluster_->Kubectl(
          {"-n", kOperatorNamespace, "get", "lease", lease, "-o", "json"}));
      return object["spec"].value("holderIdentity", "");
    } catch (const ro::testenv::TestEnvError&) {
      return "";
    }
  }

  // A client authenticated with `controller`'s ServiceAccount token.
  static std::unique_ptr<ro::kube::DynamicClient> ClientOf(const std::string& controller) {
    return std::make_unique<ro::kube::DynamicClient>(
        ro::kube::LoadKubeconfigFile(kubeconfigs_.at(controller).string()));
  }

  static inline std::unique_ptr<ro::testenv::TempDir> dir_;
  static inline std::unique_ptr<KubeCluster> cluster_;
  static inline std::unique_ptr<ro::testenv::S3Server> s3_;
  static inline std::unique_ptr<ro::testenv::ZooKeeperServer> zookeeper_;
  static inline std::map<std::string, fs::path> kubeconfigs_;
  static inline std::vector<std::unique_ptr<Controller>> controllers_;
  static inline std::string synchronization_name_;
};

// What each controller's reconcile of its sample input reports when it works.
struct Expectation {
  std::string resource;
  std::string name;
  std::string ready;  // "status/reason"
};

TEST_F(OperatorRbacTest, EachControllerRunsAsItsServiceAccountTakesItsLeaseAndReconciles) {
  const std::map<std::string, Expectation> expected = {
      {"kubernetescluster", {"kubernetescluster", "self", "True/Connected"}},
      {"bucket", {"bucket", "dr", "True/Accessible"}},
      {"database", {"database", "zk", "True/Connected"}},
      // The manual's sample names KubernetesCluster "source", which does not exist here.
      {"livesynchronization",
       {"livesynchronization", "livesynchronization-sample", "False/SourceClusterNotFound"}},
      // The manual's sample names Databases zookeeper-source and -destination: not here.
      {"synchronization", {"synchronization", synchronization_name_, "False/DatabaseNotFound"}},
      {"synchronizationplan",
       {"synchronizationplan", "synchronize-zookeeper", "True/Scheduled"}},
      {"task", {"task", "hello-world", "True/Valid"}},
      // The manual's TaskRun names Task set-test-label, which the manual never creates.
      {"taskrun", {"taskrun", "restore-apps", "False/TaskNotFound"}},
  };
  for (const auto& controller : controllers_) {
    const std::string& name = controller->name();
    SCOPED_TRACE(name);
    ro::testenv::WaitFor(
        [&] { return LeaseHolder(ObjectName(name)).rfind(name + "-pod_", 0) == 0; }, kTimeout,
        "Lease " + ObjectName(name) + " held by " + name + "-pod");
    const Expectation& e = expected.at(name);
    std::string last;
    try {
      ro::testenv::WaitFor(
          [&] {
            last = Ready(e.resource, e.name);
            return last == e.ready;
          },
          kTimeout, e.resource + "/" + e.name + " Ready " + e.ready);
    } catch (const ro::testenv::WaitTimeout& timeout) {
      FAIL() << timeout.what() << " (last seen: \"" << last << "\")\n"
             << controller->process().LogTail();
    }
    EXPECT_TRUE(controller->process().Running()) << controller->process().LogTail();
    // No permission error anywhere in its log (informers, Events, Lease, status).
    const std::string log = ro::testenv::ReadFile(controller->process().log_path());
    EXPECT_EQ(log.find("forbidden"), std::string::npos) << log;
  }
}

// Runs `call` and reports whether the apiserver answered 403.
template <typename Call>
bool IsForbidden(Call&& call) {
  try {
    call();
  } catch (const ro::kube::ApiError& e) {
    return ro::kube::IsForbidden(e);
  }
  return false;
}

TEST_F(OperatorRbacTest, EachServiceAccountIsForbiddenOutsideItsRole) {
  const ro::kube::GroupVersionResource pods{"", "v1", "pods"};
  const ro::kube::GroupVersionResource deployments{"apps", "v1", "deployments"};
  const ro::kube::GroupVersionResource namespaces{"", "v1", "namespaces"};
  const ro::kube::GroupVersionResource leases{"coordination.k8s.io", "v1", "leases"};
  const ro::kube::GroupVersionResource clusters{"assets.astronetes.io", "v1alpha1",
                                                "kubernetesclusters"};
  const ro::kube::GroupVersionResource buckets{"assets.astronetes.io", "v1alpha1", "buckets"};
  // Objects read as the admin, then written (or not) as each ServiceAccount.
  ro::kube::DynamicClient admin(ro::kube::LoadKubeconfigFile(cluster_->kubeconfig_path().string()));
  const json cluster_object = admin.Get(clusters, kNamespace, "self");
  const json bucket_object = admin.Get(buckets, kNamespace, "dr");

  const std::vector<std::string>& names = ControllerNames();
  for (std::size_t i = 0; i < names.size(); ++i) {
    const std::string& name = names[i];
    SCOPED_TRACE(name);
    const std::unique_ptr<ro::kube::DynamicClient> client = ClientOf(name);

    // Workloads: only taskrun may touch Pods, and synchronization read them (its Jobs'
    // termination messages); Deployments only livesynchronization (its pipeline) and
    // taskrun (recovery Tasks that change this cluster's workloads).
    if (name == "taskrun" || name == "synchronization") {
      EXPECT_NO_THROW(client->List(pods, kNamespace));
    } else {
      EXPECT_TRUE(IsForbidden([&] { client->List(pods, ""); }));
    }
    if (name == "livesynchronization" || name == "taskrun") {
      EXPECT_NO_THROW(client->List(deployments, kNamespace));
    } else {
      EXPECT_TRUE(IsForbidden([&] { client->List(deployments, kNamespace); }));
    }
    EXPECT_TRUE(IsForbidden([&] { client->Delete(namespaces, "", kNamespace); }));
    // NetworkPolicies: only livesynchronization (its pipeline's), and it may not list
    // anyone else's.
    const ro::kube::GroupVersionResource policies{"networking.k8s.io", "v1", "networkpolicies"};
    if (name == "livesynchronization") {
      EXPECT_FALSE(IsForbidden([&] { client->GetIfExists(policies, kNamespace, "x-kubesync-servers"); }));
    } else {
      EXPECT_TRUE(IsForbidden([&] { client->GetIfExists(policies, kNamespace, "x-kubesync-servers"); }));
    }
    EXPECT_TRUE(IsForbidden([&] { client->List(policies, kNamespace); }));

    // The status of a kind that is not its own.
    if (name == "kubernetescluster") {
      EXPECT_NO_THROW(client->Get(clusters, kNamespace, "self"));
      EXPECT_TRUE(IsForbidden([&] { client->UpdateStatus(buckets, kNamespace, bucket_object); }));
    } else {
      EXPECT_TRUE(IsForbidden([&] { client->UpdateStatus(clusters, kNamespace, cluster_object); }));
    }

    // Its own Lease only: another controller's is out of reach.
    ro::testenv::WaitFor([&] { return !LeaseHolder(ObjectName(name)).empty(); }, kTimeout,
                         "Lease " + ObjectName(name));
    EXPECT_NO_THROW(client->Get(leases, kOperatorNamespace, ObjectName(name)));
    const std::string other = ObjectName(names[(i + 1) % names.size()]);
    EXPECT_TRUE(IsForbidden([&] { client->Get(leases, kOperatorNamespace, other); }));
  }
}

// The audit webhook (docs/audit.md) as its ServiceAccount, with its Deployment's args:
// it issues its certificate into its own Secret and patches the CA bundle into its own
// configuration, and can do nothing more.
TEST_F(OperatorRbacTest, TheAuditWebhookKeepsItsCertificateWithItsOwnRightsOnly) {
  const std::string account = "resiliency-operator-audit-webhook";
  const fs::path kubeconfig = dir_->path() / "kubeconfig-audit-webhook";
  cluster_->WriteKubeconfig(kubeconfig, AccountToken(account));
  const json deployment =
      json::parse(cluster_->Kubectl({"-n", kOperatorNamespace, "get", "deployment", account, "-o", "json"}));
  ro::testenv::PortLease port;
  ro::testsupport::ControllerProcessOptions options;
  options.binary = "audit-webhook";
  options.kubeconfig = kubeconfig;
  options.dir = dir_->path();
  options.license_file = dir_->path() / "license";
  for (const std::string& arg : ExpandedArgs(deployment["spec"]["template"]["spec"]["containers"][0])) {
    if (arg.rfind("--health-probe-bind-address", 0) == 0 || arg.rfind("--metrics-bind-address", 0) == 0 ||
        arg.rfind("--license-file", 0) == 0 || arg.rfind("--webhook-bind-address", 0) == 0) {
      continue;
    }
    options.args.push_back(arg);
  }
  options.args.push_back("--webhook-bind-address=127.0.0.1:" + std::to_string(port.port()));
  options.env = {{"POD_NAMESPACE", kOperatorNamespace}};
  ro::testsupport::ControllerProcess webhook(options);

  const ro::kube::GroupVersionResource configurations{"admissionregistration.k8s.io", "v1",
                                                      "mutatingwebhookconfigurations"};
  const ro::kube::GroupVersionResource secrets{"", "v1", "secrets"};
  ro::kube::DynamicClient admin(ro::kube::LoadKubeconfigFile(cluster_->kubeconfig_path().string()));
  ro::testenv::WaitFor(
      [&] {
        const json configuration = admin.Get(configurations, "", "resiliency-operator-audit");
        return !configuration["webhooks"][0]["clientConfig"].value("caBundle", "").empty() &&
               admin.GetIfExists(secrets, kOperatorNamespace, account + "-tls").has_value();
      },
      kTimeout, "the webhook's Secret and CA bundle");
  EXPECT_THAT(webhook.LogLines("serving certificate issued"), ::testing::SizeIs(1));

  const auto client =
      std::make_unique<ro::kube::DynamicClient>(ro::kube::LoadKubeconfigFile(kubeconfig.string()));
  EXPECT_NO_THROW(client->Get(secrets, kOperatorNamespace, account + "-tls"));
  EXPECT_TRUE(IsForbidden([&] { client->List(secrets, kOperatorNamespace); }));
  EXPECT_TRUE(IsForbidden([&] { client->Get(secrets, kNamespace, "bucket-credentials"); }));
  EXPECT_TRUE(IsForbidden([&] { client->Delete(secrets, kOperatorNamespace, account + "-tls"); }));
  // Another MutatingWebhookConfiguration: readable (its informer lists them), never patched.
  admin.Create(configurations, "",
               {{"apiVersion", "admissionregistration.k8s.io/v1"},
                {"kind", "MutatingWebhookConfiguration"},
                {"metadata", {{"name", "someone-elses"}}},
                {"webhooks", json::array()}});
  EXPECT_TRUE(IsForbidden([&] {
    client->Patch(configurations, "", "someone-elses", ro::kube::PatchType::kMergePatch,
                  R"({"metadata":{"labels":{"x":"y"}}})");
  }));
  EXPECT_TRUE(IsForbidden([&] { client->Delete(configurations, "", "resiliency-operator-audit"); }));
  const ro::kube::GroupVersionResource livesyncs{"automation.astronetes.io", "v1alpha1", "livesynchronizations"};
  EXPECT_TRUE(IsForbidden([&] { client->List(livesyncs, kNamespace); }));
}

}  // namespace

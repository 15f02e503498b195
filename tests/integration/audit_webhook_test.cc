// The audit admission webhook (manual 2.3; docs/audit.md) called by a real
// kube-apiserver: the audit-webhook binary issues its serving certificate into a Secret,
// patches the CA bundle into a MutatingWebhookConfiguration registered by URL on
// 127.0.0.1, and the apiserver has every create and update of the operator's kinds
// annotated with who made it. Users authenticate with static tokens of their own.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "ro/common/base64.h"
#include "ro/common/time.h"
#include "ro/kube/client.h"
#include "ro/kube/config.h"
#include "ro/testenv/kube_cluster.h"
#include "ro/testenv/paths.h"
#include "ro/testenv/ports.h"
#include "ro/testenv/wait.h"
#include "ro/testsupport/clients.h"
#include "ro/testsupport/controller_process.h"
#include "ro/testsupport/kubesync_process.h"
#include "ro/testenv/testenv.h"

namespace {

namespace fs = std::filesystem;
namespace te = ro::testenv;
namespace ts = ro::testsupport;
using nlohmann::json;
using ro::kube::GroupVersionResource;
using namespace std::chrono_literals;

const GroupVersionResource kLiveSyncs{"automation.astronetes.io", "v1alpha1", "livesynchronizations"};
const GroupVersionResource kSecrets{"", "v1", "secrets"};
const GroupVersionResource kWebhooks{"admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations"};
constexpr char kNs[] = "dr-config";
constexpr char kWebhookNs[] = "resiliency-operator";
constexpr char kConfiguration[] = "resiliency-operator-audit";
constexpr char kTime[] = "audit.astronetes.io/last-update-time";
constexpr char kUid[] = "audit.astronetes.io/last-update-user-uid";
constexpr char kUser[] = "audit.astronetes.io/last-update-username";

std::unique_ptr<ro::kube::DynamicClient> ClientFor(const te::KubeCluster& cluster, const std::string& user) {
  ro::kube::RestConfig config = ro::kube::LoadKubeconfigFile(cluster.KubeconfigFor(user).string());
  config.qps = 0;
  return std::make_unique<ro::kube::DynamicClient>(std::move(config));
}

class AuditWebhookTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    te::KubeClusterOptions options;
    options.name = "audit";
    options.users = {{"alice", {"system:masters"}}, {"bob", {"system:masters"}}, {"robot", {"system:masters"}}};
    cluster_ = std::make_unique<te::KubeCluster>(options);
    cluster_->Kubectl({"apply", "-f", (te::SourceDir() / "deploy/crds/all.yaml").string()});
    admin_ = ts::AdminClient(*cluster_);
    alice_ = ClientFor(*cluster_, "alice");
    bob_ = ClientFor(*cluster_, "bob");
    robot_ = ClientFor(*cluster_, "robot");
    for (const char* ns : {kNs, kWebhookNs}) {
      admin_->Create({"", "v1", "namespaces"}, "", {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}});
    }
    port_ = std::make_unique<te::PortLease>();
    // Registered by URL (the apiserver runs outside any cluster network), without a CA
    // bundle: the webhook patches it in. failurePolicy Ignore, as deploy/ ships it.
    admin_->Create(kWebhooks, "",
                   {{"apiVersion", "admissionregistration.k8s.io/v1"},
                    {"kind", "MutatingWebhookConfiguration"},
                    {"metadata", {{"name", kConfiguration}}},
                    {"webhooks",
                     {{{"name", "audit.astronetes.io"},
                       {"clientConfig", {{"url", "https://127.0.0.1:" + std::to_string(port_->port()) + "/mutate"}}},
                       {"rules",
                        {{{"apiGroups", {"assets.astronetes.io", "automation.astronetes.io"}},
                          {"apiVersions", {"v1alpha1"}},
                          {"operations", {"CREATE", "UPDATE"}},
                          {"resources", {"*"}},
                          {"scope", "*"}}}},
                       {"failurePolicy", "Ignore"},
                       {"sideEffects", "None"},
                       {"timeoutSeconds", 5},
                       {"admissionReviewVersions", {"v1"}}},
                      // docs/audit.md: the same webhook for the ConfigMaps of namespaces
                      // labelled audited=true, so that the pipeline can tell who changed them.
                      {{"name", "configmaps.audit.astronetes.io"},
                       {"clientConfig", {{"url", "https://127.0.0.1:" + std::to_string(port_->port()) + "/mutate"}}},
                       {"rules",
                        {{{"apiGroups", {""}},
                          {"apiVersions", {"v1"}},
                          {"operations", {"CREATE", "UPDATE"}},
                          {"resources", {"configmaps"}},
                          {"scope", "Namespaced"}}}},
                       {"namespaceSelector", {{"matchLabels", {{"audited", "true"}}}}},
                       {"failurePolicy", "Ignore"},
                       {"sideEffects", "None"},
                       {"timeoutSeconds", 5},
                       {"admissionReviewVersions", {"v1"}}}}}});
    StartWebhook();
  }

  static void TearDownTestSuite() {
    pipeline_.reset();
    redis_.reset();
    nats_.reset();
    webhook_.reset();
    robot_.reset();
    bob_.reset();
    alice_.reset();
    admin_.reset();
    cluster_.reset();
    port_.reset();
  }

  static void StartWebhook() {
    ts::ControllerProcessOptions options;
    options.binary = "audit-webhook";
    options.kubeconfig = cluster_->kubeconfig_path();
    options.dir = cluster_->dir();
    options.license_file = cluster_->dir() / "no-license";
    options.args = {"--webhook-bind-address=127.0.0.1:" + std::to_string(port_->port()),
                    std::string("--webhook-namespace=") + kWebhookNs, "--certificate-validity=30s",
                    "--ignore-usernames=robot, system:serviceaccount:resiliency-operator:resiliency-operator"};
    webhook_ = std::make_unique<ts::ControllerProcess>(options);
    te::WaitFor([] { return !CaBundle().empty(); }, 60s, "the webhook to patch the CA bundle in");
  }

  // The CA bundle of every webhook of the configuration ("" until all have it).
  static std::string CaBundle() {
    const json configuration = admin_->Get(kWebhooks, "", kConfiguration);
    std::string bundle;
    for (const json& webhook : configuration["webhooks"]) {
      bundle = webhook["clientConfig"].value("caBundle", "");
      if (bundle.empty()) return "";
    }
    return bundle;
  }

  static json Audit(const json& object) {
    json out = json::object();
    const json annotations = object["metadata"].value("annotations", json::object());
    for (const char* key : {kTime, kUid, kUser}) {
      if (annotations.contains(key)) out[key] = annotations[key];
    }
    return out;
  }
  static json AuditOf(const std::string& name) { return Audit(admin_->Get(kLiveSyncs, kNs, name)); }

  static json LiveSync(const std::string& name) {
    return {{"apiVersion", "automation.astronetes.io/v1alpha1"},
            {"kind", "LiveSynchronization"},
            {"metadata", {{"name", name}, {"namespace", kNs}}},
            {"spec",
             {{"suspend", false},
              {"plugin", "kubernetes-objects-to-kubernetes"},
              {"config",
               {{"sourceName", "source"},
                {"destinationName", "destination"},
                {"replication", {{"resources", {{{"group", "apps"}, {"version", "v1"}, {"resource", "deployments"}}}}}}}}}}};
  }

  static json MergePatch(ro::kube::DynamicClient& client, const std::string& name, const json& patch) {
    return client.Patch(kLiveSyncs, kNs, name, ro::kube::PatchType::kMergePatch, patch.dump());
  }

  // The apiserver's log lines about calls to the webhook that failed (it "fails open"
  // with failurePolicy Ignore and says so).
  static int FailedCalls() {
    std::ifstream log(cluster_->dir() / "kube-apiserver.log");
    std::string line;
    int n = 0;
    while (std::getline(log, line)) {
      if (line.find("audit.astronetes.io") != std::string::npos && line.find("ailed calling webhook") != std::string::npos) ++n;
    }
    return n;
  }

  static std::unique_ptr<te::KubeCluster> cluster_;
  static std::unique_ptr<ro::kube::DynamicClient> admin_, alice_, bob_, robot_;
  static std::unique_ptr<te::PortLease> port_;
  static std::unique_ptr<ts::ControllerProcess> webhook_;
  static std::unique_ptr<te::NatsServer> nats_;
  static std::unique_ptr<te::RedisServer> redis_;
  static std::unique_ptr<ts::KubesyncPipeline> pipeline_;
};

std::unique_ptr<te::KubeCluster> AuditWebhookTest::cluster_;
std::unique_ptr<ro::kube::DynamicClient> AuditWebhookTest::admin_, AuditWebhookTest::alice_, AuditWebhookTest::bob_,
    AuditWebhookTest::robot_;
std::unique_ptr<te::PortLease> AuditWebhookTest::port_;
std::unique_ptr<ts::ControllerProcess> AuditWebhookTest::webhook_;
std::unique_ptr<te::NatsServer> AuditWebhookTest::nats_;
std::unique_ptr<te::RedisServer> AuditWebhookTest::redis_;
std::unique_ptr<ts::KubesyncPipeline> AuditWebhookTest::pipeline_;

TEST_F(AuditWebhookTest, AKubectlCreateIsAnnotatedWithItsUserAndANanosecondTime) {
  // The apiserver reads the patched CA bundle through its own watch: until then a call
  // fails open. Wait for the first annotated write.
  alice_->Create(kLiveSyncs, kNs, LiveSync("probe"));
  int round = 0;
  te::WaitFor(
      [&] {
        MergePatch(*alice_, "probe", {{"metadata", {{"labels", {{"round", std::to_string(++round)}}}}}});
        return AuditOf("probe").value(kUser, "") == "alice";
      },
      60s, "the apiserver to call the webhook");

  std::ifstream sample(te::SourceDir() / "tests/samples/6.2.2-livesynchronization.yaml");
  std::stringstream yaml;
  yaml << sample.rdbuf();
  cluster_->Kubectl({"apply", "-n", kNs, "-f", "-"}, yaml.str());
  const json audit = AuditOf("livesynchronization-sample");
  EXPECT_EQ(audit.value(kUser, ""), "admin");
  EXPECT_EQ(audit.value(kUid, ""), "admin-uid");
  const std::string time = audit.value(kTime, "");
  ASSERT_EQ(time.size(), 30u) << "RFC 3339 with 9 fractional digits: " << time;
  EXPECT_LE(std::chrono::abs(std::chrono::system_clock::now() - ro::common::ParseRfc3339(time)), 60s);
}

TEST_F(AuditWebhookTest, EachUsersChangeNamesThatUserAndStatusOrOperatorWritesDoNot) {
  const std::string name = "livesynchronization-sample";
  MergePatch(*alice_, name, {{"spec", {{"suspend", true}}}});
  const json by_alice = AuditOf(name);
  EXPECT_EQ(by_alice.value(kUser, ""), "alice");
  EXPECT_EQ(by_alice.value(kUid, ""), "alice-uid");

  MergePatch(*bob_, name, {{"metadata", {{"labels", {{"team", "platform"}}}}}});
  const json by_bob = AuditOf(name);
  EXPECT_EQ(by_bob.value(kUser, ""), "bob");
  EXPECT_EQ(by_bob.value(kUid, ""), "bob-uid");
  EXPECT_GT(ro::common::ParseRfc3339(by_bob.value(kTime, "")), ro::common::ParseRfc3339(by_alice.value(kTime, "")));

  // A status write (the operator's conditions) is not a change of the configuration.
  json object = admin_->Get(kLiveSyncs, kNs, name);
  object["status"] = {{"conditions", json::array({{{"type", "Ready"},
                                                   {"status", "False"},
                                                   {"reason", "Testing"},
                                                   {"message", "a status write"},
                                                   {"lastTransitionTime", "2024-01-01T00:00:00Z"}}})}};
  admin_->UpdateStatus(kLiveSyncs, kNs, object);
  EXPECT_EQ(AuditOf(name), by_bob);

  // Neither is a write of the operator's own service account, nor a metadata-only one.
  MergePatch(*robot_, name, {{"spec", {{"suspend", false}}}});
  EXPECT_EQ(AuditOf(name), by_bob);
  MergePatch(*alice_, name, {{"metadata", {{"finalizers", {"example.com/keep"}}}}});
  EXPECT_EQ(AuditOf(name), by_bob);
  MergePatch(*alice_, name, {{"metadata", {{"finalizers", nullptr}}}});

  // The record is the webhook's: an edit of it is put back.
  MergePatch(*alice_, name, {{"metadata", {{"annotations", {{kUser, "mallory"}}}}}});
  EXPECT_EQ(AuditOf(name), by_bob);
}

// Manual 6.2.4: the pipeline's log lines of an object carry lastUpdate, who last changed
// it, from these annotations.
TEST_F(AuditWebhookTest, ThePipelineLogsWhoLastChangedAReplicatedObject) {
  admin_->Create({"", "v1", "namespaces"}, "",
                 {{"apiVersion", "v1"},
                  {"kind", "Namespace"},
                  {"metadata", {{"name", "shop"}, {"labels", {{"audited", "true"}, {"sync", "true"}}}}}});
  const GroupVersionResource configmaps{"", "v1", "configmaps"};
  alice_->Create(configmaps, "shop",
                 {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "settings"}}}, {"data", {{"v", "0"}}}});
  int round = 0;
  te::WaitFor(
      [&] {
        alice_->Patch(configmaps, "shop", "settings", ro::kube::PatchType::kMergePatch,
                      json{{"data", {{"v", std::to_string(++round)}}}}.dump());
        return Audit(admin_->Get(configmaps, "shop", "settings")).value(kUser, "") == "alice";
      },
      60s, "the ConfigMap webhook to record alice's change");

  nats_ = std::make_unique<te::NatsServer>();
  redis_ = std::make_unique<te::RedisServer>();
  const json spec = json::parse(R"({"sourceName": "source", "destinationName": "destination",
    "replication": {"resources": [{"version": "v1", "resource": "configmaps",
      "filters": {"namespaceSelector": {"matchLabels": {"sync": "true"}}}}]}})");
  const ro::kubesync::KubesyncConfig file =
      ts::MakeKubesyncConfig(kNs, "audited", spec, *cluster_, *cluster_, nats_->url(), redis_->address());
  const fs::path config = cluster_->dir() / "audited-pipeline.json";
  ts::WriteKubesyncConfig(config, file);
  pipeline_ = std::make_unique<ts::KubesyncPipeline>(config, cluster_->dir(), std::vector<std::string>{"events-listener"});
  pipeline_->StartAll();
  // A change the listener watches (its initial list is published without a line per
  // object).
  json line;
  te::WaitFor(
      [&] {
        alice_->Patch(configmaps, "shop", "settings", ro::kube::PatchType::kMergePatch,
                      json{{"data", {{"v", std::to_string(++round)}}}}.dump());
        for (const json& l : (*pipeline_)["events-listener"].LogLines()) {
          if (l.value("msg", "") == "object read from cluster" && l.contains("sourceObject") &&
              l["sourceObject"].value("name", "") == "settings") {
            line = l;
            return true;
          }
        }
        return false;
      },
      60s, "the events listener to read shop/settings", 1s);
  ASSERT_TRUE(line.contains("lastUpdate")) << line.dump();
  EXPECT_EQ(line["lastUpdate"]["username"], "alice");
  EXPECT_EQ(line["lastUpdate"]["userUID"], "alice-uid");
  EXPECT_EQ(line["lastUpdate"].value("time", "").size(), 30u) << line.dump();
}

TEST_F(AuditWebhookTest, TheServingCertificateIsRenewedWithoutAFailedCall) {
  const int failed_before = FailedCalls();
  const json secret = admin_->Get(kSecrets, kWebhookNs, "resiliency-operator-audit-webhook-tls");
  const std::string first = secret["data"]["tls.crt"];
  // --certificate-validity=30s: renewed with a third of its (backdated) life left.
  te::WaitFor(
      [&] {
        MergePatch(*alice_, "probe", {{"metadata", {{"labels", {{"at", std::to_string(std::time(nullptr))}}}}}});
        EXPECT_EQ(AuditOf("probe").value(kUser, ""), "alice");
        return admin_->Get(kSecrets, kWebhookNs, "resiliency-operator-audit-webhook-tls")["data"]["tls.crt"] != first;
      },
      60s, "the serving certificate to be renewed", 250ms);
  // Writes go on being annotated with the new certificate, and none failed in between.
  for (int i = 0; i < 20; ++i) {
    MergePatch(*bob_, "probe", {{"metadata", {{"labels", {{"after", std::to_string(i)}}}}}});
    ASSERT_EQ(AuditOf("probe").value(kUser, ""), "bob") << "write " << i << " after the renewal";
  }
  EXPECT_EQ(FailedCalls(), failed_before) << "the apiserver failed to call the webhook during the renewal";
  EXPECT_THAT(webhook_->LogLines("serving certificate loaded"), ::testing::Not(::testing::IsEmpty()));
}

TEST_F(AuditWebhookTest, WithTheWebhookDownWritesPassUnrecordedAsDocumented) {
  const json before = AuditOf("probe");
  webhook_.reset();  // SIGTERM, waits for the exit
  // failurePolicy Ignore: a DR configuration can always be edited, even with the webhook
  // gone; that change is not recorded (and the apiserver logs the failed call).
  MergePatch(*alice_, "probe", {{"spec", {{"suspend", true}}}});
  EXPECT_EQ(AuditOf("probe"), before);
  EXPECT_GT(FailedCalls(), 0);
  // Back up, it records again (the certificate in the Secret is reused).
  StartWebhook();
  te::WaitFor(
      [&] {
        MergePatch(*alice_, "probe", {{"metadata", {{"labels", {{"back", std::to_string(std::time(nullptr))}}}}}});
        return AuditOf("probe").value(kUser, "") == "alice";
      },
      60s, "writes to be recorded again");
}

}  // namespace

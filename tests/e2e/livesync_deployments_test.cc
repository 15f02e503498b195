// The default (production) component runner against a real apiserver: the
// livesynchronization-controller binary renders a LiveSynchronization as a Secret,
// Services and Deployments in its namespace (docs/livesynchronization.md, "The
// deployments runner"). There is no kubelet, so nothing runs them: the test reads the
// objects back (owner references, the component settings of spec.config.components,
// suspend, observability) and checks the controller's Ready condition and finalizer.
// One cluster plays both parts: its KubernetesClusters cluster-1 and cluster-2 both
// point at it.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "livesync_e2e.h"

namespace {

using namespace livesync_e2e;

constexpr const char* kNs = "dr-deployments";
constexpr const char* kName = "standby";

const std::vector<std::string> kParts = {"nats", "redis", "eventslistener", "processor", "synchronizer",
                                         "reconciler", "metricsexporter"};

json Spec(bool suspend, bool observability, const std::string& processor_level) {
  json spec = json::parse(R"({
    "plugin": "kubernetes-objects-to-kubernetes",
    "config": {
      "sourceName": "cluster-1", "destinationName": "cluster-2",
      "observability": {"interval": "20s"},
      "components": {
        "processor": {"replicas": 2, "imagePullPolicy": "Always",
                      "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "0.5Gi"}}},
        "synchronizer": {"concurrentTasks": 16}
      },
      "replication": {"resources": [{"version": "v1", "resource": "configmaps",
                                     "filters": {"namespaceSelector": {"matchLabels": {"sync": "true"}}}}]}}})");
  spec["suspend"] = suspend;
  spec["config"]["observability"]["enabled"] = observability;
  spec["config"]["components"]["processor"]["logLevel"] = processor_level;
  return spec;
}

class LiveSyncDeploymentsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    EnvOptions options;
    options.label = "livesync-deployments";
    options.runner = "deployments";
    options.two_clusters = false;
    env_ = std::make_unique<Env>(options);
    const auto workdir = env_->UserWorkdir(kNs);
    for (const char* name : {"cluster-1", "cluster-2"}) {
      env_->UserCommand(workdir, std::string("kubectl create secret generic ") + name +
                                     "-kubeconfig --from-file=kubeconfig.yaml=cluster-2-kubeconfig.yaml");
      te::WriteFile(workdir / (std::string(name) + ".yaml"),
                    std::string("apiVersion: assets.astronetes.io/v1alpha1\nkind: KubernetesCluster\nmetadata:\n"
                                "  name: ") + name + "\nspec:\n  secretName: " + name + "-kubeconfig\n");
      env_->UserCommand(workdir, std::string("kubectl create -f ") + name + ".yaml");
    }
  }
  static void TearDownTestSuite() { env_.reset(); }

  static void ApplySpec(const json& spec) {
    env_->destination().Kubectl({"-n", kNs, "apply", "-f", "-"},
                                json{{"apiVersion", "automation.astronetes.io/v1alpha1"},
                                     {"kind", "LiveSynchronization"},
                                     {"metadata", {{"name", kName}}},
                                     {"spec", spec}}
                                    .dump());
  }

  static std::optional<json> Get(const GroupVersionResource& gvr, const std::string& name) {
    return env_->destination_client().GetIfExists(gvr, kNs, name);
  }

  static json Container(const json& deployment) { return deployment["spec"]["template"]["spec"]["containers"][0]; }

  static std::string ArgAfter(const json& container, const std::string& flag) {
    const json& args = container["args"];
    for (std::size_t i = 0; i + 1 < args.size(); ++i) {
      if (args[i] == flag) return args[i + 1];
    }
    return "";
  }

  static std::unique_ptr<Env> env_;
};
std::unique_ptr<Env> LiveSyncDeploymentsTest::env_;

TEST_F(LiveSyncDeploymentsTest, RendersTheComponentsAsOwnedObjectsWithTheirSettings) {
  ApplySpec(Spec(false, true, "debug"));
  env_->WaitForReady(kNs, kName, "False", "ComponentsNotReady");
  json ls = *env_->LiveSync(kNs, kName);
  EXPECT_EQ(ls["status"]["phase"], "Pending") << "no kubelet runs the pods";
  json finalizers = ls["metadata"].value("finalizers", json::array());
  EXPECT_NE(std::find(finalizers.begin(), finalizers.end(), "automation.astronetes.io/livesynchronization-cleanup"),
            finalizers.end());
  const std::string uid = ls["metadata"]["uid"].get<std::string>();

  std::vector<std::pair<GroupVersionResource, std::string>> objects = {
      {kSecrets, "standby-kubesync"}, {kServices, "standby-nats"}, {kServices, "standby-redis"},
      {kServices, "standby-metrics"}};
  for (const std::string& part : kParts) objects.emplace_back(kDeployments, "standby-" + part);
  for (const auto& [gvr, name] : objects) {
    const std::optional<json> object = Get(gvr, name);
    ASSERT_TRUE(object) << gvr.ToString() << " " << name;
    const json& owner = (*object)["metadata"]["ownerReferences"][0];
    EXPECT_EQ(owner["kind"], "LiveSynchronization") << name;
    EXPECT_EQ(owner["uid"], uid) << name;
    EXPECT_EQ(owner["controller"], true) << name;
  }

  json processor = *Get(kDeployments, "standby-processor");
  EXPECT_EQ(processor["spec"]["replicas"], 2);
  json container = Container(processor);
  EXPECT_EQ(container["imagePullPolicy"], "Always");
  EXPECT_EQ(container["image"], "ghcr.io/resiliency-operator/resiliency-operator:0.1.0");
  EXPECT_EQ(container["command"][0], "/usr/local/bin/kubesync");
  EXPECT_EQ(container["args"][0], "processor");
  EXPECT_EQ(ArgAfter(container, "--log-level"), "debug");
  EXPECT_EQ(container["resources"]["requests"]["cpu"], "100m");
  EXPECT_EQ(container["resources"]["limits"]["memory"], "512Mi") << "stored in canonical form";
  EXPECT_EQ(container["securityContext"]["readOnlyRootFilesystem"], true);
  EXPECT_EQ(Get(kDeployments, "standby-nats").value()["spec"]["template"]["spec"]["containers"][0]["image"],
            "docker.io/library/nats:2.9.10");
  EXPECT_EQ(Container(*Get(kDeployments, "standby-synchronizer"))["imagePullPolicy"], "IfNotPresent");

  json secret = *Get(kSecrets, "standby-kubesync");
  for (const char* key : {"config.json", "source-kubeconfig.yaml", "destination-kubeconfig.yaml"}) {
    EXPECT_TRUE(secret["data"].contains(key)) << key;
  }
  json metrics = *Get(kServices, "standby-metrics");
  EXPECT_EQ(metrics["metadata"]["annotations"]["prometheus.io/scrape"], "true");
  EXPECT_EQ(metrics["metadata"]["annotations"]["prometheus.io/interval"], "20s");

  // status.components[] mirrors the Deployments.
  const json& components = ls["status"]["components"];
  ASSERT_EQ(components.size(), kParts.size());
  EXPECT_EQ(components[3]["name"], "processor");
  EXPECT_EQ(components[3]["replicas"], 2);
  EXPECT_EQ(components[3]["ready"], false);

  // Refreshes with nothing changed write nothing (--status-refresh-interval=2s).
  const std::string version = processor["metadata"]["resourceVersion"].get<std::string>();
  const std::string ls_version = ls["metadata"]["resourceVersion"].get<std::string>();
  const double reconciles = env_->controller().ReconcileCount();
  te::WaitFor([&] { return env_->controller().ReconcileCount() >= reconciles + 3; }, kEventually,
              "three more reconciles");
  EXPECT_EQ(Get(kDeployments, "standby-processor").value()["metadata"]["resourceVersion"], version);
  EXPECT_EQ(env_->LiveSync(kNs, kName)->at("metadata").at("resourceVersion"), ls_version);
}

TEST_F(LiveSyncDeploymentsTest, SpecChangesUpdateTheObjects) {
  ApplySpec(Spec(false, true, "debug"));
  env_->WaitForReady(kNs, kName, "False", "ComponentsNotReady");
  const std::string hash = Get(kDeployments, "standby-eventslistener")
                               .value()["spec"]["template"]["metadata"]["annotations"]["kubesync.astronetes.io/config-hash"].get<std::string>();

  // A new log level: the processor's args change; the configuration file changed too
  // (spec.config is in it), so every component's pods roll.
  ApplySpec(Spec(false, true, "warn"));
  te::WaitFor([&] { return ArgAfter(Container(*Get(kDeployments, "standby-processor")), "--log-level") == "warn"; },
              kEventually, "the processor's --log-level to become warn");
  EXPECT_NE(Get(kDeployments, "standby-eventslistener")
                .value()["spec"]["template"]["metadata"]["annotations"]["kubesync.astronetes.io/config-hash"],
            hash);

  // Suspend: the pipeline components scale to 0, NATS and Redis stay.
  ApplySpec(Spec(true, true, "warn"));
  env_->WaitForReady(kNs, kName, "False", "Suspended");
  for (const char* part : {"eventslistener", "processor", "synchronizer", "reconciler"}) {
    EXPECT_EQ(Get(kDeployments, std::string("standby-") + part).value()["spec"]["replicas"], 0) << part;
  }
  for (const char* part : {"nats", "redis", "metricsexporter"}) {
    EXPECT_EQ(Get(kDeployments, std::string("standby-") + part).value()["spec"]["replicas"], 1) << part;
  }

  // Observability off: the metrics exporter and its Service go.
  ApplySpec(Spec(false, false, "warn"));
  te::WaitFor([&] { return !Get(kDeployments, "standby-metricsexporter") && !Get(kServices, "standby-metrics"); },
              kEventually, "the metrics exporter to be removed");
  EXPECT_EQ(Get(kDeployments, "standby-processor").value()["spec"]["replicas"], 2) << "resumed";
}

TEST_F(LiveSyncDeploymentsTest, DeletionRemovesEveryObjectThroughTheFinalizer) {
  ApplySpec(Spec(false, true, "info"));
  env_->WaitForReady(kNs, kName, "False", "ComponentsNotReady");
  ASSERT_TRUE(Get(kDeployments, "standby-processor"));
  env_->DeleteLiveSync(kNs, kName);
  for (const std::string& part : kParts) EXPECT_FALSE(Get(kDeployments, "standby-" + part)) << part;
  EXPECT_FALSE(Get(kSecrets, "standby-kubesync"));
  EXPECT_FALSE(Get(kServices, "standby-nats"));
  EXPECT_FALSE(Get(kServices, "standby-redis"));
}

}  // namespace

// Failback end to end (docs/runbook.md, "Fail back to cluster 1"): primary -> disaster ->
// recovery -> changes in cluster 2 -> failback to cluster 1, and nothing made in cluster 2
// during the outage is lost. Real servers: two kube-apiservers (cluster 1 is stopped and
// started again with KubeCluster::StopApiserver/StartApiserver), the operator's
// controller binaries on cluster 2 (kubernetescluster, task, taskrun and
// livesynchronization with the local component runner: NATS, Redis and the kubesync
// components as processes) and the real kubectl for the user's steps (livesync_e2e.h).
//   1. Tutorial 8.2's LiveSynchronization `active-passive` (cluster-1 -> cluster-2,
//      Deployments at replicas 0 in cluster 2; plus ConfigMaps) keeps a warm standby.
//   2. Cluster 1's apiserver stops; `active-passive` is suspended and the recovery
//      TaskRun of its generated Task scales cluster 2's Deployments to 1.
//   3. In cluster 2: a ConfigMap and a Deployment are created, a ConfigMap's data and a
//      Deployment's image change, a ConfigMap is deleted.
//   4. Cluster 1 comes back.
//   5. A reversed LiveSynchronization `failback` (cluster-2 -> cluster-1, no
//      transformation, replication.adoptExisting) in a namespace of its own (of the
//      LiveSynchronizations of a namespace, only one may name a given cluster) takes
//      cluster 1's objects over in place and brings the outage's creations and changes;
//      the ConfigMap deleted in cluster 2 stays in cluster 1 (it prunes only what it
//      manages); its status says it caught up (rpoSeconds 0, objects = what cluster 2
//      holds).
//   6. `failback` is deleted; `active-passive` resumes with adoptExisting: cluster 2 is a
//      standby again (every Deployment at replicas 0 with cluster 1's image, the one
//      created during the outage included; ConfigMaps as in cluster 1).
//   7. Every creation and change made in cluster 2 during the outage is in cluster 1.
#include <signal.h>

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "livesync_e2e.h"

namespace {

using namespace livesync_e2e;

// The runbook's namespaces of cluster 2 and the application's namespace.
constexpr const char* kDrNs = "disaster-recovery";
constexpr const char* kFailbackNs = "disaster-recovery-failback";
constexpr const char* kActivePassive = "active-passive";
constexpr const char* kFailback = "failback";
constexpr const char* kApp = "shop";

bool Alive(pid_t pid) { return ::kill(pid, 0) == 0; }

json ConfigMap(const std::string& ns, const std::string& name, json data) {
  return {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", Meta(ns, name)}, {"data", std::move(data)}};
}

// Tutorial 8.2's LiveSynchronization (tests/samples/8.2-active-passive-livesync.yaml)
// with ConfigMaps of the same namespaces replicated too.
json ActivePassiveLiveSync() {
  json ls = ts::YamlToJson(ReadSample("8.2-active-passive-livesync.yaml"));
  ls["spec"]["config"]["replication"]["resources"].push_back(
      {{"group", ""},
       {"version", "v1"},
       {"resource", "configmaps"},
       {"filters", {{"namespaceSelector", {{"matchLabels", {{"sync", "true"}}}}}}}});
  return ls;
}

// The reversed LiveSynchronization of the runbook's failback: cluster-2 -> cluster-1,
// the same resources and selectors, no transformation and no recovery process, and
// replication.adoptExisting so that cluster 1's objects (unmanaged there: they are the
// originals) are taken over instead of skipped.
json FailbackLiveSync() {
  json ls = ActivePassiveLiveSync();
  ls["metadata"] = {{"name", kFailback}};
  json& config = ls["spec"]["config"];
  config["sourceName"] = "cluster-2";
  config["destinationName"] = "cluster-1";
  config["replication"]["adoptExisting"] = true;
  for (json& resource : config["replication"]["resources"]) {
    resource.erase("transformation");
    resource.erase("recoveryProcess");
  }
  return ls;
}

class FailbackTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    EnvOptions options;
    options.label = "failback";
    options.tasks = true;  // the recovery TaskRun
    env_ = std::make_unique<Env>(options);
  }
  static void TearDownTestSuite() { env_.reset(); }

  // The tutorial's "Import the first/second cluster" steps in the user's working
  // directory (its kubectl context's namespace): the kubeconfig Secrets and the
  // KubernetesClusters cluster-1 and cluster-2 (Env::RunTutorial without the
  // LiveSynchronization).
  static void ImportClusters(const std::filesystem::path& workdir) {
    te::WriteFile(workdir / "cluster-1.yaml", ReadSample("8.1-kubernetescluster-cluster-1.yaml"));
    te::WriteFile(workdir / "cluster-2.yaml", ReadSample("8.1-kubernetescluster-cluster-2.yaml"));
    env_->UserCommand(workdir,
                      "kubectl create secret generic cluster-1-kubeconfig "
                      "--from-file=kubeconfig.yaml=cluster-1-kubeconfig.yaml");
    env_->UserCommand(workdir, "kubectl create -f cluster-1.yaml");
    env_->UserCommand(workdir,
                      "kubectl create secret generic cluster-2-kubeconfig "
                      "--from-file=kubeconfig.yaml=cluster-2-kubeconfig.yaml");
    env_->UserCommand(workdir, "kubectl create -f cluster-2.yaml");
  }

  // `kubectl apply -f <file>` of `live_sync` in the user's namespace.
  static void ApplyLiveSync(const std::filesystem::path& workdir, const json& live_sync, const std::string& file) {
    te::WriteFile(workdir / file, live_sync.dump(2));
    env_->UserCommand(workdir, "kubectl apply -f " + file);
  }

  // Waits (kEventually) until `predicate` holds; fails the test naming `what` otherwise.
  static bool Eventually(const std::function<bool()>& predicate, const std::string& what) {
    try {
      te::WaitFor(predicate, kEventually, what, kComparePoll);
      return true;
    } catch (const te::WaitTimeout& e) {
      ADD_FAILURE() << e.what();
      return false;
    }
  }

  static std::string Image(const json& deployment) {
    return deployment.at("spec").at("template").at("spec").at("containers").at(0).at("image").get<std::string>();
  }

  static std::string ManagedBy(const json& object) {
    return object.at("metadata").value("labels", json::object()).value(std::string(k8s::kManagedByLabel), "");
  }

  // Objects the LiveSynchronization must hold in the destination: ExpectedDestination of
  // every selected source object of `namespaces`, summed over its resources.
  static std::size_t ExpectedObjects(ro::kube::DynamicClient& source, ro::kube::DynamicClient& destination,
                                     const std::string& ls_ns, const std::string& ls_name, const json& spec_config,
                                     const std::vector<std::string>& namespaces) {
    const k8s::LiveSyncConfig config = k8s::ParseLiveSyncConfig(spec_config);
    const k8s::StampInfo stamp = k8s::MakeStampInfo(ls_ns, ls_name, ls_ns, config.source_name);
    std::size_t total = 0;
    for (const GroupVersionResource& gvr : config.DistinctGvrs()) {
      total += ts::CompareClusters(source, destination, config, stamp, gvr, namespaces).expected;
    }
    return total;
  }

  static std::unique_ptr<Env> env_;
};
std::unique_ptr<Env> FailbackTest::env_;

TEST_F(FailbackTest, NothingMadeInCluster2DuringTheOutageIsLostAndCluster2BecomesAStandbyAgain) {
  auto& cluster1 = env_->source();
  auto& cluster2 = env_->destination();
  auto& client1 = env_->source_client();
  auto& client2 = env_->destination_client();
  const std::vector<std::string> app = {kApp};

  // ---- 1. Primary: cluster 1 serves, cluster 2 is a warm standby. ----
  // The sample application (Deployment web with 2 replicas, Service, Secret, ...) in
  // namespace shop (sync=true) of cluster 1, plus a Deployment and two ConfigMaps.
  // Cluster 2 has the namespace, labelled as in cluster 1: the recovery Task's
  // namespaceSelector and the reversed LiveSynchronization's select it there.
  CreateSampleApplication(*env_, kApp);
  cluster2.Kubectl({"label", "namespace", kApp, "sync=true"});
  cluster1.Kubectl({"-n", kApp, "apply", "-f", "-"}, Deployment(kApp, "api", 2).dump());
  cluster1.Kubectl({"-n", kApp, "apply", "-f", "-"}, ConfigMap(kApp, "settings", {{"mode", "primary"}}).dump());
  // Deleted in cluster 2 during the outage: the failback does not carry deletions.
  cluster1.Kubectl({"-n", kApp, "apply", "-f", "-"}, ConfigMap(kApp, "legacy", {{"keep", "me"}}).dump());
  const std::string web_uid_in_cluster1 = client1.Get(kDeployments, kApp, "web")["metadata"]["uid"].get<std::string>();

  const std::filesystem::path workdir = env_->UserWorkdir(kDrNs);
  ImportClusters(workdir);
  const json active_passive = ActivePassiveLiveSync();
  ApplyLiveSync(workdir, active_passive, "livesync.json");
  env_->WaitForReady(kDrNs, kActivePassive, "True", "Running");
  ExpectConverged(client1, client2, kDrNs, kActivePassive, active_passive["spec"]["config"], app);
  ASSERT_EQ(client2.Get(kDeployments, kApp, "web")["spec"]["replicas"], 0) << "the tutorial's transformation";
  ASSERT_EQ(client2.Get(kDeployments, kApp, "api")["spec"]["replicas"], 0);
  ASSERT_TRUE(client2.GetIfExists(kConfigMaps, kApp, "legacy"));
  ASSERT_TRUE(client2.GetIfExists(kTasks, kDrNs, kActivePassive)) << "the generated recovery Task";

  // ---- 2. Disaster: cluster 1 is gone; recover in cluster 2 (runbook "Recover"). ----
  std::vector<pid_t> pipeline;
  for (const char* component : {"eventsListener", "synchronizer"}) {
    for (pid_t pid : env_->ComponentPids(kDrNs, kActivePassive, component)) pipeline.push_back(pid);
  }
  ASSERT_EQ(pipeline.size(), 2u);
  cluster1.StopApiserver();
  env_->UserCommand(workdir,
                    "kubectl patch livesynchronization active-passive -p '{\"spec\":{\"suspend\":true}}' --type=merge");
  // Ready=False: Suspended, or ClusterNotReady once cluster-1 is seen down (that check
  // comes first); either way the pipeline components stop.
  Eventually(
      [&] {
        for (const char* component : {"eventsListener", "processor", "synchronizer", "reconciler"}) {
          const json c = env_->Component(kDrNs, kActivePassive, component);
          if (!c.is_object() || c.value("replicas", -1) != 0) return false;
        }
        for (pid_t pid : pipeline) {
          if (Alive(pid)) return false;
        }
        return true;
      },
      "the pipeline components of active-passive to stop");
  EXPECT_EQ(env_->ReadyCondition(kDrNs, kActivePassive).value("status", ""), "False");

  te::WriteFile(workdir / "taskrun.yaml", ReadSample("8.2-taskrun.yaml"));
  env_->UserCommand(workdir,
                    "sed -i 's/taskName: .*/taskName: active-passive/' taskrun.yaml && kubectl create -f taskrun.yaml");
  json run;
  Eventually(
      [&] {
        run = client2.Get(kTaskRuns, kDrNs, "restore-apps");
        const std::string phase = run.value("status", json::object()).value("phase", "");
        return phase == "Succeeded" || phase == "Failed";
      },
      "TaskRun restore-apps to finish");
  ASSERT_EQ(run.value("status", json::object()).value("phase", ""), "Succeeded") << run.dump();
  ASSERT_EQ(client2.Get(kDeployments, kApp, "web")["spec"]["replicas"], 1) << "the recovery process";
  ASSERT_EQ(client2.Get(kDeployments, kApp, "api")["spec"]["replicas"], 1);

  // ---- 3. Cluster 2 serves; its users change things. ----
  cluster2.Kubectl({"-n", kApp, "create", "-f", "-"},
                   ConfigMap(kApp, "created-in-outage", {{"orders", "42"}}).dump());
  cluster2.Kubectl({"-n", kApp, "create", "-f", "-"}, Deployment(kApp, "outage-worker", 1, "nginx:1.27").dump());
  cluster2.Kubectl(
      {"-n", kApp, "patch", "configmap", "settings", "--type=merge", "-p", R"({"data":{"mode":"failover"}})"});
  cluster2.Kubectl({"-n", kApp, "set", "image", "deployment/web", "main=nginx:1.27"});
  cluster2.Kubectl({"-n", kApp, "delete", "configmap", "legacy"});
  const std::string worker_uid_in_cluster2 =
      client2.Get(kDeployments, kApp, "outage-worker")["metadata"]["uid"].get<std::string>();
  EXPECT_EQ(ManagedBy(client2.Get(kDeployments, kApp, "outage-worker")), "") << "made by a user: unmanaged";

  // ---- 4. Cluster 1 is back (with its pre-outage state). ----
  cluster1.StartApiserver();
  EXPECT_EQ(client1.Get(kConfigMaps, kApp, "settings")["data"]["mode"], "primary");
  EXPECT_FALSE(client1.GetIfExists(kConfigMaps, kApp, "created-in-outage"));

  // ---- 5. Failback A: the reversed LiveSynchronization, cluster-2 -> cluster-1. ----
  // In a namespace of its own: a second LiveSynchronization sharing cluster-1/cluster-2
  // in disaster-recovery would be ConflictingLiveSynchronization (manual 6.2.2).
  const std::filesystem::path failback_workdir = env_->UserWorkdir(kFailbackNs);
  ImportClusters(failback_workdir);
  const json failback = FailbackLiveSync();
  ApplyLiveSync(failback_workdir, failback, "failback.json");
  env_->WaitForReady(kFailbackNs, kFailback, "True", "Running");
  // Cluster 1 holds exactly what cluster 2 has, object by object (source: cluster 2).
  ExpectConverged(client2, client1, kFailbackNs, kFailback, failback["spec"]["config"], app);

  const std::string failback_id = k8s::ManagedById(kFailbackNs, kFailback);
  {
    std::optional<json> created = client1.GetIfExists(kConfigMaps, kApp, "created-in-outage");
    ASSERT_TRUE(created) << "a ConfigMap created in cluster 2 during the outage";
    EXPECT_EQ((*created)["data"]["orders"], "42");
    std::optional<json> worker = client1.GetIfExists(kDeployments, kApp, "outage-worker");
    ASSERT_TRUE(worker) << "a Deployment created in cluster 2 during the outage";
    EXPECT_EQ(Image(*worker), "nginx:1.27");
    EXPECT_EQ((*worker)["spec"]["replicas"], 1);
    EXPECT_EQ(client1.Get(kConfigMaps, kApp, "settings")["data"]["mode"], "failover");
    json web = client1.Get(kDeployments, kApp, "web");
    EXPECT_EQ(Image(web), "nginx:1.27");
    EXPECT_EQ(web["spec"]["replicas"], 1) << "cluster 2's replicas, no transformation";
    EXPECT_EQ(client1.Get(kDeployments, kApp, "api")["spec"]["replicas"], 1);
    // Adopted in place (adoptExisting): the same object, now managed by `failback`.
    EXPECT_EQ(web["metadata"]["uid"], web_uid_in_cluster1);
    EXPECT_EQ(ManagedBy(web), failback_id);
    // Deleted in cluster 2 during the outage: still in cluster 1, untouched (the
    // reversed sync never saw it, so it neither adopts nor prunes it).
    std::optional<json> legacy = client1.GetIfExists(kConfigMaps, kApp, "legacy");
    ASSERT_TRUE(legacy) << "the reversed sync must not delete what it does not manage";
    EXPECT_EQ(ManagedBy(*legacy), "");
    EXPECT_EQ((*legacy)["data"]["keep"], "me");
  }

  // Caught up, as its status tells it: nothing waits (rpoSeconds 0) and every selected
  // object of cluster 2 is in sync in cluster 1 (objects).
  const std::size_t expected =
      ExpectedObjects(client2, client1, kFailbackNs, kFailback, failback["spec"]["config"], app);
  json status;
  Eventually(
      [&] {
        const std::optional<json> ls = env_->LiveSync(kFailbackNs, kFailback);
        status = ls ? ls->value("status", json::object()) : json::object();
        return status.contains("rpoSeconds") && status["rpoSeconds"].get<double>() == 0.0 &&
               status.value("objects", int64_t{-1}) == static_cast<int64_t>(expected);
      },
      "failback's status to show it caught up: rpoSeconds 0 and objects " + std::to_string(expected));
  for (const json& c : status.value("conditions", json::array())) {
    if (c.value("type", "") == "Degraded") {
      EXPECT_EQ(c.value("status", ""), "False") << c.dump();
    }
  }

  // ---- 6. Failback B: traffic is back on cluster 1; cluster 2 becomes the standby. ----
  env_->DeleteLiveSync(kFailbackNs, kFailback);  // kubectl delete, then waits until it is gone
  EXPECT_TRUE(client1.GetIfExists(kDeployments, kApp, "outage-worker")) << "the destination keeps its objects";
  env_->UserCommand(workdir,
                    "kubectl patch livesynchronization active-passive --type=merge -p "
                    "'{\"spec\":{\"suspend\":false,\"config\":{\"replication\":{\"adoptExisting\":true}}}}'");
  json resumed_config = active_passive["spec"]["config"];
  resumed_config["replication"]["adoptExisting"] = true;
  env_->WaitForReady(kDrNs, kActivePassive, "True", "Running");
  ExpectConverged(client1, client2, kDrNs, kActivePassive, resumed_config, app);

  const std::string active_passive_id = k8s::ManagedById(kDrNs, kActivePassive);
  {
    std::vector<json> standby = client2.List(kDeployments, kApp).items;
    EXPECT_EQ(standby.size(), 3u) << "web, api, outage-worker";
    for (json& deployment : standby) {
      const std::string name = deployment["metadata"]["name"].get<std::string>();
      EXPECT_EQ(deployment["spec"]["replicas"], 0) << name << ": the transformation again";
      EXPECT_EQ(Image(deployment), Image(client1.Get(kDeployments, kApp, name))) << name;
      EXPECT_EQ(ManagedBy(deployment), active_passive_id) << name;
    }
    // Created in cluster 2 during the outage: adopted in place by active-passive.
    json worker = client2.Get(kDeployments, kApp, "outage-worker");
    EXPECT_EQ(worker["metadata"]["uid"], worker_uid_in_cluster2);
    EXPECT_EQ(ManagedBy(client2.Get(kConfigMaps, kApp, "created-in-outage")), active_passive_id);
    for (json& configmap : client1.List(kConfigMaps, kApp).items) {
      const std::string name = configmap["metadata"]["name"].get<std::string>();
      if (name == "kube-root-ca.crt") continue;  // never replicated
      const std::optional<json> copy = client2.GetIfExists(kConfigMaps, kApp, name);
      ASSERT_TRUE(copy) << name;
      EXPECT_EQ((*copy).value("data", json::object()), configmap.value("data", json::object())) << name;
    }
    // The deletion made in cluster 2 during the outage was not carried: cluster 1 still
    // has the ConfigMap, so the standby has its copy again (docs/runbook.md: delete
    // such objects in cluster 1 by hand).
    EXPECT_TRUE(client2.GetIfExists(kConfigMaps, kApp, "legacy"));
  }

  // ---- 7. Nothing made in cluster 2 during the outage was lost. ----
  std::optional<json> created = client1.GetIfExists(kConfigMaps, kApp, "created-in-outage");
  ASSERT_TRUE(created);
  EXPECT_EQ((*created)["data"]["orders"], "42");
  std::optional<json> worker = client1.GetIfExists(kDeployments, kApp, "outage-worker");
  ASSERT_TRUE(worker);
  EXPECT_EQ(Image(*worker), "nginx:1.27");
  EXPECT_EQ((*worker)["spec"]["replicas"], 1);
  EXPECT_EQ(client1.Get(kConfigMaps, kApp, "settings")["data"]["mode"], "failover");
  EXPECT_EQ(Image(client1.Get(kDeployments, kApp, "web")), "nginx:1.27");
  EXPECT_EQ(client1.Get(kDeployments, kApp, "web")["spec"]["replicas"], 1);
}

}  // namespace

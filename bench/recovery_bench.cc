// recovery_bench: the RTO figures of issue 12 against real servers (tests/testenv),
// printed, never asserted. Run it from a Release tree with the controllers of the same
// tree: RO_BIN_DIR=build/release/bin build/release/bin/recovery_bench
//
//   1. recovery: N Deployments (default 1,000) at replicas 0 in a namespace labelled
//      sync=true, as a warm standby holds them. First the raw rate: a direct client lists
//      them and PUTs each at replicas 1 (the recovery's own request pattern: one
//      sequential update per object), then sets them back. Then the taskrun-controller
//      binary runs the manual's recovery Task (replicas 1 for the Deployments of sync=true
//      namespaces) from one TaskRun: the time from the TaskRun's creation until it is
//      Succeeded (the RTO), objects/s and its ratio to the raw rate.
//      Target: <= 5 s for 1,000 Deployments and >= 70 % of the raw rate.
//   2. restore: M ConfigMaps (default 10,000) created by a direct client, one at a time
//      (the raw create rate), backed up by the synchronization-controller binary (a
//      Backup to s3rver), then restored under another namespace by the taskrun-controller
//      (kubernetes-objects-from-backup): objects/s of the backup and of the restore, and
//      the restore's ratio to the raw create rate.
//
// Usage: recovery_bench [--deployments=N] [--configmaps=M]
#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "ro/kube/client.h"
#include "ro/kube/config.h"
#include "ro/testenv/testenv.h"
#include "ro/testsupport/controller_process.h"

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using ro::kube::DynamicClient;
using ro::kube::GroupVersionResource;
namespace te = ro::testenv;

const GroupVersionResource kDeployments{"apps", "v1", "deployments"};
const GroupVersionResource kConfigMaps{"", "v1", "configmaps"};
const GroupVersionResource kTaskRuns{"automation.astronetes.io", "v1alpha1", "taskruns"};
const GroupVersionResource kBackups{"automation.astronetes.io", "v1alpha1", "backups"};

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

json Deployment(const std::string& name, int replicas) {
  return {{"apiVersion", "apps/v1"},
          {"kind", "Deployment"},
          {"metadata", {{"name", name}, {"namespace", "shop"}}},
          {"spec",
           {{"replicas", replicas},
            {"selector", {{"matchLabels", {{"app", name}}}}},
            {"template",
             {{"metadata", {{"labels", {{"app", name}}}}},
              {"spec", {{"containers", {{{"name", "app"}, {"image", "nginx:1.27"}}}}}}}}}}};
}

// Polls `gvr` dr/name until status.phase is Succeeded or Failed; returns it.
json WaitFinished(DynamicClient& client, const GroupVersionResource& gvr, const std::string& name) {
  const auto deadline = Clock::now() + std::chrono::minutes{10};
  while (Clock::now() < deadline) {
    json object = client.Get(gvr, "dr", name);
    const std::string phase = object.value("status", json::object()).value("phase", "");
    if (phase == "Succeeded" || phase == "Failed") return object;
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  throw std::runtime_error(name + " did not finish in 10 minutes");
}

}  // namespace

int main(int argc, char** argv) {
  int deployments = 1000;
  int configmaps = 10'000;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--deployments=", 14) == 0) deployments = std::atoi(argv[i] + 14);
    if (std::strncmp(argv[i], "--configmaps=", 13) == 0) configmaps = std::atoi(argv[i] + 13);
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  te::TempDir dir("recovery-bench");
  te::KubeClusterOptions cluster_options;
  cluster_options.name = "operator";
  te::KubeCluster cluster(cluster_options);
  te::S3Server s3;
  s3.CreateBucket("backups");
  ro::kube::RestConfig config = ro::kube::LoadKubeconfigFile(cluster.kubeconfig_path().string());
  config.qps = 0;  // the raw client: no client-side limit
  DynamicClient client(config);
  const auto apply = [&](const json& object) { cluster.Kubectl({"apply", "-f", "-"}, object.dump()); };
  cluster.Kubectl({"apply", "-f", (te::SourceDir() / "deploy/crds/all.yaml").string()});
  cluster.Kubectl({"wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"});
  cluster.Kubectl({"create", "namespace", "dr"});
  cluster.Kubectl({"create", "namespace", "shop"});
  cluster.Kubectl({"label", "namespace", "shop", "sync=true"});
  te::WriteFile(dir.path() / "license", "licensee: Bench\nexpiresAt: 2099-01-01T00:00:00Z\n");
  const auto start = [&](const std::string& binary, std::vector<std::string> args) {
    ro::testsupport::ControllerProcessOptions options;
    options.binary = binary;
    options.kubeconfig = cluster.kubeconfig_path();
    options.dir = dir.path();
    options.license_file = dir.path() / "license";
    options.args = std::move(args);
    return std::make_unique<ro::testsupport::ControllerProcess>(std::move(options));
  };

  // ---- 1. recovery of N Deployments ----
  for (int i = 0; i < deployments; ++i) client.Create(kDeployments, "shop", Deployment("web-" + std::to_string(i), 0));
  const auto set_replicas = [&](int replicas) {
    ro::kube::ListOptions list;
    list.limit = 500;
    for (json& item : client.ListAll(kDeployments, "shop", list).items) {
      item["spec"]["replicas"] = replicas;
      client.Update(kDeployments, "shop", item);
    }
  };
  auto t = Clock::now();
  set_replicas(1);
  const double raw_seconds = Seconds(t);
  const double raw_rate = deployments / raw_seconds;
  set_replicas(0);

  auto task_controller = start("task-controller", {});
  auto taskrun_controller = start("taskrun-controller", {});
  apply(json::parse(R"({"apiVersion": "automation.astronetes.io/v1alpha1", "kind": "Task",
    "metadata": {"name": "recover", "namespace": "dr"},
    "spec": {"plugin": "kubernetes-objects-transformation", "config": {"resources": [
      {"identifier": {"group": "apps", "version": "v1", "resources": "deployments"},
       "patch": {"operations": [{"op": "replace", "path": "/spec/replicas", "value": 1}]},
       "filter": {"namespaceSelector": {"matchLabels": {"sync": "true"}}}}]}}})"));
  std::this_thread::sleep_for(std::chrono::seconds{2});  // the Task in the controller's cache
  t = Clock::now();
  client.Create(kTaskRuns, "dr",
                {{"apiVersion", "automation.astronetes.io/v1alpha1"},
                 {"kind", "TaskRun"},
                 {"metadata", {{"name", "recover-1"}, {"namespace", "dr"}}},
                 {"spec", {{"taskName", "recover"}}}});
  const json run = WaitFinished(client, kTaskRuns, "recover-1");
  const double rto = Seconds(t);
  std::printf("recovery of %d Deployments by one TaskRun (%s, %s objects patched)\n", deployments,
              run["status"].value("phase", "").c_str(), std::to_string(run["status"].value("objectsPatched", 0)).c_str());
  std::printf("  raw: list + sequential PUT by a direct client   %8.2f s  %8.0f objects/s\n", raw_seconds, raw_rate);
  std::printf("  TaskRun created -> Succeeded (RTO)               %8.2f s  %8.0f objects/s  (%.0f %% of raw; target <= 5 s, >= 70 %%)\n",
              rto, deployments / rto, 100.0 * (deployments / rto) / raw_rate);

  // ---- 2. backup and restore of M ConfigMaps ----
  cluster.Kubectl({"create", "namespace", "src"});
  t = Clock::now();
  for (int i = 0; i < configmaps; ++i) {
    client.Create(kConfigMaps, "src",
                  {{"apiVersion", "v1"},
                   {"kind", "ConfigMap"},
                   {"metadata", {{"name", "cm-" + std::to_string(i)}, {"namespace", "src"}}},
                   {"data", {{"key", std::string(200, 'x')}}}});
  }
  const double raw_create = configmaps / Seconds(t);
  apply({{"apiVersion", "v1"},
         {"kind", "Secret"},
         {"metadata", {{"name", "self"}, {"namespace", "dr"}}},
         {"stringData", {{"kubeconfig.yaml", te::ReadFile(cluster.kubeconfig_path())}}}});
  apply({{"apiVersion", "assets.astronetes.io/v1alpha1"},
         {"kind", "KubernetesCluster"},
         {"metadata", {{"name", "self"}, {"namespace", "dr"}}},
         {"spec", {{"secretName", "self"}}}});
  apply({{"apiVersion", "v1"},
         {"kind", "Secret"},
         {"metadata", {{"name", "keys"}, {"namespace", "dr"}}},
         {"stringData", {{"accessKeyID", s3.access_key()}, {"secretAccessKey", s3.secret_key()}}}});
  apply({{"apiVersion", "assets.astronetes.io/v1alpha1"},
         {"kind", "Bucket"},
         {"metadata", {{"name", "backups"}, {"namespace", "dr"}}},
         {"spec", {{"generic", {{"name", "backups"}, {"endpoint", s3.endpoint()}, {"useSSL", false}, {"secretName", "keys"}}}}}});
  auto sync_controller = start("synchronization-controller", {"--pending-recheck=1s"});
  t = Clock::now();
  apply({{"apiVersion", "automation.astronetes.io/v1alpha1"},
         {"kind", "Backup"},
         {"metadata", {{"name", "src"}, {"namespace", "dr"}}},
         {"spec",
          {{"plugin", "kubernetes-objects-to-bucket"},
           {"config",
            {{"source", {{"kubernetesCluster", {{"name", "self"}, {"namespaces", {"src"}}}}}},
             {"destination", {{"bucket", {{"name", "backups"}}}}}}}}}});
  const json backup = WaitFinished(client, kBackups, "src");
  const double backup_seconds = Seconds(t);
  const int64_t backed_up = backup["status"].value("objects", int64_t{0});
  apply(json::parse(R"({"apiVersion": "automation.astronetes.io/v1alpha1", "kind": "Task",
    "metadata": {"name": "restore", "namespace": "dr"},
    "spec": {"plugin": "kubernetes-objects-from-backup",
      "config": {"bucketName": "backups", "basePath": "dr/src", "namespaceMapping": {"src": "dst"}}}})"));
  std::this_thread::sleep_for(std::chrono::seconds{2});
  t = Clock::now();
  client.Create(kTaskRuns, "dr",
                {{"apiVersion", "automation.astronetes.io/v1alpha1"},
                 {"kind", "TaskRun"},
                 {"metadata", {{"name", "restore-1"}, {"namespace", "dr"}}},
                 {"spec", {{"taskName", "restore"}}}});
  const json restored = WaitFinished(client, kTaskRuns, "restore-1");
  const double restore_seconds = Seconds(t);
  const int64_t restored_objects = restored["status"].value("objectsPatched", int64_t{0});
  std::printf("backup and restore of %d ConfigMaps (+ the Namespace)\n", configmaps);
  std::printf("  raw: sequential creates by a direct client                %8.0f objects/s\n", raw_create);
  std::printf("  Backup to s3rver (%s, %lld objects)           %8.2f s  %8.0f objects/s\n",
              backup["status"].value("phase", "").c_str(), static_cast<long long>(backed_up), backup_seconds,
              backed_up / backup_seconds);
  std::printf("  restore TaskRun (%s, %lld objects)            %8.2f s  %8.0f objects/s  (%.0f %% of raw creates)\n",
              restored["status"].value("phase", "").c_str(), static_cast<long long>(restored_objects), restore_seconds,
              restored_objects / restore_seconds, 100.0 * (restored_objects / restore_seconds) / raw_create);
  curl_global_cleanup();
  return 0;
}

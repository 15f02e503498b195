// The operator installed from its image on the harness's node cluster (as
// tests/e2e/operator_in_cluster_test.cc does), with a LiveSynchronization whose
// components run as pods. Prints:
//   - seconds from `kubectl apply -k` of operator.yaml to the eight controllers Available;
//   - seconds from `kubectl apply` of the LiveSynchronization to the first object
//     replicated, and to Ready;
//   - per pod (controllers and components): memory working set (cgroup) and CPU
//     (millicores) at idle, after the initial sync of `objects` ConfigMaps, and during a
//     steady 200 changes/s; the initial sync's rate.
// Asserts nothing; needs root (the node). Cluster 1 (no node) is the source.
//
//   operator_in_cluster_bench [objects=10000] [steady_seconds=30]
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "ro/kube/client.h"
#include "ro/kube/config.h"
#include "ro/kube/errors.h"
#include "ro/plugins/kubernetes/control_metadata.h"
#include "ro/testenv/testenv.h"
#include "ro/testsupport/clients.h"
#include "ro/testsupport/operator_install.h"

namespace {

namespace te = ro::testenv;
namespace ts = ro::testsupport;
using nlohmann::json;
using ro::kube::GroupVersionResource;
using Steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

const GroupVersionResource kConfigMaps{"", "v1", "configmaps"};
const GroupVersionResource kNamespaces{"", "v1", "namespaces"};
const GroupVersionResource kPods{"", "v1", "pods"};
constexpr const char* kUserNs = "bench";
constexpr const char* kLiveSync = "standby";
constexpr int kPerNamespace = 1000;
constexpr int kChangesPerSecond = 200;
constexpr auto kIdleWindow = 20s;

double Seconds(Steady::duration d) { return std::chrono::duration<double>(d).count(); }

using ts::AdminClient;

json ConfigMap(const std::string& ns, const std::string& name, const std::string& value) {
  json data = json::object();
  for (int i = 0; i < 8; ++i) data["key-" + std::to_string(i)] = value + "-" + std::to_string(i) + "-" + name;
  return {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", name}, {"namespace", ns}}}, {"data", data}};
}

// Pods of the operator's namespace and of the LiveSynchronization's, by "<ns>/<component>".
struct PodRef {
  std::string label;  // controller or component name
  std::string uid;
};
std::vector<PodRef> Pods(ro::kube::DynamicClient& client) {
  std::vector<PodRef> pods;
  for (const char* ns : {ts::kOperatorNamespace, kUserNs}) {
    for (const json& pod : client.ListAll(kPods, ns).items) {
      if (pod["status"].value("phase", "") != "Running") continue;
      const json labels = pod["metadata"].value("labels", json::object());
      std::string label = labels.value("app.kubernetes.io/component", pod["metadata"]["name"].get<std::string>());
      pods.push_back({label, pod["metadata"]["uid"]});
    }
  }
  std::sort(pods.begin(), pods.end(), [](const PodRef& a, const PodRef& b) { return a.label < b.label; });
  return pods;
}

struct Sample {
  double memory_mib = 0;
  double millicores = 0;
};
// Memory now and CPU averaged over `window` while `during` runs (nullptr: idle).
std::map<std::string, Sample> Measure(const te::KubeNode& node, const std::vector<PodRef>& pods,
                                      std::chrono::milliseconds window) {
  std::map<std::string, te::PodUsage> before;
  for (const PodRef& p : pods) before[p.uid] = node.ReadPodUsage(p.uid);
  const auto start = Steady::now();
  std::this_thread::sleep_for(window);
  const double seconds = Seconds(Steady::now() - start);
  std::map<std::string, Sample> out;
  for (const PodRef& p : pods) {
    const te::PodUsage after = node.ReadPodUsage(p.uid);
    Sample s;
    s.memory_mib = static_cast<double>(after.memory_working_set_bytes) / (1024.0 * 1024.0);
    s.millicores = static_cast<double>(after.cpu_usage_ns - before[p.uid].cpu_usage_ns) / 1e6 / seconds;
    out[p.uid] = s;
  }
  return out;
}

int CountManaged(ro::kube::DynamicClient& client) {
  ro::kube::ListOptions options;
  options.label_selector =
      std::string(ro::plugins::kubernetes::kManagedByLabel) + "=" + ro::plugins::kubernetes::ManagedById(kUserNs, kLiveSync);
  options.limit = 5000;
  return static_cast<int>(client.ListAll(kConfigMaps, "", options).items.size());
}

}  // namespace

int main(int argc, char** argv) {
  const int objects = argc > 1 ? std::atoi(argv[1]) : 10000;
  const int steady_seconds = argc > 2 ? std::atoi(argv[2]) : 30;
  if (::geteuid() != 0) {
    std::fprintf(stderr, "needs root (the node cluster)\n");
    return 1;
  }
  try {
    const auto bin = ts::OperatorBinDir();
    auto source_start = std::async(std::launch::async, [] {
      te::KubeClusterOptions o;
      o.name = "cluster1";
      o.with_controller_manager = true;
      return std::make_unique<te::KubeCluster>(o);
    });
    te::KubeClusterOptions o;
    o.name = "cluster2";
    o.with_node = true;
    auto cluster2 = std::make_unique<te::KubeCluster>(o);
    auto cluster1 = source_start.get();
    ts::BuildAndImportImages(*cluster2, bin);
    auto client1 = AdminClient(*cluster1);
    auto client2 = AdminClient(*cluster2);

    const auto install = ts::InstallOperator(*cluster2, *client2, "bench");
    std::printf("install: kubectl apply -k of operator.yaml -> 8 controllers Available: %.1f s\n",
                static_cast<double>(install.count()) / 1000.0);

    // Source namespaces (labelled) and their destination twins; one object already there.
    const int namespaces = std::max(1, (objects + kPerNamespace - 1) / kPerNamespace);
    for (int n = 0; n < namespaces; ++n) {
      const std::string ns = "app-" + std::to_string(n);
      client1->Create(kNamespaces, "", {{"apiVersion", "v1"}, {"kind", "Namespace"},
                                        {"metadata", {{"name", ns}, {"labels", {{"sync", "true"}}}}}});
      client2->Create(kNamespaces, "", {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}});
    }
    client1->Create(kConfigMaps, "app-0", ConfigMap("app-0", "first", "v0"));

    const std::string c1 = cluster2->node().ExposeHostPort(cluster1->apiserver().port());
    te::TempDir dir("operator-bench");
    cluster1->WriteKubeconfigForServer(dir.path() / "c1.yaml", "https://" + c1);
    cluster2->WriteKubeconfigForServer(dir.path() / "c2.yaml",
                                       "https://10.244.0.1:" + std::to_string(cluster2->apiserver().port()));
    cluster2->Kubectl({"create", "namespace", kUserNs});
    for (const auto& [name, file] : {std::pair{"cluster-1", "c1.yaml"}, std::pair{"cluster-2", "c2.yaml"}}) {
      cluster2->Kubectl({"-n", kUserNs, "create", "secret", "generic", std::string(name) + "-kubeconfig",
                         "--from-file=kubeconfig.yaml=" + (dir.path() / file).string()});
      cluster2->Kubectl({"-n", kUserNs, "apply", "-f", "-"},
                        json{{"apiVersion", "assets.astronetes.io/v1alpha1"},
                             {"kind", "KubernetesCluster"},
                             {"metadata", {{"name", name}}},
                             {"spec", {{"secretName", std::string(name) + "-kubeconfig"}}}}
                            .dump());
    }
    const json ls = {
        {"apiVersion", "automation.astronetes.io/v1alpha1"},
        {"kind", "LiveSynchronization"},
        {"metadata", {{"name", kLiveSync}}},
        {"spec",
         {{"plugin", "kubernetes-objects-to-kubernetes"},
          {"config",
           {{"sourceName", "cluster-1"},
            {"destinationName", "cluster-2"},
            {"observability", {{"enabled", true}}},
            {"replication",
             {{"resources", json::array({{{"version", "v1"},
                                          {"resource", "configmaps"},
                                          {"filters", {{"namespaceSelector", {{"matchLabels", {{"sync", "true"}}}}}}}}})}}}}}}}};
    const auto applied = Steady::now();
    cluster2->Kubectl({"-n", kUserNs, "apply", "-f", "-"}, ls.dump());
    te::WaitFor(
        [&] {
          try {
            client2->Get(kConfigMaps, "app-0", "first");
            return true;
          } catch (const ro::kube::ApiError&) {
            return false;
          }
        },
        300s, "the first object replicated", 100ms);
    std::printf("LiveSynchronization: kubectl apply -> first object replicated: %.1f s\n",
                Seconds(Steady::now() - applied));
    te::WaitFor(
        [&] {
          const std::string ready = cluster2->Kubectl({"-n", kUserNs, "get", "livesynchronization", kLiveSync, "-o",
                                                       "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"});
          return ready == "True";
        },
        300s, "the LiveSynchronization Ready", 200ms);
    std::printf("LiveSynchronization: kubectl apply -> Ready: %.1f s\n", Seconds(Steady::now() - applied));

    std::vector<PodRef> pods = Pods(*client2);
    const auto idle = Measure(cluster2->node(), pods, kIdleWindow);

    // Initial sync of `objects` ConfigMaps, 16 writers.
    const auto load_start = Steady::now();
    {
      std::atomic<int> next{0};
      std::vector<std::thread> workers;
      for (int w = 0; w < 16; ++w) {
        workers.emplace_back([&, client = AdminClient(*cluster1)] {
          for (int i = next++; i < objects; i = next++) {
            const std::string ns = "app-" + std::to_string(i / kPerNamespace);
            client->Create(kConfigMaps, ns, ConfigMap(ns, "cm-" + std::to_string(i), "v0"));
          }
        });
      }
      for (auto& t : workers) t.join();
    }
    const double written = Seconds(Steady::now() - load_start);
    te::WaitFor([&] { return CountManaged(*client2) >= objects + 1; }, 1800s, "every object replicated", 1s);
    const double synced = Seconds(Steady::now() - load_start);
    std::printf("initial sync: %d ConfigMaps written in %.1f s (%.0f/s), all replicated after %.1f s (%.0f/s)\n",
                objects, written, objects / written, synced, objects / synced);
    pods = Pods(*client2);
    const auto loaded = Measure(cluster2->node(), pods, 5s);

    // Steady changes: 200 updates/s spread over the objects, for steady_seconds, from
    // four writers at 50/s each (one request takes ~10 ms on the loaded machine).
    constexpr int kWriters = 4;
    std::atomic<bool> stop{false};
    std::atomic<int> changes{0};
    std::vector<std::thread> writers;
    for (int w = 0; w < kWriters; ++w) {
      writers.emplace_back([&, w, client = AdminClient(*cluster1)] {
        const auto period = std::chrono::microseconds(1000000 * kWriters / kChangesPerSecond);
        auto next = Steady::now();
        for (int i = w; !stop.load(); i += kWriters) {
          const int k = i % objects;
          const std::string ns = "app-" + std::to_string(k / kPerNamespace);
          try {
            client->Patch(kConfigMaps, ns, "cm-" + std::to_string(k), ro::kube::PatchType::kMergePatch,
                          json{{"data", {{"key-0", "v" + std::to_string(i)}}}}.dump());
            ++changes;
          } catch (const std::exception&) {
          }
          next += period;
          std::this_thread::sleep_until(next);
        }
      });
    }
    const auto steady = Measure(cluster2->node(), pods, std::chrono::seconds(steady_seconds));
    stop = true;
    for (auto& t : writers) t.join();
    std::printf("steady: %d changes in %d s (%.0f/s)\n", changes.load(), steady_seconds,
                changes.load() / static_cast<double>(steady_seconds));

    std::printf("\n%-34s %12s %10s %14s %12s %12s\n", "pod", "idle MiB", "idle mCPU",
                ("MiB @" + std::to_string(objects / 1000) + "k").c_str(), "mCPU @200/s", "MiB @200/s");
    for (const PodRef& p : pods) {
      auto get = [&](const std::map<std::string, Sample>& m) {
        auto it = m.find(p.uid);
        return it == m.end() ? Sample{-1, -1} : it->second;
      };
      const Sample a = get(idle), b = get(loaded), c = get(steady);
      std::printf("%-34s %12.1f %10.1f %14.1f %12.1f %12.1f\n", p.label.c_str(), a.memory_mib, a.millicores,
                  b.memory_mib, c.millicores, c.memory_mib);
    }
    std::printf("(-1: the pod was replaced between samples)\n");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "operator_in_cluster_bench: %s\n", e.what());
    return 1;
  }
}

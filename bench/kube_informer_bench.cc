// Informer figures against a real kube-apiserver + etcd (tests/testenv):
//
//  1. Watch event throughput: an informer watches a namespace while many parallel writers
//     create N ConfigMaps; events/s = N / (time from the first to the last OnAdd). That
//     figure is bounded by the apiserver's write rate, so a second informer then replays
//     the same N ADDED events from the watch (its list is faked empty at the
//     resourceVersion before the creates): the informer's own capacity (HTTP stream ->
//     JSON decode -> store -> handler).
//  2. Memory per cached object: allocator bytes in use (glibc mallinfo2) and RSS before
//     and after an informer syncs M ConfigMaps with ~1 KiB of data each, divided by M,
//     next to the JSON text size per object; with and without StripManagedFields.
//
// Usage: kube_informer_bench [N (default 3000)] [M (default 10000)] [writers (default 32)]
// Prints figures; asserts nothing.
#include <malloc.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <optional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ro/kube/client.h"
#include "ro/kube/config.h"
#include "ro/kube/informer.h"
#include "ro/kube/reflector.h"
#include "ro/kube/store.h"
#include "ro/testenv/testenv.h"

namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using ro::kube::DynamicClient;
using ro::kube::GroupVersionResource;
using ro::kube::ObjectPtr;
using Clock = std::chrono::steady_clock;

const GroupVersionResource kConfigMaps{"", "v1", "configmaps"};
const GroupVersionResource kNamespaces{"", "v1", "namespaces"};
// ~1 KiB of data per ConfigMap for the memory figure (a typical small config file).
constexpr std::size_t kDataBytes = 1024;

json ConfigMap(const std::string& ns, const std::string& name, const std::string& data) {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"namespace", ns}, {"labels", {{"bench", "informer"}}}}},
          {"data", {{"config.yaml", data}}}};
}

void CreateNamespace(DynamicClient& client, const std::string& ns) {
  client.Create(kNamespaces, "", {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}});
}

// Creates `count` ConfigMaps named prefix-<i> with `writers` threads.
void CreateMany(DynamicClient& client, const std::string& ns, const std::string& prefix, int count,
                int writers, const std::string& data) {
  std::atomic<int> next{0};
  std::vector<std::jthread> threads;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&] {
      for (int i = next++; i < count; i = next++) {
        client.Create(kConfigMaps, ns, ConfigMap(ns, prefix + "-" + std::to_string(i), data));
      }
    });
  }
}

std::size_t AllocatedBytes() {
  malloc_trim(0);
  return mallinfo2().uordblks;
}

std::size_t RssBytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages = 0;
  std::size_t resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

// A list that is empty at a fixed resourceVersion, and the real watch.
class ReplayListerWatcher final : public ro::kube::ListerWatcher {
 public:
  ReplayListerWatcher(std::unique_ptr<ro::kube::ListerWatcher> inner, std::string rv)
      : inner_(std::move(inner)), rv_(std::move(rv)) {}
  ro::kube::ObjectList List(const ro::kube::ListOptions&) override {
    return ro::kube::ObjectList{{}, rv_, "", std::nullopt};
  }
  void Watch(const ro::kube::WatchOptions& options,
             const std::function<void(ro::kube::WatchEvent&&)>& on_event,
             std::stop_token stop) override {
    inner_->Watch(options, on_event, std::move(stop));
  }
  std::string Describe() const override { return "replay " + inner_->Describe(); }

 private:
  std::unique_ptr<ro::kube::ListerWatcher> inner_;
  std::string rv_;
};

void Throughput(DynamicClient& client, int n, int writers) {
  const std::string ns = "bench-throughput";
  CreateNamespace(client, ns);
  std::mutex mu;
  int seen = 0;
  Clock::time_point first;
  Clock::time_point last;
  auto informer = ro::kube::NewSharedInformer(client, kConfigMaps, ns);
  informer->AddEventHandler({[&](const ObjectPtr&) {
                               std::lock_guard lock(mu);
                               const auto now = Clock::now();
                               if (seen++ == 0) first = now;
                               last = now;
                             },
                             nullptr, nullptr});
  informer->Start();
  informer->WaitForCacheSync(std::stop_token{}, 60s);
  const std::string before_rv = informer->LastSyncResourceVersion();

  const auto start = Clock::now();
  CreateMany(client, ns, "cm", n, writers, "x");
  const auto written = Clock::now();
  ro::testenv::WaitFor(
      [&] {
        std::lock_guard lock(mu);
        return seen >= n;
      },
      300s, "every ADDED event");
  const double write_s = std::chrono::duration<double>(written - start).count();
  const double span_s = std::chrono::duration<double>(last - first).count();
  std::printf("watch throughput (live): %d ConfigMaps by %d writers in %.2f s (%.0f creates/s); "
              "events first->last %.2f s = %.0f events/s; last event %.0f ms after last create\n",
              n, writers, write_s, n / write_s, span_s, (n - 1) / span_s,
              std::chrono::duration<double, std::milli>(last - written).count());

  // Replay: an informer whose list is empty at `before_rv` watches from there.
  ReplayListerWatcher replay(ro::kube::NewListerWatcher(client, kConfigMaps, ns), before_rv);
  int replayed = 0;
  Clock::time_point replay_first;
  Clock::time_point replay_last;
  ro::kube::SharedInformer replayer(std::make_unique<ReplayListerWatcher>(std::move(replay)));
  replayer.AddEventHandler({[&](const ObjectPtr&) {
                              std::lock_guard lock(mu);
                              const auto now = Clock::now();
                              if (replayed++ == 0) replay_first = now;
                              replay_last = now;
                            },
                            nullptr, nullptr});
  const auto replay_start = Clock::now();
  replayer.Start();
  ro::testenv::WaitFor(
      [&] {
        std::lock_guard lock(mu);
        return replayed >= n;
      },
      300s, "every replayed ADDED event");
  const double replay_s = std::chrono::duration<double>(replay_last - replay_first).count();
  std::printf("watch throughput (replay): %d events first->last %.3f s = %.0f events/s "
              "(%.0f ms from start to last event)\n",
              n, replay_s, (n - 1) / replay_s,
              std::chrono::duration<double, std::milli>(replay_last - replay_start).count());
}

void Memory(DynamicClient& client, int m, int writers) {
  const std::string ns = "bench-memory";
  CreateNamespace(client, ns);
  CreateMany(client, ns, "cm", m, writers, std::string(kDataBytes, 'd'));

  for (const bool strip : {false, true}) {
    ro::kube::InformerOptions options;
    if (strip) options.reflector.transform = ro::kube::StripManagedFields;
    const std::size_t heap_before = AllocatedBytes();
    const std::size_t rss_before = RssBytes();
    auto informer = ro::kube::NewSharedInformer(client, kConfigMaps, ns, options);
    informer->Start();
    informer->WaitForCacheSync(std::stop_token{}, 300s);
    const std::size_t heap_after = AllocatedBytes();
    const std::size_t rss_after = RssBytes();
    const std::vector<ObjectPtr> objects = informer->store().List();
    std::size_t json_bytes = 0;
    for (const ObjectPtr& o : objects) json_bytes += o->dump().size();
    const double count = static_cast<double>(objects.size());
    std::printf("memory (%s): %zu objects cached; heap in use +%.0f bytes/object, RSS +%.0f "
                "bytes/object; JSON text %.0f bytes/object (heap/JSON = %.2fx)\n",
                strip ? "managedFields stripped" : "as served", objects.size(),
                static_cast<double>(heap_after - heap_before) / count,
                (static_cast<double>(rss_after) - static_cast<double>(rss_before)) / count,
                static_cast<double>(json_bytes) / count,
                static_cast<double>(heap_after - heap_before) / static_cast<double>(json_bytes));
  }
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::stoi(argv[1]) : 3000;
  const int m = argc > 2 ? std::stoi(argv[2]) : 10000;
  const int writers = argc > 3 ? std::stoi(argv[3]) : 32;

  ro::testenv::KubeCluster cluster;
  ro::kube::RestConfig config = ro::kube::LoadKubeconfigFile(cluster.kubeconfig_path().string());
  config.qps = 0;  // measure the apiserver, not our client-side limiter
  DynamicClient client(config);
  std::printf("kube-apiserver %s, etcd on loopback\n", client.ServerVersion().c_str());
  Throughput(client, n, writers);
  Memory(client, m, writers);
  return 0;
}

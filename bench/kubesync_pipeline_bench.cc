// The Kubesync pipeline against harness servers (two kube-apiservers + etcd, NATS
// JetStream, Redis), the components running as the real `kubesync` binary. Prints:
//   - the raw create rate of the destination apiserver for a direct client (N parallel
//     keep-alive workers through DynamicClient, rate limiting off), the reference, with
//     the destination's CPU per create; then the same creates with the synchronizer's
//     control label and annotations, and with a metadata-only watch of them open (what
//     the destination itself spends per replicated object; informative);
//   - the initial sync of `objects` ConfigMaps (objects/s, and % of the raw rate);
//   - what the initial sync could reach on these cores if the pipeline cost only what
//     this bench's own client spends per create (the apiservers' and etcds' CPU per
//     object in the sync, plus the client's per stamped, watched raw create; all cores
//     busy), and the pipeline CPU per object that 80 % of the raw rate leaves;
//   - its cost profile: CPU microseconds per object of every component, nats-server and
//     redis-server (and of the apiservers and etcds, for reference), nats-server's
//     messages and bytes per object, and the requests each apiserver served per object
//     by verb, resource and code (apiserver_request_total);
//   - the replication lag p50/p99/max at steady 200, 500 and 1,000 changes/s (source
//     write sent -> the destination's watch delivers the change), with CPU, nats-server
//     traffic and destination requests per change;
//   - a quiet pipeline's CPU (% of one core, per process, over 20 s);
//   - a no-op resync of every object (seconds, writes the destination apiserver counted:
//     must be 0, CPU per object, and its timeline: the listener's list, the stream filling);
//   - the peak RSS (VmHWM) of each component, and of a synchronizer restarted with every
//     object at the destination (it lists them all before it is ready).
// With nats_servers=3 the pipeline runs on a JetStream cluster of three nats-servers
// (stream and tombstone bucket at 3 replicas; "nats-server" is then the sum of the three,
// traffic included the routes').
// With replicas=N (> 1) the processor and the synchronizer run N processes each (durable
// consumers sharing the messages: the scale-out of components.*.replicas); each replica is
// profiled on its own line and the synchronizers' shares of the creates are printed.
// Targets (docs/kubesync.md, "Performance"): initial sync >= 80 % of the raw rate,
// pipeline CPU <= 250 us per object, lag p99 <= 50 ms at 500 changes/s, a quiet pipeline
// <= 1 % of one core, no-op resync of 10k objects <= 2 s, RSS <= 100 MiB per component.
// Asserts nothing.
//
//   kubesync_pipeline_bench [objects=10000] [workers=32] [lag_seconds=20] [nats_servers=1] [replicas=1]
//                           [data_bytes=0]
// data_bytes > 0 adds a data key of that many bytes to every ConfigMap (raw creates
// included, so the ratios compare the same objects).
#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "ro/common/time.h"
#include "ro/kube/client.h"
#include "ro/kube/config.h"
#include "ro/kube/errors.h"
#include "ro/kube/transport.h"
#include "ro/kubesync/component.h"
#include "ro/kubesync/envelope.h"
#include "ro/kubesync/jetstream.h"
#include "ro/kubesync/redis_state.h"
#include "ro/kubesync/stats.h"
#include "ro/plugins/kubernetes/control_metadata.h"
#include "ro/testenv/testenv.h"
#include "ro/testsupport/kubesync_process.h"

namespace {

namespace te = ro::testenv;
namespace ts = ro::testsupport;
using nlohmann::json;
using ro::kube::GroupVersionResource;
using Steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

const GroupVersionResource kConfigMaps{"", "v1", "configmaps"};
const GroupVersionResource kNamespaces{"", "v1", "namespaces"};
// ConfigMaps per namespace of the synced set (a realistic spread over namespaces).
constexpr int kPerNamespace = 1000;

double Seconds(Steady::duration d) { return std::chrono::duration<double>(d).count(); }

std::unique_ptr<ro::kube::DynamicClient> Client(const te::KubeCluster& cluster) {
  ro::kube::RestConfig config = ro::kube::LoadKubeconfigFile(cluster.kubeconfig_path().string());
  config.qps = 0;  // rate limiting off
  return std::make_unique<ro::kube::DynamicClient>(std::move(config));
}

// A ConfigMap of 8 small keys; `padding` > 0 adds a key of that many bytes (the
// data_bytes argument: larger objects).
json ConfigMap(const std::string& ns, const std::string& name, std::size_t padding) {
  json data = json::object();
  for (int i = 0; i < 8; ++i) data["key-" + std::to_string(i)] = "value-" + std::to_string(i) + "-" + name;
  if (padding > 0) data["padding"] = std::string(padding, 'x');
  return {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", name}, {"namespace", ns}}}, {"data", data}};
}

void CreateNamespace(ro::kube::DynamicClient& client, const std::string& name, json labels) {
  client.Create(kNamespaces, "", {{"apiVersion", "v1"}, {"kind", "Namespace"},
                                  {"metadata", {{"name", name}, {"labels", std::move(labels)}}}});
}

// Creates `count` ConfigMaps (names <prefix>-<i>, spread over `namespaces`) with `workers`
// parallel workers sharing one client; returns the elapsed time.
Steady::duration CreateMany(ro::kube::DynamicClient& client, const std::vector<std::string>& namespaces, int count,
                            int workers, const std::string& prefix, std::size_t padding,
                            const std::function<void(json&, int)>& shape = nullptr) {
  std::atomic<int> next{0};
  const auto start = Steady::now();
  std::vector<std::jthread> threads;
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&] {
      for (int i = next++; i < count; i = next++) {
        const std::string& ns = namespaces[static_cast<std::size_t>(i) % namespaces.size()];
        json object = ConfigMap(ns, prefix + "-" + std::to_string(i), padding);
        if (shape) shape(object, i);
        client.Create(kConfigMaps, ns, object);
      }
    });
  }
  threads.clear();
  return Steady::now() - start;
}

// ConfigMaps in `namespaces` (one limit=1 list per namespace: the server counts).
long CountConfigMaps(ro::kube::DynamicClient& client, const std::vector<std::string>& namespaces) {
  long total = 0;
  for (const std::string& ns : namespaces) {
    ro::kube::ListOptions options;
    options.limit = 1;
    const ro::kube::ObjectList page = client.List(kConfigMaps, ns, options);
    total += static_cast<long>(page.items.size()) + page.remaining_item_count.value_or(0);
  }
  return total;
}

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const auto index = static_cast<std::size_t>(p * static_cast<double>(values.size() - 1));
  return values[index];
}

// CPU time of the processes a figure is about, sampled at the start and end of a phase.
class CpuProfile {
 public:
  void Add(std::string name, pid_t pid) { processes_.push_back({std::move(name), pid}); }
  // Every process's CPU time now (microseconds; 0 when gone).
  std::vector<double> Sample() const {
    std::vector<double> out;
    for (const auto& [name, pid] : processes_) {
      out.push_back(static_cast<double>(te::CpuTime(pid).value_or(std::chrono::microseconds(0)).count()));
    }
    return out;
  }
  const std::vector<std::pair<std::string, pid_t>>& processes() const { return processes_; }

 private:
  std::vector<std::pair<std::string, pid_t>> processes_;
};

// NATS server traffic counters (/varz).
struct NatsTraffic {
  double in_msgs = 0, out_msgs = 0, in_bytes = 0, out_bytes = 0;
};
// Summed over `servers`.
NatsTraffic ReadNatsTraffic(const std::vector<te::NatsServer*>& servers) {
  NatsTraffic total;
  for (const te::NatsServer* nats : servers) {
    const ts::HttpAnswer answer = ts::HttpGet(nats->monitor_port(), "/varz");
    const json varz = json::parse(answer.body, nullptr, false);
    if (!varz.is_object()) continue;
    total.in_msgs += varz.value("in_msgs", 0.0);
    total.out_msgs += varz.value("out_msgs", 0.0);
    total.in_bytes += varz.value("in_bytes", 0.0);
    total.out_bytes += varz.value("out_bytes", 0.0);
  }
  return total;
}

// apiserver_request_total of a cluster's apiserver (/metrics), summed by
// "VERB resource[/subresource] code".
std::map<std::string, double> ApiserverRequests(ro::kube::DynamicClient& client) {
  ro::kube::HttpRequest request;
  request.path = "/metrics";
  request.accept = "text/plain";
  std::map<std::string, double> out;
  std::istringstream lines(client.transport().Do(request).body);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("apiserver_request_total{", 0) != 0) continue;
    // The value of label `name` ("" when absent); labels follow "{" or ",".
    const auto label = [&](const std::string& name) {
      for (const char before : {'{', ','}) {
        const std::string key = before + name + "=\"";
        if (const std::size_t at = line.find(key); at != std::string::npos) {
          const std::size_t from = at + key.size();
          return line.substr(from, line.find('"', from) - from);
        }
      }
      return std::string();
    };
    const std::string sub = label("subresource");
    out[label("verb") + " " + label("resource") + (sub.empty() ? "" : "/" + sub) + " " + label("code")] +=
        std::strtod(line.c_str() + line.rfind(' ') + 1, nullptr);
  }
  return out;
}

// ConfigMap writes (POST, PUT, PATCH, DELETE) the apiserver served so far, from
// ApiserverRequests.
double ConfigMapWrites(ro::kube::DynamicClient& client) {
  double total = 0;
  for (const auto& [key, count] : ApiserverRequests(client)) {
    for (const char* verb : {"POST ", "PUT ", "PATCH ", "DELETE "}) {
      if (key.rfind(std::string(verb) + "configmaps ", 0) == 0) total += count;
    }
  }
  return total;
}

// Prints the requests an apiserver served per `per` units between two readings
// (ApiserverRequests), those of at least 0.01 per unit.
void PrintRequests(const char* title, const std::map<std::string, double>& before,
                   const std::map<std::string, double>& after, double per, const char* unit) {
  std::string line;
  for (const auto& [key, count] : after) {
    const auto it = before.find(key);
    const double delta = (count - (it == before.end() ? 0.0 : it->second)) / per;
    if (delta < 0.01) continue;
    char text[160];
    std::snprintf(text, sizeof(text), "%s%s %.2f", line.empty() ? "" : ", ", key.c_str(), delta);
    line += text;
  }
  std::printf("%-52s per %s: %s\n", title, unit, line.c_str());
}

// Prints, per process of `profile`, the CPU microseconds per unit (`per` units, e.g.
// objects) between two samples, then the pipeline's total (the processes whose names are
// in `pipeline`; none when it is empty).
void PrintCpu(const char* phase, const CpuProfile& profile, const std::vector<double>& before,
              const std::vector<double>& after, double per, const char* unit,
              const std::vector<std::string>& pipeline) {
  double total = 0;
  std::string line;
  for (std::size_t i = 0; i < profile.processes().size(); ++i) {
    const std::string& name = profile.processes()[i].first;
    const double us = (after[i] - before[i]) / per;
    if (std::find(pipeline.begin(), pipeline.end(), name) != pipeline.end()) total += us;
    char item[96];
    std::snprintf(item, sizeof item, "%s%s %.0f", line.empty() ? "" : ", ", name.c_str(), us);
    line += item;
  }
  if (pipeline.empty()) {
    std::printf("%s\n", phase);
  } else {
    std::printf("%-52s %8.0f us/%s (pipeline: components + nats-server + redis-server)\n", phase, total, unit);
  }
  std::printf("    %s\n", line.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  const int objects = argc > 1 ? std::atoi(argv[1]) : 10000;
  const int workers = argc > 2 ? std::atoi(argv[2]) : 32;
  const int lag_seconds = argc > 3 ? std::atoi(argv[3]) : 20;
  const int nats_servers = argc > 4 ? std::atoi(argv[4]) : 1;
  const int replicas = argc > 5 ? std::max(1, std::atoi(argv[5])) : 1;
  const std::size_t padding = argc > 6 ? static_cast<std::size_t>(std::max(0, std::atoi(argv[6]))) : 0;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  ro::kubesync::OpenNatsLibrary();

  std::printf("starting servers...\n");
  auto source_future = std::async(std::launch::async, [] {
    te::KubeClusterOptions options;
    options.name = "source";
    return std::make_unique<te::KubeCluster>(options);
  });
  te::KubeClusterOptions destination_options;
  destination_options.name = "destination";
  auto destination = std::make_unique<te::KubeCluster>(destination_options);
  auto source = source_future.get();
  std::unique_ptr<te::NatsServer> single_nats;
  std::unique_ptr<te::NatsCluster> nats_cluster;
  std::vector<te::NatsServer*> nats_members;
  if (nats_servers > 1) {
    nats_cluster = std::make_unique<te::NatsCluster>(nats_servers);
    for (int i = 0; i < nats_servers; ++i) nats_members.push_back(&nats_cluster->member(i));
  } else {
    single_nats = std::make_unique<te::NatsServer>();
    nats_members.push_back(single_nats.get());
  }
  const std::string nats_url = nats_cluster ? nats_cluster->url() : single_nats->url();
  std::printf("NATS: %d nats-server%s\n", nats_servers, nats_servers > 1 ? "s (one JetStream cluster, 3 replicas)" : "");
  if (padding > 0) std::printf("objects: ConfigMaps with %zu bytes of data more\n", padding);
  te::RedisServer redis;
  auto src = Client(*source);
  auto dst = Client(*destination);

  // 1. The reference: raw create rate of the destination apiserver.
  const int raw_count = std::min(objects, 3000);
  CreateNamespace(*dst, "raw", json::object());
  CpuProfile raw_profile;
  raw_profile.Add("destination apiserver", destination->apiserver().process()->pid());
  raw_profile.Add("destination etcd", destination->etcd().pid());
  raw_profile.Add("client (this bench)", getpid());
  const std::vector<double> raw_cpu_before = raw_profile.Sample();
  const auto raw_took = CreateMany(*dst, {"raw"}, raw_count, workers, "raw", padding);
  const double raw_rate = raw_count / Seconds(raw_took);
  std::printf("%-52s %8.0f objects/s (%d creates, %d workers)\n", "raw create rate, destination apiserver", raw_rate,
              raw_count, workers);
  // The bench client's CPU per stamped, watched create (set below): a bare writer's cost.
  double client_us_per_create = 0;
  // What one create costs the destination when nothing else runs: the reference for the
  // destination apiserver's and etcd's share of the initial sync's CPU below.
  PrintCpu("raw create, CPU per object", raw_profile, raw_cpu_before, raw_profile.Sample(), raw_count, "object", {});
  // The same creates with the label and annotations the synchronizer stamps on what it
  // writes (control_metadata.h), then also with a metadata-only watch of them open (as
  // the synchronizer's applied-state cache keeps one): how much of the destination's cost
  // per replicated object is its larger metadata, and how much the watch. Informative;
  // the ratios below are against the plain rate above.
  for (const bool watched : {false, true}) {
    const ro::plugins::kubernetes::StampInfo stamp =
        ro::plugins::kubernetes::MakeStampInfo("bench", "dr-config", "bench", "source");
    const std::string ns = watched ? "raw-watched" : "raw-stamped";
    CreateNamespace(*dst, ns, json::object());
    std::atomic<int> events{0};
    std::jthread watch;
    if (watched) {
      // From the (empty) namespace's list resourceVersion: every create below is delivered,
      // however late the watch connects.
      const std::string from = dst->List(kConfigMaps, ns).resource_version;
      watch = std::jthread([&, from](std::stop_token stop) {
        ro::kube::WatchOptions options;
        options.resource_version = from;
        options.metadata_only = true;
        options.label_selector = std::string(ro::plugins::kubernetes::kManagedByLabel) + "=" + stamp.managed_by;
        try {
          dst->Watch(kConfigMaps, ns, options, [&](ro::kube::WatchEvent&&) { ++events; }, stop);
        } catch (const std::exception& e) {
          std::fprintf(stderr, "watch: %s\n", e.what());
        }
      });
    }
    const std::vector<double> before = raw_profile.Sample();
    const auto took = CreateMany(*dst, {ns}, raw_count, workers, "raw", padding, [&](json& object, int i) {
      const std::string uid = "6f1c2a3e-0000-4000-8000-" + std::to_string(100000000000 + i);
      const std::string rv = std::to_string(1000000 + i);
      ro::plugins::kubernetes::Stamp(object, stamp, {uid, rv, ""});
    });
    if (watched) te::WaitFor([&] { return events.load() >= raw_count; }, 60s, "the watch events", 20ms);
    const std::vector<double> after = raw_profile.Sample();
    if (watched) client_us_per_create = (after[2] - before[2]) / raw_count;  // "client (this bench)"
    std::printf("%-52s %8.0f objects/s\n",
                watched ? "raw create rate, stamped, watched (metadata)" : "raw create rate, stamped",
                raw_count / Seconds(took));
    PrintCpu(watched ? "raw stamped, watched create, CPU per object" : "raw stamped create, CPU per object", raw_profile,
             before, after, raw_count, "object", {});
  }

  // 2. The source data set.
  std::vector<std::string> namespaces;
  for (int i = 0; i * kPerNamespace < objects; ++i) namespaces.push_back("bench-" + std::to_string(i));
  for (const std::string& ns : namespaces) {
    CreateNamespace(*src, ns, {{"sync", "true"}});
    CreateNamespace(*dst, ns, json::object());
  }
  const auto seed_took = CreateMany(*src, namespaces, objects, workers, "cm", padding);
  std::printf("%-52s %8.0f objects/s (%d creates)\n", "raw create rate, source apiserver (seeding)",
              objects / Seconds(seed_took), objects);

  te::TempDir dir("kubesync-bench");
  const json spec = {
      {"sourceName", "source"},
      {"destinationName", "destination"},
      {"replication",
       {{"resources", json::array({{{"version", "v1"},
                                    {"resource", "configmaps"},
                                    {"filters", {{"namespaceSelector", {{"matchLabels", {{"sync", "true"}}}}}}}}})}}},
      {"components", {{"synchronizer", {{"concurrentTasks", workers}}}}}};
  const auto config_path = dir.path() / "bench.json";
  ro::kubesync::KubesyncConfig kubesync_config =
      ts::MakeKubesyncConfig("dr-config", "bench", spec, *source, *destination, nats_url, redis.address());
  kubesync_config.nats_replicas = nats_servers;
  // As the operator's runners write it (the LiveSynchronization's metadata.generation):
  // the components run the rolling rules of a deployed pipeline.
  kubesync_config.generation = 1;
  ts::WriteKubesyncConfig(config_path, kubesync_config);
  // The components, a further replica of the processor and the synchronizer named
  // "<subcommand>#<n>" (KubesyncPipeline).
  std::vector<std::string> components = {"events-listener", "processor", "synchronizer", "reconciler"};
  for (int r = 2; r <= replicas; ++r) {
    components.push_back("processor#" + std::to_string(r));
    components.push_back("synchronizer#" + std::to_string(r));
  }
  std::vector<std::string> synchronizers;
  for (const std::string& component : components) {
    if (component.rfind("synchronizer", 0) == 0) synchronizers.push_back(component);
  }
  if (replicas > 1) std::printf("replicas: processor %d, synchronizer %d\n", replicas, replicas);
  ts::KubesyncPipeline pipeline(config_path, dir.path(), components);

  // 3. Initial sync: from starting the components to every object at the destination.
  std::vector<std::string> pipeline_processes = components;
  for (std::size_t i = 0; i < nats_members.size(); ++i) {
    pipeline_processes.push_back(nats_members.size() > 1 ? "nats-server-" + std::to_string(i) : "nats-server");
  }
  pipeline_processes.push_back("redis-server");
  // The servers, in current_profile's order after the components.
  const auto add_servers = [&](CpuProfile& out) {
    for (std::size_t i = 0; i < nats_members.size(); ++i) {
      out.Add(nats_members.size() > 1 ? "nats-server-" + std::to_string(i) : "nats-server",
              nats_members[i]->process().pid());
    }
    out.Add("redis-server", redis.process().pid());
    out.Add("source apiserver", source->apiserver().process()->pid());
    out.Add("source etcd", source->etcd().pid());
    out.Add("destination apiserver", destination->apiserver().process()->pid());
    out.Add("destination etcd", destination->etcd().pid());
  };
  // The processes as they are now (a restarted component has another PID).
  const auto current_profile = [&] {
    CpuProfile out;
    for (const std::string& component : components) out.Add(component, pipeline[component].pid());
    add_servers(out);
    return out;
  };
  // Sampled before the components start: they work before they are all ready (the
  // listener publishes its list at once), and a new process starts from 0.
  std::vector<double> sync_cpu_before(components.size(), 0.0);
  {
    CpuProfile servers;
    add_servers(servers);
    for (const double cpu : servers.Sample()) sync_cpu_before.push_back(cpu);
  }
  const NatsTraffic traffic_before = ReadNatsTraffic(nats_members);
  const std::map<std::string, double> source_requests_before = ApiserverRequests(*src);
  const std::map<std::string, double> destination_requests_before = ApiserverRequests(*dst);
  const auto sync_start = Steady::now();
  pipeline.StartAll();
  CpuProfile profile = current_profile();
  te::WaitFor([&] { return CountConfigMaps(*dst, namespaces) >= objects; }, 30min, "the initial sync", 200ms);
  const double sync_rate = objects / Seconds(Steady::now() - sync_start);
  std::printf("%-52s %8.0f objects/s (%.0f %% of raw; %d objects in %.1f s, incl. start-up)\n",
              "initial sync", sync_rate, 100.0 * sync_rate / raw_rate, objects, Seconds(Steady::now() - sync_start));
  const std::vector<double> sync_cpu_after = profile.Sample();
  PrintCpu("initial sync, CPU per object", profile, sync_cpu_before, sync_cpu_after, objects, "object",
           pipeline_processes);
  {
    // The apiservers' and etcds' CPU per object in this sync: what any replicator pays.
    double servers_us = 0;
    for (std::size_t i = 0; i < profile.processes().size(); ++i) {
      const std::string& name = profile.processes()[i].first;
      if (name.find("apiserver") != std::string::npos || name.find("etcd") != std::string::npos) {
        servers_us += (sync_cpu_after[i] - sync_cpu_before[i]) / objects;
      }
    }
    const double core_us = 1e6 * std::max(1U, std::thread::hardware_concurrency());
    const double ceiling = core_us / (servers_us + client_us_per_create);
    std::printf("%-52s %8.0f objects/s (%.0f %% of raw; apiservers + etcds %.0f us/object, client %.0f, %.0f cores)\n",
                "initial sync ceiling, a bare client as the pipeline", ceiling, 100.0 * ceiling / raw_rate, servers_us,
                client_us_per_create, core_us / 1e6);
    std::printf("%-52s %8.0f us/object (all cores busy at 80 %% of raw, less the apiservers' and etcds')\n",
                "pipeline CPU budget for 80 % of raw", core_us / (0.8 * raw_rate) - servers_us);
  }
  {
    const NatsTraffic after = ReadNatsTraffic(nats_members);
    std::printf("%-52s %8.1f messages in, %.1f out; %.0f bytes in, %.0f out (per object)\n",
                "initial sync, nats-server traffic", (after.in_msgs - traffic_before.in_msgs) / objects,
                (after.out_msgs - traffic_before.out_msgs) / objects, (after.in_bytes - traffic_before.in_bytes) / objects,
                (after.out_bytes - traffic_before.out_bytes) / objects);
    // Including this bench's own polls (LIST configmaps, every 200 ms per namespace).
    PrintRequests("initial sync, source apiserver requests", source_requests_before, ApiserverRequests(*src), objects,
                  "object");
    PrintRequests("initial sync, destination apiserver requests", destination_requests_before,
                  ApiserverRequests(*dst), objects, "object");
  }
  {
    // The synchronizers' own view: first to last create (their log timestamps).
    std::vector<std::chrono::system_clock::time_point> creates;
    std::string shares;
    for (const std::string& synchronizer : synchronizers) {
      std::size_t made = 0;
      for (const json& line : pipeline[synchronizer].LogLines()) {
        if (line.value("msg", "") == "object created in cluster") {
          creates.push_back(ro::common::ParseRfc3339(line.value("timestamp", "")));
          ++made;
        }
      }
      shares += (shares.empty() ? "" : ", ") + synchronizer + " " + std::to_string(made);
    }
    std::sort(creates.begin(), creates.end());
    if (synchronizers.size() > 1) std::printf("%-52s %s\n", "initial sync, creates per synchronizer", shares.c_str());
    if (creates.size() > 1) {
      const double span = std::chrono::duration<double>(creates.back() - creates.front()).count();
      std::printf("%-52s %8.0f objects/s (%.0f %% of raw; first to last create, %.1f s)\n",
                  "initial sync, steady create rate", static_cast<double>(creates.size()) / span,
                  100.0 * static_cast<double>(creates.size()) / span / raw_rate, span);
    }
  }

  // 4. Lag at steady change rates: source update sent -> destination watch event.
  ro::kubesync::PipelineNames names("dr-config", "bench");
  ro::kubesync::RedisState state(redis.address(), names.redis_prefix());
  std::atomic<long> seq{0};
  const auto lag_phase = [&](const int changes_per_second) {
  const auto histogram_before = ro::kubesync::ReadStats(state).lag[kConfigMaps.ToString()].buckets;
  std::mutex mu;
  // seq -> (object index, when the source write was sent). Kept until the destination
  // shows that change or a later one of the same object: two changes of one object
  // closer together than the lag may reach the destination as the later one only
  // (superseded, counted apart), which is convergence, not loss.
  struct Pending {
    int object;
    Steady::time_point at;
  };
  std::map<long, Pending> written;
  std::size_t superseded = 0;
  std::vector<double> lags_ms;
  std::stop_source stop_watch;
  ro::kube::ListOptions one;
  one.limit = 1;
  const std::string watch_from = dst->List(kConfigMaps, "", one).resource_version;
  std::jthread watcher([&] {
    ro::kube::WatchOptions options;
    options.resource_version = watch_from;
    auto watch_client = Client(*destination);
    try {
      watch_client->Watch(kConfigMaps, "", options, [&](ro::kube::WatchEvent&& event) {
        const auto now = Steady::now();
        const json& data = event.object["data"];
        if (!data.contains("seq")) return;
        const long change = std::stol(data["seq"].get<std::string>());
        std::lock_guard lock(mu);
        const auto it = written.find(change);
        if (it == written.end()) return;
        lags_ms.push_back(std::max(0.0, std::chrono::duration<double, std::milli>(now - it->second.at).count()));
        const int object = it->second.object;
        written.erase(it);
        for (auto older = written.begin(); older != written.end() && older->first < change;) {
          if (older->second.object == object) {
            older = written.erase(older);
            ++superseded;
          } else {
            ++older;
          }
        }
      }, stop_watch.get_token());
    } catch (const std::exception& e) {
      std::printf("destination watch ended: %s\n", e.what());
    }
  });
  const std::vector<double> cpu_before = profile.Sample();
  const NatsTraffic lag_traffic_before = ReadNatsTraffic(nats_members);
  const std::map<std::string, double> lag_requests_before = ApiserverRequests(*dst);
  {
    const int kLagWriters = std::max(4, changes_per_second / 50);
    std::vector<std::jthread> writers;
    const auto end = Steady::now() + std::chrono::seconds(lag_seconds);
    for (int w = 0; w < kLagWriters; ++w) {
      writers.emplace_back([&, w] {
        std::mt19937 rng(static_cast<unsigned>(w));
        const auto period = std::chrono::duration_cast<Steady::duration>(
            std::chrono::duration<double>(static_cast<double>(kLagWriters) / changes_per_second));
        auto next = Steady::now();
        while (next < end) {
          const int i = std::uniform_int_distribution<int>(0, objects - 1)(rng);
          const std::string& ns = namespaces[static_cast<std::size_t>(i) % namespaces.size()];
          const long n = seq++;
          // Recorded before the write: the destination may show the change before this
          // thread runs again. The lag therefore includes the source write itself.
          {
            std::lock_guard lock(mu);
            written[n] = {i, Steady::now()};
          }
          src->Patch(kConfigMaps, ns, "cm-" + std::to_string(i), ro::kube::PatchType::kMergePatch,
                     json{{"data", {{"seq", std::to_string(n)}}}}.dump());
          next += period;
          std::this_thread::sleep_until(next);  // pacing the load generator
        }
      });
    }
  }
  try {
    te::WaitFor([&] {
      std::lock_guard lock(mu);
      return written.empty();
    }, 60s, "every change at the destination", 50ms);
  } catch (const te::WaitTimeout&) {
    std::lock_guard lock(mu);
    std::printf("%zu changes not at the destination 60 s after the writers stopped (first seq %ld)\n",
                written.size(), written.begin()->first);
  }
  const std::vector<double> cpu_after = profile.Sample();
  const NatsTraffic lag_traffic_after = ReadNatsTraffic(nats_members);
  const std::map<std::string, double> lag_requests_after = ApiserverRequests(*dst);
  stop_watch.request_stop();
  watcher = std::jthread();
  const std::string title = "replication lag at " + std::to_string(changes_per_second) + " changes/s";
  std::printf("%-52s p50 %.1f ms, p99 %.1f ms, max %.1f ms (%zu changes in %d s, %zu superseded)\n",
              title.c_str(), Percentile(lags_ms, 0.5), Percentile(lags_ms, 0.99),
              Percentile(lags_ms, 1.0), lags_ms.size(), lag_seconds, superseded);
  PrintCpu(("  CPU per change at " + std::to_string(changes_per_second) + "/s").c_str(), profile, cpu_before,
           cpu_after, static_cast<double>(std::max<std::size_t>(1, lags_ms.size() + superseded)), "change",
           pipeline_processes);
  {
    const double changes = static_cast<double>(std::max<std::size_t>(1, lags_ms.size() + superseded));
    std::printf("  nats-server traffic at %d/s %*s %.1f messages in, %.1f out; %.0f bytes in, %.0f out (per change)\n",
                changes_per_second, changes_per_second >= 1000 ? 20 : 21, "",
                (lag_traffic_after.in_msgs - lag_traffic_before.in_msgs) / changes,
                (lag_traffic_after.out_msgs - lag_traffic_before.out_msgs) / changes,
                (lag_traffic_after.in_bytes - lag_traffic_before.in_bytes) / changes,
                (lag_traffic_after.out_bytes - lag_traffic_before.out_bytes) / changes);
    PrintRequests(("  destination apiserver requests at " + std::to_string(changes_per_second) + "/s").c_str(),
                  lag_requests_before, lag_requests_after, changes, "change");
  }
  {
    // The synchronizer's histogram (observedAt at the listener -> applied), this phase
    // only: the bucket bounds that hold the 50th and 99th percentile.
    std::map<double, std::uint64_t> after;
    std::uint64_t total = 0;
    const auto read = [&] {
      after = ro::kubesync::ReadStats(state).lag[kConfigMaps.ToString()].buckets;
      total = 0;
      for (auto& [bound, count] : after) {
        const auto it = histogram_before.find(bound);
        count -= it == histogram_before.end() ? 0 : it->second;
        total += count;
      }
      return total >= lags_ms.size();
    };
    try {
      te::WaitFor(read, 10s, "the synchronizer's statistics flushed", 100ms);  // flushed every 500 ms
    } catch (const te::WaitTimeout&) {
      // Report what was flushed.
    }
    const auto quantile = [&](double q) {
      std::uint64_t seen = 0;
      for (const auto& [bound, count] : after) {
        seen += count;
        if (static_cast<double>(seen) >= q * static_cast<double>(total)) return bound * 1000.0;
      }
      return -1.0;
    };
    std::printf("%-52s p50 <= %.0f ms, p99 <= %.0f ms (%llu applied; listener -> synchronizer)\n",
                "replication lag, synchronizer histogram", quantile(0.5), quantile(0.99),
                static_cast<unsigned long long>(total));
  }
  };
  for (const int rate : {200, 500, 1000}) lag_phase(rate);

  // 5. A quiet pipeline: nothing changes; what do its processes cost? (The reconciler's
  // resync and the listener's watches stay open; nothing should poll busily.)
  {
    constexpr auto kQuiet = 20s;
    std::this_thread::sleep_for(5s);  // the last phase's statistics flushes and acks settle
    const std::vector<double> before = profile.Sample();
    std::this_thread::sleep_for(kQuiet);  // the measurement window itself
    const std::vector<double> after = profile.Sample();
    double total = 0;
    std::string line;
    for (std::size_t i = 0; i < profile.processes().size(); ++i) {
      const std::string& name = profile.processes()[i].first;
      const double percent = 100.0 * (after[i] - before[i]) / 1e6 / Seconds(kQuiet);
      if (std::find(pipeline_processes.begin(), pipeline_processes.end(), name) != pipeline_processes.end()) {
        total += percent;
      }
      char item[96];
      std::snprintf(item, sizeof item, "%s%s %.2f", line.empty() ? "" : ", ", name.c_str(), percent);
      line += item;
    }
    std::printf("%-52s %8.2f %% of one core (pipeline: components + nats-server + redis-server, %.0f s)\n",
                "quiet pipeline, CPU", total, Seconds(kQuiet));
    std::printf("    %s\n", line.c_str());
  }

  // 6. A no-op resync of everything: restart the listener without its resume points.
  ts::KubesyncProcess& listener = pipeline["events-listener"];
  listener.Stop();
  state.Delete("rv:" + kConfigMaps.ToString());
  auto probe = ro::kubesync::NatsConnection::Connect(nats_url, "bench-probe");
  const std::uint64_t seq_before = probe->GetStreamState(names.stream()).last_sequence;
  const double writes_before = ConfigMapWrites(*dst);
  // Before the start: the stopped listener counts 0, as its new process starts from.
  const std::vector<double> resync_cpu_before = profile.Sample();
  const auto resync_start = Steady::now();
  listener.Start();
  const double listener_ready = Seconds(Steady::now() - resync_start);
  profile = current_profile();
  // The listener's own view (its log): first list started, last list published (its
  // objects stored in the stream). Earlier runs' lines are before the start.
  const auto wall_start = std::chrono::system_clock::now() -
                          std::chrono::duration_cast<std::chrono::system_clock::duration>(Steady::now() - resync_start);
  double list_started = -1, list_published = -1;
  auto read_listener_log = [&] {
    for (const json& line : listener.LogLines()) {
      const std::string msg = line.value("msg", "");
      if (msg != "listing objects in cluster" && msg != "listed objects in cluster") continue;
      const double at =
          std::chrono::duration<double>(ro::common::ParseRfc3339(line.value("timestamp", "")) - wall_start).count();
      if (at < 0 || line.value("resource", "").find("configmaps") == std::string::npos) continue;
      // The first list's start, the last one's end (one per namespace when selected by label).
      if (msg == "listing objects in cluster" && list_started < 0) list_started = at;
      if (msg == "listed objects in cluster") list_published = at;
    }
  };
  // Done when the listener stored its whole list and both consumers acked everything:
  // the processor acks a message only once its output is stored, so an empty stream then
  // means the synchronizer handled every object. (Lists travel as batches: the stream's
  // message count is not the object count.) The log, which holds every earlier phase's
  // watch events, is read only once the stream is drained: parsing it every poll would
  // take the bench's CPU from the pipeline it measures.
  te::WaitFor(
      [&] {
        const auto stream = probe->GetStreamState(names.stream());
        const auto processor = probe->GetConsumerState(names.stream(), "processor");
        const auto synchronizer = probe->GetConsumerState(names.stream(), "synchronizer");
        const bool drained = stream.last_sequence > seq_before && stream.messages == 0 &&
                             processor.num_pending == 0 && processor.num_ack_pending == 0 &&
                             synchronizer.num_pending == 0 && synchronizer.num_ack_pending == 0;
        if (drained && list_published < 0) read_listener_log();
        return drained && list_published >= 0;
      },
      30min, "the resync drained", 20ms);
  const double resync_seconds = Seconds(Steady::now() - resync_start);
  const std::uint64_t messages = probe->GetStreamState(names.stream()).last_sequence - seq_before;
  std::printf("%-52s listener ready %.2f s, list %.2f -> %.2f s, drained %.2f s; %llu messages for %d objects "
              "(both hops)\n",
              "no-op resync, timeline", listener_ready, list_started, list_published, resync_seconds,
              static_cast<unsigned long long>(messages), objects);
  const double writes = ConfigMapWrites(*dst) - writes_before;
  std::printf("%-52s %8.1f s, %.0f writes at the destination (%d objects, incl. listener start-up)\n",
              "no-op resync", resync_seconds, writes, objects);
  PrintCpu("no-op resync, CPU per object", profile, resync_cpu_before, profile.Sample(), objects, "object",
           pipeline_processes);

  // 7. Memory.
  for (const std::string& component : components) {
    const auto kb = pipeline[component].PeakRssKb();
    std::printf("%-52s %8.1f MiB\n", ("peak RSS (VmHWM) " + component).c_str(),
                kb ? static_cast<double>(*kb) / 1024.0 : -1.0);
  }
  // 8. A synchronizer restarting with every object at the destination: it lists them all
  // before it is ready (its applied-state cache), the peak of a restart at this size.
  {
    ts::KubesyncProcess& synchronizer = pipeline["synchronizer"];
    synchronizer.Stop();
    const auto restart_start = Steady::now();
    synchronizer.Start(std::chrono::minutes{10});
    const double ready_seconds = Seconds(Steady::now() - restart_start);
    const auto kb = synchronizer.PeakRssKb();
    std::printf("%-52s %8.1f MiB (ready in %.1f s, %d objects listed)\n", "synchronizer restart, peak RSS (VmHWM)",
                kb ? static_cast<double>(*kb) / 1024.0 : -1.0, ready_seconds, objects);
  }
  pipeline.StopAll();
  probe.reset();
  ro::kubesync::CloseNatsLibrary();
  return 0;
}

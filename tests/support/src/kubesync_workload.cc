#include "ro/testsupport/kubesync_workload.h"

#include <chrono>
#include <random>
#include <utility>

#include "ro/kube/errors.h"
#include "ro/testsupport/clients.h"

namespace ro::testsupport {

using nlohmann::json;
using Steady = std::chrono::steady_clock;

json WorkloadConfigMap(const std::string& ns, const std::string& name, int version) {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"namespace", ns}}},
          {"data", {{"version", std::to_string(version)}, {"payload", std::string(200, 'x')}}}};
}

json WorkloadDeployment(const std::string& ns, const std::string& name, int version) {
  return {{"apiVersion", "apps/v1"},
          {"kind", "Deployment"},
          {"metadata", {{"name", name}, {"namespace", ns}, {"labels", {{"version", std::to_string(version)}}}}},
          {"spec",
           {{"replicas", 1 + version % 3},
            {"selector", {{"matchLabels", {{"app", name}}}}},
            {"template",
             {{"metadata", {{"labels", {{"app", name}}}}},
              {"spec", {{"containers", json::array({{{"name", "main"}, {"image", "nginx:1." + std::to_string(version % 30)}}})}}}}}}}};
}

WorkloadWriter::WorkloadWriter(const testenv::KubeCluster& source, WorkloadOptions options)
    : options_(std::move(options)), targets_(static_cast<std::size_t>(options_.writers)) {
  for (int w = 0; w < options_.writers; ++w) clients_.push_back(AdminClient(source));
  // Targets dealt round-robin to the writers: each object has exactly one writer.
  std::size_t n = 0;
  for (const std::string& ns : options_.namespaces) {
    for (int i = 0; i < options_.config_maps_per_namespace; ++i) {
      targets_[n++ % targets_.size()].push_back({&kWorkloadConfigMaps, ns, "cm-" + std::to_string(i)});
    }
    for (int i = 0; i < options_.deployments_per_namespace; ++i) {
      targets_[n++ % targets_.size()].push_back({&kWorkloadDeployments, ns, "deploy-" + std::to_string(i)});
    }
  }
}

WorkloadWriter::~WorkloadWriter() { Stop(); }

void WorkloadWriter::Start() {
  if (!threads_.empty()) return;
  for (std::size_t w = 0; w < targets_.size(); ++w) {
    threads_.emplace_back([this, w](std::stop_token stop) { WriterMain(w, stop); });
  }
}

void WorkloadWriter::Stop() {
  for (auto& thread : threads_) thread.request_stop();
  threads_.clear();  // joins
}

void WorkloadWriter::WriterMain(std::size_t writer, std::stop_token stop) {
  kube::DynamicClient& client = *clients_[writer];
  std::vector<Target>& targets = targets_[writer];
  if (targets.empty()) return;
  // A different sequence on every start, reproducible per writer.
  std::mt19937 rng(options_.seed + static_cast<unsigned>(writer) * 7919u + static_cast<unsigned>(ops_.load()));
  const double rate = options_.ops_per_second / static_cast<double>(targets_.size());
  const auto period = std::chrono::duration_cast<Steady::duration>(std::chrono::duration<double>(1.0 / rate));
  auto next = Steady::now();
  while (!stop.stop_requested()) {
    Target& t = targets[std::uniform_int_distribution<std::size_t>(0, targets.size() - 1)(rng)];
    const bool is_cm = t.gvr == &kWorkloadConfigMaps;
    try {
      ++t.version;
      if (!t.exists) {
        client.Create(*t.gvr, t.ns, is_cm ? WorkloadConfigMap(t.ns, t.name, t.version)
                                          : WorkloadDeployment(t.ns, t.name, t.version));
        t.exists = true;
      } else if (std::uniform_int_distribution<int>(0, 9)(rng) < 7) {
        const json object = is_cm ? WorkloadConfigMap(t.ns, t.name, t.version) : WorkloadDeployment(t.ns, t.name, t.version);
        client.Patch(*t.gvr, t.ns, t.name, kube::PatchType::kMergePatch, object.dump());
      } else {
        client.Delete(*t.gvr, t.ns, t.name);
        t.exists = false;
      }
      ++ops_;
    } catch (const kube::ApiError& e) {
      ++failures_;
      if (e.reason() == kube::StatusReason::kAlreadyExists) t.exists = true;
      if (e.reason() == kube::StatusReason::kNotFound) t.exists = false;
    } catch (const kube::TransportError&) {
      ++failures_;
    }
    next += period;
    // A writer held up by a fault resumes at its rate instead of catching up in a burst.
    if (const auto now = Steady::now(); next < now - std::chrono::seconds{1}) next = now;
    // Pacing a load generator (not waiting for a condition): a fixed request rate.
    std::this_thread::sleep_until(next);
  }
}

}  // namespace ro::testsupport

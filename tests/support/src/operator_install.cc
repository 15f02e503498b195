#include "ro/testsupport/operator_install.h"

#include <map>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "ro/kube/errors.h"
#include "ro/testenv/paths.h"
#include "ro/testenv/process.h"
#include "ro/testenv/wait.h"

namespace ro::testsupport {

namespace fs = std::filesystem;
namespace te = testenv;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

const kube::GroupVersionResource kDeployments{"apps", "v1", "deployments"};

// Pods and containers of the whole operator start in ~10 s on 2 busy cores; generous.
constexpr auto kControllersTimeout = 300s;
// Cold: two mmdebstrap runs and four podman builds.
constexpr auto kImageBuildTimeout = 1800s;

}  // namespace

const std::vector<std::string>& OperatorControllers() {
  static const std::vector<std::string> controllers = {"bucket",          "database",           "kubernetescluster",
                                                       "livesynchronization", "synchronization", "synchronizationplan",
                                                       "task",            "taskrun"};
  return controllers;
}

fs::path OperatorBinDir() {
  fs::path bin = te::SourceDir() / "build" / "release" / "bin";
  if (const char* dir = std::getenv("RO_OPERATOR_BIN_DIR"); dir != nullptr && *dir != '\0') bin = dir;
  std::vector<std::string> programs = {"kubesync", "audit-webhook"};
  for (const std::string& c : OperatorControllers()) programs.push_back(c + "-controller");
  for (const std::string& program : programs) {
    if (!fs::exists(bin / program)) {
      throw std::runtime_error("no " + (bin / program).string() +
                               ": build the Release product first (cmake -S . -B build/release -G Ninja "
                               "-DCMAKE_BUILD_TYPE=Release && cmake --build build/release --target kubesync "
                               "ro_controller_binaries; scripts/test.sh does it) or set RO_OPERATOR_BIN_DIR");
    }
  }
  return bin;
}

void BuildAndImportImages(const te::KubeCluster& cluster, const fs::path& bin_dir) {
  const std::string script = (te::SourceDir() / "scripts/build-image.sh").string();
  te::RunOptions run;
  run.timeout = kImageBuildTimeout;
  te::RunCommand({script, "--binaries", bin_dir.string(), "operator", "nats", "redis", "busybox"}, run);
  std::map<std::string, fs::path> archives;
  std::istringstream list(te::RunCommand({script, "--list"}).out);
  std::string target, reference, archive;
  while (list >> target >> reference >> archive) archives[target] = archive;
  for (const char* t : {"operator", "nats", "redis", "busybox"}) {
    auto it = archives.find(t);
    if (it == archives.end() || !fs::exists(it->second)) {
      throw std::runtime_error(std::string("scripts/build-image.sh --list names no ") + t + " archive that exists");
    }
    cluster.ImportImage(it->second);
  }
}

std::string LicenseSecret(const std::string& licensee) {
  return json{{"apiVersion", "v1"},
              {"kind", "Secret"},
              {"metadata", {{"name", "license-key"}, {"namespace", kOperatorNamespace}}},
              {"type", "Opaque"},
              {"stringData", {{"license", "licensee: " + licensee + "\nexpiresAt: 2099-01-01T00:00:00Z\n"}}}}
      .dump();
}

std::chrono::milliseconds InstallOperator(const te::KubeCluster& cluster, kube::DynamicClient& client,
                                          const std::string& licensee) {
  cluster.Kubectl({"create", "namespace", kOperatorNamespace});
  cluster.Kubectl({"-n", kOperatorNamespace, "create", "-f", "-"}, LicenseSecret(licensee));
  cluster.Kubectl({"apply", "-f", (te::SourceDir() / "deploy/crds/all.yaml").string()});
  cluster.Kubectl({"wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"});
  const auto applied = Clock::now();
  cluster.Kubectl({"-n", kOperatorNamespace, "apply", "-k", (te::SourceDir() / "deploy/overlays/local-images").string()});
  for (const std::string& c : OperatorControllers()) {
    WaitForRollout(cluster, client, kOperatorNamespace, "resiliency-operator-" + c + "-controller",
                   kControllersTimeout);
  }
  WaitForRollout(cluster, client, kOperatorNamespace, "resiliency-operator-audit-webhook", kControllersTimeout);
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - applied);
}

void WaitForRollout(const te::KubeCluster& cluster, kube::DynamicClient& client, const std::string& ns,
                    const std::string& name, std::chrono::milliseconds timeout) {
  std::string last = "(no Deployment)";
  try {
    te::WaitFor(
        [&] {
          json d;
          try {
            d = client.Get(kDeployments, ns, name);
          } catch (const kube::ApiError& e) {
            if (e.reason() == kube::StatusReason::kNotFound) return false;
            throw;
          }
          const json status = d.value("status", json::object());
          const int want = d["spec"].value("replicas", 1);
          last = status.dump();
          return status.value("observedGeneration", int64_t{0}) >= d["metadata"].value("generation", int64_t{0}) &&
                 status.value("updatedReplicas", 0) == want && status.value("availableReplicas", 0) == want &&
                 status.value("replicas", 0) == want;
        },
        timeout, "Deployment " + ns + "/" + name + " rolled out", 500ms);
  } catch (const te::WaitTimeout& e) {
    throw std::runtime_error(std::string(e.what()) + "; status: " + last + "\npods:\n" +
                             cluster.Kubectl({"-n", ns, "get", "pods", "-o", "wide"}) + "events:\n" +
                             cluster.Kubectl({"-n", ns, "get", "events", "--sort-by=.lastTimestamp"}));
  }
}

}  // namespace ro::testsupport

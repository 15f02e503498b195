// Shared set-up of the LiveSynchronization end-to-end tests (tests/e2e/livesync_*_test.cc):
// the manual's 2-cluster architecture with real servers. Cluster 1 is the source;
// cluster 2 is the destination and also runs the operator: the CRDs of deploy/crds/ and
// the controllers as their REAL binaries (kubernetescluster-controller, optionally
// bucket-controller, livesynchronization-controller with the chosen component runner).
// Users' steps run the real kubectl, as the tutorials write them.
//
// Header-only on purpose: every e2e file is its own binary (tests/CMakeLists.txt).
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ro/kube/client.h"
#include "ro/kube/config.h"
#include "ro/kube/errors.h"
#include "ro/plugins/kubernetes/control_metadata.h"
#include "ro/plugins/kubernetes/live_sync_config.h"
#include "ro/testenv/testenv.h"
#include "ro/testsupport/clients.h"
#include "ro/testsupport/controller_process.h"
#include "ro/testsupport/kubesync_expect.h"
#include "ro/testsupport/kubesync_process.h"
#include "ro/testsupport/objects.h"
#include "ro/testsupport/yaml.h"

namespace livesync_e2e {

namespace fs = std::filesystem;
namespace te = ro::testenv;
namespace ts = ro::testsupport;
namespace k8s = ro::plugins::kubernetes;
using nlohmann::json;
using ro::kube::GroupVersionResource;
using namespace std::chrono_literals;

// Generous for 2 busy cores: a reconcile is a few local round trips, replication well
// under a second, but two apiservers, etcd, NATS, Redis and the components share them.
constexpr auto kEventually = 120s;
// Polling whole-cluster comparisons faster only loads the apiservers.
constexpr auto kComparePoll = 500ms;

const GroupVersionResource kLiveSyncs{"automation.astronetes.io", "v1alpha1", "livesynchronizations"};
const GroupVersionResource kTasks{"automation.astronetes.io", "v1alpha1", "tasks"};
const GroupVersionResource kTaskRuns{"automation.astronetes.io", "v1alpha1", "taskruns"};
const GroupVersionResource kDeployments{"apps", "v1", "deployments"};
const GroupVersionResource kServices{"", "v1", "services"};
const GroupVersionResource kSecrets{"", "v1", "secrets"};
const GroupVersionResource kConfigMaps{"", "v1", "configmaps"};
const GroupVersionResource kRoles{"rbac.authorization.k8s.io", "v1", "roles"};
const GroupVersionResource kRoleBindings{"rbac.authorization.k8s.io", "v1", "rolebindings"};
const GroupVersionResource kServiceAccounts{"", "v1", "serviceaccounts"};
const GroupVersionResource kIngresses{"networking.k8s.io", "v1", "ingresses"};
const std::vector<GroupVersionResource> kTutorialKinds{kDeployments,  kServices,        kSecrets,  kRoles,
                                                       kRoleBindings, kServiceAccounts, kIngresses};

using ts::AdminClient;  // ro/testsupport/clients.h

inline std::string ReadSample(const std::string& file) {
  return te::ReadFile(te::SourceDir() / "tests" / "samples" / file);
}

// A Database sample of tutorial 8.3 with its server list replaced by `server` (the
// tutorial leaves "<zookeeper_ip>:<zookeeper_port>" to the reader).
inline std::string DatabaseSample(const std::string& file, const std::string& server) {
  const std::regex servers(R"((\n\s*servers:\n)(\s*- [^\n]+\n?)+)");
  return std::regex_replace(ReadSample(file), servers, "$1        - " + server + "\n");
}

using ts::ControllerProcess;

// One controller binary of the build, with its probes on reserved loopback ports.
inline std::unique_ptr<ControllerProcess> StartController(const std::string& binary, const fs::path& kubeconfig,
                                                          const fs::path& dir, const fs::path& license,
                                                          std::vector<std::string> extra_args) {
  ts::ControllerProcessOptions options;
  options.binary = binary;
  options.kubeconfig = kubeconfig;
  options.dir = dir;
  options.license_file = license;
  options.args = std::move(extra_args);
  return std::make_unique<ControllerProcess>(std::move(options));
}

// Waits until `destination` holds exactly expected(`source`) for every kind of
// `spec_config` (the LiveSynchronization ls_ns/ls_name) in `namespaces`
// (ro::testsupport::CompareClusters), object by object, and then that no destination
// object records an older source resourceVersion than the source's. Adds a failure per
// kind that does not converge within `timeout`.
inline void ExpectConverged(ro::kube::DynamicClient& source, ro::kube::DynamicClient& destination,
                            const std::string& ls_ns, const std::string& ls_name, const json& spec_config,
                            const std::vector<std::string>& namespaces,
                            std::chrono::milliseconds timeout = kEventually) {
  const k8s::LiveSyncConfig config = k8s::ParseLiveSyncConfig(spec_config);
  const k8s::StampInfo stamp = k8s::MakeStampInfo(ls_ns, ls_name, ls_ns, config.source_name);
  for (const GroupVersionResource& gvr : config.DistinctGvrs()) {
    ts::Convergence last;
    try {
      te::WaitFor(
          [&] {
            last = ts::CompareClusters(source, destination, config, stamp, gvr, namespaces);
            return last.converged();
          },
          timeout, "destination == expected(source) for " + gvr.ToString(), kComparePoll);
    } catch (const te::WaitTimeout&) {
      ADD_FAILURE() << ls_ns << "/" << ls_name << " " << gvr.ToString() << " did not converge: " << last.Summary();
      continue;
    }
    const std::vector<std::string> stale = ts::StaleDestinationObjects(source, destination, stamp, gvr, namespaces);
    if (!stale.empty()) ADD_FAILURE() << gvr.ToString() << ": stale destination objects, e.g. " << stale.front();
  }
}

// Cluster 1 of the tutorials: the source. It runs the controllers that create every
// namespace's "default" ServiceAccount and its token Secret, which the tutorials must not
// copy.
inline te::KubeClusterOptions SourceClusterOptions() {
  te::KubeClusterOptions o;
  o.name = "cluster1";
  o.with_controller_manager = true;
  o.controllers = {"serviceaccount", "serviceaccount-token", "garbagecollector", "namespace"};
  // A user for RBAC-limited kubeconfigs (least privilege, livesync_security_test).
  o.users = {{"kubesync-reader", {}}};
  return o;
}

struct EnvOptions {
  std::string label = "livesync";
  // "local" or "deployments".
  std::string runner = "local";
  bool two_clusters = true;  // false: the source is the destination cluster itself
  bool s3 = false;           // an S3 server and the bucket-controller
  bool tasks = false;        // the task-controller and the taskrun-controller (recovery)
  // The synchronization-controller (it runs Backups) and cluster 2's namespace
  // controller (a drill's cleanup deletes namespaces): roctl drill. Needs s3 and tasks.
  bool drills = false;
};

// The 2-cluster architecture of manual 6.2.1 with the operator running on cluster 2.
class Env {
 public:
  explicit Env(EnvOptions options) : options_(std::move(options)), dir_(options_.label) {
    std::future<std::unique_ptr<te::KubeCluster>> source_start;
    if (options_.two_clusters) {
      source_start = std::async(std::launch::async, [] { return std::make_unique<te::KubeCluster>(SourceClusterOptions()); });
    }
    te::KubeClusterOptions o;
    o.name = "cluster2";
    o.users = {{"kubesync-writer", {}}};
    if (options_.drills) {
      o.with_controller_manager = true;
      o.controllers = {"namespace", "garbagecollector"};
    }
    destination_ = std::make_unique<te::KubeCluster>(o);
    if (options_.s3) s3_ = std::make_unique<te::S3Server>();
    source_owned_ = options_.two_clusters ? source_start.get() : nullptr;
    destination_client_ = AdminClient(*destination_);
    source_client_ = AdminClient(source());

    destination_->Kubectl({"apply", "-f", (te::SourceDir() / "deploy/crds/all.yaml").string()});
    destination_->Kubectl({"wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"});

    const fs::path license = dir_.path() / "license";
    te::WriteFile(license, "licensee: LiveSynchronization e2e\nexpiresAt: 2099-01-01T00:00:00Z\n");
    const fs::path kubeconfig = destination_->kubeconfig_path();
    clusters_controller_ = StartController("kubernetescluster-controller", kubeconfig,
                                                               dir_.path(), license,
                                                               std::vector<std::string>{"--recheck-interval=5s"});
    if (options_.s3) {
      buckets_controller_ = StartController("bucket-controller", kubeconfig, dir_.path(), license,
                                                                std::vector<std::string>{"--recheck-interval=5s"});
    }
    if (options_.tasks) {
      task_controller_ = StartController("task-controller", kubeconfig, dir_.path(), license, {});
      taskrun_controller_ = StartController("taskrun-controller", kubeconfig, dir_.path(), license, {});
    }
    if (options_.drills) {
      backups_controller_ = StartController("synchronization-controller", kubeconfig, dir_.path(), license,
                                            std::vector<std::string>{"--pending-recheck=1s"});
    }
    std::vector<std::string> args = {"--component-runner=" + options_.runner, "--status-refresh-interval=2s",
                                     "--discovery-timeout=5s"};
    if (options_.runner == "local") {
      args.push_back("--runtime-dir=" + runtime_dir().string());
      args.push_back("--kubesync-binary=" + (te::BinDir() / "kubesync").string());
    }
    live_sync_controller_ = StartController("livesynchronization-controller", kubeconfig,
                                                                dir_.path(), license, args);
  }

  ~Env() {
    // Controllers first (the livesynchronization controller stops its components), then
    // the servers they talk to.
    live_sync_controller_.reset();
    backups_controller_.reset();
    taskrun_controller_.reset();
    task_controller_.reset();
    buckets_controller_.reset();
    clusters_controller_.reset();
    source_client_.reset();
    destination_client_.reset();
    s3_.reset();
    destination_.reset();
    source_owned_.reset();
  }

  te::KubeCluster& source() { return source_owned_ ? *source_owned_ : *destination_; }
  te::KubeCluster& destination() { return *destination_; }
  ro::kube::DynamicClient& source_client() { return *source_client_; }
  ro::kube::DynamicClient& destination_client() { return *destination_client_; }
  te::S3Server& s3() { return *s3_; }
  ControllerProcess& controller() { return *live_sync_controller_; }
  const fs::path& dir() const { return dir_.path(); }
  fs::path runtime_dir() const { return dir_.path() / "runtime"; }

  // A user's working directory for LiveSynchronizations in namespace `ns` of cluster 2,
  // as the tutorials assume it: the two clusters' kubeconfig files saved as
  // cluster-1-kubeconfig.yaml and cluster-2-kubeconfig.yaml, and a kubectl context on
  // cluster 2 whose namespace is `ns` (created here: the tutorials' prerequisite).
  fs::path UserWorkdir(const std::string& ns) {
    const fs::path workdir = dir_.path() / ("user-" + ns);
    fs::create_directories(workdir);
    te::WriteFile(workdir / "cluster-1-kubeconfig.yaml", te::ReadFile(source().kubeconfig_path()), 0600);
    te::WriteFile(workdir / "cluster-2-kubeconfig.yaml", te::ReadFile(destination_->kubeconfig_path()), 0600);
    te::WriteFile(workdir / "kubeconfig", te::ReadFile(destination_->kubeconfig_path()), 0600);
    UserCommand(workdir, "kubectl create namespace " + ns);
    UserCommand(workdir, "kubectl config set-context --current --namespace=" + ns);
    return workdir;
  }

  // Runs `command` with sh in `workdir`, kubectl talking to cluster 2 in the user's
  // namespace (KUBECONFIG=<workdir>/kubeconfig). Returns stdout; throws on failure.
  std::string UserCommand(const fs::path& workdir, const std::string& command) {
    te::RunOptions options;
    options.env = {{"KUBECONFIG", (workdir / "kubeconfig").string()}};
    return te::RunCommand({"sh", "-c", "cd '" + workdir.string() + "' && " + command}, options).out;
  }

  // The manual's "Import the first/second cluster" and "Synchronize the clusters" steps
  // (8.1 / 8.2) verbatim: secrets from the kubeconfig files, the KubernetesClusters
  // cluster-1 and cluster-2, and `kubectl apply -f livesync.yaml` with `livesync_sample`.
  void RunTutorial(const fs::path& workdir, const std::string& livesync_sample) {
    te::WriteFile(workdir / "cluster-1.yaml", ReadSample("8.1-kubernetescluster-cluster-1.yaml"));
    te::WriteFile(workdir / "cluster-2.yaml", ReadSample("8.1-kubernetescluster-cluster-2.yaml"));
    te::WriteFile(workdir / "livesync.yaml", ReadSample(livesync_sample));
    UserCommand(workdir,
                "kubectl create secret generic cluster-1-kubeconfig "
                "--from-file=kubeconfig.yaml=cluster-1-kubeconfig.yaml");
    UserCommand(workdir, "kubectl create -f cluster-1.yaml");
    UserCommand(workdir,
                "kubectl create secret generic cluster-2-kubeconfig "
                "--from-file=kubeconfig.yaml=cluster-2-kubeconfig.yaml");
    UserCommand(workdir, "kubectl create -f cluster-2.yaml");
    UserCommand(workdir, "kubectl apply -f livesync.yaml");
  }

  std::optional<json> LiveSync(const std::string& ns, const std::string& name) {
    return destination_client_->GetIfExists(kLiveSyncs, ns, name);
  }

  // The Ready condition of LiveSynchronization ns/name (null when absent).
  json ReadyCondition(const std::string& ns, const std::string& name) {
    const std::optional<json> ls = LiveSync(ns, name);
    if (!ls) return json();
    for (const json& c : ls->value("status", json::object()).value("conditions", json::array())) {
      if (c.value("type", "") == "Ready") return c;
    }
    return json();
  }

  // Waits until Ready has `status` and `reason` for the current generation; returns the
  // condition. Fails the test (with the last condition seen) on timeout.
  json WaitForReady(const std::string& ns, const std::string& name, const std::string& status,
                    const std::string& reason, std::chrono::milliseconds timeout = kEventually) {
    json last;
    try {
      te::WaitFor(
          [&] {
            const std::optional<json> ls = LiveSync(ns, name);
            if (!ls) return false;
            last = ReadyCondition(ns, name);
            const int64_t generation = (*ls)["metadata"].value("generation", int64_t{0});
            return last.is_object() && last.value("status", "") == status && last.value("reason", "") == reason &&
                   last.value("observedGeneration", int64_t{0}) == generation;
          },
          timeout, "LiveSynchronization " + ns + "/" + name + " Ready=" + status + " " + reason, 200ms);
    } catch (const te::WaitTimeout&) {
      ADD_FAILURE() << ns << "/" << name << " never had Ready=" << status << " (" << reason
                    << "); last condition: " << last.dump();
    }
    return last;
  }

  // Events about `name` in `ns` of cluster 2.
  std::vector<json> EventsAbout(const std::string& ns, const std::string& name) {
    const json list = json::parse(destination_->Kubectl(
        {"-n", ns, "get", "events", "--field-selector", "involvedObject.name=" + name, "-o", "json"}));
    return list.value("items", json::array()).get<std::vector<json>>();
  }
  bool HasEvent(const std::string& ns, const std::string& name, const std::string& type, const std::string& reason) {
    for (const json& event : EventsAbout(ns, name)) {
      if (event.value("type", "") == type && event.value("reason", "") == reason) return true;
    }
    return false;
  }

  // The controller logged a condition change of ns/name to `reason`.
  bool LoggedCondition(const std::string& ns, const std::string& name, const std::string& reason) {
    for (const json& line : live_sync_controller_->LogLines("condition changed")) {
      if (line.value("object", json::object()).value("name", "") == name &&
          line.value("object", json::object()).value("namespace", "") == ns &&
          line.value("condition", json::object()).value("reason", "") == reason) {
        return true;
      }
    }
    return false;
  }

  // status.components[] entry `component` of ns/name (null when absent).
  json Component(const std::string& ns, const std::string& name, const std::string& component) {
    const std::optional<json> ls = LiveSync(ns, name);
    if (!ls) return json();
    for (const json& c : ls->value("status", json::object()).value("components", json::array())) {
      if (c.value("name", "") == component) return c;
    }
    return json();
  }

  // PIDs the local runner lists in a component's message ("pid 42", "pids 42, 43").
  std::vector<pid_t> ComponentPids(const std::string& ns, const std::string& name, const std::string& component) {
    const json c = Component(ns, name, component);
    std::vector<pid_t> pids;
    const std::string message = c.is_object() ? c.value("message", "") : "";
    if (message.rfind("pid", 0) != 0) return pids;
    std::size_t at = message.find(' ');
    while (at != std::string::npos && at + 1 < message.size() && std::isdigit(message[at + 1])) {
      pids.push_back(static_cast<pid_t>(std::stol(message.substr(at + 1))));
      at = message.find(", ", at + 1);
      if (at != std::string::npos) at += 1;
    }
    return pids;
  }

  // Waits until the destination holds exactly expected(source) for every kind of
  // `spec_config` in `namespaces` (ro::testsupport::CompareClusters).
  void ExpectConverges(const std::string& ls_ns, const std::string& ls_name, const json& spec_config,
                       const std::vector<std::string>& namespaces) {
    ExpectConverged(*source_client_, *destination_client_, ls_ns, ls_name, spec_config, namespaces);
  }

  // Deletes LiveSynchronization ns/name (if present) and waits until it is gone.
  void DeleteLiveSync(const std::string& ns, const std::string& name) {
    destination_->Kubectl({"-n", ns, "delete", "livesynchronization", name, "--ignore-not-found", "--wait=false"});
    te::WaitFor([&] { return !LiveSync(ns, name); }, kEventually, "LiveSynchronization " + ns + "/" + name + " gone",
                200ms);
  }

 private:
  EnvOptions options_;
  te::TempDir dir_;
  std::unique_ptr<te::KubeCluster> source_owned_;
  std::unique_ptr<te::KubeCluster> destination_;
  std::unique_ptr<te::S3Server> s3_;
  std::unique_ptr<ro::kube::DynamicClient> source_client_;
  std::unique_ptr<ro::kube::DynamicClient> destination_client_;
  std::unique_ptr<ControllerProcess> clusters_controller_;
  std::unique_ptr<ControllerProcess> buckets_controller_;
  std::unique_ptr<ControllerProcess> task_controller_;
  std::unique_ptr<ControllerProcess> taskrun_controller_;
  std::unique_ptr<ControllerProcess> backups_controller_;
  std::unique_ptr<ControllerProcess> live_sync_controller_;
};

// ---- a sample application (the tutorials' kinds) ----

// Meta, Deployment, Service, Secret...: ro/testsupport/objects.h.
using ts::Deployment;
using ts::Meta;
using ts::Secret;
using ts::Service;

// Deployment `web` (2 replicas), Service `web`, Secret `web-config`, ServiceAccount
// `web`, Role `web-reader`, RoleBinding `web-reader`, Ingress `web` in namespace `ns`
// of the source (labelled sync=true), and namespace `ns` in the destination too (unless
// `destination_namespace` is false: an empty standby), as a user of the tutorials does
// when the standby is not empty (they have no forceNamespaceCreation).
// CreateSampleApplication(env, ns) does it for an Env's two clusters.
inline void CreateSampleApplicationIn(te::KubeCluster& source, te::KubeCluster& destination, const std::string& ns,
                                      bool destination_namespace = true) {
  source.Kubectl({"create", "namespace", ns});
  source.Kubectl({"label", "namespace", ns, "sync=true"});
  if (destination_namespace) destination.Kubectl({"create", "namespace", ns});
  json role = {{"apiVersion", "rbac.authorization.k8s.io/v1"},
               {"kind", "Role"},
               {"metadata", Meta(ns, "web-reader")},
               {"rules", json::array({{{"apiGroups", {""}}, {"resources", {"configmaps"}}, {"verbs", {"get"}}}})}};
  json binding = {{"apiVersion", "rbac.authorization.k8s.io/v1"},
                  {"kind", "RoleBinding"},
                  {"metadata", Meta(ns, "web-reader")},
                  {"roleRef", {{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "Role"}, {"name", "web-reader"}}},
                  {"subjects", json::array({{{"kind", "ServiceAccount"}, {"name", "web"}, {"namespace", ns}}})}};
  json path = {{"path", "/"},
               {"pathType", "Prefix"},
               {"backend", {{"service", {{"name", "web"}, {"port", {{"number", 80}}}}}}}};
  json ingress = {{"apiVersion", "networking.k8s.io/v1"},
                  {"kind", "Ingress"},
                  {"metadata", Meta(ns, "web")},
                  {"spec", {{"rules", json::array({{{"host", "web.example.com"}, {"http", {{"paths", {path}}}}}})}}}};
  json items = json::array({Deployment(ns, "web", 2), Service(ns, "web"), Secret(ns, "web-config", "v1"),
                            {{"apiVersion", "v1"}, {"kind", "ServiceAccount"}, {"metadata", Meta(ns, "web")}},
                            role, binding, ingress});
  source.Kubectl({"apply", "-f", "-"}, json{{"apiVersion", "v1"}, {"kind", "List"}, {"items", items}}.dump());
}
inline void CreateSampleApplication(Env& env, const std::string& ns, bool destination_namespace = true) {
  CreateSampleApplicationIn(env.source(), env.destination(), ns, destination_namespace);
}

}  // namespace livesync_e2e

// The controller runtime as the binaries run it (docs/runtime.md): leader election
// between two instances of one binary, hand-over and exit status on SIGTERM, exit 1
// when the Lease is lost, /readyz before and after the informers sync, and /metrics.
// Real kube-apiserver (tests/testenv); the binaries are the build's synchronization-controller
// (its Synchronizations name Databases that do not exist: Ready=False DatabaseNotFound) and
// synchronizationplan-controller (an hourly plan: Ready=True Scheduled, nothing due), which
// exercise little but the shared runtime.

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "ro/testenv/testenv.h"
#include "ro/testsupport/controller_process.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ro::testenv::KubeCluster;
using ro::testenv::PortLease;
using ro::testenv::Process;

constexpr std::chrono::seconds kTimeout{90};
constexpr const char* kNamespace = "runtime-test";
constexpr const char* kLeaseNamespace = "resiliency-operator";
// Short leader-election timings so that a test does not wait for client-go's 15 s
// defaults; the ratios keep the elector's constraints (lease > renew > 1.2 * retry).
const std::vector<std::string> kFastLeaderElection = {
    "--leader-elect", "--leader-elect-lease-duration=6s", "--leader-elect-renew-deadline=4s",
    "--leader-elect-retry-period=1s"};

using ro::testsupport::HttpAnswer;

// The value of the sample `series` (metric name with labels, exactly as exposed) in a
// Prometheus text page; -1 when absent.
double Sample(const std::string& page, const std::string& series) {
  std::istringstream lines(page);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

// One controller binary of the build with its probes on reserved loopback ports.
class Controller : public ro::testsupport::ControllerProcess {
 public:
  // Waits for /healthz (the process is up); `pod_name` becomes $POD_NAME, the prefix of
  // its leader-election identity. No license: /readyz reports it.
  Controller(const std::string& binary, const KubeCluster& cluster, const fs::path& dir,
             const std::string& pod_name, std::vector<std::string> extra_args)
      : ControllerProcess(Options(binary, cluster, dir, pod_name, std::move(extra_args))) {}

  void WaitReady() { WaitFor("/readyz", kTimeout); }
  double Reconciles(const std::string& controller) const { return ReconcileCount(controller); }

 private:
  static ro::testsupport::ControllerProcessOptions Options(const std::string& binary, const KubeCluster& cluster,
                                                           const fs::path& dir, const std::string& pod_name,
                                                           std::vector<std::string> extra_args) {
    ro::testsupport::ControllerProcessOptions options;
    options.binary = binary;
    options.instance = pod_name;
    options.kubeconfig = cluster.kubeconfig_path();
    options.dir = dir;
    options.license_file = dir / "no-license";
    options.args = {"--leader-election-namespace=" + std::string(kLeaseNamespace)};
    options.args.insert(options.args.end(), extra_args.begin(), extra_args.end());
    options.env = {{"POD_NAME", pod_name}};
    options.ready_path = "/healthz";
    options.ready_timeout = std::chrono::seconds{60};
    // Longer than the controller's own graceful shutdown would ever need here, so a
    // SIGKILL in Stop() means the controller did not stop gracefully.
    options.stop_timeout = std::chrono::seconds{20};
    return options;
  }
};

class RuntimeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::make_unique<ro::testenv::TempDir>("runtime");
    ro::testenv::KubeClusterOptions options;
    options.name = "runtime";
    cluster_ = std::make_unique<KubeCluster>(options);
    // Every CRD but SynchronizationPlan's: the readyz test installs that one itself.
    for (const auto& entry : fs::directory_iterator(ro::testenv::SourceDir() / "deploy/crds")) {
      const std::string file = entry.path().filename().string();
      if (file.find('_') == std::string::npos || file.find("synchronizationplans") != std::string::npos) {
        continue;
      }
      cluster_->Kubectl({"apply", "-f", entry.path().string()});
    }
    cluster_->Kubectl({"wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"});
    cluster_->Kubectl({"create", "namespace", kNamespace});
    cluster_->Kubectl({"create", "namespace", kLeaseNamespace});
  }

  static void TearDownTestSuite() {
    cluster_.reset();
    dir_.reset();
  }

  // A Synchronization as in the manual's 6.3.1 sample.
  static void CreateSynchronization(const std::string& name) {
    const json sync = {{"apiVersion", "automation.astronetes.io/v1alpha1"},
                       {"kind", "Synchronization"},
                       {"metadata", {{"name", name}, {"namespace", kNamespace}}},
                       {"spec",
                        {{"plugin", "zookeeper-to-zookeeper-nodes"},
                         {"config",
                          {{"sourceName", "zookeeper-source"},
                           {"destinationName", "zookeeper-destination"},
                           {"rootPath", "/test"}}}}}};
    cluster_->Kubectl({"apply", "-f", "-"}, sync.dump());
  }

  // The Ready reason of `resource`/`name` ("" when unreadable or absent).
  static std::string ReadyReason(const std::string& resource, const std::string& name) {
    try {
      const json object = json::parse(
          cluster_->Kubectl({"-n", kNamespace, "get", resource, name, "-o", "json"}));
      for (const json& c : object.value("status", json::object()).value("conditions", json::array())) {
        if (c.value("type", "") == "Ready") return c.value("reason", "");
      }
    } catch (const ro::testenv::TestEnvError&) {
    }
    return "";
  }

  static void WaitForReadyReason(const std::string& resource, const std::string& name,
                                 const std::string& reason) {
    ro::testenv::WaitFor([&] { return ReadyReason(resource, name) == reason; }, kTimeout,
                         resource + "/" + name + " Ready reason " + reason);
  }

  // holderIdentity of the Lease `name` ("" when absent or released).
  static std::string LeaseHolder(const std::string& name) {
    try {
      const json lease = json::parse(
          cluster_->Kubectl({"-n", kLeaseNamespace, "get", "lease", name, "-o", "json"}));
      return lease["spec"].value("holderIdentity", "");
    } catch (const ro::testenv::TestEnvError&) {
      return "";
    }
  }

  static inline std::unique_ptr<ro::testenv::TempDir> dir_;
  static inline std::unique_ptr<KubeCluster> cluster_;
};

TEST_F(RuntimeTest, OnlyTheLeaderReconcilesAndSigtermHandsTheLeaseOverAtOnce) {
  Controller a("synchronization-controller", *cluster_, dir_->path(), "instance-a", kFastLeaderElection);
  Controller b("synchronization-controller", *cluster_, dir_->path(), "instance-b", kFastLeaderElection);
  // A follower waiting for the Lease is ready too.
  a.WaitReady();
  b.WaitReady();
  std::string holder;
  ro::testenv::WaitFor(
      [&] {
        holder = LeaseHolder("synchronization-controller");
        return holder.rfind("instance-", 0) == 0;
      },
      kTimeout, "the Lease synchronization-controller to be held");
  const bool a_leads = holder.rfind("instance-a_", 0) == 0;
  Controller& leader = a_leads ? a : b;
  Controller& follower = a_leads ? b : a;
  EXPECT_NE(leader.Get("/readyz").body.find("leading"), std::string::npos);
  EXPECT_NE(follower.Get("/readyz").body.find("waiting for the Lease"), std::string::npos);

  CreateSynchronization("first");
  WaitForReadyReason("synchronization", "first", "DatabaseNotFound");
  EXPECT_GE(leader.Reconciles("synchronization"), 1);
  EXPECT_EQ(follower.Reconciles("synchronization"), 0) << "the follower reconciled";

  // SIGTERM: the leader finishes, releases the Lease and exits 0 well before SIGKILL.
  const auto stop_start = std::chrono::steady_clock::now();
  leader.process().Stop();
  const auto stop_time = std::chrono::steady_clock::now() - stop_start;
  EXPECT_EQ(leader.process().ExitDescription().value_or("running"), "exit status 0")
      << leader.process().LogTail();
  EXPECT_LT(stop_time, std::chrono::seconds{10});
  const std::string leader_log = leader.Log();
  EXPECT_NE(leader_log.find("signal received; shutting down gracefully"), std::string::npos);
  EXPECT_NE(leader_log.find("released leadership"), std::string::npos) << leader_log;

  // Released, so the follower takes over within a retry period, not a lease duration.
  const std::string follower_prefix = a_leads ? "instance-b_" : "instance-a_";
  ro::testenv::WaitFor([&] { return LeaseHolder("synchronization-controller").rfind(follower_prefix, 0) == 0; },
                       std::chrono::seconds{30}, "the follower to take the Lease");
  CreateSynchronization("second");
  WaitForReadyReason("synchronization", "second", "DatabaseNotFound");
  ro::testenv::WaitFor([&] { return follower.Reconciles("synchronization") >= 1; }, kTimeout,
                       "the new leader to reconcile");

  follower.process().Stop();
  EXPECT_EQ(follower.process().ExitDescription().value_or("running"), "exit status 0");
}

TEST_F(RuntimeTest, LosingTheLeaseExitsWithStatusOne) {
  Controller c("synchronization-controller", *cluster_, dir_->path(), "loser",
               kFastLeaderElection);
  ro::testenv::WaitFor([] { return LeaseHolder("synchronization-controller").rfind("loser_", 0) == 0; },
                       kTimeout, "the Lease to be held");
  // Someone else writes the Lease: renewals fail until the renew deadline passes.
  cluster_->Kubectl({"-n", kLeaseNamespace, "patch", "lease", "synchronization-controller",
                     "--type=merge", "-p",
                     R"({"spec":{"holderIdentity":"intruder","leaseDurationSeconds":60}})"});
  ro::testenv::WaitFor([&] { return !c.process().Running(); }, kTimeout,
                       "the controller to exit after losing the Lease");
  EXPECT_EQ(c.process().ExitDescription().value_or("running"), "exit status 1");
  EXPECT_NE(c.Log().find("leader election lost"), std::string::npos) << c.Log();
}

TEST_F(RuntimeTest, ReadyzFlipsOnceTheInformersHaveSyncedAndMetricsCountReconciles) {
  // The SynchronizationPlan CRD is not installed yet: the informer cannot list.
  Controller c("synchronizationplan-controller", *cluster_, dir_->path(), "solo", {});
  const HttpAnswer before = c.Get("/readyz");
  EXPECT_EQ(before.status, 503);
  EXPECT_NE(before.body.find("[-]informers"), std::string::npos) << before.body;
  EXPECT_NE(before.body.find("[!]license missing"), std::string::npos) << before.body;
  EXPECT_EQ(c.Get("/healthz").status, 200);

  cluster_->Kubectl({"apply", "-f",
                     (ro::testenv::SourceDir() /
                      "deploy/crds/automation.astronetes.io_synchronizationplans.yaml")
                         .string()});
  c.WaitReady();
  EXPECT_NE(c.Get("/readyz").body.find("[+]informers ok"), std::string::npos);

  const json run = {
      {"apiVersion", "automation.astronetes.io/v1alpha1"},
      {"kind", "SynchronizationPlan"},
      {"metadata", {{"name", "run-1"}, {"namespace", kNamespace}}},
      {"spec",
       {{"schedule", "0 * * * *"},
        {"template",
         {{"spec",
           {{"plugin", "zookeeper-to-zookeeper-nodes"},
            {"config",
             {{"sourceName", "zookeeper-source"},
              {"destinationName", "zookeeper-destination"},
              {"rootPath", "/test"}}}}}}}}}};
  cluster_->Kubectl({"apply", "-f", "-"}, run.dump());
  WaitForReadyReason("synchronizationplan", "run-1", "Scheduled");

  ro::testenv::WaitFor([&] { return c.Reconciles("synchronizationplan") >= 1; }, kTimeout,
                       "a counted reconcile");
  const std::string page = c.Get("/metrics").body;
  // A scheduled plan's reconcile asks to come back at the next schedule time.
  EXPECT_GE(Sample(page, R"(controller_runtime_reconcile_total{controller="synchronizationplan",result="requeue_after"})"),
            1)
      << page;
  EXPECT_EQ(Sample(page, R"(controller_runtime_reconcile_errors_total{controller="synchronizationplan"})"), 0);
  EXPECT_GE(Sample(page, R"(controller_runtime_reconcile_time_seconds_count{controller="synchronizationplan"})"),
            1);
  EXPECT_GE(Sample(page, R"(workqueue_depth{name="synchronizationplan"})"), 0) << page;
  EXPECT_GE(Sample(page, R"(workqueue_adds_total{name="synchronizationplan"})"), 1) << page;
  EXPECT_GE(Sample(page, R"(workqueue_queue_duration_seconds_count{name="synchronizationplan"})"), 1) << page;
  // The manager's requests to the apiserver: the informers' lists (GET 200) at least.
  const std::string host = cluster_->server_url().substr(cluster_->server_url().find("://") + 3);
  EXPECT_GE(Sample(page, R"(rest_client_requests_total{code="200",host=")" + host + R"(",method="GET"})"), 1) << page;

  // Without leader election a SIGTERM stops it cleanly too.
  c.process().Stop();
  EXPECT_EQ(c.process().ExitDescription().value_or("running"), "exit status 0");
  EXPECT_NE(c.Log().find("\"msg\":\"stopped\""), std::string::npos);
}

}  // namespace

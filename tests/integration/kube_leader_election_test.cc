// Leader election hand-over between two real processes (ro-test-lease-holder) over a
// Lease on a real kube-apiserver: a clean stop (SIGTERM) releases the lease so the other
// candidate takes over at once; a crash (SIGKILL) leaves it to expire first.
#include <signal.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "ro/kube/client.h"
#include "ro/kube/config.h"
#include "ro/kube/errors.h"
#include "ro/testenv/testenv.h"

namespace ro::kube {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

const GroupVersionResource kLeases{"coordination.k8s.io", "v1", "leases"};
const GroupVersionResource kNamespaces{"", "v1", "namespaces"};
constexpr const char* kNamespace = "election";

class LeaderElectionHandOverTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cluster_ = std::make_unique<testenv::KubeCluster>();
    client_ = std::make_unique<DynamicClient>(LoadKubeconfigFile(cluster_->kubeconfig_path().string()));
    client_->Create(kNamespaces, "",
                    {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", kNamespace}}}});
  }
  static void TearDownTestSuite() {
    client_.reset();
    cluster_.reset();
  }

  // Starts a candidate; its stdout+stderr go to <cluster dir>/<identity>.log.
  std::unique_ptr<testenv::Process> StartHolder(const std::string& lease, const std::string& identity,
                                                int lease_duration_s) {
    testenv::ProcessOptions o;
    o.name = identity;
    o.argv = {(testenv::BinDir() / "ro-test-lease-holder").string(),
              "--kubeconfig", cluster_->kubeconfig_path().string(),
              "--namespace", kNamespace,
              "--name", lease,
              "--identity", identity,
              "--lease-duration", std::to_string(lease_duration_s),
              "--renew-deadline", "3",
              "--retry-period", "1"};
    o.log_path = cluster_->dir() / (identity + ".log");
    o.stop_timeout = 20s;  // a clean stop releases the lease first
    return std::make_unique<testenv::Process>(o);
  }

  static std::string Log(const testenv::Process& p) { return testenv::ReadFile(p.log_path()); }
  static bool Says(const testenv::Process& p, const std::string& line) {
    return Log(p).find(line + "\n") != std::string::npos;
  }

  // spec.holderIdentity of the Lease ("" when released or absent).
  static std::string Holder(const std::string& lease) {
    try {
      const json l = client_->Get(kLeases, kNamespace, lease);
      return l.at("spec").value("holderIdentity", "");
    } catch (const ApiError& e) {
      if (e.reason() == StatusReason::kNotFound) return "";
      throw;
    }
  }

  static json Lease(const std::string& lease) { return client_->Get(kLeases, kNamespace, lease); }

  static std::unique_ptr<testenv::KubeCluster> cluster_;
  static std::unique_ptr<DynamicClient> client_;
};

std::unique_ptr<testenv::KubeCluster> LeaderElectionHandOverTest::cluster_;
std::unique_ptr<DynamicClient> LeaderElectionHandOverTest::client_;

TEST_F(LeaderElectionHandOverTest, SecondCandidateLeadsRightAfterTheFirstStopsCleanly) {
  // A 60 s lease: only the release on SIGTERM can hand over within the waits below.
  const std::string lease = "handover-term";
  auto first = StartHolder(lease, "first", 60);
  testenv::WaitFor([&] { return Holder(lease) == "first"; }, 30s, "first to hold the lease");
  testenv::WaitFor([&] { return Says(*first, "started-leading first"); }, 10s, "first to lead");

  auto second = StartHolder(lease, "second", 60);
  testenv::WaitFor([&] { return Says(*second, "new-leader first"); }, 30s, "second to see first");
  EXPECT_FALSE(Says(*second, "started-leading second"));
  const int transitions_before = Lease(lease).at("spec").value("leaseTransitions", 0);

  first->Stop();  // SIGTERM: stop leading, release, exit 0
  EXPECT_EQ(first->ExitDescription(), "exit status 0");
  EXPECT_TRUE(Says(*first, "stopped-leading first"));
  EXPECT_TRUE(Says(*first, "exiting first 0"));

  testenv::WaitFor([&] { return Says(*second, "started-leading second"); }, 20s,
                   "second to lead after the release (well before the 60 s lease expires)");
  const json after = Lease(lease);
  EXPECT_EQ(after["spec"]["holderIdentity"], "second");
  EXPECT_EQ(after["spec"]["leaseDurationSeconds"], 60);
  EXPECT_EQ(after["spec"].value("leaseTransitions", 0), transitions_before + 1);
  second->Stop();
  EXPECT_EQ(Holder(lease), "");  // released again
}

TEST_F(LeaderElectionHandOverTest, SecondCandidateLeadsAfterTheKilledLeadersLeaseExpires) {
  const std::string lease = "handover-kill";
  auto first = StartHolder(lease, "killed", 5);
  testenv::WaitFor([&] { return Says(*first, "started-leading killed"); }, 30s, "killed to lead");
  auto second = StartHolder(lease, "survivor", 5);
  testenv::WaitFor([&] { return Says(*second, "new-leader killed"); }, 30s, "survivor to see killed");

  const auto killed_at = std::chrono::steady_clock::now();
  ASSERT_EQ(::kill(first->pid(), SIGKILL), 0);
  first->Stop();  // reaps
  EXPECT_THAT(first->ExitDescription().value_or(""), ::testing::HasSubstr("killed by signal 9"));
  EXPECT_FALSE(Says(*first, "stopped-leading killed"));  // no chance to release
  EXPECT_EQ(Holder(lease), "killed");

  testenv::WaitFor([&] { return Says(*second, "started-leading survivor"); }, 30s,
                   "survivor to lead after the lease expired");
  // Hand-over needs the lease to look unchanged for its whole duration (5 s) to the
  // survivor; anything much faster would mean two leaders could overlap.
  EXPECT_GE(std::chrono::steady_clock::now() - killed_at, 3s);
  const json after = Lease(lease);
  EXPECT_EQ(after["spec"]["holderIdentity"], "survivor");
  EXPECT_GE(after["spec"].value("leaseTransitions", 0), 1);
  second->Stop();
}

}  // namespace
}  // namespace ro::kube

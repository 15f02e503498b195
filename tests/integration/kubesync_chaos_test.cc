// The Kubesync pipeline under fire: a writer changes about 200 objects per second
// (creates, updates and deletes of ConfigMaps and Deployments in labelled namespaces)
// while each component in turn is killed with SIGKILL and restarted. Once the writer
// stops, the destination must converge to exactly the expected form of the source,
// object by object, and no destination object may record an older source version than
// the source's current one (no stale event overwrote a newer one).
#include <curl/curl.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "ro/kube/client.h"
#include "ro/kube/config.h"
#include "ro/kube/errors.h"
#include "ro/plugins/kubernetes/control_metadata.h"
#include "ro/plugins/kubernetes/live_sync_config.h"
#include "ro/testenv/testenv.h"
#include "ro/testsupport/kubesync_expect.h"
#include "ro/testsupport/clients.h"
#include "ro/testsupport/kubesync_process.h"
#include "ro/testsupport/kubesync_workload.h"

namespace ro::kubesync {
namespace {

namespace te = ro::testenv;
namespace ts = ro::testsupport;
namespace k8s = ro::plugins::kubernetes;
using kube::GroupVersionResource;
using nlohmann::json;
using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

const GroupVersionResource kConfigMaps{"", "v1", "configmaps"};
const GroupVersionResource kDeployments{"apps", "v1", "deployments"};
const GroupVersionResource kNamespaces{"", "v1", "namespaces"};

// The workload (ts::WorkloadWriter): 3 namespaces x (80 ConfigMaps + 20 Deployments),
// written by 4 threads at 200 operations/s in total for kWriteFor.
const std::vector<std::string> kChaosNamespaces{"chaos-a", "chaos-b", "chaos-c"};
constexpr auto kWriteFor = 40s;
// When each component is killed (from the writer's start) and how long it stays down.
constexpr auto kFirstKill = 4s;
constexpr auto kKillEvery = 9s;
constexpr auto kDownFor = 2s;
// Convergence after the writer stops: messages in flight at a kill come back after the
// consumers' ack wait (5 s); a re-created object after a lost tombstone waits for the
// reconciler's period (resyncPeriod below, 20 s). Both fit well within this.
constexpr auto kConvergeWithin = 180s;

// Tutorial-style configuration; a short resyncPeriod keeps the test short.
const json kSpecConfig = json::parse(R"({
  "sourceName": "source", "destinationName": "destination",
  "replication": {"resyncPeriod": "20s", "resources": [
    {"version": "v1", "resource": "configmaps",
     "filters": {"namespaceSelector": {"matchLabels": {"sync": "true"}}}},
    {"group": "apps", "version": "v1", "resource": "deployments",
     "filters": {"namespaceSelector": {"matchLabels": {"sync": "true"}}},
     "transformation": {"patch": [{"op": "replace", "path": "/spec/replicas", "value": 0}]}}
  ]}
})");

using ts::AdminClient;

class KubesyncChaosTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    auto source = std::async(std::launch::async, [] {
      te::KubeClusterOptions options;
      options.name = "source";
      return std::make_unique<te::KubeCluster>(options);
    });
    te::KubeClusterOptions options;
    options.name = "destination";
    destination_ = std::make_unique<te::KubeCluster>(options);
    source_ = source.get();
    nats_ = std::make_unique<te::NatsServer>();
    redis_ = std::make_unique<te::RedisServer>();
  }
  static void TearDownTestSuite() {
    destination_.reset();
    source_.reset();
    redis_.reset();
    nats_.reset();
  }

  static std::unique_ptr<te::KubeCluster> source_;
  static std::unique_ptr<te::KubeCluster> destination_;
  static std::unique_ptr<te::NatsServer> nats_;
  static std::unique_ptr<te::RedisServer> redis_;
};
std::unique_ptr<te::KubeCluster> KubesyncChaosTest::source_;
std::unique_ptr<te::KubeCluster> KubesyncChaosTest::destination_;
std::unique_ptr<te::NatsServer> KubesyncChaosTest::nats_;
std::unique_ptr<te::RedisServer> KubesyncChaosTest::redis_;

// Waits (polling the clock, never a bare sleep) until `deadline`.
void WaitUntil(Steady::time_point deadline) {
  te::WaitFor([&] { return Steady::now() >= deadline; }, std::chrono::duration_cast<std::chrono::milliseconds>(
                                                             deadline - Steady::now()) + 5s,
              "the chaos schedule", 20ms);
}

TEST_F(KubesyncChaosTest, DestinationConvergesToTheSourceAfterEveryComponentIsKilledDuringWrites) {
  auto source = AdminClient(*source_);
  auto destination = AdminClient(*destination_);
  for (const std::string& ns : kChaosNamespaces) {
    source->Create(kNamespaces, "", {{"apiVersion", "v1"}, {"kind", "Namespace"},
                                     {"metadata", {{"name", ns}, {"labels", {{"sync", "true"}}}}}});
    destination->Create(kNamespaces, "", {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}});
  }
  te::TempDir dir("kubesync-chaos");
  const auto config_path = dir.path() / "chaos.json";
  ts::WriteKubesyncConfig(config_path, ts::MakeKubesyncConfig("dr-config", "chaos", kSpecConfig, *source_,
                                                              *destination_, nats_->url(), redis_->address()));
  ts::KubesyncPipeline pipeline(config_path, dir.path());
  pipeline.StartAll();

  ts::WorkloadOptions workload;
  workload.namespaces = kChaosNamespaces;
  ts::WorkloadWriter writer(*source_, workload);
  const auto start = Steady::now();
  writer.Start();

  // kill -9 each component in turn while the writer runs, and restart it.
  auto at = start + kFirstKill;
  for (const char* component : {"events-listener", "processor", "synchronizer", "reconciler"}) {
    WaitUntil(at);
    ts::KubesyncProcess& victim = pipeline[component];
    const int before_kill = writer.ops();
    victim.Kill();
    WaitUntil(Steady::now() + kDownFor);
    // What the test needs is source changes while the component is down, not a rate (rates belong in bench/).
    EXPECT_GT(writer.ops() - before_kill, 20) << "the writer must keep writing while the " << component << " is down";
    victim.Start();
    at += kKillEvery;
  }
  WaitUntil(start + kWriteFor);
  writer.Stop();
  const double seconds = std::chrono::duration<double>(Steady::now() - start).count();
  std::printf("[ chaos    ] %d writes in %.1f s (%.0f/s), %d failed\n", writer.ops(), seconds, writer.ops() / seconds,
              writer.failures());

  const k8s::LiveSyncConfig config = k8s::ParseLiveSyncConfig(kSpecConfig);
  const k8s::StampInfo stamp = k8s::MakeStampInfo("dr-config", "chaos", "dr-config", config.source_name);
  const auto converge_start = Steady::now();
  for (const GroupVersionResource* gvr : {&kConfigMaps, &kDeployments}) {
    ts::Convergence last;
    try {
      te::WaitFor(
          [&] {
            last = ts::CompareClusters(*source, *destination, config, stamp, *gvr, kChaosNamespaces);
            return last.converged();
          },
          kConvergeWithin, "destination == expected(source) for " + gvr->ToString(), 1s);
    } catch (const te::WaitTimeout&) {
      ADD_FAILURE() << gvr->ToString() << " did not converge: " << last.Summary(10);
    }
    EXPECT_GT(last.expected, 0u);
    EXPECT_THAT(ts::StaleDestinationObjects(*source, *destination, stamp, *gvr, kChaosNamespaces),
                ::testing::IsEmpty());
  }
  std::printf("[ chaos    ] converged %.1f s after the writer stopped\n",
              std::chrono::duration<double>(Steady::now() - converge_start).count());
  EXPECT_THAT(pipeline.StopAll(), ::testing::IsEmpty());
}

}  // namespace
}  // namespace ro::kubesync

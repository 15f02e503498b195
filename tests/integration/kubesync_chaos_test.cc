// The Kubesync pipeline under fire: a writer changes about 200 objects per second
// (creates, updates and deletes of ConfigMaps and Deployments in labelled namespaces)
// while each component in turn is killed with SIGKILL and restarted, or, on a JetStream
// cluster of three nats-servers, while the stream's leader and then another member are.
// Once the writer stops, the destination must converge to exactly the expected form of
// the source, object by object, and no destination object may record an older source
// version than the source's current one (no stale event overwrote a newer one).
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
#include "ro/kubesync/envelope.h"
#include "ro/kubesync/jetstream.h"
#include "ro/kubesync/kubesync_config.h"
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
    OpenNatsLibrary();
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

// Waits until the destination holds exactly the expected form of the source in
// `namespaces`, with no stale object, for each replicated resource.
void ExpectConverged(kube::DynamicClient& source, kube::DynamicClient& destination, const json& spec_config,
                     const std::string& ls_name, const std::vector<std::string>& namespaces) {
  const k8s::LiveSyncConfig config = k8s::ParseLiveSyncConfig(spec_config);
  const k8s::StampInfo stamp = k8s::MakeStampInfo("dr-config", ls_name, "dr-config", config.source_name);
  const auto converge_start = Steady::now();
  for (const GroupVersionResource* gvr : {&kConfigMaps, &kDeployments}) {
    ts::Convergence last;
    try {
      te::WaitFor(
          [&] {
            last = ts::CompareClusters(source, destination, config, stamp, *gvr, namespaces);
            return last.converged();
          },
          kConvergeWithin, "destination == expected(source) for " + gvr->ToString(), 1s);
    } catch (const te::WaitTimeout&) {
      ADD_FAILURE() << gvr->ToString() << " did not converge: " << last.Summary(10);
    }
    EXPECT_GT(last.expected, 0u);
    EXPECT_THAT(ts::StaleDestinationObjects(source, destination, stamp, *gvr, namespaces), ::testing::IsEmpty());
  }
  std::printf("[ chaos    ] converged %.1f s after the writer stopped\n",
              std::chrono::duration<double>(Steady::now() - converge_start).count());
}

void CreateNamespaces(kube::DynamicClient& source, kube::DynamicClient& destination,
                      const std::vector<std::string>& namespaces) {
  for (const std::string& ns : namespaces) {
    source.Create(kNamespaces, "", {{"apiVersion", "v1"}, {"kind", "Namespace"},
                                    {"metadata", {{"name", ns}, {"labels", {{"sync", "true"}}}}}});
    destination.Create(kNamespaces, "", {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}});
  }
}

TEST_F(KubesyncChaosTest, DestinationConvergesToTheSourceAfterEveryComponentIsKilledDuringWrites) {
  auto source = AdminClient(*source_);
  auto destination = AdminClient(*destination_);
  CreateNamespaces(*source, *destination, kChaosNamespaces);
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

  ExpectConverged(*source, *destination, kSpecConfig, "chaos", kChaosNamespaces);
  EXPECT_THAT(pipeline.StopAll(), ::testing::IsEmpty());
}

// Scale-out (docs/kubesync.md, "Sizing"): the components, unchanged, on a JetStream
// cluster of three nats-servers (natsUrl lists all three; the stream and the tombstone
// bucket at 3 replicas). kill -9 of the stream's leader during the writes, then of
// another member, each restarted after kDownFor: nothing is lost, nothing goes stale.
TEST_F(KubesyncChaosTest, NothingIsLostWhenNatsServersOfAThreeNodeClusterAreKilledDuringWrites) {
  const std::vector<std::string> namespaces{"nats-cluster-a", "nats-cluster-b", "nats-cluster-c"};
  auto source = AdminClient(*source_);
  auto destination = AdminClient(*destination_);
  CreateNamespaces(*source, *destination, namespaces);
  te::NatsCluster nats(3);
  te::TempDir dir("kubesync-nats-cluster");
  const auto config_path = dir.path() / "nats-cluster.json";
  kubesync::KubesyncConfig config = ts::MakeKubesyncConfig("dr-config", "nats-cluster", kSpecConfig, *source_,
                                                           *destination_, nats.url(), redis_->address());
  config.nats_replicas = 3;
  ts::WriteKubesyncConfig(config_path, config);
  ts::KubesyncPipeline pipeline(config_path, dir.path());
  pipeline.StartAll();
  const std::string stream = PipelineNames("dr-config", "nats-cluster").stream();
  // The stream at 3 replicas: a leader and two current followers.
  std::unique_ptr<NatsConnection> observer = NatsConnection::Connect(nats.url(), "kubesync-chaos-test");
  const auto placement = [&] {
    try {
      return observer->GetStreamState(stream);
    } catch (const NatsError&) {
      return StreamState{};  // no leader right now
    }
  };
  StreamState state;
  te::WaitFor(
      [&] {
        state = placement();
        return state.current_followers == 2;
      },
      30s, "a leader and two current followers for " + stream);
  EXPECT_EQ(state.replicas, 3);
  const std::string leader = state.leader;

  ts::WorkloadOptions workload;
  workload.namespaces = namespaces;
  ts::WorkloadWriter writer(*source_, workload);
  const auto start = Steady::now();
  writer.Start();
  auto at = start + kFirstKill;
  // The stream's leader first (its followers must elect another one and lose nothing it
  // acknowledged), then another member while the first is back and catching up.
  const int first = leader.back() - '0';
  for (int victim : {first, (first + 1) % 3}) {
    WaitUntil(at);
    const int before_kill = writer.ops();
    nats.member(victim).Kill();
    WaitUntil(Steady::now() + kDownFor);
    EXPECT_GT(writer.ops() - before_kill, 20) << "the writer must keep writing while n" << victim << " is down";
    nats.member(victim).Start();
    at += kKillEvery;
  }
  WaitUntil(start + kKillEvery * 2 + kFirstKill);
  writer.Stop();
  std::printf("[ chaos    ] %d writes on a 3-node NATS cluster (stream leader was %s), %d failed\n", writer.ops(),
              leader.c_str(), writer.failures());
  ExpectConverged(*source, *destination, kSpecConfig, "nats-cluster", namespaces);
  // Both killed members caught up again.
  te::WaitFor([&] { return placement().current_followers == 2; }, 30s, "two current followers for " + stream + " again");
  EXPECT_THAT(pipeline.StopAll(), ::testing::IsEmpty());
}

}  // namespace
}  // namespace ro::kubesync

// The Kubesync pipeline against the faults that once lost or resurrected data
// (docs/kubesync.md, "Tombstones" and "Errors"): the real processor and synchronizer
// binaries between two real clusters with real NATS JetStream and Redis, fed with the
// events the events listener would publish, including the ones a fault produces
// (redelivered older upserts, a restart in between).
#include <curl/curl.h>
#include <signal.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <future>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "ro/kube/client.h"
#include "ro/kube/config.h"
#include "ro/kube/errors.h"
#include "ro/kubesync/envelope.h"
#include "ro/kube/clock.h"
#include "ro/kubesync/component.h"
#include "ro/kubesync/jetstream.h"
#include "ro/kubesync/kubesync_config.h"
#include "ro/kubesync/processor.h"
#include "ro/kubesync/redis_state.h"
#include "ro/kubesync/stats.h"
#include "ro/plugins/kubernetes/control_metadata.h"
#include "ro/testenv/fault_proxy.h"
#include "ro/testenv/testenv.h"
#include "ro/testsupport/clients.h"
#include "ro/testsupport/kubesync_process.h"

namespace ro::kubesync {
namespace {

namespace te = ro::testenv;
namespace ts = ro::testsupport;
using kube::GroupVersionResource;
using nlohmann::json;
using namespace std::chrono_literals;

constexpr auto kEventually = 60s;
constexpr char kLiveSyncNamespace[] = "dr-config";
const GroupVersionResource kConfigMaps{"", "v1", "configmaps"};

const json kSpecConfig = json::parse(R"({
  "sourceName": "source", "destinationName": "destination",
  "replication": {"resources": [
    {"version": "v1", "resource": "configmaps",
     "filters": {"namespaceSelector": {"matchLabels": {"sync": "true"}}}}
  ]}
})");

using ts::AdminClient;


// A source ConfigMap as a watch event carries it.
json SourceConfigMap(const std::string& ns, const std::string& name, const std::string& uid, const std::string& rv,
                     const std::string& value) {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"namespace", ns}, {"uid", uid}, {"resourceVersion", rv}}},
          {"data", {{"value", value}}}};
}

class KubesyncFaultsTest : public ::testing::Test {
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
    nats_server_ = std::make_unique<te::NatsServer>();
    redis_ = std::make_unique<te::RedisServer>();
    source_client_ = AdminClient(*source_);
    destination_client_ = AdminClient(*destination_);
    nats_ = NatsConnection::Connect(nats_server_->url(), "kubesync-faults-test");
    dir_ = std::make_unique<te::TempDir>("kubesync-faults");
  }
  static void TearDownTestSuite() {
    nats_.reset();
    source_client_.reset();
    destination_client_.reset();
    destination_.reset();
    source_.reset();
    redis_.reset();
    nats_server_.reset();
    dir_.reset();
    CloseNatsLibrary();
    curl_global_cleanup();
  }

  // A LiveSynchronization `name` with `components` running (by default the processor
  // and the synchronizer: the test publishes what the events listener would).
  std::unique_ptr<ts::KubesyncPipeline> StartPipeline(
      const std::string& name, std::vector<std::string> components = {"processor", "synchronizer"}) {
    const auto config_path = dir_->path() / (name + ".json");
    ts::WriteKubesyncConfig(config_path, ts::MakeKubesyncConfig(kLiveSyncNamespace, name, kSpecConfig, *source_,
                                                                *destination_, nats_server_->url(),
                                                                redis_->address()));
    std::filesystem::create_directories(dir_->path() / name);
    auto pipeline = std::make_unique<ts::KubesyncPipeline>(config_path, dir_->path() / name, std::move(components));
    pipeline->StartAll();
    return pipeline;
  }

  // The processor and the synchronizer of `file` (its clusters may point at a FaultProxy).
  std::unique_ptr<ts::KubesyncPipeline> StartPipeline(const KubesyncConfig& file) {
    const std::string name = file.live_synchronization.name;
    const auto config_path = dir_->path() / (name + ".json");
    ts::WriteKubesyncConfig(config_path, file);
    std::filesystem::create_directories(dir_->path() / name);
    auto pipeline = std::make_unique<ts::KubesyncPipeline>(config_path, dir_->path() / name,
                                                           std::vector<std::string>{"processor", "synchronizer"});
    pipeline->StartAll();
    return pipeline;
  }

  // A namespace labelled sync=true in both clusters.
  static void CreateSyncedNamespace(const std::string& ns) {
    const json object = {{"apiVersion", "v1"},
                         {"kind", "Namespace"},
                         {"metadata", {{"name", ns}, {"labels", {{"sync", "true"}}}}}};
    source_client_->Create({"", "v1", "namespaces"}, "", object);
    destination_client_->Create({"", "v1", "namespaces"}, "", object);
  }

  // Publishes what the events listener would for `object` on LiveSynchronization `name`.
  static void PublishEvent(const std::string& name, EventType type, json object) {
    Envelope e;
    e.type = type;
    e.gvr = kConfigMaps;
    e.observed_at = std::chrono::system_clock::now();
    e.object = std::move(object);
    const PipelineNames names(kLiveSyncNamespace, name);
    nats_->NewPublisher()->Publish(names.events_subject(), Encode(e));
  }

  // Waits until both consumers of `name` have handled every message published so far.
  static void WaitForDrained(const std::string& name) {
    const PipelineNames names(kLiveSyncNamespace, name);
    te::WaitFor(
        [&] {
          for (const char* durable : {"processor", "synchronizer"}) {
            const ConsumerState state = nats_->GetConsumerState(names.stream(), durable);
            if (state.num_pending != 0 || state.num_ack_pending != 0) return false;
          }
          return nats_->GetStreamState(names.stream()).messages == 0;
        },
        kEventually, "the processor and the synchronizer to handle every message");
  }

  static std::unique_ptr<te::KubeCluster> source_;
  static std::unique_ptr<te::KubeCluster> destination_;
  static std::unique_ptr<te::NatsServer> nats_server_;
  static std::unique_ptr<te::RedisServer> redis_;
  static std::unique_ptr<kube::DynamicClient> source_client_;
  static std::unique_ptr<kube::DynamicClient> destination_client_;
  static std::unique_ptr<NatsConnection> nats_;
  static std::unique_ptr<te::TempDir> dir_;
};

std::unique_ptr<te::KubeCluster> KubesyncFaultsTest::source_;
std::unique_ptr<te::KubeCluster> KubesyncFaultsTest::destination_;
std::unique_ptr<te::NatsServer> KubesyncFaultsTest::nats_server_;
std::unique_ptr<te::RedisServer> KubesyncFaultsTest::redis_;
std::unique_ptr<kube::DynamicClient> KubesyncFaultsTest::source_client_;
std::unique_ptr<kube::DynamicClient> KubesyncFaultsTest::destination_client_;
std::unique_ptr<NatsConnection> KubesyncFaultsTest::nats_;
std::unique_ptr<te::TempDir> KubesyncFaultsTest::dir_;

// Defect: after a NATS restart during churn an older upsert of a deleted object was
// redelivered and re-created it. The deletion's tombstone (source uid + resourceVersion)
// lives in JetStream, so it holds across a synchronizer restart and blocks every upsert
// that is not newer than the deletion, while a real re-creation passes.
TEST_F(KubesyncFaultsTest, ARedeliveredOlderUpsertNeverResurrectsADeletedObjectEvenAfterARestart) {
  const std::string ls = "tombstones";
  const std::string ns = "faults-tombstones";
  CreateSyncedNamespace(ns);
  auto pipeline = StartPipeline(ls);

  PublishEvent(ls, EventType::kUpsert, SourceConfigMap(ns, "a", "uid-1", "100", "v1"));
  te::WaitFor([&] { return destination_client_->GetIfExists(kConfigMaps, ns, "a").has_value(); }, kEventually,
              "configmap a to be replicated");
  PublishEvent(ls, EventType::kDelete, SourceConfigMap(ns, "a", "uid-1", "105", "v1"));
  te::WaitFor([&] { return !destination_client_->GetIfExists(kConfigMaps, ns, "a").has_value(); }, kEventually,
              "configmap a to be deleted");
  WaitForDrained(ls);

  // The synchronizer's memory is gone; only the durable tombstone remains.
  (*pipeline)["synchronizer"].Kill();
  (*pipeline)["synchronizer"].Start();

  // Redeliveries of what was stored before the deletion: the same object's older state,
  // and a state of an older incarnation of the same name.
  PublishEvent(ls, EventType::kUpsert, SourceConfigMap(ns, "a", "uid-1", "100", "v1"));
  PublishEvent(ls, EventType::kUpsert, SourceConfigMap(ns, "a", "uid-0", "90", "v0"));
  PublishEvent(ls, EventType::kUpsert, SourceConfigMap(ns, "sentinel", "uid-s", "106", "s"));
  te::WaitFor([&] { return destination_client_->GetIfExists(kConfigMaps, ns, "sentinel").has_value(); }, kEventually,
              "the sentinel configmap to be replicated");
  WaitForDrained(ls);
  EXPECT_FALSE(destination_client_->GetIfExists(kConfigMaps, ns, "a").has_value())
      << "an upsert older than the deletion re-created the object";

  // A source object re-created after the deletion (new uid, later version) is replicated.
  PublishEvent(ls, EventType::kUpsert, SourceConfigMap(ns, "a", "uid-2", "110", "v2"));
  te::WaitFor(
      [&] {
        const auto object = destination_client_->GetIfExists(kConfigMaps, ns, "a");
        return object && (*object)["data"]["value"] == "v2";
      },
      kEventually, "the re-created configmap a to be replicated");
  EXPECT_THAT(pipeline->StopAll(), ::testing::IsEmpty());
}

// Defect: an event JetStream can never store (larger than the server's max_payload)
// was republished forever and stalled every later event of its resource. It is now
// ended at once (logged, counted as a failure for the LiveSynchronization's Event and
// Degraded condition) and the events behind it flow.
TEST_F(KubesyncFaultsTest, AnEventTooLargeForNatsIsEndedAndDoesNotStallTheOnesBehindIt) {
  const std::string ls = "oversized";
  const std::string ns = "faults-oversized";
  CreateSyncedNamespace(ns);
  auto pipeline = StartPipeline(ls, {"events-listener", "processor", "synchronizer"});

  // 600 KB of '"' is a valid ConfigMap (< 1 MiB of data) whose JSON event is > 1.2 MB,
  // over nats-server's default max_payload of 1 MiB.
  json big = {{"apiVersion", "v1"},
              {"kind", "ConfigMap"},
              {"metadata", {{"name", "big"}, {"namespace", ns}}},
              {"data", {{"quotes", std::string(600 * 1024, '"')}}}};
  source_client_->Create(kConfigMaps, ns, big);
  json small = {{"apiVersion", "v1"},
                {"kind", "ConfigMap"},
                {"metadata", {{"name", "small"}, {"namespace", ns}}},
                {"data", {{"value", "after the big one"}}}};
  source_client_->Create(kConfigMaps, ns, small);

  te::WaitFor([&] { return destination_client_->GetIfExists(kConfigMaps, ns, "small").has_value(); }, kEventually,
              "the configmap created after the oversized one to be replicated");
  EXPECT_FALSE(destination_client_->GetIfExists(kConfigMaps, ns, "big").has_value());
  bool logged = false;
  for (const json& line : (*pipeline)["events-listener"].LogLines()) {
    logged = logged || (line.value("msg", "") == "error publishing event" && line.value("permanent", false) &&
                        line["sourceObject"].value("name", "") == "big");
  }
  EXPECT_TRUE(logged) << "no permanent 'error publishing event' line for the oversized configmap";
  RedisState redis(redis_->address(), PipelineNames(kLiveSyncNamespace, ls).redis_prefix());
  te::WaitFor(
      [&] {
        const StatsSnapshot stats = ReadStats(redis);
        const auto it = stats.last_failure.find({"eventslistener", "v1/configmaps", "MessageTooLarge"});
        return it != stats.last_failure.end() && it->second.object == ns + "/big";
      },
      kEventually, "the failure to be recorded for the LiveSynchronization");
  EXPECT_THAT(pipeline->StopAll(), ::testing::IsEmpty());
}

// Defect: the processor's bucket retry slept with std::this_thread::sleep_for, deaf to
// the stop token and to any test clock. Here the pause is an hour on a FakeClock: a
// graceful stop must end it at once and leave the event in the stream (NAKed, not acked
// without its bucket copy).
TEST_F(KubesyncFaultsTest, AStopEndsABucketRetryPauseAtOnceAndTheEventIsRedeliveredLater) {
  const std::string ls = "bucketstop";
  const std::string ns = "faults-bucketstop";
  CreateSyncedNamespace(ns);
  json spec_config = kSpecConfig;
  spec_config["bucketName"] = "unreachable";
  KubesyncConfig file = ts::MakeKubesyncConfig(kLiveSyncNamespace, ls, spec_config, *source_, *destination_,
                                               nats_server_->url(), redis_->address());
  BucketRef bucket;
  bucket.identity.name = "unreachable";
  bucket.identity.ns = kLiveSyncNamespace;
  bucket.endpoint = "127.0.0.1:1";  // nothing listens: connection refused, a retryable S3Error
  bucket.use_ssl = false;
  bucket.bucket_name = "originals";
  bucket.access_key_id = "test";
  bucket.secret_access_key = "test-secret";
  file.bucket = bucket;
  const PipelineContext context(file, ComponentId::kProcessor, "processor-test");
  plugins::S3Client s3(BucketS3Config(bucket));
  RedisState redis(redis_->address(), context.names().redis_prefix());
  RedisStatsSink sink(redis);
  StatsRecorder stats(sink, kube::DefaultClock());
  kube::FakeClock clock;
  ProcessorOptions options;
  options.bucket_attempts = 10;
  options.bucket_retry = std::chrono::hours{1};
  options.clock = &clock;
  Processor processor(context, *source_client_, *nats_, stats, &s3, options);

  std::stop_source stop;
  auto run = std::async(std::launch::async, [&] { processor.Run(stop.get_token()); });
  te::WaitFor([&] { return processor.Ready(); }, kEventually, "the processor to be ready");
  PublishEvent(ls, EventType::kUpsert, SourceConfigMap(ns, "a", "uid-a", "7", "v"));
  ASSERT_TRUE(clock.BlockUntilWaiters(1, std::chrono::seconds{60})) << "the bucket upload was never retried";

  const auto asked = std::chrono::steady_clock::now();
  stop.request_stop();
  ASSERT_EQ(run.wait_for(std::chrono::seconds{30}), std::future_status::ready)
      << "Run() did not return while a bucket retry paused";
  run.get();
  EXPECT_LT(std::chrono::steady_clock::now() - asked, std::chrono::seconds{30});
  // NAKed, not acked: the event is still in the work-queue stream for the next start.
  EXPECT_EQ(nats_->GetStreamState(context.names().stream()).messages, 1u);
}

// Defect: a 5xx or a timeout on the processor's GET of the source namespace made the
// namespace unknown, the namespaceSelector did not match, and the standby copy was
// deleted. A failed lookup now NAKs the event: the copy stays, and the event is applied
// once the source answers again.
TEST_F(KubesyncFaultsTest, AFailingNamespaceLookupNeverDeletesTheStandbyCopy) {
  const std::string ls = "nslookup";
  const std::string ns = "faults-nslookup";
  auto proxy = te::FaultProxy::ForCluster(*source_);
  // Not in the source yet: the processor's namespace cache misses and it asks the
  // apiserver, through the proxy, which fails that GET.
  const te::FaultRuleId failing =
      proxy->FailRequests({"GET", "^/api/v1/namespaces/" + ns + "$", 503, std::nullopt, -1});
  destination_client_->Create({"", "v1", "namespaces"}, "",
                              {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}});
  // The standby copy, as an earlier replication left it.
  KubesyncConfig file = ts::MakeKubesyncConfig(kLiveSyncNamespace, ls, kSpecConfig, *source_, *destination_,
                                               nats_server_->url(), redis_->address());
  file.source_cluster.kubeconfig_path = proxy->kubeconfig_path().string();
  const PipelineContext context(file, ComponentId::kProcessor, "test");
  json copy = SourceConfigMap(ns, "a", "uid-a", "40", "old");
  copy["metadata"].erase("uid");
  copy["metadata"].erase("resourceVersion");
  plugins::kubernetes::Stamp(copy, context.stamp(), plugins::kubernetes::SourceVersion{"uid-a", "40", ""});
  destination_client_->Create(kConfigMaps, ns, copy);
  auto pipeline = StartPipeline(file);

  PublishEvent(ls, EventType::kUpsert, SourceConfigMap(ns, "a", "uid-a", "50", "new"));
  auto lookup_failures = [&] {
    int n = 0;
    for (const json& line : (*pipeline)["processor"].LogLines()) {
      n += line.value("msg", "") == "error getting namespace from cluster" ? 1 : 0;
    }
    return n;
  };
  te::WaitFor([&] { return lookup_failures() >= 3; }, kEventually,
              "the processor to retry the failing namespace lookup");
  EXPECT_GE(proxy->MatchCount(failing), 3);
  const auto standby = destination_client_->GetIfExists(kConfigMaps, ns, "a");
  ASSERT_TRUE(standby.has_value()) << "a transient source failure deleted the standby copy";
  EXPECT_EQ((*standby)["data"]["value"], "old");

  // The source answers again (the namespace exists, selected): the event is applied.
  source_client_->Create({"", "v1", "namespaces"}, "",
                         {{"apiVersion", "v1"},
                          {"kind", "Namespace"},
                          {"metadata", {{"name", ns}, {"labels", {{"sync", "true"}}}}}});
  proxy->Clear();
  te::WaitFor(
      [&] {
        const auto object = destination_client_->GetIfExists(kConfigMaps, ns, "a");
        return object && (*object)["data"]["value"] == "new";
      },
      kEventually, "the retried event to be applied");
  EXPECT_THAT(pipeline->StopAll(), ::testing::IsEmpty());
}

// Defect: the synchronizer NAKed a 429 with its own 250 ms backoff and ignored the
// apiserver's Retry-After. The redelivery now waits at least Retry-After.
TEST_F(KubesyncFaultsTest, A429sRetryAfterIsHonouredBeforeTheWriteIsRetried) {
  const std::string ls = "retryafter";
  const std::string ns = "faults-retryafter";
  CreateSyncedNamespace(ns);
  auto proxy = te::FaultProxy::ForCluster(*destination_);
  KubesyncConfig file = ts::MakeKubesyncConfig(kLiveSyncNamespace, ls, kSpecConfig, *source_, *destination_,
                                               nats_server_->url(), redis_->address());
  file.destination_cluster.kubeconfig_path = proxy->kubeconfig_path().string();
  auto pipeline = StartPipeline(file);
  const te::FaultRuleId throttled = proxy->FailRequests(
      {"POST", "^/api/v1/namespaces/" + ns + "/configmaps(\\?|$)", 429, std::optional<int>(4), 1});

  PublishEvent(ls, EventType::kUpsert, SourceConfigMap(ns, "r", "uid-r", "10", "v"));
  te::WaitFor([&] { return proxy->MatchCount(throttled) == 1; }, kEventually, "the create to be throttled");
  const auto throttled_at = std::chrono::steady_clock::now();
  te::WaitFor([&] { return destination_client_->GetIfExists(kConfigMaps, ns, "r").has_value(); }, kEventually,
              "the throttled create to be retried");
  EXPECT_GE(std::chrono::steady_clock::now() - throttled_at, std::chrono::milliseconds{3500})
      << "the create was retried before the 4 s Retry-After";
  EXPECT_THAT(pipeline->StopAll(), ::testing::IsEmpty());
}

// Defect: deletions are handled out of order (a NAK's redelivery, two synchronizer
// replicas), and the tombstone of an earlier deletion replaced the later one's in the
// bucket: a redelivered upsert of the later incarnation then passed and re-created a
// deleted object. The bucket keeps the later deletion's tombstone.
TEST_F(KubesyncFaultsTest, AnEarlierDeletionHandledLastNeverReplacesALaterDeletionsTombstone) {
  const std::string ls = "tombstoneorder";
  const std::string ns = "faults-tombstoneorder";
  CreateSyncedNamespace(ns);
  auto pipeline = StartPipeline(ls);

  PublishEvent(ls, EventType::kUpsert, SourceConfigMap(ns, "b", "uid-1", "10", "v1"));
  te::WaitFor([&] { return destination_client_->GetIfExists(kConfigMaps, ns, "b").has_value(); }, kEventually,
              "configmap b to be replicated");
  // The second incarnation (uid-2, created at 25, deleted at 30) is seen before the
  // first one's deletion (at 20) is.
  PublishEvent(ls, EventType::kDelete, SourceConfigMap(ns, "b", "uid-2", "30", "v2"));
  PublishEvent(ls, EventType::kDelete, SourceConfigMap(ns, "b", "uid-1", "20", "v1"));
  te::WaitFor([&] { return !destination_client_->GetIfExists(kConfigMaps, ns, "b").has_value(); }, kEventually,
              "configmap b to be deleted");
  // A late upsert of the second incarnation, from before its deletion.
  PublishEvent(ls, EventType::kUpsert, SourceConfigMap(ns, "b", "uid-2", "25", "v2"));
  PublishEvent(ls, EventType::kUpsert, SourceConfigMap(ns, "b-sentinel", "uid-s", "31", "s"));
  te::WaitFor([&] { return destination_client_->GetIfExists(kConfigMaps, ns, "b-sentinel").has_value(); },
              kEventually, "the sentinel configmap to be replicated");
  WaitForDrained(ls);
  EXPECT_FALSE(destination_client_->GetIfExists(kConfigMaps, ns, "b").has_value())
      << "an upsert older than the later deletion re-created the object";
  EXPECT_THAT(pipeline->StopAll(), ::testing::IsEmpty());
}

// Defect: the tombstone was only checked before a create. An upsert of a deleted
// incarnation that found the previous incarnation's copy at the destination updated it
// ("newer"), and the previous incarnation's delete, retried after a failure, then saw
// another uid and skipped: a deleted object stayed. The tombstone is now checked before
// any write of another incarnation than the one the destination holds.
TEST_F(KubesyncFaultsTest, AnUpsertOfADeletedIncarnationNeverReplacesTheCopyOfTheOneBefore) {
  const std::string ls = "incarnation";
  const std::string ns = "faults-incarnation";
  CreateSyncedNamespace(ns);
  auto pipeline = StartPipeline(ls);

  PublishEvent(ls, EventType::kUpsert, SourceConfigMap(ns, "d", "uid-1", "10", "v1"));
  te::WaitFor([&] { return destination_client_->GetIfExists(kConfigMaps, ns, "d").has_value(); }, kEventually,
              "configmap d to be replicated");
  // uid-1 deleted at 20 (its delete comes last, as after a failed attempt), uid-2
  // created at 25 and deleted at 30.
  PublishEvent(ls, EventType::kDelete, SourceConfigMap(ns, "d", "uid-2", "30", "v2"));
  PublishEvent(ls, EventType::kUpsert, SourceConfigMap(ns, "d", "uid-2", "25", "v2"));
  PublishEvent(ls, EventType::kDelete, SourceConfigMap(ns, "d", "uid-1", "20", "v1"));
  PublishEvent(ls, EventType::kUpsert, SourceConfigMap(ns, "d-sentinel", "uid-s", "31", "s"));
  te::WaitFor([&] { return destination_client_->GetIfExists(kConfigMaps, ns, "d-sentinel").has_value(); },
              kEventually, "the sentinel configmap to be replicated");
  WaitForDrained(ls);
  EXPECT_FALSE(destination_client_->GetIfExists(kConfigMaps, ns, "d").has_value())
      << "a deleted incarnation took over the previous one's copy and outlived both deletions";
  EXPECT_THAT(pipeline->StopAll(), ::testing::IsEmpty());
}

// Defect: with two synchronizer replicas, one created an object while the other handled
// its source deletion: the deleting one found nothing at the destination yet (the create
// was in flight) and acked, the create then landed, and the deleted object stayed at the
// destination until the next periodic resync. The creator now reads the tombstone after
// its create and deletes what it created when the deletion got there first.
TEST_F(KubesyncFaultsTest, AnObjectCreatedWhileAnotherReplicaAppliedItsDeletionIsRemoved) {
  const std::string ls = "createrace";
  const std::string ns = "faults-createrace";
  CreateSyncedNamespace(ns);
  // The slow replica reaches the destination through a proxy that will hold its create.
  auto proxy = te::FaultProxy::ForCluster(*destination_);
  KubesyncConfig file = ts::MakeKubesyncConfig(kLiveSyncNamespace, ls, kSpecConfig, *source_, *destination_,
                                               nats_server_->url(), redis_->address());
  const auto fast_config = dir_->path() / (ls + "-fast.json");
  ts::WriteKubesyncConfig(fast_config, file);
  file.destination_cluster.kubeconfig_path = proxy->kubeconfig_path().string();
  auto pipeline = StartPipeline(file);  // processor + the slow synchronizer
  ts::KubesyncProcess& slow = (*pipeline)["synchronizer"];
  std::filesystem::create_directories(dir_->path() / (ls + "-fast"));
  ts::KubesyncProcess fast("synchronizer", fast_config, dir_->path() / (ls + "-fast") / "synchronizer.log");
  fast.Start();
  // A fetch waits at most 500 ms: once it expired, a stopped replica gets no message.
  const auto pause = [](ts::KubesyncProcess& p) {
    ::kill(p.pid(), SIGSTOP);
    const auto until = std::chrono::steady_clock::now() + 1500ms;
    te::WaitFor([&] { return std::chrono::steady_clock::now() >= until; }, 5s, "pending fetches to expire", 20ms);
  };

  pause(fast);
  proxy->SetLatency(3000ms);
  const std::uint64_t connections = proxy->connections_accepted();
  PublishEvent(ls, EventType::kUpsert, SourceConfigMap(ns, "c", "uid-1", "10", "v1"));
  te::WaitFor([&] { return proxy->connections_accepted() > connections; }, kEventually,
              "the slow replica to send its create");
  pause(slow);
  ::kill(fast.pid(), SIGCONT);
  PublishEvent(ls, EventType::kDelete, SourceConfigMap(ns, "c", "uid-1", "12", "v1"));
  // The fast replica handled the deletion (only the slow one's create is unacknowledged)
  // while the create is still held by the proxy.
  const PipelineNames names(kLiveSyncNamespace, ls);
  te::WaitFor(
      [&] {
        const ConsumerState state = nats_->GetConsumerState(names.stream(), "synchronizer");
        return state.num_pending == 0 && state.num_ack_pending == 1;
      },
      kEventually, "the fast replica to handle the deletion");
  EXPECT_FALSE(destination_client_->GetIfExists(kConfigMaps, ns, "c").has_value());

  ::kill(slow.pid(), SIGCONT);
  te::WaitFor([&] { return destination_client_->GetIfExists(kConfigMaps, ns, "c").has_value(); }, kEventually,
              "the slow replica's create to land");
  proxy->Clear();
  WaitForDrained(ls);
  te::WaitFor([&] { return !destination_client_->GetIfExists(kConfigMaps, ns, "c").has_value(); }, kEventually,
              "the object created after its deletion to be removed");
  EXPECT_EQ(fast.Stop(), "exit status 0");
  EXPECT_THAT(pipeline->StopAll(), ::testing::IsEmpty());
}

// Defect: the consumers' ack wait was 30 s, so whatever a killed synchronizer (or
// processor, or a nats-server restart) had been handed and not acknowledged waited 30 s
// before anyone got it again. The ack wait is now kConsumerAckWait (5 s).
TEST_F(KubesyncFaultsTest, WhatAKilledSynchronizerHeldIsDeliveredAgainWithinSeconds) {
  const std::string ls = "killedholder";
  const std::string ns = "faults-killedholder";
  CreateSyncedNamespace(ns);
  auto proxy = te::FaultProxy::ForCluster(*destination_);
  KubesyncConfig file = ts::MakeKubesyncConfig(kLiveSyncNamespace, ls, kSpecConfig, *source_, *destination_,
                                               nats_server_->url(), redis_->address());
  const auto direct_config = dir_->path() / (ls + "-direct.json");
  ts::WriteKubesyncConfig(direct_config, file);
  file.destination_cluster.kubeconfig_path = proxy->kubeconfig_path().string();
  auto pipeline = StartPipeline(file);  // processor + a synchronizer whose writes will hang

  proxy->Blackhole(120s);
  PublishEvent(ls, EventType::kUpsert, SourceConfigMap(ns, "k", "uid-k", "10", "v"));
  const PipelineNames names(kLiveSyncNamespace, ls);
  te::WaitFor([&] { return nats_->GetConsumerState(names.stream(), "synchronizer").num_ack_pending == 1; },
              kEventually, "the synchronizer to hold the message");
  (*pipeline)["synchronizer"].Kill();
  const auto killed = std::chrono::steady_clock::now();
  proxy->Clear();
  std::filesystem::create_directories(dir_->path() / (ls + "-direct"));
  ts::KubesyncProcess other("synchronizer", direct_config, dir_->path() / (ls + "-direct") / "synchronizer.log");
  other.Start();
  // Delivered again after the ack wait (5 s, plus the replacement's start-up), not 30 s.
  te::WaitFor([&] { return destination_client_->GetIfExists(kConfigMaps, ns, "k").has_value(); }, 20s,
              "the message the killed synchronizer held to be applied by the other one");
  std::printf("[ faults   ] applied %.1f s after the kill\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count());
  EXPECT_EQ(other.Stop(), "exit status 0");
  EXPECT_THAT(pipeline->StopAll(), ::testing::IsEmpty());
}

// With a short ack wait, a message held longer (a slow destination, a long lane queue)
// would be delivered a second time while the first delivery is still being handled. The
// consumer tells JetStream it is in progress instead (kInProgressInterval).
TEST_F(KubesyncFaultsTest, AMessageHeldLongerThanTheAckWaitIsNotDeliveredAgain) {
  const std::string ls = "slowapply";
  const std::string ns = "faults-slowapply";
  CreateSyncedNamespace(ns);
  auto proxy = te::FaultProxy::ForCluster(*destination_);
  KubesyncConfig file = ts::MakeKubesyncConfig(kLiveSyncNamespace, ls, kSpecConfig, *source_, *destination_,
                                               nats_server_->url(), redis_->address());
  file.destination_cluster.kubeconfig_path = proxy->kubeconfig_path().string();
  auto pipeline = StartPipeline(file);

  // The create's round trip takes 2 x 4 s, longer than the 5 s ack wait.
  proxy->SetLatency(4000ms);
  const auto published = std::chrono::steady_clock::now();
  PublishEvent(ls, EventType::kUpsert, SourceConfigMap(ns, "s", "uid-s", "10", "v"));
  const PipelineNames names(kLiveSyncNamespace, ls);
  te::WaitFor([&] { return nats_->GetConsumerState(names.stream(), "synchronizer").num_ack_pending == 1; },
              kEventually, "the synchronizer to hold the message", 20ms);
  std::int64_t redelivered = 0;
  te::WaitFor(
      [&] {
        const ConsumerState state = nats_->GetConsumerState(names.stream(), "synchronizer");
        redelivered = std::max(redelivered, state.num_redelivered);
        return state.num_pending == 0 && state.num_ack_pending == 0;
      },
      kEventually, "the slow create to be acknowledged", 100ms);
  std::printf("[ faults   ] acknowledged %.1f s after it was published\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - published).count());
  EXPECT_TRUE(destination_client_->GetIfExists(kConfigMaps, ns, "s").has_value());
  proxy->Clear();
  WaitForDrained(ls);
  EXPECT_EQ(redelivered, 0) << "a message still being handled was delivered again";
  EXPECT_THAT(pipeline->StopAll(), ::testing::IsEmpty());
}

// Defect: a prune left no tombstone, so while the events listener was catching up (after
// a NATS outage) an upsert of a pruned object it had read before the object's deletion
// re-created the copy, until the deletion event itself arrived. A prune of an object the
// source no longer has now keeps a tombstone like a source deletion.
TEST_F(KubesyncFaultsTest, AnUpsertOlderThanAPruneOfAnObjectGoneFromTheSourceNeverRecreatesIt) {
  const std::string ls = "prunedlate";
  const std::string ns = "faults-prunedlate";
  CreateSyncedNamespace(ns);
  const auto config_path = dir_->path() / (ls + ".json");
  ts::WriteKubesyncConfig(config_path, ts::MakeKubesyncConfig(kLiveSyncNamespace, ls, kSpecConfig, *source_,
                                                              *destination_, nats_server_->url(), redis_->address()));
  std::filesystem::create_directories(dir_->path() / ls);
  ts::KubesyncPipeline pipeline(config_path, dir_->path() / ls, {"processor", "synchronizer", "reconciler"});
  pipeline["processor"].Start();
  pipeline["synchronizer"].Start();
  // A copy of an object the source does not have (any more).
  PublishEvent(ls, EventType::kUpsert, SourceConfigMap(ns, "p", "uid-p", "10", "v1"));
  te::WaitFor([&] { return destination_client_->GetIfExists(kConfigMaps, ns, "p").has_value(); }, kEventually,
              "configmap p to be replicated");
  pipeline["reconciler"].Start();  // its start-up pass prunes p
  te::WaitFor([&] { return !destination_client_->GetIfExists(kConfigMaps, ns, "p").has_value(); }, kEventually,
              "configmap p to be pruned");
  // The listener, behind, now publishes an update it saw before the deletion.
  PublishEvent(ls, EventType::kUpsert, SourceConfigMap(ns, "p", "uid-p", "12", "v2"));
  PublishEvent(ls, EventType::kUpsert, SourceConfigMap(ns, "p-sentinel", "uid-s", "13", "s"));
  te::WaitFor([&] { return destination_client_->GetIfExists(kConfigMaps, ns, "p-sentinel").has_value(); },
              kEventually, "the sentinel configmap to be replicated");
  WaitForDrained(ls);
  EXPECT_FALSE(destination_client_->GetIfExists(kConfigMaps, ns, "p").has_value())
      << "an upsert of an object gone from the source re-created its pruned copy";
  EXPECT_THAT(pipeline.StopAll(), ::testing::IsEmpty());
}

// Defect: a nats-server that lost its store (a lost volume, a restart without it) came
// back without the stream; nobody created it again (a fetch from the vanished consumer
// just returns nothing), and once something did, the events the old stream still held
// for the processor were gone until the next periodic resync (1 h by default). Now the
// consumers bind again after every reconnect (creating the stream and the consumers),
// and the events listener, seeing a stream created again, publishes the whole source
// state at once and asks the reconciler for a pass (the deletions among the lost events).
TEST_F(KubesyncFaultsTest, EventsLostWithTheNatsStoreAreRecoveredWithoutWaitingForTheResync) {
  const std::string ls = "storelost";
  const std::string ns = "faults-storelost";
  CreateSyncedNamespace(ns);
  te::NatsServer nats;  // its own server: this test destroys its store
  const auto config_path = dir_->path() / (ls + ".json");
  ts::WriteKubesyncConfig(config_path, ts::MakeKubesyncConfig(kLiveSyncNamespace, ls, kSpecConfig, *source_,
                                                              *destination_, nats.url(), redis_->address()));
  std::filesystem::create_directories(dir_->path() / ls);
  ts::KubesyncPipeline pipeline(config_path, dir_->path() / ls);
  pipeline.StartAll();
  auto object = [&](const std::string& name, const std::string& value) {
    return json{{"apiVersion", "v1"},
                {"kind", "ConfigMap"},
                {"metadata", {{"name", name}, {"namespace", ns}}},
                {"data", {{"value", value}}}};
  };
  auto value_at_destination = [&](const std::string& name) -> std::string {
    const auto found = destination_client_->GetIfExists(kConfigMaps, ns, name);
    return found ? (*found)["data"].value("value", "") : "<absent>";
  };
  source_client_->Create(kConfigMaps, ns, object("a", "v1"));
  source_client_->Create(kConfigMaps, ns, object("b", "v1"));
  te::WaitFor([&] { return value_at_destination("a") == "v1" && value_at_destination("b") == "v1"; }, kEventually,
              "a and b to be replicated");

  // Changes that reach the stream but not the processor, then the store is lost.
  EXPECT_EQ(pipeline["processor"].Stop(), "exit status 0");
  source_client_->Patch(kConfigMaps, ns, "a", kube::PatchType::kMergePatch, R"({"data": {"value": "v2"}})");
  source_client_->Delete(kConfigMaps, ns, "b");
  source_client_->Create(kConfigMaps, ns, object("c", "v1"));
  {
    auto client = NatsConnection::Connect(nats.url(), "kubesync-faults-test-storelost");
    te::WaitFor([&] { return client->GetStreamState(PipelineNames(kLiveSyncNamespace, ls).stream()).messages >= 3; },
                kEventually, "the three changes to be stored in the stream");
  }
  nats.Kill();
  nats.DeleteStore();
  nats.Start();
  pipeline["processor"].Start();

  te::WaitFor(
      [&] {
        return value_at_destination("a") == "v2" && value_at_destination("b") == "<absent>" &&
               value_at_destination("c") == "v1";
      },
      kEventually, "the changes lost with the store to be replicated");
  bool logged = false;
  for (const json& line : pipeline["events-listener"].LogLines()) {
    logged = logged || line.value("msg", "") == "stream created again; publishing every object again";
  }
  EXPECT_TRUE(logged);
  EXPECT_THAT(pipeline.StopAll(), ::testing::IsEmpty());
}

}  // namespace
}  // namespace ro::kubesync

// Pure logic of the Kubesync components: the configuration file, the synchronizer's
// applied-state cache and tombstones, the lane hashing, and the retry delays. The stage
// runtime with its stages: kubesync_stage_test.cc.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>
#include <memory>
#include <set>
#include <string>

#include "../../src/kubesync/components/applied_state.h"
#include "../../src/kubesync/components/stage_runner.h"
#include "ro/kube/clock.h"
#include "ro/kube/store.h"
#include "ro/kubesync/component.h"
#include "ro/kubesync/run_component.h"
#include "ro/kubesync/pipeline_context.h"
#include "ro/kubesync/stage.h"
#include "ro/kubesync/kubesync_config.h"
#include "ro/plugins/kubernetes/allocated_fields.h"

namespace ro::kubesync {
namespace {

using nlohmann::json;
using plugins::kubernetes::CarryOverAllocatedFields;
using namespace std::chrono_literals;

const json kDocument = json::parse(R"({
  "liveSynchronization": {"namespace": "dr-config", "name": "pre", "uid": "u-1", "generation": 3},
  "config": {"sourceName": "source", "destinationName": "destination", "bucketName": "bucket-dev",
             "replication": {"resources": [{"version": "v1", "resource": "configmaps"}]}},
  "sourceCluster": {"name": "source", "namespace": "dr-config", "uid": "u-2", "resourceVersion": "7",
                    "kubeconfigPath": "/etc/kubesync/source/kubeconfig.yaml"},
  "destinationCluster": {"name": "destination", "namespace": "dr-config", "uid": "u-3", "resourceVersion": "8",
                         "kubeconfigPath": "/etc/kubesync/destination/kubeconfig.yaml"},
  "bucket": {"name": "bucket-dev", "namespace": "dr-config", "provider": "generic", "endpoint": "127.0.0.1:4569",
             "useSSL": false, "bucketName": "originals", "credentialsPath": "/etc/kubesync/bucket"},
  "natsUrl": "nats://nats:4222", "redisAddr": "redis:6379"
})");

TEST(KubesyncConfig, ParsesTheDocumentAndWritesItBackUnchanged) {
  const KubesyncConfig config = KubesyncConfigFromJson(kDocument);
  EXPECT_EQ(config.live_synchronization.ns, "dr-config");
  EXPECT_EQ(config.live_synchronization.name, "pre");
  EXPECT_EQ(config.generation, 3);
  EXPECT_EQ((*config.spec_config)["bucketName"], "bucket-dev");
  EXPECT_EQ(config.source_cluster.identity.resource_version, "7");
  EXPECT_EQ(config.destination_cluster.kubeconfig_path, "/etc/kubesync/destination/kubeconfig.yaml");
  ASSERT_TRUE(config.bucket.has_value());
  EXPECT_FALSE(config.bucket->use_ssl);
  EXPECT_EQ(config.bucket->bucket_name, "originals");
  EXPECT_EQ(config.nats_url, "nats://nats:4222");
  EXPECT_EQ(KubesyncConfigFromJson(ToJson(config)).bucket->credentials_path, "/etc/kubesync/bucket");
  EXPECT_EQ(ToJson(KubesyncConfigFromJson(ToJson(config))), ToJson(config));
}

TEST(KubesyncConfig, DefaultsTheServerAddressesAndAcceptsANullBucket) {
  json document = kDocument;
  document.erase("natsUrl");
  document.erase("redisAddr");
  document["bucket"] = nullptr;
  const KubesyncConfig config = KubesyncConfigFromJson(document);
  EXPECT_FALSE(config.bucket.has_value());
  EXPECT_EQ(config.nats_url, "nats://127.0.0.1:4222");
  EXPECT_EQ(config.redis_addr, "127.0.0.1:6379");
  EXPECT_EQ(config.nats_replicas, 1);  // a file written before NATS clusters
  document["liveSynchronization"].erase("generation");  // a file written before it existed
  EXPECT_EQ(KubesyncConfigFromJson(document).generation, 0);
}

TEST(KubesyncConfig, NamesTheMissingOrMistypedField) {
  const auto field_of = [](json document) {
    try {
      KubesyncConfigFromJson(document);
    } catch (const KubesyncConfigError& e) {
      return e.field();
    }
    return std::string("no error");
  };
  json no_kubeconfig = kDocument;
  no_kubeconfig["sourceCluster"].erase("kubeconfigPath");
  EXPECT_EQ(field_of(no_kubeconfig), "sourceCluster.kubeconfigPath");
  json bad_provider = kDocument;
  bad_provider["bucket"]["provider"] = "ftp";
  EXPECT_EQ(field_of(bad_provider), "bucket.provider");
  json no_credentials = kDocument;
  no_credentials["bucket"].erase("credentialsPath");
  EXPECT_EQ(field_of(no_credentials), "bucket.credentialsPath");
  json config_not_object = kDocument;
  config_not_object["config"] = "x";
  EXPECT_EQ(field_of(config_not_object), "config");
  for (const json& replicas : {json(2), json(0), json("3")}) {
    json bad_replicas = kDocument;
    bad_replicas["natsReplicas"] = replicas;
    EXPECT_EQ(field_of(bad_replicas), "natsReplicas") << replicas;
  }
  json three = kDocument;
  three["natsReplicas"] = 3;
  three["natsUrl"] = "nats://a:4222,nats://b:4222,nats://c:4222";
  EXPECT_EQ(KubesyncConfigFromJson(three).nats_replicas, 3);
  json negative_generation = kDocument;
  negative_generation["liveSynchronization"]["generation"] = -1;
  EXPECT_EQ(field_of(negative_generation), "liveSynchronization.generation");
  EXPECT_EQ(field_of(json::array()), "");
}

TEST(PipelineContext, RejectsABucketNameWithoutABucketInTheFile) {
  json document = kDocument;
  document["bucket"] = nullptr;
  EXPECT_THROW(PipelineContext(KubesyncConfigFromJson(document), ComponentId::kProcessor, "p-1"), KubesyncConfigError);
  const PipelineContext context(KubesyncConfigFromJson(kDocument), ComponentId::kProcessor, "p-1");
  EXPECT_EQ(context.names().id(), "dr-config.pre");
  EXPECT_EQ(context.stamp().source_cluster, "dr-config/source");
  EXPECT_EQ(context.concurrent_tasks(), 8);  // the processor's default
  EXPECT_EQ(context.BucketField()["name"], "bucket-dev");
  EXPECT_FALSE(context.BucketField().contains("secretAccessKey"));
}

TEST(ComponentIds, MatchTheManualsProcessIds) {
  EXPECT_EQ(ProcessId(ComponentId::kEventsListener), "eventslistener");
  EXPECT_EQ(ProcessId(ComponentId::kMetricsExporter), "metricsexporter");
  EXPECT_EQ(SubcommandName(ComponentId::kEventsListener), "events-listener");
}

TEST(NakDelay, DoublesFrom250MillisecondsUpToThreeSeconds) {
  EXPECT_EQ(NakDelay(1), 250ms);
  EXPECT_EQ(NakDelay(2), 500ms);
  EXPECT_EQ(NakDelay(4), 2000ms);
  EXPECT_EQ(NakDelay(5), 3s);
  EXPECT_EQ(NakDelay(50), 3s);
}

TEST(NakDelay, WaitsAtLeastTheServersRetryAfterClippedToAMinute) {
  EXPECT_EQ(NakDelay(1, 0s), 250ms);
  EXPECT_EQ(NakDelay(1, 3s), 3s);
  EXPECT_EQ(NakDelay(50, 2s), 3s);  // the backoff is longer already
  EXPECT_EQ(NakDelay(1, 3600s), 60s);
}

Envelope EventFor(const std::string& ns, const std::string& name) {
  Envelope e;
  e.gvr = {"", "v1", "configmaps"};
  e.object = {{"metadata", {{"name", name}, {"namespace", ns}}}};
  return e;
}

TEST(StageRunner, AnObjectAlwaysMapsToTheSameLaneAndObjectsSpreadOverLanes) {
  std::set<std::size_t> used;
  for (int i = 0; i < 64; ++i) {
    const Envelope e = EventFor("ns", "cm-" + std::to_string(i));
    const std::size_t lane = StageRunner::LaneOf(e, 8);
    EXPECT_LT(lane, 8u);
    EXPECT_EQ(StageRunner::LaneOf(e, 8), lane);
    used.insert(lane);
  }
  EXPECT_GT(used.size(), 4u);
  Envelope update = EventFor("ns", "cm-1");
  update.type = EventType::kDelete;
  update.object["data"] = {{"k", "v"}};
  EXPECT_EQ(StageRunner::LaneOf(update, 8), StageRunner::LaneOf(EventFor("ns", "cm-1"), 8));
}

constexpr std::string_view kManagedBy = "dr-config.pre";

// A destination object this LiveSynchronization manages, as its reflector delivers it.
kube::ObjectPtr Meta(const std::string& name, const std::string& rv, const std::string& source_rv = "1") {
  return std::make_shared<const json>(json{
      {"metadata",
       {{"name", name},
        {"namespace", "ns"},
        {"uid", "d-" + name},
        {"resourceVersion", rv},
        {"labels", {{"kubesync.astronetes.io/managed-by", kManagedBy}}},
        {"annotations", {{"kubesync.astronetes.io/source-resource-version", source_rv}}}}}});
}

class AppliedStateCacheTest : public ::testing::Test {
 protected:
  // A write's result for `object`.
  void Written(const kube::ObjectPtr& object) {
    cache_.RecordWritten(gvr_, kube::ObjectStoreKey(*object), cache_.StateOf(configmaps_, *object));
  }
  std::string CurrentVersion(std::string_view key) const {
    const DestinationStatePtr current = cache_.Get(gvr_, key).current;
    return current ? current->resource_version : "<absent>";
  }

  kube::FakeClock clock_;
  const kube::GroupVersionResource configmaps_{"", "v1", "configmaps"};
  AppliedStateCache cache_{{configmaps_}, std::string(kManagedBy), clock_, 10min};
  kube::ReflectorSink& watch_ = cache_.Sink("v1/configmaps");
  const std::string gvr_ = "v1/configmaps";
};

TEST_F(AppliedStateCacheTest, KeepsOnlyTheNewestDestinationVersion) {
  Written(Meta("a", "20", "5"));
  watch_.Update(Meta("a", "10", "4"));  // the watch's late event
  EXPECT_EQ(CurrentVersion("ns/a"), "20");
  watch_.Update(Meta("a", "30", "6"));
  EXPECT_EQ(CurrentVersion("ns/a"), "30");
  EXPECT_EQ(cache_.Get(gvr_, "ns/a").current->source_resource_version, "6");
  EXPECT_EQ(cache_.LiveCount(gvr_), 1u);
}

TEST_F(AppliedStateCacheTest, AWatchedDeletionRemovesUnlessTheObjectWasRecreatedSince) {
  watch_.Add(Meta("a", "10"));
  Written(Meta("a", "40"));  // re-created by us after a deletion at 30
  watch_.Delete(Meta("a", "30"));
  EXPECT_TRUE(cache_.Get(gvr_, "ns/a").current);
  watch_.Delete(Meta("a", "50"));
  EXPECT_FALSE(cache_.Get(gvr_, "ns/a").current);
  EXPECT_EQ(cache_.LiveCount(gvr_), 0u);
}

TEST_F(AppliedStateCacheTest, AListReplacesWhatItCoversAndKeepsWritesNewerThanItself) {
  EXPECT_FALSE(cache_.WaitForSync(std::stop_token{}, 0ms));
  watch_.Add(Meta("gone", "10"));
  watch_.Add(Meta("kept", "11"));
  Written(Meta("written-after", "60"));
  cache_.RecordSourceDeleted(gvr_, "ns/deleted", {"uid-d", "7"});
  std::vector<kube::ObjectPtr> list = {Meta("kept", "12"), Meta("new", "13")};
  watch_.Replace(std::move(list), "50");
  EXPECT_TRUE(cache_.WaitForSync(std::stop_token{}, 0ms));
  EXPECT_EQ(CurrentVersion("ns/gone"), "<absent>");        // deleted while the watch was down
  EXPECT_EQ(CurrentVersion("ns/kept"), "12");
  EXPECT_EQ(CurrentVersion("ns/new"), "13");
  EXPECT_EQ(CurrentVersion("ns/written-after"), "60");     // our write after the list's revision
  EXPECT_TRUE(cache_.Get(gvr_, "ns/deleted").tombstone);   // tombstones outlive lists
  EXPECT_EQ(cache_.LiveCount(gvr_), 3u);
}

// The reflector hands a list over page by page; a restarted list (expired continue token)
// begins again. The outcome is Replace's.
TEST_F(AppliedStateCacheTest, AListTakenPageByPageEndsAsAReplace) {
  ASSERT_TRUE(watch_.StreamsLists());
  watch_.Add(Meta("gone", "10"));
  watch_.Add(Meta("kept", "11"));
  watch_.BeginList();
  watch_.ListPage({Meta("gone", "10")});  // the list that restarts had it...
  watch_.BeginList();                     // ...the restarted one does not
  watch_.ListPage({Meta("kept", "12")});
  watch_.ListPage({Meta("new", "13")});
  EXPECT_FALSE(cache_.WaitForSync(std::stop_token{}, 0ms));
  watch_.EndList("50");
  EXPECT_TRUE(cache_.WaitForSync(std::stop_token{}, 0ms));
  EXPECT_EQ(CurrentVersion("ns/gone"), "<absent>");
  EXPECT_EQ(CurrentVersion("ns/kept"), "12");
  EXPECT_EQ(CurrentVersion("ns/new"), "13");
  EXPECT_EQ(cache_.LiveCount(gvr_), 2u);
}

TEST_F(AppliedStateCacheTest, KeepsTheDecisionsInputsAndAServicesAllocatedFields) {
  const kube::GroupVersionResource services{"", "v1", "services"};
  const json service = {
      {"metadata",
       {{"name", "web"}, {"namespace", "ns"}, {"uid", "d-1"}, {"resourceVersion", "9"},
        {"deletionTimestamp", "2024-01-01T00:00:00Z"},
        {"labels", {{"kubesync.astronetes.io/managed-by", "someone-else"}}},
        {"annotations",
         {{"kubesync.astronetes.io/source-uid", "s-1"}, {"kubesync.astronetes.io/source-resource-version", "77"},
          {"kubesync.astronetes.io/transformation", "0123456789abcdef"}}}}},
      {"spec", {{"clusterIP", "10.0.0.12"}, {"selector", {{"app", "web"}}}}}};
  const DestinationStatePtr state = cache_.StateOf(services, service);
  EXPECT_EQ(state->uid, "d-1");
  EXPECT_EQ(state->resource_version, "9");
  EXPECT_TRUE(state->terminating);
  EXPECT_EQ(state->manager, plugins::kubernetes::DestinationState::Manager::kOther);
  EXPECT_EQ(state->source_uid, "s-1");
  EXPECT_EQ(state->source_resource_version, "77");
  EXPECT_EQ(state->transformation_fingerprint, "0123456789abcdef");
  ASSERT_TRUE(state->allocated);
  EXPECT_EQ(*state->allocated, json({{"spec", {{"clusterIP", "10.0.0.12"}}}}));
  EXPECT_FALSE(cache_.StateOf(configmaps_, *Meta("a", "1"))->allocated);
  EXPECT_EQ(cache_.StateOf(configmaps_, *Meta("a", "1"))->manager,
            plugins::kubernetes::DestinationState::Manager::kThis);
  EXPECT_FALSE(cache_.StateOf(configmaps_, json{{"metadata", {{"name", "a"}}}})->stamped());
}

TEST_F(AppliedStateCacheTest, ASourceDeletionLeavesATombstoneThatLateEventsDoNotRevive) {
  Written(Meta("a", "10"));
  cache_.RecordSourceDeleted(gvr_, "ns/a", {"uid-1", "70"});
  AppliedStateCache::Lookup lookup = cache_.Get(gvr_, "ns/a");
  EXPECT_FALSE(lookup.current);
  ASSERT_TRUE(lookup.tombstone);
  EXPECT_EQ(lookup.tombstone->source_uid, "uid-1");
  EXPECT_EQ(lookup.tombstone->source_resource_version, "70");
  watch_.Update(Meta("a", "10"));  // the state our deletion removed
  watch_.Delete(Meta("a", "11"));  // the deletion itself
  ASSERT_TRUE(cache_.Get(gvr_, "ns/a").tombstone);
  EXPECT_EQ(cache_.Get(gvr_, "ns/a").tombstone->source_uid, "uid-1");
  EXPECT_EQ(cache_.LiveCount(gvr_), 0u);
  watch_.Add(Meta("a", "12"));  // really re-created at the destination
  EXPECT_TRUE(cache_.Get(gvr_, "ns/a").current);
  EXPECT_FALSE(cache_.Get(gvr_, "ns/a").tombstone);
  EXPECT_EQ(cache_.LiveCount(gvr_), 1u);
}

TEST_F(AppliedStateCacheTest, ALaterDeletionsTombstoneIsNotReplacedByAnEarlierOne) {
  cache_.RecordSourceDeleted(gvr_, "ns/a", {"uid-2", "90"});
  cache_.RecordSourceDeleted(gvr_, "ns/a", {"uid-1", "70"});  // redelivered, older
  ASSERT_TRUE(cache_.Get(gvr_, "ns/a").tombstone);
  EXPECT_EQ(cache_.Get(gvr_, "ns/a").tombstone->source_uid, "uid-2");
  cache_.RecordSourceDeleted(gvr_, "ns/a", {"uid-3", "95"});
  EXPECT_EQ(cache_.Get(gvr_, "ns/a").tombstone->source_uid, "uid-3");
}

TEST_F(AppliedStateCacheTest, TombstonesExpireAfterTheirTimeToLive) {
  cache_.RecordSourceDeleted(gvr_, "ns/a", {"uid-1", "70"});
  cache_.RecordSourceDeleted(gvr_, "ns/b", {"uid-b", "71"});
  clock_.Advance(5min);
  cache_.RecordSourceDeleted(gvr_, "ns/b", {"uid-b2", "80"});  // deleted again: its time restarts
  clock_.Advance(4min);
  EXPECT_EQ(cache_.ExpireTombstones(), 0u);
  clock_.Advance(2min);
  EXPECT_EQ(cache_.ExpireTombstones(), 1u);
  EXPECT_FALSE(cache_.Get(gvr_, "ns/a").tombstone);
  ASSERT_TRUE(cache_.Get(gvr_, "ns/b").tombstone);
  clock_.Advance(5min);
  EXPECT_EQ(cache_.ExpireTombstones(), 1u);
  EXPECT_FALSE(cache_.Get(gvr_, "ns/b").tombstone);
  EXPECT_EQ(cache_.ExpireTombstones(), 0u);
}

TEST_F(AppliedStateCacheTest, AnAbsentObjectForgetsItsEntryButKeepsATombstone) {
  Written(Meta("a", "10"));
  cache_.RecordAbsent(gvr_, "ns/a");
  EXPECT_FALSE(cache_.Get(gvr_, "ns/a").current);
  cache_.RecordSourceDeleted(gvr_, "ns/b", {"uid-b", "5"});
  cache_.RecordAbsent(gvr_, "ns/b");
  ASSERT_TRUE(cache_.Get(gvr_, "ns/b").tombstone);
  EXPECT_EQ(cache_.Get(gvr_, "ns/b").tombstone->source_uid, "uid-b");
}

TEST(CarryOverAllocatedFields, AnUpdatedServiceKeepsItsClusterIPAndNodePorts) {
  const kube::GroupVersionResource services{"", "v1", "services"};
  json current = {{"metadata", {{"name", "web"}, {"resourceVersion", "9"}}},
                  {"spec",
                   {{"clusterIP", "10.0.0.12"},
                    {"clusterIPs", {"10.0.0.12"}},
                    {"type", "NodePort"},
                    {"selector", {{"app", "web"}}},
                    {"ports", {{{"port", 80}, {"protocol", "TCP"}, {"nodePort", 30080}},
                               {{"port", 53}, {"protocol", "UDP"}, {"nodePort", 30053}}}}}},
                  {"status", json::object()}};
  kube::FakeClock clock;
  const AppliedStateCache cache({services}, "dr-config.pre", clock, 10min);
  const DestinationStatePtr cached = cache.StateOf(services, current);
  ASSERT_TRUE(cached->allocated);
  EXPECT_FALSE((*cached->allocated)["spec"].contains("selector"));
  EXPECT_FALSE(cached->allocated->contains("status"));
  EXPECT_EQ((*cached->allocated)["spec"]["clusterIP"], "10.0.0.12");

  json desired = {{"metadata", {{"name", "web"}}},
                  {"spec", {{"type", "NodePort"},
                            {"ports", {{{"port", 80}, {"protocol", "TCP"}}, {{"port", 53}, {"protocol", "UDP"}},
                                       {{"port", 443}}}}}}};
  CarryOverAllocatedFields(services, desired, *cached->allocated);
  EXPECT_EQ(desired["spec"]["clusterIP"], "10.0.0.12");
  EXPECT_EQ(desired["spec"]["clusterIPs"], json({"10.0.0.12"}));
  EXPECT_EQ(desired["spec"]["ports"][0]["nodePort"], 30080);
  EXPECT_EQ(desired["spec"]["ports"][1]["nodePort"], 30053);
  EXPECT_FALSE(desired["spec"]["ports"][2].contains("nodePort"));  // a new port gets a new one
}

TEST(CarryOverAllocatedFields, OnlyFillsWhatTheDesiredObjectLacks) {
  const kube::GroupVersionResource services{"", "v1", "services"};
  json desired = {{"spec", {{"clusterIP", "None"}}}};
  CarryOverAllocatedFields(services, desired, {{"spec", {{"clusterIP", "10.0.0.1"}}}});
  EXPECT_EQ(desired["spec"]["clusterIP"], "None");
  json claim = {{"spec", {{"resources", json::object()}}}};
  CarryOverAllocatedFields({"", "v1", "persistentvolumeclaims"}, claim, {{"spec", {{"volumeName", "pv-1"}}}});
  EXPECT_EQ(claim["spec"]["volumeName"], "pv-1");
  json config = {{"data", json::object()}};
  CarryOverAllocatedFields({"", "v1", "configmaps"}, config, {{"spec", {{"volumeName", "pv-1"}}}});
  EXPECT_FALSE(config.contains("spec"));
}

}  // namespace
}  // namespace ro::kubesync

namespace ro::kubesync {
namespace {

// WaitForConfig (run_component.h): a deployments-runner pod waits for the configuration
// its template names; the kubelet may first mount the previous copy of the Secret.
TEST(WaitForConfigTest, ReturnsAtOnceForTheCurrentFileAndWaitsForAStaleOne) {
  const std::string dir = ::testing::TempDir();
  const std::string path = dir + "/wait-for-config.json";
  const auto write = [&](const std::string& hash) {
    std::ofstream(path, std::ios::trunc) << nlohmann::json{{"configHash", hash}, {"natsUrl", "x"}}.dump();
  };
  write("new");
  EXPECT_TRUE(WaitForConfig(path, "new", std::chrono::milliseconds{0}));
  write("old");
  EXPECT_FALSE(WaitForConfig(path, "new", std::chrono::milliseconds{50}, std::chrono::milliseconds{10}));
  // The kubelet refreshes the volume: the wait ends.
  std::thread refresh([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
    write("new");
  });
  EXPECT_TRUE(WaitForConfig(path, "new", std::chrono::seconds{10}, std::chrono::milliseconds{10}));
  refresh.join();
  std::remove(path.c_str());
  EXPECT_FALSE(WaitForConfig(path, "new", std::chrono::milliseconds{20}, std::chrono::milliseconds{10}))
      << "a missing file is not current";
}

}  // namespace
}  // namespace ro::kubesync

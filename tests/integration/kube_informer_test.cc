// Informer, reflector and event recorder against a real kube-apiserver + etcd
// (tests/testenv): the cache must equal a fresh list after ordinary changes, after an
// apiserver restart, and after the watched resourceVersion was compacted away (410 Gone
// -> relist, with handlers told about deletions they missed).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "ro/kube/client.h"
#include "ro/kube/config.h"
#include "ro/kube/event_recorder.h"
#include "ro/kube/informer.h"
#include "ro/kube/store.h"
#include "ro/testenv/testenv.h"

namespace ro::kube {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

const GroupVersionResource kConfigMaps{"", "v1", "configmaps"};
const GroupVersionResource kNamespaces{"", "v1", "namespaces"};
const GroupVersionResource kEvents{"", "v1", "events"};

// One cluster for every test of this binary.
testenv::KubeCluster* g_cluster = nullptr;

class ClusterEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { cluster_ = std::make_unique<testenv::KubeCluster>(); g_cluster = cluster_.get(); }
  void TearDown() override {
    g_cluster = nullptr;
    cluster_.reset();
  }

 private:
  std::unique_ptr<testenv::KubeCluster> cluster_;
};

const auto* const kEnvironment = ::testing::AddGlobalTestEnvironment(new ClusterEnvironment);

std::unique_ptr<DynamicClient> ClientFor(const std::filesystem::path& kubeconfig) {
  RestConfig config = LoadKubeconfigFile(kubeconfig.string());
  config.qps = 0;  // tests write in bursts; the apiserver is ours alone
  return std::make_unique<DynamicClient>(config);
}

json ConfigMap(const std::string& ns, const std::string& name, const std::string& value) {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"namespace", ns}}},
          {"data", {{"value", value}}}};
}

// "name@resourceVersion" of each object, sorted by key.
std::vector<std::string> Fingerprint(const std::vector<ObjectPtr>& objects) {
  std::vector<std::string> out;
  for (const ObjectPtr& o : objects) out.push_back(ObjectStoreKey(*o) + "@" + ObjectResourceVersion(*o));
  return out;
}
std::vector<std::string> Fingerprint(const ObjectList& list) {
  std::map<std::string, std::string> sorted;
  for (const json& o : list.items) sorted[ObjectStoreKey(o)] = ObjectResourceVersion(o);
  std::vector<std::string> out;
  for (const auto& [k, rv] : sorted) out.push_back(k + "@" + rv);
  return out;
}

// Handler calls, counted per kind and remembered per name.
class Seen {
 public:
  ResourceEventHandler Handler() {
    return {[this](const ObjectPtr& o) { Note("add", *o, false); },
            [this](const ObjectPtr&, const ObjectPtr& o) { Note("update", *o, false); },
            [this](const ObjectPtr& o, bool unknown) { Note("delete", *o, unknown); }};
  }
  std::set<std::string> Names(const std::string& kind) {
    std::lock_guard lock(mu_);
    return names_[kind];
  }
  // Handlers are called after the store changes: a store that equals a fresh list may
  // still have notifications in flight. Waits (30 s deadline) until `kind` was seen for
  // at least `count` distinct names, or for `name`.
  void AwaitCount(const std::string& kind, size_t count) {
    testenv::WaitFor([&] { return Names(kind).size() >= count; }, std::chrono::seconds(30),
                     std::to_string(count) + " " + kind + " notifications");
  }
  void AwaitName(const std::string& kind, const std::string& name) {
    testenv::WaitFor([&] { return Names(kind).contains(name); }, std::chrono::seconds(30),
                     kind + " notification of " + name);
  }
  std::set<std::string> DeletedWithUnknownFinalState() {
    std::lock_guard lock(mu_);
    return unknown_deletes_;
  }

 private:
  void Note(const std::string& kind, const json& o, bool unknown) {
    std::lock_guard lock(mu_);
    const std::string name = o.at("metadata").at("name").get<std::string>();
    names_[kind].insert(name);
    if (unknown) unknown_deletes_.insert(name);
  }
  std::mutex mu_;
  std::map<std::string, std::set<std::string>> names_;
  std::set<std::string> unknown_deletes_;
};

class KubeInformerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(g_cluster, nullptr);
    client_ = ClientFor(g_cluster->kubeconfig_path());
  }

  void CreateNamespace(const std::string& ns) {
    client_->Create(kNamespaces, "", {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}});
  }

  std::unique_ptr<SharedInformer> StartInformer(const std::string& ns, Seen& seen) {
    InformerOptions options;
    // Short backoff cap: the restart tests should not idle for 30 s between attempts.
    options.reflector.max_backoff = 2s;
    auto informer = NewSharedInformer(*client_, kConfigMaps, ns, options);
    informer->AddEventHandler(seen.Handler());
    informer->Start();
    EXPECT_TRUE(informer->WaitForCacheSync(std::stop_token{}, 30s));
    return informer;
  }

  // Waits until the informer's store equals a fresh list of the namespace (keys and
  // resourceVersions), using the main apiserver.
  void ExpectStoreEqualsFreshList(const SharedInformer& informer, const std::string& ns) {
    std::vector<std::string> want;
    std::vector<std::string> got;
    try {
      testenv::WaitFor(
          [&] {
            want = Fingerprint(client_->ListAll(kConfigMaps, ns));
            got = Fingerprint(informer.store().List());
            return want == got;
          },
          60s, "informer store to equal a fresh list of " + ns);
    } catch (const testenv::WaitTimeout&) {
      EXPECT_EQ(got, want);
      throw;
    }
  }

  std::unique_ptr<DynamicClient> client_;
};

TEST_F(KubeInformerTest, StoreEqualsAFreshListAfterCreatesUpdatesAndDeletes) {
  const std::string ns = "informer-crud";
  CreateNamespace(ns);
  client_->Create(kConfigMaps, ns, ConfigMap(ns, "before-start", "0"));
  Seen seen;
  auto informer = StartInformer(ns, seen);
  EXPECT_EQ(informer->store().Get(ns + "/before-start")->at("data").at("value"), "0");

  for (int i = 0; i < 20; ++i) client_->Create(kConfigMaps, ns, ConfigMap(ns, "cm-" + std::to_string(i), "a"));
  for (int i = 0; i < 10; ++i) {
    client_->Patch(kConfigMaps, ns, "cm-" + std::to_string(i), PatchType::kMergePatch,
                   R"({"data": {"value": "b"}})");
  }
  for (int i = 15; i < 20; ++i) client_->Delete(kConfigMaps, ns, "cm-" + std::to_string(i));

  ExpectStoreEqualsFreshList(*informer, ns);
  EXPECT_EQ(informer->store().Get(ns + "/cm-3")->at("data").at("value"), "b");
  seen.AwaitCount("add", 21);
  seen.AwaitCount("update", 10);
  seen.AwaitCount("delete", 5);
  EXPECT_EQ(seen.Names("add").size(), 21u);
  EXPECT_EQ(seen.Names("update").size(), 10u);
  EXPECT_EQ(seen.Names("delete"), (std::set<std::string>{"cm-15", "cm-16", "cm-17", "cm-18", "cm-19"}));
  EXPECT_TRUE(seen.DeletedWithUnknownFinalState().empty());
  EXPECT_EQ(informer->ListCount(), 1);
}

TEST_F(KubeInformerTest, WatchSurvivesAnApiserverRestart) {
  const std::string ns = "informer-restart";
  CreateNamespace(ns);
  for (int i = 0; i < 5; ++i) client_->Create(kConfigMaps, ns, ConfigMap(ns, "old-" + std::to_string(i), "a"));
  Seen seen;
  auto informer = StartInformer(ns, seen);

  g_cluster->StopApiserver();
  g_cluster->StartApiserver();

  for (int i = 0; i < 5; ++i) client_->Create(kConfigMaps, ns, ConfigMap(ns, "new-" + std::to_string(i), "a"));
  client_->Delete(kConfigMaps, ns, "old-0");
  client_->Patch(kConfigMaps, ns, "old-1", PatchType::kMergePatch, R"({"data": {"value": "b"}})");

  ExpectStoreEqualsFreshList(*informer, ns);
  seen.AwaitName("add", "new-4");
  seen.AwaitName("delete", "old-0");
  seen.AwaitName("update", "old-1");
}

TEST_F(KubeInformerTest, CompactedResourceVersionLeadsToARelistThatReportsMissedDeletes) {
  const std::string ns = "informer-compact";
  CreateNamespace(ns);
  for (int i = 0; i < 10; ++i) client_->Create(kConfigMaps, ns, ConfigMap(ns, "a-" + std::to_string(i), "a"));
  Seen seen;
  auto informer = StartInformer(ns, seen);
  ExpectStoreEqualsFreshList(*informer, ns);

  // While the informer's apiserver is down, another apiserver on the same etcd changes
  // things, and etcd forgets the history the informer would resume from.
  g_cluster->StopApiserver();
  testenv::Apiserver& extra = g_cluster->StartExtraApiserver();
  {
    auto other = ClientFor(extra.kubeconfig_path());
    for (int i = 0; i < 5; ++i) other->Delete(kConfigMaps, ns, "a-" + std::to_string(i));
    for (int i = 0; i < 5; ++i) other->Create(kConfigMaps, ns, ConfigMap(ns, "b-" + std::to_string(i), "b"));
    other->Patch(kConfigMaps, ns, "a-9", PatchType::kMergePatch, R"({"data": {"value": "z"}})");
  }
  extra.Stop();
  g_cluster->CompactEtcd();
  g_cluster->StartApiserver();

  ExpectStoreEqualsFreshList(*informer, ns);
  testenv::WaitFor([&] { return seen.DeletedWithUnknownFinalState().size() == 5; }, 30s,
                   "handlers to see the 5 deletes the relist found");
  EXPECT_EQ(seen.DeletedWithUnknownFinalState(),
            (std::set<std::string>{"a-0", "a-1", "a-2", "a-3", "a-4"}));
  seen.AwaitName("add", "b-4");
  seen.AwaitName("update", "a-9");
  EXPECT_GE(informer->ListCount(), 2);  // relisted after 410 Gone
}

TEST_F(KubeInformerTest, LabelSelectorLimitsTheCache) {
  const std::string ns = "informer-selector";
  CreateNamespace(ns);
  json web = ConfigMap(ns, "web", "a");
  web["metadata"]["labels"] = {{"app", "web"}};
  json db = ConfigMap(ns, "db", "a");
  db["metadata"]["labels"] = {{"app", "db"}};
  client_->Create(kConfigMaps, ns, web);
  client_->Create(kConfigMaps, ns, db);
  auto informer = NewSharedInformer(*client_, kConfigMaps, ns, {}, "app=web");
  informer->Start();
  ASSERT_TRUE(informer->WaitForCacheSync(std::stop_token{}, 30s));
  EXPECT_EQ(informer->store().ListKeys(), (std::vector<std::string>{ns + "/web"}));
  EXPECT_EQ(informer->store().ListByLabel("app", "web").size(), 1u);
}

TEST_F(KubeInformerTest, EventRecorderAggregatesRepeatsIntoOneEvent) {
  const std::string ns = "events";
  CreateNamespace(ns);
  const json cm = client_->Create(kConfigMaps, ns, ConfigMap(ns, "subject", "a"));
  EventRecorderOptions options;
  options.component = "kube-informer-test";
  options.host = "test-host";
  EventRecorder recorder(NewEventSink(*client_), options);
  recorder.Event(cm, EventType::kWarning, "SyncFailed", "bucket unreachable");
  recorder.Event(cm, EventType::kWarning, "SyncFailed", "bucket unreachable");
  ASSERT_TRUE(recorder.WaitForIdle(30s));

  ListOptions about;
  about.field_selector = "involvedObject.name=subject";
  const ObjectList events = client_->ListAll(kEvents, ns, about);
  ASSERT_EQ(events.items.size(), 1u);
  const json& e = events.items[0];
  EXPECT_EQ(e["count"], 2);
  EXPECT_EQ(e["reason"], "SyncFailed");
  EXPECT_EQ(e["type"], "Warning");
  EXPECT_EQ(e["source"]["component"], "kube-informer-test");
  EXPECT_EQ(e["involvedObject"]["uid"], cm["metadata"]["uid"]);
  EXPECT_EQ(e["involvedObject"]["kind"], "ConfigMap");

  // A different message is a different Event.
  recorder.Event(cm, EventType::kNormal, "Synced", "ok");
  ASSERT_TRUE(recorder.WaitForIdle(30s));
  EXPECT_EQ(client_->ListAll(kEvents, ns, about).items.size(), 2u);
}

}  // namespace
}  // namespace ro::kube

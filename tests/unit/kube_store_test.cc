#include "ro/kube/store.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>
#include <thread>
#include <vector>

namespace ro::kube {
namespace {

using nlohmann::json;

ObjectPtr Obj(const std::string& ns, const std::string& name, const std::string& rv,
              json labels = json::object()) {
  json meta = {{"name", name}, {"resourceVersion", rv}, {"labels", std::move(labels)}};
  if (!ns.empty()) meta["namespace"] = ns;
  return std::make_shared<const json>(json{{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", meta}});
}

// "key@rv" of each object, in order.
std::string Describe(const std::vector<ObjectPtr>& objects) {
  std::string out;
  for (const ObjectPtr& o : objects) {
    if (!out.empty()) out += ' ';
    out += ObjectStoreKey(*o) + "@" + ObjectResourceVersion(*o);
  }
  return out;
}

TEST(Store, KeysAreNamespaceSlashNameOrNameForClusterScoped) {
  EXPECT_EQ(ObjectStoreKey(*Obj("ns1", "a", "1")), "ns1/a");
  EXPECT_EQ(ObjectStoreKey(*Obj("", "node-1", "1")), "node-1");
  EXPECT_THROW(ObjectStoreKey(json{{"metadata", json::object()}}), std::invalid_argument);
}

TEST(Store, AddReturnsPreviousObjectAndGetFindsLatest) {
  Store store;
  EXPECT_EQ(store.Add(Obj("ns", "a", "1")), nullptr);
  const ObjectPtr v2 = Obj("ns", "a", "2");
  const ObjectPtr previous = store.Update(v2);
  ASSERT_NE(previous, nullptr);
  EXPECT_EQ(ObjectResourceVersion(*previous), "1");
  EXPECT_EQ(store.Get("ns/a"), v2);
  EXPECT_EQ(store.Get("ns/missing"), nullptr);
  EXPECT_EQ(store.Size(), 1u);
}

TEST(Store, DeleteReturnsRemovedObject) {
  Store store;
  store.Add(Obj("ns", "a", "1"));
  EXPECT_EQ(ObjectResourceVersion(*store.Delete("ns/a")), "1");
  EXPECT_EQ(store.Delete("ns/a"), nullptr);
  EXPECT_EQ(store.Size(), 0u);
  EXPECT_TRUE(store.ListByNamespace("ns").empty());
}

TEST(Store, ListsAreSortedByKey) {
  Store store;
  store.Add(Obj("b", "x", "1"));
  store.Add(Obj("a", "y", "1"));
  store.Add(Obj("a", "x", "1"));
  EXPECT_EQ(Describe(store.List()), "a/x@1 a/y@1 b/x@1");
  EXPECT_EQ(store.ListKeys(), (std::vector<std::string>{"a/x", "a/y", "b/x"}));
}

TEST(Store, NamespaceIndexFollowsAddsAndDeletes) {
  Store store;
  store.Add(Obj("a", "1", "1"));
  store.Add(Obj("a", "2", "1"));
  store.Add(Obj("b", "1", "1"));
  store.Add(Obj("", "cluster", "1"));
  EXPECT_EQ(Describe(store.ListByNamespace("a")), "a/1@1 a/2@1");
  EXPECT_EQ(Describe(store.ListByNamespace("")), "cluster@1");
  store.Delete("a/1");
  EXPECT_EQ(Describe(store.ListByNamespace("a")), "a/2@1");
  EXPECT_TRUE(store.ListByNamespace("zzz").empty());
}

TEST(Store, LabelIndexFollowsLabelChanges) {
  Store store;
  store.Add(Obj("ns", "a", "1", {{"app", "web"}}));
  store.Add(Obj("ns", "b", "1", {{"app", "db"}}));
  EXPECT_EQ(Describe(store.ListByLabel("app", "web")), "ns/a@1");
  store.Update(Obj("ns", "a", "2", {{"app", "db"}, {"tier", "x"}}));
  EXPECT_TRUE(store.ListByLabel("app", "web").empty());
  EXPECT_EQ(Describe(store.ListByLabel("app", "db")), "ns/a@2 ns/b@1");
  EXPECT_EQ(Describe(store.ListByLabel("tier", "x")), "ns/a@2");
  store.Delete("ns/a");
  EXPECT_TRUE(store.ListByLabel("tier", "x").empty());
}

TEST(Store, ReplaceReportsAddedUpdatedAndDeletedOnly) {
  Store store;
  store.Add(Obj("ns", "same", "1"));
  store.Add(Obj("ns", "changed", "1"));
  store.Add(Obj("ns", "gone", "1"));
  const ObjectPtr same_before = store.Get("ns/same");

  const StoreDiff diff =
      store.Replace({Obj("ns", "same", "1"), Obj("ns", "changed", "2"), Obj("ns", "new", "3")});
  EXPECT_EQ(Describe(diff.added), "ns/new@3");
  ASSERT_EQ(diff.updated.size(), 1u);
  EXPECT_EQ(ObjectResourceVersion(*diff.updated[0].first), "1");
  EXPECT_EQ(ObjectResourceVersion(*diff.updated[0].second), "2");
  EXPECT_EQ(Describe(diff.deleted), "ns/gone@1");
  EXPECT_EQ(Describe(store.List()), "ns/changed@2 ns/new@3 ns/same@1");
  // An unchanged object keeps its pointer, so readers holding it see no churn.
  EXPECT_EQ(store.Get("ns/same"), same_before);
}

TEST(Store, ReplaceRebuildsIndexes) {
  Store store;
  store.Add(Obj("a", "x", "1", {{"k", "v"}}));
  store.Replace({Obj("b", "y", "1", {{"k", "w"}})});
  EXPECT_TRUE(store.ListByNamespace("a").empty());
  EXPECT_TRUE(store.ListByLabel("k", "v").empty());
  EXPECT_EQ(Describe(store.ListByNamespace("b")), "b/y@1");
  EXPECT_EQ(Describe(store.ListByLabel("k", "w")), "b/y@1");
}

TEST(Store, ObjectsHandedOutStayValidAfterRemoval) {
  Store store;
  store.Add(Obj("ns", "a", "1"));
  const ObjectPtr held = store.Get("ns/a");
  store.Delete("ns/a");
  store.Replace({});
  EXPECT_EQ(ObjectResourceVersion(*held), "1");
}

TEST(Store, ConcurrentReadersAndWriterSeeConsistentIndexes) {
  Store store;
  constexpr int kObjects = 100;
  std::jthread writer([&] {
    for (int round = 0; round < 10; ++round) {
      for (int i = 0; i < kObjects; ++i) {
        store.Add(Obj("ns", std::to_string(i), std::to_string(round), {{"round", std::to_string(round % 2)}}));
      }
    }
  });
  // Each read is one consistent snapshot: an index answer only holds objects that
  // carry the label, and no key appears twice.
  for (int i = 0; i < 100; ++i) {
    EXPECT_LE(store.List().size(), static_cast<std::size_t>(kObjects));
    for (const std::string value : {"0", "1"}) {
      const auto found = store.ListByLabel("round", value);
      EXPECT_LE(found.size(), static_cast<std::size_t>(kObjects));
      for (const ObjectPtr& o : found) {
        ASSERT_EQ(o->at("metadata").at("labels").at("round"), value);
      }
    }
  }
  writer.join();
  EXPECT_EQ(store.ListByLabel("round", "1").size(), static_cast<std::size_t>(kObjects));
}

}  // namespace
}  // namespace ro::kube

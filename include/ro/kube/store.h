// The informer cache (client-go tools/cache: thread-safe store + indexer): objects keyed
// by "namespace/name" ("name" for cluster-scoped objects, ObjectKey::ToString()), with a
// namespace index and a label index (label key=value). Objects are immutable
// shared_ptr<const json>: readers get a reference-counted pointer, never a copy, and an
// object handed out stays valid (and unchanged) after the store replaces it.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstddef>
#include <map>
#include <memory>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ro::kube {

// An immutable cached object.
using ObjectPtr = std::shared_ptr<const nlohmann::json>;

// The store key of an object: "metadata.namespace/metadata.name", or "metadata.name"
// when the namespace is empty (cache.MetaNamespaceKeyFunc). Throws std::invalid_argument
// when metadata.name is missing.
std::string ObjectStoreKey(const nlohmann::json& object);

// metadata.resourceVersion, or "" when absent.
std::string ObjectResourceVersion(const nlohmann::json& object);

// What Store::Replace changed, so an informer can tell handlers exactly that.
struct StoreDiff {
  std::vector<ObjectPtr> added;                             // new keys
  std::vector<std::pair<ObjectPtr, ObjectPtr>> updated;     // (old, new), resourceVersion differs
  std::vector<ObjectPtr> deleted;                           // keys gone (last known state)
};

// Thread-safe (a reader/writer lock: many concurrent readers, one writer). Every
// mutation is atomic with respect to readers, including Replace.
class Store {
 public:
  Store() = default;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Inserts or replaces the object under its key. Returns the previous object, or
  // nullptr when the key was new. Add and Update are the same operation (as in
  // client-go); both names exist for readability at call sites.
  ObjectPtr Add(ObjectPtr object);
  ObjectPtr Update(ObjectPtr object) { return Add(std::move(object)); }
  // Removes the key. Returns the removed object, or nullptr when it was absent.
  ObjectPtr Delete(std::string_view key);

  // Atomically makes the content exactly `objects` (the result of a relist) and returns
  // the difference to the previous content. An object whose resourceVersion is
  // unchanged is kept (the old pointer) and reported nowhere.
  StoreDiff Replace(std::vector<ObjectPtr> objects);

  // The object under `key`, or nullptr.
  ObjectPtr Get(std::string_view key) const;
  // All objects, sorted by key.
  std::vector<ObjectPtr> List() const;
  std::vector<std::string> ListKeys() const;
  // Objects of one namespace ("" = cluster-scoped objects), sorted by key.
  std::vector<ObjectPtr> ListByNamespace(std::string_view ns) const;
  // Objects carrying label `key` with value `value`, sorted by key.
  std::vector<ObjectPtr> ListByLabel(std::string_view key, std::string_view value) const;
  std::size_t Size() const;

 private:
  // Index sets hold views of the keys owned by objects_ (std::map nodes never move), so
  // an object's key is stored once.
  using KeySet = std::set<std::string_view>;

  void IndexLocked(std::string_view key, const nlohmann::json& object);
  void UnindexLocked(std::string_view key, const nlohmann::json& object);
  std::vector<ObjectPtr> ResolveLocked(const KeySet* keys) const;

  mutable std::shared_mutex mu_;
  // Guarded by mu_.
  std::map<std::string, ObjectPtr, std::less<>> objects_;
  std::map<std::string, KeySet, std::less<>> by_namespace_;
  std::map<std::string, KeySet, std::less<>> by_label_;  // "key=value" -> keys
};

}  // namespace ro::kube

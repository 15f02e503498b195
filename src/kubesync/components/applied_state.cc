#include "applied_state.h"

#include <stdexcept>
#include <utility>

#include <nlohmann/json.hpp>

#include "ro/plugins/kubernetes/allocated_fields.h"
#include "ro/plugins/kubernetes/resource_version.h"

namespace ro::kubesync {
namespace {

using nlohmann::json;

}  // namespace

void KeepOnlyMetadata(json& object) {
  if (!object.is_object()) return;
  json reduced = json::object();
  for (const char* key : {"apiVersion", "kind"}) {
    if (object.contains(key)) reduced[key] = std::move(object[key]);
  }
  if (object.contains("metadata") && object["metadata"].is_object()) {
    json& meta = object["metadata"];
    json out = json::object();
    for (const char* key :
         {"name", "namespace", "uid", "resourceVersion", "labels", "annotations", "deletionTimestamp"}) {
      if (meta.contains(key)) out[key] = std::move(meta[key]);
    }
    reduced["metadata"] = std::move(out);
  }
  object = std::move(reduced);
}

void ReduceForCache(const kube::GroupVersionResource& gvr, json& object) {
  if (!object.is_object()) return;
  json allocated = json::object();
  plugins::kubernetes::MoveAllocatedFields(gvr, object, allocated);
  KeepOnlyMetadata(object);
  if (!allocated.empty()) object.update(allocated);
}

AppliedStateCache::AppliedStateCache(const std::vector<std::string>& gvrs, kube::Clock& clock,
                                     std::chrono::milliseconds tombstone_ttl)
    : clock_(clock), tombstone_ttl_(tombstone_ttl) {
  for (const std::string& gvr : gvrs) shards_.emplace(gvr, std::make_unique<Shard>());
}

AppliedStateCache::Shard& AppliedStateCache::ShardOf(std::string_view gvr) const {
  const auto it = shards_.find(gvr);
  if (it == shards_.end()) throw std::invalid_argument("AppliedStateCache: unknown GVR " + std::string(gvr));
  return *it->second;
}

bool AppliedStateCache::NotOlder(std::string_view incoming, std::string_view known) {
  using plugins::kubernetes::CompareResourceVersions;
  using plugins::kubernetes::IsValidResourceVersion;
  if (!IsValidResourceVersion(incoming) || !IsValidResourceVersion(known)) return true;
  return CompareResourceVersions(incoming, known) >= 0;
}

void AppliedStateCache::SetLiveLocked(Shard& shard, const std::string& key, kube::ObjectPtr object) {
  Entry& entry = shard.entries[key];
  if (!entry.object) ++shard.live;
  entry.resource_version = kube::ObjectResourceVersion(*object);
  entry.object = std::move(object);
  entry.tombstone.reset();
}

AppliedStateCache::Lookup AppliedStateCache::Get(std::string_view gvr, std::string_view key) const {
  const Shard& shard = ShardOf(gvr);
  std::lock_guard lock(shard.mu);
  const auto it = shard.entries.find(std::string(key));
  if (it == shard.entries.end()) return {};
  return Lookup{it->second.object, it->second.tombstone};
}

void AppliedStateCache::ObserveUpsert(std::string_view gvr, const kube::ObjectPtr& object) {
  Shard& shard = ShardOf(gvr);
  const std::string key = kube::ObjectStoreKey(*object);
  std::lock_guard lock(shard.mu);
  const auto it = shard.entries.find(key);
  if (it != shard.entries.end()) {
    const std::string rv = kube::ObjectResourceVersion(*object);
    const Entry& entry = it->second;
    // The cache already holds a newer state (e.g. our own write), or this is a late event
    // of the state our deletion removed (a tombstone yields only to a strictly newer one).
    if (!NotOlder(rv, entry.resource_version)) return;
    if (!entry.object && rv == entry.resource_version) return;
  }
  SetLiveLocked(shard, key, object);
}

void AppliedStateCache::ObserveDelete(std::string_view gvr, const kube::ObjectPtr& object) {
  Shard& shard = ShardOf(gvr);
  const std::string key = kube::ObjectStoreKey(*object);
  std::lock_guard lock(shard.mu);
  const auto it = shard.entries.find(key);
  if (it == shard.entries.end()) return;
  Entry& entry = it->second;
  const std::string rv = kube::ObjectResourceVersion(*object);
  if (!entry.object) {  // our tombstone: keep it, remember how far the destination got
    if (NotOlder(rv, entry.resource_version)) entry.resource_version = rv;
    return;
  }
  if (!NotOlder(rv, entry.resource_version)) return;  // re-created since
  --shard.live;
  shard.entries.erase(it);
}

void AppliedStateCache::RecordWritten(std::string_view gvr, kube::ObjectPtr object) {
  Shard& shard = ShardOf(gvr);
  const std::string key = kube::ObjectStoreKey(*object);
  std::lock_guard lock(shard.mu);
  const auto it = shard.entries.find(key);
  if (it != shard.entries.end() && it->second.object &&
      !NotOlder(kube::ObjectResourceVersion(*object), it->second.resource_version)) {
    return;
  }
  SetLiveLocked(shard, key, std::move(object));
}

void AppliedStateCache::RecordAbsent(std::string_view gvr, std::string_view key) {
  Shard& shard = ShardOf(gvr);
  std::lock_guard lock(shard.mu);
  const auto it = shard.entries.find(std::string(key));
  if (it == shard.entries.end() || !it->second.object) return;  // absent already, or a tombstone
  --shard.live;
  shard.entries.erase(it);
}

void AppliedStateCache::RecordSourceDeleted(std::string_view gvr, std::string_view key,
                                            plugins::kubernetes::Tombstone tombstone) {
  Shard& shard = ShardOf(gvr);
  std::lock_guard lock(shard.mu);
  Entry& entry = shard.entries[std::string(key)];
  if (entry.object) --shard.live;
  entry.object = nullptr;
  entry.deleted_at = clock_.SteadyNow();
  if (entry.tombstone && !NotOlder(tombstone.source_resource_version, entry.tombstone->source_resource_version)) {
    return;  // a later deletion's tombstone is there already
  }
  entry.tombstone = std::move(tombstone);
}

std::size_t AppliedStateCache::LiveCount(std::string_view gvr) const {
  const Shard& shard = ShardOf(gvr);
  std::lock_guard lock(shard.mu);
  return shard.live;
}

std::size_t AppliedStateCache::ExpireTombstones() {
  const auto cutoff = clock_.SteadyNow() - tombstone_ttl_;
  std::size_t dropped = 0;
  for (auto& [gvr, shard] : shards_) {
    std::lock_guard lock(shard->mu);
    for (auto it = shard->entries.begin(); it != shard->entries.end();) {
      if (!it->second.object && it->second.deleted_at <= cutoff) {
        it = shard->entries.erase(it);
        ++dropped;
      } else {
        ++it;
      }
    }
  }
  return dropped;
}

}  // namespace ro::kubesync

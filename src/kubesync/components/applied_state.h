// The synchronizer's applied-state cache (docs/kubesync.md, synchronizer): per GVR and
// object key, the metadata of the destination object this LiveSynchronization manages,
// fed by an informer on the destination (label managed-by=<id>) and by the results of
// the synchronizer's own writes, so back-to-back events for one object need neither a
// GET nor a watch round trip. Private to src/kubesync/components.
//
// Staleness: informer events and write results can arrive in any order; an entry only
// moves forward in destination resourceVersion (an etcd revision of the destination).
// Tombstones: after the synchronizer applied a source deletion (a watch DELETED event of
// the source object, never a filter or prune decision) the key remembers the deleted
// source uid and the deletion's source resourceVersion for `tombstone_ttl`: the fast,
// process-local copy of the durable tombstone the synchronizer keeps in JetStream
// (docs/kubesync.md, "Tombstones"), so an upsert redelivered late (after a NAK or a
// failed publish) that is not newer than the deletion cannot re-create the object.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ro/kube/clock.h"
#include "ro/kube/gvr.h"
#include "ro/kube/store.h"
#include "ro/plugins/kubernetes/synchronizer_decision.h"

namespace ro::kubesync {

// The metadata-only form kept in the cache: apiVersion, kind and metadata.{name,
// namespace, uid, resourceVersion, labels, annotations, deletionTimestamp}.
void KeepOnlyMetadata(nlohmann::json& object);

// The form the synchronizer caches for `gvr` (its informer's ReflectorOptions::transform):
// KeepOnlyMetadata plus what the destination allocated (plugins::kubernetes::
// kAllocatedFields), which a full-object update must carry over because the processor
// sanitized it away (plugins::kubernetes::CarryOverAllocatedFields).
void ReduceForCache(const kube::GroupVersionResource& gvr, nlohmann::json& object);

// Thread-safe (one mutex per GVR).
class AppliedStateCache {
 public:
  // `gvrs`: GroupVersionResource::ToString() of every GVR the cache serves. `clock`
  // must outlive the cache.
  AppliedStateCache(const std::vector<std::string>& gvrs, kube::Clock& clock,
                    std::chrono::milliseconds tombstone_ttl);

  struct Lookup {
    // The destination object (metadata only) as last known; nullptr when absent.
    kube::ObjectPtr current;
    // Set when absent because the synchronizer applied this source deletion less than
    // tombstone_ttl ago.
    std::optional<plugins::kubernetes::Tombstone> tombstone;
  };
  // REQUIRES (all methods): `gvr` is one of the constructor's.
  Lookup Get(std::string_view gvr, std::string_view key) const;

  // Informer notifications: applied unless the cache already knows a newer version.
  void ObserveUpsert(std::string_view gvr, const kube::ObjectPtr& object);
  // A deletion seen by the informer: removes the entry unless it is newer than `object`
  // or a tombstone (kept).
  void ObserveDelete(std::string_view gvr, const kube::ObjectPtr& object);

  // The object as returned by a create, update or GET, in its cached form
  // (ReduceForCache).
  void RecordWritten(std::string_view gvr, kube::ObjectPtr object);
  // A write or read found the object absent (NotFound).
  void RecordAbsent(std::string_view gvr, std::string_view key);
  // The synchronizer applied the source deletion `tombstone` (or found the destination
  // object already gone): a tombstone. A tombstone already there for a later deletion
  // (greater resourceVersion) is kept.
  void RecordSourceDeleted(std::string_view gvr, std::string_view key, plugins::kubernetes::Tombstone tombstone);

  // Managed objects present at the destination (the objects-in-sync gauge).
  std::size_t LiveCount(std::string_view gvr) const;
  // Drops tombstones older than tombstone_ttl. Returns how many were dropped.
  std::size_t ExpireTombstones();

 private:
  struct Entry {
    kube::ObjectPtr object;           // nullptr: tombstone
    std::string resource_version;     // destination resourceVersion last known
    std::optional<plugins::kubernetes::Tombstone> tombstone;  // tombstone only
    kube::Clock::SteadyTime deleted_at{};
  };
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, Entry> entries;  // guarded by mu
    std::size_t live = 0;                            // guarded by mu
  };

  Shard& ShardOf(std::string_view gvr) const;
  // True when `incoming` is not older than `known` (unreadable versions count as newer).
  static bool NotOlder(std::string_view incoming, std::string_view known);
  void SetLiveLocked(Shard& shard, const std::string& key, kube::ObjectPtr object);

  kube::Clock& clock_;
  const std::chrono::milliseconds tombstone_ttl_;
  std::map<std::string, std::unique_ptr<Shard>, std::less<>> shards_;  // constant after construction
};

}  // namespace ro::kubesync

// The synchronizer's applied-state cache (docs/kubesync.md, synchronizer): per GVR and
// object key, what the synchronizer knows of the destination object this
// LiveSynchronization manages (plugins::kubernetes::DestinationState, ~300 bytes, not the
// object), fed by a reflector on the destination (label managed-by=<id>; the cache is its
// sink, so no second store holds the objects) and by the results of the synchronizer's
// own writes, so back-to-back events for one object need neither a GET nor a watch round
// trip. Private to src/kubesync/components.
//
// Staleness: watch events and write results can arrive in any order; an entry only moves
// forward in destination resourceVersion (an etcd revision of the destination).
// Tombstones: after the synchronizer applied a source deletion (a watch DELETED event of
// the source object, never a filter or prune decision) the key remembers the deleted
// source uid and the deletion's source resourceVersion for `tombstone_ttl`: the fast,
// process-local copy of the durable tombstone the synchronizer keeps in JetStream
// (docs/kubesync.md, "Tombstones"), so an upsert redelivered late (after a NAK or a
// failed publish) that is not newer than the deletion cannot re-create the object.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ro/kube/clock.h"
#include "ro/kube/gvr.h"
#include "ro/kube/reflector.h"
#include "ro/plugins/kubernetes/synchronizer_decision.h"

namespace ro::kubesync {

// Shared, immutable: a lookup hands out the entry without copying it.
using DestinationStatePtr = std::shared_ptr<const plugins::kubernetes::DestinationState>;

// Thread-safe (one mutex per GVR).
class AppliedStateCache {
 public:
  // `gvrs`: every GVR the cache serves. `managed_by`: this LiveSynchronization's
  // ManagedById. `clock` must outlive the cache.
  AppliedStateCache(const std::vector<kube::GroupVersionResource>& gvrs, std::string managed_by, kube::Clock& clock,
                    std::chrono::milliseconds tombstone_ttl);
  ~AppliedStateCache();

  // The cached form of `object` (a destination object of `gvr`, whole or metadata only):
  // DestinationStateOf plus the fields the destination allocated (kAllocatedFields),
  // which a full-object update must carry over because the processor sanitized them away.
  DestinationStatePtr StateOf(const kube::GroupVersionResource& gvr, const nlohmann::json& object) const;

  struct Lookup {
    // The destination object as last known; nullptr when absent.
    DestinationStatePtr current;
    // Set when absent because the synchronizer applied this source deletion less than
    // tombstone_ttl ago.
    std::optional<plugins::kubernetes::Tombstone> tombstone;
  };
  // REQUIRES (all methods taking a GVR): it is one of the constructor's, in
  // GroupVersionResource::ToString() form. `key`: "<namespace>/<name>" or "<name>".
  Lookup Get(std::string_view gvr, std::string_view key) const;

  // The sink of a reflector on the destination objects of `gvr` this LiveSynchronization
  // manages. Its events are applied unless the cache already knows a newer version; a
  // deletion keeps a tombstone; a list (taken page by page: ReflectorSink::StreamsLists)
  // also drops the entries it no longer holds unless they were written after it. Valid as
  // long as the cache.
  kube::ReflectorSink& Sink(std::string_view gvr);
  // Waits until every GVR's sink received its first list, `stop` is requested or `timeout`
  // passes. Returns whether every GVR is listed.
  bool WaitForSync(std::stop_token stop, std::chrono::milliseconds timeout) const;

  // What a create, update or GET returned (StateOf), for the object at `key`.
  void RecordWritten(std::string_view gvr, std::string_view key, DestinationStatePtr state);
  // A write or read found the object absent (NotFound).
  void RecordAbsent(std::string_view gvr, std::string_view key);
  // The synchronizer applied the source deletion `tombstone` (or found the destination
  // object already gone): a tombstone. A tombstone already there for a later deletion
  // (greater resourceVersion) is kept.
  void RecordSourceDeleted(std::string_view gvr, std::string_view key, plugins::kubernetes::Tombstone tombstone);

  // Managed objects present at the destination (the objects-in-sync gauge).
  std::size_t LiveCount(std::string_view gvr) const;
  // Drops tombstones older than tombstone_ttl. Returns how many were dropped. Costs
  // O(expired), not O(objects).
  std::size_t ExpireTombstones();

 private:
  struct TombstoneEntry {
    plugins::kubernetes::Tombstone tombstone;
    std::string resource_version;  // destination resourceVersion last known
    kube::Clock::SteadyTime deleted_at{};
  };
  struct Shard;
  class ShardSink;

  Shard& ShardOf(std::string_view gvr) const;
  // True when `incoming` is not older than `known` (unreadable versions count as newer).
  static bool NotOlder(std::string_view incoming, std::string_view known);
  // Watch/list events, under the shard's lock.
  static void ObserveUpsertLocked(Shard& shard, const std::string& key, DestinationStatePtr state);
  static void ObserveDeleteLocked(Shard& shard, const std::string& key, const std::string& resource_version);
  static void SetLiveLocked(Shard& shard, const std::string& key, DestinationStatePtr state);
  void MarkListed();

  const std::string managed_by_;
  kube::Clock& clock_;
  const std::chrono::milliseconds tombstone_ttl_;
  std::map<std::string, std::unique_ptr<Shard>, std::less<>> shards_;  // constant after construction

  mutable std::mutex listed_mu_;
  mutable std::condition_variable_any listed_cv_;
  std::size_t listed_ = 0;  // guarded by listed_mu_: shards that received a list
};

}  // namespace ro::kubesync

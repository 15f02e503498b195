#include "applied_state.h"

#include <stdexcept>
#include <unordered_set>
#include <utility>

#include <nlohmann/json.hpp>

#include "ro/kube/store.h"
#include "ro/plugins/kubernetes/allocated_fields.h"
#include "ro/plugins/kubernetes/resource_version.h"

namespace ro::kubesync {

namespace k8s = plugins::kubernetes;

// One GVR's entries. A key is live (present at the destination), a tombstone, or
// unknown; never both.
struct AppliedStateCache::Shard {
  explicit Shard(kube::GroupVersionResource g) : gvr(std::move(g)) {}

  const kube::GroupVersionResource gvr;
  std::unique_ptr<ShardSink> sink;  // constant after construction

  mutable std::mutex mu;
  std::unordered_map<std::string, DestinationStatePtr> live;         // guarded by mu
  std::unordered_map<std::string, TombstoneEntry> tombstones;        // guarded by mu
  // (deleted_at, key) in deletion order, for ExpireTombstones; an item whose key was
  // revived or deleted again later is skipped when it comes up.
  std::deque<std::pair<kube::Clock::SteadyTime, std::string>> expiry;  // guarded by mu
  bool listed = false;                                                 // guarded by mu
};

// The reflector's view of one shard: objects become DestinationStates at once, so the
// JSON the reflector built is freed as soon as it is applied, and a list is taken page by
// page (StreamsLists): a restart at 100,000 objects never holds them all as JSON.
class AppliedStateCache::ShardSink final : public kube::ReflectorSink {
 public:
  ShardSink(AppliedStateCache& cache, Shard& shard) : cache_(cache), shard_(shard) {}

  void Replace(std::vector<kube::ObjectPtr> objects, const std::string& resource_version) override {
    BeginList();
    ListPage(std::move(objects));
    EndList(resource_version);
  }
  bool StreamsLists() const override { return true; }
  void BeginList() override { listed_.clear(); }
  void ListPage(std::vector<kube::ObjectPtr> objects) override {
    std::vector<std::pair<std::string, DestinationStatePtr>> page;
    page.reserve(objects.size());
    for (kube::ObjectPtr& object : objects) {
      page.emplace_back(kube::ObjectStoreKey(*object), cache_.StateOf(shard_.gvr, *object));
      object.reset();
    }
    std::lock_guard lock(shard_.mu);
    for (auto& [key, state] : page) {
      ObserveUpsertLocked(shard_, key, std::move(state));
      listed_.insert(std::move(key));
    }
  }
  void EndList(const std::string& resource_version) override {
    bool first = false;
    {
      std::lock_guard lock(shard_.mu);
      // Gone before the list was taken, unless written (by us) after it.
      for (auto it = shard_.live.begin(); it != shard_.live.end();) {
        if (!listed_.contains(it->first) && NotOlder(resource_version, it->second->resource_version)) {
          it = shard_.live.erase(it);
        } else {
          ++it;
        }
      }
      first = !std::exchange(shard_.listed, true);
    }
    listed_ = {};
    if (first) cache_.MarkListed();
  }
  void Add(kube::ObjectPtr object) override { Upsert(*object); }
  void Update(kube::ObjectPtr object) override { Upsert(*object); }
  void Delete(kube::ObjectPtr object) override {
    const std::string key = kube::ObjectStoreKey(*object);
    const std::string rv = kube::ObjectResourceVersion(*object);
    std::lock_guard lock(shard_.mu);
    ObserveDeleteLocked(shard_, key, rv);
  }

 private:
  void Upsert(const nlohmann::json& object) {
    const std::string key = kube::ObjectStoreKey(object);
    DestinationStatePtr state = cache_.StateOf(shard_.gvr, object);
    std::lock_guard lock(shard_.mu);
    ObserveUpsertLocked(shard_, key, std::move(state));
  }

  AppliedStateCache& cache_;
  Shard& shard_;
  std::unordered_set<std::string> listed_;  // the keys of the list in progress (reflector thread)
};

AppliedStateCache::AppliedStateCache(const std::vector<kube::GroupVersionResource>& gvrs, std::string managed_by,
                                     kube::Clock& clock, std::chrono::milliseconds tombstone_ttl)
    : managed_by_(std::move(managed_by)), clock_(clock), tombstone_ttl_(tombstone_ttl) {
  for (const kube::GroupVersionResource& gvr : gvrs) {
    auto shard = std::make_unique<Shard>(gvr);
    shard->sink = std::make_unique<ShardSink>(*this, *shard);
    shards_.emplace(gvr.ToString(), std::move(shard));
  }
}

AppliedStateCache::~AppliedStateCache() = default;

DestinationStatePtr AppliedStateCache::StateOf(const kube::GroupVersionResource& gvr,
                                               const nlohmann::json& object) const {
  auto state = std::make_shared<k8s::DestinationState>(k8s::DestinationStateOf(object, managed_by_));
  if (k8s::HasAllocatedFields(gvr)) {
    auto allocated = std::make_shared<nlohmann::json>(nlohmann::json::object());
    k8s::CopyAllocatedFields(gvr, object, *allocated);
    if (!allocated->empty()) state->allocated = std::move(allocated);
  }
  return state;
}

AppliedStateCache::Shard& AppliedStateCache::ShardOf(std::string_view gvr) const {
  const auto it = shards_.find(gvr);
  if (it == shards_.end()) throw std::invalid_argument("AppliedStateCache: unknown GVR " + std::string(gvr));
  return *it->second;
}

bool AppliedStateCache::NotOlder(std::string_view incoming, std::string_view known) {
  using k8s::CompareResourceVersions;
  using k8s::IsValidResourceVersion;
  if (!IsValidResourceVersion(incoming) || !IsValidResourceVersion(known)) return true;
  return CompareResourceVersions(incoming, known) >= 0;
}

void AppliedStateCache::SetLiveLocked(Shard& shard, const std::string& key, DestinationStatePtr state) {
  shard.tombstones.erase(key);
  shard.live.insert_or_assign(key, std::move(state));
}

AppliedStateCache::Lookup AppliedStateCache::Get(std::string_view gvr, std::string_view key) const {
  const Shard& shard = ShardOf(gvr);
  const std::string k(key);
  std::lock_guard lock(shard.mu);
  if (const auto it = shard.live.find(k); it != shard.live.end()) return Lookup{it->second, std::nullopt};
  if (const auto it = shard.tombstones.find(k); it != shard.tombstones.end()) {
    return Lookup{nullptr, it->second.tombstone};
  }
  return {};
}

kube::ReflectorSink& AppliedStateCache::Sink(std::string_view gvr) { return *ShardOf(gvr).sink; }

void AppliedStateCache::MarkListed() {
  {
    std::lock_guard lock(listed_mu_);
    ++listed_;
  }
  listed_cv_.notify_all();
}

bool AppliedStateCache::WaitForSync(std::stop_token stop, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(listed_mu_);
  return listed_cv_.wait_for(lock, stop, timeout, [this] { return listed_ == shards_.size(); });
}

void AppliedStateCache::ObserveUpsertLocked(Shard& shard, const std::string& key, DestinationStatePtr state) {
  const std::string& rv = state->resource_version;
  if (const auto it = shard.live.find(key); it != shard.live.end()) {
    // The cache already holds a newer state (e.g. our own write).
    if (!NotOlder(rv, it->second->resource_version)) return;
  } else if (const auto t = shard.tombstones.find(key); t != shard.tombstones.end()) {
    // A late event of the state our deletion removed: a tombstone yields only to a
    // strictly newer one.
    if (!NotOlder(rv, t->second.resource_version) || rv == t->second.resource_version) return;
  }
  SetLiveLocked(shard, key, std::move(state));
}

void AppliedStateCache::ObserveDeleteLocked(Shard& shard, const std::string& key, const std::string& resource_version) {
  if (const auto t = shard.tombstones.find(key); t != shard.tombstones.end()) {
    // Our tombstone: keep it, remember how far the destination got.
    if (NotOlder(resource_version, t->second.resource_version)) t->second.resource_version = resource_version;
    return;
  }
  const auto it = shard.live.find(key);
  if (it == shard.live.end()) return;
  if (!NotOlder(resource_version, it->second->resource_version)) return;  // re-created since
  shard.live.erase(it);
}

void AppliedStateCache::RecordWritten(std::string_view gvr, std::string_view key, DestinationStatePtr state) {
  Shard& shard = ShardOf(gvr);
  const std::string k(key);
  std::lock_guard lock(shard.mu);
  if (const auto it = shard.live.find(k);
      it != shard.live.end() && !NotOlder(state->resource_version, it->second->resource_version)) {
    return;
  }
  SetLiveLocked(shard, k, std::move(state));
}

void AppliedStateCache::RecordAbsent(std::string_view gvr, std::string_view key) {
  Shard& shard = ShardOf(gvr);
  std::lock_guard lock(shard.mu);
  shard.live.erase(std::string(key));  // a tombstone stays
}

void AppliedStateCache::RecordSourceDeleted(std::string_view gvr, std::string_view key, k8s::Tombstone tombstone) {
  Shard& shard = ShardOf(gvr);
  const std::string k(key);
  const auto now = clock_.SteadyNow();
  std::lock_guard lock(shard.mu);
  auto [it, inserted] = shard.tombstones.try_emplace(k);
  TombstoneEntry& entry = it->second;
  if (const auto live = shard.live.find(k); live != shard.live.end()) {
    entry.resource_version = live->second->resource_version;
    shard.live.erase(live);
  }
  entry.deleted_at = now;
  shard.expiry.emplace_back(now, k);
  if (!inserted && !NotOlder(tombstone.source_resource_version, entry.tombstone.source_resource_version)) {
    return;  // a later deletion's tombstone is there already
  }
  entry.tombstone = std::move(tombstone);
}

std::size_t AppliedStateCache::LiveCount(std::string_view gvr) const {
  const Shard& shard = ShardOf(gvr);
  std::lock_guard lock(shard.mu);
  return shard.live.size();
}

std::size_t AppliedStateCache::ExpireTombstones() {
  const auto cutoff = clock_.SteadyNow() - tombstone_ttl_;
  std::size_t dropped = 0;
  for (auto& [gvr, shard] : shards_) {
    std::lock_guard lock(shard->mu);
    while (!shard->expiry.empty() && shard->expiry.front().first <= cutoff) {
      const auto it = shard->tombstones.find(shard->expiry.front().second);
      // deleted_at only grows: a later deletion of the key queued a later item.
      if (it != shard->tombstones.end() && it->second.deleted_at <= cutoff) {
        shard->tombstones.erase(it);
        ++dropped;
      }
      shard->expiry.pop_front();
    }
  }
  return dropped;
}

}  // namespace ro::kubesync

#include "ro/runtime/informer_cache.h"

#include <utility>

#include <nlohmann/json.hpp>

#include "ro/kube/client.h"
#include "ro/kube/informer.h"
#include "ro/kube/reflector.h"

namespace ro::runtime {

using nlohmann::json;

void KeepMetadataOnly(json& object) {
  json kept = json::object();
  for (const char* key : {"apiVersion", "kind", "metadata"}) {
    if (object.contains(key)) kept[key] = std::move(object[key]);
  }
  object = std::move(kept);
  kube::StripManagedFields(object);
}

InformerCache::InformerCache(kube::DynamicClient& client, InformerCacheOptions options,
                             kube::Clock& clock)
    : client_(client), options_(std::move(options)), clock_(clock) {}

InformerCache::~InformerCache() { Stop(); }

kube::SharedInformer& InformerCache::Get(const kube::GroupVersionResource& gvr,
                                         bool metadata_only) {
  const std::lock_guard lock(mu_);
  auto& slot = informers_[Key{gvr, metadata_only}];
  if (!slot) {
    kube::InformerOptions informer_options;
    informer_options.resync_period = options_.resync_period;
    informer_options.reflector.transform = metadata_only ? KeepMetadataOnly
                                                         : kube::StripManagedFields;
    slot = kube::NewSharedInformer(client_, gvr, options_.ns, std::move(informer_options),
                                   "", "", clock_);
    if (started_) slot->Start();
  }
  return *slot;
}

void InformerCache::Start() {
  const std::lock_guard lock(mu_);
  started_ = true;
  for (auto& [key, informer] : informers_) informer->Start();
}

void InformerCache::Stop() {
  // Stop() joins the informer threads; handlers never call into the cache's lock, so
  // holding it here cannot deadlock.
  const std::lock_guard lock(mu_);
  for (auto& [key, informer] : informers_) informer->Stop();
}

bool InformerCache::HasSynced() const {
  const std::lock_guard lock(mu_);
  if (!started_) return false;
  for (const auto& [key, informer] : informers_) {
    if (!informer->HasSynced()) return false;
  }
  return true;
}

bool InformerCache::WaitForSync(std::stop_token stop, std::chrono::milliseconds timeout) {
  std::vector<kube::SharedInformer*> informers;
  {
    const std::lock_guard lock(mu_);
    for (auto& [key, informer] : informers_) informers.push_back(informer.get());
  }
  const kube::Clock::SteadyTime deadline = clock_.SteadyNow() + timeout;
  for (kube::SharedInformer* informer : informers) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - clock_.SteadyNow());
    if (left.count() <= 0 || !informer->WaitForCacheSync(stop, left)) return HasSynced();
  }
  return HasSynced();
}

std::string InformerCache::Unsynced() const {
  const std::lock_guard lock(mu_);
  std::string out;
  for (const auto& [key, informer] : informers_) {
    if (informer->HasSynced()) continue;
    if (!out.empty()) out += ", ";
    out += key.first.ToString();
    if (key.second) out += " (metadata only)";
  }
  return out;
}

}  // namespace ro::runtime

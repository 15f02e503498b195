// The manager's informers, shared per GroupVersionResource (controller-runtime's
// cache): every controller that watches a GVR gets the same SharedInformer, so each
// collection is listed and watched once per process.
//
// A GVR may be requested as "metadata only": the informer then drops everything but
// apiVersion, kind and metadata (managedFields removed) from each object before caching
// it. Controllers use this for Secrets, so credentials are never cached cluster-wide;
// they GET the one Secret they need while reconciling. The full and the metadata-only
// informer of a GVR are different informers.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <utility>

#include "ro/kube/clock.h"
#include "ro/kube/gvr.h"

namespace ro::kube {
class DynamicClient;
class SharedInformer;
}  // namespace ro::kube

namespace ro::runtime {

// The metadata-only transform: keeps apiVersion, kind and metadata minus managedFields.
void KeepMetadataOnly(nlohmann::json& object);

struct InformerCacheOptions {
  // Namespace every informer watches; "" = all namespaces.
  std::string ns;
  // InformerOptions::resync_period of every informer (0: none). Controllers re-check
  // through Result::requeue_after instead, so the default is off.
  std::chrono::milliseconds resync_period{0};
};

// Thread-safe.
class InformerCache {
 public:
  // `client` and `clock` must outlive the cache.
  InformerCache(kube::DynamicClient& client, InformerCacheOptions options,
                kube::Clock& clock = kube::DefaultClock());
  // Stop().
  ~InformerCache();
  InformerCache(const InformerCache&) = delete;
  InformerCache& operator=(const InformerCache&) = delete;

  // The informer of `gvr` (created on first use; started at once when the cache has
  // been started). The reference stays valid for the cache's life.
  kube::SharedInformer& Get(const kube::GroupVersionResource& gvr, bool metadata_only = false);

  // Starts every informer (and those created later). Idempotent.
  void Start();
  // Stops every informer. Idempotent.
  void Stop();
  // True when every informer has completed its first list.
  bool HasSynced() const;
  // Waits for HasSynced(), `stop` or `timeout`. Returns HasSynced().
  bool WaitForSync(std::stop_token stop, std::chrono::milliseconds timeout);
  // "v1/secrets (metadata only), assets.astronetes.io/v1alpha1/buckets" of informers
  // that have not synced yet, for /readyz.
  std::string Unsynced() const;

 private:
  using Key = std::pair<kube::GroupVersionResource, bool>;  // (gvr, metadata_only)

  // Constant after construction.
  kube::DynamicClient& client_;
  const InformerCacheOptions options_;
  kube::Clock& clock_;

  mutable std::mutex mu_;
  // Guarded by mu_.
  std::map<Key, std::unique_ptr<kube::SharedInformer>> informers_;
  bool started_ = false;
};

}  // namespace ro::runtime

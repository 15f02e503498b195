// API discovery: which group/version/resources the server serves, whether each is
// namespaced, its kind, verbs and subresources. Cached; refreshed when a lookup misses
// (so CRDs installed after start-up resolve) at most once per `min_refresh_interval`.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ro/kube/gvr.h"

namespace ro::kube {

class Transport;

struct ApiResource {
  GroupVersionResource gvr;
  std::string kind;                       // "Deployment"
  bool namespaced = false;
  std::vector<std::string> verbs;         // "get", "list", "watch", ...
  std::vector<std::string> subresources;  // "status", "scale", ...
  std::vector<std::string> short_names;

  bool HasVerb(std::string_view verb) const;
  bool HasSubresource(std::string_view sub) const;
};

// Thread-safe.
class Discovery {
 public:
  // `transport` must outlive this object.
  explicit Discovery(Transport& transport,
                     std::chrono::milliseconds min_refresh_interval = std::chrono::seconds{2});
  ~Discovery();
  Discovery(const Discovery&) = delete;
  Discovery& operator=(const Discovery&) = delete;

  // The resource, or nullopt when the server does not serve it even after a refresh.
  // Throws ApiError / TransportError when discovery itself fails.
  std::optional<ApiResource> Find(const GroupVersionResource& gvr);
  // Resolves apiVersion + kind ("apps/v1", "Deployment") to the resource.
  std::optional<ApiResource> FindByKind(std::string_view api_version, std::string_view kind);
  // Every resource of every served group version (subresources excluded).
  std::vector<ApiResource> All();
  // Drops the cache; the next lookup refetches.
  void Invalidate();

 private:
  struct State;
  void RefreshLocked();
  Transport& transport_;
  const std::chrono::milliseconds min_refresh_interval_;
  std::mutex mu_;
  std::unique_ptr<State> state_;  // guarded by mu_
};

}  // namespace ro::kube

// A controller (controller-runtime pkg/builder + pkg/internal/controller): informers
// feed a rate-limited workqueue of Requests, N workers run the shared ReconcileWorker.
//
//   For(T)            events of T enqueue the object itself
//   Owns(O)           events of O enqueue the T named by O's controller ownerReference
//   Watches(G, map)   events of G enqueue whatever `map` returns (e.g. a Secret ->
//                     the assets of its namespace that reference it)
//
// Event handlers only enqueue keys; the reconciler reads the current state from the
// informer cache. Enqueuing starts at registration (before leadership); workers start
// with Run().
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <functional>
#include <memory>
#include <stop_token>
#include <string>
#include <vector>

#include "ro/kube/clock.h"
#include "ro/kube/gvr.h"
#include "ro/kube/store.h"
#include "ro/runtime/reconcile.h"

namespace ro::kube {
class RateLimitingQueue;
}  // namespace ro::kube

namespace ro::runtime {

class ControllerMetrics;
class InformerCache;

// A kind and the resource that serves it ("assets.astronetes.io", "v1alpha1",
// "buckets") + "Bucket".
struct ObjectType {
  kube::GroupVersionResource gvr;
  std::string kind;

  // "assets.astronetes.io/v1alpha1".
  std::string ApiVersion() const { return gvr.GroupVersion(); }
};

// Decides whether an update event is worth a reconcile (controller-runtime predicates).
// Adds and deletes always pass.
using UpdatePredicate =
    std::function<bool(const nlohmann::json& old_object, const nlohmann::json& new_object)>;

// Passes updates that changed metadata.generation (spec changes), not status-only or
// metadata-only writes — in particular not the controller's own status writes.
bool GenerationChanged(const nlohmann::json& old_object, const nlohmann::json& new_object);

// Maps an object of a watched kind to the requests it should trigger.
using MapFunc = std::function<std::vector<Request>(const nlohmann::json& object)>;

struct WatchOptions {
  // Use the metadata-only informer (see informer_cache.h): for Secrets.
  bool metadata_only = false;
  // Filters update events; empty passes all of them.
  UpdatePredicate update_predicate;
};

// WatchOptions whose update predicate is GenerationChanged.
WatchOptions OnGenerationChange();
// WatchOptions using the metadata-only informer.
WatchOptions MetadataOnly();

struct ControllerOptions {
  // Short name: metric label, queue name, "controller" log field ("bucket").
  std::string name;
  // Workers reconciling different objects in parallel. >= 1.
  int max_concurrent_reconciles = 1;
};

// Thread-safe after set-up: For/Owns/Watches are called once from the set-up thread
// before Run(); Enqueue from any thread.
class Controller {
 public:
  // `cache`, `metrics` and `clock` must outlive the controller. Throws
  // std::invalid_argument for an empty name or max_concurrent_reconciles < 1.
  Controller(ControllerOptions options, std::unique_ptr<Reconciler> reconciler,
             InformerCache& cache, ControllerMetrics& metrics,
             kube::Clock& clock = kube::DefaultClock());
  ~Controller();
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  // The primary kind: its events enqueue the object itself. Call exactly once.
  Controller& For(const ObjectType& type, WatchOptions options = {});
  // An owned kind: its events enqueue the owner named by the ownerReference with
  // controller=true whose apiVersion group and kind match For()'s type. REQUIRES: For().
  Controller& Owns(const ObjectType& type, WatchOptions options = {});
  // Any kind: its events enqueue map(object).
  Controller& Watches(const kube::GroupVersionResource& gvr, MapFunc map,
                      WatchOptions options = {});

  void Enqueue(const Request& request);

  // Runs max_concurrent_reconciles workers until `stop` is requested; then shuts the
  // queue down, waits for the reconciles in flight and returns. Call once.
  void Run(std::stop_token stop);

  const std::string& name() const { return options_.name; }
  // The primary type's informer cache. REQUIRES: For().
  const kube::Store& store() const;
  kube::RateLimitingQueue& queue() { return *queue_; }

 private:
  void AddHandler(const kube::GroupVersionResource& gvr, const WatchOptions& options,
                  std::function<void(const kube::ObjectPtr&)> enqueue);

  // Constant after construction (For() sets primary_ during set-up).
  const ControllerOptions options_;
  const std::unique_ptr<Reconciler> reconciler_;
  InformerCache& cache_;
  ControllerMetrics& metrics_;
  kube::Clock& clock_;
  std::unique_ptr<kube::RateLimitingQueue> queue_;
  std::unique_ptr<ObjectType> primary_;
  const kube::Store* primary_store_ = nullptr;
};

}  // namespace ro::runtime

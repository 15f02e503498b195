// The shared informer (client-go tools/cache SharedIndexInformer): a Reflector feeding a
// Store, plus event handlers told about every change.
//
//   reflector thread:  list/watch -> Store (updated first) -> notification queue
//   dispatch thread:   notification queue -> handlers, in registration order
//
// Handlers see changes in the order the store saw them, one at a time, on the dispatch
// thread; a slow handler delays later notifications but never the store. After a relist
// (410 Gone, or a list after a failure) handlers get exactly the difference: OnAdd for new
// objects, OnUpdate for objects whose resourceVersion changed, and OnDelete with
// final_state_unknown=true for objects that vanished while the watch was down (client-go's
// DeletedFinalStateUnknown). Handlers must not throw (an exception is logged and dropped).
// Controllers should use a handler only to enqueue a key and read the current state from
// store() when reconciling.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "ro/kube/clock.h"
#include "ro/kube/reflector.h"
#include "ro/kube/store.h"

namespace ro::kube {

// Event handler callbacks; any may be empty. `final_state_unknown` is true when the
// deletion was detected by a relist: `object` is then the last state the cache saw.
struct ResourceEventHandler {
  std::function<void(const ObjectPtr& object)> on_add;
  std::function<void(const ObjectPtr& old_object, const ObjectPtr& new_object)> on_update;
  std::function<void(const ObjectPtr& object, bool final_state_unknown)> on_delete;
};

struct InformerOptions {
  // Every resync_period, OnUpdate(obj, obj) is delivered for every cached object (the
  // same pointer twice), so level-based controllers re-check everything periodically
  // even when nothing changed. 0 disables resync.
  std::chrono::milliseconds resync_period{0};
  // Passed to the reflector (page size, backoff, transform such as StripManagedFields).
  // Leave reflector.initial_resource_version empty: an informer's cache starts with a
  // list (HasSynced() stays false until one completes).
  ReflectorOptions reflector;
};

// Thread-safe: every public method may be called from any thread, including handlers
// (except Stop() and the destructor, which must not be called from a handler).
class SharedInformer {
 public:
  // `lw` is owned; `clock` must outlive the informer. Call Start() to run.
  SharedInformer(std::unique_ptr<ListerWatcher> lw, InformerOptions options = {},
                 Clock& clock = DefaultClock());
  // Stop().
  ~SharedInformer();
  SharedInformer(const SharedInformer&) = delete;
  SharedInformer& operator=(const SharedInformer&) = delete;

  // Registers a handler. A handler added after Start() first receives OnAdd for every
  // object already cached (as client-go does), then the live changes.
  void AddEventHandler(ResourceEventHandler handler);

  // Starts the reflector and dispatch threads. Idempotent. Not restartable after Stop().
  void Start();
  // Stops both threads and waits for them (a handler running at that moment finishes
  // first). Notifications not yet dispatched are dropped. Idempotent.
  void Stop();

  // The cache. Read it freely; never write to it.
  const Store& store() const { return store_; }

  // True once the first list is in the store and its notifications have been
  // delivered to the handlers registered at that time.
  bool HasSynced() const;
  // Waits until HasSynced(), `stop` is requested or `timeout` passes (measured on the
  // informer's clock). Returns HasSynced().
  bool WaitForCacheSync(std::stop_token stop, std::chrono::milliseconds timeout);
  // resourceVersion of the last list/event/bookmark seen ("" before the first list).
  std::string LastSyncResourceVersion() const;
  // Number of lists applied (1 after the first; relists add one each).
  int64_t ListCount() const;

 private:
  // One queued handler call.
  struct Notification {
    enum class Kind { kAdd, kUpdate, kDelete };
    Kind kind = Kind::kAdd;
    ObjectPtr old_object;  // kUpdate only
    ObjectPtr object;
    bool final_state_unknown = false;  // kDelete only
    // Delivered to handlers_[0, handler_count) (the handlers registered when it was
    // queued), or only to `target` when set (the initial adds of a late handler).
    std::size_t handler_count = 0;
    std::shared_ptr<ResourceEventHandler> target;
  };
  class Sink;

  void Enqueue(Notification n);  // REQUIRES: mu_ held
  void DispatchLoop(std::stop_token stop);
  void EnqueueResyncLocked();

  // Constant after construction.
  std::unique_ptr<ListerWatcher> lw_;
  const InformerOptions options_;
  Clock& clock_;
  Store store_;
  std::unique_ptr<Sink> sink_;
  std::unique_ptr<Reflector> reflector_;

  // Guarded by mu_. Store changes and their notifications are made under mu_ so that
  // AddEventHandler's snapshot + registration is atomic with respect to them.
  mutable std::mutex mu_;
  std::condition_variable_any cv_;  // queue_ grew, sync progressed, or stopping
  std::vector<std::shared_ptr<ResourceEventHandler>> handlers_;
  std::deque<Notification> queue_;
  uint64_t enqueued_ = 0;     // notifications ever enqueued
  uint64_t dispatched_ = 0;   // notifications ever dispatched
  uint64_t sync_mark_ = 0;    // synced once dispatched_ >= sync_mark_ after the first list
  bool listed_ = false;       // the first list has been applied
  bool started_ = false;
  bool stopped_ = false;

  std::jthread dispatch_thread_;
  std::jthread reflector_thread_;
};

// An informer over `client` (which must outlive it) for `gvr` in namespace `ns` ("" = all
// namespaces) with optional server-side label and field selectors (string forms).
std::unique_ptr<SharedInformer> NewSharedInformer(DynamicClient& client,
                                                  const GroupVersionResource& gvr,
                                                  std::string ns, InformerOptions options = {},
                                                  std::string label_selector = "",
                                                  std::string field_selector = "",
                                                  Clock& clock = DefaultClock());

}  // namespace ro::kube

// The reflector (client-go tools/cache/reflector.go): keeps a ReflectorSink in step with
// the server by listing, then watching from the list's resourceVersion.
//
//   list (paged) --Replace (or page by page: StreamsLists)--> sink ;
//   watch(rv) --Add/Update/Delete, Flush per burst--> sink ; repeat
//
// - Bookmarks only advance the resourceVersion.
// - The server closing a watch (its timeout) -> watch again from the last resourceVersion.
// - ApiError kGone (410: the resourceVersion was compacted) -> relist and Replace, so the
//   sink learns about everything it missed, deletions included.
// - TransportError, 429, 5xx and other errors -> wait with exponential backoff, then
//   watch again from the last resourceVersion (relist if the list itself failed).
// - Stops promptly when the stop_token passed to Run() is requested.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <random>

#include "ro/common/backoff.h"
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "ro/kube/client.h"
#include "ro/kube/clock.h"
#include "ro/kube/store.h"

namespace ro::kube {

// Where a reflector gets its data: a list and a watch of one collection, with the
// namespace and selectors already bound. Thread-safe enough for one reflector thread.
class ListerWatcher {
 public:
  virtual ~ListerWatcher() = default;
  // Every page of the collection (DynamicClient::ListAll semantics). Throws ApiError /
  // TransportError.
  virtual ObjectList List(const ListOptions& options) = 0;
  // The same list page by page (ro/kube/pager.h ListPages semantics: `on_page` per page,
  // `on_restart` when an expired continue token restarts it). Returns the list's
  // resourceVersion. Default: List(), delivered as one page.
  virtual std::string ListPages(const ListOptions& options,
                                const std::function<void(std::vector<nlohmann::json>&)>& on_page,
                                const std::function<void()>& on_restart);
  // DynamicClient::Watch semantics: blocks delivering events until the server closes
  // the stream (returns) or `stop` is requested (returns); throws ApiError (kGone:
  // relist) / TransportError.
  // Calls options.on_batch_end (when set) after delivering each burst of events (one read
  // of the stream; a fake may treat every event as a burst of one).
  virtual void Watch(const WatchOptions& options,
                     const std::function<void(WatchEvent&&)>& on_event, std::stop_token stop) = 0;
  // For log lines, e.g. "v1/configmaps in ns1 (app=web)".
  virtual std::string Describe() const = 0;
};

// A ListerWatcher over a DynamicClient (`client` must outlive it). `ns` "" = all
// namespaces (or a cluster-scoped resource). Selectors are the string forms sent to the
// server (LabelSelector::ToString(); field selector e.g. "metadata.name=x").
std::unique_ptr<ListerWatcher> NewListerWatcher(DynamicClient& client, GroupVersionResource gvr,
                                                std::string ns, std::string label_selector = "",
                                                std::string field_selector = "");

// Receives what the reflector learns, on the reflector's thread.
class ReflectorSink {
 public:
  virtual ~ReflectorSink() = default;
  // A complete list at `resource_version`: the sink's content must become exactly this.
  virtual void Replace(std::vector<ObjectPtr> objects, const std::string& resource_version) = 0;
  virtual void Add(ObjectPtr object) = 0;
  virtual void Update(ObjectPtr object) = 0;
  // `object` is the final state the server sent with the DELETED event.
  virtual void Delete(ObjectPtr object) = 0;
  // End of a burst of watch events (WatchOptions::on_batch_end): a sink that buffered
  // Add/Update/Delete (group commit) makes them durable here, or throws. The reflector's
  // resourceVersion moves past the burst only after this returned. Default: nothing.
  virtual void Flush() {}

  // A sink that keeps a reduced form of each object (not the objects) can take a list page
  // by page instead of whole, so that the list is never held at once: when StreamsLists()
  // is true the reflector calls BeginList(), ListPage() per page (BeginList() again when
  // an expired continue token restarts the list), then EndList(resourceVersion), whose
  // effect must be Replace's. Default: Replace.
  virtual bool StreamsLists() const { return false; }
  virtual void BeginList() {}
  virtual void ListPage(std::vector<ObjectPtr> /*objects*/) {}
  virtual void EndList(const std::string& /*resource_version*/) {}
};

struct ReflectorOptions {
  // Page size of lists (client-go's pager default, 500): bounds the size of one response
  // while costing one request per 500 objects.
  int64_t page_size = 500;
  // Backoff after failures: starts at `initial_backoff`, doubles per consecutive failure
  // up to `max_backoff`, and each wait is stretched by a random factor in
  // [1, 1 + backoff_jitter). client-go's values (reflector.go): 800 ms -> 30 s with jitter
  // 1.0 — the first retry comes quickly after a blip, a long outage costs the apiserver
  // one request per ~30-60 s per reflector, and jitter spreads many reflectors' retries
  // after an apiserver restart. The backoff resets after a healthy watch.
  std::chrono::milliseconds initial_backoff{800};
  std::chrono::milliseconds max_backoff{30'000};
  double backoff_jitter = 1.0;
  // A watch is "healthy" when it delivered an event or stayed open this long: then
  // the backoff resets and a clean close is followed by an immediate re-watch. (A server
  // or proxy that closes watches at once is retried with backoff, not in a hot loop.)
  std::chrono::milliseconds min_healthy_watch{1000};
  // Server-side watch timeout, random in [min_watch_timeout, 2 * min_watch_timeout)
  // (client-go: 5 min) so watches of many clients do not all restart together. 0 lets
  // the server choose.
  std::chrono::seconds min_watch_timeout{300};
  // Resume point: when non-empty, Run() starts by watching from this resourceVersion
  // instead of listing (a consumer that persisted how far it got, e.g. the Kubesync
  // events listener). The sink then receives only the events after it; it gets a
  // Replace only when the watch answers 410 Gone (the version was compacted) or after a
  // failure that needs a relist. "" (default): list first, as client-go does.
  std::string initial_resource_version;
  // Applied to each object before it is frozen into an ObjectPtr (e.g.
  // StripManagedFields to save memory). Runs on the reflector thread.
  std::function<void(nlohmann::json&)> transform;
  // List and watch metadata only (ListOptions::metadata_only): objects arrive as
  // PartialObjectMetadata, for caches that need nothing else (client-go's metadata
  // informers).
  bool metadata_only = false;
};

// Removes metadata.managedFields (server-side-apply bookkeeping, often a third of an
// object's size) — a ReflectorOptions::transform for caches that never need it.
void StripManagedFields(nlohmann::json& object);

// Not thread-safe except: Run() on one thread, the accessors from any thread.
class Reflector {
 public:
  // `lw`, `sink` and `clock` must outlive the reflector.
  Reflector(ListerWatcher& lw, ReflectorSink& sink, ReflectorOptions options = {},
            Clock& clock = DefaultClock());
  Reflector(const Reflector&) = delete;
  Reflector& operator=(const Reflector&) = delete;

  // Lists and watches until `stop` is requested. Never throws: server and transport
  // errors are logged and retried as described above; an exception thrown by the sink is
  // logged and followed (after backoff) by a relist, since the sink may have missed data.
  void Run(std::stop_token stop);

  // The resourceVersion of the last list, event or bookmark applied ("" before the first
  // list). It advances only after the sink's Replace (for a list) or its Flush at the end
  // of the event's burst returned, so a consumer may persist it as "everything up to here
  // was handled".
  std::string LastSyncResourceVersion() const;
  // Number of complete lists applied (1 after the initial list; +1 per relist).
  int64_t ListCount() const;

 private:
  // Lists and replaces the sink's content. Throws what the list or the sink throws.
  void ListAndReplace();
  // Watches once from the last resourceVersion. Returns how long to wait before the
  // next attempt; sets *need_list when the next attempt must be a relist.
  std::chrono::milliseconds WatchOnce(std::stop_token stop, bool* need_list);
  void HandleEvent(WatchEvent&& event);
  // End of a burst: sink_.Flush(), then the resourceVersion moves to the burst's last.
  void EndBatch();
  ObjectPtr Freeze(nlohmann::json&& object) const;
  std::chrono::milliseconds NextBackoff();
  void SetResourceVersion(std::string rv);

  // Constant after construction.
  ListerWatcher& lw_;
  ReflectorSink& sink_;
  const ReflectorOptions options_;
  Clock& clock_;

  // Owned by the Run() thread.
  std::mt19937_64 rng_;
  common::Backoff backoff_;  // reset after a healthy watch: the next failure waits initial_backoff
  std::string batch_resource_version_;  // last event of the current burst, "" when flushed

  mutable std::mutex mu_;
  // Guarded by mu_.
  std::string resource_version_;
  int64_t list_count_ = 0;
};

}  // namespace ro::kube

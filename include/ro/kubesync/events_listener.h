// The events listener (docs/kubesync.md, "Components"; manual 6.2.7 "Events listener",
// resynchronization document "Additive reconciliation"): turns the source cluster's
// changes into envelopes on ks.<id>.events.
//
//   per configured GVR: list (paged) + reflector (watch, no object cache) --> publish
//       start without a resume point: every object as a resync upsert, page by page,
//                       then "reconcile-now"; the reflector watches from the list's version
//       watch event   -> upsert / delete (acked by JetStream before the next one)
//       410 Gone      -> the reflector relists: every object as a resync upsert, then
//                        "reconcile-now"
//   resume points     -> Redis ks:<id>:rv:<gvr>, only versions whose events are stored
//   namespace labels or annotations changed -> that namespace's objects re-published +
//                       "reconcile-now"
//   a namespace appears in the destination (not one a synchronizer created) -> the
//                       objects of the source namespace of that name re-published (those
//                       that arrived while it was missing were ended: NamespaceNotFound);
//                       at start, so is each one recorded missing that the destination
//                       now has (created while the listener was not running)
//   start with another replication config than the resume points were stored with
//                       (e.g. forceNamespaceCreation turned on, a filter changed) -> list
//                       instead of resuming: every object is published again
//   every resyncPeriod -> the full state re-published (additive reconciliation)
//   the stream created again (its nats-server lost its store: the events not yet
//   consumed are gone) -> the full state re-published at once + "reconcile-now"; seen
//   after each reconnect (and every 10 s) from the stream's creation time, which Redis
//   keeps next to the resume points (a listener started after such a loss lists instead
//   of resuming)
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <memory>
#include <stop_token>
#include <vector>

#include "ro/kube/client.h"

namespace ro::kube {
class SharedInformer;
class WorkQueue;
}  // namespace ro::kube
#include "ro/kubesync/pipeline_context.h"
#include "ro/kubesync/jetstream.h"
#include "ro/kubesync/redis_state.h"
#include "ro/kubesync/stats.h"

namespace ro::kubesync {

class DurablePublisher;

struct EventsListenerOptions {
  // Delay between seeing a namespace's labels change (or a namespace appear in the
  // destination) and re-publishing its objects:
  // gives the processor's own namespace informer (watching the same apiserver) time to
  // see the same change before the re-published events reach it. Several changes within
  // the delay are re-published once.
  std::chrono::milliseconds namespace_republish_delay{1000};
  // How often the reflectors' durable resourceVersions are written to Redis. Older
  // stored versions only cost re-published (duplicate, harmless) events after a restart.
  std::chrono::milliseconds checkpoint_interval{500};
  // How often the stream's identity is checked without a reconnect (after a reconnect
  // it is checked at the next checkpoint).
  std::chrono::milliseconds stream_check_interval{10'000};
  // How often what waits in the stream is sampled for RPO now (StatsRecorder::SetBacklog):
  // one JetStream API request each time.
  std::chrono::milliseconds backlog_interval{2000};
};

// Run() on one thread; Ready() from any thread.
class EventsListener final : public Component {
 public:
  // Every reference must outlive the listener.
  // `destination` (may be nullptr): watched for namespaces that appear; without it their
  // objects wait for the next resync.
  EventsListener(const PipelineContext& context, kube::DynamicClient& source, kube::DynamicClient* destination,
                 NatsConnection& nats, RedisState& redis, StatsRecorder& stats, EventsListenerOptions options = {});
  ~EventsListener() override;

  void Run(std::stop_token stop) override;
  // True once every reflector runs and the namespace informer has synced.
  bool Ready() const override { return ready_.load(); }

 private:
  class GvrWatch;

  // Discovery of the configured GVRs (manual's "reading server groups and resources"
  // lines); retried until it works or stop. Returns false when stopped.
  bool Discover(std::stop_token stop);
  void PeriodicResync(std::stop_token stop);
  void Checkpoint();
  void RequestReconcile();
  // The stream's creation time (unix ns), nullopt when it cannot be read (not connected).
  std::optional<std::int64_t> StreamCreated();
  // At start-up: drops the resume points stored for another incarnation of the stream
  // (they point past events that were lost with it) or for another replication config
  // (objects it did not select, or could not write, were never published again), and
  // records the current ones.
  void ForgetStaleResumePoints();
  // Once both namespace caches are synced: queues the namespaces the synchronizer
  // recorded missing (stats) that the destination now has and the source too.
  void RepublishNamespacesFoundWhileAway(const kube::SharedInformer& source_namespaces,
                                         kube::SharedInformer& destination_namespaces, kube::WorkQueue& ns_queue,
                                         std::stop_token stop);
  // On the checkpointer thread: after a reconnect or every stream_check_interval, when
  // the stream was created again, asks PeriodicResync for a full re-publish now.
  void WatchStream();
  // On the checkpointer thread, every backlog_interval: the stream's message count and
  // oldest message into the statistics (RPO now). A failure skips the sample (a stale
  // sample counts as RPO, StatsSnapshot::RpoSeconds).
  void SampleBacklog();
  void RequestResync();
  // Publishes every object of `gvr` in `ns` ("" = all) as resync upserts and waits until
  // they are stored. Returns false when stopped first. Throws ApiError/TransportError.
  bool Republish(const GvrWatch& watch, const std::string& ns, DurablePublisher& publisher,
                 std::stop_token stop);

  const PipelineContext& context_;
  kube::DynamicClient& source_;
  kube::DynamicClient* const destination_;  // may be nullptr
  NatsConnection& nats_;
  RedisState& redis_;
  StatsRecorder& stats_;
  const EventsListenerOptions options_;

  std::vector<std::unique_ptr<GvrWatch>> watches_;  // built by Run() before threads start
  std::atomic<bool> ready_{false};

  // WatchStream's state (checkpointer thread only).
  std::uint64_t seen_reconnects_ = 0;
  std::chrono::steady_clock::time_point next_stream_check_{};
  std::chrono::steady_clock::time_point next_backlog_sample_{};  // checkpointer thread only
  // The stream's creation time last read (written by the checkpointer thread, read by
  // every publishing thread for Envelope::stream_created); 0: not known yet.
  std::atomic<std::int64_t> stream_created_{0};
  // A re-publish asked for by WatchStream: the stream incarnation to record in Redis
  // once it is done. Guarded by resync_mu_.
  std::mutex resync_mu_;
  std::condition_variable_any resync_cv_;
  std::optional<std::int64_t> resync_for_stream_;
};

}  // namespace ro::kubesync

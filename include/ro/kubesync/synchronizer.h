// The synchronizer (docs/kubesync.md, "Components" and "Ordering"; manual 6.2.7
// "Synchronizer"): consumes ks.<id>.apply with the durable pull consumer "synchronizer"
// and applies each message to the destination cluster with
// plugins::kubernetes::DecideSync:
//   create  (AlreadyExists -> read it and decide again: an unmanaged object is skipped;
//            missing namespace -> created with forceNamespaceCreation, else the message
//            is terminated and counted)
//   update  (Conflict -> read it and decide again; optimistic concurrency on the
//            destination's resourceVersion)
//   delete  (preconditions uid + resourceVersion; Conflict -> read and decide again)
//   skip    (stale, duplicate, unmanaged: acked without a write)
// Deciding needs no GET: an applied-state cache per GVR (an informer on the destination
// limited to managed-by=<id>, metadata only) is updated right after each write.
// Transient failures (5xx, 429, transport) are NAKed with a growing delay; permanent ones
// (Invalid, Forbidden, ...) are logged with the manual's error msg, counted and
// terminated (the next resync retries them). Replication lag (now - observedAt) goes to
// the stats histogram per GVR; the objects-in-sync gauge comes from the cache.
#pragma once

#include <chrono>
#include <memory>
#include <stop_token>

#include "ro/kube/client.h"
#include "ro/kubesync/pipeline_context.h"
#include "ro/kubesync/jetstream.h"
#include "ro/kubesync/stats.h"

namespace ro::kubesync {

struct SynchronizerOptions {
  // How long the deletion of a source object is remembered to refuse late upserts of it
  // (applied_state.h tombstones): far above the 5 s ack wait and the NAK delays
  // (<= 30 s), after which a redelivery of an older message is no longer expected.
  std::chrono::milliseconds tombstone_ttl{10 * 60 * 1000};
  // Decisions per message when a write meets a changed destination (Conflict,
  // AlreadyExists, NotFound) before the message is NAKed: each one re-reads the object,
  // so 4 rides out a concurrent writer without looping forever.
  int max_attempts = 4;
  // Period of the objects-in-sync gauge update and the tombstone sweep.
  std::chrono::milliseconds housekeeping_interval{1000};
};

// Run() on one thread; Ready() from any thread.
class Synchronizer final : public Component {
 public:
  // Every reference must outlive the synchronizer.
  Synchronizer(const PipelineContext& context, kube::DynamicClient& destination, NatsConnection& nats,
               StatsRecorder& stats, SynchronizerOptions options = {});
  ~Synchronizer() override;

  void Run(std::stop_token stop) override;
  // True once every applied-state informer has synced and the consumer is bound.
  bool Ready() const override;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ro::kubesync

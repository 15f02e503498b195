// The synchronizer as a stage (ro/kubesync/stage.h): one apply message in, one Outcome
// out (docs/kubesync.md, "Components", "Tombstones" and "Error policy"). Private to
// src/kubesync/components; unit-tested against a scripted kube::Transport and an
// in-memory TombstoneStore.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>

#include "applied_state.h"
#include "ro/kube/client.h"
#include "ro/kube/store.h"
#include "ro/kubesync/envelope.h"
#include "ro/kubesync/pipeline_context.h"
#include "ro/kubesync/stage.h"
#include "ro/kubesync/stats.h"
#include "ro/kubesync/synchronizer.h"

namespace ro::kubesync {

// The durable record of source deletions (JetStream key-value bucket
// TombstoneBucketConfig in production). Keys are KV-safe (EscapeKeyValueKey); values are
// {"uid","resourceVersion"} JSON. Writes are compare-and-set, because replicas store the
// deletions of one name concurrently and out of order (KeepsTombstone decides which
// stays). Thread-safe.
class TombstoneStore {
 public:
  // A value and the store revision that wrote it.
  struct Entry {
    std::string value;
    std::uint64_t revision = 0;
  };
  virtual ~TombstoneStore() = default;
  // The latest value, nullopt when none. Throws NatsError.
  virtual std::optional<Entry> GetEntry(std::string_view key) = 0;
  // Stores `value` only if the key's latest revision is still `revision` (0: only if it
  // holds no value). False, storing nothing, when another writer got there first. Throws
  // NatsError (the message is NAKed).
  virtual bool Update(std::string_view key, std::string_view value, std::uint64_t revision) = 0;

  // What a local copy of the store, kept current by a watch, knows of `key` without a
  // round trip: known == false when there is no current copy (then ask GetEntry). The
  // copy may miss a write made elsewhere within the last millisecond or so. Never throws.
  struct Known {
    bool known = false;
    std::optional<std::string> value;  // when known: nullopt means absent
  };
  virtual Known Peek(std::string_view /*key*/) { return {}; }
  // Peek once the local copy holds every write the store had when the call began (a
  // write made elsewhere before it is seen), known == false when that could not be
  // established (then ask GetEntry). Concurrent callers share one round trip. Never
  // throws.
  virtual Known PeekCurrent(std::string_view /*key*/) { return {}; }

  // GetEntry's value.
  std::optional<std::string> Get(std::string_view key) {
    std::optional<Entry> entry = GetEntry(key);
    if (!entry) return std::nullopt;
    return std::move(entry->value);
  }
};

// Thread-safe: Handle runs on every lane at once (different objects per lane).
class SynchronizerStage {
 public:
  // References must outlive the stage. `created_namespaces`: the destination namespaces
  // this LiveSynchronization created (an informer's store, label
  // kNamespaceCreatedByLabel), kept in step with the source namespace an upsert carries;
  // nullptr: none are kept in step.
  SynchronizerStage(const PipelineContext& context, kube::DynamicClient& destination, AppliedStateCache& cache,
                    TombstoneStore& tombstones, StatsRecorder& stats, SynchronizerOptions options,
                    const kube::Store* created_namespaces = nullptr);
  ~SynchronizerStage();

  // One message of the apply subject:
  //   source deletion: the tombstone is stored first, unless a later deletion's is
  //       stored already (NATS failure -> Nak); an "absent" or "uid-mismatch" finding is
  //       confirmed by a GET (another replica may be writing that incarnation now)
  //   create, or update of another incarnation's copy, or a redelivered upsert found
  //       applied: the tombstone is read again afterwards and what it blocks is deleted
  //   upsert of an absent object not newer than its tombstone -> Ack, nothing written
  //   create / update / delete applied                          -> Ack
  //   write met a changed object (Conflict, AlreadyExists, NotFound) -> decided again
  //       from a fresh read, up to max_attempts, then Nak
  //   transient failure (OutcomeOf: 429, 5xx, timeouts, transport) -> Nak(Retry-After)
  //   permanent failure (Invalid, Forbidden, ...)               -> Term(reason)
  //   missing namespace without forceNamespaceCreation          -> Term, the namespace
  //       recorded missing (StatsRecorder::RecordNamespaceMissing); the events listener
  //       publishes the namespace's objects again when it appears
  //   missing namespace with forceNamespaceCreation: created with the source namespace's
  //       labels and annotations (the envelope's source_namespace), then applied
  //   after a write: the namespace recorded present
  //   any upsert: a namespace this LiveSynchronization created follows the source
  //       namespace's labels and annotations (a failure there is logged and left to the
  //       next event of the namespace)
  // Never deletes or overwrites anything because of a transient failure.
  Outcome Handle(Envelope& e, const DeliveryInfo& info, std::stop_token stop);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ro::kubesync

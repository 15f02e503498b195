// The synchronizer as a stage (ro/kubesync/stage.h): one apply message in, one Outcome
// out (docs/kubesync.md, "Components", "Tombstones" and "Error policy"). Private to
// src/kubesync/components; unit-tested against a scripted kube::Transport and an
// in-memory TombstoneStore.
#pragma once

#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>

#include "applied_state.h"
#include "ro/kube/client.h"
#include "ro/kubesync/envelope.h"
#include "ro/kubesync/pipeline_context.h"
#include "ro/kubesync/stage.h"
#include "ro/kubesync/stats.h"
#include "ro/kubesync/synchronizer.h"

namespace ro::kubesync {

// The durable record of source deletions (JetStream key-value bucket
// TombstoneBucketConfig in production). Keys are KV-safe (EscapeKeyValueKey); values are
// {"uid","resourceVersion"} JSON. Thread-safe.
class TombstoneStore {
 public:
  virtual ~TombstoneStore() = default;
  // Stores durably. Throws NatsError (the message is NAKed).
  virtual void Put(std::string_view key, std::string_view value) = 0;
  // The value, nullopt when none. Throws NatsError.
  virtual std::optional<std::string> Get(std::string_view key) = 0;
};

// Thread-safe: Handle runs on every lane at once (different objects per lane).
class SynchronizerStage {
 public:
  // References must outlive the stage.
  SynchronizerStage(const PipelineContext& context, kube::DynamicClient& destination, AppliedStateCache& cache,
                    TombstoneStore& tombstones, StatsRecorder& stats, SynchronizerOptions options);
  ~SynchronizerStage();

  // One message of the apply subject:
  //   source deletion: the tombstone is stored first (NATS failure -> Nak)
  //   upsert of an absent object not newer than its tombstone -> Ack, nothing written
  //   create / update / delete applied                          -> Ack
  //   write met a changed object (Conflict, AlreadyExists, NotFound) -> decided again
  //       from a fresh read, up to max_attempts, then Nak
  //   transient failure (OutcomeOf: 429, 5xx, timeouts, transport) -> Nak(Retry-After)
  //   permanent failure (Invalid, Forbidden, ...; missing namespace without
  //       forceNamespaceCreation)                                 -> Term(reason)
  // Never deletes or overwrites anything because of a transient failure.
  Outcome Handle(Envelope& e, const DeliveryInfo& info, std::stop_token stop);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ro::kubesync

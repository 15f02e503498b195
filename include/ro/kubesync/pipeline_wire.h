// The JetStream resources of one LiveSynchronization's pipeline (docs/kubesync.md,
// "Data flow"): the stream, the processor's and the synchronizer's durable consumers and
// the synchronizer's tombstone bucket. Every component that produces or consumes ensures
// them at start-up (idempotent), so the components may start in any order.
#pragma once

#include <chrono>
#include <string_view>

#include "ro/kubesync/envelope.h"
#include "ro/kubesync/jetstream.h"

namespace ro::kubesync {

// The consumers' ack wait: a message delivered and not settled within it is delivered
// again (to any replica). Short, so that what a crash, a kill -9 or a NATS restart left
// unacknowledged comes back within seconds; the stage runtime tells JetStream that a
// message it still holds is in progress every kInProgressInterval
// (StageRunnerOptions::in_progress_interval), so a slow destination or a long queue
// never makes a held message due.
inline constexpr std::chrono::milliseconds kConsumerAckWait{5000};
inline constexpr std::chrono::milliseconds kInProgressInterval{1500};

// The stream, at `replicas` replicas (KubesyncConfig::nats_replicas), and the two
// durable consumers (which take the stream's replicas).
StreamConfig PipelineStreamConfig(const PipelineNames& names, int replicas);
ConsumerConfig ProcessorConsumerConfig(const PipelineNames& names);
ConsumerConfig SynchronizerConsumerConfig(const PipelineNames& names);
// The synchronizer's tombstone bucket: a value lives twice the stream's max age, since an
// event can wait that long in the stream (events subject, then apply subject after the
// processor republished it) and must still find the tombstone of a later deletion.
KeyValueConfig TombstoneBucketConfig(const PipelineNames& names, int replicas);
// EnsureStream + both EnsureConsumer. Throws NatsError (for example while a JetStream
// cluster has no quorum, or has fewer servers than `replicas`).
void EnsurePipeline(NatsConnection& nats, const PipelineNames& names, int replicas);

// The payload of a control message asking the reconciler for a prune pass now.
inline constexpr std::string_view kReconcileNow = "reconcile-now";

}  // namespace ro::kubesync

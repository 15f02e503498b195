// The processor (docs/kubesync.md, "Components"; manual 6.2.7 "Processor"): consumes
// ks.<id>.events with the durable pull consumer "processor", decides per event with
// plugins::kubernetes::DecideProcessing (filter -> bucket action on the original ->
// transform -> sanitize -> stamp), performs the bucket upload/delete (manual 6.2.4
// bucket log lines), publishes the destination form on ks.<id>.apply and acks the event
// only after JetStream stored that publish.
//
// A stage of the stage runtime (ro/kubesync/stage.h): ProcessorStage decides each event,
// StageRunner settles it. Per-object order: `concurrentTasks` lanes by hash(gvr,
// namespace, name). Namespace
// labels for namespaceSelector come from an informer on the source's namespaces (a
// namespace not cached yet is read with one GET).
// Failures: a transformation that cannot apply is permanent for that object version
// (logged, counted, terminated); an unreadable message likewise. A bucket failure is
// logged and counted and does not block replication (the next resync uploads again).
#pragma once

#include <chrono>
#include <memory>
#include <stop_token>

#include "ro/kube/client.h"
#include "ro/kube/clock.h"
#include "ro/kubesync/pipeline_context.h"
#include "ro/kubesync/jetstream.h"
#include "ro/kubesync/stage.h"
#include "ro/kubesync/stats.h"
#include "ro/plugins/s3_client.h"

namespace ro::kubesync {

struct ProcessorOptions {
  // Attempts of a bucket operation failing with a retryable S3Error (unreachable, 5xx,
  // throttling) before the event proceeds without it, and the pause before the first
  // retry (doubled per attempt): 3 attempts within ~0.6 s ride out a blip without
  // stalling the lane for long.
  int bucket_attempts = 3;
  std::chrono::milliseconds bucket_retry{200};
  // Time of those pauses (a test injects a kube::FakeClock); nullptr: kube::DefaultClock().
  // A stop requested during a pause ends it at once and the event is NAKed (redelivered).
  kube::Clock* clock = nullptr;
};

// Run() on one thread; Ready() from any thread.
class Processor final : public Component {
 public:
  // `bucket` is nullptr when spec.config has no bucketName. Every reference must
  // outlive the processor.
  Processor(const PipelineContext& context, kube::DynamicClient& source, NatsConnection& nats,
            StatsRecorder& stats, plugins::S3Client* bucket, ProcessorOptions options = {});
  // The same on another wire (an InMemoryTransport in tests). `transport` must outlive it.
  Processor(const PipelineContext& context, kube::DynamicClient& source, stage::Transport& transport,
            StatsRecorder& stats, plugins::S3Client* bucket, ProcessorOptions options = {});
  ~Processor() override;

  void Run(std::stop_token stop) override;
  // True once the namespace informer has synced and the consumer is bound.
  bool Ready() const override;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ro::kubesync

// The processor as a stage (ro/kubesync/stage.h): one event in, one Outcome out
// (docs/kubesync.md, "Components" and "Error policy"). Private to
// src/kubesync/components; unit-tested with a map of namespaces and no servers.
#pragma once

#include <optional>
#include <stop_token>
#include <string>

#include "ro/common/log.h"
#include "ro/kube/clock.h"
#include "ro/kube/store.h"
#include "ro/kubesync/envelope.h"
#include "ro/kubesync/pipeline_context.h"
#include "ro/kubesync/processor.h"
#include "ro/kubesync/stage.h"
#include "ro/kubesync/stats.h"
#include "ro/plugins/kubernetes/processor_decision.h"
#include "ro/plugins/s3_client.h"

namespace ro::kubesync {

// The source cluster's namespaces, for the filters' namespaceSelector.
class NamespaceLookup {
 public:
  virtual ~NamespaceLookup() = default;
  // The namespace `ns` (at least its metadata.labels); nullptr when it does not exist;
  // nullopt when it could not be read right now (a transient failure, already logged:
  // the event is NAKed, never treated as "no namespace"). Thread-safe.
  virtual std::optional<kube::ObjectPtr> Get(const std::string& ns) = 0;
};

// Thread-safe: Handle runs on every lane at once.
class ProcessorStage {
 public:
  // `bucket` is nullptr without spec.config.bucketName. References must outlive the stage.
  ProcessorStage(const PipelineContext& context, NamespaceLookup& namespaces, StatsRecorder& stats,
                 plugins::S3Client* bucket, ProcessorOptions options);

  // One event of the events subject:
  //   upsert in a namespace that cannot be read now     -> Nak
  //   transformation that cannot apply                   -> Term("Transform")
  //   bucket pause interrupted by `stop`                 -> Nak
  //   dropped by the decision (no change for the destination) -> Ack
  //   otherwise                                           -> Publish(apply subject, destination form)
  // Logs the manual's lines and records stats. Never throws for bad input.
  Outcome Handle(Envelope& e, const DeliveryInfo& info, std::stop_token stop);

 private:
  // Uploads or deletes the original, retrying a retryable failure bucket_attempts times;
  // a failure after that is logged and counted and the event goes on without it (the
  // next resync uploads it again). False when `stop` interrupted a retry pause.
  bool BucketOperation(const plugins::kubernetes::ProcessorDecision& decision, const nlohmann::json& source_ref,
                       const nlohmann::json& last_update, const std::string& gvr, std::stop_token stop);

  const PipelineContext& context_;
  NamespaceLookup& namespaces_;
  StatsRecorder& stats_;
  plugins::S3Client* const bucket_;
  const ProcessorOptions options_;
  kube::Clock& clock_;
  const ro::log::Logger logger_;
  const ro::log::Logger bucket_logger_;
};

}  // namespace ro::kubesync

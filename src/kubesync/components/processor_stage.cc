#include "processor_stage.h"

#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "log_fields.h"
#include "ro/common/backoff.h"
#include "ro/common/object_meta.h"
#include "ro/plugins/bucket_encryption.h"
#include "ro/plugins/kubernetes/json_patch.h"
#include "ro/plugins/kubernetes/namespace_metadata.h"

namespace ro::kubesync {
namespace {

using nlohmann::json;
namespace k8s = plugins::kubernetes;

constexpr std::string_view kComponent = "processor";
// The longest pause between two bucket attempts of one event.
constexpr std::chrono::milliseconds kMaxBucketRetryPause{10'000};

}  // namespace

ProcessorStage::ProcessorStage(const PipelineContext& context, NamespaceLookup& namespaces, StatsRecorder& stats,
                               plugins::S3Client* bucket, ProcessorOptions options)
    : context_(context),
      namespaces_(namespaces),
      stats_(stats),
      bucket_(bucket),
      options_(options),
      clock_(options.clock != nullptr ? *options.clock : kube::DefaultClock()),
      logger_(json{{"sourceCluster", context.SourceClusterField()}}),
      bucket_logger_(json{{"bucket", context.BucketField()}}) {}

Outcome ProcessorStage::Handle(Envelope& e, const DeliveryInfo& /*info*/, std::stop_token stop) {
  const std::string gvr = e.gvr.ToString();
  const json source_ref = fields::ObjectRef(e.gvr, e.object);
  const json last_update = fields::LastUpdate(e.object);

  kube::ObjectPtr ns_object;  // keeps the labels alive during the decision
  const json* ns_labels = nullptr;
  // A copy (the one the namespace lookup needs anyway): the statistics need it after the
  // decision, which may change e.object.
  const std::string ns(common::Namespace(e.object));
  if (e.type == EventType::kUpsert && !ns.empty()) {
    // An unknown namespace must never read as "filtered out": that would turn a
    // transient source failure into a delete of the standby copy. Retry instead.
    const std::optional<kube::ObjectPtr> found = namespaces_.Get(ns);
    if (!found) return Outcome::Nak();
    ns_object = *found;
    if (ns_object) ns_labels = &common::Labels(*ns_object);
  }

  const k8s::ProcessorEvent event{e.type == EventType::kDelete ? k8s::EventType::kDelete : k8s::EventType::kUpsert,
                                  e.resync, e.gvr, e.object, ns_labels};
  k8s::ProcessorDecision decision;
  try {
    decision = k8s::DecideProcessing(context_.config(), context_.stamp(), event);
  } catch (const k8s::TransformError& error) {
    logger_.Error("error transforming object", {{"sourceObject", source_ref},
                                                {"error", error.what()},
                                                {"operation", error.op_index()},
                                                {"path", error.path()}});
    stats_.RecordError(kComponent, gvr, "Transform", ns);
    stats_.RecordFailure(kComponent, gvr, "Transform", fields::Key(e.object),
                         std::string("error transforming object: ") + error.what());
    return Outcome::Term("Transform");
  }
  stats_.RecordEvent(kComponent, gvr, ToString(e.type), ns);

  if (decision.bucket_action != k8s::BucketAction::kNone && bucket_ != nullptr) {
    if (!BucketOperation(decision, source_ref, last_update, gvr, stop)) return Outcome::Nak();
  }
  if (decision.action == k8s::ProcessorAction::kDrop) {
    logger_.Debug("event skipped", {{"sourceObject", source_ref}, {"reason", decision.reason}});
    return Outcome::Ack();
  }

  Envelope out;
  out.type = decision.action == k8s::ProcessorAction::kUpsert ? EventType::kUpsert : EventType::kDelete;
  out.resync = e.resync;
  out.gvr = e.gvr;
  out.observed_at = e.observed_at;
  out.pruned = e.pruned;
  // The decision is this configuration's, whatever the event's was (an older event is
  // handled under the newer configuration; a newer one never reaches here).
  out.config_generation = context_.generation();
  out.stream_created = e.stream_created;
  // A watch DELETED event, or a prune of an object the source no longer has (not a
  // filter or "no longer selected" decision): the synchronizer keeps a tombstone for it.
  out.source_deleted = e.type == EventType::kDelete && (!e.pruned || e.source_deleted);
  // What the synchronizer needs to create the namespace like the source's, and to keep
  // the one it created in step (only with forceNamespaceCreation: nobody else reads it).
  if (out.type == EventType::kUpsert && ns_object && context_.config().replication.force_namespace_creation) {
    out.source_namespace = k8s::ReplicableNamespaceMetadata(*ns_object);
  }
  out.object = std::move(e.object);
  return Outcome::Publish(context_.names().apply_subject(), Encode(out));
}

bool ProcessorStage::BucketOperation(const k8s::ProcessorDecision& decision, const json& source_ref, const json& last_update,
                     const std::string& gvr, std::stop_token stop) {
  const bool put = decision.bucket_action == k8s::BucketAction::kPut;
  json line = {{"sourceObject", source_ref}, {"bucketObject", {{"path", decision.bucket_path}}}};
  if (!last_update.is_null()) line["lastUpdate"] = last_update;
  bucket_logger_.Debug(put ? "uploading object in bucket" : "deleting object from bucket", line);
  for (int attempt = 1;; ++attempt) {
    try {
      if (put) {
        bucket_->PutObject(decision.bucket_path, decision.bucket_body, "application/json");
      } else {
        bucket_->DeleteObject(decision.bucket_path);
      }
      bucket_logger_.Info(put ? "object uploaded in bucket" : "object deleted from bucket", line);
      stats_.RecordBucketOperation(put ? "upload" : "delete", "success");
      return true;
    } catch (const plugins::S3Error& e) {
      if (e.retryable() && attempt < options_.bucket_attempts) {
        if (!clock_.SleepFor(common::ExponentialDelay(options_.bucket_retry, attempt - 1, kMaxBucketRetryPause), stop)) {
          return false;
        }
        continue;
      }
      json error_line = line;
      error_line["error"] = e.what();
      // "form" is the manual's spelling of this message (6.2.4).
      bucket_logger_.Error(put ? "error uploading object in bucket" : "error deleting object form bucket", error_line);
      stats_.RecordBucketOperation(put ? "upload" : "delete", "error");
      stats_.RecordError(kComponent, gvr, "Bucket");
      return true;
    } catch (const plugins::BucketEncryptionError& e) {
      // Client-side encryption failed (no randomness): never uploaded in clear instead.
      json error_line = line;
      error_line["error"] = e.what();
      bucket_logger_.Error("error uploading object in bucket", error_line);
      stats_.RecordBucketOperation("upload", "error");
      stats_.RecordError(kComponent, gvr, "Bucket");
      return true;
    }
  }
}

}  // namespace ro::kubesync

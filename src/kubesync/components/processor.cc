#include "ro/kubesync/processor.h"

#include <atomic>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "laned_consumer.h"
#include "log_fields.h"
#include "namespace_labels.h"
#include "pipeline_io.h"
#include "ro/common/log.h"
#include "ro/kube/errors.h"
#include "ro/kube/informer.h"
#include "ro/plugins/kubernetes/json_patch.h"
#include "ro/plugins/kubernetes/processor_decision.h"

namespace ro::kubesync {
namespace {

using nlohmann::json;
namespace k8s = plugins::kubernetes;

constexpr std::string_view kComponent = "processor";

// What became of one event before the batch's publishes are confirmed.
enum class Outcome { kAck, kPublished, kTerm, kNak };

}  // namespace

class Processor::Impl {
 public:
  Impl(const PipelineContext& context, kube::DynamicClient& source, NatsConnection& nats, StatsRecorder& stats,
       plugins::S3Client* bucket, ProcessorOptions options)
      : context_(context),
        source_(source),
        nats_(nats),
        stats_(stats),
        bucket_(bucket),
        options_(options),
        clock_(options.clock != nullptr ? *options.clock : kube::DefaultClock()),
        logger_(json{{"sourceCluster", context.SourceClusterField()}}),
        bucket_logger_(json{{"bucket", context.BucketField()}}) {
    const auto lanes = static_cast<std::size_t>(context_.concurrent_tasks());
    for (std::size_t i = 0; i < lanes; ++i) {
      publishers_.push_back(std::make_unique<DurablePublisher>(nats_, ro::log::Logger(), stats_, kComponent));
    }
    LanedConsumerOptions consumer_options;
    consumer_options.lanes = lanes;
    consumer_options.in_progress = [this](std::string_view reply) { nats_.PublishCore(reply, "+WPI"); };
    consumer_options.in_progress_interval = kInProgressInterval;
    consumer_options.connection_epoch = [this] { return nats_.reconnects(); };
    consumer_ = std::make_unique<LanedConsumer>(
        [this] {
          EnsurePipeline(nats_, context_.names());
          return nats_.PullSubscribe(context_.names().stream(), ProcessorConsumerConfig(context_.names()).durable);
        },
        [this](std::size_t lane, std::vector<Delivery>& batch, std::stop_token s) { HandleBatch(lane, batch, s); },
        [this](const Message& message, const DecodeError& e) {
          ro::log::Logger().Error("error decoding event",
                                  {{"error", e.what()}, {"field", e.field()}, {"streamSequence", message.stream_sequence()}});
          stats_.RecordError(kComponent, "", "Decode");
        },
        ro::log::Logger(), consumer_options);
  }

  bool Ready() const { return synced_.load() && consumer_->Bound(); }

  void Run(std::stop_token stop) {
    kube::InformerOptions ns_options;
    ns_options.reflector.transform = KeepNamespaceLabels;
    namespaces_ = kube::NewSharedInformer(source_, {"", "v1", "namespaces"}, "", ns_options);
    namespaces_->Start();
    while (!stop.stop_requested() && !namespaces_->WaitForCacheSync(stop, std::chrono::seconds{1})) {
    }
    if (stop.stop_requested()) {
      namespaces_->Stop();
      return;
    }
    synced_ = true;
    consumer_->Run(stop);
    namespaces_->Stop();
  }

 private:
  void HandleBatch(std::size_t lane, std::vector<Delivery>& batch, std::stop_token stop) {
    DurablePublisher& publisher = *publishers_[lane];
    std::vector<Message*> published;
    for (Delivery& d : batch) {
      Outcome outcome = Outcome::kNak;
      try {
        outcome = Process(d, publisher, stop);
      } catch (const std::exception& e) {
        // Nothing below is expected to throw; a bug must not stop the lane.
        ro::log::Logger().Error("error processing event", {{"error", e.what()}});
        stats_.RecordError(kComponent, d.envelope.gvr.ToString(), "Internal");
      }
      switch (outcome) {
        case Outcome::kAck:
          Settle(d.message, &Message::Ack);
          break;
        case Outcome::kTerm:
          Settle(d.message, &Message::Term);
          break;
        case Outcome::kNak:
          try {
            d.message.Nak(NakDelay(d.message.delivery_count()));
          } catch (const NatsError&) {
            // Redelivered after ack_wait instead.
          }
          break;
        case Outcome::kPublished:
          published.push_back(&d.message);
          break;
      }
    }
    if (published.empty()) return;
    if (publisher.Commit(stop)) {
      for (Message* m : published) Settle(*m, &Message::Ack);
    } else {
      for (Message* m : published) {
        try {
          m->Nak();
        } catch (const NatsError&) {
          // Redelivered after ack_wait instead.
        }
      }
    }
  }

  static void Settle(Message& message, void (Message::*settle)()) {
    try {
      (message.*settle)();
    } catch (const NatsError&) {
      // A lost ack or term only means one redelivery, which the rules make harmless.
    }
  }

  Outcome Process(Delivery& d, DurablePublisher& publisher, std::stop_token stop) {
    Envelope& e = d.envelope;
    const std::string gvr = e.gvr.ToString();
    const json source_ref = fields::ObjectRef(e.gvr, e.object);
    const json last_update = fields::LastUpdate(e.object);

    kube::ObjectPtr ns_object;  // keeps the labels alive during the decision
    const json* ns_labels = nullptr;
    const std::string_view ns = fields::Namespace(e.object);
    if (e.type == EventType::kUpsert && !ns.empty()) {
      // An unknown namespace must never read as "filtered out": that would turn a
      // transient source failure into a delete of the standby copy. Retry instead.
      const std::optional<kube::ObjectPtr> found = NamespaceOf(std::string(ns));
      if (!found) return Outcome::kNak;
      ns_object = *found;
      if (ns_object) ns_labels = &LabelsOf(*ns_object);
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
      stats_.RecordError(kComponent, gvr, "Transform");
      stats_.RecordFailure(kComponent, gvr, "Transform", fields::Key(e.object),
                           std::string("error transforming object: ") + error.what());
      return Outcome::kTerm;
    }
    stats_.RecordEvent(kComponent, gvr, ToString(e.type));

    if (decision.bucket_action != k8s::BucketAction::kNone && bucket_ != nullptr) {
      if (!BucketOperation(decision, source_ref, last_update, gvr, stop)) return Outcome::kNak;
    }
    if (decision.action == k8s::ProcessorAction::kDrop) {
      logger_.Debug("event skipped", {{"sourceObject", source_ref}, {"reason", decision.reason}});
      return Outcome::kAck;
    }

    Envelope out;
    out.type = decision.action == k8s::ProcessorAction::kUpsert ? EventType::kUpsert : EventType::kDelete;
    out.resync = e.resync;
    out.gvr = e.gvr;
    out.observed_at = e.observed_at;
    out.pruned = e.pruned;
    // A watch DELETED event, or a prune of an object the source no longer has (not a
    // filter or "no longer selected" decision): the synchronizer keeps a tombstone for it.
    out.source_deleted = e.type == EventType::kDelete && (!e.pruned || e.source_deleted);
    out.object = std::move(e.object);
    publisher.Publish(context_.names().apply_subject(), Encode(out));
    return Outcome::kPublished;
  }

  // The cached namespace, or one GET when the informer has not seen it yet (a namespace
  // created together with its objects); nullptr when it does not exist; nullopt when
  // the GET failed (logged and counted; the event is NAKed and retried).
  std::optional<kube::ObjectPtr> NamespaceOf(const std::string& ns) {
    if (kube::ObjectPtr cached = namespaces_->store().Get(ns)) return cached;
    logger_.Debug("reading namespace from cluster", {{"namespace", ns}});
    try {
      json object = source_.Get({"", "v1", "namespaces"}, "", ns);
      KeepNamespaceLabels(object);
      logger_.Debug("namespace read from cluster", {{"namespace", ns}});
      return std::make_shared<const json>(std::move(object));
    } catch (const kube::ApiError& e) {
      if (e.reason() == kube::StatusReason::kNotFound) {
        logger_.Info("namespace not found in cluster", {{"namespace", ns}});
        return kube::ObjectPtr();
      }
      logger_.Error("error getting namespace from cluster", {{"namespace", ns}, {"error", e.what()}});
    } catch (const kube::TransportError& e) {
      logger_.Error("error getting namespace from cluster", {{"namespace", ns}, {"error", e.what()}});
    }
    stats_.RecordError(kComponent, "v1/namespaces", "Namespace");
    return std::nullopt;
  }

  // Uploads or deletes the original, retrying a retryable failure bucket_attempts times;
  // a failure after that is logged and counted and the event goes on without it (the
  // next resync uploads it again). False when `stop` interrupted a retry pause.
  bool BucketOperation(const k8s::ProcessorDecision& decision, const json& source_ref, const json& last_update,
                       const std::string& gvr, std::stop_token stop) {
    const bool put = decision.bucket_action == k8s::BucketAction::kPut;
    json line = {{"sourceObject", source_ref}, {"bucketObject", {{"path", decision.bucket_path}}}};
    if (!last_update.is_null()) line["lastUpdate"] = last_update;
    bucket_logger_.Debug(put ? "uploading object in bucket" : "deleting object from bucket", line);
    std::chrono::milliseconds pause = options_.bucket_retry;
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
          if (!clock_.SleepFor(pause, stop)) return false;
          pause *= 2;
          continue;
        }
        json error_line = line;
        error_line["error"] = e.what();
        // "form" is the manual's spelling of this message (6.2.4).
        bucket_logger_.Error(put ? "error uploading object in bucket" : "error deleting object form bucket", error_line);
        stats_.RecordBucketOperation(put ? "upload" : "delete", "error");
        stats_.RecordError(kComponent, gvr, "Bucket");
        return true;
      }
    }
  }

  const PipelineContext& context_;
  kube::DynamicClient& source_;
  NatsConnection& nats_;
  StatsRecorder& stats_;
  plugins::S3Client* const bucket_;
  const ProcessorOptions options_;
  kube::Clock& clock_;
  const ro::log::Logger logger_;
  const ro::log::Logger bucket_logger_;

  // Constant after construction.
  std::vector<std::unique_ptr<DurablePublisher>> publishers_;  // one per lane, used by that lane only
  std::unique_ptr<LanedConsumer> consumer_;

  std::unique_ptr<kube::SharedInformer> namespaces_;  // set by Run() before the lanes start
  std::atomic<bool> synced_{false};
};

Processor::Processor(const PipelineContext& context, kube::DynamicClient& source, NatsConnection& nats,
                     StatsRecorder& stats, plugins::S3Client* bucket, ProcessorOptions options)
    : impl_(std::make_unique<Impl>(context, source, nats, stats, bucket, options)) {}

Processor::~Processor() = default;

void Processor::Run(std::stop_token stop) { impl_->Run(stop); }

bool Processor::Ready() const { return impl_->Ready(); }

}  // namespace ro::kubesync

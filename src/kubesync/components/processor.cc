#include "ro/kubesync/processor.h"

#include <atomic>
#include <optional>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "namespace_metadata.h"
#include "pipeline_io.h"
#include "processor_stage.h"
#include "ro/common/log.h"
#include "ro/kube/errors.h"
#include "ro/kube/informer.h"
#include "ro/kubesync/pipeline_wire.h"
#include "stage_runner.h"

namespace ro::kubesync {
namespace {

using nlohmann::json;

constexpr std::string_view kComponent = "processor";

// The source's namespaces from an informer (labels only), with one GET for a namespace
// the informer has not seen yet (a namespace created together with its objects).
class InformerNamespaceLookup final : public NamespaceLookup {
 public:
  InformerNamespaceLookup(kube::DynamicClient& source, StatsRecorder& stats, ro::log::Logger logger)
      : source_(source), stats_(stats), logger_(std::move(logger)) {
    kube::InformerOptions options;
    options.reflector.transform = KeepNamespaceMetadata;
    informer_ = kube::NewSharedInformer(source_, {"", "v1", "namespaces"}, "", options);
  }

  // Starts the informer and waits for its cache; false when stopped first.
  bool Start(std::stop_token stop) {
    informer_->Start();
    while (!stop.stop_requested() && !informer_->WaitForCacheSync(stop, std::chrono::seconds{1})) {
    }
    return !stop.stop_requested();
  }
  void Stop() { informer_->Stop(); }

  std::optional<kube::ObjectPtr> Get(const std::string& ns) override {
    if (kube::ObjectPtr cached = informer_->store().Get(ns)) return cached;
    logger_.Debug("reading namespace from cluster", {{"namespace", ns}});
    try {
      json object = source_.Get({"", "v1", "namespaces"}, "", ns);
      KeepNamespaceMetadata(object);
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

 private:
  kube::DynamicClient& source_;
  StatsRecorder& stats_;
  const ro::log::Logger logger_;
  std::unique_ptr<kube::SharedInformer> informer_;
};

}  // namespace

class Processor::Impl {
 public:
  Impl(const PipelineContext& context, kube::DynamicClient& source, std::unique_ptr<stage::Transport> owned,
       stage::Transport& transport, StatsRecorder& stats, plugins::S3Client* bucket, ProcessorOptions options)
      : context_(context),
        owned_transport_(std::move(owned)),
        transport_(transport),
        stats_(stats),
        namespaces_(source, stats, ro::log::Logger(json{{"sourceCluster", context.SourceClusterField()}})),
        stage_(context, namespaces_, stats, bucket, options) {
    StageRunnerOptions runner_options;
    runner_options.lanes = static_cast<std::size_t>(context_.concurrent_tasks());
    runner_options.in_progress_interval = kInProgressInterval;
    runner_options.config_generation = context_.generation();
    // A lane's outputs go to the synchronizer as batches (docs/kubesync.md, "Batches").
    runner_options.publish_batch_bytes = kMaxBatchBytes;
    runner_ = std::make_unique<StageRunner>(
        [this] { return transport_.Subscribe(ProcessorConsumerConfig(context_.names())); },
        [this] { return transport_.NewPublisher(); },
        [this](Envelope& e, const DeliveryInfo& info, std::stop_token stop) { return stage_.Handle(e, info, stop); },
        StageRunner::CountingHooks(stats_, kComponent), ro::log::Logger(), runner_options);
  }

  bool Ready() const { return synced_.load() && runner_->Bound(); }

  void Run(std::stop_token stop) {
    if (namespaces_.Start(stop)) {
      synced_ = true;
      runner_->Run(stop);
    }
    namespaces_.Stop();
  }

 private:
  const PipelineContext& context_;
  std::unique_ptr<stage::Transport> owned_transport_;  // NatsStageTransport, when constructed from a connection
  stage::Transport& transport_;
  StatsRecorder& stats_;
  InformerNamespaceLookup namespaces_;
  ProcessorStage stage_;
  std::unique_ptr<StageRunner> runner_;  // constant after construction
  std::atomic<bool> synced_{false};
};

Processor::Processor(const PipelineContext& context, kube::DynamicClient& source, NatsConnection& nats,
                     StatsRecorder& stats, plugins::S3Client* bucket, ProcessorOptions options) {
  auto transport = std::make_unique<NatsStageTransport>(nats, context.names(), context.file().nats_replicas, stats, kComponent);
  stage::Transport& wire = *transport;
  impl_ = std::make_unique<Impl>(context, source, std::move(transport), wire, stats, bucket, options);
}

Processor::Processor(const PipelineContext& context, kube::DynamicClient& source, stage::Transport& transport,
                     StatsRecorder& stats, plugins::S3Client* bucket, ProcessorOptions options)
    : impl_(std::make_unique<Impl>(context, source, nullptr, transport, stats, bucket, options)) {}

Processor::~Processor() = default;

void Processor::Run(std::stop_token stop) { impl_->Run(stop); }

bool Processor::Ready() const { return impl_->Ready(); }

}  // namespace ro::kubesync

#include "ro/kubesync/synchronizer.h"

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "applied_state.h"
#include "pipeline_io.h"
#include "ro/common/log.h"
#include "ro/kube/informer.h"
#include "ro/kube/reflector.h"
#include "ro/plugins/kubernetes/allocated_fields.h"
#include "ro/kubesync/pipeline_wire.h"
#include "ro/kubesync/retry.h"
#include "ro/plugins/kubernetes/namespace_metadata.h"
#include "ro/plugins/kubernetes/synchronizer_decision.h"
#include "stage_runner.h"
#include "synchronizer_stage.h"

namespace ro::kubesync {
namespace {

using nlohmann::json;
namespace k8s = plugins::kubernetes;

constexpr std::string_view kComponent = "synchronizer";

// The pipeline's tombstone bucket, bound (again) each time the runner subscribes: a NATS
// that lost its store gets the bucket back before any message is handled.
//
// Not read between a reconnect and the next bind (the runner binds again then): the
// server may have restarted without its store, and another replica may be creating the
// bucket again at that moment. nats-server 2.9.10 (Debian bookworm's) can crash on a
// read of a stream it is still creating (a nil dereference in jsMsgGetRequest, seen in
// the fault table); a read after our own create has returned does not race it. Those
// reads fail instead, and their messages are NAKed and delivered again.
class KeyValueTombstones final : public TombstoneStore {
 public:
  void Bind(NatsConnection& nats, const PipelineNames& names, int replicas) {
    // Read before binding: a reconnect during the bind leaves it stale.
    const std::uint64_t epoch = nats.reconnects();
    const KeyValueConfig config = TombstoneBucketConfig(names, replicas);
    std::shared_ptr<KeyValueStore> bucket = nats.EnsureKeyValue(config);
    auto mirror = std::make_shared<KeyValueMirror>(bucket, config.ttl);
    std::shared_ptr<KeyValueMirror> previous;
    {
      std::lock_guard lock(mu_);
      nats_ = &nats;
      epoch_ = epoch;
      bucket_ = std::move(bucket);
      previous = std::exchange(mirror_, std::move(mirror));
    }
    // `previous` stops its watch here (outside mu_), or once the last Peek drops it.
  }
  Known Peek(std::string_view key) override {
    const std::shared_ptr<KeyValueMirror> mirror = Mirror();
    if (!mirror) return {};
    KeyValueMirror::Lookup found = mirror->Find(key);
    return Known{found.known, std::move(found.value)};
  }
  Known PeekCurrent(std::string_view key) override {
    const std::shared_ptr<KeyValueMirror> mirror = Mirror();
    if (!mirror || !mirror->WaitCurrent(kCurrentTimeout)) return {};
    KeyValueMirror::Lookup found = mirror->Find(key);
    return Known{found.known, std::move(found.value)};
  }
  std::optional<Entry> GetEntry(std::string_view key) override {
    std::optional<KeyValueStore::Entry> entry = Bucket()->GetEntry(key);
    if (!entry) return std::nullopt;
    return Entry{std::move(entry->value), entry->revision};
  }
  bool Update(std::string_view key, std::string_view value, std::uint64_t revision) override {
    return Bucket()->Update(key, value, revision);
  }

 private:
  // How long PeekCurrent waits for the copy before the caller reads the server.
  static constexpr std::chrono::milliseconds kCurrentTimeout{1000};

  std::shared_ptr<KeyValueMirror> Mirror() {
    std::lock_guard lock(mu_);
    return mirror_;
  }
  std::shared_ptr<KeyValueStore> Bucket() {
    std::lock_guard lock(mu_);
    if (!bucket_) throw NatsError("tombstone bucket", 1, 0, "not bound yet");
    if (nats_->reconnects() != epoch_) {
      throw NatsError("tombstone bucket", 1, 0,
                      "the connection was re-established since it was bound; waiting for the next bind");
    }
    return bucket_;
  }

  std::mutex mu_;
  const NatsConnection* nats_ = nullptr;     // guarded by mu_; set with bucket_
  std::uint64_t epoch_ = 0;                  // guarded by mu_: its reconnect count at the bind
  std::shared_ptr<KeyValueStore> bucket_;    // guarded by mu_
  std::shared_ptr<KeyValueMirror> mirror_;   // guarded by mu_: the bound bucket's copy
};

// An informer (not started) of the destination namespaces carrying
// kNamespaceCreatedByLabel of this LiveSynchronization.
std::unique_ptr<kube::SharedInformer> CreatedNamespacesInformer(kube::DynamicClient& destination,
                                                                const PipelineContext& context) {
  const std::string selector = std::string(k8s::kNamespaceCreatedByLabel) + "=" + context.stamp().managed_by;
  return kube::NewSharedInformer(destination, {"", "v1", "namespaces"}, "", kube::InformerOptions{}, selector);
}

}  // namespace

class Synchronizer::Impl {
 public:
  Impl(const PipelineContext& context, kube::DynamicClient& destination, NatsConnection& nats, StatsRecorder& stats,
       SynchronizerOptions options)
      : context_(context),
        destination_(destination),
        stats_(stats),
        options_(options),
        gvrs_(context.config().DistinctGvrs()),
        cache_(gvrs_, context.stamp().managed_by, kube::DefaultClock(), options.tombstone_ttl),
        transport_(nats, context.names(), context.file().nats_replicas, stats, kComponent,
                   [this](NatsConnection& connection) {
                     tombstones_.Bind(connection, context_.names(), context_.file().nats_replicas);
                   }),
        created_namespaces_(CreatedNamespacesInformer(destination, context)),
        stage_(context, destination, cache_, tombstones_, stats, options, &created_namespaces_->store()) {
    StageRunnerOptions runner_options;
    runner_options.lanes = static_cast<std::size_t>(context_.concurrent_tasks());
    runner_options.in_progress_interval = kInProgressInterval;
    runner_options.config_generation = context_.generation();
    runner_ = std::make_unique<StageRunner>(
        [this] { return transport_.Subscribe(SynchronizerConsumerConfig(context_.names())); },
        /*new_publisher=*/nullptr,
        [this](Envelope& e, const DeliveryInfo& info, std::stop_token stop) { return stage_.Handle(e, info, stop); },
        StageRunner::CountingHooks(stats_, kComponent),
        ro::log::Logger(json{{"destinationCluster", context.DestinationClusterField()}}), runner_options);
  }

  bool Ready() const { return synced_.load() && runner_->Bound(); }

  void Run(std::stop_token stop) {
    const std::string selector = std::string(k8s::kManagedByLabel) + "=" + context_.stamp().managed_by;
    for (const kube::GroupVersionResource& gvr : gvrs_) {
      // The cache is the reflector's sink: each object becomes a DestinationState as it
      // arrives, and no store keeps the objects themselves.
      kube::ReflectorOptions options;
      // Metadata (and a Service's allocated fields) is all the cache keeps: the apiserver
      // sends only that, instead of every object the synchronizer writes coming back whole.
      options.metadata_only = !k8s::HasAllocatedFields(gvr);
      auto& watched = reflectors_.emplace_back();
      watched.lister_watcher = kube::NewListerWatcher(destination_, gvr, "", selector);
      watched.reflector = std::make_unique<kube::Reflector>(*watched.lister_watcher, cache_.Sink(gvr.ToString()), options);
      watched.thread = std::jthread([reflector = watched.reflector.get()](std::stop_token s) { reflector->Run(s); });
    }
    created_namespaces_->Start();
    while (!stop.stop_requested() && !cache_.WaitForSync(stop, std::chrono::seconds{1})) {
    }
    while (!stop.stop_requested() && !created_namespaces_->WaitForCacheSync(stop, std::chrono::seconds{1})) {
    }
    if (!stop.stop_requested()) {
      synced_ = true;
      std::jthread housekeeping([this, stop] {
        do {
          for (const kube::GroupVersionResource& gvr : gvrs_) {
            const std::string key = gvr.ToString();
            stats_.SetObjectsInSync(key, static_cast<std::int64_t>(cache_.LiveCount(key)));
          }
          cache_.ExpireTombstones();
        } while (SleepFor(options_.housekeeping_interval, stop));
      });
      runner_->Run(stop);
    }
    reflectors_.clear();  // stops and joins each reflector thread before its reflector goes
    created_namespaces_->Stop();
  }

 private:
  const PipelineContext& context_;
  kube::DynamicClient& destination_;
  StatsRecorder& stats_;
  const SynchronizerOptions options_;
  const std::vector<kube::GroupVersionResource> gvrs_;
  AppliedStateCache cache_;
  KeyValueTombstones tombstones_;
  NatsStageTransport transport_;
  // The destination namespaces this LiveSynchronization created (forceNamespaceCreation),
  // kept in step with their source namespaces by the stage.
  std::unique_ptr<kube::SharedInformer> created_namespaces_;
  SynchronizerStage stage_;
  std::unique_ptr<StageRunner> runner_;  // constant after construction

  // A reflector per GVR feeding cache_ (Run() only). Destroyed in reverse member order:
  // the thread is joined before the reflector and its lister-watcher go.
  struct WatchedGvr {
    std::unique_ptr<kube::ListerWatcher> lister_watcher;
    std::unique_ptr<kube::Reflector> reflector;
    std::jthread thread;
  };
  std::vector<WatchedGvr> reflectors_;
  std::atomic<bool> synced_{false};
};

Synchronizer::Synchronizer(const PipelineContext& context, kube::DynamicClient& destination, NatsConnection& nats,
                           StatsRecorder& stats, SynchronizerOptions options)
    : impl_(std::make_unique<Impl>(context, destination, nats, stats, options)) {}

Synchronizer::~Synchronizer() = default;

void Synchronizer::Run(std::stop_token stop) { impl_->Run(stop); }

bool Synchronizer::Ready() const { return impl_->Ready(); }

}  // namespace ro::kubesync

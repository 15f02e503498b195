#include "ro/kubesync/events_listener.h"

#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>

#include <nlohmann/json.hpp>

#include "log_fields.h"
#include "namespace_metadata.h"
#include "pipeline_io.h"
#include "ro/common/digest.h"
#include "ro/common/log.h"
#include "ro/common/object_meta.h"
#include "ro/kube/discovery.h"
#include "ro/kube/errors.h"
#include "ro/kube/pager.h"
#include "ro/kube/informer.h"
#include "ro/kube/reflector.h"
#include "ro/kube/workqueue.h"
#include "ro/kubesync/pipeline_wire.h"
#include "ro/kubesync/retry.h"
#include "ro/plugins/kubernetes/namespace_metadata.h"

namespace ro::kubesync {
namespace {

using nlohmann::json;
namespace k8s = plugins::kubernetes;

// Thrown by a sink when the component stops while events are not yet confirmed: the
// reflector abandons the event (it is re-read from the last durable resume point).
class Stopping : public std::runtime_error {
 public:
  Stopping() : std::runtime_error("stopping before the events were stored") {}
};

// The events of a list, published as batches of up to kMaxBatchBytes (docs/kubesync.md,
// "Batches"): a page of small objects costs a few JetStream messages instead of one per
// object. Not thread-safe (one per listing thread).
class ListBatch {
 public:
  ListBatch(DurablePublisher& publisher, std::string subject) : publisher_(publisher), subject_(std::move(subject)) {}

  void Add(const Envelope& envelope) {
    const std::string encoded = Encode(envelope);
    if (!batch_.Add(encoded)) {
      publisher_.Publish(subject_, batch_.Take());
      batch_.Add(encoded);
    }
  }
  // Publishes what was gathered (the end of a page: the page's events leave before the
  // next page is read).
  void End() {
    if (!batch_.empty()) publisher_.Publish(subject_, batch_.Take());
  }

 private:
  DurablePublisher& publisher_;
  const std::string subject_;
  BatchBuilder batch_;
};

// Retry delay of a namespace whose objects could not be listed: long enough not to
// hammer a failing apiserver, short enough that the namespace is synced soon after.
constexpr std::chrono::seconds kNamespaceRetry{5};

// Relative Redis key of the creation time (unix ns) of the stream the stored resume
// points refer to.
constexpr std::string_view kStreamCreatedKey = "stream-created";
// Relative Redis key of the fingerprint of the replication config the stored resume
// points were published with.
constexpr std::string_view kReplicationFingerprintKey = "replication-fingerprint";

// SHA-256 of spec.config.replication as the component's file holds it: what the listener
// publishes, and what the processor and the synchronizer do with it.
std::string ReplicationFingerprint(const PipelineContext& context) {
  const std::shared_ptr<const json>& spec_config = context.file().spec_config;
  return common::Sha256Hex(spec_config ? common::Member(*spec_config, "replication").dump() : "null", 32);
}

}  // namespace

// One configured GVR: its reflector and the sink that publishes what it learns.
// The sink methods run on the reflector thread only.
class EventsListener::GvrWatch final : public kube::ReflectorSink {
 public:
  GvrWatch(EventsListener& owner, kube::GroupVersionResource gvr, bool namespaced)
      : owner_(owner),
        gvr_(std::move(gvr)),
        gvr_string_(gvr_.ToString()),
        namespaced_(namespaced),
        logger_(ro::log::Logger(json{{"sourceCluster", owner.context_.SourceClusterField()}})) {}

  const kube::GroupVersionResource& gvr() const { return gvr_; }
  const std::string& gvr_string() const { return gvr_string_; }
  bool namespaced() const { return namespaced_; }

  // The event of `object` of this GVR, counted as published by the listener. Thread-safe
  // (the periodic resync's thread uses it too).
  Envelope NewEnvelope(json object, EventType type, bool resync) const {
    owner_.stats_.RecordEvent("eventslistener", gvr_string_, ToString(type), common::Namespace(object));
    Envelope envelope;
    envelope.type = type;
    envelope.resync = resync;
    envelope.gvr = gvr_;
    envelope.observed_at = std::chrono::system_clock::now();
    envelope.object = std::move(object);
    envelope.config_generation = owner_.context_.generation();
    envelope.stream_created = owner_.stream_created_.load();
    return envelope;
  }

  // Starts the GVR's thread: without a resume point it first lists (page by page,
  // publishing each page as it arrives, so the first objects are replicated while the
  // list is still running and at most one page is in memory), then the reflector
  // watches from the list's (or the stored) resourceVersion.
  void Start(const std::string& resume_rv, std::stop_token stop) {
    stop_ = stop;
    PublisherOptions publisher_options;
    publisher_options.max_in_flight = static_cast<std::size_t>(owner_.context_.concurrent_tasks());
    publisher_ =
        std::make_unique<DurablePublisher>(owner_.nats_, logger_, owner_.stats_, "eventslistener", publisher_options);
    lw_ = kube::NewListerWatcher(owner_.source_, gvr_, "");
    thread_ = std::jthread([this, resume_rv, stop] {
      std::string from = resume_rv;
      if (from.empty()) {
        from = InitialList(stop);
      } else {
        logger_.Info("listing objects in cluster", {{"resource", gvr_string_}, {"resumeFromResourceVersion", from}});
      }
      if (stop.stop_requested()) return;
      kube::ReflectorOptions options;
      options.initial_resource_version = from;
      options.transform = kube::StripManagedFields;  // never replicated; often a third of an object
      options.max_backoff = kMaxRetryDelay;  // the pipeline's RPO, not client-go's 30 s
      {
        std::lock_guard lock(mu_);
        reflector_ = std::make_unique<kube::Reflector>(*lw_, *this, std::move(options));
      }
      reflector_->Run(stop);
    });
  }

  void Join() {
    if (thread_.joinable()) thread_.join();
  }

  // The durable resourceVersion to store: the reflector advances it only after the sink
  // returned, i.e. after every event up to it was stored by JetStream. Thread-safe.
  std::string DurableResourceVersion() const {
    std::lock_guard lock(mu_);
    return reflector_ ? reflector_->LastSyncResourceVersion() : "";
  }
  std::string last_checkpoint;  // checkpointer thread only

  // A relist after 410 Gone (or after a failure the reflector could not resume from).
  void Replace(std::vector<kube::ObjectPtr> objects, const std::string& resource_version) override {
    logger_.Info("listed objects in cluster",
                 {{"resource", gvr_string_}, {"count", objects.size()}, {"resourceVersion", resource_version}});
    last_rv_.clear();
    ListBatch batch(*publisher_, owner_.context_.names().events_subject());
    for (const kube::ObjectPtr& object : objects) {
      batch.Add(NewEnvelope(*object, EventType::kUpsert, /*resync=*/true));
      Remember(*object);
    }
    batch.End();
    Commit();
    ListPublished();
  }

  void Add(kube::ObjectPtr object) override { Live(*object, EventType::kUpsert, "create"); }
  void Update(kube::ObjectPtr object) override { Live(*object, EventType::kUpsert, "update"); }
  void Delete(kube::ObjectPtr object) override { Live(*object, EventType::kDelete, "delete"); }
  // End of a burst of watch events: one wait for the acks of all of them (group commit),
  // so a burst costs one round trip to JetStream instead of one per event. The reflector
  // stores the burst's resourceVersion only after this returned.
  void Flush() override { Commit(); }

 private:
  void Live(const json& object, EventType type, std::string_view event_type) {
    json line = {{"event", fields::Event(event_type)}, {"sourceObject", fields::ObjectRef(gvr_, object)}};
    const std::string key = kube::ObjectStoreKey(object);
    if (event_type == "update") {
      if (const auto it = last_rv_.find(key); it != last_rv_.end()) {
        json old = line["sourceObject"];
        old["resourceVersion"] = it->second;
        line["oldSourceObject"] = std::move(old);
      }
    }
    if (json last_update = fields::LastUpdate(object); !last_update.is_null()) {
      line["lastUpdate"] = std::move(last_update);
    }
    logger_.Info("object read from cluster", line);
    Publish(object, type, /*resync=*/false);  // acked by Flush() at the end of the burst
    if (type == EventType::kDelete) {
      last_rv_.erase(key);
    } else {
      Remember(object);
    }
  }

  // The first list, page by page, retried until it completes or `stop`. Returns its
  // resourceVersion ("" when stopped).
  std::string InitialList(std::stop_token stop) {
    common::Backoff backoff(std::chrono::milliseconds{800}, kMaxRetryDelay);
    std::string resource_version;
    RetryUntilStopped(
        stop, backoff,
        [&] {
          logger_.Info("listing objects in cluster", {{"resource", gvr_string_}});
          std::size_t count = 0;
          last_rv_.clear();
          ListBatch batch(*publisher_, owner_.context_.names().events_subject());
          resource_version = kube::ListPages(
              owner_.source_, gvr_, "", kube::ListOptions{},
              [&](std::vector<json>& items) {
                for (json& item : items) {
                  kube::StripManagedFields(item);
                  Remember(item);
                  batch.Add(NewEnvelope(std::move(item), EventType::kUpsert, /*resync=*/true));
                  ++count;
                }
                batch.End();
              },
              // A restarted list re-publishes from the start: duplicates are harmless.
              [&] { last_rv_.clear(); });
          Commit();
          logger_.Info("listed objects in cluster",
                       {{"resource", gvr_string_}, {"count", count}, {"resourceVersion", resource_version}});
        },
        [&](const std::exception& e, std::chrono::milliseconds wait) {
          if (stop.stop_requested()) return;  // Stopping: not a failure
          logger_.Error("error listing objects in cluster",
                        {{"resource", gvr_string_}, {"error", e.what()}, {"retryInMs", wait.count()}});
          owner_.stats_.RecordError("eventslistener", gvr_string_, "List");
        });
    if (stop.stop_requested()) return "";
    ListPublished();
    return resource_version;
  }

  // Every object of a complete list is stored in the stream.
  void ListPublished() {
    owner_.stats_.SetLastResync(gvr_string_, std::chrono::system_clock::now());
    // Objects deleted while nobody watched are pruned by the reconciler's pass.
    owner_.RequestReconcile();
  }

  // A watch event: one message of its own, sent at once.
  void Publish(const json& object, EventType type, bool resync) {
    publisher_->Publish(owner_.context_.names().events_subject(), Encode(NewEnvelope(object, type, resync)));
  }

  void Commit() {
    if (!publisher_->Commit(stop_)) throw Stopping();
  }

  void Remember(const json& object) {
    last_rv_[kube::ObjectStoreKey(object)] = kube::ObjectResourceVersion(object);
  }

  EventsListener& owner_;
  const kube::GroupVersionResource gvr_;
  const std::string gvr_string_;
  const bool namespaced_;
  ro::log::Logger logger_;

  std::stop_token stop_;
  std::unique_ptr<DurablePublisher> publisher_;  // this GVR's thread only
  std::unique_ptr<kube::ListerWatcher> lw_;
  mutable std::mutex mu_;
  std::unique_ptr<kube::Reflector> reflector_;  // set once (guarded by mu_), then used by this GVR's thread
  // Reflector thread only: key -> last published resourceVersion (oldSourceObject).
  std::unordered_map<std::string, std::string> last_rv_;
  std::jthread thread_;
};

EventsListener::EventsListener(const PipelineContext& context, kube::DynamicClient& source,
                               kube::DynamicClient* destination, NatsConnection& nats, RedisState& redis,
                               StatsRecorder& stats, EventsListenerOptions options)
    : context_(context),
      source_(source),
      destination_(destination),
      nats_(nats),
      redis_(redis),
      stats_(stats),
      options_(options) {}

EventsListener::~EventsListener() = default;

bool EventsListener::Discover(std::stop_token stop) {
  const ro::log::Logger logger(json{{"sourceCluster", context_.SourceClusterField()}});
  common::Backoff backoff(std::chrono::milliseconds{800}, kMaxRetryDelay);
  return RetryUntilStopped(
      stop, backoff,
      [&] {
        watches_.clear();
        logger.Info("reading server groups and resources");
        for (const kube::GroupVersionResource& gvr : context_.config().DistinctGvrs()) {
          logger.Debug("reading resources for group version", {{"groupVersion", gvr.GroupVersion()}});
          const std::optional<kube::ApiResource> resource = source_.discovery().Find(gvr);
          if (resource) {
            logger.Info("group resource version found",
                        {{"resource", gvr.ToString()}, {"namespaced", resource->namespaced}});
          } else {
            // Not served (yet): the reflector keeps retrying, e.g. until a CRD is installed.
            logger.Warn("resource group version not found", {{"resource", gvr.ToString()}});
          }
          watches_.push_back(std::make_unique<GvrWatch>(*this, gvr, !resource || resource->namespaced));
        }
        logger.Info("server group and resources read from cluster");
      },
      [&](const std::exception& e, std::chrono::milliseconds wait) {
        logger.Error("error reading server groups and resources", {{"error", e.what()}, {"retryInMs", wait.count()}});
      });
}

void EventsListener::RequestReconcile() {
  try {
    nats_.PublishCore(context_.names().control_subject(), kReconcileNow);
  } catch (const NatsError& e) {
    // At most once by design: the reconciler's next period prunes instead.
    ro::log::Logger().Warn("error publishing event", {{"error", e.what()}, {"control", kReconcileNow}});
  }
}

bool EventsListener::Republish(const GvrWatch& watch, const std::string& ns, DurablePublisher& publisher,
                               std::stop_token stop) {
  const ro::log::Logger logger(json{{"sourceCluster", context_.SourceClusterField()}});
  logger.Info("listing objects in cluster", {{"resource", watch.gvr_string()}, {"namespace", ns}});
  std::size_t count = 0;
  ListBatch batch(publisher, context_.names().events_subject());
  const std::string rv = kube::ListPages(
      source_, watch.gvr(), ns, kube::ListOptions{},
      [&](std::vector<json>& items) {
        for (json& item : items) {
          kube::StripManagedFields(item);
          batch.Add(watch.NewEnvelope(std::move(item), EventType::kUpsert, /*resync=*/true));
          ++count;
        }
        batch.End();
      },
      // A restarted list re-publishes from the start: duplicates are harmless.
      nullptr);
  if (!publisher.Commit(stop)) return false;
  logger.Info("listed objects in cluster",
              {{"resource", watch.gvr_string()}, {"namespace", ns}, {"count", count}, {"resourceVersion", rv}});
  return true;
}

void EventsListener::PeriodicResync(std::stop_token stop) {
  const ro::log::Logger logger(json{{"sourceCluster", context_.SourceClusterField()}});
  DurablePublisher publisher(nats_, logger, stats_, "eventslistener");
  const auto period = std::chrono::duration_cast<std::chrono::milliseconds>(context_.config().replication.resync_period);
  while (true) {
    std::optional<std::int64_t> for_stream;  // a re-publish WatchStream asked for
    {
      std::unique_lock lock(resync_mu_);
      resync_cv_.wait_for(lock, stop, period, [&] { return resync_for_stream_.has_value(); });
      if (stop.stop_requested()) return;
      for_stream = std::exchange(resync_for_stream_, std::nullopt);
    }
    bool complete = true;
    for (const auto& watch : watches_) {
      try {
        if (!Republish(*watch, "", publisher, stop)) return;
        stats_.SetLastResync(watch->gvr_string(), std::chrono::system_clock::now());
      } catch (const std::exception& e) {
        logger.Error("error listing objects in cluster", {{"resource", watch->gvr_string()}, {"error", e.what()}});
        stats_.RecordError("eventslistener", watch->gvr_string(), "List");
        complete = false;
      }
    }
    if (!for_stream) continue;
    if (!complete) {
      // Not everything is in the new stream yet: again, after a pause.
      if (!SleepFor(std::chrono::seconds{5}, stop)) return;
      std::lock_guard lock(resync_mu_);
      if (!resync_for_stream_) resync_for_stream_ = for_stream;
      continue;
    }
    // Deletions whose events were lost with the stream: the reconciler prunes them.
    RequestReconcile();
    try {
      redis_.Set(kStreamCreatedKey, std::to_string(*for_stream));
    } catch (const RedisError& e) {
      logger.Debug("error storing resume point", {{"key", kStreamCreatedKey}, {"error", e.what()}});
    }
  }
}

void EventsListener::RequestResync() {
  std::lock_guard lock(resync_mu_);
  resync_for_stream_ = stream_created_.load();
  resync_cv_.notify_all();
}

std::optional<std::int64_t> EventsListener::StreamCreated() {
  try {
    // A lost stream is created again here or by another component.
    EnsurePipeline(nats_, context_.names(), context_.file().nats_replicas);
    return nats_.GetStreamState(context_.names().stream()).created_unix_nanos;
  } catch (const NatsError& e) {
    ro::log::Logger().Debug("error reading the stream", {{"error", e.what()}});
    return std::nullopt;
  }
}

void EventsListener::WatchStream() {
  const std::uint64_t reconnects = nats_.reconnects();
  const auto now = std::chrono::steady_clock::now();
  if (reconnects == seen_reconnects_ && now < next_stream_check_) return;
  const std::optional<std::int64_t> created = StreamCreated();
  if (!created) return;  // not connected (yet): the next checkpoint tries again
  seen_reconnects_ = reconnects;
  next_stream_check_ = now + options_.stream_check_interval;
  if (*created == stream_created_) return;
  const bool replaced = stream_created_ != 0;
  stream_created_ = *created;
  if (!replaced) return;
  // The stream was lost (a nats-server restarted without its store) and created again:
  // every event it held and nobody had consumed yet is gone. Publish the whole source
  // state again now instead of at the next period.
  ro::log::Logger().Warn("stream created again; publishing every object again",
                         {{"stream", context_.names().stream()}});
  RequestResync();
}

void EventsListener::SampleBacklog() {
  const auto now = std::chrono::steady_clock::now();
  if (now < next_backlog_sample_) return;
  next_backlog_sample_ = now + options_.backlog_interval;
  try {
    const StreamState state = nats_.GetStreamState(context_.names().stream());
    std::optional<std::chrono::system_clock::time_point> oldest;
    if (state.messages > 0 && state.first_unix_nanos > 0) {
      oldest = std::chrono::system_clock::time_point(
          std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::nanoseconds{state.first_unix_nanos}));
    }
    stats_.SetBacklog(state.messages, oldest);
  } catch (const NatsError& e) {
    ro::log::Logger().Debug("error sampling the stream's backlog", {{"error", e.what()}});
  }
}

void EventsListener::ForgetStaleResumePoints() {
  try {
    // Another replication config (a filter, forceNamespaceCreation, a transformation): what
    // the previous one did not select or could not write was never published again.
    const std::string fingerprint = ReplicationFingerprint(context_);
    const std::optional<std::string> stored = redis_.Get(kReplicationFingerprintKey);
    if (stored && *stored != fingerprint) {
      ro::log::Logger().Info("replication config changed since the resume points were stored; listing instead",
                             {{"stream", context_.names().stream()}});
      for (const auto& watch : watches_) redis_.SetResumeVersion(watch->gvr(), "");
    }
    if (!stored || *stored != fingerprint) redis_.Set(kReplicationFingerprintKey, fingerprint);
  } catch (const RedisError& e) {
    ro::log::Logger().Warn("error reading resume point; listing instead", {{"error", e.what()}});
  }

  const std::optional<std::int64_t> created = StreamCreated();
  if (!created) return;
  stream_created_ = *created;
  seen_reconnects_ = nats_.reconnects();
  next_stream_check_ = std::chrono::steady_clock::now() + options_.stream_check_interval;
  try {
    const std::optional<std::string> stored = redis_.Get(kStreamCreatedKey);
    if (stored && *stored != std::to_string(*created)) {
      ro::log::Logger().Warn("stream created again since the resume points were stored; listing instead",
                             {{"stream", context_.names().stream()}});
      for (const auto& watch : watches_) redis_.SetResumeVersion(watch->gvr(), "");
    }
    if (!stored || *stored != std::to_string(*created)) redis_.Set(kStreamCreatedKey, std::to_string(*created));
  } catch (const RedisError& e) {
    ro::log::Logger().Warn("error reading resume point; listing instead", {{"error", e.what()}});
  }
}

void EventsListener::Checkpoint() {
  for (const auto& watch : watches_) {
    const std::string rv = watch->DurableResourceVersion();
    if (rv.empty() || rv == watch->last_checkpoint) continue;
    try {
      redis_.SetResumeVersion(watch->gvr(), rv);
      watch->last_checkpoint = rv;
    } catch (const RedisError& e) {
      // Redis is only a resume hint: an older stored version re-publishes a few events.
      ro::log::Logger().Debug("error storing resume point", {{"resource", watch->gvr_string()}, {"error", e.what()}});
      return;
    }
  }
}

void EventsListener::RepublishNamespacesFoundWhileAway(const kube::SharedInformer& source_namespaces,
                                                       kube::SharedInformer& destination_namespaces,
                                                       kube::WorkQueue& ns_queue, std::stop_token stop) {
  // A namespace created in the destination while this listener was not running (a
  // restart, a suspended pipeline) was in its initial list, so it never "appeared":
  // the objects the synchronizer recorded as waiting for it are re-published now, not at
  // the next resync.
  while (!stop.stop_requested() && !destination_namespaces.WaitForCacheSync(stop, std::chrono::seconds{1})) {
  }
  if (stop.stop_requested()) return;
  std::vector<std::string> missing;
  try {
    // Recorded missing within two resync periods (a resync records it again).
    const auto window = 2 * context_.config().replication.resync_period;
    missing = ReadStats(redis_).MissingNamespaces(std::chrono::system_clock::now(),
                                                  std::chrono::duration_cast<std::chrono::system_clock::duration>(window));
  } catch (const std::exception& e) {
    ro::log::Logger().Warn("error reading missing namespaces; the next resync brings their objects",
                           {{"error", e.what()}});
    return;
  }
  for (const std::string& name : missing) {
    const kube::ObjectPtr found = destination_namespaces.store().Get(name);
    if (!found || !source_namespaces.store().Get(name)) continue;
    ro::log::Logger(json{{"destinationCluster", context_.DestinationClusterField()}})
        .Info("namespace found in cluster", {{"namespace", name}});
    ns_queue.Add(name);
  }
}

void EventsListener::Run(std::stop_token stop) {
  if (!Discover(stop)) return;

  // Namespace labels and annotations: a namespace whose labels change gets its objects
  // re-published (the filters' namespaceSelector), and so does one whose annotations
  // change (the destination namespace created for it follows them).
  kube::InformerOptions ns_options;
  ns_options.reflector.transform = KeepNamespaceMetadata;
  auto namespaces = kube::NewSharedInformer(source_, {"", "v1", "namespaces"}, "", ns_options);
  kube::WorkQueue ns_queue;
  kube::ResourceEventHandler handler;
  handler.on_update = [&](const kube::ObjectPtr& old_ns, const kube::ObjectPtr& new_ns) {
    if (common::Labels(*old_ns) != common::Labels(*new_ns) ||
        common::Annotations(*old_ns) != common::Annotations(*new_ns)) {
      ns_queue.AddAfter(std::string(common::Name(*new_ns)), options_.namespace_republish_delay);
    }
  };
  namespaces->AddEventHandler(std::move(handler));
  namespaces->Start();

  // Destination namespaces: one that appears (created by hand or by another tool) gets
  // the objects of the source namespace of that name re-published; those that arrived
  // while it was missing were ended (the synchronizer's NamespaceNotFound). Not one a
  // synchronizer created: it did so to write the objects that are arriving.
  std::unique_ptr<kube::SharedInformer> destination_namespaces;
  if (destination_ != nullptr) {
    kube::InformerOptions destination_options;
    destination_options.reflector.transform = KeepNamespaceMetadata;
    destination_namespaces = kube::NewSharedInformer(*destination_, {"", "v1", "namespaces"}, "", destination_options);
    kube::ResourceEventHandler appeared;
    kube::SharedInformer& informer = *destination_namespaces;
    appeared.on_add = [&](const kube::ObjectPtr& ns) {
      if (!informer.HasSynced()) return;  // the initial list: nothing appeared
      if (!common::Label(*ns, k8s::kNamespaceCreatedByLabel).empty()) return;
      const std::string& name = common::Name(*ns);
      if (!namespaces->store().Get(name)) return;  // no such namespace in the source
      ro::log::Logger(json{{"destinationCluster", context_.DestinationClusterField()}})
          .Info("namespace found in cluster", {{"namespace", name}});
      ns_queue.AddAfter(name, options_.namespace_republish_delay);
    };
    destination_namespaces->AddEventHandler(std::move(appeared));
    destination_namespaces->Start();
  }

  ForgetStaleResumePoints();
  for (const auto& watch : watches_) {
    std::string resume;
    try {
      resume = redis_.GetResumeVersion(watch->gvr()).value_or("");
    } catch (const RedisError& e) {
      ro::log::Logger().Warn("error reading resume point; listing instead",
                             {{"resource", watch->gvr_string()}, {"error", e.what()}});
    }
    watch->last_checkpoint = resume;
    watch->Start(resume, stop);
  }

  std::jthread ns_worker([&](std::stop_token worker_stop) {
    const ro::log::Logger logger(json{{"sourceCluster", context_.SourceClusterField()}});
    DurablePublisher publisher(nats_, logger, stats_, "eventslistener");
    while (std::optional<std::string> ns = ns_queue.Get()) {
      if (worker_stop.stop_requested()) {  // shutting down: drain without work
        ns_queue.Done(*ns);
        continue;
      }
      bool ok = true;
      for (const auto& watch : watches_) {
        if (!watch->namespaced()) continue;
        try {
          if (!Republish(*watch, *ns, publisher, stop)) break;
        } catch (const std::exception& e) {
          logger.Error("error listing objects in cluster",
                       {{"resource", watch->gvr_string()}, {"namespace", *ns}, {"error", e.what()}});
          stats_.RecordError("eventslistener", watch->gvr_string(), "List");
          ok = false;
        }
      }
      if (ok) {
        RequestReconcile();  // objects of an unlabelled namespace must go
      } else if (!worker_stop.stop_requested()) {
        ns_queue.AddAfter(*ns, kNamespaceRetry);
      }
      ns_queue.Done(*ns);
    }
  });
  std::jthread resync([this, stop] { PeriodicResync(stop); });
  std::jthread checkpointer([this, stop] {
    while (SleepFor(options_.checkpoint_interval, stop)) {
      Checkpoint();
      WatchStream();
      SampleBacklog();
    }
  });

  // Ready once the namespace cache is usable; the reflectors run (and retry) on their own.
  while (!stop.stop_requested() && !namespaces->WaitForCacheSync(stop, std::chrono::seconds{1})) {
  }
  ready_ = !stop.stop_requested();
  if (destination_namespaces) RepublishNamespacesFoundWhileAway(*namespaces, *destination_namespaces, ns_queue, stop);

  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock lock(mu);
  cv.wait(lock, stop, [] { return false; });

  ready_ = false;
  ns_queue.ShutDown();
  ns_worker.request_stop();
  ns_worker.join();
  resync.join();
  checkpointer.join();
  namespaces->Stop();
  if (destination_namespaces) destination_namespaces->Stop();
  for (const auto& watch : watches_) watch->Join();
  Checkpoint();  // the last durable versions
}

}  // namespace ro::kubesync

#include "ro/kubesync/synchronizer.h"

#include <atomic>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "applied_state.h"
#include "laned_consumer.h"
#include "log_fields.h"
#include "ro/common/log.h"
#include "ro/kube/errors.h"
#include "ro/kube/informer.h"
#include "ro/plugins/kubernetes/allocated_fields.h"
#include "ro/plugins/kubernetes/synchronizer_decision.h"

namespace ro::kubesync {
namespace {

using nlohmann::json;
namespace k8s = plugins::kubernetes;

constexpr std::string_view kComponent = "synchronizer";
// metadata.managedFields manager of our writes.
constexpr std::string_view kFieldManager = "kubesync";

// The stats `reason` of a failed call: the API's reason ("Invalid", "Forbidden", ...),
// "Transport" when no answer came.
std::string ErrorReason(const std::exception& e) {
  if (const auto* api = dynamic_cast<const kube::ApiError*>(&e)) return std::string(kube::ToString(api->reason()));
  if (dynamic_cast<const kube::TransportError*>(&e) != nullptr) return "Transport";
  return "Internal";
}

// The tombstone a source deletion's stub records: its source uid and the deletion's
// source resourceVersion.
k8s::Tombstone TombstoneOf(const json& stub) {
  const std::optional<k8s::ControlStamp> stamp = k8s::ReadStamp(stub);
  if (!stamp) return {};
  return k8s::Tombstone{stamp->source_uid, stamp->source_resource_version};
}

// The key of a tombstone in the bucket: "<gvr>/<namespace>/<name>", escaped.
std::string TombstoneKey(std::string_view gvr, std::string_view key) {
  std::string text(gvr);
  text += '/';
  text += key;
  return EscapeKeyValueKey(text);
}

// How the handling of one message ended. A NAK after a 429 carries the server's
// Retry-After: the redelivery waits at least that long.
struct Step {
  enum Kind { kAck, kNak, kTerm, kDecideAgain };
  Step(Kind k) : kind(k) {}  // NOLINT(google-explicit-constructor): `return Step::kAck;`
  Step(Kind k, std::chrono::seconds after) : kind(k), retry_after(after) {}
  bool operator==(Kind k) const { return kind == k; }

  Kind kind;
  std::chrono::seconds retry_after{0};
};

}  // namespace

class Synchronizer::Impl {
 public:
  Impl(const PipelineContext& context, kube::DynamicClient& destination, NatsConnection& nats, StatsRecorder& stats,
       SynchronizerOptions options)
      : context_(context),
        destination_(destination),
        nats_(nats),
        stats_(stats),
        options_(options),
        gvrs_(context.config().DistinctGvrs()),
        cache_(GvrStrings(gvrs_), kube::DefaultClock(), options.tombstone_ttl),
        logger_(json{{"destinationCluster", context.DestinationClusterField()}}) {
    LanedConsumerOptions consumer_options;
    consumer_options.lanes = static_cast<std::size_t>(context_.concurrent_tasks());
    consumer_options.in_progress = [this](std::string_view reply) { nats_.PublishCore(reply, "+WPI"); };
    consumer_options.in_progress_interval = kInProgressInterval;
    consumer_options.connection_epoch = [this] { return nats_.reconnects(); };
    consumer_ = std::make_unique<LanedConsumer>(
        [this] {
          EnsurePipeline(nats_, context_.names());
          std::shared_ptr<KeyValueStore> tombstones = nats_.EnsureKeyValue(TombstoneBucketConfig(context_.names()));
          {
            std::lock_guard lock(tombstones_mu_);
            tombstones_ = std::move(tombstones);
          }
          return nats_.PullSubscribe(context_.names().stream(), SynchronizerConsumerConfig(context_.names()).durable);
        },
        [this](std::size_t, std::vector<Delivery>& batch, std::stop_token) {
          for (Delivery& d : batch) Handle(d);
        },
        [this](const Message& message, const DecodeError& e) {
          ro::log::Logger().Error("error decoding event",
                                  {{"error", e.what()}, {"field", e.field()}, {"streamSequence", message.stream_sequence()}});
          stats_.RecordError(kComponent, "", "Decode");
        },
        ro::log::Logger(), consumer_options);
  }

  bool Ready() const { return synced_.load() && consumer_->Bound(); }

  void Run(std::stop_token stop) {
    const std::string selector = std::string(k8s::kManagedByLabel) + "=" + context_.stamp().managed_by;
    for (const kube::GroupVersionResource& gvr : gvrs_) {
      kube::InformerOptions options;
      options.reflector.transform = [gvr](json& object) { ReduceForCache(gvr, object); };
      auto informer = kube::NewSharedInformer(destination_, gvr, "", options, selector);
      const std::string key = gvr.ToString();
      kube::ResourceEventHandler handler;
      handler.on_add = [this, key](const kube::ObjectPtr& o) { cache_.ObserveUpsert(key, o); };
      handler.on_update = [this, key](const kube::ObjectPtr&, const kube::ObjectPtr& o) { cache_.ObserveUpsert(key, o); };
      handler.on_delete = [this, key](const kube::ObjectPtr& o, bool) { cache_.ObserveDelete(key, o); };
      informer->AddEventHandler(std::move(handler));
      informer->Start();
      informers_.push_back(std::move(informer));
    }
    for (const auto& informer : informers_) {
      while (!stop.stop_requested() && !informer->WaitForCacheSync(stop, std::chrono::seconds{1})) {
      }
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
      consumer_->Run(stop);
    }
    for (const auto& informer : informers_) informer->Stop();
  }

 private:
  static std::vector<std::string> GvrStrings(const std::vector<kube::GroupVersionResource>& gvrs) {
    std::vector<std::string> out;
    for (const auto& gvr : gvrs) out.push_back(gvr.ToString());
    return out;
  }

  // One message, start to settlement.
  void Handle(Delivery& d) {
    Step step(Step::kNak);
    try {
      step = Apply(d);
    } catch (const std::exception& e) {
      // Nothing in Apply is expected to escape; a bug must not stop the lane.
      logger_.Error("error applying event", {{"error", e.what()}});
      stats_.RecordError(kComponent, d.envelope.gvr.ToString(), "Internal");
    }
    try {
      switch (step.kind) {
        case Step::kAck:
          d.message.Ack();
          break;
        case Step::kTerm:
          d.message.Term();
          break;
        case Step::kNak:
        case Step::kDecideAgain:
          d.message.Nak(NakDelay(d.message.delivery_count(), step.retry_after));
          break;
      }
    } catch (const NatsError&) {
      // A lost settlement only means a redelivery, which the rules make harmless.
    }
  }

  Step Apply(Delivery& d) {
    Envelope& e = d.envelope;
    const std::string gvr = e.gvr.ToString();
    const std::string name(fields::Name(e.object));
    const std::string ns(fields::Namespace(e.object));
    if (name.empty()) {
      logger_.Error("error decoding event", {{"error", "the object has no metadata.name"}, {"resource", gvr}});
      stats_.RecordError(kComponent, gvr, "Decode");
      stats_.RecordFailure(kComponent, gvr, "Decode", "", "the object has no metadata.name");
      return Step::kTerm;
    }
    const std::string key = ns.empty() ? name : ns + "/" + name;
    const bool source_deleted = e.type == EventType::kDelete && e.source_deleted;
    Line line{gvr, fields::SourceRefFromStamped(e.gvr, e.object)};
    stats_.RecordEvent(kComponent, gvr, ToString(e.type));
    // A source deletion is made durable before anything else: whatever the destination
    // holds, no upsert that is not newer may re-create the object later, in this process,
    // another replica or after a restart.
    const k8s::Tombstone tombstone = source_deleted ? TombstoneOf(e.object) : k8s::Tombstone{};
    if (source_deleted && !SaveTombstone(gvr, key, tombstone, line)) return Step::kNak;

    // A fresher view than the cache after a write met a changed object.
    std::optional<kube::ObjectPtr> fresh;
    for (int attempt = 0; attempt < options_.max_attempts; ++attempt) {
      const AppliedStateCache::Lookup lookup = cache_.Get(gvr, key);
      const kube::ObjectPtr current = fresh ? *fresh : lookup.current;
      if (e.type == EventType::kUpsert && NewIncarnation(e.object, current)) {
        // Absent, or a copy of another source incarnation: written only when not older
        // than a recorded source deletion.
        std::optional<k8s::Tombstone> known = lookup.tombstone;
        if (!known || !k8s::TombstoneBlocks(*known, e.object)) {
          try {
            known = LoadTombstone(gvr, key);
          } catch (const NatsError& error) {
            logger_.Error("error reading tombstone", line.With({{"error", error.what()}}));
            stats_.RecordError(kComponent, gvr, "Tombstone");
            return Step::kNak;
          }
          if (known) cache_.RecordSourceDeleted(gvr, key, *known);
        }
        if (known && k8s::TombstoneBlocks(*known, e.object)) {
          line.Skip(logger_, "source-deleted");
          return Step::kAck;
        }
      }
      const k8s::SyncDecision decision =
          k8s::DecideSync(e.type == EventType::kDelete ? k8s::EventType::kDelete : k8s::EventType::kUpsert, e.object,
                          current.get(), context_.stamp().managed_by);
      Step step(Step::kAck);
      switch (decision.action) {
        case k8s::SyncAction::kSkip:
          if (source_deleted && (decision.reason == "absent" || decision.reason == "uid-mismatch") && !fresh) {
            // Another replica may be writing this incarnation right now (a create, or an
            // update of another incarnation's copy), its tombstone check done before ours
            // was saved, and our cache may not show that write yet: ask the destination
            // itself (the writer re-checks the tombstone afterwards, see
            // RemoveIfSourceDeleted; one of the two sees the other).
            fresh = Read(e.gvr, ns, name, key, line);
            if (!fresh) return Step::kNak;
            if (*fresh) continue;  // there: decide again on what it holds
          }
          if (e.type == EventType::kUpsert && current && d.message.delivery_count() > 1 &&
              (decision.reason == "duplicate" || decision.reason == "stale")) {
            // A redelivered upsert that was applied already: its re-check after the
            // create may not have happened (a crash, or NATS failed the read).
            return RemoveIfSourceDeleted(e, ns, name, key, current, line);
          }
          if (decision.reason == "unmanaged" || decision.reason == "managed-by-other") {
            logger_.Info("event skipped", line.With({{"reason", decision.reason}}));
            stats_.RecordError(kComponent, gvr, "Unmanaged");
          } else {
            line.Skip(logger_, decision.reason);
          }
          if (source_deleted && decision.reason == "absent") cache_.RecordSourceDeleted(gvr, key, tombstone);
          return Step::kAck;
        case k8s::SyncAction::kRetryLater:
          logger_.Debug("event skipped", line.With({{"reason", decision.reason}, {"retry", true}}));
          return Step::kNak;
        case k8s::SyncAction::kCreate:
          step = Create(e, ns, name, key, line);
          break;
        case k8s::SyncAction::kUpdate:
          step = Update(e, ns, key, decision, current, line);
          break;
        case k8s::SyncAction::kDelete:
          step = Delete(e, ns, name, key, decision, source_deleted ? &tombstone : nullptr, line);
          break;
      }
      if (!(step == Step::kDecideAgain)) return step;
      fresh = Read(e.gvr, ns, name, key, line);
    }
    return Step::kNak;
  }

  // The log fields of one message: the source identity, the destination object as it
  // becomes known.
  struct Line {
    std::string gvr;
    json source;

    json With(json extra) const {
      extra["sourceObject"] = source;
      return extra;
    }
    void Skip(const ro::log::Logger& logger, std::string_view reason) const {
      if (logger.Enabled(ro::log::Level::kDebug)) logger.Debug("event skipped", With({{"reason", reason}}));
    }
  };

  Step Create(Envelope& e, const std::string& ns, const std::string& name, const std::string& key, const Line& line) {
    json& meta = e.object["metadata"];
    meta.erase("resourceVersion");
    logger_.Info("creating object in cluster",
                 line.With({{"event", fields::Event("create")}, {"destinationObject", fields::ObjectRef(e.gvr, e.object)}}));
    try {
      const json created = destination_.Create(e.gvr, ns, e.object, WriteOptions());
      kube::ObjectPtr cached = Cached(e.gvr, created);
      cache_.RecordWritten(line.gvr, cached);
      Applied(e, line, "object created in cluster", "create", fields::ObjectRef(e.gvr, created));
      return RemoveIfSourceDeleted(e, ns, name, key, cached, line);
    } catch (const kube::ApiError& error) {
      if (error.reason() == kube::StatusReason::kAlreadyExists) return Step::kDecideAgain;
      // A create's NotFound names the missing namespace ("namespaces \"x\" not found");
      // anything else (e.g. the resource is not served) is a plain failure.
      if (error.reason() == kube::StatusReason::kNotFound && !ns.empty() &&
          error.status_message().find("namespaces \"") != std::string::npos) {
        return MissingNamespace(ns, line);
      }
      return Failed("error creating object in cluster", error, e, line);
    } catch (const kube::TransportError& error) {
      return Failed("error creating object in cluster", error, e, line);
    }
  }

  Step Update(Envelope& e, const std::string& ns, const std::string& key, const k8s::SyncDecision& decision,
              const kube::ObjectPtr& current, const Line& line) {
    const bool replaced_incarnation = NewIncarnation(e.object, current);
    e.object["metadata"]["resourceVersion"] = decision.resource_version;
    if (current) k8s::CarryOverAllocatedFields(e.gvr, e.object, *current);
    logger_.Info("updating object in cluster",
                 line.With({{"event", fields::Event("update")}, {"destinationObject", fields::ObjectRef(e.gvr, e.object)}}));
    try {
      const json updated = destination_.Update(e.gvr, ns, e.object, WriteOptions());
      kube::ObjectPtr cached = Cached(e.gvr, updated);
      cache_.RecordWritten(line.gvr, cached);
      Applied(e, line, "object updated in cluster", "update", fields::ObjectRef(e.gvr, updated));
      if (replaced_incarnation) return RemoveIfSourceDeleted(e, ns, std::string(fields::Name(updated)), key, cached, line);
      return Step::kAck;
    } catch (const kube::ApiError& error) {
      if (error.reason() == kube::StatusReason::kConflict) return Step::kDecideAgain;
      if (error.reason() == kube::StatusReason::kNotFound) {
        cache_.RecordAbsent(line.gvr, key);
        return Step::kDecideAgain;
      }
      return Failed("error updating object in cluster", error, e, line);
    } catch (const kube::TransportError& error) {
      return Failed("error updating object in cluster", error, e, line);
    }
  }

  // `tombstone`: set for a source deletion (kept in the cache once applied).
  Step Delete(Envelope& e, const std::string& ns, const std::string& name, const std::string& key,
              const k8s::SyncDecision& decision, const k8s::Tombstone* tombstone, const Line& line) {
    json destination = fields::ObjectRef(e.gvr, e.object);
    destination["uid"] = decision.uid;
    destination["resourceVersion"] = decision.resource_version;
    logger_.Info("deleting object in cluster", line.With({{"event", fields::Event("delete")}, {"destinationObject", destination}}));
    kube::DeleteOptions options;
    options.propagation_policy = "Background";
    options.precondition_uid = decision.uid;
    options.precondition_resource_version = decision.resource_version;
    try {
      destination_.Delete(e.gvr, ns, name, options);
    } catch (const kube::ApiError& error) {
      if (error.reason() == kube::StatusReason::kConflict) return Step::kDecideAgain;
      if (error.reason() != kube::StatusReason::kNotFound) return Failed("error deleting object in cluster", error, e, line);
      // Gone already: the wanted state.
    } catch (const kube::TransportError& error) {
      return Failed("error deleting object in cluster", error, e, line);
    }
    if (tombstone != nullptr) {
      cache_.RecordSourceDeleted(line.gvr, key, *tombstone);
    } else {
      cache_.RecordAbsent(line.gvr, key);
    }
    Applied(e, line, "object deleted in cluster", "delete", destination);
    return Step::kAck;
  }

  // True when writing `desired` puts a source incarnation at the destination that is not
  // the one `current` holds: a create, or an update of a copy of another source uid (the
  // name was deleted and created again in the source). Only then can a source deletion
  // of `desired`'s incarnation be missed: an update of the same incarnation is never
  // newer than that incarnation's deletion, which removes the copy afterwards.
  static bool NewIncarnation(const json& desired, const kube::ObjectPtr& current) {
    if (!current) return true;
    const std::optional<k8s::ControlStamp> applied = k8s::ReadStamp(*current);
    const std::optional<k8s::ControlStamp> wanted = k8s::ReadStamp(desired);
    return !applied || !wanted || applied->source_uid != wanted->source_uid;
  }

  // After a create or an update that replaced another incarnation (or a redelivered
  // upsert that found its state applied): the source
  // deletion of the object may have been handled meanwhile by another replica, which saved
  // its tombstone before looking at the destination and found nothing yet. Reading the
  // tombstone now closes that race (one of the two sees the other's write): an object the
  // tombstone blocks is deleted again, with preconditions. A failed read NAKs (the
  // redelivery checks again).
  Step RemoveIfSourceDeleted(Envelope& e, const std::string& ns, const std::string& name, const std::string& key,
                             kube::ObjectPtr object, const Line& line) {
    std::optional<k8s::Tombstone> tombstone;
    try {
      tombstone = LoadTombstone(line.gvr, key);
    } catch (const NatsError& error) {
      logger_.Error("error reading tombstone", line.With({{"error", error.what()}}));
      stats_.RecordError(kComponent, line.gvr, "Tombstone");
      return Step::kNak;
    }
    for (int attempt = 0; attempt < options_.max_attempts; ++attempt) {
      if (!tombstone || !object || !k8s::TombstoneBlocks(*tombstone, *object)) return Step::kAck;
      k8s::SyncDecision decision;
      decision.uid = (*object)["metadata"].value("uid", "");
      decision.resource_version = (*object)["metadata"].value("resourceVersion", "");
      const Step step = Delete(e, ns, name, key, decision, &*tombstone, line);
      if (!(step == Step::kDecideAgain)) return step;
      std::optional<kube::ObjectPtr> fresh = Read(e.gvr, ns, name, key, line);
      if (!fresh) return Step::kNak;
      object = *fresh;
    }
    return Step::kNak;
  }

  std::shared_ptr<KeyValueStore> Tombstones() {
    std::lock_guard lock(tombstones_mu_);
    return tombstones_;
  }

  // Stores `tombstone` in the pipeline's tombstone bucket unless a later deletion's is
  // there already (KeepsTombstone: deletions arrive out of order across redeliveries and
  // replicas; an earlier one must not replace it). Compare-and-set, so a concurrent
  // writer (another replica) is never overwritten either. False (logged, counted) when
  // NATS did not take it: the message is NAKed and retried.
  bool SaveTombstone(const std::string& gvr, const std::string& key, const k8s::Tombstone& tombstone,
                     const Line& line) {
    const std::string bucket_key = TombstoneKey(gvr, key);
    const json value = {{"uid", tombstone.source_uid}, {"resourceVersion", tombstone.source_resource_version}};
    try {
      constexpr int kAttempts = 5;  // each lost race means another replica wrote just now
      for (int attempt = 0; attempt < kAttempts; ++attempt) {
        const std::optional<KeyValueStore::Entry> stored = Tombstones()->GetEntry(bucket_key);
        if (stored) {
          const std::optional<k8s::Tombstone> known = ParseTombstone(stored->value);
          if (known && k8s::KeepsTombstone(*known, tombstone)) return true;
        }
        if (Tombstones()->Update(bucket_key, value.dump(), stored ? stored->revision : 0)) return true;
      }
      logger_.Error("error writing tombstone", line.With({{"error", "the key kept changing under concurrent writers"}}));
    } catch (const NatsError& error) {
      logger_.Error("error writing tombstone", line.With({{"error", error.what()}}));
    }
    stats_.RecordError(kComponent, gvr, "Tombstone");
    return false;
  }

  // A stored tombstone value, nullopt when unreadable.
  static std::optional<k8s::Tombstone> ParseTombstone(const std::string& value) {
    const json parsed = json::parse(value, nullptr, false);
    if (!parsed.is_object() || !parsed.value("uid", json()).is_string() ||
        !parsed.value("resourceVersion", json()).is_string()) {
      return std::nullopt;
    }
    return k8s::Tombstone{parsed["uid"].get<std::string>(), parsed["resourceVersion"].get<std::string>()};
  }

  // The durable tombstone of `key`, nullopt when there is none (or it is unreadable,
  // logged). Throws NatsError.
  std::optional<k8s::Tombstone> LoadTombstone(const std::string& gvr, const std::string& key) {
    const std::optional<std::string> value = Tombstones()->Get(TombstoneKey(gvr, key));
    if (!value) return std::nullopt;
    std::optional<k8s::Tombstone> tombstone = ParseTombstone(*value);
    if (!tombstone) logger_.Warn("ignoring unreadable tombstone", {{"resource", gvr}, {"key", key}});
    return tombstone;
  }

  // GET after a write met a changed object: the fresh state (nullptr when absent), or
  // nullopt when it could not be read (the cache's view is used again).
  std::optional<kube::ObjectPtr> Read(const kube::GroupVersionResource& gvr, const std::string& ns,
                                      const std::string& name, const std::string& key, const Line& line) {
    logger_.Debug("reading object from cluster", line.With({{"resource", line.gvr}, {"name", name}, {"namespace", ns}}));
    try {
      json object = destination_.Get(gvr, ns, name);
      logger_.Debug("object read from cluster", line.With({{"destinationObject", fields::ObjectRef(gvr, object)}}));
      ReduceForCache(gvr, object);
      auto cached = std::make_shared<const json>(std::move(object));
      // Only managed objects enter the cache: the informer (managed-by only) would never
      // tell it that an unmanaged one changed or went away.
      if (k8s::ReadStamp(*cached)) cache_.RecordWritten(line.gvr, cached);
      return cached;
    } catch (const kube::ApiError& error) {
      if (error.reason() == kube::StatusReason::kNotFound) {
        logger_.Debug("object not found in cluster", line.With({{"name", name}, {"namespace", ns}}));
        cache_.RecordAbsent(line.gvr, key);
        return kube::ObjectPtr();
      }
      logger_.Error("error getting object from cluster", line.With({{"error", error.what()}}));
    } catch (const kube::TransportError& error) {
      logger_.Error("error getting object from cluster", line.With({{"error", error.what()}}));
    }
    stats_.RecordError(kComponent, line.gvr, "Get");
    return std::nullopt;
  }

  Step MissingNamespace(const std::string& ns, const Line& line) {
    if (!context_.config().replication.force_namespace_creation) {
      logger_.Error("namespace not found in cluster", line.With({{"namespace", ns}}));
      stats_.RecordError(kComponent, line.gvr, "NamespaceNotFound");
      stats_.RecordFailure(kComponent, line.gvr, "NamespaceNotFound", ns + "/" + line.source.value("name", ""),
                           "namespace " + ns + " not found in the destination cluster and "
                           "replication.forceNamespaceCreation is false");
      return Step::kTerm;  // the next resync retries once the namespace exists
    }
    logger_.Info("creating namespace from cluster", {{"namespace", ns}});
    try {
      destination_.Create({"", "v1", "namespaces"}, "",
                          json{{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}},
                          WriteOptions());
      logger_.Info("namespace created in cluster", {{"namespace", ns}});
    } catch (const kube::ApiError& error) {
      if (error.reason() != kube::StatusReason::kAlreadyExists) {
        logger_.Error("error creating namespace in cluster", {{"namespace", ns}, {"error", error.what()}});
        stats_.RecordError(kComponent, "v1/namespaces", std::string(kube::ToString(error.reason())));
        if (kube::IsRetryable(error)) return Step(Step::kNak, error.retry_after());
        stats_.RecordFailure(kComponent, line.gvr, std::string(kube::ToString(error.reason())), ns,
                             std::string("error creating namespace in cluster: ") + error.what());
        return Step::kTerm;
      }
      logger_.Info("namespace already exists in cluster", {{"namespace", ns}});
    } catch (const kube::TransportError& error) {
      logger_.Error("error creating namespace in cluster", {{"namespace", ns}, {"error", error.what()}});
      stats_.RecordError(kComponent, "v1/namespaces", "Transport");
      return Step::kNak;
    }
    return Step::kDecideAgain;
  }

  // `destination`: the destinationObject log field.
  void Applied(const Envelope& e, const Line& line, std::string_view msg, std::string_view event, json destination) {
    logger_.Info(msg, line.With({{"event", fields::Event(event)}, {"destinationObject", std::move(destination)}}));
    stats_.ObserveLag(line.gvr, std::chrono::system_clock::now() - e.observed_at);
  }

  Step Failed(std::string_view msg, const std::exception& error, const Envelope& e, const Line& line) {
    logger_.Error(msg, line.With({{"error", error.what()}, {"destinationObject", fields::ObjectRef(e.gvr, e.object)}}));
    const std::string reason = ErrorReason(error);
    stats_.RecordError(kComponent, line.gvr, reason);
    if (!kube::IsRetryable(error)) {
      // Ended for good (the next resync tries again): counted, and an Event.
      stats_.RecordFailure(kComponent, line.gvr, reason, fields::Key(e.object), std::string(msg) + ": " + error.what());
      return Step::kTerm;
    }
    const auto* api = dynamic_cast<const kube::ApiError*>(&error);
    return Step(Step::kNak, api != nullptr ? api->retry_after() : std::chrono::seconds{0});
  }

  static kube::ObjectPtr Cached(const kube::GroupVersionResource& gvr, json object) {
    ReduceForCache(gvr, object);
    return std::make_shared<const json>(std::move(object));
  }

  static kube::WriteOptions WriteOptions() {
    kube::WriteOptions options;
    options.field_manager = std::string(kFieldManager);
    return options;
  }

  const PipelineContext& context_;
  kube::DynamicClient& destination_;
  NatsConnection& nats_;
  StatsRecorder& stats_;
  const SynchronizerOptions options_;
  const std::vector<kube::GroupVersionResource> gvrs_;
  AppliedStateCache cache_;
  const ro::log::Logger logger_;
  std::unique_ptr<LanedConsumer> consumer_;  // constant after construction

  std::vector<std::unique_ptr<kube::SharedInformer>> informers_;  // Run() only
  // The tombstone bucket, bound with the subscription (before any message is handled).
  std::mutex tombstones_mu_;
  std::shared_ptr<KeyValueStore> tombstones_;  // guarded by tombstones_mu_
  std::atomic<bool> synced_{false};
};

Synchronizer::Synchronizer(const PipelineContext& context, kube::DynamicClient& destination, NatsConnection& nats,
                           StatsRecorder& stats, SynchronizerOptions options)
    : impl_(std::make_unique<Impl>(context, destination, nats, stats, options)) {}

Synchronizer::~Synchronizer() = default;

void Synchronizer::Run(std::stop_token stop) { impl_->Run(stop); }

bool Synchronizer::Ready() const { return impl_->Ready(); }

}  // namespace ro::kubesync

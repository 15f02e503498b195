#include "synchronizer_stage.h"

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "log_fields.h"
#include "ro/common/log.h"
#include "ro/common/object_meta.h"
#include "ro/kube/errors.h"
#include "ro/plugins/kubernetes/allocated_fields.h"
#include "ro/plugins/kubernetes/namespace_metadata.h"
#include "ro/plugins/kubernetes/synchronizer_decision.h"

namespace ro::kubesync {
namespace {

using nlohmann::json;
namespace k8s = plugins::kubernetes;

constexpr std::string_view kComponent = "synchronizer";
// metadata.managedFields manager of our writes.
constexpr std::string_view kFieldManager = "kubesync";
// How often a namespace that is written to is recorded present (RecordNamespacePresent)
// when it was not seen missing: often enough that a namespace recorded missing by
// another replica or before a restart is cleared soon, rarely enough to cost nothing.
constexpr std::chrono::seconds kPresentRecordInterval{60};
const kube::GroupVersionResource kNamespaces{"", "v1", "namespaces"};

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
  static Step Term(std::string why) {
    Step step(kTerm);
    step.reason = std::move(why);
    return step;
  }
  // The stage runtime's form of this step.
  Outcome ToOutcome() const {
    switch (kind) {
      case kAck:
        return Outcome::Ack();
      case kTerm:
        return Outcome::Term(reason);
      case kNak:
      case kDecideAgain:
        break;
    }
    return Outcome::Nak(retry_after);
  }
  bool operator==(Kind k) const { return kind == k; }

  Kind kind;
  std::chrono::seconds retry_after{0};
  std::string reason;  // kTerm
};

}  // namespace

class SynchronizerStage::Impl {
 public:
  Impl(const PipelineContext& context, kube::DynamicClient& destination, AppliedStateCache& cache,
       TombstoneStore& tombstones, StatsRecorder& stats, SynchronizerOptions options,
       const kube::Store* created_namespaces)
      : context_(context),
        destination_(destination),
        cache_(cache),
        tombstones_(tombstones),
        stats_(stats),
        options_(options),
        created_namespaces_(created_namespaces),
        logger_(json{{"destinationCluster", context.DestinationClusterField()}}) {}

  Outcome Handle(Envelope& e, const DeliveryInfo& info) { return Apply(e, info).ToOutcome(); }

 private:
  Step Apply(Envelope& e, const DeliveryInfo& info) {
    const std::string gvr = e.gvr.ToString();
    const std::string name(common::Name(e.object));
    const std::string ns(common::Namespace(e.object));
    if (name.empty()) {
      logger_.Error("error decoding event", {{"error", "the object has no metadata.name"}, {"resource", gvr}});
      stats_.RecordError(kComponent, gvr, "Decode");
      stats_.RecordFailure(kComponent, gvr, "Decode", "", "the object has no metadata.name");
      return Step::Term("Decode");
    }
    const std::string key = ns.empty() ? name : ns + "/" + name;
    // Also when the object itself is in step: a change of only the source namespace
    // re-publishes its objects unchanged.
    if (e.type == EventType::kUpsert && !ns.empty()) KeepNamespaceInStep(ns, e.source_namespace);
    const bool source_deleted = e.type == EventType::kDelete && e.source_deleted;
    Line line{gvr, fields::SourceRefFromStamped(e.gvr, e.object)};
    stats_.RecordEvent(kComponent, gvr, ToString(e.type), ns);
    // A source deletion is made durable before anything else: whatever the destination
    // holds, no upsert that is not newer may re-create the object later, in this process,
    // another replica or after a restart.
    const k8s::Tombstone tombstone = source_deleted ? TombstoneOf(e.object) : k8s::Tombstone{};
    if (source_deleted && !SaveTombstone(gvr, key, tombstone, line)) return Step::kNak;

    // A fresher view than the cache after a write met a changed object.
    std::optional<DestinationStatePtr> fresh;
    for (int attempt = 0; attempt < options_.max_attempts; ++attempt) {
      const AppliedStateCache::Lookup lookup = cache_.Get(gvr, key);
      const DestinationStatePtr current = fresh ? *fresh : lookup.current;
      if (e.type == EventType::kUpsert && NewIncarnation(e.object, current)) {
        // Absent, or a copy of another source incarnation: written only when not older
        // than a recorded source deletion.
        std::optional<k8s::Tombstone> known = lookup.tombstone;
        if (!known || !k8s::TombstoneBlocks(*known, e.object)) {
          try {
            known = FindTombstone(gvr, key);
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
                          current.get(), context_.config().replication.adopt_existing);
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
          if (e.type == EventType::kUpsert && current && info.delivery_count > 1 &&
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
    if (logger_.Enabled(ro::log::Level::kDebug)) {
      json log_fields = {{"event", fields::Event("create")}, {"destinationObject", fields::ObjectRef(e.gvr, e.object)}};
      logger_.Debug("creating object in cluster", line.With(std::move(log_fields)));
    }
    try {
      const json created = destination_.Create(e.gvr, ns, e.object, WriteOptions(e.gvr));
      DestinationStatePtr cached = cache_.StateOf(e.gvr, created);
      cache_.RecordWritten(line.gvr, key, cached);
      Applied(e, line, "object created in cluster", "create", fields::ObjectRef(e.gvr, created));
      NamespaceWritten(ns);
      return RemoveIfSourceDeleted(e, ns, name, key, cached, line);
    } catch (const kube::ApiError& error) {
      if (error.reason() == kube::StatusReason::kAlreadyExists) return Step::kDecideAgain;
      // A create's NotFound names the missing namespace ("namespaces \"x\" not found");
      // anything else (e.g. the resource is not served) is a plain failure.
      if (error.reason() == kube::StatusReason::kNotFound && !ns.empty() &&
          error.status_message().find("namespaces \"") != std::string::npos) {
        return MissingNamespace(e, ns, line);
      }
      return Failed("error creating object in cluster", error, e, line);
    } catch (const kube::TransportError& error) {
      return Failed("error creating object in cluster", error, e, line);
    }
  }

  Step Update(Envelope& e, const std::string& ns, const std::string& key, const k8s::SyncDecision& decision,
              const DestinationStatePtr& current, const Line& line) {
    const bool replaced_incarnation = NewIncarnation(e.object, current);
    e.object["metadata"]["resourceVersion"] = decision.resource_version;
    if (current && current->allocated) k8s::CarryOverAllocatedFields(e.gvr, e.object, *current->allocated);
    if (decision.reason == "adopted" || logger_.Enabled(ro::log::Level::kDebug)) {
      json log_fields =
          line.With({{"event", fields::Event("update")}, {"destinationObject", fields::ObjectRef(e.gvr, e.object)}});
      if (decision.reason == "adopted") {
        // replication.adoptExisting: taking over an unmanaged object is worth an info line.
        log_fields["reason"] = "adopted";
        logger_.Info("updating object in cluster", log_fields);
      } else {
        logger_.Debug("updating object in cluster", log_fields);
      }
    }
    try {
      const json updated = destination_.Update(e.gvr, ns, e.object, WriteOptions(e.gvr));
      DestinationStatePtr cached = cache_.StateOf(e.gvr, updated);
      cache_.RecordWritten(line.gvr, key, cached);
      Applied(e, line, "object updated in cluster", "update", fields::ObjectRef(e.gvr, updated));
      NamespaceWritten(ns);
      if (replaced_incarnation) return RemoveIfSourceDeleted(e, ns, common::Name(updated), key, cached, line);
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
    if (logger_.Enabled(ro::log::Level::kDebug)) {
      logger_.Debug("deleting object in cluster",
                    line.With({{"event", fields::Event("delete")}, {"destinationObject", destination}}));
    }
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
  static bool NewIncarnation(const json& desired, const DestinationStatePtr& current) {
    if (!current || !current->stamped()) return true;
    const std::optional<k8s::ControlStamp> wanted = k8s::ReadStamp(desired);
    return !wanted || current->source_uid != wanted->source_uid;
  }

  // After a create, an update that replaced another incarnation, or a redelivered upsert
  // that found its state applied: the source deletion of the object may have been
  // handled meanwhile by another replica, which saved its tombstone before looking at the
  // destination and found nothing yet. Reading the tombstone now closes that race (one
  // of the two sees the other's write): an object the tombstone blocks is deleted again,
  // with preconditions. The read is the store's local copy once it is known to hold
  // every write made before now (one round trip shared by the lanes writing at the same
  // time), else the server. A failed read NAKs (the redelivery checks again).
  Step RemoveIfSourceDeleted(Envelope& e, const std::string& ns, const std::string& name, const std::string& key,
                             DestinationStatePtr object, const Line& line) {
    std::optional<k8s::Tombstone> tombstone;
    try {
      TombstoneStore::Known known = tombstones_.PeekCurrent(TombstoneKey(line.gvr, key));
      tombstone = known.known ? Parsed(line.gvr, key, std::move(known.value)) : LoadTombstone(line.gvr, key);
    } catch (const NatsError& error) {
      logger_.Error("error reading tombstone", line.With({{"error", error.what()}}));
      stats_.RecordError(kComponent, line.gvr, "Tombstone");
      return Step::kNak;
    }
    for (int attempt = 0; attempt < options_.max_attempts; ++attempt) {
      if (!tombstone || !object || !k8s::TombstoneBlocks(*tombstone, *object)) return Step::kAck;
      k8s::SyncDecision decision;
      decision.uid = object->uid;
      decision.resource_version = object->resource_version;
      const Step step = Delete(e, ns, name, key, decision, &*tombstone, line);
      if (!(step == Step::kDecideAgain)) return step;
      std::optional<DestinationStatePtr> fresh = Read(e.gvr, ns, name, key, line);
      if (!fresh) return Step::kNak;
      object = *fresh;
    }
    return Step::kNak;
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
        const std::optional<TombstoneStore::Entry> stored = tombstones_.GetEntry(bucket_key);
        if (stored) {
          const std::optional<k8s::Tombstone> known = ParseTombstone(stored->value);
          if (known && k8s::KeepsTombstone(*known, tombstone)) return true;
        }
        if (tombstones_.Update(bucket_key, value.dump(), stored ? stored->revision : 0)) return true;
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
    return Parsed(gvr, key, tombstones_.Get(TombstoneKey(gvr, key)));
  }

  // The check before a write: the store's local copy when it has a current one (no round
  // trip), else the server (LoadTombstone). A tombstone saved by another replica within
  // the copy's delay may be missed here; the check after the write
  // (RemoveIfSourceDeleted) reads the server and deletes the object again. Throws
  // NatsError.
  std::optional<k8s::Tombstone> FindTombstone(const std::string& gvr, const std::string& key) {
    TombstoneStore::Known known = tombstones_.Peek(TombstoneKey(gvr, key));
    if (!known.known) return LoadTombstone(gvr, key);
    return Parsed(gvr, key, std::move(known.value));
  }

  std::optional<k8s::Tombstone> Parsed(const std::string& gvr, const std::string& key,
                                       const std::optional<std::string>& value) const {
    if (!value) return std::nullopt;
    std::optional<k8s::Tombstone> tombstone = ParseTombstone(*value);
    if (!tombstone) logger_.Warn("ignoring unreadable tombstone", {{"resource", gvr}, {"key", key}});
    return tombstone;
  }

  // GET after a write met a changed object: the fresh state (nullptr when absent), or
  // nullopt when it could not be read (the cache's view is used again).
  std::optional<DestinationStatePtr> Read(const kube::GroupVersionResource& gvr, const std::string& ns,
                                      const std::string& name, const std::string& key, const Line& line) {
    logger_.Debug("reading object from cluster", line.With({{"resource", line.gvr}, {"name", name}, {"namespace", ns}}));
    try {
      json object = destination_.Get(gvr, ns, name);
      logger_.Debug("object read from cluster", line.With({{"destinationObject", fields::ObjectRef(gvr, object)}}));
      DestinationStatePtr cached = cache_.StateOf(gvr, object);
      // Only managed objects enter the cache: its reflector (managed-by only) would never
      // tell it that an unmanaged one changed or went away.
      if (cached->stamped()) cache_.RecordWritten(line.gvr, key, cached);
      return cached;
    } catch (const kube::ApiError& error) {
      if (error.reason() == kube::StatusReason::kNotFound) {
        logger_.Debug("object not found in cluster", line.With({{"name", name}, {"namespace", ns}}));
        cache_.RecordAbsent(line.gvr, key);
        return DestinationStatePtr();
      }
      logger_.Error("error getting object from cluster", line.With({{"error", error.what()}}));
    } catch (const kube::TransportError& error) {
      logger_.Error("error getting object from cluster", line.With({{"error", error.what()}}));
    }
    stats_.RecordError(kComponent, line.gvr, "Get");
    return std::nullopt;
  }

  Step MissingNamespace(const Envelope& e, const std::string& ns, const Line& line) {
    if (!context_.config().replication.force_namespace_creation) {
      logger_.Error("namespace not found in cluster", line.With({{"namespace", ns}}));
      {
        std::lock_guard lock(namespaces_mu_);
        missing_namespaces_.insert(ns);
      }
      stats_.RecordNamespaceMissing(ns);
      stats_.RecordError(kComponent, line.gvr, "NamespaceNotFound");
      stats_.RecordFailure(kComponent, line.gvr, "NamespaceNotFound", ns + "/" + line.source.value("name", ""),
                           "namespace " + ns + " not found in the destination cluster and "
                           "replication.forceNamespaceCreation is false");
      return Step::Term("NamespaceNotFound");  // the next resync retries once the namespace exists
    }
    logger_.Info("creating namespace from cluster", {{"namespace", ns}});
    try {
      destination_.Create(kNamespaces, "", k8s::CreatedNamespace(ns, e.source_namespace, context_.stamp()),
                          WriteOptions(kNamespaces));
      logger_.Info("namespace created in cluster", {{"namespace", ns}});
    } catch (const kube::ApiError& error) {
      if (error.reason() != kube::StatusReason::kAlreadyExists) {
        logger_.Error("error creating namespace in cluster", {{"namespace", ns}, {"error", error.what()}});
        stats_.RecordError(kComponent, "v1/namespaces", std::string(kube::ToString(error.reason())));
        if (const Outcome outcome = OutcomeOf(error); outcome.kind == Outcome::Kind::kNak) {
          return Step(Step::kNak, outcome.retry_after);
        }
        stats_.RecordFailure(kComponent, line.gvr, std::string(kube::ToString(error.reason())), ns,
                             std::string("error creating namespace in cluster: ") + error.what());
        return Step::Term(std::string(kube::ToString(error.reason())));
      }
      logger_.Info("namespace already exists in cluster", {{"namespace", ns}});
    } catch (const kube::TransportError& error) {
      logger_.Error("error creating namespace in cluster", {{"namespace", ns}, {"error", error.what()}});
      stats_.RecordError(kComponent, "v1/namespaces", "Transport");
      return Step::kNak;
    }
    return Step::kDecideAgain;
  }

  // After a write in `ns`: the namespace exists (recorded for the
  // DestinationNamespacesMissing condition when it was missing, else once a
  // kPresentRecordInterval).
  void NamespaceWritten(const std::string& ns) {
    if (ns.empty()) return;
    const auto now = std::chrono::steady_clock::now();
    bool record = true;
    {
      std::lock_guard lock(namespaces_mu_);
      auto [it, inserted] = present_recorded_.try_emplace(ns, now);
      if (!inserted) {
        record = missing_namespaces_.contains(ns) || now - it->second >= kPresentRecordInterval;
        if (record) it->second = now;
      }
      missing_namespaces_.erase(ns);
    }
    if (record) stats_.RecordNamespacePresent(ns);
  }

  // Patches a namespace this LiveSynchronization created when the source namespace's
  // labels or annotations (newer than what it records) differ. Best effort: a failure is
  // logged and counted, and the next event of the namespace (the events listener
  // re-publishes them all when the source namespace changes) tries again.
  void KeepNamespaceInStep(const std::string& ns, const json& metadata) {
    if (created_namespaces_ == nullptr || metadata.is_null()) return;
    const kube::ObjectPtr current = created_namespaces_->Get(ns);
    if (!current) return;
    const std::optional<json> patch = k8s::NamespaceMetadataPatch(*current, metadata, context_.stamp());
    if (!patch) return;
    logger_.Info("updating namespace in cluster", {{"namespace", ns}});
    try {
      destination_.Patch(kNamespaces, "", ns, kube::PatchType::kMergePatch, patch->dump(), "",
                         WriteOptions(kNamespaces));
      logger_.Info("namespace updated in cluster", {{"namespace", ns}});
      return;
    } catch (const kube::ApiError& error) {
      if (error.reason() == kube::StatusReason::kConflict) {
        // Changed since our informer saw it (another lane patched it): the next event decides again.
        logger_.Debug("namespace changed in cluster; not updated", {{"namespace", ns}});
        return;
      }
      logger_.Error("error updating namespace in cluster", {{"namespace", ns}, {"error", error.what()}});
      stats_.RecordError(kComponent, "v1/namespaces", std::string(kube::ToString(error.reason())));
    } catch (const kube::TransportError& error) {
      logger_.Error("error updating namespace in cluster", {{"namespace", ns}, {"error", error.what()}});
      stats_.RecordError(kComponent, "v1/namespaces", "Transport");
    }
  }

  // `destination`: the destinationObject log field.
  void Applied(const Envelope& e, const Line& line, std::string_view msg, std::string_view event, json destination) {
    logger_.Info(msg, line.With({{"event", fields::Event(event)}, {"destinationObject", std::move(destination)}}));
    stats_.ObserveLag(line.gvr, std::chrono::system_clock::now() - e.observed_at, common::Namespace(e.object));
  }

  Step Failed(std::string_view msg, const std::exception& error, const Envelope& e, const Line& line) {
    logger_.Error(msg, line.With({{"error", error.what()}, {"destinationObject", fields::ObjectRef(e.gvr, e.object)}}));
    const Outcome outcome = OutcomeOf(error);  // the one retry classification
    const std::string reason = FailureReason(error);
    stats_.RecordError(kComponent, line.gvr, reason, common::Namespace(e.object));
    if (outcome.kind == Outcome::Kind::kTerm) {
      // Ended for good (the next resync tries again): counted, and an Event.
      stats_.RecordFailure(kComponent, line.gvr, reason, fields::Key(e.object), std::string(msg) + ": " + error.what());
      return Step::Term(reason);
    }
    return Step(Step::kNak, outcome.retry_after);
  }

  // Our writes' options. Their answers are read for the cache's state of the object
  // (AppliedStateCache::StateOf) and the log line: its metadata, and for a kind with
  // allocated fields (services, persistentvolumeclaims) those too. So the others ask for
  // a metadata-only answer: the destination does not encode, and we do not decode, the
  // rest of the object we just sent.
  static kube::WriteOptions WriteOptions(const kube::GroupVersionResource& gvr) {
    kube::WriteOptions options;
    options.field_manager = std::string(kFieldManager);
    options.metadata_only = !k8s::HasAllocatedFields(gvr);
    return options;
  }

  const PipelineContext& context_;
  kube::DynamicClient& destination_;
  AppliedStateCache& cache_;
  TombstoneStore& tombstones_;
  StatsRecorder& stats_;
  const SynchronizerOptions options_;
  const kube::Store* const created_namespaces_;  // may be nullptr
  const ro::log::Logger logger_;

  std::mutex namespaces_mu_;
  std::set<std::string, std::less<>> missing_namespaces_;                          // guarded by namespaces_mu_
  std::map<std::string, std::chrono::steady_clock::time_point> present_recorded_;  // guarded by namespaces_mu_
};

SynchronizerStage::SynchronizerStage(const PipelineContext& context, kube::DynamicClient& destination,
                                     AppliedStateCache& cache, TombstoneStore& tombstones, StatsRecorder& stats,
                                     SynchronizerOptions options, const kube::Store* created_namespaces)
    : impl_(std::make_unique<Impl>(context, destination, cache, tombstones, stats, options, created_namespaces)) {}

SynchronizerStage::~SynchronizerStage() = default;

Outcome SynchronizerStage::Handle(Envelope& e, const DeliveryInfo& info, std::stop_token /*stop*/) {
  return impl_->Handle(e, info);
}

}  // namespace ro::kubesync

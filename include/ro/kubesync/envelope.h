// The Kubesync event envelope: one JetStream message of the events and apply subjects
// (docs/kubesync.md, "The event envelope"), and the names of one LiveSynchronization's
// wire resources (stream, subjects, Redis key prefix; docs/kubesync.md, "Data flow").
//
//   {"v":1,"type":"upsert","resync":false,"gvr":"apps/v1/deployments",
//    "observedAt":1700000000123456789,"object":{...},"pruned":false,"sourceDeleted":false,
//    "namespace":{"resourceVersion":"812","labels":{...},"annotations":{...}},
//    "configGeneration":4,"streamCreated":1700000000000000000}
//
// This header includes the full <nlohmann/json.hpp> (an exception to the json_fwd rule,
// like ro/kube/client.h): Envelope holds the Kubernetes object by value so that Decode can
// move it out of the parsed message and a component can transform it in place.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "ro/kube/gvr.h"

namespace ro::kubesync {

// "upsert": the object exists with this state (create or update at the destination).
// "delete": the object is gone (or must be absent); `object` is its last known state.
enum class EventType { kUpsert, kDelete };

// "upsert" / "delete".
std::string_view ToString(EventType type);

// One pipeline event. Plain value type; moving is cheap (the object is moved, not copied).
struct Envelope {
  // Wire format version written by Encode and the only one Decode accepts.
  static constexpr int kVersion = 1;

  EventType type = EventType::kUpsert;
  // True when produced by a periodic or post-410 full resync (additive reconciliation).
  bool resync = false;
  kube::GroupVersionResource gvr;
  // When the events listener saw the event (nanosecond precision on the wire: unix ns).
  // Replication lag = apply time - observed_at.
  std::chrono::system_clock::time_point observed_at{};
  // Full source object (upsert) or last known state (delete); on the apply subject the
  // destination form. Must be a JSON object.
  nlohmann::json object;
  // True for a delete produced by the reconciler (subtractive reconciliation).
  bool pruned = false;
  // Apply subject: true for the delete of a source object's deletion (a watch DELETED
  // event, or a prune of an object the source no longer has), false for filter and
  // "no longer selected" prune decisions (the object may be selected again later). The
  // synchronizer keeps a tombstone for it (docs/kubesync.md, "Tombstones").
  // Events subject: set by the reconciler on a prune of an object absent from the source.
  bool source_deleted = false;
  // Apply subject, upsert of a namespaced object with forceNamespaceCreation on: what the
  // processor knew of the source namespace (plugins::kubernetes::ReplicableNamespaceMetadata form), for the namespace
  // the synchronizer creates with forceNamespaceCreation and keeps in step with the
  // source. Null when unknown (cluster-scoped objects, deletes, the events subject);
  // then "namespace" is left out of the wire form.
  nlohmann::json source_namespace;
  // The LiveSynchronization metadata.generation of the configuration the message was
  // made under (the listener's or reconciler's on the events subject, the processor's
  // on the apply subject); 0 = unknown (then "configGeneration" is left out of the wire
  // form). A component NAKs a message newer than its own configuration, so that while
  // the Deployments roll after a spec change only the new pods handle the new pods'
  // messages (docs/kubesync.md, "Configuration changes"); an older one is handled under
  // the newer configuration.
  std::int64_t config_generation = 0;
  // The creation time (unix ns) of the pipeline's stream the events listener published
  // the event into, as the listener last read it (the stream's incarnation); copied by
  // the processor onto the apply subject; 0 = unknown (then "streamCreated" is left out
  // of the wire form; the reconciler's prunes). A nats-server that lost its store makes
  // a new stream: a message labelled with an older one than the stream a consumer is
  // bound to was made before the loss, and the listener's full re-publish and the
  // reconcile after it supersede it, so the stage runtime acks it unhandled
  // (docs/kubesync.md, "A stream created again").
  std::int64_t stream_created = 0;
};

// Malformed envelope: not JSON, not an object, a missing or mistyped field, or an unknown
// version. Never retryable: a consumer logs it, counts it and terminates the message.
// field() names the offending member ("v", "type", "gvr", "observedAt", "object",
// "resync", "pruned", "sourceDeleted", "namespace", "configGeneration", "streamCreated",
// "events"), empty when the message is not a JSON object at all.
class DecodeError : public std::runtime_error {
 public:
  DecodeError(std::string field, const std::string& message);
  const std::string& field() const noexcept { return field_; }

 private:
  std::string field_;
};

// Compact JSON in the member order shown above (no whitespace). Serializes `object`
// directly into the output (no copy of the object). Throws std::invalid_argument when
// `object` is not a JSON object or observed_at is before the Unix epoch, and
// nlohmann::json::type_error when the object holds invalid UTF-8 (cannot happen for
// objects parsed from the apiserver).
std::string Encode(const Envelope& envelope);

// Parses `data` once and moves the object out of the parse tree. Required members: "v"
// (must equal kVersion), "type", "gvr" (the GroupVersionResource::ToString form),
// "observedAt" (non-negative integer, unix ns), "object" (a JSON object). "resync",
// "pruned" and "sourceDeleted" default to false when absent, "configGeneration" and
// "streamCreated" (non-negative integers) to 0. Unknown members are ignored (forward compatible
// within one version). Throws DecodeError, also for a batch (field "events": read a
// message that may be one with DecodeMessage).
Envelope Decode(std::string_view data);

// ---- Batches: several events in one message (docs/kubesync.md, "Batches") -------------
//
// A list page's events (the events listener) and the outputs of one processor lane's
// batch travel as one JetStream message, so that the per-message costs (a publish
// confirmation, a delivery, an ack, each with its thread wake-ups at both ends) are paid
// once per batch instead of once per object. On the wire a batch is a version-1 envelope
// shell whose "configGeneration" is kBatchGeneration and whose "events" member holds the
// events, each a complete envelope:
//
//   {"v":1,"type":"upsert","gvr":"kubesync.astronetes.io/v1/batches","observedAt":0,
//    "object":{},"configGeneration":9223372036854775807,"events":[{...},{...}]}
//
// The shell keeps a rolling upgrade lossless: a processor or synchronizer of a release
// without batches decodes it as an event of a newer configuration and NAKs it (the
// Deployments' rolling rule, docs/kubesync.md "Configuration changes"), leaving it to the
// upgraded replicas; it never terminates it as undecodable. Each event inside carries
// its own configGeneration.

// The configGeneration of a batch shell (2^63 - 1): greater than any LiveSynchronization
// generation.
inline constexpr std::int64_t kBatchGeneration = std::numeric_limits<std::int64_t>::max();
// The largest batch a producer makes (bytes): far below NATS' default max_payload
// (1 MiB). A server configured below it refuses a batch, whose events are then published
// one by one (the components' DurablePublisher).
inline constexpr std::size_t kMaxBatchBytes = 256 * 1024;

// Builds the messages of a sequence of encoded events. Value type, not thread-safe.
class BatchBuilder {
 public:
  // `max_bytes`: a batch is closed before it would grow past this size.
  explicit BatchBuilder(std::size_t max_bytes = kMaxBatchBytes);

  // Adds one Encode()d event (not a batch). Returns false and adds nothing when the
  // message would then exceed max_bytes: Take() it first, then add again. An event
  // larger than max_bytes on its own is accepted into an empty builder (it goes alone).
  bool Add(std::string_view encoded);
  // Events added since the last Take().
  std::size_t events() const { return events_; }
  bool empty() const { return events_ == 0; }
  // The message of the events added since the last Take(), and an empty builder: one
  // event goes as it was added (the wire of a single event), several as a batch.
  // Precondition: !empty().
  std::string Take();

 private:
  std::size_t max_bytes_;
  std::size_t events_ = 0;
  std::string message_;  // the shell's head, then the events separated by ','
};

// One message of the events or apply subject, decoded: a single event, or the events of
// a batch in their order; `invalid` holds the batch's members that are not valid
// envelopes (each is reported and terminated alone; the others are handled).
struct DecodedMessage {
  std::vector<Envelope> events;
  std::vector<DecodeError> invalid;
};

// Parses `data` once: a single event (as Decode) or a batch (see above: "events" an
// array of envelope objects, none of them a batch, and "configGeneration" equal to
// kBatchGeneration). Throws DecodeError when the message as a whole is invalid (field
// "events" for a malformed batch).
DecodedMessage DecodeMessage(std::string_view data);

// Names of one LiveSynchronization's wire resources, all derived from its stable id.
// Value type; construction validates nothing beyond the id sanitizing.
class PipelineNames {
 public:
  // `<namespace>.<name>` with every character outside [A-Za-z0-9_-] replaced by '_'
  // (the id is one NATS subject token per part and a Redis key segment).
  PipelineNames(std::string_view live_sync_namespace, std::string_view live_sync_name);

  // "<namespace>.<name>" sanitized, e.g. "dr-config.pre".
  const std::string& id() const { return id_; }
  // JetStream stream "KS_<id>" with '.' replaced by '_' (stream names may not hold '.').
  std::string stream() const;
  // The stream's subjects: {events_subject(), apply_subject()}. Deliberately NOT the
  // wildcard "ks.<id>.>": JetStream stores every publish on a stream subject, so a
  // wildcard would also capture (and keep, unconsumed) the core-NATS control messages.
  std::vector<std::string> stream_subjects() const;
  // "ks.<id>.events": listener and reconciler publish, processor consumes.
  std::string events_subject() const;
  // "ks.<id>.apply": processor publishes, synchronizer consumes.
  std::string apply_subject() const;
  // "ks.<id>.control": core NATS only (NatsConnection::PublishCore / Subscribe), at most
  // once; carries "reconcile-now". Not part of the stream.
  std::string control_subject() const;
  // JetStream key-value bucket "KS_<id>_tombstones" ('.' replaced by '_'): the
  // synchronizer's tombstones of source deletions (docs/kubesync.md, "Tombstones").
  std::string tombstone_bucket() const;
  // Redis key prefix "ks:<id>" (RedisState's key_prefix).
  std::string redis_prefix() const;

 private:
  std::string id_;
};

}  // namespace ro::kubesync

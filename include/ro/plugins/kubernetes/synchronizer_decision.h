// The synchronizer's per-message decision as a pure function (docs/kubesync.md
// "Ordering and exactly-what-we-want semantics"): given the object from the apply subject
// and the destination's current state (from its metadata cache), create, update, delete
// or skip, with a reason for logs and metrics.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "ro/plugins/kubernetes/processor_decision.h"

namespace ro::plugins::kubernetes {

enum class SyncAction {
  kCreate,      // POST the desired object
  kUpdate,      // PUT it with metadata.resourceVersion = decision.resource_version
  kDelete,      // DELETE with preconditions {uid, resourceVersion} from the decision
  kSkip,        // ack without a write
  kRetryLater,  // NAK with a backoff delay: the destination is not ready for this write
};

// Reasons (static strings, usable as metric labels):
//   kCreate:     "absent"
//   kUpdate:     "adopted" (an unmanaged object taken over: SyncOptions::adopt_existing),
//                "newer" (event resourceVersion > recorded),
//                "transformation-changed" (same resourceVersion, other fingerprint),
//                "unrecorded-version" (managed, but the recorded resourceVersion is
//                missing or not a number: overwrite to repair it)
//   kDelete:     "source-deleted"
//   kSkip:       "duplicate" (same resourceVersion and fingerprint), "stale" (event older
//                than recorded), "unmanaged" (no managed-by label: never touched),
//                "managed-by-other" (another LiveSynchronization's object), "absent"
//                (delete of a missing object), "uid-mismatch" (delete for another source
//                object, e.g. one re-created with a new uid), "already-terminating",
//                "invalid-event" (the message lacks a numeric source resourceVersion, or
//                a delete lacks the source uid)
//   kRetryLater: "terminating" (upsert onto an object being deleted: retry once gone)
struct SyncDecision {
  SyncAction action = SyncAction::kSkip;
  std::string_view reason;
  // kUpdate: the destination's metadata.resourceVersion, to send for optimistic
  // concurrency (a Conflict means re-read and decide again).
  // kDelete: precondition resourceVersion ("" when the cache does not know it).
  std::string resource_version;
  // kDelete: precondition uid of the destination object ("" when unknown).
  std::string uid;
};

// What the synchronizer knows of one destination object (its applied-state cache keeps
// this, ~300 bytes, instead of the object's metadata as a JSON tree, ~3 KiB): identity,
// version, whether it is terminating, who manages it, and the control stamp it carries.
struct DestinationState {
  // The object's managed-by label (kManagedByLabel): absent, this LiveSynchronization's,
  // or another LiveSynchronization's.
  enum class Manager : std::uint8_t { kNone, kThis, kOther };

  std::string uid;               // metadata.uid
  std::string resource_version;  // metadata.resourceVersion (of the destination)
  bool terminating = false;      // metadata.deletionTimestamp is set
  Manager manager = Manager::kNone;
  // The control stamp (ReadStamp): "" unless manager != kNone.
  std::string source_uid;
  std::string source_resource_version;
  std::string transformation_fingerprint;
  // The fields the destination allocated (CopyAllocatedFields' form, e.g.
  // {"spec": {"clusterIP": ...}}), which an update carries over; nullptr when the GVR has
  // none. Set by the cache, not by DestinationStateOf.
  std::shared_ptr<const nlohmann::json> allocated;

  bool stamped() const { return manager != Manager::kNone; }
};

// The DestinationState of `object` (a destination object, whole or metadata only), its
// managed-by label compared with `managed_by` (this LiveSynchronization's ManagedById).
// Missing or mistyped fields read as "". Never throws.
DestinationState DestinationStateOf(const nlohmann::json& object, std::string_view managed_by);

// What the deletion of a source object leaves behind (docs/kubesync.md, "Tombstones"):
// the deleted object's source uid and the source resourceVersion of its deletion.
struct Tombstone {
  std::string source_uid;
  std::string source_resource_version;  // "" when unknown: only the uid blocks
};

// True when an upsert of `desired` (the stamped destination form) must not re-create the
// object whose source deletion `tombstone` records, i.e. it is not newer than that
// deletion: its source uid is the deleted one (an object never changes after its
// deletion), or its source resourceVersion is not greater than the deletion's (a state
// from before the deletion, e.g. of an older incarnation of the same name). A re-created
// source object (new uid, later resourceVersion) passes. Never throws; an event without a
// readable stamp is not blocked here (DecideSync skips it as "invalid-event").
bool TombstoneBlocks(const Tombstone& tombstone, const nlohmann::json& desired);
// The same rule for an object already at the destination: blocked when its stamp records
// the deleted incarnation or an older state. An unstamped object is not blocked.
bool TombstoneBlocks(const Tombstone& tombstone, const DestinationState& applied);

// True when `stored` must stay instead of being replaced by `incoming`: its deletion is
// not older (resourceVersion not smaller), so it already blocks every upsert `incoming`
// would (an upsert of `incoming`'s uid is older than that uid's deletion, hence older
// than `stored`'s). Deletions are handled out of order (redeliveries, replicas): an
// older one must never replace a later one, or the later incarnation's stale upserts
// would pass. False when either resourceVersion is unreadable (the incoming one wins).
bool KeepsTombstone(const Tombstone& stored, const Tombstone& incoming);

// `desired` is the object of the apply message: for kUpsert the stamped destination form,
// for kDelete the delete stub (both from DecideProcessing). `current` is what the cache
// knows of the destination object, nullptr when absent.
// Rules:
//   - An object without our managed-by label is never modified, except that an upsert
//     meeting an object without any managed-by label updates it ("adopted") when
//     `adopt_existing` (replication.adoptExisting). Another LiveSynchronization's object
//     is never modified, nor is an unmanaged one ever deleted.
//   - Upsert: applied when the event's source resourceVersion is greater than the
//     recorded one, or equal with a different transformation fingerprint.
//   - Delete: applied when managed by us, the recorded source uid equals the event's and
//     the recorded resourceVersion is not greater than the event's (an unreadable
//     recorded version does not block the delete).
// Never throws.
SyncDecision DecideSync(EventType type, const nlohmann::json& desired, const DestinationState* current,
                        bool adopt_existing = false);

// DecideSync on a destination object (or its metadata-only form; nullptr when absent):
// DestinationStateOf(*current, managed_by), then the rules above.
SyncDecision DecideSync(EventType type, const nlohmann::json& desired,
                        const nlohmann::json* current, std::string_view managed_by,
                        bool adopt_existing = false);

}  // namespace ro::plugins::kubernetes

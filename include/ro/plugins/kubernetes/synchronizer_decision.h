// The synchronizer's per-message decision as a pure function (docs/kubesync.md
// "Ordering and exactly-what-we-want semantics"): given the object from the apply subject
// and the destination's current state (from its metadata cache), create, update, delete
// or skip, with a reason for logs and metrics.
#pragma once

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

// True when `stored` must stay instead of being replaced by `incoming`: its deletion is
// not older (resourceVersion not smaller), so it already blocks every upsert `incoming`
// would (an upsert of `incoming`'s uid is older than that uid's deletion, hence older
// than `stored`'s). Deletions are handled out of order (redeliveries, replicas): an
// older one must never replace a later one, or the later incarnation's stale upserts
// would pass. False when either resourceVersion is unreadable (the incoming one wins).
bool KeepsTombstone(const Tombstone& stored, const Tombstone& incoming);

// `desired` is the object of the apply message: for kUpsert the stamped destination form,
// for kDelete the delete stub (both from DecideProcessing). `current` is the destination
// object or its metadata-only form (labels, annotations, uid, resourceVersion,
// deletionTimestamp), nullptr when absent. `managed_by` is this LiveSynchronization's
// ManagedById.
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
SyncDecision DecideSync(EventType type, const nlohmann::json& desired,
                        const nlohmann::json* current, std::string_view managed_by,
                        bool adopt_existing = false);

}  // namespace ro::plugins::kubernetes

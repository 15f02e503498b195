#include "ro/plugins/kubernetes/synchronizer_decision.h"

#include <nlohmann/json.hpp>

#include "ro/common/object_meta.h"
#include "ro/plugins/kubernetes/resource_version.h"

namespace ro::plugins::kubernetes {
namespace {

using nlohmann::json;

SyncDecision Decision(SyncAction action, std::string_view reason) {
  SyncDecision d;
  d.action = action;
  d.reason = reason;
  return d;
}

// <0, 0, >0 like CompareResourceVersions, or nullopt when `recorded` is unreadable.
// REQUIRES: IsValidResourceVersion(event).
std::optional<std::strong_ordering> CompareToRecorded(std::string_view event,
                                                      std::string_view recorded) {
  if (!IsValidResourceVersion(recorded)) return std::nullopt;
  return CompareResourceVersions(event, recorded);
}

// TombstoneBlocks of a stamp recording source uid `uid` at `resource_version`.
bool Blocks(const Tombstone& tombstone, std::string_view uid, std::string_view resource_version) {
  if (!tombstone.source_uid.empty() && uid == tombstone.source_uid) return true;
  if (!IsValidResourceVersion(resource_version) || !IsValidResourceVersion(tombstone.source_resource_version)) {
    return false;
  }
  return CompareResourceVersions(resource_version, tombstone.source_resource_version) <= 0;
}

}  // namespace

DestinationState DestinationStateOf(const json& object, std::string_view managed_by) {
  DestinationState state;
  const json& metadata = common::Member(object, "metadata");
  state.uid = common::StringMember(metadata, "uid");
  state.resource_version = common::StringMember(metadata, "resourceVersion");
  const json& deletion = common::Member(metadata, "deletionTimestamp");
  state.terminating = !deletion.is_null();
  std::optional<ControlStamp> stamp = ReadStamp(object);
  if (!stamp) return state;
  state.manager = stamp->managed_by == managed_by ? DestinationState::Manager::kThis
                                                  : DestinationState::Manager::kOther;
  state.source_uid = std::move(stamp->source_uid);
  state.source_resource_version = std::move(stamp->source_resource_version);
  state.transformation_fingerprint = std::move(stamp->transformation_fingerprint);
  return state;
}

bool TombstoneBlocks(const Tombstone& tombstone, const json& desired) {
  const std::optional<ControlStamp> wanted = ReadStamp(desired);
  return wanted && Blocks(tombstone, wanted->source_uid, wanted->source_resource_version);
}

bool TombstoneBlocks(const Tombstone& tombstone, const DestinationState& applied) {
  return applied.stamped() && Blocks(tombstone, applied.source_uid, applied.source_resource_version);
}

bool KeepsTombstone(const Tombstone& stored, const Tombstone& incoming) {
  if (!IsValidResourceVersion(stored.source_resource_version) ||
      !IsValidResourceVersion(incoming.source_resource_version)) {
    return false;
  }
  return CompareResourceVersions(stored.source_resource_version, incoming.source_resource_version) >= 0;
}

SyncDecision DecideSync(EventType type, const json& desired, const DestinationState* current,
                        bool adopt_existing) {
  using Manager = DestinationState::Manager;
  const std::optional<ControlStamp> wanted = ReadStamp(desired);
  if (!wanted || !IsValidResourceVersion(wanted->source_resource_version)) {
    return Decision(SyncAction::kSkip, "invalid-event");
  }
  if (type == EventType::kDelete && wanted->source_uid.empty()) {
    return Decision(SyncAction::kSkip, "invalid-event");
  }
  if (current == nullptr) {
    return type == EventType::kUpsert ? Decision(SyncAction::kCreate, "absent")
                                      : Decision(SyncAction::kSkip, "absent");
  }
  if (current->manager == Manager::kNone) {
    if (type != EventType::kUpsert || !adopt_existing) return Decision(SyncAction::kSkip, "unmanaged");
    if (current->terminating) return Decision(SyncAction::kRetryLater, "terminating");
    SyncDecision d = Decision(SyncAction::kUpdate, "adopted");
    d.resource_version = current->resource_version;
    return d;
  }
  if (current->manager != Manager::kThis) return Decision(SyncAction::kSkip, "managed-by-other");
  const std::optional<std::strong_ordering> order =
      CompareToRecorded(wanted->source_resource_version, current->source_resource_version);

  if (type == EventType::kUpsert) {
    if (current->terminating) return Decision(SyncAction::kRetryLater, "terminating");
    SyncDecision d;
    if (!order) {
      d = Decision(SyncAction::kUpdate, "unrecorded-version");
    } else if (*order > 0) {
      d = Decision(SyncAction::kUpdate, "newer");
    } else if (*order < 0) {
      return Decision(SyncAction::kSkip, "stale");
    } else if (wanted->transformation_fingerprint != current->transformation_fingerprint) {
      d = Decision(SyncAction::kUpdate, "transformation-changed");
    } else {
      return Decision(SyncAction::kSkip, "duplicate");
    }
    d.resource_version = current->resource_version;
    return d;
  }

  if (current->source_uid != wanted->source_uid) return Decision(SyncAction::kSkip, "uid-mismatch");
  if (order && *order < 0) return Decision(SyncAction::kSkip, "stale");
  if (current->terminating) return Decision(SyncAction::kSkip, "already-terminating");
  SyncDecision d = Decision(SyncAction::kDelete, "source-deleted");
  d.uid = current->uid;
  d.resource_version = current->resource_version;
  return d;
}

SyncDecision DecideSync(EventType type, const json& desired, const json* current, std::string_view managed_by,
                        bool adopt_existing) {
  if (current == nullptr) return DecideSync(type, desired, static_cast<const DestinationState*>(nullptr), adopt_existing);
  const DestinationState state = DestinationStateOf(*current, managed_by);
  return DecideSync(type, desired, &state, adopt_existing);
}

}  // namespace ro::plugins::kubernetes

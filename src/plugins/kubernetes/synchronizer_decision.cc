#include "ro/plugins/kubernetes/synchronizer_decision.h"

#include <nlohmann/json.hpp>

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

const json* Metadata(const json& object) {
  if (!object.is_object()) return nullptr;
  const auto it = object.find("metadata");
  return it != object.end() && it->is_object() ? &*it : nullptr;
}

std::string MetadataString(const json* metadata, std::string_view key) {
  if (metadata == nullptr) return "";
  const auto it = metadata->find(key);
  return it != metadata->end() && it->is_string() ? it->get<std::string>() : "";
}

bool Terminating(const json* metadata) {
  if (metadata == nullptr) return false;
  const auto it = metadata->find("deletionTimestamp");
  return it != metadata->end() && !it->is_null();
}

// <0, 0, >0 like CompareResourceVersions, or nullopt when `recorded` is unreadable.
// REQUIRES: IsValidResourceVersion(event).
std::optional<std::strong_ordering> CompareToRecorded(std::string_view event,
                                                      std::string_view recorded) {
  if (!IsValidResourceVersion(recorded)) return std::nullopt;
  return CompareResourceVersions(event, recorded);
}

}  // namespace

bool TombstoneBlocks(const Tombstone& tombstone, const json& desired) {
  const std::optional<ControlStamp> wanted = ReadStamp(desired);
  if (!wanted) return false;
  if (!tombstone.source_uid.empty() && wanted->source_uid == tombstone.source_uid) return true;
  if (!IsValidResourceVersion(wanted->source_resource_version) ||
      !IsValidResourceVersion(tombstone.source_resource_version)) {
    return false;
  }
  return CompareResourceVersions(wanted->source_resource_version, tombstone.source_resource_version) <= 0;
}

bool KeepsTombstone(const Tombstone& stored, const Tombstone& incoming) {
  if (!IsValidResourceVersion(stored.source_resource_version) ||
      !IsValidResourceVersion(incoming.source_resource_version)) {
    return false;
  }
  return CompareResourceVersions(stored.source_resource_version, incoming.source_resource_version) >= 0;
}

SyncDecision DecideSync(EventType type, const json& desired, const json* current,
                        std::string_view managed_by, bool adopt_existing) {
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
  const std::optional<ControlStamp> applied = ReadStamp(*current);
  const json* metadata = Metadata(*current);
  if (!applied) {
    if (type != EventType::kUpsert || !adopt_existing) return Decision(SyncAction::kSkip, "unmanaged");
    if (Terminating(metadata)) return Decision(SyncAction::kRetryLater, "terminating");
    SyncDecision d = Decision(SyncAction::kUpdate, "adopted");
    d.resource_version = MetadataString(metadata, "resourceVersion");
    return d;
  }
  if (applied->managed_by != managed_by) return Decision(SyncAction::kSkip, "managed-by-other");
  const std::optional<std::strong_ordering> order =
      CompareToRecorded(wanted->source_resource_version, applied->source_resource_version);

  if (type == EventType::kUpsert) {
    if (Terminating(metadata)) return Decision(SyncAction::kRetryLater, "terminating");
    SyncDecision d;
    if (!order) {
      d = Decision(SyncAction::kUpdate, "unrecorded-version");
    } else if (*order > 0) {
      d = Decision(SyncAction::kUpdate, "newer");
    } else if (*order < 0) {
      return Decision(SyncAction::kSkip, "stale");
    } else if (wanted->transformation_fingerprint != applied->transformation_fingerprint) {
      d = Decision(SyncAction::kUpdate, "transformation-changed");
    } else {
      return Decision(SyncAction::kSkip, "duplicate");
    }
    d.resource_version = MetadataString(metadata, "resourceVersion");
    return d;
  }

  if (applied->source_uid != wanted->source_uid) return Decision(SyncAction::kSkip, "uid-mismatch");
  if (order && *order < 0) return Decision(SyncAction::kSkip, "stale");
  if (Terminating(metadata)) return Decision(SyncAction::kSkip, "already-terminating");
  SyncDecision d = Decision(SyncAction::kDelete, "source-deleted");
  d.uid = MetadataString(metadata, "uid");
  d.resource_version = MetadataString(metadata, "resourceVersion");
  return d;
}

}  // namespace ro::plugins::kubernetes

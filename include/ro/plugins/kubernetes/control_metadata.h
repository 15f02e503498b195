// The control label and annotations kubesync puts on every destination object
// (docs/kubesync.md "Control annotations and labels"): who manages the object and which
// source object/version it was written from. They are the truth for "what is applied".
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace ro::plugins::kubernetes {

inline constexpr std::string_view kManagedByLabel = "kubesync.astronetes.io/managed-by";
inline constexpr std::string_view kLiveSynchronizationAnnotation =
    "kubesync.astronetes.io/live-synchronization";
inline constexpr std::string_view kSourceClusterAnnotation = "kubesync.astronetes.io/source-cluster";
inline constexpr std::string_view kSourceUidAnnotation = "kubesync.astronetes.io/source-uid";
inline constexpr std::string_view kSourceResourceVersionAnnotation =
    "kubesync.astronetes.io/source-resource-version";
// ResourceRule::transformation_fingerprint of the entry that produced the object; absent
// when the entry has no transformation.
inline constexpr std::string_view kTransformationAnnotation =
    "kubesync.astronetes.io/transformation";

// The LiveSynchronization's stable id `<namespace>.<name>` (docs/kubesync.md "Data
// flow"): each part with characters outside [A-Za-z0-9_-] replaced by '_', joined by
// '.'. Used in NATS subjects (ks.<id>.events) and Redis keys.
std::string LiveSyncId(std::string_view ls_namespace, std::string_view ls_name);

// The managed-by label value: LiveSyncId when it is a valid label value (<= 63
// characters, alphanumeric at both ends), else a stable hashed form of <= 63 characters:
// up to 46 characters of the id, '-', and 16 hex digits of SHA-256("<ns>/<name>").
std::string ManagedById(std::string_view ls_namespace, std::string_view ls_name);

// What a LiveSynchronization stamps on every object it writes. Build with
// MakeStampInfo; constant for the LiveSynchronization's lifetime.
struct StampInfo {
  std::string live_sync_namespace;
  std::string live_sync_name;
  std::string managed_by;            // ManagedById(ns, name)
  std::string live_synchronization;  // "<ns>/<name>"
  std::string source_cluster;        // "<cluster ns>/<cluster name>"
};

// The source KubernetesCluster lives in the LiveSynchronization's namespace (manual 6.2.6
// sourceName), so `source_cluster_namespace` is normally `ls_namespace`.
StampInfo MakeStampInfo(std::string_view ls_namespace, std::string_view ls_name,
                        std::string_view source_cluster_namespace,
                        std::string_view source_cluster_name);

// The source object version an object was written from.
struct SourceVersion {
  std::string_view uid;
  std::string_view resource_version;
  // ResourceRule::transformation_fingerprint; "" = no transformation (no annotation).
  std::string_view transformation_fingerprint;
};

// Adds the managed-by label and the control annotations to `object` (creating
// metadata.labels/annotations when absent; overwriting earlier values).
// REQUIRES: object is a JSON object.
void Stamp(nlohmann::json& object, const StampInfo& info, const SourceVersion& source);

// The control metadata read back from an object.
struct ControlStamp {
  std::string managed_by;
  std::string live_synchronization;
  std::string source_cluster;
  std::string source_uid;
  std::string source_resource_version;
  std::string transformation_fingerprint;
};

// The stamp of `object`, or nullopt when it has no managed-by label (not written by any
// LiveSynchronization). Annotations that are missing or not strings read as "".
std::optional<ControlStamp> ReadStamp(const nlohmann::json& object);

// The last known source identity of a stamped destination object, as the object a delete
// event carries (docs/kubesync.md, reconciler): apiVersion, kind, metadata.name,
// metadata.namespace, and metadata.uid / metadata.resourceVersion set to the recorded
// source uid and resourceVersion. Used by the reconciler to publish pruning deletes.
nlohmann::json SourceStubFromStamped(const nlohmann::json& destination_object);

// The same stub from its parts (metadata.namespace omitted when `ns` is "").
nlohmann::json SourceStub(std::string_view api_version, std::string_view kind, std::string_view ns,
                          std::string_view name, std::string_view uid, std::string_view resource_version);

}  // namespace ro::plugins::kubernetes

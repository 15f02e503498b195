// The destination namespaces kubesync creates (replication.forceNamespaceCreation,
// docs/livesynchronization.md "Namespaces in the destination"): what of the source
// namespace they carry, how they are marked, and how they are kept in step with it.
// Pure functions of JSON values; no I/O.
#pragma once

#include <optional>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "ro/plugins/kubernetes/control_metadata.h"

namespace ro::plugins::kubernetes {

// Label of a namespace kubesync created, value StampInfo::managed_by. Deliberately not
// kManagedByLabel: a created namespace is not a replicated object, so no prune (which
// acts on kManagedByLabel objects only) ever deletes it, nor the objects in it that the
// pipeline does not manage. kSourceResourceVersionAnnotation on it records the source
// namespace's resourceVersion its labels and annotations were copied from.
inline constexpr std::string_view kNamespaceCreatedByLabel = "kubesync.astronetes.io/namespace-created-by";

// What a replicated object's envelope carries of its source namespace:
//   {"resourceVersion": "<rv>", "labels": {...}, "annotations": {...}}
// from a Namespace object (or one reduced to its metadata). Labels and annotations that
// belong to the source cluster rather than to the application are left out:
// kubectl's last-applied-configuration, OpenShift's per-cluster UID/MCS ranges and
// requester (openshift.io/sa.scc.*, openshift.io/requester), and every kubesync control
// key (kubesync.astronetes.io/*). Empty maps are kept as {}. Never throws for a
// malformed namespace: missing or non-object members read as empty.
nlohmann::json ReplicableNamespaceMetadata(const nlohmann::json& source_namespace);

// The Namespace object to create in the destination for `name` from `metadata` (the
// ReplicableNamespaceMetadata form; null = nothing known of the source namespace): its
// labels and annotations, plus kNamespaceCreatedByLabel = info.managed_by and
// kSourceResourceVersionAnnotation when the source resourceVersion is known.
nlohmann::json CreatedNamespace(std::string_view name, const nlohmann::json& metadata, const StampInfo& info);

// The JSON merge patch (RFC 7386) that brings a namespace kubesync created (its current
// destination state `destination`) in step with the source's `metadata`, or nullopt
// when nothing is to be done: `destination` was not created by this LiveSynchronization
// (kNamespaceCreatedByLabel != info.managed_by: a namespace the user made is theirs),
// `metadata` is null or not newer than the recorded source resourceVersion (a redelivered
// older event never turns labels back), or labels and annotations already match. Keys the
// source no longer has are removed (null in the patch); kubesync's own keys and the
// destination's cluster-specific keys (those ReplicableNamespaceMetadata leaves out) are
// kept. The patch carries metadata.resourceVersion of `destination` as a precondition.
std::optional<nlohmann::json> NamespaceMetadataPatch(const nlohmann::json& destination, const nlohmann::json& metadata,
                                                     const StampInfo& info);

}  // namespace ro::plugins::kubernetes

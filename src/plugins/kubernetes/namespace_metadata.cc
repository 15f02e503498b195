#include "ro/plugins/kubernetes/namespace_metadata.h"

#include <array>
#include <string>

#include <nlohmann/json.hpp>

#include "ro/common/object_meta.h"
#include "ro/plugins/kubernetes/resource_version.h"

namespace ro::plugins::kubernetes {
namespace {

using nlohmann::json;

// Keys that describe the source cluster, not the application (ReplicableNamespaceMetadata).
constexpr std::array<std::string_view, 3> kClusterSpecificKeys = {
    "kubectl.kubernetes.io/last-applied-configuration",
    "kubernetes.io/metadata.name",  // set by the apiserver itself (1.21+)
    "openshift.io/requester",
};
constexpr std::array<std::string_view, 2> kClusterSpecificPrefixes = {
    "openshift.io/sa.scc.",    // the project's UID, supplemental group and MCS ranges
    "kubesync.astronetes.io/",  // our own control keys
};

bool ClusterSpecific(std::string_view key) {
  for (std::string_view k : kClusterSpecificKeys) {
    if (key == k) return true;
  }
  for (std::string_view prefix : kClusterSpecificPrefixes) {
    if (key.starts_with(prefix)) return true;
  }
  return false;
}

// The string entries of `map` that are not cluster-specific.
json Replicable(const json& map) {
  json out = json::object();
  if (!map.is_object()) return out;
  for (const auto& [key, value] : map.items()) {
    if (value.is_string() && !ClusterSpecific(key)) out[key] = value;
  }
  return out;
}

// The merge patch of one map: what `wanted` sets differently, null for the replicable
// keys of `current` that `wanted` lacks.
json MapPatch(const json& current, const json& wanted) {
  json patch = json::object();
  for (const auto& [key, value] : wanted.items()) {
    if (!current.is_object() || !current.contains(key) || current[key] != value) patch[key] = value;
  }
  if (current.is_object()) {
    for (const auto& [key, value] : current.items()) {
      if (!ClusterSpecific(key) && !wanted.contains(key)) patch[key] = nullptr;
    }
  }
  return patch;
}

}  // namespace

json ReplicableNamespaceMetadata(const json& source_namespace) {
  return json{{"resourceVersion", std::string(common::ResourceVersion(source_namespace))},
              {"labels", Replicable(common::Labels(source_namespace))},
              {"annotations", Replicable(common::Annotations(source_namespace))}};
}

json CreatedNamespace(std::string_view name, const json& metadata, const StampInfo& info) {
  json labels = Replicable(common::Member(metadata, "labels"));
  json annotations = Replicable(common::Member(metadata, "annotations"));
  labels[std::string(kNamespaceCreatedByLabel)] = info.managed_by;
  const json& rv = common::Member(metadata, "resourceVersion");
  if (rv.is_string() && IsValidResourceVersion(rv.get_ref<const std::string&>())) {
    annotations[std::string(kSourceResourceVersionAnnotation)] = rv;
  }
  annotations[std::string(kLiveSynchronizationAnnotation)] = info.live_synchronization;
  annotations[std::string(kSourceClusterAnnotation)] = info.source_cluster;
  return json{{"apiVersion", "v1"},
              {"kind", "Namespace"},
              {"metadata", {{"name", name}, {"labels", std::move(labels)}, {"annotations", std::move(annotations)}}}};
}

std::optional<json> NamespaceMetadataPatch(const json& destination, const json& metadata, const StampInfo& info) {
  if (!metadata.is_object() || common::Label(destination, kNamespaceCreatedByLabel) != info.managed_by) {
    return std::nullopt;
  }
  const json& source_rv = common::Member(metadata, "resourceVersion");
  if (!source_rv.is_string() || !IsValidResourceVersion(source_rv.get_ref<const std::string&>())) return std::nullopt;
  const json& annotations = common::Annotations(destination);
  const std::string& recorded = common::Annotation(destination, kSourceResourceVersionAnnotation);
  if (IsValidResourceVersion(recorded) && CompareResourceVersions(source_rv.get_ref<const std::string&>(), recorded) <= 0) {
    return std::nullopt;
  }
  json labels = MapPatch(common::Labels(destination), Replicable(common::Member(metadata, "labels")));
  json annotation_patch = MapPatch(annotations, Replicable(common::Member(metadata, "annotations")));
  if (labels.empty() && annotation_patch.empty()) return std::nullopt;
  annotation_patch[std::string(kSourceResourceVersionAnnotation)] = source_rv;
  json meta = {{"annotations", std::move(annotation_patch)}};
  if (!labels.empty()) meta["labels"] = std::move(labels);
  const std::string& destination_rv = common::ResourceVersion(destination);
  if (!destination_rv.empty()) meta["resourceVersion"] = destination_rv;
  return json{{"metadata", std::move(meta)}};
}

}  // namespace ro::plugins::kubernetes

// Source namespaces as the listener's and the processor's namespace informers keep them
// (private to src/kubesync/components): labels for the filters' namespaceSelector, and
// what the destination namespace of forceNamespaceCreation carries.
#pragma once

#include <nlohmann/json.hpp>

namespace ro::kubesync {

// Reduces a Namespace to apiVersion, kind and metadata.{name, resourceVersion, labels,
// annotations} (a ReflectorOptions::transform), the annotations without those that
// belong to the source cluster (plugins::kubernetes::ReplicableNamespaceMetadata: e.g.
// kubectl's last-applied-configuration, often the largest member): a cache of thousands
// of namespaces stays small.
void KeepNamespaceMetadata(nlohmann::json& ns);

}  // namespace ro::kubesync

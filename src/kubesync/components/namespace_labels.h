// Namespace labels for the filters' namespaceSelector (private to
// src/kubesync/components): the reduced namespace objects the listener's and the
// processor's namespace informers keep.
#pragma once

#include <nlohmann/json.hpp>

namespace ro::kubesync {

// Reduces a Namespace to apiVersion, kind and metadata.{name, resourceVersion, labels}
// (a ReflectorOptions::transform): only labels matter, and a cache of thousands of
// namespaces stays small.
void KeepNamespaceLabels(nlohmann::json& ns);

}  // namespace ro::kubesync

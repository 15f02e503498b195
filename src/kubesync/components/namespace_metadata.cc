#include "namespace_metadata.h"

#include <utility>

#include "ro/common/object_meta.h"
#include "ro/plugins/kubernetes/namespace_metadata.h"

namespace ro::kubesync {

using nlohmann::json;

void KeepNamespaceMetadata(json& ns) {
  json reduced = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", json::object()}};
  if (ns.is_object() && ns.contains("metadata") && ns["metadata"].is_object()) {
    json annotations = std::move(plugins::kubernetes::ReplicableNamespaceMetadata(ns)["annotations"]);
    json& meta = ns["metadata"];
    for (const char* key : {"name", "resourceVersion", "labels"}) {
      if (meta.contains(key)) reduced["metadata"][key] = std::move(meta[key]);
    }
    if (!annotations.empty()) reduced["metadata"]["annotations"] = std::move(annotations);
  }
  ns = std::move(reduced);
}

}  // namespace ro::kubesync

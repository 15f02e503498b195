#include "namespace_labels.h"

#include <utility>

#include "ro/common/object_meta.h"

namespace ro::kubesync {

using nlohmann::json;

void KeepNamespaceLabels(json& ns) {
  json reduced = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", json::object()}};
  if (ns.is_object() && ns.contains("metadata") && ns["metadata"].is_object()) {
    json& meta = ns["metadata"];
    for (const char* key : {"name", "resourceVersion", "labels"}) {
      if (meta.contains(key)) reduced["metadata"][key] = std::move(meta[key]);
    }
  }
  ns = std::move(reduced);
}

}  // namespace ro::kubesync

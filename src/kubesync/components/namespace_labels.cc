#include "namespace_labels.h"

#include <utility>

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

const json& LabelsOf(const json& object) {
  static const json kNone;
  if (!object.is_object() || !object.contains("metadata")) return kNone;
  const json& meta = object["metadata"];
  if (!meta.is_object() || !meta.contains("labels")) return kNone;
  return meta["labels"];
}

}  // namespace ro::kubesync

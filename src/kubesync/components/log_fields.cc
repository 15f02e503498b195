#include "log_fields.h"

#include "ro/plugins/kubernetes/control_metadata.h"

namespace ro::kubesync::fields {
namespace {

using nlohmann::json;

const json& Child(const json& object, std::string_view key) {
  static const json kNull;
  if (!object.is_object()) return kNull;
  const auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

std::string_view StringOf(const json& value) {
  return value.is_string() ? std::string_view(value.get_ref<const std::string&>()) : std::string_view();
}

}  // namespace

std::string_view Name(const json& object) { return StringOf(Child(Child(object, "metadata"), "name")); }
std::string_view Namespace(const json& object) { return StringOf(Child(Child(object, "metadata"), "namespace")); }

json ObjectRef(const kube::GroupVersionResource& gvr, const json& object) {
  const json& metadata = Child(object, "metadata");
  return {{"apiGroup", gvr.group},
          {"apiVersion", gvr.version},
          {"name", StringOf(Child(metadata, "name"))},
          {"namespace", StringOf(Child(metadata, "namespace"))},
          {"resource", gvr.resource},
          {"resourceVersion", StringOf(Child(metadata, "resourceVersion"))},
          {"uid", StringOf(Child(metadata, "uid"))}};
}

json SourceRefFromStamped(const kube::GroupVersionResource& gvr, const json& object) {
  const json& metadata = Child(object, "metadata");
  const json& annotations = Child(metadata, "annotations");
  return {{"apiGroup", gvr.group},
          {"apiVersion", gvr.version},
          {"name", StringOf(Child(metadata, "name"))},
          {"namespace", StringOf(Child(metadata, "namespace"))},
          {"resource", gvr.resource},
          {"resourceVersion",
           StringOf(Child(annotations, plugins::kubernetes::kSourceResourceVersionAnnotation))},
          {"uid", StringOf(Child(annotations, plugins::kubernetes::kSourceUidAnnotation))}};
}

json LastUpdate(const json& object) {
  const json& annotations = Child(Child(object, "metadata"), "annotations");
  const std::string_view time = StringOf(Child(annotations, "audit.astronetes.io/last-update-time"));
  const std::string_view uid = StringOf(Child(annotations, "audit.astronetes.io/last-update-user-uid"));
  const std::string_view user = StringOf(Child(annotations, "audit.astronetes.io/last-update-username"));
  if (time.empty() && uid.empty() && user.empty()) return nullptr;
  return {{"time", time}, {"userUID", uid}, {"username", user}};
}

json Event(std::string_view type) { return {{"type", type}}; }

json Identity(const ObjectIdentity& identity) {
  return {{"name", identity.name},
          {"namespace", identity.ns},
          {"resourceVersion", identity.resource_version},
          {"uid", identity.uid}};
}

std::string Key(const nlohmann::json& object) {
  const std::string_view ns = Namespace(object);
  std::string key(ns);
  if (!key.empty()) key += '/';
  key += Name(object);
  return key;
}

}  // namespace ro::kubesync::fields

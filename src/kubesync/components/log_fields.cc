#include "log_fields.h"

#include "ro/common/audit_annotations.h"
#include "ro/common/object_meta.h"
#include "ro/plugins/kubernetes/control_metadata.h"

namespace ro::kubesync::fields {
namespace {

using nlohmann::json;

}  // namespace

json ObjectRef(const kube::GroupVersionResource& gvr, const json& object) {
  const json& metadata = common::Member(object, "metadata");
  return {{"apiGroup", gvr.group},
          {"apiVersion", gvr.version},
          {"name", common::StringMember(metadata, "name")},
          {"namespace", common::StringMember(metadata, "namespace")},
          {"resource", gvr.resource},
          {"resourceVersion", common::StringMember(metadata, "resourceVersion")},
          {"uid", common::StringMember(metadata, "uid")}};
}

json SourceRefFromStamped(const kube::GroupVersionResource& gvr, const json& object) {
  const json& metadata = common::Member(object, "metadata");
  const json& annotations = common::Member(metadata, "annotations");
  return {{"apiGroup", gvr.group},
          {"apiVersion", gvr.version},
          {"name", common::StringMember(metadata, "name")},
          {"namespace", common::StringMember(metadata, "namespace")},
          {"resource", gvr.resource},
          {"resourceVersion",
           common::StringMember(annotations, plugins::kubernetes::kSourceResourceVersionAnnotation)},
          {"uid", common::StringMember(annotations, plugins::kubernetes::kSourceUidAnnotation)}};
}

json LastUpdate(const json& object) {
  const json& annotations = common::Member(common::Member(object, "metadata"), "annotations");
  const std::string_view time = common::StringMember(annotations, common::kAuditLastUpdateTimeAnnotation);
  const std::string_view uid = common::StringMember(annotations, common::kAuditLastUpdateUserUidAnnotation);
  const std::string_view user = common::StringMember(annotations, common::kAuditLastUpdateUsernameAnnotation);
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
  const std::string_view ns = common::Namespace(object);
  std::string key(ns);
  if (!key.empty()) key += '/';
  key += common::Name(object);
  return key;
}

}  // namespace ro::kubesync::fields

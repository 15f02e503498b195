#include "ro/plugins/kubernetes/control_metadata.h"

#include <nlohmann/json.hpp>

#include "ro/common/digest.h"
#include "ro/common/object_meta.h"
#include "ro/kube/label_selector.h"

namespace ro::plugins::kubernetes {
namespace {

using nlohmann::json;

// Kubernetes label values are at most 63 characters (k8s.io/apimachinery validation).
constexpr std::size_t kMaxLabelValue = 63;
// Hashed managed-by form: <prefix of the id>-<hash>, 46 + 1 + 16 = 63 characters.
constexpr std::size_t kHashHexDigits = 16;
constexpr std::size_t kHashedPrefixMax = kMaxLabelValue - 1 - kHashHexDigits;

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

void AppendSanitized(std::string* out, std::string_view part) {
  for (const char c : part) *out += (IsAlnum(c) || c == '-' || c == '_') ? c : '_';
}

// object[key] as an object, created (or reset from a non-object) when needed.
json& ObjectMember(json& object, std::string_view key) {
  json& member = object[std::string(key)];
  if (!member.is_object()) member = json::object();
  return member;
}

}  // namespace

std::string LiveSyncId(std::string_view ls_namespace, std::string_view ls_name) {
  std::string id;
  id.reserve(ls_namespace.size() + 1 + ls_name.size());
  AppendSanitized(&id, ls_namespace);
  id += '.';
  AppendSanitized(&id, ls_name);
  return id;
}

std::string ManagedById(std::string_view ls_namespace, std::string_view ls_name) {
  std::string id = LiveSyncId(ls_namespace, ls_name);
  if (id.size() <= kMaxLabelValue && kube::ValidateLabelValue(id).empty()) return id;
  std::string key(ls_namespace);
  key += '/';
  key += ls_name;
  std::string prefix = id.substr(0, kHashedPrefixMax);
  while (!prefix.empty() && !IsAlnum(prefix.back())) prefix.pop_back();
  while (!prefix.empty() && !IsAlnum(prefix.front())) prefix.erase(0, 1);
  const std::string hash = common::Sha256Hex(key, kHashHexDigits);
  return prefix.empty() ? hash : prefix + "-" + hash;
}

StampInfo MakeStampInfo(std::string_view ls_namespace, std::string_view ls_name,
                        std::string_view source_cluster_namespace,
                        std::string_view source_cluster_name) {
  StampInfo info;
  info.live_sync_namespace = std::string(ls_namespace);
  info.live_sync_name = std::string(ls_name);
  info.managed_by = ManagedById(ls_namespace, ls_name);
  info.live_synchronization = info.live_sync_namespace + "/" + info.live_sync_name;
  info.source_cluster =
      std::string(source_cluster_namespace) + "/" + std::string(source_cluster_name);
  return info;
}

void Stamp(json& object, const StampInfo& info, const SourceVersion& source) {
  json& metadata = ObjectMember(object, "metadata");
  ObjectMember(metadata, "labels")[std::string(kManagedByLabel)] = info.managed_by;
  json& annotations = ObjectMember(metadata, "annotations");
  annotations[std::string(kLiveSynchronizationAnnotation)] = info.live_synchronization;
  annotations[std::string(kSourceClusterAnnotation)] = info.source_cluster;
  annotations[std::string(kSourceUidAnnotation)] = source.uid;
  annotations[std::string(kSourceResourceVersionAnnotation)] = source.resource_version;
  if (source.transformation_fingerprint.empty()) {
    annotations.erase(std::string(kTransformationAnnotation));
  } else {
    annotations[std::string(kTransformationAnnotation)] = source.transformation_fingerprint;
  }
}

std::optional<ControlStamp> ReadStamp(const json& object) {
  const json& metadata = common::Member(object, "metadata");
  const json& labels = common::Member(metadata, "labels");
  const json& managed_by = common::Member(labels, kManagedByLabel);
  if (!managed_by.is_string()) return std::nullopt;
  const json& annotations = common::Member(metadata, "annotations");
  ControlStamp stamp;
  stamp.managed_by = managed_by.get<std::string>();
  stamp.live_synchronization = common::StringMember(annotations, kLiveSynchronizationAnnotation);
  stamp.source_cluster = common::StringMember(annotations, kSourceClusterAnnotation);
  stamp.source_uid = common::StringMember(annotations, kSourceUidAnnotation);
  stamp.source_resource_version = common::StringMember(annotations, kSourceResourceVersionAnnotation);
  stamp.transformation_fingerprint = common::StringMember(annotations, kTransformationAnnotation);
  return stamp;
}

json SourceStubFromStamped(const json& destination_object) {
  const json& metadata = common::Member(destination_object, "metadata");
  const json& annotations = common::Member(metadata, "annotations");
  return SourceStub(common::StringMember(destination_object, "apiVersion"),
                    common::StringMember(destination_object, "kind"), common::StringMember(metadata, "namespace"),
                    common::StringMember(metadata, "name"), common::StringMember(annotations, kSourceUidAnnotation),
                    common::StringMember(annotations, kSourceResourceVersionAnnotation));
}

json SourceStub(std::string_view api_version, std::string_view kind, std::string_view ns, std::string_view name,
                std::string_view uid, std::string_view resource_version) {
  json stub = {{"apiVersion", api_version},
               {"kind", kind},
               {"metadata", {{"name", name}, {"uid", uid}, {"resourceVersion", resource_version}}}};
  if (!ns.empty()) stub["metadata"]["namespace"] = ns;
  return stub;
}

}  // namespace ro::plugins::kubernetes

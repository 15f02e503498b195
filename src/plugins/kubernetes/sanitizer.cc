#include "ro/plugins/kubernetes/sanitizer.h"

#include "ro/plugins/kubernetes/allocated_fields.h"

#include <array>
#include <string_view>

#include <nlohmann/json.hpp>

namespace ro::plugins::kubernetes {
namespace {

using nlohmann::json;

// metadata fields the source apiserver set for the source object; meaningless (or
// harmful: ownerReferences point at owner uids that do not exist in the destination, so
// its garbage collector would delete the copy) in another cluster.
constexpr std::array<std::string_view, 9> kServerSetMetadata = {
    "uid",          "resourceVersion",           "generation",
    "creationTimestamp", "deletionTimestamp",    "deletionGracePeriodSeconds",
    "selfLink",     "managedFields",             "ownerReferences"};

// Annotations the PV controller and scheduler set on a bound claim. In the destination
// they would make the PV controller treat the claim (without its volumeName) as lost, or
// wait for a node / provisioner of the source cluster.
constexpr std::array<std::string_view, 5> kPvcBindingAnnotations = {
    "pv.kubernetes.io/bind-completed", "pv.kubernetes.io/bound-by-controller",
    "volume.kubernetes.io/selected-node", "volume.beta.kubernetes.io/storage-provisioner",
    "volume.kubernetes.io/storage-provisioner"};

// Labels the Job controller generates from the Job's uid (old and new names).
constexpr std::array<std::string_view, 2> kJobControllerUidLabels = {
    "controller-uid", "batch.kubernetes.io/controller-uid"};

constexpr std::array<std::string_view, 2> kPerNamespaceCaConfigMaps = {
    "kube-root-ca.crt", "openshift-service-ca.crt"};

constexpr std::array<std::string_view, 2> kEndpointSliceControllers = {
    "endpointslice-controller.k8s.io", "endpointslicemirroring-controller.k8s.io"};

// object[key] when it is a JSON object, else nullptr.
json* ObjectAt(json& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  const auto it = object.find(key);
  return it != object.end() && it->is_object() ? &*it : nullptr;
}
const json* ObjectAt(const json& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  const auto it = object.find(key);
  return it != object.end() && it->is_object() ? &*it : nullptr;
}

std::string_view StringAt(const json* object, std::string_view key) {
  if (object == nullptr) return {};
  const auto it = object->find(key);
  return it != object->end() && it->is_string() ? std::string_view(it->get_ref<const std::string&>())
                                                : std::string_view();
}

template <std::size_t N>
void EraseAll(json* object, const std::array<std::string_view, N>& keys) {
  if (object == nullptr) return;
  for (const std::string_view key : keys) {
    const auto it = object->find(key);
    if (it != object->end()) object->erase(it);
  }
}

template <std::size_t N>
bool Contains(const std::array<std::string_view, N>& values, std::string_view value) {
  for (const std::string_view v : values) {
    if (v == value) return true;
  }
  return false;
}

void SanitizePersistentVolumeClaim(json& object) {
  if (json* metadata = ObjectAt(object, "metadata")) {
    EraseAll(ObjectAt(*metadata, "annotations"), kPvcBindingAnnotations);
  }
}

void SanitizeJob(json& object) {
  json* spec = ObjectAt(object, "spec");
  if (spec != nullptr) {
    const auto manual = spec->find("manualSelector");
    if (manual != spec->end() && manual->is_boolean() && manual->get<bool>()) return;
    spec->erase("selector");
    if (json* tmpl = ObjectAt(*spec, "template")) {
      if (json* tmeta = ObjectAt(*tmpl, "metadata")) {
        EraseAll(ObjectAt(*tmeta, "labels"), kJobControllerUidLabels);
      }
    }
  }
  if (json* metadata = ObjectAt(object, "metadata")) {
    EraseAll(ObjectAt(*metadata, "labels"), kJobControllerUidLabels);
  }
}

}  // namespace

void Sanitize(const kube::GroupVersionResource& gvr, json& object) {
  if (!object.is_object()) return;
  object.erase("status");
  EraseAll(ObjectAt(object, "metadata"), kServerSetMetadata);
  RemoveAllocatedFields(gvr, object);
  if (gvr.group.empty()) {
    if (gvr.resource == "serviceaccounts") {
      object.erase("secrets");
    } else if (gvr.resource == "persistentvolumeclaims") {
      SanitizePersistentVolumeClaim(object);
    }
  } else if (gvr.group == "batch" && gvr.resource == "jobs") {
    SanitizeJob(object);
  }
}

bool ShouldReplicate(const kube::GroupVersionResource& gvr, const json& object) {
  const json* metadata = ObjectAt(object, "metadata");
  if (gvr.group.empty()) {
    if (gvr.resource == "secrets") {
      return StringAt(&object, "type") != "kubernetes.io/service-account-token";
    }
    if (gvr.resource == "configmaps") {
      return !Contains(kPerNamespaceCaConfigMaps, StringAt(metadata, "name"));
    }
  } else if (gvr.group == "discovery.k8s.io" && gvr.resource == "endpointslices") {
    const json* labels = metadata == nullptr ? nullptr : ObjectAt(*metadata, "labels");
    return !Contains(kEndpointSliceControllers,
                     StringAt(labels, "endpointslice.kubernetes.io/managed-by"));
  }
  return true;
}

}  // namespace ro::plugins::kubernetes

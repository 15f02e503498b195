#include "ro/runtime/finalizers.h"

#include <nlohmann/json.hpp>

#include "ro/kube/client.h"
#include "ro/kube/errors.h"

namespace ro::runtime {

using nlohmann::json;

bool HasFinalizer(const json& object, std::string_view finalizer) {
  if (!object.is_object() || !object.contains("metadata")) return false;
  const json& metadata = object["metadata"];
  if (!metadata.is_object() || !metadata.contains("finalizers")) return false;
  const json& list = metadata["finalizers"];
  if (!list.is_array()) return false;
  for (const json& f : list) {
    if (f.is_string() && f.get_ref<const std::string&>() == finalizer) return true;
  }
  return false;
}

bool AddFinalizer(json& object, std::string_view finalizer) {
  if (HasFinalizer(object, finalizer)) return false;
  json& list = object["metadata"]["finalizers"];
  if (!list.is_array()) list = json::array();
  list.push_back(std::string(finalizer));
  return true;
}

bool RemoveFinalizer(json& object, std::string_view finalizer) {
  if (!HasFinalizer(object, finalizer)) return false;
  json& list = object["metadata"]["finalizers"];
  json kept = json::array();
  for (json& f : list) {
    if (!(f.is_string() && f.get_ref<const std::string&>() == finalizer)) kept.push_back(std::move(f));
  }
  if (kept.empty()) {
    object["metadata"].erase("finalizers");
  } else {
    list = std::move(kept);
  }
  return true;
}

namespace {

// PUT of `updated` (which still carries the resourceVersion that was read).
WriteOutcome UpdateWithPrecondition(kube::DynamicClient& client,
                                    const kube::GroupVersionResource& gvr,
                                    const json& updated, bool gone_is_done) {
  const std::string ns = updated["metadata"].value("namespace", "");
  try {
    client.Update(gvr, ns, updated);
    return WriteOutcome::kWritten;
  } catch (const kube::ApiError& e) {
    if (kube::IsConflict(e)) return WriteOutcome::kConflict;
    if (gone_is_done && kube::IsNotFound(e)) return WriteOutcome::kWritten;
    throw;
  }
}

}  // namespace

WriteOutcome EnsureFinalizer(kube::DynamicClient& client, const kube::GroupVersionResource& gvr,
                             const json& object, std::string_view finalizer) {
  json updated = object;
  if (!AddFinalizer(updated, finalizer)) return WriteOutcome::kUnchanged;
  return UpdateWithPrecondition(client, gvr, updated, /*gone_is_done=*/false);
}

WriteOutcome DropFinalizer(kube::DynamicClient& client, const kube::GroupVersionResource& gvr,
                           const json& object, std::string_view finalizer) {
  json updated = object;
  if (!RemoveFinalizer(updated, finalizer)) return WriteOutcome::kUnchanged;
  return UpdateWithPrecondition(client, gvr, updated, /*gone_is_done=*/true);
}

}  // namespace ro::runtime

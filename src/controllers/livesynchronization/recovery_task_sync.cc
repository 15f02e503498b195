#include "livesynchronization/recovery_task_sync.h"

#include <initializer_list>
#include <optional>
#include <utility>

#include <nlohmann/json.hpp>

#include "ro/common/object_meta.h"
#include "ro/kube/client.h"
#include "ro/kube/errors.h"
#include "ro/kube/store.h"
#include "ro/kubesync/runner/semantic_compare.h"
#include "ro/plugins/kubernetes/control_metadata.h"
#include "ro/plugins/kubernetes/recovery_task.h"

namespace ro::controllers::livesync {

using nlohmann::json;

namespace {

json OwnerReference(const json& live_sync) {
  return common::ControllerReference(live_sync.value("apiVersion", "automation.astronetes.io/v1alpha1"),
                                     "LiveSynchronization", common::Name(live_sync), common::Uid(live_sync));
}

// True when `task`'s controller is a LiveSynchronization named like `live_sync`.
bool ControlledBy(const json& task, const json& live_sync) {
  const std::string name = live_sync.at("metadata").value("name", "");
  const json& metadata = task.value("metadata", json::object());
  for (const json& ref : metadata.value("ownerReferences", json::array())) {
    if (ref.value("controller", false) && ref.value("kind", "") == "LiveSynchronization" &&
        ref.value("name", "") == name) {
      return true;
    }
  }
  return false;
}

// The update that brings the stored Task `existing` to `desired`: its spec, and the
// metadata fields `keys` of `desired` (maps merged into the stored ones, lists
// replaced). nullopt when `existing` already matches (server defaults aside).
std::optional<json> TaskUpdate(const json& existing, const json& desired, std::initializer_list<const char*> keys) {
  json wanted = {{"metadata", json::object()}, {"spec", desired.at("spec")}};
  for (const char* key : keys) wanted["metadata"][key] = desired.at("metadata").at(key);
  if (kubesync::runner::IsSemanticSubset(wanted, existing) &&
      existing.at("spec").value("config", json::object()).value("resources", json::array()).size() ==
          desired.at("spec").at("config").at("resources").size()) {
    return std::nullopt;
  }
  json updated = existing;
  updated["spec"] = desired.at("spec");
  for (const char* key : keys) {
    const json& value = desired.at("metadata").at(key);
    if (value.is_object() && updated["metadata"].contains(key) && updated["metadata"][key].is_object()) {
      updated["metadata"][key].update(value);
    } else {
      updated["metadata"][key] = value;
    }
  }
  return updated;
}

std::string KeyOf(const json& live_sync) {
  const json& metadata = live_sync.at("metadata");
  return metadata.value("namespace", "") + "/" + metadata.value("name", "");
}

}  // namespace

runtime::ObjectType TaskType() {
  return {kube::GroupVersionResource{"automation.astronetes.io", "v1alpha1", "tasks"}, "Task"};
}

std::optional<json> DesiredRecoveryTask(const json& live_sync, const plugins::kubernetes::LiveSyncConfig& config) {
  if (!plugins::kubernetes::HasRecoveryProcess(config)) return std::nullopt;
  const json& metadata = live_sync.at("metadata");
  json task = plugins::kubernetes::BuildRecoveryTask(config, metadata.value("namespace", ""),
                                                     metadata.value("name", ""));
  task["metadata"]["ownerReferences"] = json::array({OwnerReference(live_sync)});
  return task;
}

RecoveryTaskSync::RecoveryTaskSync(kube::DynamicClient& client, const kube::Store& tasks)
    : client_(client), tasks_(tasks) {}

std::optional<std::string> RecoveryTaskSync::Ensure(const json& live_sync,
                                                    const plugins::kubernetes::LiveSyncConfig& config,
                                                    std::string* conflict) {
  const kube::GroupVersionResource gvr = TaskType().gvr;
  const std::string ns = live_sync.at("metadata").value("namespace", "");
  const std::string name = live_sync.at("metadata").value("name", "");
  const std::optional<json> desired = DesiredRecoveryTask(live_sync, config);
  const kube::ObjectPtr existing = tasks_.Get(KeyOf(live_sync));

  if (existing && !ControlledBy(*existing, live_sync)) {
    *conflict = "Task " + ns + "/" + name + " exists and is not controlled by this LiveSynchronization; "
                "the recovery Task was not written";
    return std::nullopt;
  }
  if (!desired) {
    if (existing) Delete(live_sync);
    return std::nullopt;
  }
  if (!existing) {
    try {
      client_.Create(gvr, ns, *desired);
    } catch (const kube::ApiError& e) {
      // Created meanwhile (the cache lags behind our own write): the next pass compares.
      if (e.reason() != kube::StatusReason::kAlreadyExists) throw;
    }
    return name;
  }
  if (std::optional<json> updated = TaskUpdate(*existing, *desired, {"annotations", "ownerReferences"})) {
    client_.Update(gvr, ns, *updated);  // carries the cached resourceVersion: Conflict when stale
  }
  return name;
}

kube::ObjectPtr RecoveryTaskSync::Existing(const json& live_sync) const {
  kube::ObjectPtr existing = tasks_.Get(KeyOf(live_sync));
  return existing && ControlledBy(*existing, live_sync) ? existing : nullptr;
}

void RecoveryTaskSync::Delete(const json& live_sync) {
  // Read from the API, not the cache: a Task created moments ago must not be missed.
  const std::string ns = live_sync.at("metadata").value("namespace", "");
  const std::string name = live_sync.at("metadata").value("name", "");
  json current;
  try {
    current = client_.Get(TaskType().gvr, ns, name);
  } catch (const kube::ApiError& e) {
    if (e.reason() == kube::StatusReason::kNotFound) return;
    throw;
  }
  if (!ControlledBy(current, live_sync)) return;
  kube::DeleteOptions options;
  options.precondition_uid = current.at("metadata").value("uid", "");
  try {
    client_.Delete(TaskType().gvr, ns, name, options);
  } catch (const kube::ApiError& e) {
    if (e.reason() != kube::StatusReason::kNotFound) throw;
  }
}

namespace {

const kube::GroupVersionResource kNamespaces{"", "v1", "namespaces"};

// True when the destination's Task `task` was written for `live_sync` (by a controller
// in another cluster).
bool RemotelyOwned(const json& task, const json& live_sync) {
  const json& metadata = task.value("metadata", json::object());
  const json& live_meta = live_sync.at("metadata");
  const std::string id = plugins::kubernetes::ManagedById(live_meta.value("namespace", ""), live_meta.value("name", ""));
  const json labels = metadata.value("labels", json::object());
  const json annotations = metadata.value("annotations", json::object());
  return labels.value(std::string(plugins::kubernetes::kManagedByLabel), "") == id &&
         annotations.value(std::string(plugins::kubernetes::kLiveSynchronizationAnnotation), "") == KeyOf(live_sync);
}

}  // namespace

std::optional<json> DesiredRemoteRecoveryTask(const json& live_sync, const plugins::kubernetes::LiveSyncConfig& config) {
  if (!plugins::kubernetes::HasRecoveryProcess(config)) return std::nullopt;
  const json& metadata = live_sync.at("metadata");
  const std::string ns = metadata.value("namespace", "");
  const std::string name = metadata.value("name", "");
  json task = plugins::kubernetes::BuildRecoveryTask(config, ns, name);
  // It runs against the cluster it is in: the destination KubernetesCluster is an asset
  // of the management cluster, unknown there.
  task["spec"]["config"].erase("destinationName");
  task["metadata"]["labels"] = {
      {std::string(plugins::kubernetes::kManagedByLabel), plugins::kubernetes::ManagedById(ns, name)}};
  return task;
}

std::string ClusterIdentity(kube::DynamicClient& client) {
  return client.Get(kNamespaces, "", "kube-system").at("metadata").value("uid", "");
}

std::optional<std::string> RemoteRecoveryTaskSync::Ensure(kube::DynamicClient& destination, const json& live_sync,
                                                          const plugins::kubernetes::LiveSyncConfig& config,
                                                          std::string* conflict) {
  const kube::GroupVersionResource gvr = TaskType().gvr;
  const std::string ns = live_sync.at("metadata").value("namespace", "");
  const std::string name = live_sync.at("metadata").value("name", "");
  const std::optional<json> desired = DesiredRemoteRecoveryTask(live_sync, config);
  const std::optional<json> existing = destination.GetIfExists(gvr, ns, name);
  if (existing && !RemotelyOwned(*existing, live_sync)) {
    *conflict = "Task " + ns + "/" + name + " exists in the destination cluster and was not written for this "
                "LiveSynchronization; the recovery Task was not written";
    return std::nullopt;
  }
  if (!desired) {
    if (existing) Delete(destination, live_sync);
    return std::nullopt;
  }
  if (!existing) {
    if (!destination.GetIfExists(kNamespaces, "", ns)) {
      try {
        destination.Create(kNamespaces, "", {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}});
      } catch (const kube::ApiError& e) {
        if (e.reason() != kube::StatusReason::kAlreadyExists) throw;
      }
    }
    try {
      destination.Create(gvr, ns, *desired);
    } catch (const kube::ApiError& e) {
      if (e.reason() != kube::StatusReason::kAlreadyExists) throw;  // the next pass compares
    }
    return name;
  }
  if (std::optional<json> updated = TaskUpdate(*existing, *desired, {"annotations", "labels"})) {
    destination.Update(gvr, ns, *updated);  // the read resourceVersion: Conflict when changed meanwhile
  }
  return name;
}

void RemoteRecoveryTaskSync::Delete(kube::DynamicClient& destination, const json& live_sync) {
  const std::string ns = live_sync.at("metadata").value("namespace", "");
  const std::string name = live_sync.at("metadata").value("name", "");
  const std::optional<json> current = destination.GetIfExists(TaskType().gvr, ns, name);
  if (!current || !RemotelyOwned(*current, live_sync)) return;
  kube::DeleteOptions options;
  options.precondition_uid = current->at("metadata").value("uid", "");
  try {
    destination.Delete(TaskType().gvr, ns, name, options);
  } catch (const kube::ApiError& e) {
    if (e.reason() != kube::StatusReason::kNotFound) throw;
  }
}

}  // namespace ro::controllers::livesync

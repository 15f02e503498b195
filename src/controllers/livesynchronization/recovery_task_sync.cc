#include "livesynchronization/recovery_task_sync.h"

#include <utility>

#include <nlohmann/json.hpp>

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
  const json& metadata = live_sync.at("metadata");
  return {{"apiVersion", live_sync.value("apiVersion", "automation.astronetes.io/v1alpha1")},
          {"kind", "LiveSynchronization"},
          {"name", metadata.value("name", "")},
          {"uid", metadata.value("uid", "")},
          {"controller", true},
          {"blockOwnerDeletion", true}};
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
  const json wanted = {{"metadata",
                        {{"annotations", desired->at("metadata").at("annotations")},
                         {"ownerReferences", desired->at("metadata").at("ownerReferences")}}},
                       {"spec", desired->at("spec")}};
  if (kubesync::runner::IsSemanticSubset(wanted, *existing) &&
      existing->at("spec").value("config", json::object()).value("resources", json::array()).size() ==
          desired->at("spec").at("config").at("resources").size()) {
    return name;
  }
  json updated = *existing;
  updated["spec"] = desired->at("spec");
  updated["metadata"]["ownerReferences"] = desired->at("metadata").at("ownerReferences");
  if (!updated["metadata"].contains("annotations") || !updated["metadata"]["annotations"].is_object()) {
    updated["metadata"]["annotations"] = json::object();
  }
  updated["metadata"]["annotations"].update(desired->at("metadata").at("annotations"));
  client_.Update(gvr, ns, updated);  // carries the cached resourceVersion: Conflict when stale
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

std::optional<json> GetIfExists(kube::DynamicClient& client, const kube::GroupVersionResource& gvr,
                                const std::string& ns, const std::string& name) {
  try {
    return client.Get(gvr, ns, name);
  } catch (const kube::ApiError& e) {
    if (e.reason() == kube::StatusReason::kNotFound) return std::nullopt;
    throw;
  }
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
  const std::optional<json> existing = GetIfExists(destination, gvr, ns, name);
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
    if (!GetIfExists(destination, kNamespaces, "", ns)) {
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
  const json wanted = {{"metadata",
                        {{"annotations", desired->at("metadata").at("annotations")},
                         {"labels", desired->at("metadata").at("labels")}}},
                       {"spec", desired->at("spec")}};
  if (kubesync::runner::IsSemanticSubset(wanted, *existing) &&
      existing->at("spec").value("config", json::object()).value("resources", json::array()).size() ==
          desired->at("spec").at("config").at("resources").size()) {
    return name;
  }
  json updated = *existing;
  updated["spec"] = desired->at("spec");
  for (const char* key : {"annotations", "labels"}) {
    if (!updated["metadata"].contains(key) || !updated["metadata"][key].is_object()) {
      updated["metadata"][key] = json::object();
    }
    updated["metadata"][key].update(desired->at("metadata").at(key));
  }
  destination.Update(gvr, ns, updated);  // the read resourceVersion: Conflict when changed meanwhile
  return name;
}

void RemoteRecoveryTaskSync::Delete(kube::DynamicClient& destination, const json& live_sync) {
  const std::string ns = live_sync.at("metadata").value("namespace", "");
  const std::string name = live_sync.at("metadata").value("name", "");
  const std::optional<json> current = GetIfExists(destination, TaskType().gvr, ns, name);
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

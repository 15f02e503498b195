// The structured fields of the pipeline's log lines (manual 6.2.4 "JSON fields"), built
// from Kubernetes objects. Private to src/kubesync/components.
#pragma once

#include <nlohmann/json.hpp>

#include <string_view>

#include "ro/kube/gvr.h"
#include "ro/kubesync/kubesync_config.h"

namespace ro::kubesync::fields {

// sourceObject / oldSourceObject / destinationObject: {"apiGroup", "apiVersion", "name",
// "namespace", "resource", "resourceVersion", "uid"} of `object` (a missing member
// reads as "").
nlohmann::json ObjectRef(const kube::GroupVersionResource& gvr, const nlohmann::json& object);

// The source identity recorded on a stamped (destination-form) object or a delete stub:
// name and namespace of the object, uid and resourceVersion from the control
// annotations kubesync.astronetes.io/source-uid and source-resource-version.
nlohmann::json SourceRefFromStamped(const kube::GroupVersionResource& gvr, const nlohmann::json& object);

// lastUpdate: {"time", "userUID", "username"} from the audit annotations
// audit.astronetes.io/last-update-{time,user-uid,username} (manual 2.3); JSON null when
// the object carries none.
nlohmann::json LastUpdate(const nlohmann::json& object);

// event: {"type": type}, type "create", "update", "delete" or "resync".
nlohmann::json Event(std::string_view type);

// sourceCluster / destinationCluster / bucket: {"name", "namespace", "resourceVersion",
// "uid"}.
nlohmann::json Identity(const ObjectIdentity& identity);

// "<namespace>/<name>", or "<name>" for a cluster-scoped object (stats failure details).
std::string Key(const nlohmann::json& object);

}  // namespace ro::kubesync::fields

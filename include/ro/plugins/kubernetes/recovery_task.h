// The Task a LiveSynchronization's recovery runs (manual 8.2 "Understanding the TaskRun"):
// plugin kubernetes-objects-transformation, one config.resources[] item per
// replication.resources[] entry whose recoveryProcess does something.
#pragma once

#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "ro/plugins/kubernetes/live_sync_config.h"

namespace ro::plugins::kubernetes {

// True when some resources[] entry has a recoveryProcess with an effect (fromPatch
// operations or fromOriginal.enabled): only then is a recovery Task worth creating.
bool HasRecoveryProcess(const LiveSyncConfig& config);

// The Task object (automation.astronetes.io/v1alpha1), named after the
// LiveSynchronization and in its namespace, annotated with
// kubesync.astronetes.io/live-synchronization = "<ns>/<name>":
//   spec.plugin: kubernetes-objects-transformation
//   spec.config: sourceName, destinationName, bucketName (when set), and resources[]:
//     identifier {group, version, resources}
//     patch {operations: fromPatch, patchOptions} (when fromPatch is non-empty)
//     filter {selector, namespaceSelector, nameSelector} (the entry's filters as given)
//     fromOriginal {enabled: true} (when enabled)
// in configuration order. resources is [] when no entry has a recovery effect. The
// caller adds the ownerReference to the LiveSynchronization (it knows the uid).
nlohmann::json BuildRecoveryTask(const LiveSyncConfig& config, std::string_view ls_namespace,
                                 std::string_view ls_name);

}  // namespace ro::plugins::kubernetes

// Where and in which form the original of a replicated object is kept in the
// LiveSynchronization's bucket (manual 6.2.3, docs/kubesync.md "Bucket object path").
// One function for upload and restore, so both always agree.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "ro/kube/gvr.h"
#include "ro/plugins/kubernetes/control_metadata.h"

namespace ro::plugins::kubernetes {

// "<ls namespace>/<ls name>/<group>-<version>-<resource>/<object namespace>.<object name>",
// core group "v1-configmaps"; a cluster-scoped object (empty object_ns) is
// "<ls namespace>/<ls name>/<gvr>/<object name>". Example (manual 6.2.4):
// "dr-config/pre/apps-v1-deployments/test-namespace-one.helloworld".
std::string BucketObjectPath(std::string_view ls_namespace, std::string_view ls_name,
                             const kube::GroupVersionResource& gvr, std::string_view object_ns,
                             std::string_view object_name);

// The same layout under any prefix: "<prefix>/<gvr dashed>/<object namespace>.<object
// name>" ("<prefix>/<gvr dashed>/<object name>" cluster-scoped; no leading "/" when
// `prefix` is empty). BucketObjectPath is BucketObjectKey("<ls ns>/<ls name>", ...); a
// Backup's objects are BucketObjectKey(<basePath>, ...) (docs/backup.md).
std::string BucketObjectKey(std::string_view prefix, const kube::GroupVersionResource& gvr,
                            std::string_view object_ns, std::string_view object_name);

// The stored form of a source object: a copy sanitized (Sanitize) and stamped (Stamp,
// with the source's uid and resourceVersion, no transformation), serialized as compact
// JSON. The original is what recoveryProcess.fromOriginal restores: transformations are
// not applied.
std::string BucketObjectBody(const kube::GroupVersionResource& gvr,
                             const nlohmann::json& source_object, const StampInfo& stamp);

}  // namespace ro::plugins::kubernetes

// The typed, validated `spec.config` of a LiveSynchronization with plugin
// kubernetes-objects-to-kubernetes (manual 6.2.2, 6.2.3, 6.2.5, 6.2.6), and routing of an
// object to the replication.resources[] entry that handles it (docs/kubesync.md,
// processor). Validation rules: docs/kubesync.md "Configuration validation".
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "ro/kube/gvr.h"
#include "ro/plugins/kubernetes/component_config.h"
#include "ro/plugins/kubernetes/config_error.h"
#include "ro/plugins/kubernetes/json_patch.h"
#include "ro/plugins/kubernetes/object_filter.h"

namespace ro::plugins::kubernetes {

// resources[].transformation: applied to every replicated object before it is written.
struct Transformation {
  JsonPatch patch;
  PatchOptions options;
};

// resources[].recoveryProcess: what a recovery does to the replicated objects.
struct RecoveryProcess {
  // Applied to the destination's current object (transformed state).
  JsonPatch from_patch;
  PatchOptions patch_options;
  // Restore the original kept in the bucket (needs spec.config.bucketName).
  bool from_original = false;

  // True when a recovery would do something (from_patch non-empty or from_original).
  bool HasEffect() const noexcept { return !from_patch.empty() || from_original; }
};

// One replication.resources[] entry.
struct ResourceRule {
  // Position in replication.resources (for messages and status).
  std::size_t index = 0;
  kube::GroupVersionResource gvr;  // group "" = core
  ObjectFilter filter;
  std::optional<Transformation> transformation;
  std::optional<RecoveryProcess> recovery;
  // 16 hex characters identifying the transformation (patch + options), "" when there is
  // none. Stamped on destination objects so a changed transformation is re-applied to
  // objects whose source did not change (docs/kubesync.md "Transformation fingerprint").
  std::string transformation_fingerprint;
};

struct ReplicationConfig {
  // How often the full state is re-published and pruned. Default 1 h (manual 6.2.5);
  // always > 0. Read from replication.resyncPeriod or spec.config.resyncPeriod (the
  // manual's 6.2.5 text); when both are set they must be the same duration.
  std::chrono::nanoseconds resync_period = std::chrono::hours(1);
  bool force_namespace_creation = false;
  // replication.adoptExisting (default false): an upsert that meets an existing
  // destination object without any LiveSynchronization's managed-by label takes it over
  // (updates it and stamps it) instead of leaving it alone. For failback (docs/runbook.md):
  // a reversed LiveSynchronization adopts the old primary's objects, and the resumed one
  // adopts what was created in the standby during the outage. Deletions and pruning
  // still touch only objects this LiveSynchronization manages.
  bool adopt_existing = false;
  // In configuration order; never empty.
  std::vector<ResourceRule> resources;
};

struct ObservabilityConfig {
  bool enabled = false;
  // How often metrics are gathered. Default 30 s; always > 0.
  std::chrono::nanoseconds interval = std::chrono::seconds(30);
};

// Immutable after ParseLiveSyncConfig; thread-safe for concurrent readers.
struct LiveSyncConfig {
  std::string source_name;       // KubernetesCluster in the LiveSynchronization's namespace
  std::string destination_name;  // KubernetesCluster in the LiveSynchronization's namespace
  std::optional<std::string> bucket_name;  // Bucket in the same namespace
  ReplicationConfig replication;
  ObservabilityConfig observability;
  ComponentsConfig components;

  // The first resources[] entry for `gvr` whose filter matches `object`, or nullptr.
  // `namespace_labels` as for ObjectFilter::Matches. Linear in the number of entries
  // (a handful); allocates nothing.
  const ResourceRule* Route(const kube::GroupVersionResource& gvr, const nlohmann::json& object,
                            const nlohmann::json* namespace_labels) const;

  // True when some resources[] entry names `gvr`.
  bool Replicates(const kube::GroupVersionResource& gvr) const;

  // The distinct GVRs of resources[], in first-appearance order (one reflector each).
  std::vector<kube::GroupVersionResource> DistinctGvrs() const;
};

// Builds and validates a LiveSyncConfig from `spec.config`. Collects every problem and
// throws one ConfigError listing them all (reasons: InvalidConfig, InvalidResyncPeriod,
// InvalidRegex, InvalidSelector, InvalidPatch, OverlappingTransformations,
// InvalidComponent). Unknown fields are ignored (the CRD schema prunes them).
LiveSyncConfig ParseLiveSyncConfig(const nlohmann::json& spec_config);

}  // namespace ro::plugins::kubernetes

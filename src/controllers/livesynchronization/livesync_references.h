// What a LiveSynchronization refers to, checked before anything runs
// (docs/livesynchronization.md, "The Ready condition"): the plugin, the clusters and the
// bucket it names (they must exist and be Ready), and the manual's rule of one
// LiveSynchronization per namespace when they share a bucket or a KubernetesCluster
// (6.2.2, "Live Synchronizations and namespaces"). Pure: lookups are injected, so the
// rules are unit-tested without servers.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "ro/kube/store.h"
#include "ro/kubesync/runner/pipeline_plan.h"
#include "ro/plugins/kubernetes/config_error.h"
#include "ro/plugins/kubernetes/live_sync_config.h"

namespace ro::controllers::livesync {

// Ready reasons besides the configuration's (plugins::kubernetes::reason::*).
inline constexpr const char* kReasonRunning = "Running";
inline constexpr const char* kReasonComponentsNotReady = "ComponentsNotReady";
inline constexpr const char* kReasonSuspended = "Suspended";
inline constexpr const char* kReasonComponentsFailed = "ComponentsFailed";
inline constexpr const char* kReasonSourceClusterNotFound = "SourceClusterNotFound";
inline constexpr const char* kReasonDestinationClusterNotFound = "DestinationClusterNotFound";
inline constexpr const char* kReasonClusterNotReady = "ClusterNotReady";
inline constexpr const char* kReasonBucketNotFound = "BucketNotFound";
inline constexpr const char* kReasonBucketNotReady = "BucketNotReady";
inline constexpr const char* kReasonUnknownResource = "UnknownResource";
inline constexpr const char* kReasonConflicting = "ConflictingLiveSynchronization";

// The only plugin of a LiveSynchronization (manual 6.2.2).
inline constexpr const char* kPlugin = "kubernetes-objects-to-kubernetes";

// Why a LiveSynchronization cannot run: the Ready=False reason and a message naming the
// field or object involved.
struct Problem {
  std::string reason;
  std::string message;

  bool operator==(const Problem&) const = default;
};

// spec.plugin is not kPlugin: InvalidConfig naming spec.plugin. nullopt when it is.
std::optional<Problem> CheckPlugin(const nlohmann::json& live_sync);

// A ConfigError of ParseLiveSyncConfig as a Problem: its first reason, and the
// problems with their fields prefixed by "spec.config." ("spec.config.replication
// .resources[0].filters.nameSelector.excludeRegex[0]: ...; ...").
Problem ConfigProblem(const plugins::kubernetes::ConfigError& error);

// The manual's one-per-namespace rule. `siblings` are the LiveSynchronizations of the
// same namespace (`live_sync` itself among them is ignored). Two share something when
// their {sourceName, destinationName} intersect or their bucketName is equal and set.
// Of two that share, the older (creationTimestamp, then name) wins and the other gets
// ConflictingLiveSynchronization naming the winner and what they share; siblings being
// deleted do not count.
std::optional<Problem> FindConflict(const nlohmann::json& live_sync,
                                    const std::vector<kube::ObjectPtr>& siblings);

// Reads an asset of the LiveSynchronization's namespace from an informer cache; nullptr
// when it does not exist.
using AssetLookup = std::function<kube::ObjectPtr(const std::string& name)>;

// The assets a valid LiveSynchronization runs with (from the caches).
struct References {
  kube::ObjectPtr source_cluster;
  kube::ObjectPtr destination_cluster;
  kube::ObjectPtr bucket;  // nullptr without spec.config.bucketName
};

// Finds the clusters and the bucket `config` names. Problems, in this order:
// SourceClusterNotFound, DestinationClusterNotFound, ClusterNotReady (either cluster's
// Ready condition is not True for its current generation; the message quotes it),
// BucketNotFound, BucketNotReady. `problem` is set instead of the references then.
struct ReferenceCheck {
  std::optional<Problem> problem;
  References references;
};
ReferenceCheck CheckReferences(const plugins::kubernetes::LiveSyncConfig& config,
                               const AssetLookup& clusters, const AssetLookup& buckets);

// True when `asset`'s Ready condition is True and describes its current generation;
// otherwise `why` gets a short explanation ("Ready=False (Unreachable): ...", "not
// checked yet").
bool AssetReady(const nlohmann::json& asset, std::string* why);

// The connection settings of a Bucket object (manual 5.3: exactly one of spec.generic,
// spec.awsS3, spec.gcpCloudStorage), keys not filled in, and the Secret holding them
// (the block's secretName, else spec.secretName). Throws std::invalid_argument when the
// spec has no usable provider block (the bucket controller reports that as InvalidSpec).
kubesync::runner::BucketInputs BucketInputsFrom(const nlohmann::json& bucket, std::string* secret_name);

}  // namespace ro::controllers::livesync

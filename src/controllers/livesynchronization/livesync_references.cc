#include "livesynchronization/livesync_references.h"

#include <set>
#include <stdexcept>
#include <utility>

#include <nlohmann/json.hpp>

#include "ro/common/object_meta.h"

namespace ro::controllers::livesync {

using nlohmann::json;

namespace {

const json& ConfigOf(const json& live_sync) { return common::Member(common::Member(live_sync, "spec"), "config"); }

// The KubernetesClusters and the Bucket a LiveSynchronization names (from its raw spec,
// which may be invalid: only well-typed names count).
struct Shared {
  std::set<std::string> clusters;
  std::string bucket;
};

Shared SharedOf(const json& live_sync) {
  const json& config = ConfigOf(live_sync);
  Shared shared;
  for (const char* key : {"sourceName", "destinationName"}) {
    if (std::string name = common::StringMember(config, key); !name.empty()) shared.clusters.insert(std::move(name));
  }
  shared.bucket = common::StringMember(config, "bucketName");
  return shared;
}

// Creation order: creationTimestamp (RFC 3339 in UTC sorts as text), then name.
std::pair<std::string, std::string> Age(const json& object) {
  const json& metadata = common::Member(object, "metadata");
  return {common::StringMember(metadata, "creationTimestamp"), common::StringMember(metadata, "name")};
}

}  // namespace

std::optional<Problem> CheckPlugin(const json& live_sync) {
  const std::string plugin = common::StringMember(common::Member(live_sync, "spec"), "plugin");
  if (plugin == kPlugin) return std::nullopt;
  return Problem{std::string(plugins::kubernetes::reason::kInvalidConfig),
                 "spec.plugin: \"" + plugin + "\" is not supported; a LiveSynchronization uses \"" + kPlugin + "\""};
}

Problem ConfigProblem(const plugins::kubernetes::ConfigError& error) {
  std::vector<plugins::kubernetes::ConfigProblem> prefixed = error.problems();
  for (auto& problem : prefixed) {
    problem.field = problem.field.empty() ? "spec.config" : "spec.config." + problem.field;
  }
  return Problem{error.reason(), plugins::kubernetes::ProblemsToMessage(prefixed)};
}

std::optional<Problem> FindConflict(const json& live_sync, const std::vector<kube::ObjectPtr>& siblings) {
  const Shared mine = SharedOf(live_sync);
  const auto my_age = Age(live_sync);
  for (const kube::ObjectPtr& sibling : siblings) {
    if (!sibling || common::Deleting(*sibling)) continue;
    const auto their_age = Age(*sibling);
    if (their_age.second == my_age.second || !(their_age < my_age)) continue;  // itself, or younger
    const Shared theirs = SharedOf(*sibling);
    std::string what;
    for (const std::string& cluster : mine.clusters) {
      if (theirs.clusters.contains(cluster)) {
        what = "KubernetesCluster " + cluster;
        break;
      }
    }
    if (what.empty() && !mine.bucket.empty() && mine.bucket == theirs.bucket) what = "Bucket " + mine.bucket;
    if (what.empty()) continue;
    return Problem{kReasonConflicting,
                   "LiveSynchronization " + their_age.second + " of this namespace also uses " + what +
                       " and is older: only one LiveSynchronization per namespace may share a cluster or a "
                       "bucket (manual 6.2.2); move this one to another namespace"};
  }
  return std::nullopt;
}

bool AssetReady(const json& asset, std::string* why) {
  const json& conditions = common::Member(common::Member(asset, "status"), "conditions");
  const int64_t generation = common::Generation(asset);
  if (conditions.is_array()) {
    for (const json& condition : conditions) {
      if (common::StringMember(condition, "type") != "Ready") continue;
      const std::string status = common::StringMember(condition, "status");
      if (condition.value("observedGeneration", int64_t{0}) < generation) {
        *why = "its current spec has not been checked yet";
        return false;
      }
      if (status == "True") return true;
      *why = "Ready=" + status + " (" + common::StringMember(condition, "reason") + "): " + common::StringMember(condition, "message");
      return false;
    }
  }
  *why = "it has not been checked yet (no Ready condition)";
  return false;
}

ReferenceCheck CheckReferences(const plugins::kubernetes::LiveSyncConfig& config, const AssetLookup& clusters,
                               const AssetLookup& buckets) {
  ReferenceCheck check;
  References& refs = check.references;
  refs.source_cluster = clusters(config.source_name);
  if (!refs.source_cluster) {
    check.problem = Problem{kReasonSourceClusterNotFound,
                            "spec.config.sourceName: KubernetesCluster " + config.source_name +
                                " does not exist in this namespace"};
    return check;
  }
  refs.destination_cluster = clusters(config.destination_name);
  if (!refs.destination_cluster) {
    check.problem = Problem{kReasonDestinationClusterNotFound,
                            "spec.config.destinationName: KubernetesCluster " + config.destination_name +
                                " does not exist in this namespace"};
    return check;
  }
  for (const auto& [field, cluster] : {std::pair{"sourceName", refs.source_cluster},
                                       std::pair{"destinationName", refs.destination_cluster}}) {
    std::string why;
    if (!AssetReady(*cluster, &why)) {
      check.problem = Problem{kReasonClusterNotReady, std::string("spec.config.") + field + ": KubernetesCluster " +
                                                          common::StringMember(common::Member(*cluster, "metadata"), "name") +
                                                          " is not ready: " + why};
      return check;
    }
  }
  if (config.bucket_name) {
    refs.bucket = buckets(*config.bucket_name);
    if (!refs.bucket) {
      check.problem = Problem{kReasonBucketNotFound, "spec.config.bucketName: Bucket " + *config.bucket_name +
                                                         " does not exist in this namespace"};
      return check;
    }
    std::string why;
    if (!AssetReady(*refs.bucket, &why)) {
      check.problem = Problem{kReasonBucketNotReady,
                              "spec.config.bucketName: Bucket " + *config.bucket_name + " is not ready: " + why};
      return check;
    }
  }
  return check;
}

kubesync::runner::BucketInputs BucketInputsFrom(const json& bucket, std::string* secret_name) {
  const json& metadata = common::Member(bucket, "metadata");
  const json& spec = common::Member(bucket, "spec");
  kubesync::runner::BucketInputs inputs;
  inputs.identity.name = common::StringMember(metadata, "name");
  inputs.identity.ns = common::StringMember(metadata, "namespace");
  inputs.identity.uid = common::StringMember(metadata, "uid");
  inputs.identity.resource_version = common::StringMember(metadata, "resourceVersion");
  const json* block = nullptr;
  for (const char* provider : {"generic", "awsS3", "gcpCloudStorage"}) {
    if (common::Member(spec, provider).is_object()) {
      if (block != nullptr) throw std::invalid_argument("Bucket " + inputs.identity.name + " sets several providers");
      block = &spec.at(provider);
      inputs.provider = provider;
    }
  }
  if (block == nullptr) throw std::invalid_argument("Bucket " + inputs.identity.name + " sets no provider");
  inputs.bucket_name = common::StringMember(*block, "name");
  if (inputs.provider == "generic") {
    inputs.endpoint = common::StringMember(*block, "endpoint");
    inputs.use_ssl = common::Member(*block, "useSSL").is_boolean() && block->at("useSSL").get<bool>();
  } else if (inputs.provider == "awsS3") {
    inputs.region = common::StringMember(*block, "region");
  }
  *secret_name = common::StringMember(*block, "secretName");
  if (secret_name->empty()) *secret_name = common::StringMember(spec, "secretName");
  return inputs;
}

}  // namespace ro::controllers::livesync

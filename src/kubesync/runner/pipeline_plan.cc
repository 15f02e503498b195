#include "ro/kubesync/runner/pipeline_plan.h"

#include <algorithm>
#include <array>
#include <stdexcept>
#include <utility>

#include <nlohmann/json.hpp>

#include "ro/common/digest.h"

namespace ro::kubesync::runner {

using nlohmann::json;
using plugins::kubernetes::ComponentKind;

namespace {

std::string FileIn(const Placement& placement, std::string_view file) {
  return placement.files_dir + "/" + std::string(file);
}

// kBucketEncryptionKeysFile's content: {"keyName", "keys": {name: hex}} (hex keeps the
// binary keys valid in JSON and in a Secret's stringData).
std::string EncryptionKeysFile(const BucketInputs& bucket) {
  static constexpr char kHex[] = "0123456789abcdef";
  nlohmann::json keys = nlohmann::json::object();
  for (const auto& [name, value] : bucket.encryption_keys) {
    std::string hex;
    for (const char c : value) {
      hex += kHex[static_cast<unsigned char>(c) >> 4];
      hex += kHex[static_cast<unsigned char>(c) & 0xf];
    }
    keys[name] = std::move(hex);
  }
  return nlohmann::json{{"keyName", bucket.encryption_key_name}, {"keys", std::move(keys)}}.dump() + "\n";
}

}  // namespace

const std::vector<PipelinePart>& AllPipelineParts() {
  static const std::vector<PipelinePart> kParts = {
      PipelinePart::kNats,         PipelinePart::kRedis,      PipelinePart::kEventsListener,
      PipelinePart::kProcessor,    PipelinePart::kSynchronizer, PipelinePart::kReconciler,
      PipelinePart::kMetricsExporter};
  return kParts;
}

std::string_view PartName(PipelinePart part) {
  switch (part) {
    case PipelinePart::kNats: return "nats";
    case PipelinePart::kRedis: return "redis";
    case PipelinePart::kEventsListener: return "eventsListener";
    case PipelinePart::kProcessor: return "processor";
    case PipelinePart::kSynchronizer: return "synchronizer";
    case PipelinePart::kReconciler: return "reconciler";
    case PipelinePart::kMetricsExporter: return "metricsExporter";
  }
  return "unknown";
}

std::string_view PartSuffix(PipelinePart part) {
  switch (part) {
    case PipelinePart::kNats: return "nats";
    case PipelinePart::kRedis: return "redis";
    case PipelinePart::kEventsListener: return "eventslistener";
    case PipelinePart::kProcessor: return "processor";
    case PipelinePart::kSynchronizer: return "synchronizer";
    case PipelinePart::kReconciler: return "reconciler";
    case PipelinePart::kMetricsExporter: return "metricsexporter";
  }
  return "unknown";
}

ComponentKind ComponentKindOf(PipelinePart part) {
  switch (part) {
    case PipelinePart::kNats: return ComponentKind::kNats;
    case PipelinePart::kRedis: return ComponentKind::kRedis;
    case PipelinePart::kEventsListener: return ComponentKind::kEventsListener;
    case PipelinePart::kProcessor: return ComponentKind::kProcessor;
    case PipelinePart::kSynchronizer: return ComponentKind::kSynchronizer;
    case PipelinePart::kReconciler: return ComponentKind::kReconciler;
    case PipelinePart::kMetricsExporter: return ComponentKind::kMetricsExporter;
  }
  return ComponentKind::kNats;
}

std::optional<ComponentId> KubesyncComponentOf(PipelinePart part) {
  switch (part) {
    case PipelinePart::kEventsListener: return ComponentId::kEventsListener;
    case PipelinePart::kProcessor: return ComponentId::kProcessor;
    case PipelinePart::kSynchronizer: return ComponentId::kSynchronizer;
    case PipelinePart::kReconciler: return ComponentId::kReconciler;
    case PipelinePart::kMetricsExporter: return ComponentId::kMetricsExporter;
    case PipelinePart::kNats:
    case PipelinePart::kRedis: return std::nullopt;
  }
  return std::nullopt;
}

bool IsPipelineComponent(PipelinePart part) {
  return part == PipelinePart::kEventsListener || part == PipelinePart::kProcessor ||
         part == PipelinePart::kSynchronizer || part == PipelinePart::kReconciler;
}

std::string PartObjectName(std::string_view ls_name, PipelinePart part) {
  return std::string(ls_name) + "-" + std::string(PartSuffix(part));
}

std::vector<std::string> ServerDnsNames(const kube::ObjectKey& ls, PipelinePart server) {
  const std::string service = PartObjectName(ls.name, server);
  std::vector<std::string> names = {service, service + "." + ls.ns, service + "." + ls.ns + ".svc",
                                    service + "." + ls.ns + ".svc.cluster.local"};
  if (server == PipelinePart::kNats) {
    const std::string routes = NatsRoutesServiceName(ls) + "." + ls.ns + ".svc";
    names.push_back("*." + routes);
    names.push_back("*." + routes + ".cluster.local");
  }
  return names;
}

std::string NatsRoutesServiceName(const kube::ObjectKey& ls) { return PartObjectName(ls.name, PipelinePart::kNats) + "-routes"; }

std::string NatsMemberHost(const kube::ObjectKey& ls, int member) {
  return PartObjectName(ls.name, PipelinePart::kNats) + "-" + std::to_string(member) + "." + NatsRoutesServiceName(ls) +
         "." + ls.ns + ".svc";
}

std::string NatsServerName(const kube::ObjectKey& ls) { return PartObjectName(ls.name, PipelinePart::kNats); }
std::string RedisServerName(const kube::ObjectKey& ls) { return PartObjectName(ls.name, PipelinePart::kRedis); }

const PartPlan* PipelinePlan::Find(PipelinePart part) const {
  for (const PartPlan& p : parts) {
    if (p.part == part) return &p;
  }
  return nullptr;
}

kube::ObjectKey PipelinePlan::key() const {
  return kube::ObjectKey{inputs.live_synchronization.ns, inputs.live_synchronization.name};
}

PipelinePlan PlanPipeline(PipelineInputs inputs, const plugins::kubernetes::LiveSyncConfig& config) {
  PipelinePlan plan;
  plan.observability = config.observability;
  for (PipelinePart part : AllPipelineParts()) {
    if (part == PipelinePart::kMetricsExporter && !config.observability.enabled) continue;
    PartPlan p;
    p.part = part;
    p.settings = config.components.Get(ComponentKindOf(part));
    if (part == PipelinePart::kRedis) {
      p.replicas = 1;
    } else if (IsPipelineComponent(part) && inputs.suspended) {
      p.replicas = 0;
    } else {
      p.replicas = p.settings.replicas;
    }
    plan.parts.push_back(std::move(p));
  }
  plan.inputs = std::move(inputs);
  return plan;
}

KubesyncConfig ConfigFor(const PipelinePlan& plan, const Placement& placement) {
  const PipelineInputs& in = plan.inputs;
  KubesyncConfig config;
  config.live_synchronization = in.live_synchronization;
  config.generation = in.generation;
  config.spec_config = in.spec_config;
  config.source_cluster.identity = in.source_cluster;
  config.source_cluster.kubeconfig_path = FileIn(placement, kSourceKubeconfigFile);
  config.destination_cluster.identity = in.destination_cluster;
  config.destination_cluster.kubeconfig_path = FileIn(placement, kDestinationKubeconfigFile);
  if (in.bucket) {
    BucketRef bucket;
    bucket.identity = in.bucket->identity;
    bucket.provider = in.bucket->provider;
    bucket.endpoint = in.bucket->endpoint;
    bucket.use_ssl = in.bucket->use_ssl;
    bucket.region = in.bucket->region;
    bucket.bucket_name = in.bucket->bucket_name;
    bucket.credentials_path = placement.files_dir;
    bucket.server_side_encryption = in.bucket->server_side_encryption;
    bucket.sse_kms_key_id = in.bucket->sse_kms_key_id;
    if (!in.bucket->encryption_keys.empty()) {
      bucket.encryption_keys_path = FileIn(placement, kBucketEncryptionKeysFile);
    }
    config.bucket = std::move(bucket);
  }
  config.nats_url = placement.nats_url;
  if (const PartPlan* nats = plan.Find(PipelinePart::kNats)) config.nats_replicas = nats->replicas;
  config.redis_addr = placement.redis_addr;
  if (in.credentials) {
    config.security = SecurityRef{placement.files_dir, placement.nats_server_name, placement.redis_server_name};
  }
  return config;
}

std::vector<std::pair<std::string, std::string>> PipelineFiles(const PipelinePlan& plan,
                                                              const Placement& placement) {
  std::vector<std::pair<std::string, std::string>> files;
  // The file carries the fingerprint it belongs to: a pod can tell a stale copy of it
  // (kubesync's kConfigHashEnv, docs/livesynchronization.md "The deployments runner").
  nlohmann::json config = ToJson(ConfigFor(plan, placement));
  config[std::string(kConfigHashField)] = ConfigFingerprint(plan, placement);
  files.emplace_back(kConfigFile, config.dump(2) + "\n");
  files.emplace_back(kSourceKubeconfigFile, plan.inputs.source_kubeconfig);
  files.emplace_back(kDestinationKubeconfigFile, plan.inputs.destination_kubeconfig);
  if (plan.inputs.bucket) {
    files.emplace_back(kAccessKeyIdFile, plan.inputs.bucket->access_key_id);
    files.emplace_back(kSecretAccessKeyFile, plan.inputs.bucket->secret_access_key);
    if (!plan.inputs.bucket->encryption_keys.empty()) {
      files.emplace_back(kBucketEncryptionKeysFile, EncryptionKeysFile(*plan.inputs.bucket));
    }
  }
  if (plan.inputs.credentials) {
    for (auto& file : ClientFiles(*plan.inputs.credentials)) files.push_back(std::move(file));
  }
  return files;
}

std::string ConfigFingerprint(const PipelinePlan& plan, const Placement& placement) {
  KubesyncConfig config = ConfigFor(plan, placement);
  config.source_cluster.identity.resource_version.clear();
  config.destination_cluster.identity.resource_version.clear();
  if (config.bucket) config.bucket->identity.resource_version.clear();
  // Each part is length-prefixed so that moving bytes between parts changes the hash.
  std::string material;
  const auto add = [&material](std::string_view part) {
    material += std::to_string(part.size());
    material += ':';
    material += part;
  };
  add(ToJson(config).dump());
  add(plan.inputs.source_kubeconfig);
  add(plan.inputs.destination_kubeconfig);
  if (plan.inputs.bucket) {
    add(plan.inputs.bucket->access_key_id);
    add(plan.inputs.bucket->secret_access_key);
    // A rotated key restarts the components, which read the keys once.
    if (!plan.inputs.bucket->encryption_keys.empty()) add(EncryptionKeysFile(*plan.inputs.bucket));
  }
  if (plan.inputs.credentials) add(plan.inputs.credentials->Fingerprint());
  // 16 hex digits (64 bits): enough to tell configurations of one object apart.
  return common::Sha256Hex(material, 16);
}

}  // namespace ro::kubesync::runner

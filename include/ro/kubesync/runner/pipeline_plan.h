// What a LiveSynchronization runs (docs/livesynchronization.md, "Components"): the
// pipeline parts of manual 6.2.7 with their settings (spec.config.components, 6.2.6),
// and the `kubesync` configuration file they share (docs/kubesync.md, "Configuration
// file"). Pure rendering shared by every ComponentRunner; only the launcher differs
// (Deployments in the cluster, or local processes).
//
//   PipelineInputs (resolved by the controller: clusters, kubeconfigs, bucket, keys)
//     -> PlanPipeline          which parts, how many replicas, which settings
//     -> ConfigFor(Placement)  the kubesync configuration file for one launcher
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ro/kubesync/component.h"
#include "ro/kubesync/kubesync_config.h"
#include "ro/kubesync/pipeline_security.h"
#include "ro/plugins/kubernetes/component_config.h"
#include "ro/plugins/kubernetes/live_sync_config.h"

namespace ro::kubesync::runner {

// The processes of one LiveSynchronization (manual 6.2.7), in start order: the two
// servers first, then the kubesync components.
enum class PipelinePart {
  kNats,
  kRedis,
  kEventsListener,
  kProcessor,
  kSynchronizer,
  kReconciler,
  kMetricsExporter,
};

// Every part, in start order.
const std::vector<PipelinePart>& AllPipelineParts();

// The status name, as spec.config.components names it: "nats", "redis",
// "eventsListener", "processor", "synchronizer", "reconciler", "metricsExporter".
std::string_view PartName(PipelinePart part);
// The object-name suffix: "<ls>-<suffix>" ("nats", "redis", "eventslistener",
// "processor", "synchronizer", "reconciler", "metricsexporter").
std::string_view PartSuffix(PipelinePart part);
// The spec.config.components key of the part.
plugins::kubernetes::ComponentKind ComponentKindOf(PipelinePart part);
// The `kubesync` subcommand running the part; nullopt for NATS and Redis.
std::optional<ComponentId> KubesyncComponentOf(PipelinePart part);
// True for the parts that carry data flow and stop when suspended (events listener,
// processor, synchronizer, reconciler). NATS, Redis and the metrics exporter keep
// running while suspended, so nothing queued or recorded is lost.
bool IsPipelineComponent(PipelinePart part);

// "<ls name>-<PartSuffix>", the name of every object (or process group) of a part.
std::string PartObjectName(std::string_view ls_name, PipelinePart part);

// The Bucket of spec.config.bucketName, resolved (manual 5.3, 6.2.3), with its keys.
struct BucketInputs {
  ObjectIdentity identity;            // the Bucket object
  std::string provider = "generic";   // "generic" | "awsS3" | "gcpCloudStorage"
  std::string endpoint;               // generic: host[:port]
  bool use_ssl = false;               // generic
  std::string region;                 // awsS3
  std::string bucket_name;            // the object-store bucket
  std::string access_key_id;
  std::string secret_access_key;
  // spec.encryption.serverSide: "", "AES256" or "aws:kms", and the KMS key id.
  std::string server_side_encryption;
  std::string sse_kms_key_id;
  // spec.encryption.clientSide: the write key's name and every decoded key of the key
  // Secret (name -> 32 bytes); empty map: client-side encryption off.
  std::string encryption_key_name;
  std::map<std::string, std::string> encryption_keys;
};

// Everything the controller resolved for one LiveSynchronization. Plain value type.
struct PipelineInputs {
  ObjectIdentity live_synchronization;  // namespace, name, uid
  // Its metadata.generation (KubesyncConfig::generation): a spec change rolls the
  // components, and the new ones' messages are theirs alone.
  std::int64_t generation = 0;
  // spec.config, verbatim (written into the configuration file). Never null.
  std::shared_ptr<const nlohmann::json> spec_config;
  ObjectIdentity source_cluster;       // the KubernetesCluster objects
  ObjectIdentity destination_cluster;
  std::string source_kubeconfig;       // content of their Secrets' kubeconfig.yaml
  std::string destination_kubeconfig;
  std::optional<BucketInputs> bucket;  // set when spec.config.bucketName is
  bool suspended = false;              // spec.suspend
  // The pipeline's credentials (docs/security.md): NATS and Redis users, TLS, the
  // JetStream key. nullopt = security off (the controller's explicit opt-out): the
  // servers accept anyone and the configuration file has no "security".
  std::optional<PipelineCredentials> credentials;
};

// One part as it should run.
struct PartPlan {
  PipelinePart part = PipelinePart::kNats;
  // Desired replicas: components.<part>.replicas, 0 for a pipeline component while
  // suspended, always 1 for NATS and Redis (single servers; clustering them is not
  // supported, so the field is ignored for them).
  std::int32_t replicas = 1;
  // components.<part> with defaults (log level, pull policy, resources).
  plugins::kubernetes::ComponentConfig settings;
};

// The whole component set of one LiveSynchronization. Plain value type.
struct PipelinePlan {
  PipelineInputs inputs;
  plugins::kubernetes::ObservabilityConfig observability;
  // The parts that exist, in start order: NATS, Redis, the four pipeline components,
  // and the metrics exporter only when observability.enabled.
  std::vector<PartPlan> parts;

  // The plan of `part`, or nullptr when it is not part of the set.
  const PartPlan* Find(PipelinePart part) const;
  // The LiveSynchronization's namespace/name.
  kube::ObjectKey key() const;
};

// Builds the plan from the inputs and the parsed spec.config (pure).
PipelinePlan PlanPipeline(PipelineInputs inputs, const plugins::kubernetes::LiveSyncConfig& config);

// File names inside the directory a launcher gives the configuration and credentials
// (the Secret's keys in the Deployments; files in the runtime dir for local processes).
inline constexpr std::string_view kConfigFile = "config.json";
// The member of config.json holding its ConfigFingerprint, and the environment variable
// a deployments-runner pod gets it in: a pod whose mounted Secret is older than its pod
// template (the kubelet may hand a new pod its cached copy) waits for the current one
// instead of running with the previous configuration.
inline constexpr std::string_view kConfigHashField = "configHash";
inline constexpr std::string_view kConfigHashEnv = "KUBESYNC_CONFIG_HASH";
inline constexpr std::string_view kSourceKubeconfigFile = "source-kubeconfig.yaml";
inline constexpr std::string_view kDestinationKubeconfigFile = "destination-kubeconfig.yaml";
// The names BucketRef::credentials_path expects (kubesync_config.h).
inline constexpr std::string_view kAccessKeyIdFile = "accessKeyID";
inline constexpr std::string_view kSecretAccessKeyFile = "secretAccessKey";
// The client-side encryption keys (BucketRef::encryption_keys_path), only when on.
inline constexpr std::string_view kBucketEncryptionKeysFile = "bucketEncryptionKeys.json";

// Where one launcher puts things.
struct Placement {
  // Directory holding the files above (e.g. "/etc/kubesync").
  std::string files_dir;
  std::string nats_url;    // "nats://<ls>-nats:4222"
  std::string redis_addr;  // "<ls>-redis:6379"
  // The names the components expect in nats-server's and redis-server's certificates
  // ("<ls>-nats", "<ls>-redis").
  std::string nats_server_name;
  std::string redis_server_name;
};

// The DNS names of a pipeline server's certificate (`server` kNats or kRedis), e.g.
// "<ls>-nats" (the name clients verify, NatsServerName), "<ls>-nats.<ns>",
// "<ls>-nats.<ns>.svc", "<ls>-nats.<ns>.svc.cluster.local", and for NATS the members of
// its cluster, "*.<ls>-nats-routes.<ns>.svc" (and ".cluster.local"): the names the
// members dial each other's routes by. GenerateCredentials adds IP 127.0.0.1.
std::vector<std::string> ServerDnsNames(const kube::ObjectKey& ls, PipelinePart server);
// The headless Service of a NATS cluster's StatefulSet, "<ls>-nats-routes".
std::string NatsRoutesServiceName(const kube::ObjectKey& ls);
// The DNS name of member `member` (0-based) of that StatefulSet,
// "<ls>-nats-<member>.<ls>-nats-routes.<ns>.svc".
std::string NatsMemberHost(const kube::ObjectKey& ls, int member);
std::string NatsServerName(const kube::ObjectKey& ls);
std::string RedisServerName(const kube::ObjectKey& ls);

// The configuration file's content (kubesync_config.h) for `placement`: kubeconfig
// paths and the bucket's credentials_path point into files_dir; no secret is inline.
KubesyncConfig ConfigFor(const PipelinePlan& plan, const Placement& placement);

// The files a launcher writes into files_dir, name -> content: config.json (ToJson of
// ConfigFor, plus kConfigHashField: ConfigFingerprint), both kubeconfigs, the bucket keys when there is a bucket, its client-side
// encryption keys when they are on, and with credentials the client files of every
// component role (ClientFiles).
std::vector<std::pair<std::string, std::string>> PipelineFiles(const PipelinePlan& plan,
                                                              const Placement& placement);

// 16 hex digits of SHA-256 over everything the kubesync components read at start-up:
// the configuration file and every file's content. A change means the components must
// restart (they read the file once). The clusters' and bucket's resourceVersions are
// left out: they move with every status write of those objects, which must not restart
// the pipeline (they only label log lines).
std::string ConfigFingerprint(const PipelinePlan& plan, const Placement& placement);

}  // namespace ro::kubesync::runner

// The configuration file of the `kubesync` binary (docs/kubesync.md, "Configuration
// file"): which LiveSynchronization a component works for, its spec.config verbatim, the
// two clusters, the optional bucket and the NATS/Redis addresses. The LiveSynchronization
// controller writes it (ToJson) into a Secret mounted by every component; the components
// read it (LoadKubesyncConfig).
//
//   {"liveSynchronization": {"namespace", "name", "uid", "generation"},
//    "config": <spec.config verbatim>,
//    "sourceCluster": {"name", "namespace", "uid", "resourceVersion", "kubeconfigPath"},
//    "destinationCluster": {... same ...},
//    "bucket": null | {"name", "namespace", "uid", "resourceVersion", "provider",
//                      "endpoint", "useSSL", "region", "bucketName",
//                      "credentialsPath" | ("accessKeyID", "secretAccessKey"),
//                      "serverSideEncryption", "sseKmsKeyId", "encryptionKeysPath"},
//    "natsUrl": "nats://127.0.0.1:4222", "natsReplicas": 1, "redisAddr": "127.0.0.1:6379",
//    "security": null | {"credentialsDir", "natsServerName"}}
//
// Secrets (bucket keys, kubeconfigs) never appear in log fields: BucketRef's
// credentials are only handed to the S3 client.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "ro/plugins/s3_client.h"

namespace ro::kubesync {

// The file is missing, not JSON, or a field is missing or has the wrong type. field()
// names it as a path ("sourceCluster.kubeconfigPath", "bucket.provider"), "" for the
// file as a whole.
class KubesyncConfigError : public std::runtime_error {
 public:
  KubesyncConfigError(std::string field, const std::string& message);
  const std::string& field() const noexcept { return field_; }

 private:
  std::string field_;
};

// Identity of a Kubernetes object for log fields (manual 6.2.4 sourceCluster, bucket).
struct ObjectIdentity {
  std::string name;
  std::string ns;
  std::string uid;
  std::string resource_version;
};

// A KubernetesCluster asset and how to reach it.
struct ClusterRef {
  ObjectIdentity identity;
  // A kubeconfig file (the KubernetesCluster's secret, key kubeconfig.yaml, mounted).
  std::string kubeconfig_path;
};

// The Bucket asset of spec.config.bucketName and its connection settings.
struct BucketRef {
  ObjectIdentity identity;
  // "generic" (spec.generic), "awsS3" or "gcpCloudStorage" (manual 9.1).
  std::string provider = "generic";
  std::string endpoint;     // host[:port], generic only
  bool use_ssl = true;      // generic only
  std::string region;       // awsS3 (required); others: optional signing-region override
  std::string bucket_name;  // the object-store bucket
  // Either a directory holding the files `accessKeyID` and `secretAccessKey` (the
  // Bucket's Secret mounted as a volume; wins when set) or the keys inline.
  std::string credentials_path;
  std::string access_key_id;
  std::string secret_access_key;
  // S3 server-side encryption (Bucket spec.encryption.serverSide): "", "AES256",
  // "aws:kms", and the KMS key id.
  std::string server_side_encryption;
  std::string sse_kms_key_id;
  // Client-side encryption (Bucket spec.encryption.clientSide): a JSON file
  // {"keyName": "<write key>", "keys": {"<name>": "<64 hex digits>", ...}} written
  // from the key Secret (runner::kBucketEncryptionKeysFile); empty: off.
  std::string encryption_keys_path;
};

// How the components authenticate to NATS and Redis and verify NATS (docs/security.md).
// Absent ("security": null) = no credentials, no TLS: an explicit opt-out the components
// log as a warning.
struct SecurityRef {
  // Directory of the client files (pipeline_security.h: ca.crt, nats-<role>.password,
  // redis-<role>.password); each component reads its own role's.
  std::string credentials_dir;
  // The names nats-server's and redis-server's certificates must carry ("<ls>-nats",
  // "<ls>-redis").
  std::string nats_server_name;
  std::string redis_server_name;
};

// One component's view of its LiveSynchronization. Plain value type.
struct KubesyncConfig {
  ObjectIdentity live_synchronization;  // namespace, name, uid (resource_version unused)
  // The LiveSynchronization's metadata.generation this file was written for (0 when
  // unknown): stamped on every message the component publishes (Envelope::
  // config_generation); a message with a newer one is NAKed (docs/kubesync.md,
  // "Configuration changes").
  std::int64_t generation = 0;
  // spec.config of the LiveSynchronization, verbatim (ParseLiveSyncConfig's input).
  std::shared_ptr<const nlohmann::json> spec_config;
  ClusterRef source_cluster;
  ClusterRef destination_cluster;
  std::optional<BucketRef> bucket;
  // One URL, or a comma-separated list: the members of a JetStream cluster.
  std::string nats_url = "nats://127.0.0.1:4222";
  // Replicas of the pipeline's stream and tombstone bucket: the number of nats-servers in
  // the JetStream cluster behind nats_url (spec.config.components.nats.replicas): 1, 3 or 5.
  int nats_replicas = 1;
  std::string redis_addr = "127.0.0.1:6379";
  std::optional<SecurityRef> security;
};

// Parses the JSON document above. Required: liveSynchronization.namespace/name,
// config (an object), both clusters' name and kubeconfigPath, and for a bucket its
// provider, bucketName and credentials. Throws KubesyncConfigError.
KubesyncConfig KubesyncConfigFromJson(const nlohmann::json& document);

// Reads and parses the file at `path`. Throws KubesyncConfigError.
KubesyncConfig LoadKubesyncConfig(const std::string& path);

// The JSON document (the writer's side); KubesyncConfigFromJson reads it back to the
// same values.
nlohmann::json ToJson(const KubesyncConfig& config);

// The S3 client configuration of `bucket`, credentials read from credentials_path when
// set, the cipher from encryption_keys_path when set. Throws KubesyncConfigError
// (unreadable credentials or keys file, unknown provider), plugins::S3ConfigError (bad
// endpoint) or plugins::BucketEncryptionError (no usable write key).
plugins::S3Config BucketS3Config(const BucketRef& bucket);

}  // namespace ro::kubesync

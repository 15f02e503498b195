#include "taskrun/run_target.h"

#include <utility>

#include <nlohmann/json.hpp>

#include "bucket/bucket_controller.h"
#include "ro/runtime/conditions.h"
#include "kubernetescluster/kubernetescluster_controller.h"
#include "ro/kube/client.h"
#include "ro/kube/config.h"
#include "ro/kube/errors.h"
#include "ro/kube/store.h"
#include "ro/runtime/cluster_kubeconfig.h"
#include "ro/runtime/secrets.h"

namespace ro::controllers {

using nlohmann::json;

namespace {

plugins::tasks::AssetIdentity IdentityOf(const json& object) {
  const json& metadata = object.at("metadata");
  return {metadata.value("name", ""), metadata.value("namespace", ""), metadata.value("uid", ""),
          metadata.value("resourceVersion", "")};
}

// Secret ns/name, or ReferenceError SecretNotFound naming who refers to it.
json RequireSecret(kube::DynamicClient& client, const std::string& ns, const std::string& name,
                   const std::string& referrer) {
  std::optional<json> secret = runtime::GetSecret(client, ns, name);
  if (!secret) {
    throw ReferenceError("SecretNotFound",
                         "Secret " + ns + "/" + name + " (" + referrer + ") does not exist");
  }
  return std::move(*secret);
}

std::string RequireKey(const json& secret, const std::string& key, const std::string& referrer) {
  const std::string where = "Secret " + secret.at("metadata").value("namespace", "") + "/" +
                            secret.at("metadata").value("name", "") + " (" + referrer + ")";
  std::optional<std::string> value;
  try {
    value = runtime::SecretValue(secret, key);
  } catch (const std::invalid_argument& e) {
    throw ReferenceError("SecretKeyMissing", where + ": key " + key + ": " + e.what());
  }
  if (!value) throw ReferenceError("SecretKeyMissing", where + " has no key " + key);
  return std::move(*value);
}

}  // namespace

sync::DatabaseTarget ResolveDatabase(kube::DynamicClient& client, const kube::Store& databases,
                                     const std::string& ns, const std::string& name, const std::string& field) {
  const std::string ref = "Database " + ns + "/" + name + " (" + field + ")";
  const kube::ObjectPtr database = databases.Get(kube::ObjectKey{ns, name}.ToString());
  if (!database) throw ReferenceError("DatabaseNotFound", ref + " does not exist");
  const json status = database->value("status", json::object());
  const std::optional<runtime::Condition> ready = runtime::FindStatusCondition(
      status.is_object() ? status.value("conditions", json::array()) : json::array(), runtime::kReadyCondition);
  if (!ready || ready->status != runtime::ConditionStatus::kTrue) {
    throw ReferenceError("DatabaseNotReady", ref + " is not Ready" + (ready ? ": " + ready->message : std::string()));
  }
  const json spec = database->value("spec", json::object());
  const json zookeeper = spec.is_object() ? spec.value("zookeeper", json::object()) : json::object();
  sync::DatabaseTarget out;
  out.name = name;
  for (const json& server : zookeeper.value("client", json::object()).value("servers", json::array())) {
    if (server.is_string()) out.servers.push_back(server.get<std::string>());
  }
  const std::string secret_name = zookeeper.value("admin", json::object()).value("secretName", "");
  if (secret_name.empty()) return out;
  const std::string referrer = "spec.zookeeper.admin.secretName of " + ref;
  const json secret = RequireSecret(client, ns, secret_name, referrer);
  out.digest = plugins::ZooKeeperDigest{RequireKey(secret, "username", referrer), RequireKey(secret, "password", referrer)};
  return out;
}

namespace {

kube::RestConfig WithQps(kube::RestConfig config, double qps) {
  config.qps = qps;
  return config;
}

}  // namespace

TargetResolver::TargetResolver(kube::DynamicClient& local, const kube::Store& clusters,
                               const kube::Store& buckets,
                               std::chrono::milliseconds cluster_timeout, double run_qps,
                               const kube::Store* databases)
    : local_(local),
      run_local_(std::make_unique<kube::DynamicClient>(WithQps(local.config(), run_qps))),
      run_qps_(run_qps),
      clusters_(clusters),
      buckets_(buckets),
      cluster_timeout_(cluster_timeout),
      databases_(databases) {}

sync::DatabaseTarget TargetResolver::Database(const std::string& ns, const std::string& name,
                                              const std::string& field) const {
  if (databases_ == nullptr) throw std::logic_error("TargetResolver: no Databases cache");
  return ResolveDatabase(local_, *databases_, ns, name, field);
}

std::unique_ptr<ResolvedTarget> TargetResolver::ResolveZooKeeper(
    const std::string& ns, const plugins::tasks::RestoreConfig& config) const {
  auto out = std::make_unique<ResolvedTarget>();
  out->database = Database(ns, config.destination_name, "spec.config.destinationName");
  ResolveBucket(ns, config.bucket_name, out.get());
  return out;
}

std::unique_ptr<ResolvedTarget> TargetResolver::Resolve(
    const std::string& ns, const plugins::tasks::TransformationConfig& config) const {
  auto out = std::make_unique<ResolvedTarget>();
  ResolveDestination(ns, config.destination_name, out.get());
  if (config.UsesOriginals()) ResolveBucket(ns, config.bucket_name, out.get());
  return out;
}

std::unique_ptr<ResolvedTarget> TargetResolver::Resolve(
    const std::string& ns, const plugins::tasks::RestoreConfig& config) const {
  auto out = std::make_unique<ResolvedTarget>();
  ResolveDestination(ns, config.destination_name, out.get());
  ResolveBucket(ns, config.bucket_name, out.get());
  return out;
}

void TargetResolver::ResolveDestination(const std::string& ns, const std::string& name,
                                        ResolvedTarget* out) const {
  if (name.empty()) {
    out->target.destination = run_local_.get();
    return;
  }
  out->remote = ClusterClient(ns, name, "spec.config.destinationName", &out->target.destination_cluster);
  out->target.destination = out->remote.get();
}

void TargetResolver::ResolveBucket(const std::string& ns, const std::string& name, ResolvedTarget* out) const {
  out->originals = BucketClient(ns, name, "spec.config.bucketName", &out->target.bucket);
  plugins::S3Client* client = out->originals.get();
  out->target.read_original = [client](const std::string& key) { return client->GetObject(key); };
}

std::unique_ptr<kube::DynamicClient> TargetResolver::ClusterClient(
    const std::string& ns, const std::string& name, const std::string& field,
    plugins::tasks::AssetIdentity* identity) const {
  const kube::ObjectPtr cluster = clusters_.Get(kube::ObjectKey{ns, name}.ToString());
  if (!cluster) {
    throw ReferenceError("ClusterNotFound",
                         "KubernetesCluster " + ns + "/" + name + " (" + field + ") does not exist");
  }
  kube::RestConfig config;
  try {
    config = runtime::ResolveClusterKubeconfig(*cluster, [this](const std::string& secret_ns, const std::string& secret) {
               return runtime::GetSecret(local_, secret_ns, secret);
             }).config;
  } catch (const runtime::KubeconfigReferenceError& e) {
    throw ReferenceError(e.reason(), std::string("spec.secretName of KubernetesCluster ") + name + ": " + e.what());
  }
  config.timeout = cluster_timeout_;
  config.qps = run_qps_;
  std::unique_ptr<kube::DynamicClient> client;
  try {
    client = std::make_unique<kube::DynamicClient>(std::move(config));
  } catch (const kube::ConfigError& e) {
    throw ReferenceError("InvalidKubeconfig", "KubernetesCluster " + ns + "/" + name + ": " + e.what());
  }
  if (identity != nullptr) *identity = IdentityOf(*cluster);
  return client;
}

std::unique_ptr<plugins::S3Client> TargetResolver::BucketClient(
    const std::string& ns, const std::string& name, const std::string& field,
    plugins::tasks::AssetIdentity* identity) const {
  const kube::ObjectPtr bucket = buckets_.Get(kube::ObjectKey{ns, name}.ToString());
  if (!bucket) {
    throw ReferenceError("BucketNotFound", "Bucket " + ns + "/" + name + " (" + field + ") does not exist");
  }
  const json spec = bucket->value("spec", json::object());
  plugins::S3Config config;
  try {
    config = plugins::S3ConfigFromBucketSpec(spec, plugins::S3Credentials{});
  } catch (const plugins::S3ConfigError& e) {
    throw ReferenceError("InvalidBucket", "Bucket " + ns + "/" + name + ": " + e.what());
  }
  std::string secret_name;
  for (const std::string& candidate : BucketSecretNames(*bucket)) {
    if (!candidate.empty()) {
      secret_name = candidate;
      break;
    }
  }
  if (secret_name.empty()) {
    throw ReferenceError("InvalidBucket",
                         "Bucket " + ns + "/" + name + " names no Secret with its access keys");
  }
  const std::string referrer = "access keys of Bucket " + name;
  const json secret = RequireSecret(local_, ns, secret_name, referrer);
  config.credentials = plugins::S3Credentials{RequireKey(secret, kAccessKeyIdKey, referrer),
                                              RequireKey(secret, kSecretAccessKeyKey, referrer)};
  // The originals' key: the same Bucket asset and Secret the processor encrypts with.
  try {
    const std::optional<BucketEncryptionKeys> keys = ReadBucketEncryptionKeys(
        *bucket, [this](const std::string& secret_ns, const std::string& key_secret) {
          return runtime::GetSecret(local_, secret_ns, key_secret);
        });
    if (keys) config.cipher = BucketCipherOf(*keys);
  } catch (const plugins::BucketEncryptionError& e) {
    throw ReferenceError(e.reason_name(), "Bucket " + ns + "/" + name + ": " + e.what());
  } catch (const plugins::S3ConfigError& e) {
    throw ReferenceError("InvalidBucket", "Bucket " + ns + "/" + name + ": " + e.what());
  }
  if (identity != nullptr) *identity = IdentityOf(*bucket);
  return std::make_unique<plugins::S3Client>(std::move(config));
}

}  // namespace ro::controllers

#include "ro/kubesync/kubesync_config.h"

#include <cstdint>
#include <filesystem>
#include <map>
#include <fstream>
#include <sstream>
#include <utility>

#include <nlohmann/json.hpp>

#include "ro/plugins/bucket_encryption.h"

namespace ro::kubesync {
namespace {

using nlohmann::json;

std::string Join(std::string_view parent, std::string_view key) {
  return parent.empty() ? std::string(key) : std::string(parent) + "." + std::string(key);
}

const json* Member(const json& object, std::string_view key) {
  const auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

std::string OptionalString(const json& object, std::string_view parent, std::string_view key) {
  const json* value = Member(object, key);
  if (value == nullptr) return "";
  if (!value->is_string()) throw KubesyncConfigError(Join(parent, key), "must be a string");
  return value->get<std::string>();
}

std::int64_t OptionalGeneration(const json& object, std::string_view parent, std::string_view key) {
  const json* value = Member(object, key);
  if (value == nullptr || value->is_null()) return 0;
  if (!value->is_number_integer() || value->get<std::int64_t>() < 0) {
    throw KubesyncConfigError(Join(parent, key), "must be a non-negative integer");
  }
  return value->get<std::int64_t>();
}

std::string RequiredString(const json& object, std::string_view parent, std::string_view key) {
  std::string value = OptionalString(object, parent, key);
  if (value.empty()) throw KubesyncConfigError(Join(parent, key), "is required");
  return value;
}

const json& RequiredObject(const json& object, std::string_view parent, std::string_view key) {
  const json* value = Member(object, key);
  if (value == nullptr) throw KubesyncConfigError(Join(parent, key), "is required");
  if (!value->is_object()) throw KubesyncConfigError(Join(parent, key), "must be an object");
  return *value;
}

ObjectIdentity IdentityFromJson(const json& object, std::string_view field, bool name_required) {
  ObjectIdentity id;
  id.name = name_required ? RequiredString(object, field, "name") : OptionalString(object, field, "name");
  id.ns = OptionalString(object, field, "namespace");
  id.uid = OptionalString(object, field, "uid");
  id.resource_version = OptionalString(object, field, "resourceVersion");
  return id;
}

json IdentityToJson(const ObjectIdentity& id) {
  return {{"name", id.name}, {"namespace", id.ns}, {"uid", id.uid}, {"resourceVersion", id.resource_version}};
}

ClusterRef ClusterFromJson(const json& document, std::string_view key) {
  const json& object = RequiredObject(document, "", key);
  ClusterRef cluster;
  cluster.identity = IdentityFromJson(object, key, /*name_required=*/true);
  cluster.kubeconfig_path = RequiredString(object, key, "kubeconfigPath");
  return cluster;
}

json ClusterToJson(const ClusterRef& cluster) {
  json out = IdentityToJson(cluster.identity);
  out["kubeconfigPath"] = cluster.kubeconfig_path;
  return out;
}

BucketRef BucketFromJson(const json& object) {
  constexpr std::string_view kField = "bucket";
  BucketRef bucket;
  bucket.identity = IdentityFromJson(object, kField, /*name_required=*/false);
  bucket.provider = OptionalString(object, kField, "provider");
  if (bucket.provider.empty()) bucket.provider = "generic";
  if (bucket.provider != "generic" && bucket.provider != "awsS3" && bucket.provider != "gcpCloudStorage") {
    throw KubesyncConfigError("bucket.provider", "must be generic, awsS3 or gcpCloudStorage, got \"" +
                                                     bucket.provider + "\"");
  }
  bucket.endpoint = OptionalString(object, kField, "endpoint");
  if (bucket.provider == "generic" && bucket.endpoint.empty()) {
    throw KubesyncConfigError("bucket.endpoint", "is required for the generic provider");
  }
  if (const json* ssl = Member(object, "useSSL")) {
    if (!ssl->is_boolean()) throw KubesyncConfigError("bucket.useSSL", "must be a boolean");
    bucket.use_ssl = ssl->get<bool>();
  }
  bucket.region = OptionalString(object, kField, "region");
  if (bucket.provider == "awsS3" && bucket.region.empty()) {
    throw KubesyncConfigError("bucket.region", "is required for the awsS3 provider");
  }
  bucket.bucket_name = RequiredString(object, kField, "bucketName");
  bucket.credentials_path = OptionalString(object, kField, "credentialsPath");
  bucket.access_key_id = OptionalString(object, kField, "accessKeyID");
  bucket.secret_access_key = OptionalString(object, kField, "secretAccessKey");
  bucket.server_side_encryption = OptionalString(object, kField, "serverSideEncryption");
  bucket.sse_kms_key_id = OptionalString(object, kField, "sseKmsKeyId");
  bucket.encryption_keys_path = OptionalString(object, kField, "encryptionKeysPath");
  if (bucket.credentials_path.empty() && (bucket.access_key_id.empty() || bucket.secret_access_key.empty())) {
    throw KubesyncConfigError("bucket.credentialsPath",
                              "is required unless accessKeyID and secretAccessKey are given");
  }
  return bucket;
}

json BucketToJson(const BucketRef& bucket) {
  json out = IdentityToJson(bucket.identity);
  out["provider"] = bucket.provider;
  out["endpoint"] = bucket.endpoint;
  out["useSSL"] = bucket.use_ssl;
  out["region"] = bucket.region;
  out["bucketName"] = bucket.bucket_name;
  if (!bucket.credentials_path.empty()) out["credentialsPath"] = bucket.credentials_path;
  if (!bucket.access_key_id.empty()) out["accessKeyID"] = bucket.access_key_id;
  if (!bucket.secret_access_key.empty()) out["secretAccessKey"] = bucket.secret_access_key;
  if (!bucket.server_side_encryption.empty()) out["serverSideEncryption"] = bucket.server_side_encryption;
  if (!bucket.sse_kms_key_id.empty()) out["sseKmsKeyId"] = bucket.sse_kms_key_id;
  if (!bucket.encryption_keys_path.empty()) out["encryptionKeysPath"] = bucket.encryption_keys_path;
  return out;
}

// One key of a mounted Secret: the file's content without a trailing newline.
std::string ReadSecretFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw KubesyncConfigError("bucket.credentialsPath", "cannot read " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  std::string value = text.str();
  while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.pop_back();
  if (value.empty()) throw KubesyncConfigError("bucket.credentialsPath", path.string() + " is empty");
  return value;
}

// The client-side cipher from the keys file (kubesync_config.h, encryptionKeysPath).
std::shared_ptr<const plugins::BucketCipher> CipherFromKeysFile(const std::string& path) {
  constexpr std::string_view kField = "bucket.encryptionKeysPath";
  std::ifstream in(path, std::ios::binary);
  if (!in) throw KubesyncConfigError(std::string(kField), "cannot read " + path);
  const json document = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!document.is_object() || !document.contains("keys") || !document["keys"].is_object()) {
    throw KubesyncConfigError(std::string(kField), path + " is not {\"keyName\", \"keys\": {...}}");
  }
  const std::string key_name = OptionalString(document, kField, "keyName");
  std::map<std::string, std::string> values;
  for (const auto& [name, hex] : document["keys"].items()) {
    if (!hex.is_string() || hex.get_ref<const std::string&>().size() % 2 != 0 ||
        hex.get_ref<const std::string&>().find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
      throw KubesyncConfigError(std::string(kField), path + ": key \"" + name + "\" is not hex");
    }
    std::string bytes;
    const std::string& text = hex.get_ref<const std::string&>();
    for (std::size_t i = 0; i < text.size(); i += 2) {
      bytes += static_cast<char>(std::stoi(text.substr(i, 2), nullptr, 16));
    }
    values[name] = std::move(bytes);
  }
  return plugins::BucketCipherFromSecret(values, key_name, "the bucket encryption keys (" + path + ")");
}

}  // namespace

KubesyncConfigError::KubesyncConfigError(std::string field, const std::string& message)
    : std::runtime_error(field.empty() ? "kubesync config: " + message
                                       : "kubesync config: " + field + ": " + message),
      field_(std::move(field)) {}

KubesyncConfig KubesyncConfigFromJson(const json& document) {
  if (!document.is_object()) throw KubesyncConfigError("", "the document must be a JSON object");
  KubesyncConfig config;
  const json& ls = RequiredObject(document, "", "liveSynchronization");
  config.live_synchronization.ns = RequiredString(ls, "liveSynchronization", "namespace");
  config.live_synchronization.name = RequiredString(ls, "liveSynchronization", "name");
  config.live_synchronization.uid = OptionalString(ls, "liveSynchronization", "uid");
  config.generation = OptionalGeneration(ls, "liveSynchronization", "generation");
  config.spec_config = std::make_shared<const json>(RequiredObject(document, "", "config"));
  config.source_cluster = ClusterFromJson(document, "sourceCluster");
  config.destination_cluster = ClusterFromJson(document, "destinationCluster");
  if (const json* bucket = Member(document, "bucket")) {
    if (!bucket->is_object()) throw KubesyncConfigError("bucket", "must be an object or null");
    config.bucket = BucketFromJson(*bucket);
  }
  if (std::string url = OptionalString(document, "", "natsUrl"); !url.empty()) config.nats_url = std::move(url);
  if (const json* replicas = Member(document, "natsReplicas")) {
    if (!replicas->is_number_integer() || (replicas->get<int>() != 1 && replicas->get<int>() != 3 &&
                                           replicas->get<int>() != 5)) {
      throw KubesyncConfigError("natsReplicas", "must be 1, 3 or 5");
    }
    config.nats_replicas = replicas->get<int>();
  }
  if (std::string addr = OptionalString(document, "", "redisAddr"); !addr.empty()) {
    config.redis_addr = std::move(addr);
  }
  if (const json* security = Member(document, "security")) {
    if (!security->is_object()) throw KubesyncConfigError("security", "must be an object or null");
    SecurityRef ref;
    ref.credentials_dir = RequiredString(*security, "security", "credentialsDir");
    ref.nats_server_name = RequiredString(*security, "security", "natsServerName");
    ref.redis_server_name = RequiredString(*security, "security", "redisServerName");
    config.security = std::move(ref);
  }
  return config;
}

KubesyncConfig LoadKubesyncConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw KubesyncConfigError("", "cannot read \"" + path + "\"");
  json document = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (document.is_discarded()) throw KubesyncConfigError("", "\"" + path + "\" is not valid JSON");
  return KubesyncConfigFromJson(document);
}

json ToJson(const KubesyncConfig& config) {
  json out;
  out["liveSynchronization"] = {{"namespace", config.live_synchronization.ns},
                                {"name", config.live_synchronization.name},
                                {"uid", config.live_synchronization.uid},
                                {"generation", config.generation}};
  out["config"] = config.spec_config ? *config.spec_config : json::object();
  out["sourceCluster"] = ClusterToJson(config.source_cluster);
  out["destinationCluster"] = ClusterToJson(config.destination_cluster);
  out["bucket"] = config.bucket ? BucketToJson(*config.bucket) : json(nullptr);
  out["natsUrl"] = config.nats_url;
  out["natsReplicas"] = config.nats_replicas;
  out["redisAddr"] = config.redis_addr;
  out["security"] = config.security ? json{{"credentialsDir", config.security->credentials_dir},
                                           {"natsServerName", config.security->nats_server_name},
                                           {"redisServerName", config.security->redis_server_name}}
                                    : json(nullptr);
  return out;
}

plugins::S3Config BucketS3Config(const BucketRef& bucket) {
  plugins::S3Credentials credentials;
  if (!bucket.credentials_path.empty()) {
    const std::filesystem::path dir(bucket.credentials_path);
    credentials.access_key_id = ReadSecretFile(dir / "accessKeyID");
    credentials.secret_access_key = ReadSecretFile(dir / "secretAccessKey");
  } else {
    credentials.access_key_id = bucket.access_key_id;
    credentials.secret_access_key = bucket.secret_access_key;
  }
  plugins::S3Config s3;
  if (bucket.provider == "awsS3") {
    s3 = plugins::AwsS3BucketConfig(bucket.region, bucket.bucket_name, std::move(credentials));
  } else if (bucket.provider == "gcpCloudStorage") {
    s3 = plugins::GcpCloudStorageBucketConfig(bucket.bucket_name, std::move(credentials));
  } else if (bucket.provider == "generic") {
    s3 = plugins::GenericBucketConfig(bucket.endpoint, bucket.use_ssl, bucket.bucket_name, std::move(credentials));
  } else {
    throw KubesyncConfigError("bucket.provider", "unknown provider \"" + bucket.provider + "\"");
  }
  if (!bucket.region.empty()) s3.region = bucket.region;
  s3.server_side_encryption = bucket.server_side_encryption;
  s3.sse_kms_key_id = bucket.sse_kms_key_id;
  if (!bucket.encryption_keys_path.empty()) s3.cipher = CipherFromKeysFile(bucket.encryption_keys_path);
  return s3;
}

}  // namespace ro::kubesync

#include "bucket/bucket_controller.h"

#include <algorithm>
#include <memory>
#include <utility>

#include <nlohmann/json.hpp>

#include "ro/common/log.h"
#include "ro/common/object_meta.h"
#include "ro/kube/client.h"
#include "ro/kube/informer.h"
#include "ro/runtime/informer_cache.h"
#include "ro/runtime/manager.h"
#include "ro/runtime/options.h"
#include "ro/runtime/secrets.h"

namespace ro::controllers {

using nlohmann::json;
using runtime::ConditionStatus;
using runtime::Observation;

namespace {

constexpr const char* kController = "bucket";
constexpr const char* kProviders[] = {"generic", "awsS3", "gcpCloudStorage"};

// The provider blocks present in `spec`.
std::vector<std::string> ProvidersOf(const json& spec) {
  std::vector<std::string> found;
  for (const char* provider : kProviders) {
    if (spec.contains(provider) && !spec[provider].is_null()) found.emplace_back(provider);
  }
  return found;
}

// S3 answers meaning "this bucket is not at this endpoint/region under this name".
bool IsWrongLocation(const plugins::S3Error& e) {
  return e.http_status() == 301 || e.s3_code() == "PermanentRedirect" ||
         e.s3_code() == "AuthorizationHeaderMalformed" || e.s3_code() == "InvalidBucketName" ||
         e.s3_code() == "IllegalLocationConstraintException";
}

Observation NotReady(const char* reason, std::string message, runtime::StatusFields fields,
                     const BucketOptions& options) {
  return {ConditionStatus::kFalse, reason, std::move(message), std::move(fields), options.recheck_interval};
}

class BucketReconciler final : public runtime::ConditionReconciler {
 public:
  BucketReconciler(const kube::Store& store, runtime::StatusWriter writer,
                   kube::DynamicClient& client, BucketOptions options)
      : ConditionReconciler(BucketType(), store, std::move(writer)),
        client_(client),
        options_(options) {}

 protected:
  Observation Observe(const json& object, std::stop_token /*stop*/) override {
    return ObserveBucket(
        object,
        [this](const std::string& ns, const std::string& name) {
          return runtime::GetSecret(client_, ns, name);
        },
        [this](const plugins::S3Config& config) {
          plugins::S3Config bounded = config;
          bounded.connect_timeout = std::min(bounded.connect_timeout, options_.check_timeout);
          bounded.request_timeout = options_.check_timeout;
          plugins::S3Client(std::move(bounded)).CheckAccess();
        },
        options_);
  }

 private:
  kube::DynamicClient& client_;
  const BucketOptions options_;
};

}  // namespace

runtime::ObjectType BucketType() {
  return {kube::GroupVersionResource{"assets.astronetes.io", "v1alpha1", "buckets"}, "Bucket"};
}

std::vector<std::string> BucketSecretNames(const json& bucket) {
  const json spec = bucket.value("spec", json::object());
  std::vector<std::string> names;
  for (const std::string& provider : ProvidersOf(spec)) {
    if (spec[provider].is_object()) names.push_back(common::StringMember(spec[provider], "secretName"));
  }
  names.push_back(common::StringMember(spec, "secretName"));
  return names;
}

std::vector<std::string> BucketReferencedSecretNames(const json& bucket) {
  std::vector<std::string> names = BucketSecretNames(bucket);
  const json& spec = common::Member(bucket, "spec");
  const json& client = common::Member(common::Member(spec, "encryption"), "clientSide");
  if (client.is_object()) names.push_back(common::StringMember(client, "secretName"));
  return names;
}

std::optional<BucketEncryptionKeys> ReadBucketEncryptionKeys(const json& bucket,
                                                             const BucketSecretReader& read_secret) {
  using plugins::BucketEncryptionError;
  const plugins::BucketEncryptionSpec spec =
      plugins::BucketEncryptionFromSpec(bucket.value("spec", json::object()));
  if (!spec.client_side()) return std::nullopt;
  const std::string ns = common::StringMember(common::Member(bucket, "metadata"), "namespace");
  BucketEncryptionKeys keys;
  keys.key_name = spec.client_key_name;
  keys.secret_ref = "Secret " + ns + "/" + spec.client_secret_name + " (spec.encryption.clientSide.secretName)";
  const std::optional<json> secret = read_secret(ns, spec.client_secret_name);
  if (!secret) {
    throw BucketEncryptionError(BucketEncryptionError::Reason::kKeyMissing, keys.secret_ref + " does not exist");
  }
  for (const char* field : {"stringData", "data"}) {
    const json& entries = common::Member(*secret, field);
    if (!entries.is_object()) continue;
    for (const auto& [name, unused] : entries.items()) {
      try {
        if (std::optional<std::string> value = runtime::SecretValue(*secret, name)) keys.values[name] = *value;
      } catch (const std::invalid_argument& e) {
        throw BucketEncryptionError(BucketEncryptionError::Reason::kBadKey,
                                    keys.secret_ref + " key \"" + name + "\": " + e.what());
      }
    }
  }
  BucketCipherOf(keys);  // proves the write key is there and 32 bytes
  return keys;
}

std::shared_ptr<const plugins::BucketCipher> BucketCipherOf(const BucketEncryptionKeys& keys) {
  return plugins::BucketCipherFromSecret(keys.values, keys.key_name, keys.secret_ref);
}

void AddBucketFlags(runtime::FlagSet& flags, BucketOptions* options) {
  flags.AddDuration("--recheck-interval", &options->recheck_interval,
                    "How often the access to every Bucket is checked again");
  flags.AddDuration("--check-timeout", &options->check_timeout,
                    "Limit of one bucket access check");
}

Observation ObserveBucket(const json& object, const BucketSecretReader& read_secret,
                          const BucketProbe& probe, const BucketOptions& options) {
  const std::string ns = object.at("metadata").value("namespace", "");
  const json spec = object.value("spec", json::object());
  runtime::StatusFields fields{{"provider", std::nullopt},
                               {"endpoint", std::nullopt},
                               {"bucketName", std::nullopt}};

  // The spec first: it decides which Secret to read.
  const std::vector<std::string> providers = ProvidersOf(spec);
  plugins::S3Config config;
  try {
    config = plugins::S3ConfigFromBucketSpec(spec, plugins::S3Credentials{});
  } catch (const plugins::S3ConfigError& e) {
    return NotReady(kReasonBucketInvalidSpec, e.what(), fields, options);
  }
  const std::string& provider = providers.front();  // exactly one, or the spec was invalid
  fields["provider"] = provider;
  fields["endpoint"] = config.endpoint;
  fields["bucketName"] = config.bucket;

  std::string secret_name = common::StringMember(spec[provider], "secretName");
  std::string secret_field = "spec." + provider + ".secretName";
  if (secret_name.empty()) {
    secret_name = common::StringMember(spec, "secretName");
    secret_field = "spec.secretName";
  }
  if (secret_name.empty()) {
    return NotReady(kReasonBucketInvalidSpec,
                    "spec." + provider + ".secretName (or spec.secretName) is required: it names "
                    "the Secret with the access keys",
                    fields, options);
  }
  const std::string secret_ref = "Secret " + ns + "/" + secret_name + " (" + secret_field + ")";
  const std::optional<json> secret = read_secret(ns, secret_name);
  if (!secret) {
    return NotReady(kReasonBucketSecretNotFound, secret_ref + " does not exist", fields, options);
  }
  plugins::S3Credentials credentials;
  try {
    const std::optional<std::string> access_key = runtime::SecretValue(*secret, kAccessKeyIdKey);
    const std::optional<std::string> secret_key =
        runtime::SecretValue(*secret, kSecretAccessKeyKey);
    if (!access_key || !secret_key) {
      return NotReady(kReasonBucketSecretKeyMissing,
                      secret_ref + " needs the keys \"" + kAccessKeyIdKey + "\" and \"" +
                          kSecretAccessKeyKey + "\"; missing: " +
                          (!access_key ? kAccessKeyIdKey : kSecretAccessKeyKey),
                      fields, options);
    }
    credentials = plugins::S3Credentials{*access_key, *secret_key};
  } catch (const std::invalid_argument& e) {
    return NotReady(kReasonBucketSecretKeyMissing, secret_ref + ": " + e.what(), fields, options);
  }
  config.credentials = std::move(credentials);

  try {
    if (const std::optional<BucketEncryptionKeys> keys = ReadBucketEncryptionKeys(object, read_secret)) {
      config.cipher = BucketCipherOf(*keys);
    }
  } catch (const plugins::BucketEncryptionError& e) {
    return NotReady(e.reason() == plugins::BucketEncryptionError::Reason::kKeyMissing
                        ? kReasonBucketEncryptionKeyMissing
                        : kReasonBucketEncryptionKeyInvalid,
                    e.what(), fields, options);
  }

  const std::string where = "bucket \"" + config.bucket + "\" at " +
                            (config.use_ssl ? "https://" : "http://") + config.endpoint;
  try {
    probe(config);
  } catch (const plugins::S3Error& e) {
    switch (e.code()) {
      case plugins::S3Error::Code::kNoSuchBucket:
        return NotReady(kReasonBucketNotFound, "The " + where + " does not exist", fields,
                        options);
      case plugins::S3Error::Code::kInvalidCredentials:
        return NotReady(kReasonBucketInvalidCredentials,
                        "The " + where + " rejected the access keys of " + secret_ref + ": " +
                            e.s3_code(),
                        fields, options);
      case plugins::S3Error::Code::kAccessDenied:
        return NotReady(kReasonBucketAccessDenied,
                        "The access keys of " + secret_ref + " may not list the " + where,
                        fields, options);
      case plugins::S3Error::Code::kUnreachable:
        return NotReady(kReasonBucketUnreachable, "Cannot reach the " + where + ": " + e.what(),
                        fields, options);
      case plugins::S3Error::Code::kOther:
        if (e.retryable()) {
          return NotReady(kReasonBucketUnreachable,
                          "The " + where + " is not serving requests: " + e.what(), fields,
                          options);
        }
        if (IsWrongLocation(e)) {
          return NotReady(kReasonBucketNotFound,
                          "The " + where + " cannot be found there (" + e.s3_code() +
                              "): check name, endpoint and region",
                          fields, options);
        }
        throw;
    }
  }
  // The key id in the message: a rotated key changes the Bucket's status, which
  // reconciles the LiveSynchronizations that use it (their components pick it up).
  const std::string encryption =
      config.cipher ? "; client-side encryption key id " + config.cipher->write_key_id() : "";
  return {ConditionStatus::kTrue, kReasonBucketAccessible,
          "The " + where + " is accessible with the keys of " + secret_ref + encryption, std::move(fields),
          options.recheck_interval};
}

void SetupBucketController(runtime::Manager& manager, const BucketOptions& options) {
  const runtime::ObjectType type = BucketType();
  const kube::Store& buckets = manager.cache().Get(type.gvr).store();
  runtime::StatusWriter writer(manager.client(), manager.recorder(),
                               log::Logger(json{{"controller", kController}}), manager.clock());
  manager
      .NewController(kController, std::make_unique<BucketReconciler>(
                                      buckets, std::move(writer), manager.client(), options))
      .For(type, runtime::OnGenerationChange())
      .Watches(runtime::SecretsGvr(), runtime::MapSecretToReferrers(buckets, BucketReferencedSecretNames),
               runtime::MetadataOnly());
}

}  // namespace ro::controllers

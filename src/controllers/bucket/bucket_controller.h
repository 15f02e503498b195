// The Bucket controller (manual 5.3 and 6.2.3; reasons: docs/assets-bucket.md).
//
// For each Bucket it resolves the provider block (exactly one of generic, awsS3,
// gcpCloudStorage), reads the access keys from the Secret the block names (or
// spec.secretName; keys accessKeyID and secretAccessKey) and proves access with one
// SigV4-signed ListObjectsV2 of at most one key (ro::plugins::S3Client::CheckAccess).
// The result is the Ready condition, with status.provider, status.endpoint and
// status.bucketName. It re-checks every --recheck-interval and at once when the Secret
// changes.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ro/plugins/bucket_encryption.h"
#include "ro/plugins/s3_client.h"
#include "ro/runtime/condition_reconciler.h"
#include "ro/runtime/controller.h"

namespace ro::runtime {
class FlagSet;
class Manager;
}  // namespace ro::runtime

namespace ro::controllers {

// Ready reasons (docs/assets-bucket.md).
inline constexpr const char* kReasonBucketAccessible = "Accessible";
inline constexpr const char* kReasonBucketInvalidSpec = "InvalidSpec";
inline constexpr const char* kReasonBucketSecretNotFound = "SecretNotFound";
inline constexpr const char* kReasonBucketSecretKeyMissing = "SecretKeyMissing";
inline constexpr const char* kReasonBucketInvalidCredentials = "InvalidCredentials";
inline constexpr const char* kReasonBucketAccessDenied = "AccessDenied";
inline constexpr const char* kReasonBucketNotFound = "BucketNotFound";
inline constexpr const char* kReasonBucketUnreachable = "Unreachable";

// Client-side encryption key problems (spec.encryption.clientSide; docs/assets-bucket.md,
// "Encryption"): the same names as plugins::BucketEncryptionError::reason_name().
inline constexpr const char* kReasonBucketEncryptionKeyMissing = "EncryptionKeyMissing";
inline constexpr const char* kReasonBucketEncryptionKeyInvalid = "EncryptionKeyInvalid";

// The Secret keys of the access keys (manual 5.3).
inline constexpr const char* kAccessKeyIdKey = "accessKeyID";
inline constexpr const char* kSecretAccessKeyKey = "secretAccessKey";

struct BucketOptions {
  // Re-check period of every bucket (a Secret change re-checks at once).
  std::chrono::milliseconds recheck_interval{std::chrono::minutes{5}};
  // Limit of one access check (connect + request); an unreachable endpoint must not
  // hold a worker (or the shutdown) for long.
  std::chrono::milliseconds check_timeout{std::chrono::seconds{10}};
};

// assets.astronetes.io/v1alpha1 Bucket.
runtime::ObjectType BucketType();

// The Secret names a Bucket references: the chosen provider block's secretName and the
// spec.secretName fallback (either may be empty).
std::vector<std::string> BucketSecretNames(const nlohmann::json& bucket);

// Every Secret a Bucket depends on: BucketSecretNames plus the client-side encryption
// key Secret (spec.encryption.clientSide.secretName). For Watches(Secrets).
std::vector<std::string> BucketReferencedSecretNames(const nlohmann::json& bucket);

// Reads Secret ns/name: nullopt when it does not exist. Throws for other failures.
using BucketSecretReader =
    std::function<std::optional<nlohmann::json>(const std::string& ns, const std::string& name)>;

// The decoded key Secret of a Bucket with client-side encryption (docs/assets-bucket.md,
// "Encryption"). Plain value type.
struct BucketEncryptionKeys {
  std::string key_name;                       // spec.encryption.clientSide.keyName
  std::map<std::string, std::string> values;  // every key of the Secret, decoded
  std::string secret_ref;                     // "Secret ns/name (spec.encryption.clientSide.secretName)"
};

// The key Secret of `bucket` (the whole object), read and checked: nullopt when the
// Bucket sets no spec.encryption.clientSide. Throws plugins::BucketEncryptionError
// (kKeyMissing: no Secret or no key of keyName; kBadKey: not 32 bytes or not base64)
// and plugins::S3ConfigError (bad spec.encryption); read_secret's errors pass through.
std::optional<BucketEncryptionKeys> ReadBucketEncryptionKeys(const nlohmann::json& bucket,
                                                             const BucketSecretReader& read_secret);

// The cipher of `keys` (plugins::BucketCipherFromSecret). Throws BucketEncryptionError.
std::shared_ptr<const plugins::BucketCipher> BucketCipherOf(const BucketEncryptionKeys& keys);

// Registers --recheck-interval and --check-timeout.
void AddBucketFlags(runtime::FlagSet& flags, BucketOptions* options);

// Registers the controller: For(Bucket) + Watches(Secrets, metadata only).
void SetupBucketController(runtime::Manager& manager, const BucketOptions& options);

// --- The decision, with its I/O injected (unit-testable) -----------------------------

// Proves access to the bucket `config` describes. Throws plugins::S3Error.
using BucketProbe = std::function<void(const plugins::S3Config& config)>;

// With spec.encryption.clientSide, the key Secret is read and checked too
// (EncryptionKeyMissing / EncryptionKeyInvalid) before the access check.
// Expected failures become the documented reasons. S3 answers that name none of them:
// a wrong region or endpoint for the bucket (301 PermanentRedirect, 400
// AuthorizationHeaderMalformed) and an invalid bucket name count as BucketNotFound (its
// remedy is "fix name and region"); 5xx and throttling as Unreachable; anything else is
// thrown (logged, retried with backoff).
runtime::Observation ObserveBucket(const nlohmann::json& object,
                                   const BucketSecretReader& read_secret,
                                   const BucketProbe& probe, const BucketOptions& options);

}  // namespace ro::controllers

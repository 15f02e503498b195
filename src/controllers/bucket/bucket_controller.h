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
#include <optional>
#include <string>
#include <vector>

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

// Registers --recheck-interval and --check-timeout.
void AddBucketFlags(runtime::FlagSet& flags, BucketOptions* options);

// Registers the controller: For(Bucket) + Watches(Secrets, metadata only).
void SetupBucketController(runtime::Manager& manager, const BucketOptions& options);

// --- The decision, with its I/O injected (unit-testable) -----------------------------

// Reads Secret ns/name: nullopt when it does not exist. Throws for other failures.
using BucketSecretReader =
    std::function<std::optional<nlohmann::json>(const std::string& ns, const std::string& name)>;
// Proves access to the bucket `config` describes. Throws plugins::S3Error.
using BucketProbe = std::function<void(const plugins::S3Config& config)>;

// Expected failures become the documented reasons. S3 answers that name none of them:
// a wrong region or endpoint for the bucket (301 PermanentRedirect, 400
// AuthorizationHeaderMalformed) and an invalid bucket name count as BucketNotFound (its
// remedy is "fix name and region"); 5xx and throttling as Unreachable; anything else is
// thrown (logged, retried with backoff).
runtime::Observation ObserveBucket(const nlohmann::json& object,
                                   const BucketSecretReader& read_secret,
                                   const BucketProbe& probe, const BucketOptions& options);

}  // namespace ro::controllers

// The kubernetes-objects-to-bucket Backup plugin (API reference 9.2; docs/backup.md):
// writes the objects of the selected namespaces of a KubernetesCluster (or of every
// namespace) to a Bucket, one object per file in the layout of the LiveSynchronization
// originals, then an index.
//
//   spec:
//     plugin: kubernetes-objects-to-bucket
//     restartPolicy: OnFailure | Never          (Never when omitted)
//     config:
//       source:
//         kubernetesCluster:
//           name: cluster-1                     (required; a KubernetesCluster of the
//                                                Backup's namespace)
//           namespaces: [shop, billing]         (optional; absent or []: every namespace)
//           namespaceSelector:                  (optional LabelSelector; with namespaces:
//             matchLabels: {sync: "true"}        both must hold)
//       destination:
//         bucket:
//           name: backups                       (required; a Bucket of the namespace)
//           basePath: shop/2026-12-06           (optional; default "<namespace>/<name>"
//                                                of the Backup)
//
// In the bucket, under <basePath>/ (BucketObjectKey, ro/plugins/kubernetes/bucket_object.h):
//   <group>-<version>-<resource>/<namespace>.<name>   the object, sanitized (Sanitize:
//                                                     no status, uid, resourceVersion,
//                                                     managedFields, ownerReferences,
//                                                     allocated IPs), compact JSON
//   v1-namespaces/<name>                              each selected Namespace
//   apiextensions.k8s.io-v1-customresourcedefinitions/<name>
//                                                     the CRD of each custom resource kind
//                                                     backed up
//   index.json                                        written last: its presence marks a
//                                                     complete backup (BackupIndexJson)
//
// What is backed up: every namespaced resource the cluster serves in its preferred
// version with the verbs list and get, except events, endpoints, endpointslices, leases
// and the metrics.k8s.io group (derived or transient); of those, every object
// ShouldBackUp accepts.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "ro/common/log.h"
#include "ro/kube/discovery.h"
#include "ro/kube/gvr.h"

namespace ro::kube {
class DynamicClient;
}  // namespace ro::kube

namespace ro::plugins::backup {

inline constexpr std::string_view kKubernetesBackupPlugin = "kubernetes-objects-to-bucket";
// The key of the index under the base path.
inline constexpr std::string_view kIndexKey = "index.json";

// spec.config of a kubernetes-objects-to-bucket Backup, validated.
struct KubernetesBackupConfig {
  std::string cluster_name;
  std::vector<std::string> namespaces;  // empty: every namespace
  // namespaceSelector in its string form (kube::LabelSelector::ToString); "" none.
  std::string namespace_selector;
  bool selector_matches_nothing = false;  // a selector that can select no namespace
  std::string bucket_name;
  std::string base_path;  // no leading or trailing '/', never empty
};

// Parses a whole Backup object (spec.plugin, spec.config; metadata for the default base
// path). Throws kubernetes::ConfigError listing every problem with its field path
// ("spec.config.source.kubernetesCluster.name"). A plugin other than
// kKubernetesBackupPlugin is a problem of spec.plugin.
KubernetesBackupConfig ParseKubernetesBackup(const nlohmann::json& backup);

// Whether a served resource is backed up (see above). Pure.
bool ShouldBackUpResource(const kube::ApiResource& resource);

// Whether an object of a backed-up resource is: not when the LiveSynchronization would
// not copy it either (kubernetes::ShouldReplicate: service-account tokens, the
// namespaces' root CA ConfigMaps, managed EndpointSlices), nor when a controller owns it
// (an ownerReference with controller: true: a Deployment's ReplicaSets and their Pods, a
// CronJob's Jobs), since restoring the owner recreates it. Pure.
bool ShouldBackUp(const kube::GroupVersionResource& gvr, const nlohmann::json& object);

// One file of a backup, as the index lists it.
struct BackupEntry {
  std::string key;       // relative to the base path: "apps-v1-deployments/shop.web"
  std::string resource;  // "apps/v1/deployments"
  std::string ns;        // "" for Namespaces and CRDs
  std::string name;
  std::string sha256;  // hex SHA-256 of the stored JSON (before any client-side encryption)
  int64_t bytes = 0;   // its size
};

// What a run wrote.
struct BackupResult {
  std::vector<BackupEntry> entries;             // in the order written
  std::map<std::string, int64_t> by_resource;   // "apps/v1/deployments" -> objects
  std::vector<std::string> namespaces;          // the namespaces backed up, sorted
  int64_t bytes = 0;                            // sum of entries[].bytes
  std::chrono::milliseconds duration{0};        // first list to the index written
};

// Who made a backup, for its index.
struct BackupIdentity {
  std::string ns;    // the Backup's
  std::string name;
  std::string uid;
  std::string cluster_name;            // the source KubernetesCluster
  std::string cluster_server;          // its status.server ("" when unknown)
  std::string cluster_server_version;  // its status.serverVersion ("" when unknown)
  // A zookeeper-nodes-to-bucket backup (zookeeper_backup.h): the source Database, its
  // client servers and the rootPath backed up. database_name set means the index names
  // this source and that plugin instead of the KubernetesCluster.
  std::string database_name;
  std::vector<std::string> database_servers;
  std::string root_path;
  std::chrono::system_clock::time_point start;
};

// The index (index.json) of a finished backup:
//   {"apiVersion": "automation.astronetes.io/v1alpha1", "kind": "BackupIndex",
//    "backup": {"namespace", "name", "uid"}, "plugin": "kubernetes-objects-to-bucket",
//    "source": {"kubernetesCluster": {"name", "server", "serverVersion"}, "namespaces": [...]},
//    (zookeeper-nodes-to-bucket: "plugin": "zookeeper-nodes-to-bucket",
//     "source": {"database": {"name", "servers"}, "rootPath"})
//    "startTime": RFC 3339, "completionTime": RFC 3339,
//    "counts": {"objects": N, "bytes": B, "resources": {"<gvr>": n, ...}},
//    "objects": [{"key", "resource", "namespace", "name", "sha256", "bytes"}, ...]}
std::string BackupIndexJson(const BackupIdentity& identity, const BackupResult& result,
                            std::chrono::system_clock::time_point completion);

// Writes `body` at `key` (the full key, base path included). Throws S3Error
// (ro/plugins/s3_client.h) or BucketEncryptionError.
using ObjectWriter = std::function<void(const std::string& key, const std::string& body)>;

struct KubernetesBackupOptions {
  int64_t list_page_size = 500;
  // Attempts per list and per write for retryable errors (transport, 429, 5xx), with
  // backoff from initial_backoff doubling up to max_backoff.
  int max_attempts = 5;
  std::chrono::milliseconds initial_backoff{200};
  std::chrono::milliseconds max_backoff{5'000};
};

// A list or a write failed for good; what() says which. `retryable` when the cause was
// transient (the source or the bucket unavailable past max_attempts).
class BackupError : public std::runtime_error {
 public:
  BackupError(std::string reason, const std::string& message, bool retryable)
      : std::runtime_error(message), reason_(std::move(reason)), retryable_(retryable) {}
  // SourceUnavailable, SourceForbidden, SourceError, BucketUnavailable, BucketError.
  const std::string& reason() const noexcept { return reason_; }
  bool retryable() const noexcept { return retryable_; }

 private:
  std::string reason_;
  bool retryable_;
};

// One backup. Not thread-safe; one Run per object.
class KubernetesBackup {
 public:
  // `source` and `write` must outlive the object.
  KubernetesBackup(KubernetesBackupConfig config, kube::DynamicClient& source, ObjectWriter write,
                   log::Logger log, KubernetesBackupOptions options = {});

  // Lists and writes every selected object, then the index. Throws BackupError; returns
  // early (without an index, with what was written so far) when `stop` is requested.
  BackupResult Run(const BackupIdentity& identity, std::stop_token stop);

 private:
  void Write(const kube::GroupVersionResource& gvr, const nlohmann::json& object,
             BackupResult* result, std::stop_token stop);
  void Put(const std::string& key, const std::string& body, std::stop_token stop);

  const KubernetesBackupConfig config_;
  kube::DynamicClient& source_;
  const ObjectWriter write_;
  const log::Logger log_;
  const KubernetesBackupOptions options_;
};

}  // namespace ro::plugins::backup

// What a kubernetes-objects-transformation run acts on, resolved from the Task's
// references in its namespace (docs/automation.md "Where the run acts"); the Backup
// controller resolves its KubernetesCluster and Bucket the same way:
//   destinationName -> KubernetesCluster -> Secret spec.secretName, key kubeconfig.yaml
//                      -> a client for that cluster; absent: the operator's own client
//   bucketName      -> Bucket -> its provider block and the Secret with accessKeyID /
//                      secretAccessKey -> an S3 client (only when originals are restored)
#pragma once

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>

#include "ro/plugins/s3_client.h"
#include "synchronization/sync_run.h"
#include "ro/plugins/tasks/object_transformation.h"
#include "ro/plugins/tasks/task_spec.h"

namespace ro::kube {
class DynamicClient;
class Store;
}  // namespace ro::kube

namespace ro::controllers {

// A reference cannot be resolved. reason() is the TaskRun condition reason:
// ClusterNotFound, BucketNotFound, DatabaseNotFound, DatabaseNotReady, SecretNotFound,
// SecretKeyMissing, InvalidKubeconfig, InvalidBucket. Expected while objects are being created; the run waits for them
// (Pending) until --start-timeout.
class ReferenceError : public std::runtime_error {
 public:
  ReferenceError(std::string reason, const std::string& message)
      : std::runtime_error(message), reason_(std::move(reason)) {}
  const std::string& reason() const noexcept { return reason_; }

 private:
  std::string reason_;
};

// The clients a run uses, and the target handed to ObjectTransformer (which points into
// this object: keep it alive for the whole pass).
struct ResolvedTarget {
  std::unique_ptr<kube::DynamicClient> remote;   // set when destinationName is
  std::unique_ptr<plugins::S3Client> originals;  // set when originals are restored
  plugins::tasks::TransformationTarget target;
  // zookeeper-nodes-from-backup: the destination Database (target.destination is unset;
  // the run connects to it, so that an unreachable ensemble is a retryable run error).
  std::optional<sync::DatabaseTarget> database;
};

// Database ns/name from `databases` (an informer cache): its client servers
// (spec.zookeeper.client.servers) and, when spec.zookeeper.admin.secretName is set, the
// digest credentials of that Secret (keys username, password), read with `client`.
// `field` names the reference in messages ("spec.config.destinationName"). Throws
// ReferenceError DatabaseNotFound, DatabaseNotReady (its Ready condition is not True),
// SecretNotFound, SecretKeyMissing; ApiError / TransportError when reading the Secret
// fails otherwise.
sync::DatabaseTarget ResolveDatabase(kube::DynamicClient& client, const kube::Store& databases,
                                     const std::string& ns, const std::string& name, const std::string& field);

// Thread-safe: Resolve() only reads. References must outlive the resolver.
class TargetResolver {
 public:
  // `local` is the operator's own client (destinationName absent); the stores are the
  // informer caches of KubernetesClusters and Buckets. `cluster_timeout` limits each
  // request to a remote cluster.
  // `run_qps`: the client-side rate limit (requests/s, kube::RestConfig::qps) of the
  // clients a run writes with, for KubernetesClusters and for the operator's own cluster
  // (a client of `local`'s config of its own, so that a run never waits behind the
  // controller's informers); <= 0: none. A recovery is one request at a time per run.
  // `databases` (Databases' informer cache) is needed by Database and ResolveZooKeeper.
  TargetResolver(kube::DynamicClient& local, const kube::Store& clusters,
                 const kube::Store& buckets, std::chrono::milliseconds cluster_timeout,
                 double run_qps = 0, const kube::Store* databases = nullptr);

  // Throws ReferenceError for a missing or unusable reference; ApiError /
  // TransportError when reading a Secret fails otherwise.
  std::unique_ptr<ResolvedTarget> Resolve(const std::string& ns,
                                          const plugins::tasks::TransformationConfig& config) const;
  // The same for a kubernetes-objects-from-backup Task: its destination and its Bucket
  // (read_original reads the Backup's keys).
  std::unique_ptr<ResolvedTarget> Resolve(const std::string& ns,
                                          const plugins::tasks::RestoreConfig& config) const;

  // The same for a zookeeper-nodes-from-backup Task: its Database (destinationName) and
  // its Bucket.
  std::unique_ptr<ResolvedTarget> ResolveZooKeeper(const std::string& ns,
                                                   const plugins::tasks::RestoreConfig& config) const;
  // Database ns/name (ResolveDatabase). std::logic_error without a databases cache.
  sync::DatabaseTarget Database(const std::string& ns, const std::string& name, const std::string& field) const;

  // A client for KubernetesCluster ns/name (its kubeconfig Secret), and its identity.
  // `field` names the reference in messages ("spec.config.destinationName"). Throws as
  // Resolve.
  std::unique_ptr<kube::DynamicClient> ClusterClient(const std::string& ns, const std::string& name,
                                                     const std::string& field,
                                                     plugins::tasks::AssetIdentity* identity) const;
  // An S3 client for Bucket ns/name (its provider block, access keys and client-side
  // encryption key), and its identity. Throws as Resolve.
  std::unique_ptr<plugins::S3Client> BucketClient(const std::string& ns, const std::string& name,
                                                  const std::string& field,
                                                  plugins::tasks::AssetIdentity* identity) const;

 private:
  // destinationName ("": this cluster) and bucketName into `out`.
  void ResolveDestination(const std::string& ns, const std::string& name, ResolvedTarget* out) const;
  void ResolveBucket(const std::string& ns, const std::string& name, ResolvedTarget* out) const;

  kube::DynamicClient& local_;
  std::unique_ptr<kube::DynamicClient> run_local_;  // local_'s config with run_qps_
  const double run_qps_;
  const kube::Store& clusters_;
  const kube::Store& buckets_;
  const std::chrono::milliseconds cluster_timeout_;
  const kube::Store* databases_;
};

}  // namespace ro::controllers

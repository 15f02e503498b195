// Does the source cluster serve every configured resource? (docs/livesynchronization.md,
// reason UnknownResource). Asked through API discovery with the source cluster's own
// kubeconfig, since that is what the events listener will list and watch with.
//
// Discovery is a few requests, so answers are cached per LiveSynchronization and
// reused while the kubeconfig and the resources are unchanged: a success for
// `ok_ttl`, a failure for `problem_ttl` (a CRD installed later is picked up then).
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "livesynchronization/livesync_references.h"
#include "ro/kube/clock.h"
#include "ro/kube/gvr.h"
#include "ro/plugins/kubernetes/live_sync_config.h"

namespace ro::controllers::livesync {

struct SourceResourceOptions {
  // Per-request timeout of discovery on the source cluster.
  std::chrono::milliseconds timeout{10'000};
  // How long an answer is reused (see the file comment).
  std::chrono::milliseconds ok_ttl{std::chrono::minutes{10}};
  std::chrono::milliseconds problem_ttl{std::chrono::seconds{30}};
};

// Thread-safe.
class SourceResourceChecker {
 public:
  explicit SourceResourceChecker(SourceResourceOptions options, kube::Clock& clock = kube::DefaultClock());

  // nullopt when the cluster behind `kubeconfig` serves every resource of `config` with
  // list and watch. Otherwise UnknownResource naming the resources[] entries it does
  // not serve, or ClusterNotReady when the kubeconfig cannot be used or discovery fails.
  std::optional<Problem> Check(const kube::ObjectKey& live_sync, const std::string& kubeconfig,
                               const plugins::kubernetes::LiveSyncConfig& config);

  // Drops the cached answer of a deleted LiveSynchronization.
  void Forget(const kube::ObjectKey& live_sync);

 private:
  struct Entry {
    std::string fingerprint;  // kubeconfig + resources the answer is about
    std::optional<Problem> problem;
    kube::Clock::SteadyTime expires;
  };

  std::optional<Problem> Discover(const std::string& kubeconfig,
                                  const plugins::kubernetes::LiveSyncConfig& config) const;

  // Constant after construction.
  const SourceResourceOptions options_;
  kube::Clock& clock_;

  std::mutex mu_;
  std::map<kube::ObjectKey, Entry> cache_;  // guarded by mu_
};

}  // namespace ro::controllers::livesync

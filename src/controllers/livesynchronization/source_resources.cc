#include "livesynchronization/source_resources.h"

#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "ro/kube/client.h"
#include "ro/kube/config.h"
#include "ro/kube/discovery.h"
#include "ro/kube/errors.h"

namespace ro::controllers::livesync {

SourceResourceChecker::SourceResourceChecker(SourceResourceOptions options, kube::Clock& clock)
    : options_(options), clock_(clock) {}

std::optional<Problem> SourceResourceChecker::Check(const kube::ObjectKey& live_sync, const std::string& kubeconfig,
                                                    const plugins::kubernetes::LiveSyncConfig& config) {
  std::string fingerprint = kubeconfig;
  for (const auto& gvr : config.DistinctGvrs()) {
    fingerprint += '\n';  // appends: GCC 12 warns (-Wrestrict, a false positive) on "\n" + string at -O2
    fingerprint += gvr.ToString();
  }
  {
    std::lock_guard lock(mu_);
    const auto found = cache_.find(live_sync);
    if (found != cache_.end() && found->second.fingerprint == fingerprint &&
        clock_.SteadyNow() < found->second.expires) {
      return found->second.problem;
    }
  }
  // Without the lock: discovery takes round trips, other LiveSynchronizations go on.
  std::optional<Problem> problem = Discover(kubeconfig, config);
  std::lock_guard lock(mu_);
  cache_[live_sync] = Entry{std::move(fingerprint), problem,
                            clock_.SteadyNow() + (problem ? options_.problem_ttl : options_.ok_ttl)};
  return problem;
}

void SourceResourceChecker::Forget(const kube::ObjectKey& live_sync) {
  std::lock_guard lock(mu_);
  cache_.erase(live_sync);
}

std::optional<Problem> SourceResourceChecker::Discover(const std::string& kubeconfig,
                                                       const plugins::kubernetes::LiveSyncConfig& config) const {
  try {
    kube::RestConfig rest = kube::LoadKubeconfig(kubeconfig, "", "", kube::KubeconfigOrigin::kSecret);
    rest.timeout = options_.timeout;
    rest.max_retries = 0;  // the cache's problem_ttl is the retry
    kube::DynamicClient client(std::move(rest));
    std::string unknown;
    for (const auto& rule : config.replication.resources) {
      const std::optional<kube::ApiResource> resource = client.discovery().Find(rule.gvr);
      if (resource && resource->HasVerb("list") && resource->HasVerb("watch")) continue;
      if (!unknown.empty()) unknown += "; ";
      unknown += "spec.config.replication.resources[" + std::to_string(rule.index) + "]: " +
                 rule.gvr.ToString() +
                 (resource ? " cannot be listed and watched" : " is not served by the source cluster");
    }
    if (unknown.empty()) return std::nullopt;
    return Problem{kReasonUnknownResource, unknown};
  } catch (const kube::ConfigError& e) {
    return Problem{kReasonClusterNotReady, std::string("the source cluster's kubeconfig cannot be used: ") + e.what()};
  } catch (const kube::TransportError& e) {
    return Problem{kReasonClusterNotReady, std::string("cannot read the source cluster's API discovery: ") + e.what()};
  } catch (const kube::ApiError& e) {
    return Problem{kReasonClusterNotReady, std::string("cannot read the source cluster's API discovery: ") + e.what()};
  }
}

}  // namespace ro::controllers::livesync

#include "ro/testsupport/clients.h"

#include <utility>

#include "ro/kube/config.h"
#include "ro/kube/errors.h"

namespace ro::testsupport {

std::unique_ptr<kube::DynamicClient> AdminClient(const testenv::KubeCluster& cluster) {
  kube::RestConfig config = kube::LoadKubeconfigFile(cluster.kubeconfig_path().string());
  config.qps = 0;
  return std::make_unique<kube::DynamicClient>(std::move(config));
}

std::optional<nlohmann::json> TryGet(kube::DynamicClient& client, const kube::GroupVersionResource& gvr,
                                     const std::string& ns, const std::string& name) {
  try {
    return client.Get(gvr, ns, name);
  } catch (const kube::ApiError& e) {
    if (e.reason() == kube::StatusReason::kNotFound) return std::nullopt;
    throw;
  }
}

}  // namespace ro::testsupport

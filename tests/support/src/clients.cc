#include "ro/testsupport/clients.h"

#include <utility>

#include "ro/kube/config.h"

namespace ro::testsupport {

std::unique_ptr<kube::DynamicClient> AdminClient(const testenv::KubeCluster& cluster) {
  kube::RestConfig config = kube::LoadKubeconfigFile(cluster.kubeconfig_path().string());
  config.qps = 0;
  return std::make_unique<kube::DynamicClient>(std::move(config));
}

}  // namespace ro::testsupport

// Clients of the harness's clusters for integration and e2e tests.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>

#include "ro/kube/client.h"
#include "ro/testenv/kube_cluster.h"

namespace ro::testsupport {

// A DynamicClient with the cluster's admin kubeconfig and no client-side rate limit
// (qps 0): tests write as fast as the apiserver takes it. Throws kube::ConfigError.
std::unique_ptr<kube::DynamicClient> AdminClient(const testenv::KubeCluster& cluster);


}  // namespace ro::testsupport

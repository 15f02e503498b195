// The KubernetesCluster controller (manual 5.2; reasons: docs/assets-kubernetescluster.md).
//
// For each KubernetesCluster it reads the Secret named by spec.secretName (key
// "kubeconfig.yaml"), parses the kubeconfig (its current context), connects to the
// cluster's API server and proves the credentials: GET /version (status.serverVersion),
// then a list of one Namespace, which needs an authorized identity (/version is public
// to every authenticated and anonymous user, so alone it cannot tell Forbidden).
// The result is the Ready condition, with status.server and status.serverVersion.
// It re-checks every --recheck-interval and at once when the Secret changes.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "ro/kube/config.h"
#include "ro/runtime/cluster_kubeconfig.h"
#include "ro/runtime/condition_reconciler.h"
#include "ro/runtime/controller.h"

namespace ro::runtime {
class FlagSet;
class Manager;
}  // namespace ro::runtime

namespace ro::controllers {

// Ready reasons (docs/assets-kubernetescluster.md).
inline constexpr const char* kReasonConnected = "Connected";
inline constexpr const char* kReasonSecretNotFound = "SecretNotFound";
inline constexpr const char* kReasonSecretKeyMissing = "SecretKeyMissing";
inline constexpr const char* kReasonInvalidKubeconfig = "InvalidKubeconfig";
inline constexpr const char* kReasonUnreachable = "Unreachable";
inline constexpr const char* kReasonUnauthorized = "Unauthorized";
inline constexpr const char* kReasonForbidden = "Forbidden";

// The Secret key holding the kubeconfig (manual 5.2: --from-file=kubeconfig.yaml=...).
inline constexpr const char* kKubeconfigKey = "kubeconfig.yaml";  // runtime::kKubeconfigSecretKey

struct KubernetesClusterOptions {
  // Re-check period of every cluster (a Secret change re-checks at once).
  std::chrono::milliseconds recheck_interval{std::chrono::minutes{5}};
  // Per-request timeout of the connection check; an unreachable cluster must not hold
  // a worker (or the shutdown) for long.
  std::chrono::milliseconds connect_timeout{std::chrono::seconds{10}};
};

// assets.astronetes.io/v1alpha1 KubernetesCluster.
runtime::ObjectType KubernetesClusterType();

// Registers --recheck-interval and --connect-timeout.
void AddKubernetesClusterFlags(runtime::FlagSet& flags, KubernetesClusterOptions* options);

// Registers the controller: For(KubernetesCluster) + Watches(Secrets, metadata only).
void SetupKubernetesClusterController(runtime::Manager& manager,
                                      const KubernetesClusterOptions& options);

// --- The decision, with its I/O injected (unit-testable) -----------------------------

// Reads Secret ns/name: nullopt when it does not exist. Throws for other failures.
using SecretReader = runtime::SecretReader;
// Connects with `config` and proves the credentials; returns the server's gitVersion.
// Throws ro::kube::ApiError / TransportError / ConfigError.
using ClusterProbe = std::function<std::string(const kube::RestConfig& config)>;

// Observes one KubernetesCluster object. Expected failures become reasons; unexpected
// ones (reading the Secret fails with a 5xx, ...) are thrown.
runtime::Observation ObserveKubernetesCluster(const nlohmann::json& object,
                                              const SecretReader& read_secret,
                                              const ClusterProbe& probe,
                                              const KubernetesClusterOptions& options);

// The real probe: GET /version, then a list of at most one Namespace, each limited to
// `timeout`, without retries.
std::string ProbeCluster(kube::RestConfig config, std::chrono::milliseconds timeout);

}  // namespace ro::controllers

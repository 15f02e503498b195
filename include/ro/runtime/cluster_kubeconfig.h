// The kubeconfig of a KubernetesCluster asset (manual 5.2): key "kubeconfig.yaml" of the
// Secret named by spec.secretName, in the asset's namespace. The one resolver used by
// the KubernetesCluster controller (health), the LiveSynchronization controller (the
// pipeline's clusters) and the TaskRun controller (a Task's destinationName).
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "ro/kube/config.h"

namespace ro::runtime {

// The Secret key holding the kubeconfig (manual 5.2).
inline constexpr std::string_view kKubeconfigSecretKey = "kubeconfig.yaml";

// A KubernetesCluster whose kubeconfig cannot be used. reason() is the condition reason:
// "SecretNotFound", "SecretKeyMissing" or "InvalidKubeconfig"; what() names the Secret,
// the key and what is wrong, e.g. `Secret dr/c1 has no key "kubeconfig.yaml"`.
class KubeconfigReferenceError : public std::runtime_error {
 public:
  KubeconfigReferenceError(std::string reason, const std::string& message)
      : std::runtime_error(message), reason_(std::move(reason)) {}
  const std::string& reason() const noexcept { return reason_; }

 private:
  std::string reason_;
};

// Reads Secret `ns`/`name`; nullopt when it does not exist. Production: GetSecret on the
// operator's cluster; tests: a map.
using SecretReader = std::function<std::optional<nlohmann::json>(const std::string& ns, const std::string& name)>;

struct ClusterKubeconfig {
  std::string secret_name;  // spec.secretName
  std::string text;         // the kubeconfig document as stored
  kube::RestConfig config;  // LoadKubeconfig(text)
};

// Resolves `cluster` (a KubernetesCluster object) to its kubeconfig. Throws
// KubeconfigReferenceError for a missing Secret or key, bad base64 or a kubeconfig
// LoadKubeconfig refuses; what `read_secret` throws (kube::ApiError, TransportError)
// passes through (a transient read failure is not a bad reference).
ClusterKubeconfig ResolveClusterKubeconfig(const nlohmann::json& cluster, const SecretReader& read_secret);

}  // namespace ro::runtime

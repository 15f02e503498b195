#include "ro/runtime/cluster_kubeconfig.h"

#include <nlohmann/json.hpp>

#include "ro/common/object_meta.h"
#include "ro/kube/errors.h"
#include "ro/runtime/secrets.h"

namespace ro::runtime {

ClusterKubeconfig ResolveClusterKubeconfig(const nlohmann::json& cluster, const SecretReader& read_secret) {
  const std::string& ns = common::Namespace(cluster);
  ClusterKubeconfig out;
  out.secret_name = common::StringMember(common::Member(cluster, "spec"), "secretName");
  const std::string secret = "Secret " + ns + "/" + out.secret_name;
  const std::string key(kKubeconfigSecretKey);
  if (out.secret_name.empty()) {
    throw KubeconfigReferenceError("SecretNotFound",
                                   "KubernetesCluster " + ns + "/" + common::Name(cluster) +
                                       " names no Secret (spec.secretName)");
  }
  const std::optional<nlohmann::json> object = read_secret(ns, out.secret_name);
  if (!object) throw KubeconfigReferenceError("SecretNotFound", secret + " (spec.secretName) does not exist");
  std::optional<std::string> text;
  try {
    text = SecretValue(*object, key);
  } catch (const std::invalid_argument& e) {
    throw KubeconfigReferenceError("InvalidKubeconfig", secret + ": " + e.what());
  }
  if (!text) throw KubeconfigReferenceError("SecretKeyMissing", secret + " has no key \"" + key + "\"");
  out.text = std::move(*text);
  try {
    out.config = kube::LoadKubeconfig(out.text, "", "", kube::KubeconfigOrigin::kSecret);
  } catch (const kube::ConfigError& e) {
    throw KubeconfigReferenceError("InvalidKubeconfig", secret + " key " + key + ": " + e.what());
  }
  return out;
}

}  // namespace ro::runtime

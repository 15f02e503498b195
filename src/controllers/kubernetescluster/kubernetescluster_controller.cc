#include "kubernetescluster/kubernetescluster_controller.h"

#include <memory>
#include <utility>

#include <nlohmann/json.hpp>

#include "ro/common/log.h"
#include "ro/kube/client.h"
#include "ro/kube/errors.h"
#include "ro/kube/informer.h"
#include "ro/runtime/cluster_kubeconfig.h"
#include "ro/runtime/informer_cache.h"
#include "ro/runtime/manager.h"
#include "ro/runtime/options.h"
#include "ro/runtime/secrets.h"

namespace ro::controllers {

using nlohmann::json;
using runtime::ConditionStatus;
using runtime::Observation;

namespace {

constexpr const char* kController = "kubernetescluster";

Observation NotReady(const char* reason, std::string message,
                     const KubernetesClusterOptions& options,
                     std::optional<std::string> server = std::nullopt) {
  // serverVersion: not known to be current any more.
  return {ConditionStatus::kFalse, reason, std::move(message),
          {{"server", std::move(server)}, {"serverVersion", std::nullopt}}, options.recheck_interval};
}

std::string SecretNameOf(const json& object) {
  return object.value("spec", json::object()).value("secretName", "");
}

class KubernetesClusterReconciler final : public runtime::ConditionReconciler {
 public:
  KubernetesClusterReconciler(const kube::Store& store, runtime::StatusWriter writer,
                              kube::DynamicClient& client, KubernetesClusterOptions options)
      : ConditionReconciler(KubernetesClusterType(), store, std::move(writer)),
        client_(client),
        options_(options) {}

 protected:
  Observation Observe(const json& object, std::stop_token /*stop*/) override {
    return ObserveKubernetesCluster(
        object,
        [this](const std::string& ns, const std::string& name) {
          return runtime::GetSecret(client_, ns, name);
        },
        [this](const kube::RestConfig& config) {
          return ProbeCluster(config, options_.connect_timeout);
        },
        options_);
  }

 private:
  kube::DynamicClient& client_;
  const KubernetesClusterOptions options_;
};

}  // namespace

runtime::ObjectType KubernetesClusterType() {
  return {kube::GroupVersionResource{"assets.astronetes.io", "v1alpha1", "kubernetesclusters"},
          "KubernetesCluster"};
}

void AddKubernetesClusterFlags(runtime::FlagSet& flags, KubernetesClusterOptions* options) {
  flags.AddDuration("--recheck-interval", &options->recheck_interval,
                    "How often every KubernetesCluster is connected to again");
  flags.AddDuration("--connect-timeout", &options->connect_timeout,
                    "Per-request timeout when checking a cluster");
}

std::string ProbeCluster(kube::RestConfig config, std::chrono::milliseconds timeout) {
  config.timeout = timeout;
  config.max_retries = 0;  // the periodic re-check is the retry
  kube::DynamicClient remote(std::move(config));
  std::string version = remote.ServerVersion();
  kube::ListOptions one;
  one.limit = 1;
  remote.List(kube::GroupVersionResource{"", "v1", "namespaces"}, "", one);
  return version;
}

Observation ObserveKubernetesCluster(const json& object, const SecretReader& read_secret,
                                     const ClusterProbe& probe,
                                     const KubernetesClusterOptions& options) {
  const std::string ns = object.at("metadata").value("namespace", "");
  const std::string secret_name = SecretNameOf(object);
  runtime::ClusterKubeconfig resolved;
  try {
    resolved = runtime::ResolveClusterKubeconfig(object, read_secret);
  } catch (const runtime::KubeconfigReferenceError& e) {
    return NotReady(e.reason().c_str(), e.what(), options);
  }
  const kube::RestConfig& config = resolved.config;
  const std::string server = config.server;

  try {
    std::string version = probe(config);
    std::string message = "Connected to " + server + " (" + version + ")";
    return {ConditionStatus::kTrue, kReasonConnected, std::move(message),
            {{"server", server}, {"serverVersion", std::move(version)}}, options.recheck_interval};
  } catch (const kube::ConfigError& e) {
    // TLS material that parsed as base64 but is not usable PEM.
    return NotReady(kReasonInvalidKubeconfig,
                    "Secret " + ns + "/" + secret_name + " key " + kKubeconfigKey + ": " +
                        e.what(),
                    options, server);
  } catch (const kube::TransportError& e) {
    return NotReady(kReasonUnreachable, "Cannot reach " + server + ": " + e.what(), options,
                    server);
  } catch (const kube::ApiError& e) {
    if (e.reason() == kube::StatusReason::kUnauthorized) {
      return NotReady(kReasonUnauthorized,
                      "The API server at " + server + " rejected the credentials: " +
                          e.status_message(),
                      options, server);
    }
    if (e.reason() == kube::StatusReason::kForbidden) {
      return NotReady(kReasonForbidden,
                      "The credentials may not list namespaces on " + server + ": " +
                          e.status_message(),
                      options, server);
    }
    return NotReady(kReasonUnreachable,
                    "The API server at " + server + " answered with an error: " + e.what(),
                    options, server);
  }
}

void SetupKubernetesClusterController(runtime::Manager& manager,
                                      const KubernetesClusterOptions& options) {
  const runtime::ObjectType type = KubernetesClusterType();
  const kube::Store& clusters = manager.cache().Get(type.gvr).store();
  runtime::StatusWriter writer(manager.client(), manager.recorder(),
                               log::Logger(json{{"controller", kController}}), manager.clock());
  manager
      .NewController(kController, std::make_unique<KubernetesClusterReconciler>(
                                      clusters, std::move(writer), manager.client(), options))
      .For(type, runtime::OnGenerationChange())
      .Watches(runtime::SecretsGvr(),
               runtime::MapSecretToReferrers(
                   clusters, [](const json& cluster) {
                     return std::vector<std::string>{SecretNameOf(cluster)};
                   }),
               runtime::MetadataOnly());
}

}  // namespace ro::controllers

// How to reach and authenticate to one apiserver: RestConfig, and the loaders that
// build it from a kubeconfig (file, text, or a Secret's `kubeconfig.yaml` value) or from
// the in-cluster service account.
// Follows https://kubernetes.io/docs/concepts/configuration/organize-cluster-access-kubeconfig/
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace ro::kube {

struct RestConfig {
  // https://host:port, no trailing slash. Required.
  std::string server;
  // PEM bundle of CAs trusted for the server certificate. Empty: the system trust store.
  std::string ca_pem;
  // Skips server certificate verification. Off by default; only when the kubeconfig
  // asks for it (insecure-skip-tls-verify: true).
  bool insecure_skip_tls_verify = false;
  // TLS client authentication (PEM); both or neither.
  std::string client_cert_pem;
  std::string client_key_pem;
  // Bearer token. When token_file is set it wins and is re-read every minute, because
  // projected service-account tokens rotate.
  std::string bearer_token;
  std::string bearer_token_file;
  // Namespace of the current context ("default" when unset).
  std::string default_namespace = "default";

  // Client-side rate limit, token bucket: `qps` tokens/s refill, `burst` capacity.
  // qps <= 0 disables limiting. Watches are not limited (one token at open).
  double qps = 50.0;
  int burst = 100;
  // Per-request timeout for everything but watches (ms).
  std::chrono::milliseconds timeout{30'000};
  // Retries after 429 (waiting Retry-After when sent), 500/502/503/504 and transport
  // errors other than TLS, with exponential backoff from 100 ms doubling to 5 s. Only
  // idempotent verbs are retried (GET, HEAD, DELETE); POST, PUT and PATCH never are,
  // since the first attempt may have been applied. 0 disables retries.
  int max_retries = 5;
  std::string user_agent = "resiliency-operator/0.1";
};

// Who wrote a kubeconfig, which decides whether it may name files.
//   kFile:   the operator's own configuration (a flag, a mounted file): paths in
//            certificate-authority / client-certificate / client-key / tokenFile are read.
//   kSecret: a user of the cluster, through a Secret (a KubernetesCluster's kubeconfig,
//            also once the runner wrote it to a component's file). Its paths would name
//            files of the operator's own filesystem (its service-account token, /dev/zero)
//            and send them to a server the Secret's author chose, so any of those four
//            fields is refused: only certificate-authority-data, client-certificate-data,
//            client-key-data and token are accepted.
enum class KubeconfigOrigin { kFile, kSecret };

// Parses kubeconfig YAML. `context` empty: current-context. `base_dir` resolves relative
// certificate-authority / client-certificate / client-key / tokenFile paths (the
// directory of the file) of a kFile kubeconfig. Throws ConfigError naming the wrong
// field, e.g. "contexts[prod].context.cluster: cluster \"x\" not found", or
// "users[admin].user.tokenFile: a file path is not accepted in a kubeconfig from a
// Secret ...". Two clusters, contexts or users of the same name are refused, as
// client-go does ("clusters[1].name: duplicate name ..."), even when the selected
// context does not use them.
RestConfig LoadKubeconfig(std::string_view yaml_text, std::string_view context = "",
                          std::string_view base_dir = "", KubeconfigOrigin origin = KubeconfigOrigin::kFile);

// Reads and parses a kubeconfig file (paths in a kFile kubeconfig resolve against its
// directory). Throws ConfigError (field "file") when unreadable.
RestConfig LoadKubeconfigFile(const std::string& path, std::string_view context = "",
                              KubeconfigOrigin origin = KubeconfigOrigin::kFile);

// The pod's service account: KUBERNETES_SERVICE_HOST/PORT and
// /var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt,namespace}.
// Throws ConfigError when not running in a pod.
RestConfig InClusterConfig();

// InClusterConfig() with its inputs explicit: the service host and port (an IPv6 host is
// bracketed) and the directory holding token, ca.crt and (optional) namespace.
// For tests and unusual mounts. Throws ConfigError naming the missing input.
RestConfig InClusterConfigFrom(std::string_view host, std::string_view port,
                               const std::string& service_account_dir);

// The usual resolution order: an explicit path (the --kubeconfig flag), then
// $KUBECONFIG (its first file: several files are not merged), then in-cluster, then
// ~/.kube/config.
// Throws ConfigError when none works.
RestConfig LoadDefaultConfig(const std::string& kubeconfig_path = "");

}  // namespace ro::kube

// A Kubernetes control plane for tests: etcd 3.4 + kube-apiserver 1.20.2, and optionally
// kube-controller-manager (ownerReference garbage collection, namespace deletion,
// service-account tokens) and a real node (with_node: kube-scheduler, containerd, kubelet,
// kube-proxy; see kube_node.h). Without a node, Pods are stored, never run.
//
// Everything binds 127.0.0.1 on ports the harness picks and lives in one fresh temp dir.
// The apiserver serves TLS with a certificate of a CA made per cluster (EC P-256, SAN
// IP:127.0.0.1 and DNS:localhost, plus IP:10.0.0.1 and DNS:kubernetes.default.svc for
// pods on its node and IP:10.244.0.1 for pods on another cluster's node), authenticates with static bearer tokens
// (--token-auth-file) and authorizes with RBAC, so clients are checked exactly as
// against a real cluster. The kubeconfigs written carry certificate-authority-data and
// a token (never insecure-skip-tls-verify).
//
// Binaries: kube-apiserver and kube-controller-manager from KubeBinDir() (built by
// scripts/build-kube.sh); etcd, kubectl and openssl from $PATH.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ro/testenv/kube_node.h"
#include "ro/testenv/paths.h"
#include "ro/testenv/ports.h"
#include "ro/testenv/process.h"

namespace ro::testenv {

// A user with a static token: authenticated as `name` with `groups` (RBAC decides what
// it may do; grant it with kubectl as the admin).
struct KubeUser {
  std::string name;
  std::vector<std::string> groups;
};

struct KubeClusterOptions {
  // Label for temp dirs and messages ("kube", "source", "destination").
  std::string name = "kube";
  // Also run kube-controller-manager with `controllers`.
  bool with_controller_manager = false;
  // --controllers of kube-controller-manager: ownerReference garbage collection,
  // namespace deletion, service-account token Secrets, and the aggregated ClusterRoles
  // (admin/edit/view get their rules from clusterrole-aggregation).
  std::vector<std::string> controllers = {"garbagecollector", "namespace", "serviceaccount-token",
                                          "clusterrole-aggregation"};
  // Also run a node (kube-scheduler, containerd, kubelet, kube-proxy in their own
  // namespaces; see kube_node.h). Implies the controller manager, with the
  // nodelifecycle, endpoint, endpointslice, serviceaccount, deployment, replicaset,
  // statefulset and job controllers added (Deployments and StatefulSets roll out pods,
  // Jobs run theirs), and
  // the apiserver's ServiceAccount admission plugin on (pods get their token). Needs root.
  bool with_node = false;
  // Extra users in the token file (the admin, group system:masters, is always there).
  std::vector<KubeUser> users;
  // --watch-cache of kube-apiserver. Off: every watch is served from etcd directly.
  bool watch_cache = true;
  // Appended to kube-apiserver's flags (e.g. "--feature-gates=...").
  std::vector<std::string> extra_apiserver_flags;
  // Deadline for each component to become ready (cold start of the apiserver: ~2-10 s
  // on 2 busy cores).
  std::chrono::milliseconds start_timeout{120000};
};

// How long the start-up steps took (for reports; never asserted on).
struct KubeClusterTimings {
  std::chrono::milliseconds certs{0};               // openssl: CA, serving cert, SA key
  std::chrono::milliseconds etcd{0};                // fork -> /health true
  std::chrono::milliseconds apiserver{0};           // fork -> /readyz ok
  std::chrono::milliseconds controller_manager{0};  // fork -> /healthz ok (0 if none)
  std::chrono::milliseconds node{0};                // namespaces -> Node Ready (0 if none)
  std::chrono::milliseconds total{0};               // constructor start -> ready
};

class KubeCluster;

// One kube-apiserver process of a KubeCluster. Owned by the cluster; references stay
// valid for the cluster's life. Not thread-safe.
class Apiserver {
 public:
  ~Apiserver();
  Apiserver(const Apiserver&) = delete;
  Apiserver& operator=(const Apiserver&) = delete;

  // "https://127.0.0.1:<port>".
  std::string server_url() const;
  std::uint16_t port() const { return port_.port(); }
  // An admin kubeconfig (group system:masters) pointing at this apiserver.
  const std::filesystem::path& kubeconfig_path() const { return kubeconfig_path_; }
  bool running() const;
  // Stops the process (SIGTERM, then SIGKILL). etcd keeps running. Idempotent.
  void Stop();
  // kill -9: SIGKILL, no graceful shutdown (open watches and requests just break). etcd
  // keeps running. Idempotent.
  void Kill();
  // Starts it again on the same port and waits for /readyz. No-op when running.
  // Throws TestEnvError (command line + log tail) on failure.
  void Start();
  // The running process, or nullptr when stopped.
  const Process* process() const { return process_.get(); }
  // Time of the last successful Start() (fork -> /readyz ok).
  std::chrono::milliseconds startup_time() const { return startup_time_; }

 private:
  friend class KubeCluster;
  Apiserver(const KubeCluster& cluster, std::string name);

  const KubeCluster& cluster_;
  std::string name_;
  PortLease port_;
  std::filesystem::path kubeconfig_path_;
  std::chrono::milliseconds startup_time_{0};
  std::unique_ptr<Process> process_;
};

// etcd + kube-apiserver (+ kube-controller-manager). The constructor returns when every
// component is ready; the destructor stops all of them by PID and removes the temp dir.
// Thread-safety: start/stop from one thread; the const members (Kubectl(), the
// accessors, CompactEtcd()) may be called from several threads at once.
class KubeCluster {
 public:
  // Throws TestEnvError (command line + log tail of the failing component) when a
  // binary is missing or a component is not ready before options.start_timeout.
  explicit KubeCluster(KubeClusterOptions options = {});
  ~KubeCluster();
  KubeCluster(const KubeCluster&) = delete;
  KubeCluster& operator=(const KubeCluster&) = delete;

  const std::string& name() const { return options_.name; }
  // The main apiserver: "https://127.0.0.1:<port>".
  std::string server_url() const { return apiserver_->server_url(); }
  // Admin kubeconfig (user "admin", group system:masters) of the main apiserver.
  const std::filesystem::path& kubeconfig_path() const { return apiserver_->kubeconfig_path(); }
  // PEM of the CA that signed the apiserver's serving certificate, and its file.
  const std::string& ca_pem() const { return ca_pem_; }
  std::filesystem::path ca_path() const;
  const std::string& admin_token() const { return admin_token_; }
  // Token of an extra user from options.users. Throws TestEnvError for an unknown user.
  const std::string& TokenFor(std::string_view user) const;
  // Writes a kubeconfig for the main apiserver authenticating with `token` (0600).
  void WriteKubeconfig(const std::filesystem::path& path, std::string_view token) const;
  // Writes an admin kubeconfig (0600) whose server is `server_url` instead of
  // server_url(), e.g. "https://10.244.0.1:<port>" for pods on another cluster's node
  // (KubeNode::ExposeHostPort; the serving certificate has IP:10.244.0.1).
  void WriteKubeconfigForServer(const std::filesystem::path& path, const std::string& server_url) const;
  // Writes <dir>/kubeconfig-<user> for an extra user and returns its path.
  std::filesystem::path KubeconfigFor(std::string_view user) const;
  // "http://127.0.0.1:<port>" of etcd (plain HTTP, loopback only).
  std::string etcd_url() const;
  // The etcd process.
  const Process& etcd() const { return *etcd_; }
  // The cluster's temp dir (certs, tokens, logs: etcd.log, kube-apiserver.log, ...).
  const std::filesystem::path& dir() const { return dir_.path(); }
  const KubeClusterTimings& timings() const { return timings_; }

  // Runs the real kubectl with the admin kubeconfig: `kubectl <args...>`, stdin_data on
  // its stdin (e.g. args {"apply", "-f", "-"}). Returns stdout. Throws TestEnvError
  // with stderr when kubectl exits non-zero or takes longer than 60 s.
  std::string Kubectl(const std::vector<std::string>& args,
                      std::string_view stdin_data = {}) const;

  // The main apiserver (same object as used by StopApiserver/StartApiserver).
  Apiserver& apiserver() { return *apiserver_; }
  const Apiserver& apiserver() const { return *apiserver_; }
  // The node (options.with_node). Throws TestEnvError when the cluster has none.
  KubeNode& node() const;
  // Imports an OCI/Docker image archive into the node's containerd (k8s.io namespace).
  void ImportImage(const std::filesystem::path& archive) const { node().ImportImage(archive); }
  // Stops the main apiserver; etcd (and the controller manager) keep running.
  void StopApiserver() { apiserver_->Stop(); }
  // kill -9 of the main apiserver; etcd (and the controller manager) keep running.
  void KillApiserver() { apiserver_->Kill(); }
  // Starts the main apiserver again on the same port; waits for /readyz.
  void StartApiserver() { apiserver_->Start(); }
  // Starts another apiserver on the same etcd, with its own port and admin kubeconfig
  // (e.g. to write while the main one is down, so the main one's watchers get 410 Gone
  // after compaction). Owned by the cluster; stop it with Apiserver::Stop().
  Apiserver& StartExtraApiserver();

  // Compacts etcd's history up to its current revision (etcd v3 JSON gateway
  // POST /v3/kv/compaction, physical). Watches and lists from an older
  // resourceVersion then fail with 410 Gone (once the apiserver's watch cache, if on,
  // no longer holds them). Returns the compacted revision. Throws TestEnvError.
  std::int64_t CompactEtcd() const;

  // Stops every component (node, controller manager, apiservers, etcd). Idempotent.
  void Stop();

 private:
  friend class Apiserver;
  std::vector<std::string> ApiserverArgs(std::uint16_t port) const;
  void WriteKubeconfigFor(const std::filesystem::path& path, const std::string& server_url,
                          std::string_view user, std::string_view token) const;
  void MakeCertificates();
  void StartControllerManager();

  // Constant after construction.
  KubeClusterOptions options_;
  TempDir dir_;
  std::string admin_token_;
  std::map<std::string, std::string, std::less<>> user_tokens_;  // user -> token
  PortLease etcd_port_;
  PortLease etcd_peer_port_;
  PortLease controller_manager_port_;
  std::string ca_pem_;
  KubeClusterTimings timings_;

  std::unique_ptr<Process> etcd_;
  std::unique_ptr<Apiserver> apiserver_;
  std::vector<std::unique_ptr<Apiserver>> extra_apiservers_;
  std::unique_ptr<Process> controller_manager_;
  std::unique_ptr<KubeNode> node_;
};

}  // namespace ro::testenv

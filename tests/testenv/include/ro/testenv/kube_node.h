// A real Kubernetes node for KubeCluster (KubeClusterOptions::with_node): containerd +
// runc + CNI (bridge, host-local, portmap) + kubelet + kube-proxy (iptables mode), and
// kube-scheduler, all 1.20.2 / Debian bookworm.
//
// Isolation and clean-up: the node runs in its own pid + mount + network namespaces,
// made by `unshare --pid --fork --kill-child=SIGKILL --mount --net` whose pid 1 is a
// small shell ("holder"). containerd, kubelet and kube-proxy join them with nsenter.
// When the holder dies (Stop(), or the harness process dies: PR_SET_PDEATHSIG kills
// unshare, --kill-child kills pid 1) the kernel kills every process in the pid
// namespace (containerd, shims, containers, kubelet, kube-proxy) and frees the mount and
// network namespaces with every overlay/tmpfs/netns mount, the bridge `cni0`, the veths
// and every iptables rule in them. Nothing of that is visible in the host namespaces.
// Only cgroup directories are left in the host's cgroup file systems; they all live
// under one root per node (/sys/fs/cgroup/<hierarchy>/ro-testenv-<pid>-<hex>), removed
// by Stop(), and removed by the next node's start-up when their owner process is gone.
//
// Networking: the node namespace has lo and the bridge cni0 (10.244.0.1/24). Pods get
// 10.244.0.x and a route to the Service CIDR (10.0.0.0/24) only: no default route, no
// masquerading, so no traffic leaves the node namespace. Two TCP forwarders cross the
// namespaces: node 127.0.0.1:<apiserver port> -> host 127.0.0.1:<apiserver port> (so
// the admin kubeconfig works inside), and host 127.0.0.1:<kubelet port> -> node
// 127.0.0.1:<kubelet port> (logs/exec: the node is named "localhost" and the apiserver
// prefers the Hostname address). The first also listens on the bridge's 10.244.0.1,
// where the Endpoints/EndpointSlice of the Service `kubernetes` point: pods reach the
// apiserver at 10.0.0.1:443 (the serving certificate has IP:10.0.0.1 and
// DNS:kubernetes.default.svc) with their mounted service-account token.
//
// DNS: dnsmasq in the node's netns on 10.244.0.1:53 (the kubelet's --cluster-dns,
// domain cluster.local) answers <service>.<namespace>.svc.cluster.local with the
// ClusterIP, from a hosts directory that a harness thread rewrites from the Service list
// every second; nothing else is resolved (no upstream).
//
// Images: nothing is pulled. The pause image and a busybox image (docker.io/ro-testenv/
// busybox:1, from Debian's busybox-static) are imported at start-up; more with
// ImportImage(). Use imagePullPolicy: Never (or IfNotPresent with a non-latest tag).
//
// Needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN). Binaries: kubelet, kube-proxy,
// kube-scheduler from KubeBinDir(); containerd, ctr, runc, unshare, nsenter, iptables,
// tar, dnsmasq from $PATH; CNI plugins from /usr/lib/cni; /bin/busybox (busybox-static).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "ro/testenv/ports.h"
#include "ro/testenv/process.h"

namespace ro::testenv {

class KubeCluster;

namespace internal {
class NetnsForwarder;
}

// The image every node has: a static busybox (sh, sleep, nc, httpd, ...). Note: its
// `wget` crashes (static glibc); use `nc`.
inline constexpr const char* kBusyboxImage = "docker.io/ro-testenv/busybox:1";

// Writes an OCI image archive (for `ctr images import`) whose single layer holds
// /bin/busybox with the usual applet symlinks, /etc/passwd and /etc/group; `cmd` is the
// image's default command. `work_dir` holds the intermediate files. Throws TestEnvError.
void MakeBusyboxImage(const std::filesystem::path& archive, const std::string& image_name,
                      const std::vector<std::string>& cmd, const std::filesystem::path& work_dir);

struct KubeNodeTimings {
  std::chrono::milliseconds namespaces{0};  // unshare -> bridge up
  std::chrono::milliseconds containerd{0};  // fork -> answering, images imported
  std::chrono::milliseconds scheduler{0};   // fork -> /healthz ok
  std::chrono::milliseconds kubelet{0};     // fork -> Node Ready and untainted
  std::chrono::milliseconds kube_proxy{0};  // fork -> KUBE-SERVICES chain exists
  std::chrono::milliseconds dns{0};         // fork of dnsmasq -> "started" in its log
  std::chrono::milliseconds total{0};
};

// What a pod's cgroup has used so far (all its containers and its sandbox).
struct PodUsage {
  // memory usage minus inactive page cache: the "working set" that kubectl top and the
  // kubelet's eviction use (cAdvisor's container_memory_working_set_bytes).
  std::uint64_t memory_working_set_bytes = 0;
  // CPU time since the pod started, user + system, in nanoseconds.
  std::uint64_t cpu_usage_ns = 0;
};

// Owned by a KubeCluster (KubeClusterOptions::with_node); not made directly.
class KubeNode {
 public:
  ~KubeNode();
  KubeNode(const KubeNode&) = delete;
  KubeNode& operator=(const KubeNode&) = delete;

  // The Node's name ("localhost").
  static constexpr const char* kNodeName = "localhost";

  // Imports an OCI or Docker image archive into containerd's k8s.io namespace
  // (`ctr images import`). Throws TestEnvError with ctr's stderr.
  void ImportImage(const std::filesystem::path& archive) const;
  // Makes the host's 127.0.0.1:`port` (another cluster's apiserver, an S3 server, ...)
  // reachable from the pods at 10.244.0.1:`port` (the bridge's address) and returns that
  // "10.244.0.1:<port>". A forwarder in the node's network namespace, stopped with the
  // node. Idempotent per port. Throws TestEnvError when the port cannot be bound.
  std::string ExposeHostPort(std::uint16_t port);
  // The cgroup usage of the pod with metadata.uid `pod_uid` (cgroup v1 memory + cpuacct
  // hierarchies, or cgroup2), read under the node's cgroup root
  // (kubepods/<qos>/pod<uid>). Throws TestEnvError when the pod has no cgroup there.
  PodUsage ReadPodUsage(std::string_view pod_uid) const;
  // Runs `argv` inside the node's namespaces (nsenter) and returns stdout, e.g.
  // {"iptables-save"}. Throws TestEnvError on a non-zero exit.
  std::string RunInNode(const std::vector<std::string>& argv) const;
  // Host PID of pid 1 of the node's namespaces (0 when stopped).
  pid_t namespace_pid() const { return init_pid_; }
  const std::filesystem::path& containerd_socket() const { return containerd_socket_; }
  const KubeNodeTimings& timings() const { return timings_; }
  // All processes (kube-proxy, kubelet, containerd, scheduler, the namespaces) by PID,
  // then the cgroups. Idempotent; never throws.
  void Stop() noexcept;

 private:
  friend class KubeCluster;
  // Starts everything and waits until the Node is Ready. Throws TestEnvError.
  KubeNode(const KubeCluster& cluster, std::chrono::milliseconds start_timeout);
  void Start(std::chrono::milliseconds start_timeout);
  std::vector<std::string> InNode(std::vector<std::string> argv) const;

  const KubeCluster& cluster_;
  std::filesystem::path dir_;
  std::filesystem::path containerd_socket_;
  std::string cgroup_root_;  // "/ro-testenv-<pid>-<hex>"
  PortLease kubelet_port_;
  PortLease scheduler_port_;
  pid_t init_pid_ = 0;
  KubeNodeTimings timings_;
  std::unique_ptr<Process> holder_;
  std::unique_ptr<internal::NetnsForwarder> apiserver_forwarder_;
  std::unique_ptr<internal::NetnsForwarder> kubelet_forwarder_;
  std::map<std::uint16_t, std::unique_ptr<internal::NetnsForwarder>> exposed_;  // ExposeHostPort
  std::unique_ptr<Process> containerd_;
  std::unique_ptr<Process> scheduler_;
  std::unique_ptr<Process> kubelet_;
  std::unique_ptr<Process> kube_proxy_;
  std::unique_ptr<Process> dnsmasq_;
  std::jthread dns_watcher_;  // Services -> dnsmasq's hosts directory
};

}  // namespace ro::testenv

#include "ro/testenv/kube_node.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <list>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "net.h"
#include "ro/testenv/errors.h"
#include "ro/testenv/kube_cluster.h"
#include "ro/testenv/paths.h"
#include "ro/testenv/wait.h"

namespace ro::testenv {
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kPauseImage = "docker.io/ro-testenv/pause:1";
constexpr const char* kCniBinDir = "/usr/lib/cni";
constexpr const char* kBridgeAddress = "10.244.0.1";
constexpr const char* kPodCidr = "10.244.0.0/24";
// Same as KubeCluster's --service-cluster-ip-range: the only route pods get.
constexpr const char* kServiceCidr = "10.0.0.0/24";
constexpr const char* kCgroupPrefix = "ro-testenv-";
constexpr auto kCommandTimeout = 60s;
constexpr auto kHttpProbeTimeout = 2s;
constexpr auto kCgroupRemoveTimeout = 10s;

// pid 1 of the node's namespaces. $1: the node dir. Private tmpfs where the kubelet and
// libcni write to fixed host paths; lo and the bridge up; then reap orphans (shims)
// until SIGTERM. Exiting kills everything in the pid namespace.
constexpr const char* kHolderScript = R"sh(set -e
for d in /var/lib/cni /var/log/pods /var/log/containers; do
  mkdir -p "$d"; mount -t tmpfs -o mode=0755 tmpfs "$d"
done
# No name server inside: nothing is looked up outside the node.
: > "$1/resolv.conf"
mount --bind "$1/resolv.conf" /etc/resolv.conf
ip link set lo up
ip link add cni0 type bridge
ip addr add 10.244.0.1/24 dev cni0
ip link set cni0 up
sysctl -qw net.ipv4.ip_forward=1
sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || true
trap 'exit 0' TERM INT
touch "$1/holder.ready"
while :; do sleep 1 & wait $! || true; done
)sh";

std::chrono::milliseconds Since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

std::string Sha256Hex(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md.data(), &len, EVP_sha256(), nullptr) != 1) {
    throw TestEnvError("EVP_Digest(sha256) failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 0xf];
  }
  return out;
}

fs::path KubeBinaryPath(std::string_view name) {
  fs::path path = KubeBinDir() / name;
  if (!fs::exists(path)) {
    throw TestEnvError(std::string(name) + " not found at " + path.string() +
                       " (run scripts/setup.sh: scripts/build-kube.sh builds it, or set RO_KUBE_BIN)");
  }
  return path;
}

bool PidAlive(pid_t pid) { return ::kill(pid, 0) == 0 || errno == EPERM; }

// Mount points of every cgroup (v1) and cgroup2 file system.
std::vector<fs::path> CgroupMounts() {
  std::vector<fs::path> out;
  std::ifstream in("/proc/self/mounts");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string source, target, type;
    fields >> source >> target >> type;
    if (type == "cgroup" || type == "cgroup2") out.emplace_back(target);
  }
  return out;
}

// rmdir depth-first (cgroup directories cannot be removed with their files).
bool RemoveCgroupTree(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return true;
  bool ok = true;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_directory(ec) && !entry.is_symlink(ec)) ok = RemoveCgroupTree(entry.path()) && ok;
  }
  if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) ok = false;
  return ok;
}

// Removes the cgroup roots of nodes whose harness process is gone ("ro-testenv-<pid>-*").
void SweepStaleCgroups() {
  for (const auto& mount : CgroupMounts()) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(mount, ec)) {
      std::string name = entry.path().filename().string();
      if (name.rfind(kCgroupPrefix, 0) != 0 || !entry.is_directory(ec)) continue;
      std::string rest = name.substr(std::strlen(kCgroupPrefix));
      pid_t owner = static_cast<pid_t>(std::atoi(rest.c_str()));
      if (owner > 0 && !PidAlive(owner)) RemoveCgroupTree(entry.path());
    }
  }
}

// setns(2) of the calling thread into the network namespace at `path`.
void EnterNetns(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw TestEnvError("open " + path.string() + ": " + std::strerror(errno));
  int rc = ::setns(fd, CLONE_NEWNET);
  int err = errno;
  ::close(fd);
  if (rc != 0) throw TestEnvError("setns " + path.string() + ": " + std::strerror(err));
}

bool WriteAll(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

// Copies bytes both ways until both sides closed (half-close is passed on) or stop.
void Pump(std::stop_token stop, int a, int b) {
  std::array<char, 65536> buffer{};
  std::array<bool, 2> open = {true, true};
  std::array<int, 2> fds = {a, b};
  while (!stop.stop_requested() && (open[0] || open[1])) {
    std::array<pollfd, 2> p{};
    for (int i = 0; i < 2; ++i) p[i] = {open[i] ? fds[i] : -1, POLLIN, 0};
    int n = ::poll(p.data(), 2, 200);
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    bool failed = false;
    for (int i = 0; i < 2 && !failed; ++i) {
      if (!open[i] || (p[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      ssize_t r = ::read(fds[i], buffer.data(), buffer.size());
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        open[i] = false;
        ::shutdown(fds[1 - i], SHUT_WR);
      } else if (!WriteAll(fds[1 - i], buffer.data(), static_cast<std::size_t>(r))) {
        failed = true;
      }
    }
    if (failed) break;
  }
  ::close(a);
  ::close(b);
}

int Listen(std::uint32_t address, std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw TestEnvError(std::string("socket: ") + std::strerror(errno));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(address);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 64) != 0) {
    int err = errno;
    ::close(fd);
    throw TestEnvError("listen on port " + std::to_string(port) + ": " + std::strerror(err));
  }
  return fd;
}

}  // namespace

namespace internal {

// Listens on listen_address:port in network namespace `listen_ns` and connects every
// accepted connection to 127.0.0.1:port in `connect_ns` (empty path: the harness's
// own namespace). Threads: one acceptor, one per connection.
class NetnsForwarder {
 public:
  NetnsForwarder(std::uint32_t listen_address, std::uint16_t port, const fs::path& listen_ns, const fs::path& connect_ns)
      : port_(port) {
    if (listen_ns.empty()) {
      listen_fd_ = Listen(listen_address, port);
    } else {
      // A short-lived thread enters the namespace: the socket keeps it, the harness's
      // threads stay where they are.
      std::string error;
      std::thread([&] {
        try {
          EnterNetns(listen_ns);
          listen_fd_ = Listen(listen_address, port);
        } catch (const std::exception& e) {
          error = e.what();
        }
      }).join();
      if (!error.empty()) throw TestEnvError(error);
    }
    acceptor_ = std::jthread([this, connect_ns](std::stop_token stop) { AcceptLoop(stop, connect_ns); });
  }
  ~NetnsForwarder() {
    acceptor_.request_stop();
    if (acceptor_.joinable()) acceptor_.join();
    std::lock_guard lock(mu_);
    for (auto& t : pumps_) t.request_stop();
    pumps_.clear();  // joins
    ::close(listen_fd_);
  }
  NetnsForwarder(const NetnsForwarder&) = delete;
  NetnsForwarder& operator=(const NetnsForwarder&) = delete;

 private:
  void AcceptLoop(const std::stop_token& stop, const fs::path& connect_ns) {
    if (!connect_ns.empty()) {
      try {
        EnterNetns(connect_ns);  // this thread's outgoing sockets live there
      } catch (const std::exception&) {
        return;
      }
    }
    while (!stop.stop_requested()) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) continue;
      int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      int upstream = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(port_);
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (upstream < 0 || ::connect(upstream, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        if (upstream >= 0) ::close(upstream);
        ::close(client);
        continue;
      }
      std::lock_guard lock(mu_);
      pumps_.emplace_back([client, upstream](std::stop_token s) { Pump(s, client, upstream); });
    }
  }

  std::uint16_t port_;
  int listen_fd_ = -1;
  std::mutex mu_;
  std::list<std::jthread> pumps_;  // guarded by mu_
  std::jthread acceptor_;
};

}  // namespace internal

// ---- images ---------------------------------------------------------------------------

void MakeBusyboxImage(const fs::path& archive, const std::string& image_name, const std::vector<std::string>& cmd,
                      const fs::path& work_dir) {
  const fs::path busybox = "/bin/busybox";
  if (!fs::exists(busybox)) throw TestEnvError("/bin/busybox not found (Debian package busybox-static)");
  fs::path rootfs = work_dir / "rootfs";
  fs::path oci = work_dir / "oci";
  fs::remove_all(work_dir);
  for (const char* d : {"bin", "etc", "proc", "sys", "dev", "tmp", "var", "root"}) fs::create_directories(rootfs / d);
  fs::permissions(rootfs / "tmp", fs::perms::all | fs::perms::sticky_bit);
  fs::copy_file(busybox, rootfs / "bin/busybox");
  for (const char* applet : {"sh", "sleep", "ls", "cat", "echo", "true", "false", "nc", "httpd", "ip", "hostname",
                             "env", "ps", "id", "mkdir", "printf", "test", "grep", "wget", "nslookup"}) {
    fs::create_symlink("busybox", rootfs / "bin" / applet);
  }
  WriteFile(rootfs / "etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n");
  WriteFile(rootfs / "etc/group", "root:x:0:\nnobody:x:65534:\n");
  RunOptions run;
  run.timeout = kCommandTimeout;
  fs::path layer_tar = work_dir / "layer.tar";
  RunCommand({"tar", "-C", rootfs.string(), "--owner=0", "--group=0", "--numeric-owner", "--mtime=@0", "--sort=name",
              "-cf", layer_tar.string(), "."},
             run);
  fs::create_directories(oci / "blobs/sha256");
  auto blob = [&](const std::string& data) {
    std::string digest = Sha256Hex(data);
    WriteFile(oci / "blobs/sha256" / digest, data);
    return std::make_pair("sha256:" + digest, data.size());
  };
  std::string layer = ReadFile(layer_tar);
  auto [layer_digest, layer_size] = blob(layer);
  using nlohmann::json;
  json config = {{"architecture", "amd64"}, {"os", "linux"}};
  config["config"] = json::object({{"Env", json::array({"PATH=/bin"})}, {"Cmd", cmd}, {"WorkingDir", "/"}});
  config["rootfs"] = json::object({{"type", "layers"}, {"diff_ids", json::array({layer_digest})}});
  auto [config_digest, config_size] = blob(config.dump());
  json manifest = {{"schemaVersion", 2}, {"mediaType", "application/vnd.oci.image.manifest.v1+json"}};
  manifest["config"] = json::object(
      {{"mediaType", "application/vnd.oci.image.config.v1+json"}, {"digest", config_digest}, {"size", config_size}});
  manifest["layers"] = json::array({json::object(
      {{"mediaType", "application/vnd.oci.image.layer.v1.tar"}, {"digest", layer_digest}, {"size", layer_size}})});
  auto [manifest_digest, manifest_size] = blob(manifest.dump());
  std::string tag = image_name.substr(image_name.rfind(':') + 1);
  json descriptor = {{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                     {"digest", manifest_digest},
                     {"size", manifest_size}};
  descriptor["platform"] = json::object({{"architecture", "amd64"}, {"os", "linux"}});
  descriptor["annotations"] =
      json::object({{"io.containerd.image.name", image_name}, {"org.opencontainers.image.ref.name", tag}});
  json index = {{"schemaVersion", 2}};
  index["manifests"] = json::array({descriptor});
  WriteFile(oci / "index.json", index.dump());
  WriteFile(oci / "oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
  RunCommand({"tar", "-C", oci.string(), "--owner=0", "--group=0", "--numeric-owner", "-cf", archive.string(), "."}, run);
}

// ---- KubeNode -------------------------------------------------------------------------

KubeNode::KubeNode(const KubeCluster& cluster, std::chrono::milliseconds start_timeout)
    : cluster_(cluster), dir_(cluster.dir() / "node") {
  try {
    Start(start_timeout);
  } catch (...) {
    Stop();
    throw;
  }
}

KubeNode::~KubeNode() { Stop(); }

std::vector<std::string> KubeNode::InNode(std::vector<std::string> argv) const {
  std::vector<std::string> out = {"nsenter", "-t", std::to_string(init_pid_), "--pid", "--mount", "--net", "--"};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

std::string KubeNode::RunInNode(const std::vector<std::string>& argv) const {
  RunOptions options;
  options.timeout = kCommandTimeout;
  return RunCommand(InNode(argv), options).out;
}

void KubeNode::ImportImage(const fs::path& archive) const {
  RunOptions options;
  options.timeout = kCommandTimeout;
  RunCommand({"ctr", "-a", containerd_socket_.string(), "-n", "k8s.io", "images", "import", archive.string()}, options);
}

void KubeNode::Start(std::chrono::milliseconds start_timeout) {
  auto start = Clock::now();
  if (::geteuid() != 0) throw TestEnvError("a KubeCluster node needs root (namespaces, mounts, iptables)");
  fs::path kubelet_bin = KubeBinaryPath("kubelet");
  fs::path proxy_bin = KubeBinaryPath("kube-proxy");
  fs::path scheduler_bin = KubeBinaryPath("kube-scheduler");
  const char* hint = "Debian packages containerd runc containernetworking-plugins iptables; run scripts/setup.sh";
  fs::path containerd_bin = FindExecutable("containerd", hint);
  FindExecutable("ctr", hint);
  fs::path runc_bin = FindExecutable("runc", hint);
  FindExecutable("iptables", hint);
  fs::path dnsmasq_bin = FindExecutable("dnsmasq", "Debian package dnsmasq-base; run scripts/setup.sh");
  FindExecutable("unshare", "Debian package util-linux");
  FindExecutable("nsenter", "Debian package util-linux");
  if (!fs::exists(fs::path(kCniBinDir) / "bridge")) {
    throw TestEnvError(std::string("CNI plugins not found in ") + kCniBinDir + " (" + hint + ")");
  }
  fs::create_directories(dir_);
  const std::string admin_kubeconfig = cluster_.kubeconfig_path().string();

  // Cgroups: one root per node, in every hierarchy (the kubelet checks it exists).
  SweepStaleCgroups();
  cgroup_root_ = "/" + std::string(kCgroupPrefix) + std::to_string(::getpid()) + "-" + internal::RandomHex(4);
  for (const auto& mount : CgroupMounts()) {
    std::error_code ec;
    fs::create_directory(mount / cgroup_root_.substr(1), ec);
  }

  // The namespaces.
  ProcessOptions holder;
  holder.name = "node-namespaces";
  holder.argv = {"unshare", "--pid", "--fork", "--kill-child=SIGKILL", "--mount-proc", "--mount",
                 "--propagation", "private", "--net", "sh", "-c", kHolderScript, "holder", dir_.string()};
  holder.log_path = dir_ / "holder.log";
  holder_ = std::make_unique<Process>(std::move(holder));
  holder_->WaitUntilReady(
      [&] {
        if (!fs::exists(dir_ / "holder.ready")) return false;
        std::ifstream children("/proc/" + std::to_string(holder_->pid()) + "/task/" + std::to_string(holder_->pid()) +
                               "/children");
        pid_t child = 0;
        if (!(children >> child) || child <= 0) return false;
        init_pid_ = child;
        return true;
      },
      start_timeout, "the node's namespaces (holder.ready)");
  fs::path netns = "/proc/" + std::to_string(init_pid_) + "/ns/net";
  // Inside the node on every address: 127.0.0.1 for the kubelet and kube-proxy, the
  // bridge's 10.244.0.1 for pods (the Endpoints of the Service `kubernetes`).
  apiserver_forwarder_ =
      std::make_unique<internal::NetnsForwarder>(INADDR_ANY, cluster_.apiserver().port(), netns, fs::path());
  kubelet_forwarder_ =
      std::make_unique<internal::NetnsForwarder>(INADDR_LOOPBACK, kubelet_port_.port(), fs::path(), netns);
  timings_.namespaces = Since(start);

  // containerd + CNI + images.
  auto containerd_start = Clock::now();
  fs::path cd = dir_ / "containerd";
  fs::create_directories(cd / "net.d");
  containerd_socket_ = cd / "containerd.sock";
  using nlohmann::json;
  json bridge = {{"type", "bridge"}, {"bridge", "cni0"}, {"isGateway", true}, {"ipMasq", false}, {"hairpinMode", true}};
  json ipam = {{"type", "host-local"}, {"dataDir", (cd / "ipam").string()}};
  ipam["ranges"] = json::array({json::array({json::object({{"subnet", kPodCidr}})})});
  ipam["routes"] = json::array({json::object({{"dst", kServiceCidr}})});
  bridge["ipam"] = ipam;
  json portmap = {{"type", "portmap"}, {"capabilities", json::object({{"portMappings", true}})}};
  json conflist = {{"cniVersion", "0.4.0"}, {"name", "ro-testenv"}};
  conflist["plugins"] = json::array({bridge, portmap});
  WriteFile(cd / "net.d/10-ro-testenv.conflist", conflist.dump(2));
  auto q = [](const fs::path& p) { return "\"" + p.string() + "\""; };
  WriteFile(cd / "config.toml",
            "version = 2\n"
            "root = " + q(cd / "root") + "\n"
            "state = " + q(cd / "state") + "\n"
            "disabled_plugins = [\"io.containerd.snapshotter.v1.btrfs\", \"io.containerd.snapshotter.v1.zfs\",\n"
            "  \"io.containerd.snapshotter.v1.devmapper\", \"io.containerd.snapshotter.v1.aufs\"]\n"
            "[grpc]\n  address = " + q(containerd_socket_) + "\n"
            "[ttrpc]\n  address = " + q(cd / "containerd.sock.ttrpc") + "\n"
            "[debug]\n  address = \"\"\n"
            "[metrics]\n  address = \"\"\n"
            "[plugins.\"io.containerd.internal.v1.opt\"]\n  path = " + q(cd / "opt") + "\n"
            "[plugins.\"io.containerd.grpc.v1.cri\"]\n"
            "  sandbox_image = \"" + std::string(kPauseImage) + "\"\n"
            "  stream_server_address = \"127.0.0.1\"\n"
            "  stream_server_port = \"0\"\n"
            // No CAP_SYS_RESOURCE in some sandboxes: never lower oom_score_adj.
            "  restrict_oom_score_adj = true\n"
            "  netns_mounts_under_state_dir = true\n"
            "  enable_selinux = false\n"
            "  [plugins.\"io.containerd.grpc.v1.cri\".containerd]\n"
            "    snapshotter = \"overlayfs\"\n"
            "    default_runtime_name = \"runc\"\n"
            "    [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n"
            "      runtime_type = \"io.containerd.runc.v2\"\n"
            "      [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\n"
            "        SystemdCgroup = false\n"
            "        BinaryName = " + q(runc_bin) + "\n"
            "  [plugins.\"io.containerd.grpc.v1.cri\".cni]\n"
            "    bin_dir = \"" + std::string(kCniBinDir) + "\"\n"
            "    conf_dir = " + q(cd / "net.d") + "\n"
            "    max_conf_num = 1\n");
  ProcessOptions containerd;
  containerd.name = "containerd";
  containerd.argv = InNode({containerd_bin.string(), "--config", (cd / "config.toml").string()});
  containerd.log_path = dir_ / "containerd.log";
  containerd_ = std::make_unique<Process>(std::move(containerd));
  containerd_->WaitUntilReady(
      [&] {
        if (!fs::exists(containerd_socket_)) return false;
        RunOptions options;
        options.timeout = 5s;
        options.check = false;
        return RunCommand({"ctr", "-a", containerd_socket_.string(), "version"}, options).exit_code == 0;
      },
      start_timeout, "ctr version");
  fs::path images = dir_ / "images";
  fs::create_directories(images);
  MakeBusyboxImage(images / "pause.tar", kPauseImage, {"/bin/sleep", "2147483647"}, images / "pause");
  MakeBusyboxImage(images / "busybox.tar", kBusyboxImage, {"/bin/sh"}, images / "busybox");
  ImportImage(images / "pause.tar");
  ImportImage(images / "busybox.tar");
  timings_.containerd = Since(containerd_start);

  // kube-scheduler, on the host (it only talks to the apiserver).
  auto scheduler_start = Clock::now();
  std::string scheduler_port = std::to_string(scheduler_port_.port());
  ProcessOptions scheduler;
  scheduler.name = "kube-scheduler";
  scheduler.argv = {scheduler_bin.string(), "--kubeconfig=" + admin_kubeconfig, "--leader-elect=false",
                    "--port=" + scheduler_port, "--address=127.0.0.1", "--secure-port=0", "--profiling=false"};
  scheduler.log_path = dir_ / "kube-scheduler.log";
  scheduler_ = std::make_unique<Process>(std::move(scheduler));
  scheduler_->WaitUntilReady(
      [&] {
        auto r = internal::HttpCall(
            internal::HttpRequest::Get("http://127.0.0.1:" + scheduler_port + "/healthz", kHttpProbeTimeout));
        return r.status == 200 && r.body == "ok";
      },
      start_timeout, "GET /healthz = ok");
  timings_.scheduler = Since(scheduler_start);

  // Cluster DNS: dnsmasq on the bridge address, fed from the Service list and, for
  // headless Services, their Endpoints: "<hostname>.<service>.<ns>.svc.cluster.local" for
  // each address with a hostname (a StatefulSet's pods, as CoreDNS answers them).
  auto dns_start = Clock::now();
  fs::path hosts_dir = dir_ / "dns-hosts";
  fs::create_directories(hosts_dir);
  ProcessOptions dnsmasq;
  dnsmasq.name = "dnsmasq";
  dnsmasq.argv = InNode({dnsmasq_bin.string(), "--keep-in-foreground", "--log-facility=-", "--user=root",
                         "--pid-file=", "--no-resolv", "--no-hosts", "--bind-interfaces",
                         std::string("--listen-address=") + kBridgeAddress, "--port=53", "--local=/cluster.local/",
                         "--hostsdir=" + hosts_dir.string()});
  dnsmasq.log_path = dir_ / "dnsmasq.log";
  dnsmasq_ = std::make_unique<Process>(std::move(dnsmasq));
  dnsmasq_->WaitUntilReady(
      [&] { return ReadFile(dnsmasq_->log_path()).find("started, version") != std::string::npos; }, start_timeout,
      "\"started\" in its log");
  internal::HttpRequest services_get;
  services_get.url = cluster_.server_url() + "/api/v1/services";
  services_get.headers = {"Authorization: Bearer " + cluster_.admin_token()};
  services_get.ca_pem = cluster_.ca_pem();
  services_get.timeout = kHttpProbeTimeout;
  internal::HttpRequest endpoints_get = services_get;
  endpoints_get.url = cluster_.server_url() + "/api/v1/endpoints";
  dns_watcher_ = std::jthread([services_get, endpoints_get, hosts_dir](std::stop_token stop) {
    std::string last;
    while (!stop.stop_requested()) {
      try {
        auto r = internal::HttpCall(services_get);
        if (r.status == 200) {
          std::string hosts;
          std::set<std::string> headless;  // "<ns>/<name>"
          for (const auto& svc : nlohmann::json::parse(r.body).value("items", nlohmann::json::array())) {
            auto spec = svc.value("spec", nlohmann::json::object());
            auto meta = svc.value("metadata", nlohmann::json::object());
            std::string ip = spec.value("clusterIP", "");
            if (ip == "None") headless.insert(meta.value("namespace", "") + "/" + meta.value("name", ""));
            if (ip.empty() || ip == "None") continue;
            hosts += ip + " " + meta.value("name", "") + "." + meta.value("namespace", "") + ".svc.cluster.local\n";
          }
          if (!headless.empty()) {
            auto e = internal::HttpCall(endpoints_get);
            // Not answered: keep the last answers (no partial file).
            if (e.status != 200) throw std::runtime_error("GET endpoints: " + std::to_string(e.status));
            for (const auto& ep : nlohmann::json::parse(e.body).value("items", nlohmann::json::array())) {
              auto meta = ep.value("metadata", nlohmann::json::object());
              const std::string ns = meta.value("namespace", "");
              const std::string name = meta.value("name", "");
              if (!headless.contains(ns + "/" + name)) continue;
              for (const auto& subset : ep.value("subsets", nlohmann::json::array())) {
                for (const char* kind : {"addresses", "notReadyAddresses"}) {
                  for (const auto& address : subset.value(kind, nlohmann::json::array())) {
                    const std::string hostname = address.value("hostname", "");
                    if (hostname.empty()) continue;
                    hosts += address.value("ip", "") + " " + hostname + "." + name + "." + ns + ".svc.cluster.local\n";
                  }
                }
              }
            }
          }
          if (hosts != last) {
            // Write, then rename: dnsmasq (inotify on the directory) reads whole files.
            WriteFile(hosts_dir / ".services.tmp", hosts);
            fs::rename(hosts_dir / ".services.tmp", hosts_dir / "services");
            last = hosts;
          }
        }
      } catch (const std::exception&) {
        // Apiserver restarting or stopped: keep the last answers.
      }
      for (int i = 0; i < 10 && !stop.stop_requested(); ++i) std::this_thread::sleep_for(100ms);
    }
  });
  timings_.dns = Since(dns_start);

  // kubelet, in the namespaces.
  auto kubelet_start = Clock::now();
  fs::path kd = dir_ / "kubelet";
  fs::create_directories(kd);
  ProcessOptions kubelet;
  kubelet.name = "kubelet";
  kubelet.argv = InNode({kubelet_bin.string(), "--kubeconfig=" + admin_kubeconfig, "--container-runtime=remote",
                         "--container-runtime-endpoint=unix://" + containerd_socket_.string(),
                         "--root-dir=" + (kd / "root").string(), "--cert-dir=" + (kd / "pki").string(),
                         "--volume-plugin-dir=" + (kd / "volume-plugins").string(), "--cgroup-driver=cgroupfs",
                         "--cgroup-root=" + cgroup_root_, "--fail-swap-on=false",
                         std::string("--hostname-override=") + kNodeName, std::string("--node-ip=") + kBridgeAddress,
                         // Loopback only: reached through the host-side forwarder, never
                         // by pods (its API is anonymous + AlwaysAllow by default).
                         "--address=127.0.0.1", "--port=" + std::to_string(kubelet_port_.port()),
                         "--read-only-port=0",
                         "--healthz-bind-address=127.0.0.1", "--resolv-conf=", "--image-gc-high-threshold=100",
                         "--image-gc-low-threshold=99",
                         // The default hard eviction (nodefs.available<10%, imagefs.available<15%)
                         // taints the node DiskPressure on any host whose disk is 85 % full, big
                         // or small, and no pod schedules again: a test node evicts only when
                         // the disk is really about to run out.
                         "--eviction-hard=memory.available<100Mi,nodefs.available<256Mi,"
                         "nodefs.inodesFree<1%,imagefs.available<256Mi",
                         std::string("--cluster-dns=") + kBridgeAddress,
                         "--cluster-domain=cluster.local",
                         // Post Ready 2 s (not 10 s) after the runtime's network is up.
                         "--node-status-update-frequency=2s"});
  kubelet.log_path = dir_ / "kubelet.log";
  kubelet_ = std::make_unique<Process>(std::move(kubelet));
  internal::HttpRequest node_get;
  node_get.url = cluster_.server_url() + "/api/v1/nodes/" + kNodeName;
  node_get.headers = {"Authorization: Bearer " + cluster_.admin_token()};
  node_get.ca_pem = cluster_.ca_pem();
  node_get.timeout = kHttpProbeTimeout;
  kubelet_->WaitUntilReady(
      [&] {
        auto r = internal::HttpCall(node_get);
        if (r.status != 200) return false;
        auto node = nlohmann::json::parse(r.body);
        bool ready = false;
        for (const auto& c : node["status"].value("conditions", nlohmann::json::array())) {
          if (c.value("type", "") == "Ready") ready = c.value("status", "") == "True";
        }
        // The kubelet registers with the not-ready taint; the controller manager's
        // nodelifecycle controller removes it once the node is Ready.
        for (const auto& t : node["spec"].value("taints", nlohmann::json::array())) {
          if (t.value("key", "") == "node.kubernetes.io/not-ready") return false;
        }
        return ready;
      },
      start_timeout, "Node " + std::string(kNodeName) + " Ready without the not-ready taint");
  timings_.kubelet = Since(kubelet_start);

  // kube-proxy (iptables mode), in the namespaces; it must not touch global sysctls.
  auto proxy_start = Clock::now();
  ProcessOptions proxy;
  proxy.name = "kube-proxy";
  proxy.argv = InNode({proxy_bin.string(), "--kubeconfig=" + admin_kubeconfig, "--proxy-mode=iptables",
                       std::string("--hostname-override=") + kNodeName, std::string("--cluster-cidr=") + kPodCidr,
                       "--healthz-bind-address=127.0.0.1:10256", "--metrics-bind-address=127.0.0.1:10249",
                       "--conntrack-max-per-core=0", "--conntrack-tcp-timeout-established=0",
                       "--conntrack-tcp-timeout-close-wait=0", "--oom-score-adj=0"});
  proxy.log_path = dir_ / "kube-proxy.log";
  kube_proxy_ = std::make_unique<Process>(std::move(proxy));
  kube_proxy_->WaitUntilReady(
      [&] {
        RunOptions options;
        options.timeout = 10s;
        options.check = false;
        return RunCommand({"nsenter", "-t", std::to_string(init_pid_), "--net", "--", "iptables", "-w", "-t", "nat",
                           "-S", "KUBE-SERVICES"},
                          options)
                   .exit_code == 0;
      },
      start_timeout, "iptables chain KUBE-SERVICES in the node's netns");
  timings_.kube_proxy = Since(proxy_start);

  // The Service `kubernetes` (10.0.0.1:443) -> the forwarder on the bridge's address.
  // The apiserver does not maintain these (--endpoint-reconciler-type=none: its own
  // address is loopback); kube-proxy 1.20 reads EndpointSlices.
  std::string port = std::to_string(cluster_.apiserver().port());
  cluster_.Kubectl({"apply", "-f", "-"},
                   "apiVersion: v1\nkind: Endpoints\nmetadata:\n  name: kubernetes\n  namespace: default\n"
                   "subsets:\n- addresses: [{ip: " + std::string(kBridgeAddress) + "}]\n"
                   "  ports: [{name: https, port: " + port + ", protocol: TCP}]\n"
                   "---\napiVersion: discovery.k8s.io/v1beta1\nkind: EndpointSlice\nmetadata:\n"
                   "  name: kubernetes\n  namespace: default\n  labels:\n"
                   "    kubernetes.io/service-name: kubernetes\n"
                   "    endpointslice.kubernetes.io/managed-by: ro-testenv\n"
                   "addressType: IPv4\nendpoints:\n- addresses: [" + std::string(kBridgeAddress) + "]\n"
                   "  conditions: {ready: true}\nports:\n- {name: https, port: " + port + ", protocol: TCP}\n");

  // Pods are admitted only once their namespace's service account has its token
  // (ServiceAccount admission plugin): wait for default/default to have one.
  internal::HttpRequest sa_get = node_get;
  sa_get.url = cluster_.server_url() + "/api/v1/namespaces/default/serviceaccounts/default";
  WaitFor(
      [&] {
        auto r = internal::HttpCall(sa_get);
        return r.status == 200 && !nlohmann::json::parse(r.body).value("secrets", nlohmann::json::array()).empty();
      },
      start_timeout, "service account default/default with a token");
  timings_.total = Since(start);
}

std::string KubeNode::ExposeHostPort(std::uint16_t port) {
  if (init_pid_ <= 0) throw TestEnvError("ExposeHostPort: the node is not running");
  if (!exposed_.contains(port)) {
    // Only the bridge's address: the node's own 127.0.0.1 ports stay the node's.
    exposed_[port] = std::make_unique<internal::NetnsForwarder>(
        ntohl(::inet_addr(kBridgeAddress)), port, "/proc/" + std::to_string(init_pid_) + "/ns/net", fs::path());
  }
  return std::string(kBridgeAddress) + ":" + std::to_string(port);
}

namespace {

// <root>/kubepods[/<qos>]/pod<uid> of one hierarchy, or an empty path.
fs::path FindPodCgroup(const fs::path& root, std::string_view pod_uid) {
  const std::string name = "pod" + std::string(pod_uid);
  const fs::path kubepods = root / "kubepods";
  std::error_code ec;
  if (fs::is_directory(kubepods / name, ec)) return kubepods / name;  // Guaranteed QoS
  for (const char* qos : {"burstable", "besteffort"}) {
    if (fs::is_directory(kubepods / qos / name, ec)) return kubepods / qos / name;
  }
  return {};
}

std::uint64_t ReadNumber(const fs::path& file) {
  std::ifstream in(file);
  std::uint64_t value = 0;
  if (!(in >> value)) throw TestEnvError("cannot read a number from " + file.string());
  return value;
}

// The value of `key` in a "key value" file such as memory.stat (0 when absent).
std::uint64_t ReadStat(const fs::path& file, std::string_view key) {
  std::ifstream in(file);
  std::string k;
  std::uint64_t v = 0;
  while (in >> k >> v) {
    if (k == key) return v;
  }
  return 0;
}

}  // namespace

PodUsage KubeNode::ReadPodUsage(std::string_view pod_uid) const {
  if (cgroup_root_.empty()) throw TestEnvError("ReadPodUsage: the node is not running");
  const fs::path v1 = "/sys/fs/cgroup";
  PodUsage usage;
  const fs::path memory = FindPodCgroup(v1 / "memory" / cgroup_root_.substr(1), pod_uid);
  const fs::path cpuacct = FindPodCgroup(v1 / "cpuacct" / cgroup_root_.substr(1), pod_uid);
  if (!memory.empty() && !cpuacct.empty()) {
    const std::uint64_t used = ReadNumber(memory / "memory.usage_in_bytes");
    const std::uint64_t inactive = ReadStat(memory / "memory.stat", "total_inactive_file");
    usage.memory_working_set_bytes = used > inactive ? used - inactive : 0;
    usage.cpu_usage_ns = ReadNumber(cpuacct / "cpuacct.usage");
    return usage;
  }
  // cgroup2 only: one hierarchy, mounted at /sys/fs/cgroup (or /sys/fs/cgroup/unified).
  for (const fs::path& mount : {v1, v1 / "unified"}) {
    const fs::path pod = FindPodCgroup(mount / cgroup_root_.substr(1), pod_uid);
    if (pod.empty() || !fs::exists(pod / "memory.current")) continue;
    const std::uint64_t used = ReadNumber(pod / "memory.current");
    const std::uint64_t inactive = ReadStat(pod / "memory.stat", "inactive_file");
    usage.memory_working_set_bytes = used > inactive ? used - inactive : 0;
    usage.cpu_usage_ns = ReadStat(pod / "cpu.stat", "usage_usec") * 1000;
    return usage;
  }
  throw TestEnvError("no cgroup of pod " + std::string(pod_uid) + " under " + cgroup_root_ + "/kubepods");
}

void KubeNode::Stop() noexcept {
  if (dns_watcher_.joinable()) {
    dns_watcher_.request_stop();
    dns_watcher_.join();
  }
  for (auto* p : {&kube_proxy_, &kubelet_, &dnsmasq_, &containerd_, &scheduler_}) {
    if (*p) (*p)->Stop();
  }
  apiserver_forwarder_.reset();
  kubelet_forwarder_.reset();
  exposed_.clear();
  // pid 1 of the namespaces exits on SIGTERM: the kernel kills the rest (shims,
  // containers) and frees the mount and network namespaces.
  if (holder_) holder_->Stop();
  init_pid_ = 0;
  if (!cgroup_root_.empty()) {
    auto deadline = Clock::now() + kCgroupRemoveTimeout;
    for (;;) {
      bool ok = true;
      for (const auto& mount : CgroupMounts()) ok = RemoveCgroupTree(mount / cgroup_root_.substr(1)) && ok;
      if (ok || Clock::now() > deadline) break;
      std::this_thread::sleep_for(100ms);
    }
    cgroup_root_.clear();
  }
}

}  // namespace ro::testenv

#include "ro/testenv/kube_cluster.h"

#include <openssl/evp.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "net.h"
#include "ro/testenv/errors.h"

namespace ro::testenv {
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// Random bytes per bearer token (hex-encoded: 32 characters).
constexpr std::size_t kTokenBytes = 16;
// Validity of the per-cluster CA and serving certificate; a cluster lives minutes.
constexpr const char* kCertDays = "3650";
// Service CIDR of the cluster: required by kube-apiserver; no kube-proxy ever uses it.
constexpr const char* kServiceClusterIpRange = "10.0.0.0/24";
// Issuer of service-account tokens (the in-cluster default name of the API).
constexpr const char* kServiceAccountIssuer = "https://kubernetes.default.svc";
// kubectl, openssl and etcd gateway calls: generous for 2 busy cores.
constexpr auto kCommandTimeout = 60s;
constexpr auto kHttpProbeTimeout = 2s;

std::string Base64(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()), static_cast<int>(data.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::chrono::milliseconds Since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

fs::path KubeBinary(std::string_view name) {
  fs::path path = KubeBinDir() / name;
  if (!fs::exists(path)) {
    throw TestEnvError(std::string(name) + " not found at " + path.string() +
                       " (run scripts/setup.sh: it builds kube-apiserver and kube-controller-manager "
                       "1.20.2 into this cache, or set RO_KUBE_BIN)");
  }
  return path;
}

}  // namespace

// ---- Apiserver ------------------------------------------------------------------------

Apiserver::Apiserver(const KubeCluster& cluster, std::string name) : cluster_(cluster), name_(std::move(name)) {
  kubeconfig_path_ = cluster_.dir() / (name_ + ".kubeconfig");
  cluster_.WriteKubeconfigFor(kubeconfig_path_, server_url(), "admin", cluster_.admin_token());
}

Apiserver::~Apiserver() { Stop(); }

std::string Apiserver::server_url() const { return "https://127.0.0.1:" + std::to_string(port_.port()); }

bool Apiserver::running() const { return process_ && process_->Running(); }

void Apiserver::Stop() {
  if (process_) process_->Stop();
  process_.reset();
}

void Apiserver::Kill() {
  if (process_) process_->Kill();
  process_.reset();
}

void Apiserver::Start() {
  if (running()) return;
  process_.reset();
  auto start = Clock::now();
  ProcessOptions options;
  options.name = name_;
  options.argv = cluster_.ApiserverArgs(port_.port());
  options.log_path = cluster_.dir() / (name_ + ".log");
  process_ = std::make_unique<Process>(std::move(options));
  internal::HttpRequest readyz;
  readyz.url = server_url() + "/readyz";
  readyz.headers = {"Authorization: Bearer " + cluster_.admin_token()};
  readyz.ca_pem = cluster_.ca_pem();
  readyz.timeout = kHttpProbeTimeout;
  process_->WaitUntilReady(
      [&] {
        auto r = internal::HttpCall(readyz);
        return r.status == 200 && r.body == "ok";
      },
      cluster_.options_.start_timeout, "GET /readyz = ok");
  startup_time_ = Since(start);
}

// ---- KubeCluster ----------------------------------------------------------------------

KubeCluster::KubeCluster(KubeClusterOptions options)
    : options_(std::move(options)), dir_("kube-" + options_.name), admin_token_(internal::RandomHex(kTokenBytes)) {
  auto start = Clock::now();
  for (const auto& user : options_.users) user_tokens_[user.name] = internal::RandomHex(kTokenBytes);
  fs::path etcd_bin = FindExecutable("etcd", "Debian package etcd-server; run scripts/setup.sh");
  fs::path apiserver_bin = KubeBinary("kube-apiserver");
  if (options_.with_controller_manager) KubeBinary("kube-controller-manager");

  // etcd first: it boots while openssl makes the certificates.
  std::string client = etcd_url();
  std::string peer = "http://127.0.0.1:" + std::to_string(etcd_peer_port_.port());
  ProcessOptions etcd;
  etcd.name = "etcd";
  etcd.argv = {etcd_bin.string(), "--name", "default", "--data-dir", (dir_.path() / "etcd").string(),
               "--listen-client-urls", client, "--advertise-client-urls", client, "--listen-peer-urls", peer,
               "--initial-advertise-peer-urls", peer, "--initial-cluster", "default=" + peer};
  etcd.log_path = dir_.path() / "etcd.log";
  etcd_ = std::make_unique<Process>(std::move(etcd));

  auto certs_start = Clock::now();
  MakeCertificates();
  std::string tokens = admin_token_ + ",admin,admin-uid,system:masters\n";
  for (const auto& user : options_.users) {
    std::string groups;
    for (const auto& g : user.groups) groups += (groups.empty() ? "" : ",") + g;
    tokens += user_tokens_[user.name] + "," + user.name + "," + user.name + "-uid";
    tokens += groups.empty() ? "\n" : ",\"" + groups + "\"\n";
  }
  WriteFile(dir_.path() / "tokens.csv", tokens, 0600);
  timings_.certs = Since(certs_start);

  etcd_->WaitUntilReady(
      [&] {
        auto r = internal::HttpCall(internal::HttpRequest::Get(client + "/health", kHttpProbeTimeout));
        return r.status == 200 && r.body.find("\"health\":\"true\"") != std::string::npos;
      },
      options_.start_timeout, "GET /health = true");
  timings_.etcd = Since(start);

  apiserver_.reset(new Apiserver(*this, "kube-apiserver"));
  apiserver_->Start();
  timings_.apiserver = apiserver_->startup_time();

  if (options_.with_node) {
    options_.with_controller_manager = true;
    for (const char* c : {"nodelifecycle", "endpoint", "endpointslice", "serviceaccount", "deployment", "replicaset",
                          "statefulset", "job"}) {
      if (std::find(options_.controllers.begin(), options_.controllers.end(), c) == options_.controllers.end()) {
        options_.controllers.emplace_back(c);
      }
    }
  }
  if (options_.with_controller_manager) StartControllerManager();
  if (options_.with_node) {
    node_.reset(new KubeNode(*this, options_.start_timeout));
    timings_.node = node_->timings().total;
  }
  timings_.total = Since(start);
}

KubeCluster::~KubeCluster() { Stop(); }

void KubeCluster::MakeCertificates() {
  const fs::path& d = dir_.path();
  RunOptions options;
  options.timeout = kCommandTimeout;
  auto run = [&options](const std::vector<std::string>& argv) { RunCommand(argv, options); };
  std::string openssl = FindExecutable("openssl", "Debian package openssl").string();
  // CA (EC P-256: key generation takes milliseconds, unlike RSA).
  run({openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
       (d / "ca.key").string(), "-out", (d / "ca.crt").string(), "-days", kCertDays, "-subj",
       "/CN=ro-testenv-ca-" + options_.name});
  // Serving certificate for 127.0.0.1 / localhost, signed by the CA.
  WriteFile(d / "serving.ext",
            "basicConstraints=CA:FALSE\n"
            "keyUsage=critical,digitalSignature\n"
            "extendedKeyUsage=serverAuth\n"
            // 10.0.0.1 / kubernetes.default.svc: pods on a node reach the apiserver
            // through the Service `kubernetes`; 10.244.0.1: pods on another cluster's
            // node reach it through KubeNode::ExposeHostPort (see kube_node.h).
            "subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes.default.svc,"
            "DNS:kubernetes.default,DNS:kubernetes,IP:10.244.0.1\n");
  run({openssl, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
       (d / "serving.key").string(), "-out", (d / "serving.csr").string(), "-subj", "/CN=kube-apiserver"});
  run({openssl, "x509", "-req", "-in", (d / "serving.csr").string(), "-CA", (d / "ca.crt").string(), "-CAkey",
       (d / "ca.key").string(), "-CAcreateserial", "-out", (d / "serving.crt").string(), "-days", kCertDays,
       "-extfile", (d / "serving.ext").string()});
  // Service-account token signing key pair (ES256).
  run({openssl, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", (d / "sa.key").string()});
  run({openssl, "ec", "-in", (d / "sa.key").string(), "-pubout", "-out", (d / "sa.pub").string()});
  ca_pem_ = ReadFile(d / "ca.crt");
}

std::vector<std::string> KubeCluster::ApiserverArgs(std::uint16_t port) const {
  const fs::path& d = dir_.path();
  std::vector<std::string> args = {
      KubeBinary("kube-apiserver").string(),
      "--etcd-servers=" + etcd_url(),
      "--bind-address=127.0.0.1",
      "--secure-port=" + std::to_string(port),
      "--insecure-port=0",
      "--tls-cert-file=" + (d / "serving.crt").string(),
      "--tls-private-key-file=" + (d / "serving.key").string(),
      "--cert-dir=" + (d / "certs").string(),
      "--service-cluster-ip-range=" + std::string(kServiceClusterIpRange),
      "--service-account-issuer=" + std::string(kServiceAccountIssuer),
      "--service-account-key-file=" + (d / "sa.pub").string(),
      "--service-account-signing-key-file=" + (d / "sa.key").string(),
      "--token-auth-file=" + (d / "tokens.csv").string(),
      "--authorization-mode=RBAC",
      "--allow-privileged=true",

      std::string("--watch-cache=") + (options_.watch_cache ? "true" : "false"),
      // Loopback is not a valid Endpoints address: do not maintain default/kubernetes.
      "--advertise-address=127.0.0.1",
      "--endpoint-reconciler-type=none",
      "--profiling=false",
  };
  // Without a node no pod runs: do not require service accounts. With one, pods get the
  // token of their service account mounted, as in a real cluster.
  if (!options_.with_node) args.emplace_back("--disable-admission-plugins=ServiceAccount");
  // The node is named "localhost": the apiserver reaches its kubelet (logs, exec) through
  // a forwarder on the host's 127.0.0.1 (see kube_node.h).
  if (options_.with_node) args.emplace_back("--kubelet-preferred-address-types=Hostname");
  args.insert(args.end(), options_.extra_apiserver_flags.begin(), options_.extra_apiserver_flags.end());
  return args;
}

void KubeCluster::StartControllerManager() {
  auto start = Clock::now();
  const fs::path& d = dir_.path();
  std::string controllers;
  for (const auto& c : options_.controllers) controllers += (controllers.empty() ? "" : ",") + c;
  std::string port = std::to_string(controller_manager_port_.port());
  ProcessOptions options;
  options.name = "kube-controller-manager";
  options.argv = {KubeBinary("kube-controller-manager").string(), "--kubeconfig=" + kubeconfig_path().string(),
                  "--controllers=" + controllers, "--service-account-private-key-file=" + (d / "sa.key").string(),
                  "--root-ca-file=" + (d / "ca.crt").string(), "--use-service-account-credentials=false",
                  "--leader-elect=false",
                  // Notice a Ready node (and lift its not-ready taint) within 1 s, not 5 s.
                  "--node-monitor-period=1s",
                  // Health only, plain HTTP on loopback; no TLS serving port (it would
                  // need its own certificate and delegated authentication).
                  "--port=" + port, "--address=127.0.0.1", "--secure-port=0", "--profiling=false"};
  options.log_path = d / "kube-controller-manager.log";
  controller_manager_ = std::make_unique<Process>(std::move(options));
  controller_manager_->WaitUntilReady(
      [&] {
        auto r = internal::HttpCall(internal::HttpRequest::Get("http://127.0.0.1:" + port + "/healthz", kHttpProbeTimeout));
        return r.status == 200 && r.body == "ok";
      },
      options_.start_timeout, "GET /healthz = ok");
  timings_.controller_manager = Since(start);
}

fs::path KubeCluster::ca_path() const { return dir_.path() / "ca.crt"; }

std::string KubeCluster::etcd_url() const { return "http://127.0.0.1:" + std::to_string(etcd_port_.port()); }

const std::string& KubeCluster::TokenFor(std::string_view user) const {
  auto it = user_tokens_.find(user);
  if (it == user_tokens_.end()) {
    throw TestEnvError("cluster " + options_.name + " has no user " + std::string(user) +
                       " (add it to KubeClusterOptions::users)");
  }
  return it->second;
}

void KubeCluster::WriteKubeconfigForServer(const fs::path& path, const std::string& server_url) const {
  WriteKubeconfigFor(path, server_url, "admin", admin_token_);
}

void KubeCluster::WriteKubeconfigFor(const fs::path& path, const std::string& server_url, std::string_view user,
                                     std::string_view token) const {
  const std::string& cluster = options_.name;
  std::string context = std::string(user) + "@" + cluster;
  WriteFile(path,
            "apiVersion: v1\n"
            "kind: Config\n"
            "clusters:\n"
            "- name: " + cluster + "\n"
            "  cluster:\n"
            "    server: " + server_url + "\n"
            "    certificate-authority-data: " + Base64(ca_pem_) + "\n"
            "users:\n"
            "- name: " + std::string(user) + "\n"
            "  user:\n"
            "    token: " + std::string(token) + "\n"
            "contexts:\n"
            "- name: " + context + "\n"
            "  context:\n"
            "    cluster: " + cluster + "\n"
            "    user: " + std::string(user) + "\n"
            "current-context: " + context + "\n",
            0600);
}

void KubeCluster::WriteKubeconfig(const fs::path& path, std::string_view token) const {
  std::string user = "admin";
  for (const auto& [name, t] : user_tokens_) {
    if (t == token) user = name;
  }
  WriteKubeconfigFor(path, server_url(), user, token);
}

fs::path KubeCluster::KubeconfigFor(std::string_view user) const {
  fs::path path = dir_.path() / ("kubeconfig-" + std::string(user));
  WriteKubeconfigFor(path, server_url(), user, TokenFor(user));
  return path;
}

std::string KubeCluster::Kubectl(const std::vector<std::string>& args, std::string_view stdin_data) const {
  std::vector<std::string> argv = {"kubectl", "--kubeconfig=" + kubeconfig_path().string(),
                                   // Per-cluster discovery cache: ports are reused across
                                   // runs, and ~/.kube/cache would serve stale discovery.
                                   "--cache-dir=" + (dir_.path() / "kubectl-cache").string()};
  argv.insert(argv.end(), args.begin(), args.end());
  RunOptions options;
  options.stdin_data = stdin_data;
  options.timeout = kCommandTimeout;
  return RunCommand(argv, options).out;
}

Apiserver& KubeCluster::StartExtraApiserver() {
  std::string name = "kube-apiserver-" + std::to_string(extra_apiservers_.size() + 2);
  extra_apiservers_.push_back(std::unique_ptr<Apiserver>(new Apiserver(*this, name)));
  extra_apiservers_.back()->Start();
  return *extra_apiservers_.back();
}

std::int64_t KubeCluster::CompactEtcd() const {
  auto call = [this](const std::string& path, const nlohmann::json& body) {
    internal::HttpRequest request;
    request.method = "POST";
    request.url = etcd_url() + path;
    request.headers = {"Content-Type: application/json"};
    request.body = body.dump();
    request.timeout = kCommandTimeout;
    auto r = internal::HttpCall(request);
    if (r.status != 200) {
      throw TestEnvError("etcd POST " + path + ": HTTP " + std::to_string(r.status) + ": " + r.body);
    }
    return nlohmann::json::parse(r.body);
  };
  // Any range answers with the store's current revision in its header; key "\0" is
  // the smallest key and matches nothing the apiserver stores. ("AA==" = base64 "\0")
  auto range = call("/v3/kv/range", {{"key", "AA=="}, {"count_only", true}});
  std::int64_t revision = std::stoll(range.at("header").at("revision").get<std::string>());
  call("/v3/kv/compaction", {{"revision", std::to_string(revision)}, {"physical", true}});
  return revision;
}

KubeNode& KubeCluster::node() const {
  if (!node_) throw TestEnvError("cluster " + options_.name + " has no node (set KubeClusterOptions::with_node)");
  return *node_;
}

void KubeCluster::Stop() {
  if (node_) node_->Stop();
  if (controller_manager_) controller_manager_->Stop();
  for (auto& a : extra_apiservers_) a->Stop();
  if (apiserver_) apiserver_->Stop();
  if (etcd_) etcd_->Stop();
}

}  // namespace ro::testenv

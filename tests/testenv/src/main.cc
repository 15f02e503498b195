// ro-testenv: the test-server harness as a command, so shell scripts and the demo start
// servers with exactly the code the tests use. See tests/testenv/README.md.
//
//   ro-testenv up --dir D [--clusters N] [--controller-manager] [--node | --node-cluster I]
//                 [--nats] [--redis] [--zookeeper] [--s3] [--bucket B]... [--user NAME[:GROUP,...]]...
//     starts the servers, writes D/env.sh and D/ready, then waits in the foreground
//     until SIGTERM/SIGINT/SIGHUP and stops everything by PID. With --node-cluster I,
//     cluster I has a node and the other clusters' apiservers (and the S3 server) are
//     reachable from its pods at 10.244.0.1:<port>: env.sh then names, per cluster J,
//     RO_CLUSTERJ_POD_KUBECONFIG (an admin kubeconfig with that address) and
//     RO_S3_POD_ENDPOINT.
//   ro-testenv down --dir D
//     sends SIGTERM to the `up` process recorded in D/ready and waits until it is gone.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ro/testenv/testenv.h"

namespace {
namespace fs = std::filesystem;
namespace te = ro::testenv;
using namespace std::chrono_literals;

// How long `down` waits for `up` to stop everything (an apiserver takes up to its
// 5 s SIGTERM grace period; several clusters stop one after the other).
constexpr auto kDownTimeout = 120s;

struct UpOptions {
  fs::path dir;
  int clusters = 1;
  bool controller_manager = false;
  bool node = false;
  int node_cluster = 0;  // 1-based; 0: none (or every cluster with `node`)
  bool no_watch_cache = false;
  bool nats = false;
  bool redis = false;
  bool zookeeper = false;
  bool s3 = false;
  std::vector<std::string> buckets;
  std::vector<std::string> users;  // NAME[:GROUP,GROUP]
};

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string EnvName(std::string s) {
  for (char& c : s) c = std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::toupper(c)) : '_';
  return s;
}

te::KubeUser ParseUser(const std::string& spec) {
  te::KubeUser user;
  auto colon = spec.find(':');
  user.name = spec.substr(0, colon);
  if (colon != std::string::npos) {
    std::string groups = spec.substr(colon + 1);
    std::size_t pos = 0;
    while (pos <= groups.size()) {
      auto comma = groups.find(',', pos);
      std::string g = groups.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
      if (!g.empty()) user.groups.push_back(g);
      if (comma == std::string::npos) break;
      pos = comma + 1;
    }
  }
  return user;
}

// True when a stop signal is pending (blocked signals stay pending until sigwait).
bool StopRequested(const sigset_t& stop_signals) {
  sigset_t pending;
  sigpending(&pending);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    if (sigismember(&stop_signals, sig) && sigismember(&pending, sig)) return true;
  }
  return false;
}

void Report(const std::string& what, std::chrono::milliseconds took) {
  std::cerr << "ro-testenv: " << what << " ready in " << took.count() << " ms\n";
}

int Up(const UpOptions& o, const sigset_t& stop_signals) {
  if (o.node_cluster > o.clusters) {
    std::cerr << "ro-testenv: --node-cluster " << o.node_cluster << " but only " << o.clusters << " cluster(s)\n";
    return 2;
  }
  fs::create_directories(o.dir);
  fs::remove(o.dir / "ready");
  std::vector<te::KubeUser> users;
  for (const auto& spec : o.users) users.push_back(ParseUser(spec));

  std::vector<std::unique_ptr<te::KubeCluster>> clusters;
  std::unique_ptr<te::NatsServer> nats;
  std::unique_ptr<te::RedisServer> redis;
  std::unique_ptr<te::ZooKeeperServer> zookeeper;
  std::unique_ptr<te::S3Server> s3;
  std::string env = "# Written by ro-testenv up (pid " + std::to_string(getpid()) + "). Source it.\n";
  auto set = [&env](const std::string& name, const std::string& value) {
    env += "export " + name + "=" + ShellQuote(value) + "\n";
  };
  set("RO_TESTENV_PID", std::to_string(getpid()));
  set("RO_CLUSTER_COUNT", std::to_string(o.clusters));
  auto start = std::chrono::steady_clock::now();

  for (int i = 1; i <= o.clusters; ++i) {
    if (StopRequested(stop_signals)) return 130;
    te::KubeClusterOptions options;
    options.name = "cluster" + std::to_string(i);
    options.with_controller_manager = o.controller_manager;
    options.with_node = o.node || o.node_cluster == i;
    options.users = users;
    options.watch_cache = !o.no_watch_cache;
    clusters.push_back(std::make_unique<te::KubeCluster>(options));
    const auto& c = *clusters.back();
    const auto& t = c.timings();
    std::cerr << "ro-testenv: cluster" << i << " ready in " << t.total.count() << " ms (etcd " << t.etcd.count()
              << " ms, certs " << t.certs.count() << " ms, kube-apiserver " << t.apiserver.count()
              << " ms, kube-controller-manager " << t.controller_manager.count() << " ms, node " << t.node.count()
              << " ms)\n";
    std::string prefix = "RO_CLUSTER" + std::to_string(i) + "_";
    fs::path kubeconfig = fs::absolute(o.dir / ("cluster" + std::to_string(i) + ".kubeconfig"));
    c.WriteKubeconfig(kubeconfig, c.admin_token());
    set(prefix + "KUBECONFIG", kubeconfig.string());
    set(prefix + "SERVER", c.server_url());
    set(prefix + "TOKEN", c.admin_token());
    set(prefix + "CA", c.ca_path().string());
    set(prefix + "ETCD", c.etcd_url());
    set(prefix + "DIR", c.dir().string());
    if (options.with_node) {
      set(prefix + "CONTAINERD", c.node().containerd_socket().string());
      set(prefix + "NODE_PID", std::to_string(c.node().namespace_pid()));
    }
    for (const auto& user : users) {
      fs::path path = fs::absolute(o.dir / ("cluster" + std::to_string(i) + "-" + user.name + ".kubeconfig"));
      c.WriteKubeconfig(path, c.TokenFor(user.name));
      set(prefix + "KUBECONFIG_" + EnvName(user.name), path.string());
    }
  }
  if (o.nats && !StopRequested(stop_signals)) {
    nats = std::make_unique<te::NatsServer>();
    Report("nats-server", nats->startup_time());
    set("RO_NATS_URL", nats->url());
  }
  if (o.redis && !StopRequested(stop_signals)) {
    redis = std::make_unique<te::RedisServer>();
    Report("redis-server", redis->startup_time());
    set("RO_REDIS_ADDR", redis->address());
    set("RO_REDIS_HOST", redis->host());
    set("RO_REDIS_PORT", std::to_string(redis->port()));
  }
  if (o.zookeeper && !StopRequested(stop_signals)) {
    zookeeper = std::make_unique<te::ZooKeeperServer>();
    Report("zookeeper", zookeeper->startup_time());
    set("RO_ZK_SERVERS", zookeeper->connect_string());
  }
  if ((o.s3 || !o.buckets.empty()) && !StopRequested(stop_signals)) {
    s3 = std::make_unique<te::S3Server>();
    Report("s3rver", s3->startup_time());
    for (const auto& bucket : o.buckets) s3->CreateBucket(bucket);
    set("RO_S3_ENDPOINT", s3->endpoint());
    set("RO_S3_ACCESS_KEY", s3->access_key());
    set("RO_S3_SECRET_KEY", s3->secret_key());
    set("RO_S3_REGION", s3->region());
  }
  if (o.node_cluster > 0 && !StopRequested(stop_signals)) {
    // Every apiserver (and the S3 server) as the node cluster's pods reach it.
    te::KubeCluster& with_node = *clusters[static_cast<std::size_t>(o.node_cluster - 1)];
    for (int i = 1; i <= o.clusters; ++i) {
      const te::KubeCluster& c = *clusters[static_cast<std::size_t>(i - 1)];
      // The node already forwards its own apiserver's port on the bridge.
      const std::string address = i == o.node_cluster
                                      ? "10.244.0.1:" + std::to_string(c.apiserver().port())
                                      : with_node.node().ExposeHostPort(c.apiserver().port());
      fs::path path = fs::absolute(o.dir / ("cluster" + std::to_string(i) + "-pods.kubeconfig"));
      c.WriteKubeconfigForServer(path, "https://" + address);
      set("RO_CLUSTER" + std::to_string(i) + "_POD_KUBECONFIG", path.string());
    }
    if (s3) {
      const std::string endpoint = s3->endpoint();
      const auto colon = endpoint.rfind(':');
      const int port = std::stoi(endpoint.substr(colon + 1));
      // endpoint() is host:port, without a scheme (S3Server); keep one if it ever has one.
      const auto scheme = endpoint.find("://");
      set("RO_S3_POD_ENDPOINT", (scheme == std::string::npos ? std::string() : endpoint.substr(0, scheme + 3)) +
                                    with_node.node().ExposeHostPort(static_cast<std::uint16_t>(port)));
    }
  }
  if (StopRequested(stop_signals)) return 130;
  te::WriteFile(o.dir / "env.sh", env);
  te::WriteFile(o.dir / "ready", std::to_string(getpid()) + "\n");
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  std::cerr << "ro-testenv: all ready in " << took.count() << " ms; environment in " << (o.dir / "env.sh").string()
            << "; stop with SIGTERM/SIGINT or `ro-testenv down --dir " << o.dir.string() << "`\n";

  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::cerr << "ro-testenv: signal " << sig << ", stopping\n";
  fs::remove(o.dir / "ready");
  return 0;  // the servers are stopped by PID as they go out of scope
}

int Down(const fs::path& dir) {
  fs::path ready = dir / "ready";
  if (!fs::exists(ready)) {
    std::cerr << "ro-testenv: nothing to stop (" << ready.string() << " does not exist)\n";
    return 0;
  }
  pid_t pid = static_cast<pid_t>(std::stol(te::ReadFile(ready)));
  if (kill(pid, SIGTERM) != 0) {
    std::cerr << "ro-testenv: process " << pid << " is gone\n";
    fs::remove(ready);
    return 0;
  }
  te::WaitFor([pid] { return kill(pid, 0) != 0; }, std::chrono::duration_cast<std::chrono::milliseconds>(kDownTimeout),
              "ro-testenv up (pid " + std::to_string(pid) + ") to exit");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Block the stop signals before any thread or child exists: they stay pending until
  // `up` is ready to sigwait for them, and every thread inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  // A background job of a non-interactive shell starts with SIGINT ignored, and an
  // ignored signal is discarded instead of queued for sigwait: restore the defaults.
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) signal(sig, SIG_DFL);

  CLI::App app{"ro-testenv: real test servers on 127.0.0.1 (tests/testenv/README.md)"};
  app.require_subcommand(1);
  UpOptions up;
  auto* up_cmd = app.add_subcommand("up", "start servers, write DIR/env.sh and DIR/ready, run until SIGTERM/SIGINT");
  up_cmd->add_option("--dir", up.dir, "directory for env.sh, ready and kubeconfigs")->required();
  up_cmd->add_option("--clusters", up.clusters, "number of Kubernetes clusters (etcd + kube-apiserver)")
      ->check(CLI::Range(0, 8));
  up_cmd->add_flag("--controller-manager", up.controller_manager,
                   "run kube-controller-manager (garbage collection, namespace deletion)");
  up_cmd->add_flag("--node", up.node,
                   "run a node: kube-scheduler, containerd, kubelet, kube-proxy (implies --controller-manager; root)");
  up_cmd->add_option("--node-cluster", up.node_cluster,
                     "only cluster I (1-based) has a node; env.sh gets RO_CLUSTER<J>_POD_KUBECONFIG for its pods")
      ->check(CLI::PositiveNumber);
  up_cmd->add_flag("--no-watch-cache", up.no_watch_cache, "kube-apiserver --watch-cache=false");
  up_cmd->add_option("--user", up.users, "extra token user NAME[:GROUP,GROUP] in every cluster");
  up_cmd->add_flag("--nats", up.nats, "NATS with JetStream");
  up_cmd->add_flag("--redis", up.redis, "Redis");
  up_cmd->add_flag("--zookeeper", up.zookeeper, "ZooKeeper");
  up_cmd->add_flag("--s3", up.s3, "s3rver (S3 API)");
  up_cmd->add_option("--bucket", up.buckets, "create this S3 bucket (implies --s3)");
  fs::path down_dir;
  auto* down_cmd = app.add_subcommand("down", "stop the `up` process of DIR and wait until it is gone");
  down_cmd->add_option("--dir", down_dir, "the directory given to up")->required();
  CLI11_PARSE(app, argc, argv);

  try {
    if (*up_cmd) return Up(up, stop_signals);
    return Down(down_dir);
  } catch (const std::exception& e) {
    std::cerr << "ro-testenv: error: " << e.what() << "\n";
    return 1;
  }
}

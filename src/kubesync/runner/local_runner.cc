#include "ro/kubesync/runner/local_runner.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <utility>

#include <nlohmann/json.hpp>

#include "ro/common/digest.h"
#include "ro/common/log.h"

namespace ro::kubesync::runner {

namespace fs = std::filesystem;
using nlohmann::json;
namespace pk = plugins::kubernetes;

namespace {

// An executable: `name` itself when it holds a '/', else the first match in $PATH.
std::string ResolveExecutable(const std::string& name, const char* what) {
  if (name.empty()) throw std::invalid_argument(std::string(what) + ": no binary given");
  if (name.find('/') != std::string::npos) {
    if (::access(name.c_str(), X_OK) != 0) {
      throw std::invalid_argument(std::string(what) + ": " + name + " is not an executable file");
    }
    return fs::absolute(name).string();
  }
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    const fs::path candidate = fs::path(dir) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  throw std::invalid_argument(std::string(what) + ": " + name + " not found in $PATH");
}

void MakePrivateDir(const fs::path& dir) {
  fs::create_directories(dir);
  fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace);
}

// Writes `content` to `path` (mode 0600) unless it already holds exactly that; the
// new content appears atomically (rename), so a starting component never reads half.
void WriteFileIfChanged(const fs::path& path, const std::string& content) {
  {
    std::ifstream in(path, std::ios::binary);
    if (in) {
      std::stringstream current;
      current << in.rdbuf();
      if (current.str() == content) return;
    }
  }
  const fs::path temp = path.string() + ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) throw RunnerError("cannot write " + temp.string());
    fs::permissions(temp, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
    out << content;
    if (!out.flush()) throw RunnerError("cannot write " + temp.string());
  }
  fs::rename(temp, path);
}

std::string Loopback(std::uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

// nats-server member `member`'s configuration file: "nats.conf" for a single server,
// "nats-<member>.conf" in a cluster.
std::string NatsConfigFile(int member, bool clustered) {
  return clustered ? "nats-" + std::to_string(member) + ".conf" : "nats.conf";
}

// Its JetStream store: <dir>/nats for a single server without credentials, else a store
// per JetStream key (a rotated key starts an empty store: the events listener
// re-publishes everything when the stream is new, never one it cannot read), and in a
// cluster one per member.
fs::path NatsStoreDir(const fs::path& dir, const std::optional<PipelineCredentials>& credentials, int member,
                      bool clustered) {
  std::string name = credentials ? common::Sha256Hex(credentials->jetstream_key, 12) : "";
  if (clustered) name += (name.empty() ? "" : "-") + std::to_string(member);
  return name.empty() ? dir / "nats" : dir / "nats" / name;
}

std::string RedisLogLevel(pk::LogLevel level) {
  switch (level) {
    case pk::LogLevel::kDebug: return "debug";
    case pk::LogLevel::kInfo: return "notice";
    case pk::LogLevel::kWarn:
    case pk::LogLevel::kError: return "warning";
  }
  return "notice";
}

std::string JoinPids(const std::vector<pid_t>& pids) {
  std::string text = pids.size() == 1 ? "pid " : "pids ";
  for (std::size_t i = 0; i < pids.size(); ++i) {
    if (i > 0) text += ", ";
    text += std::to_string(pids[i]);
  }
  return text;
}

}  // namespace

std::uint16_t PickFreePort(const std::set<std::uint16_t>& avoid) {
  // A few attempts: the kernel may hand out a port we already gave a child.
  for (int attempt = 0; attempt < 32; ++attempt) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) break;
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = 0;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    std::uint16_t port = 0;
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
      port = ntohs(address.sin_port);
    }
    ::close(fd);
    if (port != 0 && !avoid.contains(port)) return port;
  }
  throw RunnerError("no free TCP port on 127.0.0.1");
}

LocalRunner::LocalRunner(LocalRunnerOptions options) : options_(std::move(options)) {
  if (options_.kubesync_binary.empty()) throw std::invalid_argument("local runner: no kubesync binary given");
  ResolveExecutable(options_.kubesync_binary.string(), "kubesync");
  nats_server_ = ResolveExecutable(options_.nats_server_binary, "nats-server");
  redis_server_ = ResolveExecutable(options_.redis_server_binary, "redis-server");
  if (options_.runtime_dir.empty()) throw std::invalid_argument("local runner: no runtime directory given");
  MakePrivateDir(options_.runtime_dir);
  supervisor_ = std::make_unique<ProcessSupervisor>(options_.supervisor);
}

LocalRunner::~LocalRunner() = default;

fs::path LocalRunner::DirectoryOf(const kube::ObjectKey& ls) const {
  return options_.runtime_dir / ls.ns / ls.name;
}

LocalRunner::Instance& LocalRunner::InstanceFor(const kube::ObjectKey& ls) {
  Instance& instance = instances_[ls];
  if (instance.nats_port == 0) {
    instance.nats_port = PickFreePort(used_ports_);
    used_ports_.insert(instance.nats_port);
  }
  if (instance.redis_port == 0) {
    instance.redis_port = PickFreePort(used_ports_);
    used_ports_.insert(instance.redis_port);
  }
  return instance;
}

std::uint16_t LocalRunner::PortFor(Instance& instance, const std::string& id) {
  auto [it, inserted] = instance.ports.try_emplace(id, 0);
  if (inserted) {
    it->second = PickFreePort(used_ports_);
    used_ports_.insert(it->second);
  }
  return it->second;
}

std::uint16_t LocalRunner::NatsClientPort(Instance& instance, int member) {
  return member == 0 ? instance.nats_port : PortFor(instance, "nats-client-" + std::to_string(member));
}

std::uint16_t LocalRunner::NatsRoutePort(Instance& instance, int member) {
  return PortFor(instance, "nats-route-" + std::to_string(member));
}

std::string LocalRunner::NatsUrl(Instance& instance, int members) {
  std::string url;
  for (int i = 0; i < members; ++i) {
    if (i > 0) url += ",";
    url += "nats://";
    url += Loopback(NatsClientPort(instance, i));
  }
  return url;
}

std::vector<ChildSpec> LocalRunner::ChildrenFor(const PipelinePlan& plan, Instance& instance,
                                                const std::string& fingerprint) {
  const fs::path dir = DirectoryOf(plan.key());
  const fs::path config = dir / "files" / std::string(kConfigFile);
  std::vector<ChildSpec> children;
  instance.part_of.clear();
  for (const PartPlan& part : plan.parts) {
    const std::string suffix(PartSuffix(part.part));
    for (std::int32_t i = 0; i < part.replicas; ++i) {
      ChildSpec child;
      child.working_dir = dir;
      child.id = suffix + "-" + std::to_string(i);
      child.log_path = dir / "logs" / (child.id + ".log");
      child.pid_path = dir / "run" / (child.id + ".pid");
      const std::optional<PipelineCredentials>& credentials = plan.inputs.credentials;
      if (part.part == PipelinePart::kNats) {
        const bool clustered = part.replicas > 1;
        if (credentials) {
          child.argv = {nats_server_, "-c", (dir / "server" / NatsConfigFile(i, clustered)).string()};
          // A new configuration file (rotated credentials, another log level) restarts it.
          child.revision = common::Sha256Hex(instance.nats_configs.at(static_cast<std::size_t>(i)), 16);
        } else {
          child.argv = {nats_server_, "-a", "127.0.0.1", "-p", std::to_string(NatsClientPort(instance, i)),
                        "-js", "-sd", NatsStoreDir(dir, credentials, i, clustered).string()};
          if (clustered) {
            std::string routes;
            for (std::int32_t j = 0; j < part.replicas; ++j) {
              if (j == i) continue;
              routes += (routes.empty() ? "nats://" : ",nats://") + Loopback(NatsRoutePort(instance, j));
            }
            for (std::string arg : {std::string("--name"), "n" + std::to_string(i), std::string("--cluster_name"),
                                    PipelineNames(plan.key().ns, plan.key().name).stream(), std::string("--cluster"),
                                    "nats://" + Loopback(NatsRoutePort(instance, i)), std::string("--routes"), routes}) {
              child.argv.push_back(std::move(arg));
            }
          }
          if (part.settings.log_level == pk::LogLevel::kDebug) child.argv.push_back("-D");
        }
        child.probe = {ReadinessProbe::Kind::kTcp, NatsClientPort(instance, i), ""};
      } else if (part.part == PipelinePart::kRedis) {
        child.argv = {redis_server_, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                      "--daemonize", "no", "--dir", (dir / "redis").string(),
                      "--loglevel", RedisLogLevel(part.settings.log_level)};
        if (credentials) {
          // TLS only, ACL users only (docs/security.md).
          for (std::string& arg : RedisServerTlsArgs(instance.redis_port, (dir / "server").string())) {
            child.argv.push_back(std::move(arg));
          }
          child.argv.push_back("--aclfile");
          child.argv.push_back((dir / "server" / "users.acl").string());
          // New credentials (certificate, passwords) restart it.
          child.revision = common::Sha256Hex(instance.redis_acl + credentials->redis_cert_pem, 16);
        } else {
          child.argv.push_back("--port");
          child.argv.push_back(std::to_string(instance.redis_port));
        }
        child.probe = {ReadinessProbe::Kind::kTcp, instance.redis_port, ""};
      } else {
        const ComponentId id = *KubesyncComponentOf(part.part);
        const std::uint16_t health = PortFor(instance, child.id);
        const bool exporter = part.part == PipelinePart::kMetricsExporter;
        child.argv = {options_.kubesync_binary.string(),
                      std::string(SubcommandName(id)),
                      "--config",
                      config.string(),
                      "--health-probe-bind-address",
                      Loopback(health),
                      "--metrics-bind-address",
                      exporter ? Loopback(PortFor(instance, child.id + "/metrics")) : std::string("0"),
                      "--log-level",
                      std::string(pk::LogLevelName(part.settings.log_level))};
        child.probe = {ReadinessProbe::Kind::kHttp, health, "/readyz"};
        // The components read the configuration once: a new one restarts them.
        child.revision = fingerprint;
      }
      instance.part_of[child.id] = part.part;
      children.push_back(std::move(child));
    }
  }
  return children;
}

std::vector<ComponentStatus> LocalRunner::StatusOf(const kube::ObjectKey& ls, const Instance& instance) const {
  const std::vector<ChildState> states = supervisor_->Snapshot(ls.ToString());
  std::vector<ComponentStatus> statuses;
  for (PipelinePart part : instance.parts) {
    ComponentStatus status;
    status.name = std::string(PartName(part));
    status.replicas = instance.replicas.at(status.name);
    std::vector<pid_t> pids;
    std::string waiting;
    for (const ChildState& state : states) {
      const auto owner = instance.part_of.find(state.id);
      if (owner == instance.part_of.end() || owner->second != part) continue;
      if (state.pid != 0) pids.push_back(state.pid);
      if (state.ready) ++status.ready_replicas;
      if (state.pid == 0 && waiting.empty()) {
        waiting = state.last_exit.empty() ? "starting" : "not running (" + state.last_exit + ")";
        if (state.next_start_in.count() > 0) {
          waiting += "; restart " + std::to_string(state.restarts) + " in " +
                     std::to_string((state.next_start_in.count() + 999) / 1000) + " s";
        }
      }
    }
    status.ready = status.ready_replicas >= status.replicas;
    if (status.replicas == 0) {
      status.message = "stopped";
    } else {
      if (!pids.empty()) status.message = JoinPids(pids);
      if (!waiting.empty()) status.message += (status.message.empty() ? "" : "; ") + waiting;
      if (!status.ready && waiting.empty()) status.message += ", not ready yet";
    }
    statuses.push_back(std::move(status));
  }
  return statuses;
}

std::vector<ComponentStatus> LocalRunner::Apply(const PipelinePlan& plan) {
  const kube::ObjectKey key = plan.key();
  const fs::path dir = DirectoryOf(key);
  std::lock_guard lock(mu_);
  Instance& instance = InstanceFor(key);
  for (const char* sub : {"files", "nats", "redis", "logs", "run", "server"}) MakePrivateDir(dir / sub);
  const PartPlan* nats = plan.Find(PipelinePart::kNats);
  const int nats_members = nats != nullptr ? nats->replicas : 1;
  if (instance.nats_members != 0 && instance.nats_members != nats_members) {
    // Another number of servers: the pipeline moves onto new, empty stores (what the
    // previous servers held is replaced by the listener's full publish into the new
    // stream). Only stores no running server uses: the previous layout's are others
    // (nats-server keeps its files in <store>/jetstream; a member's store may lie inside
    // the single server's directory, never in its jetstream/).
    for (int i = 0; i < nats_members; ++i) {
      std::error_code ignored;
      fs::remove_all(NatsStoreDir(dir, plan.inputs.credentials, i, nats_members > 1) / "jetstream", ignored);
    }
  }
  instance.nats_members = nats_members;
  const Placement placement{(dir / "files").string(), NatsUrl(instance, nats_members), Loopback(instance.redis_port),
                            NatsServerName(key), RedisServerName(key)};
  for (const auto& [file, content] : PipelineFiles(plan, placement)) {
    WriteFileIfChanged(dir / "files" / file, content);
  }
  if (plan.inputs.credentials) {
    // The servers' own files, apart from the components' (docs/security.md).
    const PipelineCredentials& credentials = *plan.inputs.credentials;
    const PipelineNames names(key.ns, key.name);
    const bool clustered = nats_members > 1;
    instance.nats_configs.clear();
    for (int i = 0; i < nats_members; ++i) {
      NatsServerLayout layout;
      layout.listen = Loopback(NatsClientPort(instance, i));
      layout.cert_file = (dir / "server" / "nats.crt").string();
      layout.key_file = (dir / "server" / "nats.key").string();
      layout.store_dir = NatsStoreDir(dir, plan.inputs.credentials, i, clustered).string();
      layout.debug = nats != nullptr && nats->settings.log_level == pk::LogLevel::kDebug;
      if (clustered) {
        layout.server_name = "n" + std::to_string(i);
        layout.cluster_listen = Loopback(NatsRoutePort(instance, i));
        for (int j = 0; j < nats_members; ++j) {
          if (j != i) layout.routes.push_back(Loopback(NatsRoutePort(instance, j)));
        }
        layout.ca_file = (dir / "server" / std::string(kCaFile)).string();
      }
      instance.nats_configs.push_back(NatsServerConfig(names, credentials, layout));
      WriteFileIfChanged(dir / "server" / NatsConfigFile(i, clustered), instance.nats_configs.back());
    }
    WriteFileIfChanged(dir / "server" / "nats.crt", credentials.nats_cert_pem);
    WriteFileIfChanged(dir / "server" / "nats.key", credentials.nats_key_pem);
    WriteFileIfChanged(dir / "server" / "redis.crt", credentials.redis_cert_pem);
    WriteFileIfChanged(dir / "server" / "redis.key", credentials.redis_key_pem);
    WriteFileIfChanged(dir / "server" / std::string(kCaFile), credentials.ca_pem);
    instance.redis_acl = RedisAclFile(names, credentials);
    WriteFileIfChanged(dir / "server" / "users.acl", instance.redis_acl);
  }
  instance.children = ChildrenFor(plan, instance, ConfigFingerprint(plan, placement));
  instance.parts.clear();
  instance.replicas.clear();
  for (const PartPlan& part : plan.parts) {
    instance.parts.push_back(part.part);
    instance.replicas[std::string(PartName(part.part))] = part.replicas;
  }
  supervisor_->SetDesired(key.ToString(), instance.children);
  return StatusOf(key, instance);
}

std::vector<ComponentStatus> LocalRunner::StopPipeline(const kube::ObjectKey& ls) {
  std::lock_guard lock(mu_);
  const auto found = instances_.find(ls);
  if (found == instances_.end()) return {};
  Instance& instance = found->second;
  std::erase_if(instance.children, [&](const ChildSpec& child) {
    const auto part = instance.part_of.find(child.id);
    return part != instance.part_of.end() && IsPipelineComponent(part->second);
  });
  for (PipelinePart part : instance.parts) {
    if (IsPipelineComponent(part)) instance.replicas[std::string(PartName(part))] = 0;
  }
  supervisor_->SetDesired(ls.ToString(), instance.children);
  return StatusOf(ls, instance);
}

std::optional<Endpoints> LocalRunner::ControllerEndpoints(const kube::ObjectKey& ls) {
  std::lock_guard lock(mu_);
  const auto found = instances_.find(ls);
  if (found == instances_.end()) return std::nullopt;
  int members = 1;
  if (const auto replicas = found->second.replicas.find(std::string(PartName(PipelinePart::kNats)));
      replicas != found->second.replicas.end()) {
    members = std::max(1, replicas->second);
  }
  return Endpoints{NatsUrl(found->second, members), Loopback(found->second.redis_port), {}};
}

void LocalRunner::Teardown(const kube::ObjectKey& ls, const ClientSecurity& security) {
  const std::string group = ls.ToString();
  // 1. The pipeline components stop (they would write Redis keys again).
  StopPipeline(ls);
  supervisor_->WaitStopped(group, options_.supervisor.stop_grace + std::chrono::seconds{2});
  // 2. Their state, while the servers still run.
  if (std::optional<Endpoints> endpoints = ControllerEndpoints(ls)) {
    endpoints->security = security;
    CleanUpPipelineState(ls, *endpoints, options_.cleanup_timeout);
  }
  // 3. The servers, then the files.
  if (!supervisor_->StopGroup(group)) {
    throw RunnerError("the processes of " + group + " did not stop in time");
  }
  std::error_code ignored;
  fs::remove_all(DirectoryOf(ls), ignored);
  fs::remove(DirectoryOf(ls).parent_path(), ignored);  // the namespace's, once empty
  std::lock_guard lock(mu_);
  const auto found = instances_.find(ls);
  if (found == instances_.end()) return;
  used_ports_.erase(found->second.nats_port);
  used_ports_.erase(found->second.redis_port);
  for (const auto& [id, port] : found->second.ports) used_ports_.erase(port);
  instances_.erase(found);
}

}  // namespace ro::kubesync::runner

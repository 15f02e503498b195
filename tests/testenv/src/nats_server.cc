#include "ro/testenv/nats_server.h"

#include <nlohmann/json.hpp>

#include <filesystem>

#include "net.h"
#include "ro/testenv/wait.h"

namespace ro::testenv {
using namespace std::chrono_literals;

namespace {
// One health probe may take this long before it counts as "not ready yet".
constexpr auto kProbeTimeout = 2s;
}  // namespace

NatsServer::NatsServer(NatsServerOptions options) : options_(options), dir_("nats") { Start(); }

void NatsServer::Start() {
  if (running()) return;
  process_.reset();
  auto start = std::chrono::steady_clock::now();
  std::string port = std::to_string(port_.port());
  std::string monitor = std::to_string(monitor_port_.port());
  ProcessOptions process;
  process.name = "nats-server";
  // -a: the default is every interface. -js -sd: JetStream with its store in the temp dir.
  process.argv = {"nats-server", "-a", "127.0.0.1", "-p", port, "-m", monitor, "-js", "-sd",
                  (dir_.path() / "jetstream").string()};
  if (options_.cluster) {
    const NatsClusterMembership& c = *options_.cluster;
    std::string routes;
    for (const std::string& route : c.routes) routes += (routes.empty() ? "" : ",") + route;
    process.argv.insert(process.argv.end(),
                        {"--name", c.server_name, "--cluster_name", c.cluster_name, "--cluster",
                         "nats://127.0.0.1:" + std::to_string(c.route_port), "--routes", routes});
  }
  process.log_path = dir_.path() / "nats-server.log";
  process_ = std::make_unique<Process>(std::move(process));
  process_->WaitUntilReady(
      [&] {
        auto url = "http://127.0.0.1:" + monitor + "/healthz?js-enabled-only=true";
        return internal::HttpCall(internal::HttpRequest::Get(url, kProbeTimeout)).status == 200;
      },
      options_.start_timeout, "GET /healthz?js-enabled-only=true = 200");
  startup_time_ = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
}

NatsServer::~NatsServer() { Stop(); }

std::string NatsServer::url() const { return "nats://127.0.0.1:" + std::to_string(port_.port()); }

void NatsServer::Stop() {
  if (process_) process_->Stop();
}

void NatsServer::Kill() {
  if (process_) process_->Kill();
}

void NatsServer::DeleteStore() {
  if (running()) throw TestEnvError("nats-server: the JetStream store cannot be deleted while the server runs");
  std::error_code ec;
  std::filesystem::remove_all(dir_.path() / "jetstream", ec);
  if (ec) throw TestEnvError("nats-server: cannot delete " + (dir_.path() / "jetstream").string() + ": " + ec.message());
}

NatsCluster::NatsCluster(int size, NatsServerOptions options) {
  if (size < 1) throw TestEnvError("NatsCluster: size must be at least 1");
  for (int i = 0; i < size; ++i) route_ports_.emplace_back();
  for (int i = 0; i < size; ++i) {
    NatsClusterMembership membership;
    membership.server_name = "n" + std::to_string(i);
    membership.cluster_name = "ro-test";
    membership.route_port = route_ports_[static_cast<std::size_t>(i)].port();
    for (int j = 0; j < size; ++j) {
      if (j != i) membership.routes.push_back("nats://127.0.0.1:" + std::to_string(route_ports_[static_cast<std::size_t>(j)].port()));
    }
    NatsServerOptions member = options;
    member.cluster = std::move(membership);
    members_.push_back(std::make_unique<NatsServer>(std::move(member)));
  }
  WaitForMetaLeader(options.start_timeout);
}

NatsCluster::~NatsCluster() {
  for (auto& member : members_) member->Stop();
}

std::string NatsCluster::url() const {
  std::string out;
  for (const auto& member : members_) out += (out.empty() ? "" : ",") + member->url();
  return out;
}

void NatsCluster::WaitForMetaLeader(std::chrono::milliseconds timeout) const {
  const auto size = members_.size();
  WaitFor(
      [&] {
        std::string leader;
        for (const auto& member : members_) {
          if (!member->running()) continue;
          auto url = "http://127.0.0.1:" + std::to_string(member->monitor_port()) + "/jsz";
          auto r = internal::HttpCall(internal::HttpRequest::Get(url, kProbeTimeout));
          if (r.status != 200) return false;
          auto jsz = nlohmann::json::parse(r.body, nullptr, /*allow_exceptions=*/false);
          if (!jsz.is_object() || !jsz.contains("meta_cluster")) return false;
          const auto& meta = jsz["meta_cluster"];
          const std::string this_leader = meta.value("leader", "");
          if (this_leader.empty() || meta.value("cluster_size", 0) != static_cast<int>(size)) return false;
          if (!leader.empty() && leader != this_leader) return false;
          leader = this_leader;
        }
        return !leader.empty();
      },
      timeout, "a JetStream meta leader known to every nats-server of the cluster");
}

}  // namespace ro::testenv

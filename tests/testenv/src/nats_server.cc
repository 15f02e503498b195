#include "ro/testenv/nats_server.h"

#include <filesystem>

#include "net.h"

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

}  // namespace ro::testenv

#include "ro/testenv/redis_server.h"

#include "net.h"

namespace ro::testenv {
using namespace std::chrono_literals;

namespace {
// One PING probe may take this long before it counts as "not ready yet".
constexpr auto kProbeTimeout = 2s;
}  // namespace

RedisServer::RedisServer(RedisServerOptions options) : options_(options), dir_("redis") { Start(); }

void RedisServer::Start() {
  if (running()) return;
  process_.reset();
  auto start = std::chrono::steady_clock::now();
  ProcessOptions process;
  process.name = "redis-server";
  // --bind is required (the default is every interface); no RDB snapshots; no AOF unless
  // the data must survive a kill -9 (then every write is fsync'ed before the reply).
  process.argv = {"redis-server", "--bind", "127.0.0.1", "--port", std::to_string(port_.port()), "--save", "",
                  "--daemonize", "no", "--dir", dir_.path().string()};
  if (options_.persistent) {
    process.argv.insert(process.argv.end(), {"--appendonly", "yes", "--appendfsync", "always"});
  } else {
    process.argv.insert(process.argv.end(), {"--appendonly", "no"});
  }
  if (options_.tls) {
    process.argv.insert(process.argv.end(), {"--tls-port", std::to_string(tls_port_.port()), "--tls-cert-file",
                                             options_.tls->cert_file, "--tls-key-file", options_.tls->key_file,
                                             "--tls-ca-cert-file", options_.tls->ca_file, "--tls-auth-clients", "no"});
  }
  process.log_path = dir_.path() / "redis-server.log";
  process_ = std::make_unique<Process>(std::move(process));
  process_->WaitUntilReady(
      [&] { return internal::TcpExchange(port_.port(), "PING\r\n", kProbeTimeout, "\r\n") == "+PONG\r\n"; },
      options_.start_timeout, "PING = +PONG");
  startup_time_ = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
}

RedisServer::~RedisServer() { Stop(); }

std::string RedisServer::address() const { return "127.0.0.1:" + std::to_string(port_.port()); }

std::string RedisServer::tls_address() const {
  if (!options_.tls) throw TestEnvError("redis-server was started without TLS");
  return "127.0.0.1:" + std::to_string(tls_port_.port());
}

void RedisServer::Stop() {
  if (process_) process_->Stop();
}

void RedisServer::Kill() {
  if (process_) process_->Kill();
}

void RedisServer::FlushAll() {
  const std::string answer = internal::TcpExchange(port_.port(), "FLUSHALL\r\n", kProbeTimeout, "\r\n");
  if (answer != "+OK\r\n") throw TestEnvError("redis-server FLUSHALL answered: " + answer);
}

}  // namespace ro::testenv

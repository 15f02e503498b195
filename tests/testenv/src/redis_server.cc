#include "ro/testenv/redis_server.h"

#include "net.h"

namespace ro::testenv {
using namespace std::chrono_literals;

namespace {
// One PING probe may take this long before it counts as "not ready yet".
constexpr auto kProbeTimeout = 2s;
}  // namespace

RedisServer::RedisServer(RedisServerOptions options) : dir_("redis") {
  auto start = std::chrono::steady_clock::now();
  ProcessOptions process;
  process.name = "redis-server";
  // --bind is required (the default is every interface); no RDB snapshots, no AOF:
  // test data never needs to survive the process.
  process.argv = {"redis-server", "--bind", "127.0.0.1", "--port", std::to_string(port_.port()), "--save", "",
                  "--appendonly", "no", "--daemonize", "no", "--dir", dir_.path().string()};
  process.log_path = dir_.path() / "redis-server.log";
  process_ = std::make_unique<Process>(std::move(process));
  process_->WaitUntilReady(
      [&] { return internal::TcpExchange(port_.port(), "PING\r\n", kProbeTimeout, "\r\n") == "+PONG\r\n"; },
      options.start_timeout, "PING = +PONG");
  startup_time_ = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
}

RedisServer::~RedisServer() { Stop(); }

std::string RedisServer::address() const { return "127.0.0.1:" + std::to_string(port_.port()); }

void RedisServer::Stop() {
  if (process_) process_->Stop();
}

}  // namespace ro::testenv

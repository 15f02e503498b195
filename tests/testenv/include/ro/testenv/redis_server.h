// A Redis server (redis-server 7.0, Debian package redis-server) on 127.0.0.1, no
// persistence, stopped by PID on destruction.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "ro/testenv/paths.h"
#include "ro/testenv/ports.h"
#include "ro/testenv/process.h"

namespace ro::testenv {

struct RedisServerOptions {
  // Deadline for PING to answer PONG (typically 0.1 s).
  std::chrono::milliseconds start_timeout{30000};
};

// `redis-server --bind 127.0.0.1 --port P --save '' --appendonly no --dir DIR`, ready
// when PING answers +PONG. Not thread-safe; not movable.
class RedisServer {
 public:
  // Starts and waits until ready. Throws TestEnvError (command line + log tail).
  explicit RedisServer(RedisServerOptions options = {});
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // Always "127.0.0.1".
  std::string host() const { return "127.0.0.1"; }
  std::uint16_t port() const { return port_.port(); }
  // "127.0.0.1:<port>".
  std::string address() const;
  std::chrono::milliseconds startup_time() const { return startup_time_; }
  const Process& process() const { return *process_; }
  // Stops the server now. Idempotent.
  void Stop();

 private:
  TempDir dir_;
  PortLease port_;
  std::chrono::milliseconds startup_time_{0};
  std::unique_ptr<Process> process_;
};

}  // namespace ro::testenv

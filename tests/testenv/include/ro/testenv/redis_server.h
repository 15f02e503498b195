// A Redis server (redis-server 7.0, Debian package redis-server) on 127.0.0.1, no
// persistence unless asked for, stopped by PID on destruction.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "ro/testenv/paths.h"
#include "ro/testenv/ports.h"
#include "ro/testenv/process.h"

namespace ro::testenv {

struct RedisServerOptions {
  // Deadline for PING to answer PONG (typically 0.1 s).
  std::chrono::milliseconds start_timeout{30000};
  // Keep the data across a kill -9 and Start(): append-only file, fsync'ed after every
  // write (`--appendonly yes --appendfsync always`). Off: nothing is written to disk.
  bool persistent = false;
  // Also listen with TLS on a second port (tls_address()) with this certificate, key
  // and CA (PEM files); clients are not asked for certificates. The plain port stays for
  // the readiness probe and FlushAll.
  struct Tls {
    std::string cert_file;
    std::string key_file;
    std::string ca_file;
  };
  std::optional<Tls> tls;
};

// `redis-server --bind 127.0.0.1 --port P --save '' --appendonly no --dir DIR` (with
// options.persistent: `--appendonly yes --appendfsync always`), ready when PING answers
// +PONG. Not thread-safe; not movable.
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
  // "127.0.0.1:<tls port>"; only with options.tls.
  std::string tls_address() const;
  std::chrono::milliseconds startup_time() const { return startup_time_; }
  const Process& process() const { return *process_; }
  // Stops the server now. Idempotent.
  void Stop();
  // kill -9: SIGKILL, no shutdown. Idempotent.
  void Kill();
  // Starts it again after Stop()/Kill() on the same port and directory (with
  // options.persistent the data written before is back) and waits until ready. No-op
  // while running. Throws TestEnvError as the constructor does.
  void Start();
  bool running() const { return process_ && process_->Running(); }
  // FLUSHALL: every key of every database is gone. Throws TestEnvError.
  void FlushAll();

 private:
  RedisServerOptions options_;
  TempDir dir_;
  PortLease port_;
  PortLease tls_port_;
  std::chrono::milliseconds startup_time_{0};
  std::unique_ptr<Process> process_;
};

}  // namespace ro::testenv

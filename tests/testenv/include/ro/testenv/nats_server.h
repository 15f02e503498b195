// A NATS server with JetStream (nats-server 2.9, Debian package nats-server) on
// 127.0.0.1, data in a fresh temp dir, stopped by PID on destruction.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "ro/testenv/paths.h"
#include "ro/testenv/ports.h"
#include "ro/testenv/process.h"

namespace ro::testenv {

struct NatsServerOptions {
  // Deadline for the server to answer /healthz?js-enabled-only=true (typically 0.1 s).
  std::chrono::milliseconds start_timeout{30000};
};

// `nats-server -a 127.0.0.1 -p P -m M -js -sd DIR`, ready when the monitoring endpoint
// /healthz?js-enabled-only=true answers 200. Not thread-safe; not movable.
class NatsServer {
 public:
  // Starts and waits until ready. Throws TestEnvError (command line + log tail) when the
  // server cannot start or is not ready before the deadline.
  explicit NatsServer(NatsServerOptions options = {});
  ~NatsServer();
  NatsServer(const NatsServer&) = delete;
  NatsServer& operator=(const NatsServer&) = delete;

  // "nats://127.0.0.1:<port>", for natsConnection_ConnectTo.
  std::string url() const;
  std::uint16_t port() const { return port_.port(); }
  // HTTP monitoring port (/varz, /jsz, /healthz).
  std::uint16_t monitor_port() const { return monitor_port_.port(); }
  // Time from fork to ready.
  std::chrono::milliseconds startup_time() const { return startup_time_; }
  const Process& process() const { return *process_; }
  // Stops the server now (the destructor does it otherwise). Idempotent.
  void Stop();
  // kill -9: SIGKILL, no shutdown (JetStream's store stays as the crash left it).
  // Idempotent.
  void Kill();
  // Deletes the JetStream store directory (streams, consumers, key-value buckets), as a
  // lost volume would. Throws TestEnvError while the server runs.
  void DeleteStore();
  // Starts it again after Stop()/Kill() on the same ports and store directory and waits
  // until ready. No-op while running. Throws TestEnvError as the constructor does.
  void Start();
  bool running() const { return process_ && process_->Running(); }

 private:
  NatsServerOptions options_;
  TempDir dir_;
  PortLease port_;
  PortLease monitor_port_;
  std::chrono::milliseconds startup_time_{0};
  std::unique_ptr<Process> process_;
};

}  // namespace ro::testenv

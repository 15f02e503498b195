// A NATS server with JetStream (nats-server 2.9, Debian package nats-server) on
// 127.0.0.1, data in a fresh temp dir, stopped by PID on destruction.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ro/testenv/paths.h"
#include "ro/testenv/ports.h"
#include "ro/testenv/process.h"

namespace ro::testenv {

// One member of a JetStream cluster (NatsCluster fills it in): its unique server name,
// the cluster's name, the port its routes listen on and the other members' route URLs
// ("nats://127.0.0.1:<port>").
struct NatsClusterMembership {
  std::string server_name;
  std::string cluster_name;
  std::uint16_t route_port = 0;
  std::vector<std::string> routes;
};

struct NatsServerOptions {
  // Deadline for the server to answer /healthz?js-enabled-only=true (typically 0.1 s).
  std::chrono::milliseconds start_timeout{30000};
  // Set: the server joins a JetStream cluster (--name, --cluster_name, --cluster,
  // --routes). Unset: a single server.
  std::optional<NatsClusterMembership> cluster;
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

// A JetStream cluster of `size` nats-servers on 127.0.0.1 (routes between all of them,
// each with its own store), ready when every member names the same JetStream meta
// leader and counts all `size` peers (GET /jsz). Streams created through any member
// may have up to `size` replicas. Not thread-safe; not movable.
class NatsCluster {
 public:
  // Starts the members and waits until ready. Throws TestEnvError as NatsServer does,
  // or when no meta leader is elected before options.start_timeout.
  explicit NatsCluster(int size = 3, NatsServerOptions options = {});
  ~NatsCluster();
  NatsCluster(const NatsCluster&) = delete;
  NatsCluster& operator=(const NatsCluster&) = delete;

  // Every member's client URL, comma-separated (NatsConnection::Connect's list form).
  std::string url() const;
  int size() const { return static_cast<int>(members_.size()); }
  // Member i (0-based), e.g. to Kill() and Start() it.
  NatsServer& member(int i) { return *members_.at(static_cast<std::size_t>(i)); }
  // Waits until every running member names the same meta leader and counts `size()`
  // peers, and every current peer is current. Throws WaitTimeout.
  void WaitForMetaLeader(std::chrono::milliseconds timeout) const;

 private:
  std::vector<PortLease> route_ports_;
  std::vector<std::unique_ptr<NatsServer>> members_;
};

}  // namespace ro::testenv

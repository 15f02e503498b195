// A standalone ZooKeeper server (3.8, Debian packages zookeeper + a JRE) on 127.0.0.1,
// data in a fresh temp dir, stopped by PID on destruction.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "ro/testenv/paths.h"
#include "ro/testenv/ports.h"
#include "ro/testenv/process.h"

namespace ro::testenv {

struct ZooKeeperServerOptions {
  // Deadline for the `srvr` four-letter word to report "Mode: standalone" (typically
  // 0.5-2 s: a JVM start).
  std::chrono::milliseconds start_timeout{60000};
  // The JVM as tests want it (true: a small heap, the serial collector and the C1 compiler
  // only, which start fast on 2 shared cores) or as Debian's zookeeper package runs it
  // (false: no flags, so the JVM's default heap, collector and full tiered compilation;
  // slower to start, faster once warm). Benchmarks use false.
  bool quick_start_jvm = true;
};

// `java ... org.apache.zookeeper.server.ZooKeeperServerMain zoo.cfg` with
// clientPortAddress=127.0.0.1, the admin HTTP server off and the four-letter words
// ruok,srvr,stat,mntr allowed. Ready when `srvr` says "Mode: standalone" (`ruok` answers
// imok before the database is loaded). Every probe has a 2 s timeout: a probe that
// arrives while the database loads can otherwise hang. Not thread-safe; not movable.
class ZooKeeperServer {
 public:
  // Starts and waits until ready. Throws TestEnvError (command line + log tail).
  explicit ZooKeeperServer(ZooKeeperServerOptions options = {});
  ~ZooKeeperServer();
  ZooKeeperServer(const ZooKeeperServer&) = delete;
  ZooKeeperServer& operator=(const ZooKeeperServer&) = delete;

  // "127.0.0.1:<port>", for zookeeper_init.
  std::string connect_string() const;
  std::uint16_t port() const { return port_.port(); }
  std::chrono::milliseconds startup_time() const { return startup_time_; }
  const Process& process() const { return *process_; }
  // Sends a four-letter word ("srvr", "mntr", ...) and returns the answer. Throws
  // TestEnvError when the server does not answer within 2 s.
  std::string FourLetterWord(const std::string& word) const;
  // Stops the server now. Idempotent.
  void Stop();

 private:
  TempDir dir_;
  PortLease port_;
  std::chrono::milliseconds startup_time_{0};
  std::unique_ptr<Process> process_;
};

}  // namespace ro::testenv

// One controller binary of the build (bucket-controller ... taskrun-controller) run as a
// process by a test, with its probe and metrics servers on reserved loopback ports.
// Shared by every test that spawns a controller (asset controllers, runtime, RBAC,
// LiveSynchronization and Task e2e tests).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ro/testenv/ports.h"
#include "ro/testenv/process.h"
#include "ro/testsupport/kubesync_process.h"

namespace ro::testsupport {

struct ControllerProcessOptions {
  // Binary name in $RO_BIN_DIR, e.g. "bucket-controller".
  std::string binary;
  // --kubeconfig.
  std::filesystem::path kubeconfig;
  // Directory of the log file `<binary>[-<instance>].log`.
  std::filesystem::path dir;
  // --license-file (a missing file is allowed: the controller reports it on /readyz).
  std::filesystem::path license_file;
  // Further flags, appended after the ones above.
  std::vector<std::string> args;
  // Distinguishes two processes of one binary (process and log name suffix).
  std::string instance;
  // Extra environment, e.g. {"POD_NAME", "a"} (the leader-election identity prefix).
  std::vector<std::pair<std::string, std::string>> env;
  // The probe the constructor waits for (200) and for how long.
  std::string ready_path = "/readyz";
  std::chrono::seconds ready_timeout{90};
  // SIGTERM -> SIGKILL grace when stopped (the livesynchronization controller stops
  // its components first).
  std::chrono::seconds stop_timeout{30};
};

class ControllerProcess {
 public:
  // Spawns the binary and waits until options.ready_path answers 200.
  // Throws testenv::TestEnvError (with the log tail) when it exits or is not ready in time.
  explicit ControllerProcess(ControllerProcessOptions options);

  // GET of a probe path (/healthz, /readyz) or /metrics on the matching port.
  HttpAnswer Get(const std::string& path) const;
  // Waits until GET `path` answers 200.
  void WaitFor(const std::string& path, std::chrono::milliseconds timeout);
  // Sum of controller_runtime_reconcile_total over every result label, for the
  // controller label `controller`, or for all controllers when empty.
  double ReconcileCount(const std::string& controller = "") const;

  testenv::Process& process() { return *process_; }
  std::uint16_t health_port() const { return health_.port(); }
  std::uint16_t metrics_port() const { return metrics_.port(); }
  // The whole log (JSON lines) so far.
  std::string Log() const;
  // The log lines (parsed) whose "msg" is `msg`.
  std::vector<nlohmann::json> LogLines(std::string_view msg) const;

 private:
  testenv::PortLease health_;
  testenv::PortLease metrics_;
  std::unique_ptr<testenv::Process> process_;
};

}  // namespace ro::testsupport

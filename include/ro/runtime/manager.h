// The manager (controller-runtime pkg/manager): everything one controller binary runs.
//
//   - a DynamicClient from the kubeconfig (ro::kube::LoadDefaultConfig)
//   - an EventRecorder (source.component = the binary name)
//   - the shared informers (InformerCache) and the controllers registered on it
//   - /metrics (Prometheus text) on --metrics-bind-address and /healthz, /readyz on
//     --health-probe-bind-address
//   - the license check at start-up (license.h)
//   - optionally leader election on the Lease <ns>/<id>: informers run on every
//     instance, workers only on the leader; losing the Lease ends Run() with exit code
//     1 so the pod restarts (as controller-runtime does)
//
// Shutdown (stop requested, e.g. SIGTERM): workers stop taking keys and the reconciles
// in flight finish, the Lease is released (the next instance takes over at once),
// informers stop, queued Events are flushed; Run() returns 0.
//
// /healthz: 200 "ok" while the process runs. /readyz: 200 when every informer has
// synced and, with leader election, the elector is leading or campaigning; otherwise
// 503. Both bodies list the checks ("[+]informers ok", "[-]...", and the license state
// as information; the license never fails readiness).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <vector>

#include "ro/kube/clock.h"
#include "ro/runtime/controller.h"
#include "ro/runtime/license.h"
#include "ro/runtime/options.h"

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace ro::kube {
class DynamicClient;
class EventRecorder;
}  // namespace ro::kube

namespace ro::runtime {

class ControllerMetrics;
class InformerCache;

class Manager {
 public:
  // Builds the client (throws ConfigError when no kubeconfig works), the recorder, the
  // cache and the metrics registry, and reads the license. Starts nothing yet.
  // Throws std::invalid_argument for invalid options.
  explicit Manager(ManagerOptions options, kube::Clock& clock = kube::DefaultClock());
  ~Manager();
  Manager(const Manager&) = delete;
  Manager& operator=(const Manager&) = delete;

  const ManagerOptions& options() const { return options_; }
  kube::DynamicClient& client() { return *client_; }
  kube::EventRecorder& recorder() { return *recorder_; }
  InformerCache& cache() { return *cache_; }
  prometheus::Registry& registry() { return *registry_; }
  ControllerMetrics& metrics() { return *metrics_; }
  kube::Clock& clock() { return clock_; }
  const LicenseInfo& license() const { return license_; }

  // Registers a controller (its options' max_concurrent_reconciles is replaced by the
  // --max-concurrent-reconciles flag). Call during set-up, before Run(). The reference
  // stays valid for the manager's life.
  Controller& NewController(const std::string& name, std::unique_ptr<Reconciler> reconciler);

  // Runs until `stop` is requested (returns 0) or leadership is lost (returns 1), then
  // shuts down as described above. Throws ro::common::HttpServerError when a
  // probe/metrics address cannot be bound. Call once.
  int Run(std::stop_token stop);

  // The /healthz and /readyz bodies and status codes (what the probe server serves).
  bool Ready(std::string* detail) const;

 private:
  void RunControllers(std::stop_token stop);
  // Returns the exit code: 0 after `stop`, 1 when leadership was lost.
  int RunWithLeaderElection(std::stop_token stop);

  // Constant after construction.
  const ManagerOptions options_;
  kube::Clock& clock_;
  LicenseInfo license_;
  // The metrics first: the client's transport counts its requests in them.
  std::unique_ptr<prometheus::Registry> registry_;
  std::unique_ptr<ControllerMetrics> metrics_;
  std::unique_ptr<kube::DynamicClient> client_;
  std::unique_ptr<kube::EventRecorder> recorder_;
  std::unique_ptr<InformerCache> cache_;
  std::vector<std::unique_ptr<Controller>> controllers_;  // set-up only, then constant

  // Shared with the probe server's threads.
  std::atomic<bool> leading_{false};
  std::atomic<bool> campaigning_{false};
};

// What a binary's main() hands to RunControllerMain.
struct ControllerMain {
  // "bucket-controller".
  std::string binary_name;
  // Registers the binary's own flags (may be empty).
  std::function<void(FlagSet&)> add_flags;
  // Registers the controllers on the manager (after flags were parsed). Required.
  std::function<void(Manager&)> setup;
};

// The whole life of a controller binary: parse flags (exit 2 on bad flags, 0 for
// --help), install JSON logging (process.id = binary_name), block SIGTERM/SIGINT and
// turn the first into a graceful stop (a second one exits at once with 1), initialise
// libcurl, build and run the Manager. Exits 1 when the graceful shutdown outlasts
// --graceful-shutdown-timeout or set-up fails. Returns the process exit code.
int RunControllerMain(int argc, char** argv, const ControllerMain& main);

}  // namespace ro::runtime

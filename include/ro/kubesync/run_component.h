// The `kubesync` binary's main() (docs/kubesync.md, "Components"):
//
//   kubesync <events-listener|processor|synchronizer|reconciler|metrics-exporter>
//            --config FILE [--metrics-bind-address ADDR] [--health-probe-bind-address ADDR]
//            [--log-level L]
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "ro/kubesync/component.h"

namespace ro::kubesync {

// The `kubesync` command line, parsed by main() (src/kubesync/main_kubesync.cc).
struct ComponentFlags {
  ComponentId component = ComponentId::kEventsListener;
  // The configuration file (kubesync_config.h).
  std::string config_path;
  // host:port of /metrics (metrics-exporter); "0" disables.
  std::string metrics_bind_address = ":8080";
  // host:port of /healthz and /readyz; "0" disables.
  std::string health_probe_bind_address = ":8081";
  // debug | info | warn | error; "" = components.<name>.logLevel of spec.config.
  std::string log_level;
};

// Runs one component as the whole process: loads the configuration, sets up JSON
// logging (process.id per ProcessId, plus consumerID for the processor and the
// synchronizer), the health/metrics server and the signal handling (SIGTERM/SIGINT: a
// graceful stop), connects to NATS/Redis/the clusters with retries and runs the
// component. Returns the process exit code: 0 after a graceful stop, 1 for a bad
// configuration or an address that cannot be bound. Call once, from main(), before any
// other thread exists (it blocks the stop signals for the whole process).
int RunComponent(const ComponentFlags& flags);

// Before RunComponent loads the configuration of a deployments-runner pod (environment
// variable runner::kConfigHashEnv set): waits until the file at `path` carries
// `expected` in its runner::kConfigHashField member, reading it again every `poll`, for
// at most `timeout`. The kubelet may mount the previous content of the configuration
// Secret into a pod made for the new one; it refreshes the volume within about a minute.
// True when the file is current (at once, in the usual case).
bool WaitForConfig(const std::string& path, std::string_view expected, std::chrono::milliseconds timeout,
                   std::chrono::milliseconds poll = std::chrono::seconds{1});

}  // namespace ro::kubesync

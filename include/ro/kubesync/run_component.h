// The `kubesync` binary's main() (docs/kubesync.md, "Components"):
//
//   kubesync <events-listener|processor|synchronizer|reconciler|metrics-exporter>
//            --config FILE [--metrics-bind-address ADDR] [--health-probe-bind-address ADDR]
//            [--log-level L]
#pragma once

#include <string>

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

}  // namespace ro::kubesync

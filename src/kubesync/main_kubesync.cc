// kubesync: the LiveSynchronization pipeline components (docs/kubesync.md).
//   kubesync <events-listener|processor|synchronizer|reconciler|metrics-exporter>
//            --config FILE [--metrics-bind-address ADDR] [--health-probe-bind-address ADDR]
//            [--log-level L]
#include <CLI/CLI.hpp>

#include <string>

#include "ro/kubesync/run_component.h"

int main(int argc, char** argv) {
  using ro::kubesync::ComponentId;
  CLI::App app{"kubesync: the components of a LiveSynchronization (Kubernetes objects replication)"};
  app.require_subcommand(1, 1);
  ro::kubesync::ComponentFlags flags;
  for (ComponentId id : {ComponentId::kEventsListener, ComponentId::kProcessor, ComponentId::kSynchronizer,
                         ComponentId::kReconciler, ComponentId::kMetricsExporter}) {
    CLI::App* sub = app.add_subcommand(std::string(ro::kubesync::SubcommandName(id)),
                                       "run the " + std::string(ro::kubesync::ProcessId(id)) + " component");
    sub->add_option("--config", flags.config_path, "configuration file written by the LiveSynchronization controller")
        ->required();
    sub->add_option("--metrics-bind-address", flags.metrics_bind_address, "host:port of /metrics; 0 disables")
        ->capture_default_str();
    sub->add_option("--health-probe-bind-address", flags.health_probe_bind_address,
                    "host:port of /healthz and /readyz; 0 disables")
        ->capture_default_str();
    sub->add_option("--log-level", flags.log_level, "debug, info, warn or error (default: spec.config components)")
        ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
    sub->callback([&flags, id] { flags.component = id; });
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return ro::kubesync::RunComponent(flags);
}

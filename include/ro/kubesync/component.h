// A Kubesync component (docs/kubesync.md, "Components"): its identity in the manual's
// logs and the interface the `kubesync` binary runs. The rest of what components share
// has one header each: pipeline_context.h (what a component derives from its
// configuration file), pipeline_wire.h (the stream, consumers and buckets every component
// ensures), stage.h (the stage runtime), retry.h (reconnect loops), run_component.h (the
// binary's main()).
#pragma once

#include <stop_token>
#include <string_view>

namespace ro::kubesync {

// The components of manual 6.2.7 that the `kubesync` binary runs.
enum class ComponentId { kEventsListener, kProcessor, kSynchronizer, kReconciler, kMetricsExporter };

// process.id of the component's log lines (manual 6.2.4): "eventslistener", "processor",
// "synchronizer", "reconciler", "metricsexporter". Also the `component` stats label.
std::string_view ProcessId(ComponentId id);
// The binary's subcommand: "events-listener", "processor", "synchronizer", "reconciler",
// "metrics-exporter".
std::string_view SubcommandName(ComponentId id);

// A running component. Run() is called once, on the main thread.
class Component {
 public:
  virtual ~Component() = default;
  // Works until `stop` is requested, then shuts down gracefully (in-flight work is
  // finished and acked, the rest is released for redelivery) and returns. Errors of
  // servers and bad input are logged, counted and retried or skipped, never thrown.
  virtual void Run(std::stop_token stop) = 0;
  // The /readyz answer: caches synced and consumers bound. Thread-safe.
  virtual bool Ready() const = 0;
};

}  // namespace ro::kubesync

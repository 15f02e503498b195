// What the five Kubesync components share (docs/kubesync.md, "Components"): the
// component identities of the manual's logs, the per-LiveSynchronization context derived
// once from the configuration file, the wire set-up every component makes idempotently
// (stream + durable consumers), retry/backoff for reconnect loops, and the `kubesync`
// binary's main().
//
//   kubesync <events-listener|processor|synchronizer|reconciler|metrics-exporter>
//            --config FILE [--metrics-bind-address ADDR] [--health-probe-bind-address ADDR]
//            [--log-level L]
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <random>
#include <stop_token>
#include <string>
#include <string_view>

#include "ro/kubesync/envelope.h"
#include "ro/kubesync/jetstream.h"
#include "ro/kubesync/kubesync_config.h"
#include "ro/plugins/kubernetes/control_metadata.h"
#include "ro/plugins/kubernetes/live_sync_config.h"

namespace ro::kubesync {

// The components of manual 6.2.7 that the `kubesync` binary runs.
enum class ComponentId { kEventsListener, kProcessor, kSynchronizer, kReconciler, kMetricsExporter };

// process.id of the component's log lines (manual 6.2.4): "eventslistener", "processor",
// "synchronizer", "reconciler", "metricsexporter". Also the `component` stats label.
std::string_view ProcessId(ComponentId id);
// The binary's subcommand: "events-listener", "processor", "synchronizer", "reconciler",
// "metrics-exporter".
std::string_view SubcommandName(ComponentId id);

// Everything a component derives from its configuration file, once. Immutable after
// construction; thread-safe for concurrent readers.
class PipelineContext {
 public:
  // Parses file.spec_config with ParseLiveSyncConfig. Throws
  // plugins::kubernetes::ConfigError (invalid spec.config) or KubesyncConfigError
  // (spec.config names a bucket but the file has none).
  PipelineContext(KubesyncConfig file, ComponentId component, std::string consumer_id);

  const KubesyncConfig& file() const { return file_; }
  const plugins::kubernetes::LiveSyncConfig& config() const { return config_; }
  const PipelineNames& names() const { return names_; }
  // What the processor stamps on destination objects (source cluster = the
  // KubernetesCluster named by spec.config.sourceName).
  const plugins::kubernetes::StampInfo& stamp() const { return stamp_; }
  ComponentId component() const { return component_; }
  std::string_view process_id() const { return ProcessId(component_); }
  // process.consumerID of the processor's and synchronizer's lines, e.g.
  // "processor-kubesync-pre-7d9f-x2" ($POD_NAME, else hostname-pid).
  const std::string& consumer_id() const { return consumer_id_; }
  // components.<this component>.concurrentTasks (defaults: docs/kubesync.md), >= 1.
  int concurrent_tasks() const;

  // Log fields of manual 6.2.4: {"name","namespace","resourceVersion","uid"} of the
  // source/destination KubernetesCluster and of the Bucket (JSON null without bucket).
  nlohmann::json SourceClusterField() const;
  nlohmann::json DestinationClusterField() const;
  nlohmann::json BucketField() const;

 private:
  KubesyncConfig file_;
  plugins::kubernetes::LiveSyncConfig config_;
  PipelineNames names_;
  plugins::kubernetes::StampInfo stamp_;
  ComponentId component_;
  std::string consumer_id_;
};

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

// Exponential backoff with jitter for reconnect and retry loops (the reflector's idea:
// quick first retry, bounded load during long outages, jitter spreads replicas).
// Not thread-safe (one per loop).
class Backoff {
 public:
  // Each Next() returns min(initial * 2^n, max) stretched by a random factor in
  // [1, 1 + jitter).
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, double jitter = 0.5);
  std::chrono::milliseconds Next();
  void Reset() { attempt_ = 0; }

 private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds max_;
  double jitter_;
  int attempt_ = 0;
  std::mt19937_64 rng_;
};

// Calls `attempt` until it returns normally (true) or `stop` is requested (false).
// After each exception `on_error(e, wait)` is told (to log) and the loop waits `wait`
// from `backoff`, returning early on stop.
bool RetryUntilStopped(std::stop_token stop, Backoff& backoff, const std::function<void()>& attempt,
                       const std::function<void(const std::exception&, std::chrono::milliseconds)>& on_error);

// Sleeps `d` or until `stop`; returns false when stopped.
bool SleepFor(std::chrono::nanoseconds d, std::stop_token stop);

// The NAK delay of a message handled unsuccessfully for the `delivery_count`th time:
// 250 ms doubling per delivery up to 30 s (a transient apiserver or S3 failure is
// retried quickly; a long outage costs one attempt per 30 s per message).
std::chrono::milliseconds NakDelay(std::uint64_t delivery_count);
// The same, but at least the server's `retry_after` (a 429's Retry-After, RFC 9110
// section 10.2.3), which is clipped to 60 s like the kube transport clips it.
std::chrono::milliseconds NakDelay(std::uint64_t delivery_count, std::chrono::seconds retry_after);

// The consumers' ack wait: a message delivered and not settled within it is delivered
// again (to any replica). Short, so that what a crash, a kill -9 or a NATS restart left
// unacknowledged comes back within seconds; the processor and the synchronizer tell
// JetStream that a message they still hold is in progress every kInProgressInterval, so
// a slow destination or a long queue never makes a held message due.
inline constexpr std::chrono::milliseconds kConsumerAckWait{5000};
inline constexpr std::chrono::milliseconds kInProgressInterval{1500};

// The stream and the two durable consumers of docs/kubesync.md "Data flow". Every
// component that produces or consumes ensures them at start-up (idempotent), so the
// components may start in any order.
StreamConfig PipelineStreamConfig(const PipelineNames& names);
ConsumerConfig ProcessorConsumerConfig(const PipelineNames& names);
ConsumerConfig SynchronizerConsumerConfig(const PipelineNames& names);
// The synchronizer's tombstone bucket: a value lives twice the stream's max age, since an
// event can wait that long in the stream (events subject, then apply subject after the
// processor republished it) and must still find the tombstone of a later deletion.
KeyValueConfig TombstoneBucketConfig(const PipelineNames& names);
// EnsureStream + both EnsureConsumer. Throws NatsError.
void EnsurePipeline(NatsConnection& nats, const PipelineNames& names);

// The payload of a control message asking the reconciler for a prune pass now.
inline constexpr std::string_view kReconcileNow = "reconcile-now";

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

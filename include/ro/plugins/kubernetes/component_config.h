// spec.config.components of a LiveSynchronization (manual 6.2.6 Components/Component):
// per pipeline component, log level, image pull policy, container resources, parallelism
// and replica count, with the defaults the controller uses when a field is absent.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "ro/plugins/kubernetes/config_error.h"

namespace ro::plugins::kubernetes {

// The components of manual 6.2.7 (plus the restorer of the recovery process).
enum class ComponentKind {
  kEventsListener,
  kProcessor,
  kReconciler,
  kRestorer,
  kSynchronizer,
  kNats,
  kRedis,
  kMetricsExporter,
};
inline constexpr std::size_t kComponentKindCount = 8;

// The key under spec.config.components: "eventsListener", "metricsExporter", ...
std::string_view ComponentName(ComponentKind kind);

// Default concurrentTasks when the field is absent:
//   processor 8, synchronizer 8, restorer 8: parallel lanes of independent objects;
//     8 keeps a few apiserver/S3 round trips in flight per replica without exceeding
//     the default client rate limits (docs/kubesync.md "Ordering").
//   eventsListener 256: in-flight JetStream publishes awaiting their ack. A list or a
//     burst publishes at up to this many per round trip to JetStream (4, the earlier
//     default, held a resync of 10,000 objects to ~3,300 objects/s).
//   reconciler 2: resources listed in parallel during a prune pass (list calls are
//     heavy; two keeps both clusters lightly loaded).
//   nats, redis, metricsExporter 1: servers, the value is not used.
std::int32_t DefaultConcurrentTasks(ComponentKind kind);

enum class LogLevel { kDebug, kInfo, kWarn, kError };

// "debug", "info", "warn", "error".
std::string_view LogLevelName(LogLevel level);

// One component's settings, defaults filled in.
struct ComponentConfig {
  LogLevel log_level = LogLevel::kInfo;
  // Always, IfNotPresent or Never.
  std::string image_pull_policy = "IfNotPresent";
  // The container `resources` ({limits, requests}) as given; nullptr when absent.
  std::shared_ptr<const nlohmann::json> resources;
  // >= 1.
  std::int32_t concurrent_tasks = 1;
  // >= 0; 0 stops the component.
  std::int32_t replicas = 1;
};

// All components, indexed by ComponentKind.
struct ComponentsConfig {
  std::array<ComponentConfig, kComponentKindCount> by_kind;

  const ComponentConfig& Get(ComponentKind kind) const {
    return by_kind[static_cast<std::size_t>(kind)];
  }
  ComponentConfig& Get(ComponentKind kind) { return by_kind[static_cast<std::size_t>(kind)]; }
};

// Every component with its defaults (DefaultConcurrentTasks, 1 replica, info, IfNotPresent).
ComponentsConfig DefaultComponentsConfig();

// Validates spec.config.components (`components`, a JSON object keyed by ComponentName):
// defaults for absent settings; problems (reason InvalidComponent, fields under `field`,
// e.g. "components.processor.concurrentTasks") appended to `problems`: logLevel not
// debug/info/warn/error, imagePullPolicy not Always/IfNotPresent/Never, concurrentTasks
// not an int32 >= 1, replicas not an int32 >= 0, resources not {limits, requests} of
// quantities (strings or numbers). Unknown component names are ignored.
ComponentsConfig ParseComponentsConfig(const nlohmann::json& components, const std::string& field,
                                       std::vector<ConfigProblem>* problems);

}  // namespace ro::plugins::kubernetes

#include "ro/plugins/kubernetes/component_config.h"

#include <algorithm>
#include <array>
#include <limits>

#include <nlohmann/json.hpp>

#include "config_reader.h"

namespace ro::plugins::kubernetes {
namespace {

using nlohmann::json;
using internal::AddProblem;
using internal::Field;
using internal::Member;
using Problems = std::vector<ConfigProblem>;

// An int32 member within [min, int32 max]; `fallback` when absent.
std::int32_t ComponentCount(const json& component, std::string_view key, const std::string& field,
                            std::int64_t min, std::int32_t fallback, Problems* problems) {
  const json* value = Member(component, key);
  if (value == nullptr) return fallback;
  constexpr std::int64_t kMax = std::numeric_limits<std::int32_t>::max();
  const bool integral = value->is_number_integer();
  const std::int64_t n =
      value->is_number_unsigned() && value->get<std::uint64_t>() > static_cast<std::uint64_t>(kMax)
          ? kMax + 1
          : (integral ? value->get<std::int64_t>() : 0);
  if (!integral || n < min || n > kMax) {
    AddProblem(problems, field, reason::kInvalidComponent,
               "must be an integer from " + std::to_string(min) + " to " + std::to_string(kMax) +
                   ", got " + value->dump());
    return fallback;
  }
  return static_cast<std::int32_t>(n);
}

void ParseComponent(const json& component, ComponentKind kind, const std::string& base,
                    ComponentConfig* config, Problems* problems) {
  if (!component.is_object()) {
    AddProblem(problems, base, reason::kInvalidComponent,
               std::string("must be an object, got ") + component.type_name());
    return;
  }
  if (const json* level = Member(component, "logLevel")) {
    static constexpr std::array<LogLevel, 4> kLevels = {LogLevel::kDebug, LogLevel::kInfo,
                                                        LogLevel::kWarn, LogLevel::kError};
    const auto it = std::find_if(kLevels.begin(), kLevels.end(), [&](LogLevel l) {
      return level->is_string() && level->get_ref<const std::string&>() == LogLevelName(l);
    });
    if (it == kLevels.end()) {
      AddProblem(problems, Field(base, "logLevel"), reason::kInvalidComponent,
                 level->dump() + " is not a log level (debug, info, warn, error)");
    } else {
      config->log_level = *it;
    }
  }
  if (const json* policy = Member(component, "imagePullPolicy")) {
    const bool ok = policy->is_string() && (*policy == "Always" || *policy == "IfNotPresent" ||
                                            *policy == "Never");
    if (!ok) {
      AddProblem(problems, Field(base, "imagePullPolicy"), reason::kInvalidComponent,
                 policy->dump() + " is not an image pull policy (Always, IfNotPresent, Never)");
    } else {
      config->image_pull_policy = policy->get<std::string>();
    }
  }
  if (const json* resources = Member(component, "resources")) {
    bool ok = resources->is_object();
    for (const char* part : {"limits", "requests"}) {
      if (!ok) break;
      const json* quantities = Member(*resources, part);
      if (quantities == nullptr) continue;
      ok = quantities->is_object() &&
           std::all_of(quantities->begin(), quantities->end(),
                       [](const json& q) { return q.is_string() || q.is_number(); });
    }
    if (!ok) {
      AddProblem(problems, Field(base, "resources"), reason::kInvalidComponent,
                 "must be container resources: {limits: {cpu: \"500m\", memory: \"256Mi\"}, "
                 "requests: {...}}");
    } else {
      config->resources = std::make_shared<const json>(*resources);
    }
  }
  config->concurrent_tasks =
      ComponentCount(component, "concurrentTasks", Field(base, "concurrentTasks"), 1,
                     DefaultConcurrentTasks(kind), problems);
  config->replicas = ComponentCount(component, "replicas", Field(base, "replicas"), 0, 1, problems);
  if (kind == ComponentKind::kNats && config->replicas != 1 && config->replicas != 3 && config->replicas != 5) {
    // A JetStream cluster needs a majority of its servers: an even size tolerates no
    // more failures than the odd size below it, and 0 would stop the pipeline's transport.
    AddProblem(problems, Field(base, "replicas"), reason::kInvalidComponent,
               "must be 1, 3 or 5 (the nats-servers of one JetStream cluster), got " +
                   std::to_string(config->replicas));
    config->replicas = 1;
  }
}

ComponentsConfig ParseComponentsImpl(const json& components, const std::string& field, Problems* problems) {
  ComponentsConfig config = DefaultComponentsConfig();
  for (std::size_t i = 0; i < kComponentKindCount; ++i) {
    const auto kind = static_cast<ComponentKind>(i);
    const std::string_view name = ComponentName(kind);
    if (const json* component = Member(components, name)) {
      ParseComponent(*component, kind, Field(field, name), &config.Get(kind), problems);
    }
  }
  return config;
}

}  // namespace

std::string_view ComponentName(ComponentKind kind) {
  switch (kind) {
    case ComponentKind::kEventsListener:
      return "eventsListener";
    case ComponentKind::kProcessor:
      return "processor";
    case ComponentKind::kReconciler:
      return "reconciler";
    case ComponentKind::kRestorer:
      return "restorer";
    case ComponentKind::kSynchronizer:
      return "synchronizer";
    case ComponentKind::kNats:
      return "nats";
    case ComponentKind::kRedis:
      return "redis";
    case ComponentKind::kMetricsExporter:
      return "metricsExporter";
  }
  return "unknown";
}

std::int32_t DefaultConcurrentTasks(ComponentKind kind) {
  switch (kind) {
    case ComponentKind::kProcessor:
    case ComponentKind::kSynchronizer:
    case ComponentKind::kRestorer:
      return 8;
    case ComponentKind::kEventsListener:
      return 256;
    case ComponentKind::kReconciler:
      return 2;
    case ComponentKind::kNats:
    case ComponentKind::kRedis:
    case ComponentKind::kMetricsExporter:
      return 1;
  }
  return 1;
}

std::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

ComponentsConfig DefaultComponentsConfig() {
  ComponentsConfig config;
  for (std::size_t i = 0; i < kComponentKindCount; ++i) {
    config.by_kind[i].concurrent_tasks = DefaultConcurrentTasks(static_cast<ComponentKind>(i));
  }
  return config;
}

ComponentsConfig ParseComponentsConfig(const json& components, const std::string& field,
                                       std::vector<ConfigProblem>* problems) {
  if (!components.is_object()) {
    AddProblem(problems, field, reason::kInvalidComponent,
               std::string("must be an object, got ") + components.type_name());
    return DefaultComponentsConfig();
  }
  return ParseComponentsImpl(components, field, problems);
}

}  // namespace ro::plugins::kubernetes

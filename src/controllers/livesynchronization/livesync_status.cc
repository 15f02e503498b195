#include "livesynchronization/livesync_status.h"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "ro/common/time.h"

namespace ro::controllers::livesync {

using nlohmann::json;

namespace {

json ComponentsJson(const std::vector<kubesync::runner::ComponentStatus>& components) {
  json out = json::array();
  for (const auto& c : components) {
    json item = {{"name", c.name}, {"ready", c.ready}, {"replicas", c.replicas}, {"readyReplicas", c.ready_replicas}};
    if (!c.message.empty()) item["message"] = c.message;
    out.push_back(std::move(item));
  }
  return out;
}

void SetStatistics(json& status, const StatusInputs& in) {
  const kubesync::StatsSnapshot& stats = *in.stats;
  json resources = json::array();
  std::optional<double> lag;
  bool any_observation = false;
  for (const kube::GroupVersionResource& gvr : in.gvrs) {
    const std::string key = gvr.ToString();
    json item = {{"group", gvr.group}, {"version", gvr.version}, {"resource", gvr.resource}};
    const auto objects = stats.objects_in_sync.find(key);
    item["objects"] = objects == stats.objects_in_sync.end() ? int64_t{0} : std::max<int64_t>(0, objects->second);
    const auto histogram = stats.lag.find(key);
    if (histogram != stats.lag.end() && histogram->second.last_at) {
      item["lastEventTime"] = common::FormatRfc3339(*histogram->second.last_at);
      any_observation = true;
      if (histogram->second.last_seconds && in.now - *histogram->second.last_at <= kLagFreshness) {
        lag = std::max(lag.value_or(0.0), *histogram->second.last_seconds);
      }
    }
    resources.push_back(std::move(item));
  }
  status["resources"] = std::move(resources);
  if (const auto last = stats.LastResync()) status["lastResyncTime"] = common::FormatRfc3339(*last);
  if (lag || any_observation) {
    // Milliseconds: finer digits only make every status write differ.
    status["lagSeconds"] = std::round(std::max(0.0, lag.value_or(0.0)) * 1000.0) / 1000.0;
  }
}

}  // namespace

json BuildStatus(const json& previous, const StatusInputs& in) {
  const json prev = previous.is_object() ? previous : json::object();
  json status = json::object();
  status["observedGeneration"] = in.generation;

  json conditions = prev.contains("conditions") ? prev["conditions"] : json::array();
  runtime::Condition ready = in.ready;
  ready.type = std::string(runtime::kReadyCondition);
  ready.observed_generation = in.generation;
  runtime::SetStatusCondition(conditions, ready, in.now);
  status["conditions"] = std::move(conditions);

  status["phase"] = in.phase;
  status["components"] = ComponentsJson(in.components);
  if (in.task_name) status["taskName"] = *in.task_name;

  if (in.stats && !in.gvrs.empty()) {
    SetStatistics(status, in);
  } else {
    for (const char* key : {"resources", "lastResyncTime", "lagSeconds"}) {
      if (prev.contains(key)) status[key] = prev[key];
    }
  }
  return status;
}

}  // namespace ro::controllers::livesync

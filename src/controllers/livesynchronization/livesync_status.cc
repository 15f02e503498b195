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
  int64_t total = 0;
  std::optional<double> lag;
  bool any_observation = false;
  for (const kube::GroupVersionResource& gvr : in.gvrs) {
    const std::string key = gvr.ToString();
    json item = {{"group", gvr.group}, {"version", gvr.version}, {"resource", gvr.resource}};
    const auto objects = stats.objects_in_sync.find(key);
    const int64_t count = objects == stats.objects_in_sync.end() ? int64_t{0} : std::max<int64_t>(0, objects->second);
    item["objects"] = count;
    total += count;
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
  status["objects"] = total;
  if (const auto last = stats.LastResync()) status["lastResyncTime"] = common::FormatRfc3339(*last);
  if (lag || any_observation) {
    // Milliseconds: finer digits only make every status write differ.
    status["lagSeconds"] = std::round(std::max(0.0, lag.value_or(0.0)) * 1000.0) / 1000.0;
  }
  // RPO now: the age of the oldest change not yet applied (kubesync_rpo_seconds). Tenths
  // of a second: while changes wait it grows at every refresh anyway.
  if (const std::optional<double> rpo = stats.RpoSeconds(in.now)) {
    status["rpoSeconds"] = std::round(*rpo * 10.0) / 10.0;
  }
}

std::string Describe(const kubesync::StatsSnapshot::ErrorKey& key, const kubesync::StatsSnapshot::FailureDetail& d) {
  std::string text = key.component + " " + (key.gvr.empty() ? std::string("event") : key.gvr);
  if (!d.object.empty()) text += " " + d.object;
  text += " (" + key.reason + ")";
  if (!d.message.empty()) text += ": " + d.message;
  return text;
}

}  // namespace

runtime::Condition DegradedCondition(const kubesync::StatsSnapshot& stats, std::chrono::system_clock::time_point now,
                                     std::chrono::seconds window) {
  const kubesync::StatsSnapshot::ErrorKey* latest_key = nullptr;
  const kubesync::StatsSnapshot::FailureDetail* latest = nullptr;
  std::size_t recent = 0;
  for (const auto& [key, detail] : stats.last_failure) {
    if (now - detail.at > window) continue;
    ++recent;
    if (latest == nullptr || detail.at > latest->at) {
      latest_key = &key;
      latest = &detail;
    }
  }
  runtime::Condition c;
  c.type = kDegradedCondition;
  if (latest == nullptr) {
    c.status = runtime::ConditionStatus::kFalse;
    c.reason = kReasonNoRecentFailures;
    c.message = "No event failed for good in the last " + std::to_string(window.count()) + "s";
    return c;
  }
  c.status = runtime::ConditionStatus::kTrue;
  c.reason = kReasonReplicationFailures;
  c.message = "Events failed for good in the last " + std::to_string(window.count()) + "s (" +
              std::to_string(recent) + " kind(s), see Events and kubesync_failed_events_total); latest at " +
              common::FormatRfc3339(latest->at) + ": " + Describe(*latest_key, *latest);
  return c;
}

runtime::Condition NamespacesMissingCondition(const kubesync::StatsSnapshot& stats,
                                              std::chrono::system_clock::time_point now,
                                              std::chrono::seconds window, const std::string& destination_name,
                                              bool force_namespace_creation) {
  const std::vector<std::string> missing = stats.MissingNamespaces(now, window);
  runtime::Condition c;
  c.type = kNamespacesMissingCondition;
  if (missing.empty()) {
    c.status = runtime::ConditionStatus::kFalse;
    c.reason = kReasonNamespacesExist;
    c.message = "Every namespace written to exists in the destination cluster";
    return c;
  }
  std::string names;
  for (std::size_t i = 0; i < missing.size() && i < kMaxNamedNamespaces; ++i) {
    if (i > 0) names += ", ";
    names += missing[i];
  }
  if (missing.size() > kMaxNamedNamespaces) {
    names += " and " + std::to_string(missing.size() - kMaxNamedNamespaces) + " more";
  }
  c.status = runtime::ConditionStatus::kTrue;
  c.reason = kReasonNamespacesNotFound;
  c.message = std::to_string(missing.size()) + " namespace(s) missing in destination cluster " + destination_name +
              ": " + names + "; their objects are not replicated. ";
  c.message += force_namespace_creation
                   ? "forceNamespaceCreation is on: they are created as their objects arrive again"
                   : "Create them there (their objects follow within seconds), or set "
                     "spec.config.replication.forceNamespaceCreation: true";
  return c;
}

std::vector<FailureReport> NewFailures(std::map<kubesync::StatsSnapshot::ErrorKey, std::uint64_t>& seen,
                                       const kubesync::StatsSnapshot& stats,
                                       std::chrono::system_clock::time_point since) {
  std::vector<FailureReport> reports;
  for (const auto& [key, count] : stats.failures) {
    const auto known = seen.find(key);
    const auto detail = stats.last_failure.find(key);
    std::uint64_t fresh = 0;
    if (known != seen.end()) {
      fresh = count > known->second ? count - known->second : 0;
    } else if (detail != stats.last_failure.end() && detail->second.at >= since) {
      fresh = count;
    }
    seen[key] = count;
    if (fresh == 0) continue;
    FailureReport report;
    report.key = key;
    report.count = fresh;
    report.message = std::to_string(fresh) + " event(s) failed for good and were not replicated; latest: " +
                     (detail != stats.last_failure.end() ? Describe(key, detail->second)
                                                          : key.component + " " + key.gvr + " (" + key.reason + ")");
    reports.push_back(std::move(report));
  }
  return reports;
}

json BuildStatus(const json& previous, const StatusInputs& in) {
  const json prev = previous.is_object() ? previous : json::object();
  json status = json::object();
  status["observedGeneration"] = in.generation;

  json conditions = prev.contains("conditions") ? prev["conditions"] : json::array();
  runtime::Condition ready = in.ready;
  ready.type = std::string(runtime::kReadyCondition);
  ready.observed_generation = in.generation;
  runtime::SetStatusCondition(conditions, ready, in.now);
  if (in.stats) {
    runtime::Condition degraded = DegradedCondition(*in.stats, in.now, in.failure_window);
    degraded.observed_generation = in.generation;
    runtime::SetStatusCondition(conditions, degraded, in.now);
    // A namespace is recorded missing again at every resync while it is: twice the
    // period keeps the condition steady in between.
    runtime::Condition namespaces = NamespacesMissingCondition(*in.stats, in.now, 2 * in.failure_window,
                                                               in.destination_name, in.force_namespace_creation);
    namespaces.observed_generation = in.generation;
    runtime::SetStatusCondition(conditions, namespaces, in.now);
  }
  status["conditions"] = std::move(conditions);

  status["phase"] = in.phase;
  status["components"] = ComponentsJson(in.components);
  if (in.task_name) status["taskName"] = *in.task_name;

  if (in.stats && !in.gvrs.empty()) {
    SetStatistics(status, in);
  } else {
    for (const char* key : {"resources", "objects", "lastResyncTime", "lagSeconds"}) {
      if (prev.contains(key)) status[key] = prev[key];
    }
  }
  return status;
}

}  // namespace ro::controllers::livesync

#include "taskrun/run_status.h"

#include <cctype>
#include <utility>

#include <nlohmann/json.hpp>

#include "ro/common/object_meta.h"
#include "ro/common/time.h"
#include "ro/kube/client.h"
#include "ro/kube/errors.h"
#include "ro/kube/event_recorder.h"
#include "ro/runtime/conditions.h"
#include "ro/runtime/status.h"

namespace ro::controllers {

using nlohmann::json;
using runtime::ConditionStatus;

namespace {

ConditionStatus ReadyOf(RunPhase phase) {
  switch (phase) {
    case RunPhase::kSucceeded:
      return ConditionStatus::kTrue;
    case RunPhase::kRunning:
      return ConditionStatus::kUnknown;
    default:
      return ConditionStatus::kFalse;
  }
}

std::string ReasonOf(const RunUpdate& update) {
  if (!update.reason.empty()) return update.reason;
  if (update.phase == RunPhase::kRunning || update.phase == RunPhase::kSucceeded ||
      update.phase == RunPhase::kPending) {
    return std::string(ToString(update.phase));
  }
  return "Failed";
}

}  // namespace

std::string_view ToString(RunPhase phase) {
  switch (phase) {
    case RunPhase::kNone:
      return "";
    case RunPhase::kPending:
      return "Pending";
    case RunPhase::kRunning:
      return "Running";
    case RunPhase::kSucceeded:
      return "Succeeded";
    case RunPhase::kFailed:
      return "Failed";
  }
  return "";
}

RunPhase PhaseOf(const json& taskrun) {
  const json status = taskrun.value("status", json::object());
  if (!status.is_object()) return RunPhase::kNone;
  const std::string phase = status.value("phase", "");
  for (RunPhase p : {RunPhase::kPending, RunPhase::kRunning, RunPhase::kSucceeded,
                     RunPhase::kFailed}) {
    if (phase == ToString(p)) return p;
  }
  return RunPhase::kNone;
}

json DesiredRunStatus(const json& taskrun, const RunUpdate& update,
                      std::chrono::system_clock::time_point now) {
  json status = taskrun.value("status", json::object());
  if (!status.is_object()) status = json::object();
  const int64_t generation = common::Generation(taskrun);
  const std::string timestamp = common::FormatRfc3339(now);

  status["phase"] = std::string(ToString(update.phase));
  status["message"] = update.message;
  status["observedGeneration"] = generation;
  if (update.phase == RunPhase::kRunning && !status.contains("startTime")) {
    status["startTime"] = timestamp;
  }
  if (IsFinished(update.phase) && !status.contains("completionTime")) {
    status["completionTime"] = timestamp;
  }
  if (update.pod_name) status["podName"] = *update.pod_name;
  if (update.objects_patched) status["objectsPatched"] = *update.objects_patched;
  if (update.objects_failed) status["objectsFailed"] = *update.objects_failed;
  if (update.dry_run) status["dryRun"] = *update.dry_run;
  if (update.dry_run_report) status["dryRunReport"] = json::parse(*update.dry_run_report);
  for (const auto& [field, value] : update.counters) status[field] = value;
  for (const auto& [field, value] : update.fields) status[field] = value;

  runtime::Condition ready;
  ready.type = std::string(runtime::kReadyCondition);
  ready.status = ReadyOf(update.phase);
  ready.reason = ReasonOf(update);
  ready.message = update.message;
  ready.observed_generation = generation;
  json conditions = status.value("conditions", json::array());
  runtime::SetStatusCondition(conditions, ready, now);
  if (update.warning.empty()) {
    runtime::RemoveStatusCondition(conditions, kWarningCondition);
  } else {
    runtime::Condition warning;
    warning.type = std::string(kWarningCondition);
    warning.status = ConditionStatus::kTrue;
    warning.reason = ReasonOf(update);
    warning.message = update.warning;
    warning.observed_generation = generation;
    runtime::SetStatusCondition(conditions, warning, now);
  }
  status["conditions"] = std::move(conditions);
  return status;
}

RunStatusWriter::RunStatusWriter(kube::DynamicClient& client, kube::EventRecorder& recorder,
                                 log::Logger log, kube::Clock& clock)
    : client_(client), recorder_(recorder), log_(std::move(log)), clock_(clock) {}

std::optional<json> RunStatusWriter::Write(const kube::GroupVersionResource& gvr,
                                           const json& taskrun, const RunUpdate& update) {
  const json desired = DesiredRunStatus(taskrun, update, clock_.Now());
  const json current = taskrun.value("status", json::object());
  if (desired == current) return taskrun;

  json changed = taskrun;
  changed["status"] = desired;
  json stored;
  try {
    stored = client_.UpdateStatus(gvr, taskrun.at("metadata").value("namespace", ""), changed);
  } catch (const kube::ApiError& e) {
    if (kube::IsConflict(e)) return std::nullopt;
    throw;
  }

  const std::optional<runtime::Condition> before =
      runtime::FindStatusCondition(current.value("conditions", json()), runtime::kReadyCondition);
  const std::string reason = ReasonOf(update);
  const bool phase_changed = PhaseOf(taskrun) != update.phase;
  if (phase_changed || !before || before->reason != reason) {
    const bool healthy = (update.phase == RunPhase::kRunning || update.phase == RunPhase::kSucceeded) &&
                         update.warning.empty();
    recorder_.Event(taskrun, healthy ? kube::EventType::kNormal : kube::EventType::kWarning,
                    reason, update.message);
    // "taskrun phase changed" (docs/automation.md), "synchronization phase changed".
    std::string kind = common::StringMember(taskrun, "kind");
    for (char& c : kind) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    log_.Log(healthy ? log::Level::kInfo : log::Level::kWarn, (kind.empty() ? "taskrun" : kind) + " phase changed",
             {{"object", runtime::ObjectRef(taskrun)},
              {"phase", std::string(ToString(update.phase))},
              {"reason", reason},
              {"message", update.message}});
  }
  return stored;
}

}  // namespace ro::controllers

#include "ro/runtime/status.h"

#include <utility>

#include <nlohmann/json.hpp>

#include "ro/common/object_meta.h"
#include "ro/kube/client.h"
#include "ro/kube/errors.h"
#include "ro/kube/event_recorder.h"
#include "ro/kube/gvr.h"

namespace ro::runtime {

using nlohmann::json;

WriteOutcome UpdateStatusIfChanged(kube::DynamicClient& client,
                                   const kube::GroupVersionResource& gvr, const json& object,
                                   const json& desired_status) {
  const json current = object.value("status", json::object());
  if (current == desired_status) return WriteOutcome::kUnchanged;
  json updated = object;
  updated["status"] = desired_status;
  try {
    client.UpdateStatus(gvr, object["metadata"].value("namespace", ""), updated);
  } catch (const kube::ApiError& e) {
    if (kube::IsConflict(e)) return WriteOutcome::kConflict;
    throw;
  }
  return WriteOutcome::kWritten;
}

json ObjectRef(const json& object) {
  json ref = json::object();
  for (const char* key : {"apiVersion", "kind"}) {
    if (object.contains(key) && object[key].is_string()) ref[key] = object[key];
  }
  const json metadata = object.value("metadata", json::object());
  for (const char* key : {"namespace", "name", "uid", "resourceVersion"}) {
    if (metadata.contains(key) && metadata[key].is_string()) ref[key] = metadata[key];
  }
  return ref;
}

StatusWriter::StatusWriter(kube::DynamicClient& client, kube::EventRecorder& recorder,
                           log::Logger log, kube::Clock& clock)
    : client_(client), recorder_(recorder), log_(std::move(log)), clock_(clock) {}

WriteOutcome StatusWriter::ApplyCondition(const kube::GroupVersionResource& gvr,
                                          const json& object, Condition condition,
                                          const StatusFields& fields) {
  condition.observed_generation = common::Generation(object);

  json status = object.value("status", json::object());
  if (!status.is_object()) status = json::object();
  const std::optional<Condition> before =
      FindStatusCondition(status.value("conditions", json()), condition.type);
  json conditions = status.value("conditions", json::array());
  SetStatusCondition(conditions, condition, clock_.Now());
  status["conditions"] = std::move(conditions);
  status["observedGeneration"] = condition.observed_generation;
  for (const auto& [key, value] : fields) {
    if (value) {
      status[key] = *value;
    } else {
      status.erase(key);
    }
  }

  const WriteOutcome outcome = UpdateStatusIfChanged(client_, gvr, object, status);
  const bool condition_changed = !before || before->status != condition.status ||
                                 before->reason != condition.reason ||
                                 before->message != condition.message;
  if (outcome == WriteOutcome::kWritten && condition_changed) {
    const bool healthy = condition.status == ConditionStatus::kTrue;
    recorder_.Event(object, healthy ? kube::EventType::kNormal : kube::EventType::kWarning,
                    condition.reason, condition.message);
    const json log_fields = {{"object", ObjectRef(object)},
                             {"condition",
                              {{"type", condition.type},
                               {"status", ToString(condition.status)},
                               {"reason", condition.reason},
                               {"message", condition.message}}}};
    log_.Log(healthy ? log::Level::kInfo : log::Level::kWarn, "condition changed", log_fields);
  }
  return outcome;
}

}  // namespace ro::runtime

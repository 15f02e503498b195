#include "ro/runtime/conditions.h"

#include <stdexcept>

#include <nlohmann/json.hpp>

#include "ro/common/time.h"

namespace ro::runtime {

using nlohmann::json;

std::string_view ToString(ConditionStatus status) {
  switch (status) {
    case ConditionStatus::kTrue: return "True";
    case ConditionStatus::kFalse: return "False";
    case ConditionStatus::kUnknown: return "Unknown";
  }
  return "Unknown";
}

ConditionStatus ParseConditionStatus(std::string_view text) {
  if (text == "True") return ConditionStatus::kTrue;
  if (text == "False") return ConditionStatus::kFalse;
  if (text == "Unknown") return ConditionStatus::kUnknown;
  throw std::invalid_argument("invalid condition status \"" + std::string(text) +
                              "\": want True, False or Unknown");
}

json ConditionToJson(const Condition& condition) {
  return json{{"type", condition.type},
              {"status", ToString(condition.status)},
              {"observedGeneration", condition.observed_generation},
              {"lastTransitionTime", condition.last_transition_time},
              {"reason", condition.reason},
              {"message", condition.message}};
}

Condition ConditionFromJson(const json& object) {
  if (!object.is_object() || !object.contains("type") || !object["type"].is_string()) {
    throw std::invalid_argument("condition without a string \"type\": " + object.dump());
  }
  if (!object.contains("status") || !object["status"].is_string()) {
    throw std::invalid_argument("condition without a string \"status\": " + object.dump());
  }
  Condition c;
  c.type = object["type"].get<std::string>();
  c.status = ParseConditionStatus(object["status"].get<std::string>());
  c.reason = object.value("reason", "");
  c.message = object.value("message", "");
  c.observed_generation = object.value("observedGeneration", int64_t{0});
  c.last_transition_time = object.value("lastTransitionTime", "");
  return c;
}

std::optional<Condition> FindStatusCondition(const json& conditions, std::string_view type) {
  if (!conditions.is_array()) return std::nullopt;
  for (const json& item : conditions) {
    if (item.is_object() && item.value("type", "") == type) return ConditionFromJson(item);
  }
  return std::nullopt;
}

bool SetStatusCondition(json& conditions, const Condition& condition,
                        std::chrono::system_clock::time_point now) {
  if (!conditions.is_array()) conditions = json::array();
  for (json& item : conditions) {
    if (!item.is_object() || item.value("type", "") != condition.type) continue;
    Condition updated = condition;
    const std::string old_status = item.value("status", "");
    if (old_status == ToString(condition.status)) {
      // Same status: the transition happened earlier; keep its time.
      updated.last_transition_time = item.value("lastTransitionTime", "");
    }
    if (updated.last_transition_time.empty()) {
      updated.last_transition_time = common::FormatRfc3339(now);
    }
    json next = ConditionToJson(updated);
    if (next == item) return false;
    item = std::move(next);
    return true;
  }
  Condition added = condition;
  if (added.last_transition_time.empty()) added.last_transition_time = common::FormatRfc3339(now);
  conditions.push_back(ConditionToJson(added));
  return true;
}

bool RemoveStatusCondition(json& conditions, std::string_view type) {
  if (!conditions.is_array()) return false;
  for (auto it = conditions.begin(); it != conditions.end(); ++it) {
    if (it->is_object() && it->value("type", "") == type) {
      conditions.erase(it);
      return true;
    }
  }
  return false;
}

}  // namespace ro::runtime

// Status conditions (metav1.Condition, KEP-1623 "Standardize Conditions") on
// unstructured objects, with the semantics of apimachinery's meta.SetStatusCondition:
// a condition is identified by its type; lastTransitionTime changes only when the
// status changes; reason, message and observedGeneration are always overwritten.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ro::runtime {

// metav1.ConditionStatus.
enum class ConditionStatus { kTrue, kFalse, kUnknown };

// "True", "False", "Unknown".
std::string_view ToString(ConditionStatus status);
// Inverse of ToString. Throws std::invalid_argument for anything else.
ConditionStatus ParseConditionStatus(std::string_view text);

// The condition type every object of ours carries (see docs/assets-*.md).
inline constexpr std::string_view kReadyCondition = "Ready";

// One metav1.Condition.
struct Condition {
  std::string type;  // "Ready"
  ConditionStatus status = ConditionStatus::kUnknown;
  std::string reason;   // UpperCamelCase, e.g. "Connected"
  std::string message;  // for humans; may be empty
  int64_t observed_generation = 0;
  // RFC 3339 (metav1.Time, whole seconds). Filled in by SetStatusCondition.
  std::string last_transition_time;

  bool operator==(const Condition&) const = default;
};

// The JSON form ({"type", "status", "reason", "message", "observedGeneration",
// "lastTransitionTime"}) and back. FromJson throws std::invalid_argument when type or
// status is missing or malformed.
nlohmann::json ConditionToJson(const Condition& condition);
Condition ConditionFromJson(const nlohmann::json& object);

// The condition of `type` in `conditions` (a JSON array, or null), or nullopt.
std::optional<Condition> FindStatusCondition(const nlohmann::json& conditions,
                                             std::string_view type);

// Sets `condition` in `conditions` (a JSON array; null becomes an array). When a
// condition of the same type exists, its lastTransitionTime is kept unless the status
// changed; otherwise (and for a new condition) it becomes `now` — unless
// condition.last_transition_time is already set, which then wins. Returns true when
// `conditions` changed.
bool SetStatusCondition(nlohmann::json& conditions, const Condition& condition,
                        std::chrono::system_clock::time_point now);

// Removes the condition of `type`. Returns true when one was removed.
bool RemoveStatusCondition(nlohmann::json& conditions, std::string_view type);

}  // namespace ro::runtime

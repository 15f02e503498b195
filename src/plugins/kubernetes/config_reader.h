// Internal helpers for validating spec.config: field paths, typed member lookup and
// problem collection. Not part of the public API.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "ro/plugins/kubernetes/config_error.h"

namespace ro::plugins::kubernetes::internal {

// "base.key", or "key" when base is empty.
inline std::string Field(std::string_view base, std::string_view key) {
  std::string out(base);
  if (!out.empty()) out += '.';
  out += key;
  return out;
}

// "base[i]".
inline std::string Index(std::string_view base, std::size_t i) {
  std::string out(base);
  out += '[';
  out += std::to_string(i);
  out += ']';
  return out;
}

// `text` as a JSON string literal, for messages: "*.test".
inline std::string Quote(std::string_view text) { return nlohmann::json(text).dump(); }

inline void AddProblem(std::vector<ConfigProblem>* problems, std::string field,
                       std::string_view reason, std::string message) {
  problems->push_back({std::move(field), std::string(reason), std::move(message)});
}

// The member `key` of `object`, or nullptr when absent or JSON null (both mean "not
// set": the apiserver drops nulls of optional fields). REQUIRES: object.is_object().
inline const nlohmann::json* Member(const nlohmann::json& object, std::string_view key) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

// Reads an optional member that must have `type`; adds an InvalidConfig problem and
// returns nullptr when it has another type. `what` names the type in the message
// ("a string", "a boolean", "an object", "an array").
inline const nlohmann::json* TypedMember(const nlohmann::json& object, std::string_view key,
                                         nlohmann::json::value_t type, std::string_view what,
                                         const std::string& field,
                                         std::vector<ConfigProblem>* problems) {
  const nlohmann::json* value = Member(object, key);
  if (value == nullptr) return nullptr;
  if (value->type() != type) {
    AddProblem(problems, field, reason::kInvalidConfig,
               "must be " + std::string(what) + ", got " + value->type_name());
    return nullptr;
  }
  return value;
}

// An optional string member that, when present, must be non-empty.
inline std::string OptionalName(const nlohmann::json& object, std::string_view key,
                                const std::string& field, std::vector<ConfigProblem>* problems) {
  const nlohmann::json* value =
      TypedMember(object, key, nlohmann::json::value_t::string, "a string", field, problems);
  if (value == nullptr) return "";
  std::string text = value->get<std::string>();
  if (text.empty()) AddProblem(problems, field, reason::kInvalidConfig, "must not be empty");
  return text;
}

// A required non-empty string member.
inline std::string RequiredString(const nlohmann::json& object, std::string_view key,
                                  const std::string& field, std::string_view what,
                                  std::vector<ConfigProblem>* problems) {
  if (Member(object, key) == nullptr) {
    AddProblem(problems, field, reason::kInvalidConfig, "required: " + std::string(what));
    return "";
  }
  return OptionalName(object, key, field, problems);
}

}  // namespace ro::plugins::kubernetes::internal

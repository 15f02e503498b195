#include "ro/plugins/kubernetes/allocated_fields.h"

#include <nlohmann/json.hpp>

namespace ro::plugins::kubernetes {
namespace {

using nlohmann::json;

// A headless Service's "None" is the user's choice, not an allocation.
constexpr std::string_view kHeadless = "None";

bool Applies(const AllocatedField& field, const kube::GroupVersionResource& gvr) {
  return gvr.group == field.group && gvr.resource == field.resource;
}

bool IsHeadless(const json& value) {
  if (value.is_string()) return value.get_ref<const std::string&>() == kHeadless;
  return value.is_array() && value.size() == 1 && IsHeadless(value[0]);
}

// The value at `pointer`, or nullptr when absent (or a parent is not an object).
json* Find(json& object, std::string_view pointer) {
  const json::json_pointer p{std::string(pointer)};
  try {
    return object.contains(p) ? &object[p] : nullptr;
  } catch (const json::exception&) {
    return nullptr;  // a parent of another type
  }
}
const json* Find(const json& object, std::string_view pointer) {
  const json::json_pointer p{std::string(pointer)};
  try {
    return object.contains(p) ? &object.at(p) : nullptr;
  } catch (const json::exception&) {
    return nullptr;
  }
}

void Erase(json& object, std::string_view pointer) {
  const json::json_pointer p{std::string(pointer)};
  json* parent = Find(object, p.parent_pointer().to_string());
  if (parent != nullptr && parent->is_object()) parent->erase(p.back());
}

bool SameItem(const json& a, const json& b) {
  return a.is_object() && b.is_object() && a.value("port", json()) == b.value("port", json()) &&
         a.value("protocol", "TCP") == b.value("protocol", "TCP");
}

}  // namespace

bool HasAllocatedFields(const kube::GroupVersionResource& gvr) {
  for (const AllocatedField& field : kAllocatedFields) {
    if (Applies(field, gvr)) return true;
  }
  return false;
}

void RemoveAllocatedFields(const kube::GroupVersionResource& gvr, json& object) {
  if (!object.is_object()) return;
  for (const AllocatedField& field : kAllocatedFields) {
    if (!Applies(field, gvr)) continue;
    json* value = Find(object, field.pointer);
    if (value == nullptr) continue;
    if (field.item_member.empty()) {
      if (!IsHeadless(*value)) Erase(object, field.pointer);
    } else if (value->is_array()) {
      for (json& item : *value) {
        if (item.is_object()) item.erase(std::string(field.item_member));
      }
    }
  }
}

void CopyAllocatedFields(const kube::GroupVersionResource& gvr, const json& from, json& to) {
  if (!from.is_object() || !to.is_object()) return;
  for (const AllocatedField& field : kAllocatedFields) {
    if (!Applies(field, gvr)) continue;
    const json* value = Find(from, field.pointer);
    if (value == nullptr) continue;
    try {
      to[json::json_pointer(std::string(field.pointer))] = *value;
    } catch (const json::exception&) {
      // `to` has a non-object parent there: leave it.
    }
  }
}

void CarryOverAllocatedFields(const kube::GroupVersionResource& gvr, json& desired, const json& current) {
  if (!desired.is_object() || !current.is_object()) return;
  for (const AllocatedField& field : kAllocatedFields) {
    if (!Applies(field, gvr)) continue;
    const json* allocated = Find(current, field.pointer);
    if (allocated == nullptr) continue;
    json* wanted = Find(desired, field.pointer);
    if (field.item_member.empty()) {
      if (wanted != nullptr) continue;
      try {
        desired[json::json_pointer(std::string(field.pointer))] = *allocated;
      } catch (const json::exception&) {
        // A non-object parent in `desired`: the update goes as the user wrote it.
      }
      continue;
    }
    if (wanted == nullptr || !wanted->is_array() || !allocated->is_array()) continue;
    const std::string member(field.item_member);
    for (json& item : *wanted) {
      if (!item.is_object() || item.contains(member)) continue;
      for (const json& have : *allocated) {
        if (SameItem(item, have) && have.contains(member)) {
          item[member] = have[member];
          break;
        }
      }
    }
  }
}

}  // namespace ro::plugins::kubernetes

// The fields a destination apiserver allocates for an object, which a copy from the
// source cluster must not carry and cannot know (docs/kubesync.md, "Sanitizing"): one
// table read by the sanitizer (removes them from the copy), the synchronizer's
// applied-state cache (keeps a copy of them per object) and its updates (carry
// them over from the destination object, or the apiserver rejects the update as
// changing an immutable field, or re-allocates node ports on every change).
#pragma once

#include <array>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "ro/kube/gvr.h"

namespace ro::plugins::kubernetes {

// One allocated field of one kind (recognised by group + resource, not by `kind`).
struct AllocatedField {
  std::string_view group;     // "" = core
  std::string_view resource;  // e.g. "services"
  // JSON pointer (RFC 6901) of the field, e.g. "/spec/clusterIP".
  std::string_view pointer;
  // Non-empty: `pointer` is an array and the allocated field is this member of each
  // item (services' spec.ports[].nodePort); on carry-over items are matched by `port`
  // and `protocol` (default "TCP").
  std::string_view item_member;
};

// Every allocated field: core services spec.clusterIP, spec.clusterIPs,
// spec.healthCheckNodePort and spec.ports[].nodePort; core persistentvolumeclaims
// spec.volumeName. A headless Service's clusterIP(s) "None" is chosen by the user, not
// allocated, and is kept by RemoveAllocatedFields.
inline constexpr std::array<AllocatedField, 5> kAllocatedFields = {{
    {"", "services", "/spec/clusterIP", ""},
    {"", "services", "/spec/clusterIPs", ""},
    {"", "services", "/spec/healthCheckNodePort", ""},
    {"", "services", "/spec/ports", "nodePort"},
    {"", "persistentvolumeclaims", "/spec/volumeName", ""},
}};

// Whether `gvr` has allocated fields at all (a cache of its destination objects then
// needs more than their metadata). Pure.
bool HasAllocatedFields(const kube::GroupVersionResource& gvr);

// Removes the allocated fields of `gvr` from `object` (the sanitizer). Never throws;
// fields of an unexpected type are left alone.
void RemoveAllocatedFields(const kube::GroupVersionResource& gvr, nlohmann::json& object);

// Copies the allocated fields of `gvr` (for an item member: the whole array) from
// `from` into the object `to` at the same pointers (the applied-state cache's
// DestinationState::allocated), copying nothing else of `from`. Never throws.
void CopyAllocatedFields(const kube::GroupVersionResource& gvr, const nlohmann::json& from, nlohmann::json& to);

// Fills into `desired` (an update's body) each allocated field of `gvr` that `desired`
// lacks and `current` (the destination object, or its cached form) has. Never throws.
void CarryOverAllocatedFields(const kube::GroupVersionResource& gvr, nlohmann::json& desired,
                              const nlohmann::json& current);

}  // namespace ro::plugins::kubernetes

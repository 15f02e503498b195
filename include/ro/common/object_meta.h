// Read-only accessors for a Kubernetes object held as JSON: its members and its
// ObjectMeta (k8s.io/apimachinery/pkg/apis/meta/v1, types.go). The one copy of what every
// module used to write privately.
//
// None of them throws: a missing member, or one of another JSON type, reads as the Go
// zero value would ("" for strings, an empty object for maps, false for a flag).
// Returned references point into `object` (or to a static empty value) and stay valid
// while `object` is alive and unchanged; copy them to keep them longer.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace ro::common {

// object[key] when `object` is a JSON object holding `key`, else a null value.
const nlohmann::json& Member(const nlohmann::json& object, std::string_view key);
// object[key] when it is a string, else "".
const std::string& StringMember(const nlohmann::json& object, std::string_view key);
// object.metadata when it is an object, else an empty object.
const nlohmann::json& Metadata(const nlohmann::json& object);
// metadata.<key> when it is a string, else "" (e.g. "generateName", "creationTimestamp").
const std::string& MetadataString(const nlohmann::json& object, std::string_view key);

// metadata.name, metadata.namespace, metadata.uid, metadata.resourceVersion ("" if unset).
const std::string& Name(const nlohmann::json& object);
const std::string& Namespace(const nlohmann::json& object);
const std::string& Uid(const nlohmann::json& object);
const std::string& ResourceVersion(const nlohmann::json& object);

// metadata.labels / metadata.annotations when an object, else an empty object.
const nlohmann::json& Labels(const nlohmann::json& object);
const nlohmann::json& Annotations(const nlohmann::json& object);
// One label / annotation value, "" when absent or not a string.
const std::string& Label(const nlohmann::json& object, std::string_view key);
const std::string& Annotation(const nlohmann::json& object, std::string_view key);

// metadata.generation when it is an integer, else 0 (the apiserver sets it >= 1 on
// every object of a kind with a status subresource; a spec change increments it).
std::int64_t Generation(const nlohmann::json& object);

// The ownerReference that makes `owner` the controller of an object
// (metav1.OwnerReference: controller and blockOwnerDeletion true, so that the object goes
// with its owner under foreground deletion too).
nlohmann::json ControllerReference(std::string_view api_version, std::string_view kind, std::string_view name,
                                   std::string_view uid);

// metadata.deletionTimestamp is set: the object is being deleted (finalizers pending).
bool Deleting(const nlohmann::json& object);

}  // namespace ro::common

#include "ro/common/object_meta.h"

#include <nlohmann/json.hpp>

namespace ro::common {
namespace {

const nlohmann::json& Null() {
  static const nlohmann::json kNull;
  return kNull;
}

const nlohmann::json& EmptyObject() {
  static const nlohmann::json kEmpty = nlohmann::json::object();
  return kEmpty;
}

const nlohmann::json& ObjectOrEmpty(const nlohmann::json& value) {
  return value.is_object() ? value : EmptyObject();
}

}  // namespace

const nlohmann::json& Member(const nlohmann::json& object, std::string_view key) {
  if (!object.is_object()) return Null();
  const auto it = object.find(key);
  return it == object.end() ? Null() : *it;
}

const std::string& StringMember(const nlohmann::json& object, std::string_view key) {
  const nlohmann::json& value = Member(object, key);
  static const std::string kEmpty;
  return value.is_string() ? value.get_ref<const std::string&>() : kEmpty;
}

const nlohmann::json& Metadata(const nlohmann::json& object) { return ObjectOrEmpty(Member(object, "metadata")); }

const std::string& MetadataString(const nlohmann::json& object, std::string_view key) {
  return StringMember(Metadata(object), key);
}

const std::string& Name(const nlohmann::json& object) { return MetadataString(object, "name"); }
const std::string& Namespace(const nlohmann::json& object) { return MetadataString(object, "namespace"); }
const std::string& Uid(const nlohmann::json& object) { return MetadataString(object, "uid"); }
const std::string& ResourceVersion(const nlohmann::json& object) {
  return MetadataString(object, "resourceVersion");
}

nlohmann::json ControllerReference(std::string_view api_version, std::string_view kind, std::string_view name,
                                   std::string_view uid) {
  return {{"apiVersion", api_version}, {"kind", kind},         {"name", name},
          {"uid", uid},                {"controller", true}, {"blockOwnerDeletion", true}};
}

std::int64_t Generation(const nlohmann::json& object) {
  const nlohmann::json& value = Member(Metadata(object), "generation");
  return value.is_number_integer() ? value.get<std::int64_t>() : 0;
}

const nlohmann::json& Labels(const nlohmann::json& object) {
  return ObjectOrEmpty(Member(Metadata(object), "labels"));
}
const nlohmann::json& Annotations(const nlohmann::json& object) {
  return ObjectOrEmpty(Member(Metadata(object), "annotations"));
}
const std::string& Label(const nlohmann::json& object, std::string_view key) {
  return StringMember(Labels(object), key);
}
const std::string& Annotation(const nlohmann::json& object, std::string_view key) {
  return StringMember(Annotations(object), key);
}

bool Deleting(const nlohmann::json& object) {
  const nlohmann::json& at = Member(Metadata(object), "deletionTimestamp");
  return !at.is_null() && !(at.is_string() && at.get_ref<const std::string&>().empty());
}

}  // namespace ro::common

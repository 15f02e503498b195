#include "ro/kubesync/envelope.h"

#include <cstdint>
#include <limits>
#include <utility>

namespace ro::kubesync {
namespace {

using Json = nlohmann::json;

// Finds a member of the top-level object; nullptr when absent.
const Json* Member(const Json& root, const char* name) {
  auto it = root.find(name);
  return it == root.end() ? nullptr : &*it;
}

const Json& Required(const Json& root, const char* name) {
  const Json* value = Member(root, name);
  if (value == nullptr) throw DecodeError(name, std::string("missing required member \"") + name + "\"");
  return *value;
}

bool OptionalBool(const Json& root, const char* name) {
  const Json* value = Member(root, name);
  if (value == nullptr) return false;
  if (!value->is_boolean()) throw DecodeError(name, std::string("member \"") + name + "\" must be a boolean");
  return value->get<bool>();
}

// An optional non-negative integer member; 0 when absent.
std::int64_t OptionalNonNegative(const Json& root, const char* name) {
  const Json* value = Member(root, name);
  if (value == nullptr) return 0;
  const bool in_range =
      value->is_number_unsigned()
          ? value->get<std::uint64_t>() <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())
          : value->is_number_integer() && value->get<std::int64_t>() >= 0;
  if (!in_range) {
    throw DecodeError(name, std::string("member \"") + name + "\" must be a non-negative integer, got " + value->dump());
  }
  return value->get<std::int64_t>();
}

EventType ParseType(const Json& value) {
  if (value.is_string()) {
    const auto& text = value.get_ref<const std::string&>();
    if (text == "upsert") return EventType::kUpsert;
    if (text == "delete") return EventType::kDelete;
  }
  throw DecodeError("type", "member \"type\" must be \"upsert\" or \"delete\", got " + value.dump());
}

std::chrono::system_clock::time_point ParseObservedAt(const Json& value) {
  std::int64_t ns = 0;
  if (value.is_number_unsigned()) {
    auto u = value.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      throw DecodeError("observedAt", "member \"observedAt\" is out of range: " + value.dump());
    }
    ns = static_cast<std::int64_t>(u);
  } else if (value.is_number_integer()) {
    ns = value.get<std::int64_t>();
  } else {
    throw DecodeError("observedAt", "member \"observedAt\" must be an integer (unix ns), got " + value.dump());
  }
  if (ns < 0) throw DecodeError("observedAt", "member \"observedAt\" must not be negative");
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::nanoseconds(ns)));
}

// Characters allowed in a LiveSynchronization id segment (a NATS subject token and a
// Redis key segment): [A-Za-z0-9_-].
bool IdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

void AppendSanitized(std::string& out, std::string_view part) {
  for (char c : part) out.push_back(IdChar(c) ? c : '_');
}

}  // namespace

std::string_view ToString(EventType type) { return type == EventType::kDelete ? "delete" : "upsert"; }

DecodeError::DecodeError(std::string field, const std::string& message)
    : std::runtime_error("invalid kubesync envelope: " + message), field_(std::move(field)) {}

std::string Encode(const Envelope& envelope) {
  if (!envelope.object.is_object()) {
    throw std::invalid_argument("kubesync envelope: object must be a JSON object, got " +
                                std::string(envelope.object.type_name()));
  }
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(envelope.observed_at.time_since_epoch()).count();
  if (ns < 0) throw std::invalid_argument("kubesync envelope: observedAt is before the Unix epoch");

  std::string object = envelope.object.dump();
  std::string gvr = Json(envelope.gvr.ToString()).dump();  // quoted and escaped
  if (!envelope.source_namespace.is_null() && !envelope.source_namespace.is_object()) {
    throw std::invalid_argument("kubesync envelope: namespace must be a JSON object or null");
  }
  std::string source_namespace = envelope.source_namespace.is_null() ? std::string() : envelope.source_namespace.dump();
  std::string out;
  if (envelope.config_generation < 0) throw std::invalid_argument("kubesync envelope: configGeneration is negative");
  if (envelope.stream_created < 0) throw std::invalid_argument("kubesync envelope: streamCreated is negative");
  // Fixed members take < 220 bytes; reserve once so the appends never reallocate.
  out.reserve(object.size() + gvr.size() + source_namespace.size() + 224);
  out += "{\"v\":";
  out += std::to_string(Envelope::kVersion);
  out += ",\"type\":\"";
  out += ToString(envelope.type);
  out += "\",\"resync\":";
  out += envelope.resync ? "true" : "false";
  out += ",\"gvr\":";
  out += gvr;
  out += ",\"observedAt\":";
  out += std::to_string(ns);
  out += ",\"object\":";
  out += object;
  out += ",\"pruned\":";
  out += envelope.pruned ? "true" : "false";
  out += ",\"sourceDeleted\":";
  out += envelope.source_deleted ? "true" : "false";
  if (!source_namespace.empty()) {
    out += ",\"namespace\":";
    out += source_namespace;
  }
  if (envelope.config_generation != 0) {
    out += ",\"configGeneration\":";
    out += std::to_string(envelope.config_generation);
  }
  if (envelope.stream_created != 0) {
    out += ",\"streamCreated\":";
    out += std::to_string(envelope.stream_created);
  }
  out += '}';
  return out;
}

namespace {

constexpr std::string_view kBatchHead =
    R"({"v":1,"type":"upsert","gvr":"kubesync.astronetes.io/v1/batches","observedAt":0,"object":{},)"
    R"("configGeneration":9223372036854775807,"events":[)";
constexpr std::string_view kBatchTail = "]}";

Json ParseMessage(std::string_view data) {
  Json root;
  try {
    root = Json::parse(data);
  } catch (const Json::exception& e) {
    // parse_error, and out_of_range for a number beyond double's range ("1e999").
    throw DecodeError("", std::string("not JSON: ") + e.what());
  }
  if (!root.is_object()) throw DecodeError("", std::string("not a JSON object but ") + root.type_name());
  return root;
}

void CheckVersion(const Json& root) {
  const Json& version = Required(root, "v");
  if (!version.is_number_integer() || version.get<std::int64_t>() != Envelope::kVersion) {
    throw DecodeError("v", "unsupported version " + version.dump() + " (supported: " +
                               std::to_string(Envelope::kVersion) + ")");
  }
}

// One event from its parsed form; moves the object (and namespace) out of `root`.
Envelope DecodeEvent(Json& root) {
  CheckVersion(root);
  if (root.contains("events")) throw DecodeError("events", "a batch where one event was expected");

  Envelope envelope;
  envelope.type = ParseType(Required(root, "type"));
  envelope.resync = OptionalBool(root, "resync");
  envelope.pruned = OptionalBool(root, "pruned");
  envelope.source_deleted = OptionalBool(root, "sourceDeleted");

  const Json& gvr = Required(root, "gvr");
  if (!gvr.is_string()) throw DecodeError("gvr", "member \"gvr\" must be a string, got " + gvr.dump());
  try {
    envelope.gvr = kube::GroupVersionResource::Parse(gvr.get_ref<const std::string&>());
  } catch (const std::invalid_argument& e) {
    throw DecodeError("gvr", std::string("member \"gvr\": ") + e.what());
  }

  envelope.observed_at = ParseObservedAt(Required(root, "observedAt"));

  auto object = root.find("object");
  if (object == root.end()) throw DecodeError("object", "missing required member \"object\"");
  if (!object->is_object()) {
    throw DecodeError("object", std::string("member \"object\" must be a JSON object, got ") + object->type_name());
  }
  envelope.object = std::move(*object);

  auto source_namespace = root.find("namespace");
  if (source_namespace != root.end() && !source_namespace->is_null()) {
    if (!source_namespace->is_object()) {
      throw DecodeError("namespace", std::string("member \"namespace\" must be a JSON object, got ") +
                                         source_namespace->type_name());
    }
    envelope.source_namespace = std::move(*source_namespace);
  }

  envelope.config_generation = OptionalNonNegative(root, "configGeneration");
  envelope.stream_created = OptionalNonNegative(root, "streamCreated");
  return envelope;
}

}  // namespace

Envelope Decode(std::string_view data) {
  Json root = ParseMessage(data);
  return DecodeEvent(root);
}

DecodedMessage DecodeMessage(std::string_view data) {
  Json root = ParseMessage(data);
  DecodedMessage message;
  const auto events = root.find("events");
  if (events == root.end()) {
    message.events.push_back(DecodeEvent(root));
    return message;
  }
  CheckVersion(root);
  if (OptionalNonNegative(root, "configGeneration") != kBatchGeneration) {
    // Without the shell's generation a reader of an older release would handle the shell.
    throw DecodeError("events", "a batch whose \"configGeneration\" is not " + std::to_string(kBatchGeneration));
  }
  if (!events->is_array()) {
    throw DecodeError("events", std::string("member \"events\" must be an array, got ") + events->type_name());
  }
  message.events.reserve(events->size());
  std::size_t index = 0;
  for (Json& event : *events) {
    try {
      if (!event.is_object()) {
        throw DecodeError("events", "event " + std::to_string(index) + " of the batch is not a JSON object but " +
                                        event.type_name());
      }
      message.events.push_back(DecodeEvent(event));
    } catch (const DecodeError& e) {
      message.invalid.push_back(e);
    }
    ++index;
  }
  return message;
}

BatchBuilder::BatchBuilder(std::size_t max_bytes) : max_bytes_(max_bytes) {}

bool BatchBuilder::Add(std::string_view encoded) {
  if (events_ == 0) {
    message_.assign(kBatchHead);
  } else if (message_.size() + 1 + encoded.size() + kBatchTail.size() > max_bytes_) {
    return false;
  } else {
    message_ += ',';
  }
  message_ += encoded;
  ++events_;
  return true;
}

std::string BatchBuilder::Take() {
  std::string out;
  if (events_ == 1) {
    out.assign(message_, kBatchHead.size());
  } else {
    message_ += kBatchTail;
    out = std::move(message_);
  }
  message_.clear();
  events_ = 0;
  return out;
}

PipelineNames::PipelineNames(std::string_view live_sync_namespace, std::string_view live_sync_name) {
  id_.reserve(live_sync_namespace.size() + live_sync_name.size() + 1);
  AppendSanitized(id_, live_sync_namespace);
  id_.push_back('.');
  AppendSanitized(id_, live_sync_name);
}

std::string PipelineNames::stream() const {
  std::string name = "KS_" + id_;
  for (char& c : name) {
    if (c == '.') c = '_';
  }
  return name;
}

std::string PipelineNames::tombstone_bucket() const { return stream() + "_tombstones"; }

std::vector<std::string> PipelineNames::stream_subjects() const { return {events_subject(), apply_subject()}; }
std::string PipelineNames::events_subject() const { return "ks." + id_ + ".events"; }
std::string PipelineNames::apply_subject() const { return "ks." + id_ + ".apply"; }
std::string PipelineNames::control_subject() const { return "ks." + id_ + ".control"; }
std::string PipelineNames::redis_prefix() const { return "ks:" + id_; }

}  // namespace ro::kubesync

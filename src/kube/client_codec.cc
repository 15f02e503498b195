#include "client_codec.h"

#include <nlohmann/json.hpp>

#include <array>

#include "ro/kube/errors.h"

namespace ro::kube::internal {
namespace {

constexpr std::array<bool, 256> kUnreserved = [] {
  std::array<bool, 256> t{};
  for (int c = 'A'; c <= 'Z'; ++c) t[static_cast<size_t>(c)] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[static_cast<size_t>(c)] = true;
  for (int c = '0'; c <= '9'; ++c) t[static_cast<size_t>(c)] = true;
  for (char c : {'-', '.', '_', '~'}) t[static_cast<unsigned char>(c)] = true;
  return t;
}();

// How much of an undecodable body an error message quotes.
constexpr size_t kMaxQuotedBytes = 200;

std::string Quote(std::string_view body) {
  std::string out(body.substr(0, kMaxQuotedBytes));
  if (body.size() > kMaxQuotedBytes) out += "...";
  return out;
}

std::string StringOr(const nlohmann::json& obj, const char* key, std::string fallback = {}) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::move(fallback);
}

}  // namespace

void AppendEscaped(std::string* out, std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char c : value) {
    const auto byte = static_cast<unsigned char>(c);
    if (kUnreserved[byte]) {
      out->push_back(c);
    } else {
      out->push_back('%');
      out->push_back(kHex[byte >> 4]);
      out->push_back(kHex[byte & 0x0F]);
    }
  }
}

QueryBuilder& QueryBuilder::Add(std::string_view key, std::string_view value) {
  if (value.empty()) return *this;
  url_.push_back(has_query_ ? '&' : '?');
  has_query_ = true;
  url_.append(key).push_back('=');
  AppendEscaped(&url_, value);
  return *this;
}

QueryBuilder& QueryBuilder::Add(std::string_view key, int64_t value) {
  return Add(key, std::string_view(std::to_string(value)));
}

std::string ListUrl(std::string path, const ListOptions& options) {
  QueryBuilder q(std::move(path));
  q.Add("labelSelector", options.label_selector)
      .Add("fieldSelector", options.field_selector);
  if (options.limit > 0) q.Add("limit", options.limit);
  q.Add("continue", options.continue_token)
      .Add("resourceVersion", options.resource_version)
      .Add("resourceVersionMatch", options.resource_version_match);
  return std::move(q).Take();
}

std::string WatchUrl(std::string path, const WatchOptions& options) {
  QueryBuilder q(std::move(path));
  q.Add("watch", "1");
  if (options.allow_bookmarks) q.Add("allowWatchBookmarks", "true");
  q.Add("resourceVersion", options.resource_version)
      .Add("labelSelector", options.label_selector)
      .Add("fieldSelector", options.field_selector);
  if (options.timeout_seconds > 0) q.Add("timeoutSeconds", options.timeout_seconds);
  return std::move(q).Take();
}

std::string WriteUrl(std::string path, const WriteOptions& options) {
  QueryBuilder q(std::move(path));
  if (options.dry_run) q.Add("dryRun", "All");
  q.Add("fieldManager", options.field_manager);
  return std::move(q).Take();
}

std::string DeleteOptionsBody(const DeleteOptions& options) {
  nlohmann::json body = nlohmann::json::object();
  if (!options.propagation_policy.empty()) body["propagationPolicy"] = options.propagation_policy;
  if (options.grace_period_seconds) body["gracePeriodSeconds"] = *options.grace_period_seconds;
  if (!options.precondition_uid.empty()) {
    body["preconditions"]["uid"] = options.precondition_uid;
  }
  if (!options.precondition_resource_version.empty()) {
    body["preconditions"]["resourceVersion"] = options.precondition_resource_version;
  }
  if (body.empty()) return {};
  body["apiVersion"] = "v1";
  body["kind"] = "DeleteOptions";
  return body.dump();
}

std::string_view PatchContentType(PatchType type) {
  switch (type) {
    case PatchType::kJsonPatch: return "application/json-patch+json";
    case PatchType::kMergePatch: return "application/merge-patch+json";
    case PatchType::kStrategicMergePatch: return "application/strategic-merge-patch+json";
  }
  return "application/merge-patch+json";
}

nlohmann::json ParseJsonBody(std::string_view body, std::string_view what) {
  nlohmann::json doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    throw TransportError(TransportError::Kind::kOther,
                         std::string(what) + ": response is not JSON: " + Quote(body));
  }
  return doc;
}

ObjectList DecodeObjectList(std::string_view body, std::string_view what) {
  nlohmann::json doc = ParseJsonBody(body, what);
  if (!doc.is_object()) {
    throw TransportError(TransportError::Kind::kOther,
                         std::string(what) + ": response is not a list object");
  }
  ObjectList list;
  const std::string api_version = StringOr(doc, "apiVersion");
  std::string kind = StringOr(doc, "kind");
  if (kind.size() > 4 && kind.compare(kind.size() - 4, 4, "List") == 0) {
    kind.resize(kind.size() - 4);
  }
  if (auto meta = doc.find("metadata"); meta != doc.end() && meta->is_object()) {
    list.resource_version = StringOr(*meta, "resourceVersion");
    list.continue_token = StringOr(*meta, "continue");
    if (auto rem = meta->find("remainingItemCount");
        rem != meta->end() && rem->is_number_integer()) {
      list.remaining_item_count = rem->get<int64_t>();
    }
  }
  auto items = doc.find("items");
  if (items == doc.end() || !items->is_array()) return list;  // "items": null when empty
  list.items.reserve(items->size());
  for (auto& item : *items) {
    if (item.is_object()) {
      if (!api_version.empty() && !item.contains("apiVersion")) item["apiVersion"] = api_version;
      if (!kind.empty() && !item.contains("kind")) item["kind"] = kind;
    }
    list.items.push_back(std::move(item));
  }
  return list;
}

void WatchLineDecoder::Feed(std::string_view chunk) {
  while (!chunk.empty()) {
    const auto newline = chunk.find('\n');
    if (newline == std::string_view::npos) {
      pending_.append(chunk);
      return;
    }
    if (pending_.empty()) {
      HandleLine(chunk.substr(0, newline));  // the common case: no copy
    } else {
      pending_.append(chunk.substr(0, newline));
      std::string line = std::move(pending_);
      pending_.clear();
      HandleLine(line);
    }
    chunk.remove_prefix(newline + 1);
  }
}

void WatchLineDecoder::Finish() {
  std::string rest = std::move(pending_);
  pending_.clear();
  HandleLine(rest);
}

void WatchLineDecoder::HandleLine(std::string_view line) {
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
  if (line.empty()) return;
  nlohmann::json doc = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) {
    throw TransportError(TransportError::Kind::kBrokenStream,
                         "watch: undecodable event: " + Quote(line));
  }
  const std::string type = StringOr(doc, "type");
  nlohmann::json object = std::move(doc["object"]);
  WatchEventType event_type;
  if (type == "ADDED") {
    event_type = WatchEventType::kAdded;
  } else if (type == "MODIFIED") {
    event_type = WatchEventType::kModified;
  } else if (type == "DELETED") {
    event_type = WatchEventType::kDeleted;
  } else if (type == "BOOKMARK") {
    event_type = WatchEventType::kBookmark;
  } else if (type == "ERROR") {
    // The Status's own code (410 for an expired resourceVersion) wins; 500 only when
    // the server sent none.
    throw ApiErrorFromStatus(object, 500);
  } else {
    throw TransportError(TransportError::Kind::kBrokenStream,
                         "watch: unknown event type \"" + type + "\"");
  }
  on_event_(WatchEvent{event_type, std::move(object)});
}

}  // namespace ro::kube::internal

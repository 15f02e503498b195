#include "ro/plugins/kubernetes/json_patch.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <optional>
#include <system_error>
#include <utility>

#include <nlohmann/json.hpp>

#include "config_reader.h"

namespace ro::plugins::kubernetes {
namespace {

using nlohmann::json;
using Pointer = json::json_pointer;
using internal::AddProblem;
using internal::Field;
using internal::Index;
using internal::Quote;

// Fields that make up an object's identity in the destination. A transformation that
// changed them would write a different object than the one the synchronizer tracks.
constexpr std::array<std::string_view, 5> kIdentityPaths = {
    "/metadata/name", "/metadata/namespace", "/metadata/uid", "/kind", "/apiVersion"};

// True when `ancestor` equals `p` or is one of its parents.
bool IsAncestorOrSelf(const Pointer& ancestor, Pointer p) {
  while (true) {
    if (p == ancestor) return true;
    if (p.empty()) return false;
    p = p.parent_pointer();
  }
}

// The identity path `pointer` would touch, or "".
std::string_view TouchedIdentityPath(const Pointer& pointer) {
  for (const std::string_view id_text : kIdentityPaths) {
    const Pointer id{std::string(id_text)};
    if (IsAncestorOrSelf(pointer, id) || IsAncestorOrSelf(id, pointer)) return id_text;
  }
  return {};
}

std::optional<PatchOp> ParseOp(std::string_view text) {
  if (text == "add") return PatchOp::kAdd;
  if (text == "replace") return PatchOp::kReplace;
  // "delete": the manual's configuration table (6.2.6) spells remove so.
  if (text == "remove" || text == "delete") return PatchOp::kRemove;
  return std::nullopt;
}

// nlohmann's messages start with "[json.exception.out_of_range.403] "; keep the rest.
std::string WithoutExceptionTag(const char* what) {
  std::string_view text(what);
  if (!text.empty() && text.front() == '[') {
    const std::size_t end = text.find("] ");
    if (end != std::string_view::npos) text.remove_prefix(end + 2);
  }
  return std::string(text);
}

// The unescaped reference tokens of a pointer, first to last ("/a~1b/0" -> "a/b", "0").
std::vector<std::string> Tokens(Pointer pointer) {
  std::vector<std::string> tokens;
  while (!pointer.empty()) {
    tokens.push_back(pointer.back());
    pointer.pop_back();
  }
  std::reverse(tokens.begin(), tokens.end());
  return tokens;
}

// The pointer text of the first `count` tokens, for messages ("(root)" for none).
std::string PrefixText(const std::vector<std::string>& tokens, std::size_t count) {
  if (count == 0) return "(root)";
  Pointer prefix;
  for (std::size_t i = 0; i < count; ++i) prefix.push_back(tokens[i]);
  return prefix.to_string();
}

// An RFC 6901 array index: "0", or a non-zero digit followed by digits ("01", "1e0",
// "-1", "+1" and "-" are not indexes).
std::optional<std::size_t> ArrayIndex(std::string_view token) {
  if (token.empty() || (token.size() > 1 && token.front() == '0')) return std::nullopt;
  if (!std::all_of(token.begin(), token.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  std::size_t index = 0;
  const auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), index);
  if (ec != std::errc() || end != token.data() + token.size()) return std::nullopt;
  return index;
}

// The value the first `count` tokens point at, or nullptr with the reason in `why`.
json* Find(json& document, const std::vector<std::string>& tokens, std::size_t count,
           std::string* why) {
  json* at = &document;
  for (std::size_t i = 0; i < count; ++i) {
    const std::string& token = tokens[i];
    const std::string parent = PrefixText(tokens, i);
    if (at->is_object()) {
      const auto it = at->find(token);
      if (it == at->end()) {
        *why = "path " + PrefixText(tokens, i + 1) + " not found: no member " + Quote(token) +
               " in " + parent;
        return nullptr;
      }
      at = &*it;
    } else if (at->is_array()) {
      const std::optional<std::size_t> index = ArrayIndex(token);
      if (!index) {
        *why = "path " + PrefixText(tokens, i + 1) + " not found: " + Quote(token) +
               " is not an array index (RFC 6901) of the array " + parent;
        return nullptr;
      }
      if (*index >= at->size()) {
        *why = "path " + PrefixText(tokens, i + 1) + " not found: index " + token +
               " is out of range of the array " + parent + " (size " +
               std::to_string(at->size()) + ")";
        return nullptr;
      }
      at = &(*at)[*index];
    } else {
      *why = "path " + PrefixText(tokens, i + 1) + " not found: " + parent + " is a " +
             at->type_name() + ", not an object or array";
      return nullptr;
    }
  }
  return at;
}

}  // namespace

std::string_view PatchOpName(PatchOp op) {
  switch (op) {
    case PatchOp::kAdd:
      return "add";
    case PatchOp::kReplace:
      return "replace";
    case PatchOp::kRemove:
      return "remove";
  }
  return "unknown";
}

TransformError::TransformError(std::size_t op_index, PatchOp op, std::string path,
                               const std::string& why)
    : std::runtime_error("patch operation " + std::to_string(op_index) + " (" +
                         std::string(PatchOpName(op)) + " " + path + ") failed: " + why),
      op_index_(op_index),
      op_(op),
      path_(std::move(path)) {}

struct JsonPatch::Impl {
  struct Operation {
    PatchOp op;
    std::string path;
    Pointer pointer;
    std::vector<std::string> tokens;  // the path's unescaped reference tokens (>= 1)
    json value;                       // null for remove
  };
  std::vector<Operation> ops;
  json as_json = json::array();
};

JsonPatch::JsonPatch() {
  // Immutable and shared by every empty patch, so default construction allocates nothing.
  static const std::shared_ptr<const Impl> kEmpty = std::make_shared<const Impl>();
  impl_ = kEmpty;
}
JsonPatch::JsonPatch(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

JsonPatch JsonPatch::FromJson(const json& operations, const std::string& field,
                              std::vector<ConfigProblem>* problems) {
  auto impl = std::make_shared<Impl>();
  if (operations.is_null()) return JsonPatch(std::move(impl));
  if (!operations.is_array()) {
    AddProblem(problems, field, reason::kInvalidConfig,
               std::string("must be an array of patch operations, got ") + operations.type_name());
    return JsonPatch(std::move(impl));
  }
  for (std::size_t i = 0; i < operations.size(); ++i) {
    const json& entry = operations[i];
    const std::string base = Index(field, i);
    if (!entry.is_object()) {
      AddProblem(problems, base, reason::kInvalidPatch,
                 "must be an object with op, path and value");
      continue;
    }
    bool ok = true;
    std::optional<PatchOp> op;
    const auto op_it = entry.find("op");
    if (op_it == entry.end() || !op_it->is_string()) {
      AddProblem(problems, Field(base, "op"), reason::kInvalidPatch,
                 "required: one of add, replace, remove (or delete, the same as remove)");
      ok = false;
    } else {
      const std::string& text = op_it->get_ref<const std::string&>();
      op = ParseOp(text);
      if (!op) {
        AddProblem(problems, Field(base, "op"), reason::kInvalidPatch,
                   "unknown op " + Quote(text) +
                       ": the allowed ops are add, replace, remove (or delete, the same as remove)");
        ok = false;
      }
    }
    std::optional<Pointer> pointer;
    const auto path_it = entry.find("path");
    if (path_it == entry.end() || !path_it->is_string()) {
      AddProblem(problems, Field(base, "path"), reason::kInvalidPatch,
                 "required: a JSON pointer (RFC 6901) such as /spec/replicas");
      ok = false;
    } else {
      const std::string& text = path_it->get_ref<const std::string&>();
      try {
        pointer.emplace(text);
      } catch (const json::exception& e) {
        AddProblem(problems, Field(base, "path"), reason::kInvalidPatch,
                   Quote(text) + " is not a valid JSON pointer (RFC 6901): " +
                       WithoutExceptionTag(e.what()));
        ok = false;
      }
      if (pointer && pointer->empty()) {
        AddProblem(problems, Field(base, "path"), reason::kInvalidPatch,
                   "must not be empty: a transformation cannot replace the whole object");
        ok = false;
        pointer.reset();
      }
      if (pointer) {
        const std::string_view identity = TouchedIdentityPath(*pointer);
        if (!identity.empty()) {
          AddProblem(problems, Field(base, "path"), reason::kInvalidPatch,
                     Quote(text) + " would change the object's identity (" +
                         std::string(identity) +
                         "): name, namespace, uid, kind and apiVersion cannot be patched");
          ok = false;
        }
      }
    }
    const auto value_it = entry.find("value");
    if (op && *op != PatchOp::kRemove && value_it == entry.end()) {
      AddProblem(problems, Field(base, "value"), reason::kInvalidPatch,
                 "required for " + std::string(PatchOpName(*op)));
      ok = false;
    }
    if (!ok) continue;

    std::vector<std::string> tokens = Tokens(*pointer);
    Impl::Operation operation{*op, path_it->get<std::string>(), std::move(*pointer),
                              std::move(tokens), nullptr};
    json as_json = {{"op", std::string(PatchOpName(*op))}, {"path", operation.path}};
    if (*op != PatchOp::kRemove) {
      operation.value = *value_it;
      as_json["value"] = *value_it;
    }
    impl->as_json.push_back(std::move(as_json));
    impl->ops.push_back(std::move(operation));
  }
  return JsonPatch(std::move(impl));
}

JsonPatch JsonPatch::FromJson(const json& operations) {
  std::vector<ConfigProblem> problems;
  JsonPatch patch = FromJson(operations, "", &problems);
  if (!problems.empty()) throw ConfigError(std::move(problems));
  return patch;
}

std::size_t JsonPatch::size() const noexcept { return impl_->ops.size(); }
PatchOp JsonPatch::op(std::size_t i) const { return impl_->ops.at(i).op; }
const std::string& JsonPatch::path(std::size_t i) const { return impl_->ops.at(i).path; }
const json& JsonPatch::value(std::size_t i) const { return impl_->ops.at(i).value; }
json JsonPatch::ToJson() const { return impl_->as_json; }

// RFC 6902 section 4 for the three ops, on our own pointer walk: nlohmann's patch treats
// an add under a scalar or null parent as an assertion (a no-op with NDEBUG), where the
// RFC requires an error.
void JsonPatch::Apply(json& object, const PatchOptions& options) const {
  for (std::size_t i = 0; i < impl_->ops.size(); ++i) {
    const Impl::Operation& operation = impl_->ops[i];
    const std::vector<std::string>& tokens = operation.tokens;
    const std::string& last = tokens.back();
    const auto error = [&](const std::string& why) {
      return TransformError(i, operation.op, operation.path, why);
    };
    std::string why;
    switch (operation.op) {
      case PatchOp::kReplace: {
        json* target = Find(object, tokens, tokens.size(), &why);
        if (target == nullptr) throw error(why);
        *target = operation.value;
        break;
      }
      case PatchOp::kAdd: {
        json* parent = Find(object, tokens, tokens.size() - 1, &why);
        if (parent == nullptr) throw error(why + " (add creates only the last path element)");
        if (parent->is_object()) {
          (*parent)[last] = operation.value;
        } else if (parent->is_array()) {
          if (last == "-") {
            parent->push_back(operation.value);
            break;
          }
          const std::optional<std::size_t> index = ArrayIndex(last);
          if (!index) {
            throw error(Quote(last) + " is not an array index (RFC 6901) or \"-\" of the array " +
                        PrefixText(tokens, tokens.size() - 1));
          }
          if (*index > parent->size()) {
            throw error("index " + last + " is greater than the size of the array " +
                        PrefixText(tokens, tokens.size() - 1) + " (" +
                        std::to_string(parent->size()) + ")");
          }
          parent->insert(parent->begin() + static_cast<json::difference_type>(*index),
                         operation.value);
        } else {
          throw error("cannot add to " + PrefixText(tokens, tokens.size() - 1) + ": it is a " +
                      parent->type_name() + ", not an object or array");
        }
        break;
      }
      case PatchOp::kRemove: {
        json* parent = Find(object, tokens, tokens.size() - 1, &why);
        bool removed = false;
        if (parent != nullptr && parent->is_object()) {
          removed = parent->erase(last) > 0;
          if (!removed) why = "path " + operation.path + " not found";
        } else if (parent != nullptr && parent->is_array()) {
          const std::optional<std::size_t> index = ArrayIndex(last);
          if (index && *index < parent->size()) {
            parent->erase(static_cast<json::size_type>(*index));
            removed = true;
          } else {
            why = "path " + operation.path + " not found: " +
                  (index ? "index " + last + " is out of range of the array"
                         : Quote(last) + " is not an array index (RFC 6901) of the array") +
                  " " + PrefixText(tokens, tokens.size() - 1);
          }
        } else if (parent != nullptr) {
          why = "path " + operation.path + " not found: " + PrefixText(tokens, tokens.size() - 1) +
                " is a " + parent->type_name() + ", not an object or array";
        }
        if (removed) break;
        if (options.skip_if_not_found_on_delete) continue;
        throw error(why + " (set patchOptions.skipIfNotFoundOnDelete to ignore)");
      }
    }
  }
}

json JsonPatch::Applied(const json& object, const PatchOptions& options) const {
  json copy = object;
  Apply(copy, options);
  return copy;
}

}  // namespace ro::plugins::kubernetes

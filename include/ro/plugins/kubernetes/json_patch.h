// The patch operations of a transformation or a recovery process (manual 6.2.2
// "Transformations", 6.2.6 PatchOperation/PatchOpts): a validated list of RFC 6902
// operations restricted to add, replace and remove, applied with RFC 6902 semantics
// (paths are RFC 6901 JSON pointers; conformance is tested against the json-patch-tests
// tables in tests/unit/k8splugin_patch_test.cc).
#pragma once

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "ro/plugins/kubernetes/config_error.h"

namespace ro::plugins::kubernetes {

// The operations a LiveSynchronization accepts. RFC 6902's move, copy and test are not
// part of the manual's API and are rejected. The manual's configuration table (6.2.6)
// names "replace" and "delete" while its samples use RFC 6902's "remove": "delete" is
// accepted as a synonym of remove, normalised when parsed (JsonPatch::FromJson), so it
// reads, applies and copies into a Task as "remove" (docs/kubesync.md "Configuration
// validation").
enum class PatchOp { kAdd, kReplace, kRemove };

// "add", "replace", "remove".
std::string_view PatchOpName(PatchOp op);

// patchOptions (manual 6.2.6 PatchOpts).
struct PatchOptions {
  // A remove whose path does not exist in the object is skipped instead of failing.
  bool skip_if_not_found_on_delete = false;

  bool operator==(const PatchOptions&) const = default;
};

// A patch could not be applied to an object. Names the operation (0-based index in the
// list), its op and path, and why (e.g. "key 'strategy' not found").
// Permanent for that object version: retrying the same object cannot succeed.
class TransformError : public std::runtime_error {
 public:
  TransformError(std::size_t op_index, PatchOp op, std::string path, const std::string& why);

  std::size_t op_index() const noexcept { return op_index_; }
  PatchOp op() const noexcept { return op_; }
  const std::string& path() const noexcept { return path_; }

 private:
  std::size_t op_index_;
  PatchOp op_;
  std::string path_;
};

// An immutable, validated list of patch operations. Cheap to copy (shared, const).
// Thread-safe: all methods are const.
class JsonPatch {
 public:
  // The empty patch (applies as a no-op).
  JsonPatch();

  // Validates a JSON array of {op, path, value} objects ("delete" is read as "remove").
  // Each problem is appended to
  // `problems` with reason InvalidPatch (InvalidConfig when `operations` is not an
  // array) and a field path under `field` ("<field>[<i>].op", "<field>[<i>].path",
  // "<field>[<i>].value"). Invalid entries are left out of the result. A path must be
  // a non-empty JSON pointer that neither is, contains nor lies under an identity field
  // (/metadata/name, /metadata/namespace, /metadata/uid, /kind, /apiVersion).
  // A JSON null `operations` is the empty patch.
  static JsonPatch FromJson(const nlohmann::json& operations, const std::string& field,
                            std::vector<ConfigProblem>* problems);
  // Same, throws ConfigError with every problem (fields relative to the array, "[0].op").
  static JsonPatch FromJson(const nlohmann::json& operations);

  std::size_t size() const noexcept;
  bool empty() const noexcept { return size() == 0; }
  PatchOp op(std::size_t i) const;
  const std::string& path(std::size_t i) const;
  // The value of an add/replace; JSON null for remove.
  const nlohmann::json& value(std::size_t i) const;

  // The operations as the JSON array they were given as (op, path, value), for copying
  // into a Task (manual 8.2).
  nlohmann::json ToJson() const;

  // Applies the operations in order to `object`, in place (RFC 6902 section 4: add
  // creates or replaces an object member or inserts into an array at an index <= its
  // size or at "-", and its parent must exist and be an object or array (an add under a
  // string, number, boolean or null fails); replace needs an existing target; remove
  // needs an existing target unless options.skip_if_not_found_on_delete). Array indexes
  // follow RFC 6901 ("01", "1e0", "-1" are not indexes). Throws TransformError on the
  // first operation that fails; `object` may then hold the earlier operations' effect.
  void Apply(nlohmann::json& object, const PatchOptions& options) const;

  // A patched copy; `object` is untouched. Throws TransformError.
  nlohmann::json Applied(const nlohmann::json& object, const PatchOptions& options) const;

 private:
  struct Impl;
  explicit JsonPatch(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;
};

}  // namespace ro::plugins::kubernetes

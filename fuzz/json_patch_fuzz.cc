// ro::plugins::kubernetes::JsonPatch (RFC 6902 add/replace/remove) on a JSON input shaped
// like the json-patch-tests tables: {"doc": <object>, "patch": [<operations>],
// "skipIfNotFoundOnDelete": <bool>}. FromJson returns a patch or throws ConfigError;
// Apply succeeds or throws TransformError. Properties: FromJson(ToJson()) is the same
// patch; Applied() leaves its argument untouched and agrees with Apply() in place. The
// valid operations of an invalid patch are applied too.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "fuzz_check.h"
#include "ro/plugins/kubernetes/json_patch.h"

namespace {

namespace k8s = ro::plugins::kubernetes;
using nlohmann::json;
using ro::fuzz::Check;

void CheckSamePatch(const k8s::JsonPatch& a, const k8s::JsonPatch& b) {
  Check(a.size() == b.size(), "FromJson(ToJson()) keeps every operation");
  for (std::size_t i = 0; i < a.size(); ++i) {
    Check(a.op(i) == b.op(i) && a.path(i) == b.path(i) && a.value(i) == b.value(i),
          "FromJson(ToJson()) keeps op, path and value");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const json input =
      ro::fuzz::ParseJsonInput(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!input.is_object()) return 0;
  const json operations = input.value("patch", json());
  const json doc = input.value("doc", json::object());
  k8s::PatchOptions options;
  if (const auto skip = input.find("skipIfNotFoundOnDelete"); skip != input.end()) {
    options.skip_if_not_found_on_delete = skip->is_boolean() && skip->get<bool>();
  }

  // The collecting FromJson keeps the valid operations: those are applied below.
  std::vector<k8s::ConfigProblem> problems;
  const k8s::JsonPatch patch = k8s::JsonPatch::FromJson(operations, "patch", &problems);
  try {
    CheckSamePatch(patch, k8s::JsonPatch::FromJson(operations));
    Check(problems.empty(), "the throwing FromJson agrees with the collecting one");
  } catch (const k8s::ConfigError& e) {
    Check(!problems.empty() && e.problems().size() == problems.size(),
          "ConfigError carries every problem");
    for (const k8s::ConfigProblem& p : problems) {
      Check(ro::fuzz::JsonWritable(p.message) && ro::fuzz::JsonWritable(p.field),
            "problems can be written into a status condition");
    }
  }
  CheckSamePatch(patch, k8s::JsonPatch::FromJson(patch.ToJson()));

  const json before = doc;
  json in_place = doc;
  std::optional<std::size_t> failed_at;
  try {
    patch.Apply(in_place, options);
  } catch (const k8s::TransformError& e) {
    failed_at = e.op_index();
    Check(e.op_index() < patch.size(), "TransformError names an operation of the patch");
    Check(ro::fuzz::JsonWritable(e.what()), "TransformError can be written into an Event");
  }
  try {
    const json applied = patch.Applied(doc, options);
    Check(!failed_at, "Applied fails where Apply fails");
    Check(applied == in_place, "Applied == Apply in place");
  } catch (const k8s::TransformError& e) {
    Check(failed_at == e.op_index(), "Applied fails at the operation Apply fails at");
  }
  Check(doc == before, "Applied leaves its argument untouched");
  return 0;
}

#include "ro/plugins/kubernetes/bucket_object.h"

#include <nlohmann/json.hpp>

#include "ro/common/object_meta.h"
#include "ro/plugins/kubernetes/sanitizer.h"

namespace ro::plugins::kubernetes {
namespace {

}  // namespace

std::string BucketObjectKey(std::string_view prefix, const kube::GroupVersionResource& gvr,
                            std::string_view object_ns, std::string_view object_name) {
  const std::string dashed = gvr.ToDashed();
  std::string path;
  path.reserve(prefix.size() + dashed.size() + object_ns.size() + object_name.size() + 3);
  if (!prefix.empty()) path.append(prefix).append("/");
  path.append(dashed).append("/");
  if (!object_ns.empty()) path.append(object_ns).append(".");
  path.append(object_name);
  return path;
}

std::string BucketObjectPath(std::string_view ls_namespace, std::string_view ls_name,
                             const kube::GroupVersionResource& gvr, std::string_view object_ns,
                             std::string_view object_name) {
  std::string prefix;
  prefix.reserve(ls_namespace.size() + ls_name.size() + 1);
  prefix.append(ls_namespace).append("/").append(ls_name);
  return BucketObjectKey(prefix, gvr, object_ns, object_name);
}

std::string BucketObjectBody(const kube::GroupVersionResource& gvr,
                             const nlohmann::json& source_object, const StampInfo& stamp) {
  const std::string uid(common::MetadataString(source_object, "uid"));
  const std::string rv(common::MetadataString(source_object, "resourceVersion"));
  nlohmann::json stored = source_object;
  Sanitize(gvr, stored);
  if (stored.is_object()) Stamp(stored, stamp, SourceVersion{uid, rv, {}});
  return stored.dump();
}

}  // namespace ro::plugins::kubernetes

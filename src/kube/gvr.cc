#include "ro/kube/gvr.h"

#include <stdexcept>

namespace ro::kube {
namespace {

std::string JoinGroupVersion(const std::string& group, const std::string& version) {
  if (group.empty()) return version;
  std::string out;
  out.reserve(group.size() + 1 + version.size());
  out.append(group).append("/").append(version);
  return out;
}

// boost::hash_combine's mixing step (golden-ratio constant spreads consecutive values).
void HashCombine(size_t& seed, const std::string& value) {
  seed ^= std::hash<std::string>{}(value) + 0x9e3779b97f4a7c15ULL + (seed << 6) + (seed >> 2);
}

}  // namespace

std::string GroupVersionResource::GroupVersion() const {
  return JoinGroupVersion(group, version);
}

std::string GroupVersionResource::ToString() const {
  std::string out = GroupVersion();
  out.append("/").append(resource);
  return out;
}

std::string GroupVersionResource::ToDashed() const {
  std::string out;
  out.reserve(group.size() + version.size() + resource.size() + 2);
  if (!group.empty()) out.append(group).append("-");
  out.append(version).append("-").append(resource);
  return out;
}

GroupVersionResource GroupVersionResource::Parse(std::string_view text) {
  const auto last = text.rfind('/');
  if (last == std::string_view::npos) {
    throw std::invalid_argument("GroupVersionResource \"" + std::string(text) +
                                "\": want group/version/resource or version/resource");
  }
  GroupVersionResource gvr;
  gvr.resource = std::string(text.substr(last + 1));
  const std::string_view group_version = text.substr(0, last);
  if (group_version.find('/') != group_version.rfind('/')) {
    throw std::invalid_argument("GroupVersionResource \"" + std::string(text) +
                                "\": too many '/'");
  }
  SplitApiVersion(group_version, &gvr.group, &gvr.version);
  if (gvr.version.empty() || gvr.resource.empty() ||
      (group_version.find('/') != std::string_view::npos && gvr.group.empty())) {
    throw std::invalid_argument("GroupVersionResource \"" + std::string(text) +
                                "\": empty group, version or resource");
  }
  return gvr;
}

std::string GroupVersionKind::GroupVersion() const { return JoinGroupVersion(group, version); }

void SplitApiVersion(std::string_view api_version, std::string* group, std::string* version) {
  const auto slash = api_version.find('/');
  if (slash == std::string_view::npos) {
    group->clear();
    version->assign(api_version);
    return;
  }
  group->assign(api_version.substr(0, slash));
  version->assign(api_version.substr(slash + 1));
}

std::string ObjectKey::ToString() const {
  if (ns.empty()) return name;
  std::string out;
  out.reserve(ns.size() + 1 + name.size());
  out.append(ns).append("/").append(name);
  return out;
}

ObjectKey ObjectKey::Parse(std::string_view key) {
  const auto slash = key.find('/');
  if (slash == std::string_view::npos) return ObjectKey{"", std::string(key)};
  return ObjectKey{std::string(key.substr(0, slash)), std::string(key.substr(slash + 1))};
}

}  // namespace ro::kube

size_t std::hash<ro::kube::GroupVersionResource>::operator()(
    const ro::kube::GroupVersionResource& g) const noexcept {
  size_t seed = 0;
  ro::kube::HashCombine(seed, g.group);
  ro::kube::HashCombine(seed, g.version);
  ro::kube::HashCombine(seed, g.resource);
  return seed;
}

size_t std::hash<ro::kube::ObjectKey>::operator()(const ro::kube::ObjectKey& k) const noexcept {
  size_t seed = 0;
  ro::kube::HashCombine(seed, k.ns);
  ro::kube::HashCombine(seed, k.name);
  return seed;
}

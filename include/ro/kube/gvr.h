// Identifiers of Kubernetes resources: GroupVersionResource (what a URL path names),
// GroupVersionKind (what an object's apiVersion/kind names), and ObjectKey.
#pragma once

#include <compare>
#include <functional>
#include <string>
#include <string_view>

namespace ro::kube {

// group "" is the core (legacy) group served under /api/v1.
struct GroupVersionResource {
  std::string group;
  std::string version;
  std::string resource;  // plural, lower case: "deployments"

  // "apps/v1" or "v1" for the core group.
  std::string GroupVersion() const;
  // "apps/v1/deployments" or "v1/configmaps"; stable, used in logs and keys.
  std::string ToString() const;
  // "apps-v1-deployments", "v1-configmaps": safe in object-store paths and subjects.
  std::string ToDashed() const;
  // Parses the ToString() form. Throws std::invalid_argument on malformed input.
  static GroupVersionResource Parse(std::string_view text);

  auto operator<=>(const GroupVersionResource&) const = default;
};

struct GroupVersionKind {
  std::string group;
  std::string version;
  std::string kind;  // "Deployment"

  std::string GroupVersion() const;  // the apiVersion field: "apps/v1" or "v1"
  auto operator<=>(const GroupVersionKind&) const = default;
};

// Splits an apiVersion ("apps/v1", "v1") into group and version.
void SplitApiVersion(std::string_view api_version, std::string* group, std::string* version);

// namespace/name of an object; namespace is empty for cluster-scoped objects.
struct ObjectKey {
  std::string ns;
  std::string name;

  // "ns/name", or "name" when cluster-scoped (the client-go cache key format).
  std::string ToString() const;
  // Inverse of ToString().
  static ObjectKey Parse(std::string_view key);
  auto operator<=>(const ObjectKey&) const = default;
};

}  // namespace ro::kube

template <>
struct std::hash<ro::kube::GroupVersionResource> {
  size_t operator()(const ro::kube::GroupVersionResource& g) const noexcept;
};
template <>
struct std::hash<ro::kube::ObjectKey> {
  size_t operator()(const ro::kube::ObjectKey& k) const noexcept;
};

// Objects of the kinds the manual's tutorials 8.1 and 8.2 replicate (Deployment,
// Service, Secret, Role, RoleBinding, ServiceAccount, Ingress), as a test creates them in
// a source cluster. Shared by the Kubesync integration tests and the LiveSynchronization
// e2e tests.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace ro::testsupport {

// metadata {name, namespace}.
inline nlohmann::json Meta(const std::string& ns, const std::string& name) { return {{"name", name}, {"namespace", ns}}; }

// Deployment `name`: selector and pod label app=<name>, one container "main" of `image`.
inline nlohmann::json Deployment(const std::string& ns, const std::string& name, int replicas, const std::string& image = "nginx:1.25") {
  return {{"apiVersion", "apps/v1"},
          {"kind", "Deployment"},
          {"metadata", Meta(ns, name)},
          {"spec",
           {{"replicas", replicas},
            {"selector", {{"matchLabels", {{"app", name}}}}},
            {"template",
             {{"metadata", {{"labels", {{"app", name}}}}},
              {"spec", {{"containers", nlohmann::json::array({{{"name", "main"}, {"image", image}}})}}}}}}}};
}
// ClusterIP Service `name` selecting app=<name>, `port` -> 8080.
inline nlohmann::json Service(const std::string& ns, const std::string& name, int port = 80) {
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata", Meta(ns, name)},
          {"spec", {{"selector", {{"app", name}}}, {"ports", nlohmann::json::array({{{"port", port}, {"targetPort", 8080}}})}}}};
}
// Opaque Secret with stringData.value = `value`.
inline nlohmann::json Secret(const std::string& ns, const std::string& name, const std::string& value) {
  return {{"apiVersion", "v1"},
          {"kind", "Secret"},
          {"metadata", Meta(ns, name)},
          {"type", "Opaque"},
          {"stringData", {{"value", value}}}};
}
// Role that may get and list ConfigMaps.
inline nlohmann::json Role(const std::string& ns, const std::string& name) {
  return {{"apiVersion", "rbac.authorization.k8s.io/v1"},
          {"kind", "Role"},
          {"metadata", Meta(ns, name)},
          {"rules", nlohmann::json::array({{{"apiGroups", {""}}, {"resources", {"configmaps"}}, {"verbs", {"get", "list"}}}})}};
}
// RoleBinding of Role `role` to ServiceAccount "app" of `ns`.
inline nlohmann::json RoleBinding(const std::string& ns, const std::string& name, const std::string& role) {
  return {{"apiVersion", "rbac.authorization.k8s.io/v1"},
          {"kind", "RoleBinding"},
          {"metadata", Meta(ns, name)},
          {"roleRef", {{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "Role"}, {"name", role}}},
          {"subjects", nlohmann::json::array({{{"kind", "ServiceAccount"}, {"name", "app"}, {"namespace", ns}}})}};
}
// ServiceAccount `name`.
inline nlohmann::json ServiceAccount(const std::string& ns, const std::string& name) {
  return {{"apiVersion", "v1"}, {"kind", "ServiceAccount"}, {"metadata", Meta(ns, name)}};
}
// Ingress: host <name>.example.com, path / -> Service `name` port 80.
inline nlohmann::json Ingress(const std::string& ns, const std::string& name) {
  nlohmann::json backend = {{"service", {{"name", name}, {"port", {{"number", 80}}}}}};
  nlohmann::json path = {{"path", "/"}, {"pathType", "Prefix"}, {"backend", backend}};
  return {{"apiVersion", "networking.k8s.io/v1"},
          {"kind", "Ingress"},
          {"metadata", Meta(ns, name)},
          {"spec", {{"rules", nlohmann::json::array({{{"host", name + ".example.com"}, {"http", {{"paths", {path}}}}}})}}}};
}

}  // namespace ro::testsupport

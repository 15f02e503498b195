#include "ro/testsupport/kubesync_expect.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "ro/plugins/kubernetes/processor_decision.h"

namespace ro::testsupport {
namespace {

using nlohmann::json;
namespace k8s = plugins::kubernetes;

void Erase(json& object, const json::json_pointer& pointer) {
  if (!object.contains(pointer)) return;
  json& parent = object.at(pointer.parent_pointer());
  if (parent.is_object()) parent.erase(pointer.back());
}

// Both sides without what the destination sets by itself.
json Comparable(const kube::GroupVersionResource& gvr, json object) {
  for (const char* path : {"/metadata/uid", "/metadata/resourceVersion", "/metadata/generation",
                           "/metadata/creationTimestamp", "/metadata/managedFields", "/metadata/selfLink", "/status"}) {
    Erase(object, json::json_pointer(path));
  }
  if (gvr.group.empty() && gvr.resource == "services") {
    Erase(object, json::json_pointer("/spec/clusterIP"));
    Erase(object, json::json_pointer("/spec/clusterIPs"));
    Erase(object, json::json_pointer("/spec/healthCheckNodePort"));
    if (object.contains(json::json_pointer("/spec/ports"))) {
      for (json& port : object["spec"]["ports"]) {
        if (port.is_object()) port.erase("nodePort");
      }
    }
  }
  if (gvr.group.empty() && gvr.resource == "serviceaccounts") object.erase("secrets");
  // The destination's deployment controller numbers its own rollouts (a cluster with a
  // node runs it).
  if (gvr.group == "apps" && gvr.resource == "deployments") {
    Erase(object, json::json_pointer("/metadata/annotations/deployment.kubernetes.io~1revision"));
  }
  // An empty annotations/labels map and an absent one are the same to the API.
  for (const char* key : {"annotations", "labels"}) {
    if (object.contains("metadata") && object["metadata"].contains(key) && object["metadata"][key].empty()) {
      object["metadata"].erase(key);
    }
  }
  return object;
}

std::string KeyOf(const json& object) {
  const json& meta = object.at("metadata");
  const std::string name = meta.value("name", "");
  const std::string ns = meta.value("namespace", "");
  return ns.empty() ? name : ns + "/" + name;
}

bool InScope(const json& object, const std::vector<std::string>& namespaces) {
  if (namespaces.empty()) return true;
  const std::string ns = object.at("metadata").value("namespace", "");
  return std::find(namespaces.begin(), namespaces.end(), ns) != namespaces.end();
}

}  // namespace

std::optional<json> ExpectedDestination(const k8s::LiveSyncConfig& config, const k8s::StampInfo& stamp,
                                        const kube::GroupVersionResource& gvr, const json& source,
                                        const json* namespace_labels) {
  json object = source;
  const k8s::ProcessorEvent event{k8s::EventType::kUpsert, /*resync=*/false, gvr, object, namespace_labels};
  const k8s::ProcessorDecision decision = k8s::DecideProcessing(config, stamp, event);
  if (decision.action != k8s::ProcessorAction::kUpsert) return std::nullopt;
  return object;
}

std::string DiffIgnoringServerFields(const kube::GroupVersionResource& gvr, const json& expected, const json& actual) {
  const json a = Comparable(gvr, expected);
  const json b = Comparable(gvr, actual);
  if (a == b) return "";
  return json::diff(a, b).dump();
}

std::string Convergence::Summary(std::size_t max) const {
  std::string out = std::to_string(problems.size()) + " problem(s) of " + std::to_string(expected) + " expected";
  for (std::size_t i = 0; i < problems.size() && i < max; ++i) out += "; " + problems[i];
  return out;
}

Convergence CompareClusters(kube::DynamicClient& source, kube::DynamicClient& destination,
                            const k8s::LiveSyncConfig& config, const k8s::StampInfo& stamp,
                            const kube::GroupVersionResource& gvr, const std::vector<std::string>& namespaces) {
  std::map<std::string, json> labels_by_namespace;
  for (json& ns : source.ListAll({"", "v1", "namespaces"}, "").items) {
    labels_by_namespace[ns["metadata"].value("name", "")] = ns["metadata"].value("labels", json());
  }
  std::map<std::string, json> expected;
  for (const json& item : source.ListAll(gvr, "").items) {
    if (!InScope(item, namespaces)) continue;
    const json* labels = nullptr;
    const std::string ns = item["metadata"].value("namespace", "");
    if (!ns.empty()) {
      const auto it = labels_by_namespace.find(ns);
      if (it != labels_by_namespace.end()) labels = &it->second;
    }
    if (auto want = ExpectedDestination(config, stamp, gvr, item, labels)) {
      std::string key = KeyOf(item);
      expected[std::move(key)] = std::move(*want);
    }
  }
  kube::ListOptions managed;
  managed.label_selector = std::string(k8s::kManagedByLabel) + "=" + stamp.managed_by;
  std::map<std::string, json> actual;
  for (json& item : destination.ListAll(gvr, "", managed).items) {
    if (!InScope(item, namespaces)) continue;
    std::string key = KeyOf(item);  // before the move: json's operator= takes its argument by value
    actual[std::move(key)] = std::move(item);
  }

  Convergence result;
  result.expected = expected.size();
  for (const auto& [key, want] : expected) {
    const auto it = actual.find(key);
    if (it == actual.end()) {
      result.problems.push_back("missing " + key);
      continue;
    }
    if (std::string diff = DiffIgnoringServerFields(gvr, want, it->second); !diff.empty()) {
      result.problems.push_back("differs " + key + ": " + diff);
    }
  }
  for (const auto& [key, object] : actual) {
    if (!expected.contains(key)) result.problems.push_back("unexpected " + key);
  }
  return result;
}

std::vector<std::string> StaleDestinationObjects(kube::DynamicClient& source, kube::DynamicClient& destination,
                                                 const k8s::StampInfo& stamp, const kube::GroupVersionResource& gvr,
                                                 const std::vector<std::string>& namespaces) {
  std::map<std::string, std::string> source_versions;
  for (const json& item : source.ListAll(gvr, "").items) {
    if (InScope(item, namespaces)) source_versions[KeyOf(item)] = item["metadata"].value("resourceVersion", "");
  }
  kube::ListOptions managed;
  managed.label_selector = std::string(k8s::kManagedByLabel) + "=" + stamp.managed_by;
  std::vector<std::string> stale;
  for (const json& item : destination.ListAll(gvr, "", managed).items) {
    if (!InScope(item, namespaces)) continue;
    const auto it = source_versions.find(KeyOf(item));
    if (it == source_versions.end()) continue;
    const std::optional<k8s::ControlStamp> recorded = k8s::ReadStamp(item);
    const std::string version = recorded ? recorded->source_resource_version : "";
    if (version != it->second) {
      stale.push_back(KeyOf(item) + ": recorded " + version + ", source " + it->second);
    }
  }
  return stale;
}

}  // namespace ro::testsupport

#include "ro/plugins/tasks/recovery_check.h"

#include <algorithm>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "ro/common/object_meta.h"

namespace ro::plugins::tasks {

namespace {

using nlohmann::json;

std::string Plural(int64_t count, std::string_view one, std::string_view many) {
  return std::to_string(count) + " " + std::string(count == 1 ? one : many);
}

std::string InCluster(std::string_view cluster) {
  return cluster.empty() ? "in the cluster the operator runs in" : "in " + std::string(cluster);
}

std::string SelectorText(const kube::LabelSelector& selector) {
  const std::string text = selector.ToString();
  return text.empty() ? "{}" : text;
}

// Why the entry of `r` changed nothing ("" when it changed something or was not listed).
std::string WhyNothing(const TransformationResource& resource, const ResourceReport& r,
                       std::string_view cluster) {
  const std::string entry = "resources[" + std::to_string(r.index) + "] (" + r.gvr.ToString() + "): ";
  const kubernetes::ObjectFilter& filter = resource.filter;
  const std::string where = InCluster(cluster);
  if (r.patched > 0) return "";
  if (filter.selector() && filter.selector()->MatchesNothing()) {
    return entry + "its label selector matches nothing";
  }
  if (!r.listed) return "";
  if (r.namespaces_selected && *r.namespaces_selected == 0) {
    return entry + "namespace selector " + SelectorText(*filter.namespace_selector()) +
           " matches no namespace " + where;
  }
  const std::string labelled =
      filter.selector() ? " with labels " + SelectorText(*filter.selector()) : std::string();
  if (r.objects == 0) return entry + "no " + r.gvr.ToString() + labelled + " " + where;
  if (r.selected == 0) {
    std::vector<std::string> criteria;
    if (r.namespaces_selected) {
      criteria.push_back("in the " + Plural(*r.namespaces_selected, "namespace", "namespaces") +
                         " selected by namespace selector " +
                         SelectorText(*filter.namespace_selector()));
    }
    if (!filter.name_regex().empty() || !filter.name_exclude_regex().empty()) {
      criteria.push_back("selected by name selector " + filter.ToJson().value("nameSelector", json()).dump());
    }
    std::string text = entry + "none of the " + std::to_string(r.objects) + " " + r.gvr.ToString() +
                       labelled + " " + where + " is ";
    if (criteria.empty()) criteria.push_back("selected by the filter");
    for (std::size_t i = 0; i < criteria.size(); ++i) text += (i == 0 ? "" : " and ") + criteria[i];
    return text;
  }
  return entry + "the " + Plural(r.selected, "selected object was", "selected objects were") +
         " deleted during the run";
}

// Objects the run changed per resource.
std::map<kube::GroupVersionResource, int64_t> PatchedPerResource(const TransformationReport& report) {
  std::map<kube::GroupVersionResource, int64_t> patched;
  for (const ResourceReport& r : report.resources) patched[r.gvr] += r.patched;
  return patched;
}

}  // namespace

std::optional<ReplicatedObjects> ReplicatedObjectsOf(const json& live_sync,
                                                     const TransformationConfig& config) {
  if (!live_sync.is_object()) return std::nullopt;
  const json status = live_sync.value("status", json::object());
  if (!status.is_object() || !status.contains("resources") || !status["resources"].is_array()) {
    return std::nullopt;
  }
  // Entries per resource in the LiveSynchronization and in the Task.
  std::map<kube::GroupVersionResource, int64_t> replicated_entries;
  const json spec = live_sync.value("spec", json::object());
  const json ls_config = spec.is_object() ? spec.value("config", json::object()) : json::object();
  const json replication =
      ls_config.is_object() ? ls_config.value("replication", json::object()) : json::object();
  const json entries =
      replication.is_object() ? replication.value("resources", json::array()) : json::array();
  for (const json& entry : entries) {
    if (!entry.is_object()) continue;
    ++replicated_entries[{entry.value("group", ""), entry.value("version", ""), entry.value("resource", "")}];
  }
  std::map<kube::GroupVersionResource, int64_t> task_entries;
  for (const TransformationResource& resource : config.resources) ++task_entries[resource.gvr];

  ReplicatedObjects out;
  const json& metadata = common::Metadata(live_sync);
  out.live_synchronization =
      common::StringMember(metadata, "namespace") + "/" + common::StringMember(metadata, "name");
  for (const json& item : status["resources"]) {
    if (!item.is_object() || !item.contains("objects") || !item["objects"].is_number_integer()) continue;
    const kube::GroupVersionResource gvr{item.value("group", ""), item.value("version", ""),
                                         item.value("resource", "")};
    const auto task = task_entries.find(gvr);
    if (task == task_entries.end() || replicated_entries[gvr] != task->second) continue;
    out.objects[gvr] = item["objects"].get<int64_t>();
  }
  return out;
}

std::optional<RecoveryWarning> CheckRecovery(const TransformationConfig& config,
                                             const TransformationReport& report,
                                             std::string_view cluster,
                                             const ReplicatedObjects* replicated) {
  if (!report.Succeeded()) return std::nullopt;
  std::vector<std::string> parts;
  if (report.patched == 0) {
    if (config.resources.empty()) parts.push_back("the Task has no resources");
    for (const ResourceReport& r : report.resources) {
      if (r.index >= config.resources.size()) continue;
      if (std::string why = WhyNothing(config.resources[r.index], r, cluster); !why.empty()) {
        parts.push_back(std::move(why));
      }
    }
  }
  if (replicated != nullptr) {
    const std::map<kube::GroupVersionResource, int64_t> patched = PatchedPerResource(report);
    std::vector<kube::GroupVersionResource> seen;
    for (const TransformationResource& resource : config.resources) {
      if (std::find(seen.begin(), seen.end(), resource.gvr) != seen.end()) continue;
      seen.push_back(resource.gvr);
      const auto expected = replicated->objects.find(resource.gvr);
      if (expected == replicated->objects.end()) continue;
      const auto done = patched.find(resource.gvr);
      const int64_t recovered = done == patched.end() ? 0 : done->second;
      if (recovered >= expected->second) continue;
      parts.push_back(resource.gvr.ToString() + ": " + std::to_string(recovered) + " recovered, but LiveSynchronization " +
                      replicated->live_synchronization + " reports " + std::to_string(expected->second) +
                      " replicated");
    }
  }
  if (parts.empty() && report.patched > 0) return std::nullopt;
  RecoveryWarning warning;
  warning.reason = std::string(report.patched == 0 ? kReasonNothingRecovered : kReasonFewerObjectsRecovered);
  warning.message = report.patched == 0 ? "Nothing recovered " + InCluster(cluster)
                                        : std::string("Fewer objects recovered than replicated");
  for (std::size_t i = 0; i < parts.size(); ++i) warning.message += (i == 0 ? ": " : "; ") + parts[i];
  return warning;
}

}  // namespace ro::plugins::tasks

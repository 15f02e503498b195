#include "ro/plugins/kubernetes/recovery_task.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "ro/plugins/kubernetes/control_metadata.h"

namespace ro::plugins::kubernetes {

bool HasRecoveryProcess(const LiveSyncConfig& config) {
  const auto& rules = config.replication.resources;
  return std::any_of(rules.begin(), rules.end(), [](const ResourceRule& rule) {
    return rule.recovery && rule.recovery->HasEffect();
  });
}

nlohmann::json BuildRecoveryTask(const LiveSyncConfig& config, std::string_view ls_namespace,
                                 std::string_view ls_name) {
  using nlohmann::json;
  json resources = json::array();
  for (const ResourceRule& rule : config.replication.resources) {
    if (!rule.recovery || !rule.recovery->HasEffect()) continue;
    const RecoveryProcess& recovery = *rule.recovery;
    json item = {{"identifier",
                  {{"group", rule.gvr.group},
                   {"version", rule.gvr.version},
                   {"resources", rule.gvr.resource}}}};
    if (!recovery.from_patch.empty()) {
      item["patch"] = {{"operations", recovery.from_patch.ToJson()}};
      if (recovery.patch_options.skip_if_not_found_on_delete) {
        item["patch"]["patchOptions"] = {{"skipIfNotFoundOnDelete", true}};
      }
    }
    if (json filter = rule.filter.ToJson(); !filter.empty()) item["filter"] = std::move(filter);
    if (recovery.from_original) item["fromOriginal"] = {{"enabled", true}};
    resources.push_back(std::move(item));
  }
  json task_config = {{"sourceName", config.source_name},
                      {"destinationName", config.destination_name},
                      {"resources", std::move(resources)}};
  if (config.bucket_name) task_config["bucketName"] = *config.bucket_name;
  const std::string owner = std::string(ls_namespace) + "/" + std::string(ls_name);
  return {{"apiVersion", "automation.astronetes.io/v1alpha1"},
          {"kind", "Task"},
          {"metadata",
           {{"name", ls_name},
            {"namespace", ls_namespace},
            {"annotations", {{std::string(kLiveSynchronizationAnnotation), owner}}}}},
          {"spec", {{"plugin", "kubernetes-objects-transformation"}, {"config", std::move(task_config)}}}};
}

}  // namespace ro::plugins::kubernetes

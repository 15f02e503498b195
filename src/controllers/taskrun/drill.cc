#include "taskrun/drill.h"

#include <stdexcept>
#include <utility>

#include "ro/common/object_meta.h"
#include "ro/plugins/tasks/task_spec.h"

namespace ro::controllers {

namespace {

using nlohmann::json;

json Metadata(const std::string& name, const std::string& ns, const std::string& drill) {
  return {{"name", name}, {"namespace", ns}, {"labels", {{std::string(kDrillLabel), drill}}}};
}

json Run(const std::string& name, const std::string& ns, const std::string& drill) {
  return {{"apiVersion", "automation.astronetes.io/v1alpha1"},
          {"kind", "TaskRun"},
          {"metadata", Metadata(name, ns, drill)},
          {"spec", {{"taskName", name}}}};
}

}  // namespace

DrillObjects RenderDrill(const json& task, const std::string& drill, const std::string& bucket,
                         const std::string& suffix) {
  const std::string ns = common::MetadataString(task, "namespace");
  const std::string task_name = common::MetadataString(task, "name");
  const json spec = task.value("spec", json::object());
  if (spec.value("plugin", "") != plugins::tasks::kTransformationPlugin) {
    throw std::invalid_argument("Task " + ns + "/" + task_name + " is not a recovery (plugin " +
                                std::string(plugins::tasks::kTransformationPlugin) + ")");
  }
  const json config = spec.value("config", json::object());
  const std::string destination = config.value("destinationName", "");
  if (destination.empty()) {
    throw std::invalid_argument("Task " + ns + "/" + task_name +
                                " names no destinationName: a drill backs up the standby through its "
                                "KubernetesCluster");
  }
  const std::string bucket_name = !bucket.empty() ? bucket : config.value("bucketName", "");
  if (bucket_name.empty()) {
    throw std::invalid_argument("Task " + ns + "/" + task_name +
                                " names no bucketName: give the Bucket for the drill's copy (--bucket)");
  }
  json selector;
  for (const json& resource : config.value("resources", json::array())) {
    const json filter = resource.value("filter", json::object());
    const json this_selector = filter.is_object() ? filter.value("namespaceSelector", json()) : json();
    if (this_selector.is_null()) {
      throw std::invalid_argument("resources of Task " + ns + "/" + task_name +
                                  " without a namespaceSelector: a drill copies the namespaces the "
                                  "recovery selects by label");
    }
    if (!selector.is_null() && selector != this_selector) {
      throw std::invalid_argument("the resources of Task " + ns + "/" + task_name +
                                  " select namespaces differently: a drill needs one namespaceSelector");
    }
    selector = this_selector;
  }
  if (selector.is_null()) throw std::invalid_argument("Task " + ns + "/" + task_name + " changes no resource");

  DrillObjects out;
  const std::string base_path = "drills/" + ns + "/" + drill;
  out.backup = {{"apiVersion", "automation.astronetes.io/v1alpha1"},
                {"kind", "Backup"},
                {"metadata", Metadata(drill, ns, drill)},
                {"spec",
                 {{"plugin", "kubernetes-objects-to-bucket"},
                  {"config",
                   {{"source", {{"kubernetesCluster", {{"name", destination}, {"namespaceSelector", selector}}}}},
                    {"destination", {{"bucket", {{"name", bucket_name}, {"basePath", base_path}}}}}}}}}};
  out.restore_task = {{"apiVersion", "automation.astronetes.io/v1alpha1"},
                      {"kind", "Task"},
                      {"metadata", Metadata(drill + "-restore", ns, drill)},
                      {"spec",
                       {{"plugin", std::string(plugins::tasks::kRestorePlugin)},
                        {"config",
                         {{"destinationName", destination},
                          {"bucketName", bucket_name},
                          {"basePath", base_path},
                          {"namespaceSuffix", suffix},
                          {"namespaceLabels", {{std::string(kDrillLabel), drill}}}}}}}};
  out.restore_run = Run(drill + "-restore", ns, drill);

  json recovery_config = config;
  recovery_config.erase("bucketName");
  json resources = json::array();
  const json& listed = config.value("resources", json::array());
  for (std::size_t i = 0; i < listed.size(); ++i) {
    json resource = listed[i];
    resource["filter"]["namespaceSelector"] = {{"matchLabels", {{std::string(kDrillLabel), drill}}}};
    const json identifier = resource.value("identifier", json::object());
    const std::string what = "resources[" + std::to_string(i) + "] (" + identifier.value("group", "") + "/" +
                             identifier.value("version", "") + "/" + identifier.value("resources", "") + ")";
    if (resource.value("fromOriginal", json::object()).value("enabled", false)) {
      resource.erase("fromOriginal");
      out.notes.push_back(what + ": fromOriginal is not rehearsed (the originals are kept under the standby's "
                                 "namespaces)");
    }
    const json operations = resource.value("patch", json::object()).value("operations", json::array());
    if (!operations.is_array() || operations.empty()) {
      out.notes.push_back(what + ": left out (it only restores originals)");
      continue;
    }
    resources.push_back(std::move(resource));
  }
  recovery_config["resources"] = std::move(resources);
  json recovery_spec = spec;
  recovery_spec["config"] = std::move(recovery_config);
  out.recovery_task = {{"apiVersion", "automation.astronetes.io/v1alpha1"},
                       {"kind", "Task"},
                       {"metadata", Metadata(drill + "-recovery", ns, drill)},
                       {"spec", std::move(recovery_spec)}};
  out.recovery_run = Run(drill + "-recovery", ns, drill);
  return out;
}

}  // namespace ro::controllers

#include "ro/plugins/tasks/task_spec.h"

#include <algorithm>
#include <utility>

#include <nlohmann/json.hpp>

#include "../kubernetes/config_reader.h"
#include "ro/common/validation.h"
#include "ro/plugins/kubernetes/control_metadata.h"
#include "ro/plugins/zookeeper/nodes_plan.h"

namespace ro::plugins::tasks {

namespace {

using kubernetes::ConfigError;
using kubernetes::ConfigProblem;
using kubernetes::internal::AddProblem;
using kubernetes::internal::Field;
using kubernetes::internal::Index;
using kubernetes::internal::Member;
using kubernetes::internal::OptionalName;
using kubernetes::internal::Quote;
using kubernetes::internal::RequiredString;
using kubernetes::internal::TypedMember;
using nlohmann::json;
using Problems = std::vector<ConfigProblem>;
namespace reason = kubernetes::reason;

constexpr std::string_view kAutomationGroup = "automation.astronetes.io";

bool OptionalBool(const json& object, std::string_view key, const std::string& field,
                  Problems* problems) {
  const json* value =
      TypedMember(object, key, json::value_t::boolean, "a boolean", field, problems);
  return value != nullptr && value->get<bool>();
}

ResourceOrder ParseOrder(const json& config, const std::string& base, Problems* problems) {
  const std::string order_field = Field(base, "order");
  const json* order = TypedMember(config, "order", json::value_t::string, "a string", order_field, problems);
  if (order == nullptr || *order == "Dependencies") return ResourceOrder::kDependencies;
  if (*order == "AsListed") return ResourceOrder::kAsListed;
  AddProblem(problems, order_field, reason::kInvalidConfig,
             order->dump() + " is not an order: use Dependencies (the default) or AsListed");
  return ResourceOrder::kDependencies;
}

RestartPolicy ParseRestartPolicy(const json& spec, Problems* problems) {
  const std::string field = "spec.restartPolicy";
  const json* value = TypedMember(spec, "restartPolicy", json::value_t::string, "a string",
                                  field, problems);
  if (value == nullptr) return RestartPolicy::kNever;
  const std::string text = value->get<std::string>();
  if (text == "Never") return RestartPolicy::kNever;
  if (text == "OnFailure") return RestartPolicy::kOnFailure;
  AddProblem(problems, field, reason::kInvalidConfig,
             Quote(text) + " is not a restart policy: use Never (the default) or OnFailure");
  return RestartPolicy::kNever;
}

CustomImageConfig ParseCustomImage(const json& config, Problems* problems) {
  const std::string base = "spec.config";
  CustomImageConfig out;
  out.image = RequiredString(config, "image", Field(base, "image"),
                             "the container image to run, such as busybox", problems);
  const std::string command_field = Field(base, "command");
  const json* command = Member(config, "command");
  if (command == nullptr) {
    AddProblem(problems, command_field, reason::kInvalidConfig,
               "required: the command the container runs, such as [echo, hello]");
  } else if (!command->is_array()) {
    AddProblem(problems, command_field, reason::kInvalidConfig,
               std::string("must be a list of strings, got ") + command->type_name());
  } else if (command->empty()) {
    AddProblem(problems, command_field, reason::kInvalidConfig,
               "must name at least the executable");
  } else {
    for (std::size_t i = 0; i < command->size(); ++i) {
      const json& item = (*command)[i];
      if (!item.is_string()) {
        AddProblem(problems, Index(command_field, i), reason::kInvalidConfig,
                   std::string("must be a string, got ") + item.type_name());
        continue;
      }
      out.command.push_back(item.get<std::string>());
    }
    if (!out.command.empty() && out.command.front().empty()) {
      AddProblem(problems, Index(command_field, 0), reason::kInvalidConfig,
                 "the executable must not be empty");
    }
  }
  if (Member(config, "clusterRole") != nullptr) {
    out.cluster_role = OptionalName(config, "clusterRole", Field(base, "clusterRole"), problems);
  }
  return out;
}

kubernetes::PatchOptions ParsePatchOptions(const json& patch, const std::string& base,
                                           Problems* problems) {
  kubernetes::PatchOptions options;
  const std::string field = Field(base, "patchOptions");
  if (const json* o =
          TypedMember(patch, "patchOptions", json::value_t::object, "an object", field, problems)) {
    options.skip_if_not_found_on_delete =
        OptionalBool(*o, "skipIfNotFoundOnDelete", Field(field, "skipIfNotFoundOnDelete"), problems);
  }
  return options;
}

void ParseIdentifier(const json& entry, const std::string& base, TransformationResource* out,
                     Problems* problems) {
  const std::string field = Field(base, "identifier");
  const json* identifier = Member(entry, "identifier");
  if (identifier == nullptr) {
    AddProblem(problems, field, reason::kInvalidConfig,
               "required: the resource type, {group, version, resources}, such as {group: "
               "apps, version: v1, resources: deployments}");
    return;
  }
  if (!identifier->is_object()) {
    AddProblem(problems, field, reason::kInvalidConfig,
               std::string("must be an object {group, version, resources}, got ") +
                   identifier->type_name());
    return;
  }
  if (const json* group = TypedMember(*identifier, "group", json::value_t::string, "a string",
                                      Field(field, "group"), problems)) {
    out->gvr.group = group->get<std::string>();
    if (!out->gvr.group.empty() && !common::IsDns1123Subdomain(out->gvr.group)) {
      AddProblem(problems, Field(field, "group"), reason::kInvalidConfig,
                 Quote(out->gvr.group) +
                     " is not an API group (lower-case DNS subdomain such as apps or "
                     "networking.k8s.io; \"\" for the core group)");
    }
  }
  out->gvr.version = RequiredString(*identifier, "version", Field(field, "version"),
                                    "an API version such as v1", problems);
  if (!out->gvr.version.empty() && !common::IsDns1123Label(out->gvr.version)) {
    AddProblem(problems, Field(field, "version"), reason::kInvalidConfig,
               Quote(out->gvr.version) + " is not an API version (such as v1 or v1beta1)");
  }
  // "resources" (plural) is the manual's spelling in the Task (8.2), unlike the
  // LiveSynchronization's "resource".
  out->gvr.resource = RequiredString(*identifier, "resources", Field(field, "resources"),
                                     "a plural resource name such as deployments", problems);
  if (!out->gvr.resource.empty() && !common::IsDns1123Label(out->gvr.resource)) {
    AddProblem(problems, Field(field, "resources"), reason::kInvalidConfig,
               Quote(out->gvr.resource) +
                   " is not a resource name: use the lower-case plural, such as deployments");
  }
}

TransformationResource ParseResource(const json& entry, std::size_t index, const std::string& base,
                                     Problems* problems) {
  TransformationResource out;
  out.index = index;
  if (!entry.is_object()) {
    AddProblem(problems, base, reason::kInvalidConfig,
               std::string("must be an object with identifier and patch or fromOriginal, got ") +
                   entry.type_name());
    return out;
  }
  ParseIdentifier(entry, base, &out, problems);

  const std::string patch_field = Field(base, "patch");
  if (const json* patch = TypedMember(entry, "patch", json::value_t::object, "an object",
                                      patch_field, problems)) {
    const json* operations = Member(*patch, "operations");
    out.patch = kubernetes::JsonPatch::FromJson(operations == nullptr ? json() : *operations,
                                                Field(patch_field, "operations"), problems);
    out.patch_options = ParsePatchOptions(*patch, patch_field, problems);
  }

  const json* filter = Member(entry, "filter");
  out.filter = kubernetes::ObjectFilter::FromJson(filter == nullptr ? json() : *filter,
                                                  Field(base, "filter"), problems);

  const std::string original_field = Field(base, "fromOriginal");
  if (const json* original = TypedMember(entry, "fromOriginal", json::value_t::object,
                                         "an object", original_field, problems)) {
    out.from_original =
        OptionalBool(*original, "enabled", Field(original_field, "enabled"), problems);
  }

  const json* operations = Member(entry, "patch") != nullptr && entry["patch"].is_object()
                               ? Member(entry["patch"], "operations")
                               : nullptr;
  const bool has_operations = operations != nullptr && operations->is_array() && !operations->empty();
  if (!has_operations && !out.from_original) {
    AddProblem(problems, base, reason::kInvalidConfig,
               "does nothing: set patch.operations, fromOriginal.enabled: true, or both");
  }
  return out;
}

TransformationConfig ParseTransformation(const json& task, const json& config,
                                         Problems* problems) {
  const std::string base = "spec.config";
  TransformationConfig out;
  out.source_name = OptionalName(config, "sourceName", Field(base, "sourceName"), problems);
  out.destination_name =
      OptionalName(config, "destinationName", Field(base, "destinationName"), problems);
  out.bucket_name = OptionalName(config, "bucketName", Field(base, "bucketName"), problems);

  const std::string resources_field = Field(base, "resources");
  const json* resources = Member(config, "resources");
  if (resources == nullptr) {
    AddProblem(problems, resources_field, reason::kInvalidConfig,
               "required: the resources to change, each {identifier, patch, filter, "
               "fromOriginal} (use [] for a task that changes nothing)");
  } else if (!resources->is_array()) {
    AddProblem(problems, resources_field, reason::kInvalidConfig,
               std::string("must be a list, got ") + resources->type_name());
  } else {
    for (std::size_t i = 0; i < resources->size(); ++i) {
      out.resources.push_back(ParseResource((*resources)[i], i, Index(resources_field, i), problems));
    }
  }

  out.order = ParseOrder(config, base, problems);

  out.live_synchronization = LiveSynchronizationOf(task);
  if (out.UsesOriginals()) {
    const auto first = std::find_if(out.resources.begin(), out.resources.end(),
                                    [](const TransformationResource& r) { return r.from_original; });
    const std::string enabled_field =
        Field(Field(Index(resources_field, first->index), "fromOriginal"), "enabled");
    if (out.bucket_name.empty()) {
      AddProblem(problems, enabled_field, reason::kInvalidConfig,
                 "restoring originals needs spec.config.bucketName (the Bucket that keeps them)");
    }
    if (!out.live_synchronization) {
      AddProblem(problems, enabled_field, reason::kInvalidConfig,
                 "restoring originals needs the LiveSynchronization that stored them: set the "
                 "annotation " +
                     std::string(kubernetes::kLiveSynchronizationAnnotation) +
                     ": <namespace>/<name> (the generated Task carries it)");
    }
  }
  return out;
}

// An optional {string: string} member; every value must be a non-empty string.
std::vector<std::pair<std::string, std::string>> StringMap(const json& object, std::string_view key,
                                                           const std::string& field, Problems* problems) {
  std::vector<std::pair<std::string, std::string>> out;
  const json* map = TypedMember(object, key, json::value_t::object, "an object", field, problems);
  if (map == nullptr) return out;
  for (const auto& [k, v] : map->items()) {
    if (!v.is_string() || v.get<std::string>().empty() || k.empty()) {
      AddProblem(problems, Field(field, k), reason::kInvalidConfig, "must be a non-empty string");
      continue;
    }
    out.emplace_back(k, v.get<std::string>());
  }
  return out;
}

RestoreConfig ParseRestore(const json& config, Problems* problems) {
  const std::string base = "spec.config";
  RestoreConfig out;
  out.bucket_name = RequiredString(config, "bucketName", Field(base, "bucketName"),
                                   "the Bucket the Backup wrote to", problems);
  std::string path = RequiredString(config, "basePath", Field(base, "basePath"),
                                    "where the Backup is in the bucket (its status.basePath)", problems);
  while (!path.empty() && path.front() == '/') path.erase(path.begin());
  while (!path.empty() && path.back() == '/') path.pop_back();
  out.base_path = path;
  out.destination_name = OptionalName(config, "destinationName", Field(base, "destinationName"), problems);
  const std::string namespaces_field = Field(base, "namespaces");
  if (const json* namespaces = TypedMember(config, "namespaces", json::value_t::array, "a list",
                                           namespaces_field, problems)) {
    for (std::size_t i = 0; i < namespaces->size(); ++i) {
      if (!(*namespaces)[i].is_string() || (*namespaces)[i].get<std::string>().empty()) {
        AddProblem(problems, Index(namespaces_field, i), reason::kInvalidConfig, "must be a namespace name");
      } else {
        out.namespaces.push_back((*namespaces)[i].get<std::string>());
      }
    }
  }
  out.namespace_mapping = StringMap(config, "namespaceMapping", Field(base, "namespaceMapping"), problems);
  out.namespace_labels = StringMap(config, "namespaceLabels", Field(base, "namespaceLabels"), problems);
  out.namespace_suffix = OptionalName(config, "namespaceSuffix", Field(base, "namespaceSuffix"), problems);
  const std::string existing_field = Field(base, "existing");
  if (const json* existing = TypedMember(config, "existing", json::value_t::string, "a string",
                                         existing_field, problems)) {
    if (*existing == "Update") {
      out.existing = RestoreConfig::Existing::kUpdate;
    } else if (*existing != "Skip") {
      AddProblem(problems, existing_field, reason::kInvalidConfig,
                 existing->dump() + " is not a policy: use Skip (the default) or Update");
    }
  }
  out.order = ParseOrder(config, base, problems);
  return out;
}

RestoreConfig ParseZooKeeperRestore(const json& config, Problems* problems) {
  const std::string base = "spec.config";
  RestoreConfig out = ParseRestore(config, problems);
  if (out.destination_name.empty() && Member(config, "destinationName") == nullptr) {
    AddProblem(problems, Field(base, "destinationName"), reason::kInvalidConfig,
               "required: the Database the znodes are restored into");
  }
  if (const json* root = TypedMember(config, "rootPath", json::value_t::string, "a string", Field(base, "rootPath"),
                                     problems)) {
    out.root_path = root->get<std::string>();
    if (const std::string problem = zookeeper::RootPathProblem(out.root_path); !problem.empty()) {
      AddProblem(problems, Field(base, "rootPath"), reason::kInvalidConfig, problem);
    }
  }
  for (const char* field : {"namespaces", "namespaceMapping", "namespaceSuffix", "namespaceLabels", "order"}) {
    if (Member(config, field) != nullptr) {
      AddProblem(problems, Field(base, field), reason::kInvalidConfig,
                 "not used by " + std::string(kZooKeeperRestorePlugin) + " (a Kubernetes restore's setting)");
    }
  }
  return out;
}

}  // namespace

std::string RestoreConfig::MapNamespace(const std::string& ns) const {
  for (const auto& [from, to] : namespace_mapping) {
    if (from == ns) return to;
  }
  return ns + namespace_suffix;
}

std::string_view ToString(RestartPolicy policy) {
  return policy == RestartPolicy::kOnFailure ? "OnFailure" : "Never";
}

bool TransformationConfig::UsesOriginals() const {
  return std::any_of(resources.begin(), resources.end(),
                     [](const TransformationResource& r) { return r.from_original; });
}

const CustomImageConfig& TaskSpec::custom_image() const {
  return std::get<CustomImageConfig>(config);
}

const TransformationConfig& TaskSpec::transformation() const {
  return std::get<TransformationConfig>(config);
}

const RestoreConfig& TaskSpec::restore() const { return std::get<RestoreConfig>(config); }

std::optional<kube::ObjectKey> LiveSynchronizationOf(const json& task) {
  if (!task.is_object()) return std::nullopt;
  const json metadata = task.value("metadata", json::object());
  if (!metadata.is_object()) return std::nullopt;
  const json annotations = metadata.value("annotations", json::object());
  if (annotations.is_object()) {
    const auto it = annotations.find(kubernetes::kLiveSynchronizationAnnotation);
    if (it != annotations.end() && it->is_string()) {
      const std::string value = it->get<std::string>();
      const std::size_t slash = value.find('/');
      if (slash == std::string::npos || slash == 0 || slash + 1 == value.size() ||
          value.find('/', slash + 1) != std::string::npos) {
        return std::nullopt;
      }
      return kube::ObjectKey{value.substr(0, slash), value.substr(slash + 1)};
    }
  }
  const json owners = metadata.value("ownerReferences", json::array());
  if (!owners.is_array()) return std::nullopt;
  for (const json& owner : owners) {
    if (!owner.is_object() || owner.value("kind", "") != "LiveSynchronization") continue;
    const std::string api_version = owner.value("apiVersion", "");
    if (api_version.rfind(std::string(kAutomationGroup) + "/", 0) != 0) continue;
    const std::string name = owner.value("name", "");
    if (name.empty()) continue;
    return kube::ObjectKey{metadata.value("namespace", ""), name};
  }
  return std::nullopt;
}

TaskSpec ParseTask(const json& task) {
  Problems problems;
  TaskSpec out;
  const json* spec = task.is_object() ? Member(task, "spec") : nullptr;
  if (spec == nullptr || !spec->is_object()) {
    AddProblem(&problems, "spec", reason::kInvalidConfig, "required: {plugin, config}");
    throw ConfigError(std::move(problems));
  }
  out.restart_policy = ParseRestartPolicy(*spec, &problems);

  const json* plugin = Member(*spec, "plugin");
  if (plugin == nullptr) {
    AddProblem(&problems, "spec.plugin", reason::kInvalidConfig,
               "required: custom-image, kubernetes-objects-transformation, kubernetes-objects-from-backup or "
               "zookeeper-nodes-from-backup");
  } else if (!plugin->is_string() ||
             (*plugin != kCustomImagePlugin && *plugin != kTransformationPlugin && *plugin != kRestorePlugin &&
              *plugin != kZooKeeperRestorePlugin)) {
    AddProblem(&problems, "spec.plugin", reason::kInvalidConfig,
               plugin->dump() + " is not a Task plugin: use custom-image, "
                                "kubernetes-objects-transformation, kubernetes-objects-from-backup or "
                                "zookeeper-nodes-from-backup");
  } else {
    out.plugin = plugin->get<std::string>();
  }

  const json* config = Member(*spec, "config");
  if (config == nullptr || !config->is_object()) {
    AddProblem(&problems, "spec.config", reason::kInvalidConfig,
               config == nullptr ? "required: the plugin's settings"
                                 : std::string("must be an object, got ") + config->type_name());
  } else if (out.plugin == kCustomImagePlugin) {
    out.config = ParseCustomImage(*config, &problems);
  } else if (out.plugin == kTransformationPlugin) {
    out.config = ParseTransformation(task, *config, &problems);
  } else if (out.plugin == kRestorePlugin) {
    out.config = ParseRestore(*config, &problems);
  } else if (out.plugin == kZooKeeperRestorePlugin) {
    out.config = ParseZooKeeperRestore(*config, &problems);
  }
  if (!problems.empty()) throw ConfigError(std::move(problems));
  return out;
}

}  // namespace ro::plugins::tasks

#include "ro/plugins/kubernetes/live_sync_config.h"

#include <algorithm>
#include <utility>

#include <nlohmann/json.hpp>

#include "config_reader.h"
#include "ro/common/digest.h"
#include "ro/common/duration.h"
#include "ro/common/validation.h"

namespace ro::plugins::kubernetes {
namespace {

using nlohmann::json;
using internal::AddProblem;
using internal::Field;
using internal::Index;
using internal::Member;
using internal::Quote;
using internal::TypedMember;
using Problems = std::vector<ConfigProblem>;

// Hex digits of a transformation fingerprint: 64 bits, enough to tell the transformations
// of one LiveSynchronization apart, short enough for an annotation value.
constexpr std::size_t kFingerprintHexDigits = 16;

// A required, non-empty string member; "" when missing (a problem is added).
std::string RequiredString(const json& object, std::string_view key, const std::string& field,
                           std::string_view what, Problems* problems) {
  const json* value = Member(object, key);
  if (value == nullptr) {
    AddProblem(problems, field, reason::kInvalidConfig, "required: " + std::string(what));
    return "";
  }
  if (!value->is_string()) {
    AddProblem(problems, field, reason::kInvalidConfig,
               std::string("must be a string, got ") + value->type_name());
    return "";
  }
  if (value->get_ref<const std::string&>().empty()) {
    AddProblem(problems, field, reason::kInvalidConfig, "must not be empty: " + std::string(what));
  }
  return value->get<std::string>();
}

bool OptionalBool(const json& object, std::string_view key, const std::string& field,
                  Problems* problems) {
  const json* value =
      TypedMember(object, key, json::value_t::boolean, "a boolean", field, problems);
  return value != nullptr && value->get<bool>();
}

// A Go duration that must be > 0; `fallback` when absent. Problems use `why`.
std::chrono::nanoseconds PositiveDuration(const json& object, std::string_view key,
                                          const std::string& field, std::string_view why,
                                          std::chrono::nanoseconds fallback, Problems* problems) {
  const json* value = Member(object, key);
  if (value == nullptr) return fallback;
  if (!value->is_string()) {
    AddProblem(problems, field, why,
               std::string("must be a duration string such as \"1h0m0s\", got ") +
                   value->type_name());
    return fallback;
  }
  try {
    const std::chrono::nanoseconds d = common::ParseDuration(value->get_ref<const std::string&>());
    if (d.count() <= 0) {
      AddProblem(problems, field, why,
                 Quote(value->get_ref<const std::string&>()) + " must be greater than zero");
      return fallback;
    }
    return d;
  } catch (const common::DurationError& e) {
    AddProblem(problems, field, why, e.what());
    return fallback;
  }
}

PatchOptions ParsePatchOptions(const json& parent, const std::string& base, Problems* problems) {
  PatchOptions options;
  const std::string field = Field(base, "patchOptions");
  if (const json* opts =
          TypedMember(parent, "patchOptions", json::value_t::object, "an object", field, problems)) {
    options.skip_if_not_found_on_delete =
        OptionalBool(*opts, "skipIfNotFoundOnDelete", Field(field, "skipIfNotFoundOnDelete"), problems);
  }
  return options;
}

std::string Fingerprint(const Transformation& t) {
  if (t.patch.empty()) return "";
  const std::string canonical = t.patch.ToJson().dump() +
                                (t.options.skip_if_not_found_on_delete ? "|skip" : "|strict");
  return common::Sha256Hex(canonical, kFingerprintHexDigits);
}

// One replication.resources[] entry. Adds its problems; `valid` says whether there were
// none (the overlap check only compares valid entries).
ResourceRule ParseResource(const json& entry, std::size_t index, const std::string& base,
                           bool has_bucket, Problems* problems, bool* valid) {
  const std::size_t before = problems->size();
  ResourceRule rule;
  rule.index = index;
  if (!entry.is_object()) {
    AddProblem(problems, base, reason::kInvalidConfig,
               "must be an object with version and resource");
    *valid = false;
    return rule;
  }
  if (const json* group = TypedMember(entry, "group", json::value_t::string, "a string",
                                      Field(base, "group"), problems)) {
    rule.gvr.group = group->get<std::string>();
    if (!rule.gvr.group.empty() && !common::IsDns1123Subdomain(rule.gvr.group)) {
      AddProblem(problems, Field(base, "group"), reason::kInvalidConfig,
                 Quote(rule.gvr.group) + " is not an API group (lower-case DNS subdomain such as "
                                         "apps or networking.k8s.io; \"\" for the core group)");
    }
  }
  rule.gvr.version =
      RequiredString(entry, "version", Field(base, "version"), "an API version such as v1", problems);
  if (!rule.gvr.version.empty() && !common::IsDns1123Label(rule.gvr.version)) {
    AddProblem(problems, Field(base, "version"), reason::kInvalidConfig,
               Quote(rule.gvr.version) + " is not an API version (such as v1 or v1beta1)");
  }
  rule.gvr.resource = RequiredString(entry, "resource", Field(base, "resource"),
                                     "a plural resource name such as deployments", problems);
  if (!rule.gvr.resource.empty() && !common::IsDns1123Label(rule.gvr.resource)) {
    AddProblem(problems, Field(base, "resource"), reason::kInvalidConfig,
               Quote(rule.gvr.resource) +
                   " is not a resource name: use the lower-case plural, such as deployments");
  }

  const std::string transformation_field = Field(base, "transformation");
  if (const json* t = TypedMember(entry, "transformation", json::value_t::object, "an object",
                                  transformation_field, problems)) {
    Transformation transformation;
    const json* patch = Member(*t, "patch");
    transformation.patch = JsonPatch::FromJson(patch == nullptr ? json() : *patch,
                                               Field(transformation_field, "patch"), problems);
    transformation.options = ParsePatchOptions(*t, transformation_field, problems);
    rule.transformation_fingerprint = Fingerprint(transformation);
    rule.transformation = std::move(transformation);
  }

  const json* filters = Member(entry, "filters");
  rule.filter = ObjectFilter::FromJson(filters == nullptr ? json() : *filters,
                                       Field(base, "filters"), problems);

  const std::string recovery_field = Field(base, "recoveryProcess");
  if (const json* r = TypedMember(entry, "recoveryProcess", json::value_t::object, "an object",
                                  recovery_field, problems)) {
    RecoveryProcess recovery;
    const json* from_patch = Member(*r, "fromPatch");
    recovery.from_patch = JsonPatch::FromJson(from_patch == nullptr ? json() : *from_patch,
                                              Field(recovery_field, "fromPatch"), problems);
    recovery.patch_options = ParsePatchOptions(*r, recovery_field, problems);
    const std::string original_field = Field(recovery_field, "fromOriginal");
    if (const json* original = TypedMember(*r, "fromOriginal", json::value_t::object,
                                           "an object", original_field, problems)) {
      const std::string enabled_field = Field(original_field, "enabled");
      recovery.from_original = OptionalBool(*original, "enabled", enabled_field, problems);
      if (recovery.from_original && !has_bucket) {
        AddProblem(problems, enabled_field, reason::kInvalidConfig,
                   "recovering from the original needs spec.config.bucketName (the bucket "
                   "that keeps the originals)");
      }
    }
    rule.recovery = std::move(recovery);
  }
  *valid = problems->size() == before;
  return rule;
}

// Two entries of one GVR that both transform must select disjoint objects (manual 6.2.2
// "Multiple transformations"), else which patch an object gets depends on entry order.
void CheckOverlaps(const std::vector<ResourceRule>& rules, const std::vector<bool>& valid,
                   Problems* problems) {
  for (std::size_t j = 0; j < rules.size(); ++j) {
    if (!valid[j] || rules[j].transformation_fingerprint.empty()) continue;
    for (std::size_t i = 0; i < j; ++i) {
      if (!valid[i] || rules[i].transformation_fingerprint.empty()) continue;
      if (rules[i].gvr != rules[j].gvr) continue;
      if (FiltersProvablyDisjoint(rules[i].filter, rules[j].filter)) continue;
      AddProblem(problems, Index("replication.resources", j), reason::kOverlappingTransformations,
                 "overlaps replication.resources[" + std::to_string(i) + "]: both transform " +
                     rules[j].gvr.ToString() +
                     " and their filters may select the same objects (give both a selector or "
                     "both a namespaceSelector requiring different values of the same label)");
      break;
    }
  }
}

ReplicationConfig ParseReplication(const json& replication, bool has_bucket, Problems* problems) {
  ReplicationConfig config;
  config.resync_period =
      PositiveDuration(replication, "resyncPeriod", "replication.resyncPeriod",
                       reason::kInvalidResyncPeriod, config.resync_period, problems);
  config.force_namespace_creation = OptionalBool(
      replication, "forceNamespaceCreation", "replication.forceNamespaceCreation", problems);
  config.adopt_existing =
      OptionalBool(replication, "adoptExisting", "replication.adoptExisting", problems);
  const json* resources = Member(replication, "resources");
  if (resources == nullptr || (resources->is_array() && resources->empty())) {
    AddProblem(problems, "replication.resources", reason::kInvalidConfig,
               "required: at least one resource to replicate");
    return config;
  }
  if (!resources->is_array()) {
    AddProblem(problems, "replication.resources", reason::kInvalidConfig,
               std::string("must be an array, got ") + resources->type_name());
    return config;
  }
  std::vector<bool> valid(resources->size(), false);
  config.resources.reserve(resources->size());
  for (std::size_t i = 0; i < resources->size(); ++i) {
    bool ok = false;
    config.resources.push_back(ParseResource((*resources)[i], i,
                                             Index("replication.resources", i), has_bucket,
                                             problems, &ok));
    valid[i] = ok;
  }
  CheckOverlaps(config.resources, valid, problems);
  return config;
}

// spec.config.resyncPeriod, where the manual's 6.2.5 text puts it (its reference and
// sample put it under replication). Either spelling sets the period; both set must agree.
void ParseTopLevelResyncPeriod(const json& spec_config, const json* replication,
                               ReplicationConfig* config, Problems* problems) {
  if (Member(spec_config, "resyncPeriod") == nullptr) return;
  const std::size_t before = problems->size();
  const std::chrono::nanoseconds top =
      PositiveDuration(spec_config, "resyncPeriod", "resyncPeriod", reason::kInvalidResyncPeriod,
                       config->resync_period, problems);
  if (problems->size() != before) return;
  const json* nested = replication == nullptr ? nullptr : Member(*replication, "resyncPeriod");
  if (nested == nullptr) {
    config->resync_period = top;
    return;
  }
  // replication.resyncPeriod was parsed already: config->resync_period is its value,
  // unless it was invalid (it then has its own problem).
  const bool nested_valid = std::none_of(problems->begin(), problems->end(), [](const ConfigProblem& p) {
    return p.field == "replication.resyncPeriod";
  });
  if (nested_valid && top != config->resync_period) {
    AddProblem(problems, "resyncPeriod", reason::kInvalidResyncPeriod,
               Quote(spec_config.at("resyncPeriod").get<std::string>()) +
                   " conflicts with replication.resyncPeriod " +
                   Quote(nested->get<std::string>()) +
                   ": set the period in one place, or the same duration in both");
  }
}

ObservabilityConfig ParseObservability(const json& observability, Problems* problems) {
  ObservabilityConfig config;
  config.enabled = OptionalBool(observability, "enabled", "observability.enabled", problems);
  config.interval = PositiveDuration(observability, "interval", "observability.interval",
                                     reason::kInvalidConfig, config.interval, problems);
  return config;
}

}  // namespace

const ResourceRule* LiveSyncConfig::Route(const kube::GroupVersionResource& gvr,
                                          const json& object,
                                          const json* namespace_labels) const {
  for (const ResourceRule& rule : replication.resources) {
    if (rule.gvr == gvr && rule.filter.Matches(object, namespace_labels)) return &rule;
  }
  return nullptr;
}

bool LiveSyncConfig::Replicates(const kube::GroupVersionResource& gvr) const {
  return std::any_of(replication.resources.begin(), replication.resources.end(),
                     [&](const ResourceRule& rule) { return rule.gvr == gvr; });
}

std::vector<kube::GroupVersionResource> LiveSyncConfig::DistinctGvrs() const {
  std::vector<kube::GroupVersionResource> gvrs;
  for (const ResourceRule& rule : replication.resources) {
    if (std::find(gvrs.begin(), gvrs.end(), rule.gvr) == gvrs.end()) gvrs.push_back(rule.gvr);
  }
  return gvrs;
}

LiveSyncConfig ParseLiveSyncConfig(const json& spec_config) {
  Problems problems;
  LiveSyncConfig config;
  config.components = DefaultComponentsConfig();
  if (!spec_config.is_object()) {
    AddProblem(&problems, "", reason::kInvalidConfig,
               std::string("spec.config must be an object, got ") + spec_config.type_name());
    throw ConfigError(std::move(problems));
  }
  config.source_name = RequiredString(spec_config, "sourceName", "sourceName",
                                      "the KubernetesCluster to read objects from", &problems);
  config.destination_name =
      RequiredString(spec_config, "destinationName", "destinationName",
                     "the KubernetesCluster to write objects to", &problems);
  if (!config.source_name.empty() && config.source_name == config.destination_name) {
    AddProblem(&problems, "destinationName", reason::kInvalidConfig,
               "must differ from sourceName: a cluster cannot be replicated onto itself");
  }
  if (Member(spec_config, "bucketName") != nullptr) {
    config.bucket_name = RequiredString(spec_config, "bucketName", "bucketName",
                                        "the Bucket that keeps the originals", &problems);
  }
  const json* replication = TypedMember(spec_config, "replication", json::value_t::object,
                                        "an object", "replication", &problems);
  if (replication != nullptr) {
    config.replication = ParseReplication(*replication, config.bucket_name.has_value(), &problems);
  } else if (Member(spec_config, "replication") == nullptr) {
    AddProblem(&problems, "replication", reason::kInvalidConfig,
               "required: the resources to replicate");
  }
  ParseTopLevelResyncPeriod(spec_config, replication, &config.replication, &problems);
  if (const json* observability = TypedMember(spec_config, "observability", json::value_t::object,
                                              "an object", "observability", &problems)) {
    config.observability = ParseObservability(*observability, &problems);
  }
  if (const json* components = Member(spec_config, "components")) {
    config.components = ParseComponentsConfig(*components, "components", &problems);
  }
  if (!problems.empty()) throw ConfigError(std::move(problems));
  return config;
}

}  // namespace ro::plugins::kubernetes

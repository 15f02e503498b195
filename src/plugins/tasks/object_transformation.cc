#include "ro/plugins/tasks/object_transformation.h"

#include <algorithm>
#include <map>
#include <stdexcept>
#include <utility>

#include <nlohmann/json.hpp>

#include "ro/common/backoff.h"
#include "ro/common/object_meta.h"
#include "ro/kube/client.h"
#include "ro/kube/discovery.h"
#include "ro/kube/errors.h"
#include "ro/plugins/bucket_encryption.h"
#include "ro/plugins/kubernetes/apply_order.h"
#include "ro/plugins/kubernetes/bucket_object.h"
#include "ro/plugins/kubernetes/json_patch.h"
#include "ro/plugins/s3_client.h"

namespace ro::plugins::tasks {

namespace {

using nlohmann::json;

// Prefix of kubesync's control label and annotations (control_metadata.h): they describe
// the destination copy, so a restore keeps the destination's values.
constexpr std::string_view kKubesyncPrefix = "kubesync.astronetes.io/";

bool IsControlKey(std::string_view key) { return key.rfind(kKubesyncPrefix, 0) == 0; }

// Lays `from`'s string map (labels or annotations) over `into`[key], skipping kubesync's
// control keys.
void OverlayMap(const json& from, const char* key, json& into_metadata) {
  const auto it = from.find(key);
  if (it == from.end() || !it->is_object() || it->empty()) return;
  json& target = into_metadata[key];
  if (!target.is_object()) target = json::object();
  for (const auto& [k, v] : it->items()) {
    if (!IsControlKey(k)) target[k] = v;
  }
}

// "apps/v1/deployments ns/name" (or "... name" for cluster-scoped objects).
std::string Describe(const kube::GroupVersionResource& gvr, const json& object) {
  const json& metadata = common::Metadata(object);
  const std::string ns = common::StringMember(metadata, "namespace");
  return gvr.ToString() + " " + (ns.empty() ? "" : ns + "/") + common::StringMember(metadata, "name");
}

// The log field destinationObject, shaped as the manual's sourceObject (6.2.4).
json ObjectField(const kube::GroupVersionResource& gvr, const json& object) {
  const json& metadata = common::Metadata(object);
  json field = {{"apiGroup", gvr.group},
                {"apiVersion", gvr.version},
                {"resource", gvr.resource},
                {"name", common::StringMember(metadata, "name")}};
  for (const char* key : {"namespace", "resourceVersion", "uid"}) {
    if (const std::string value = common::StringMember(metadata, key); !value.empty()) field[key] = value;
  }
  return field;
}

// The log form of an asset; JSON null when absent.
json AssetField(const AssetIdentity& asset) {
  if (asset.name.empty()) return nullptr;
  return {{"name", asset.name},
          {"namespace", asset.ns},
          {"resourceVersion", asset.resource_version},
          {"uid", asset.uid}};
}

// namespace name -> metadata.labels (JSON null when it has none).
json NamespaceLabels(kube::DynamicClient& client, int64_t page_size) {
  kube::ListOptions options;
  options.limit = page_size;
  const kube::ObjectList list = client.ListAll({"", "v1", "namespaces"}, "", options);
  json labels = json::object();
  for (const json& ns : list.items) {
    const json& metadata = common::Metadata(ns);
    const auto it = metadata.find("labels");
    labels[common::StringMember(metadata, "name")] = it != metadata.end() ? *it : json();
  }
  return labels;
}

const kube::GroupVersionResource kCustomResourceDefinitions{"apiextensions.k8s.io", "v1",
                                                            "customresourcedefinitions"};

// `object` without what ChangeBetween leaves out.
json ComparableForm(const json& object) {
  if (!object.is_object()) return object;
  json out = object;
  out.erase("status");
  const auto metadata = out.find("metadata");
  if (metadata == out.end() || !metadata->is_object()) return out;
  for (const char* key : {"resourceVersion", "generation", "managedFields", "creationTimestamp",
                          "uid", "selfLink"}) {
    metadata->erase(key);
  }
  const auto annotations = metadata->find("annotations");
  if (annotations != metadata->end() && annotations->is_object()) {
    annotations->erase(std::string(kTaskRunUidKey));
    annotations->erase(std::string(kTaskRunAnnotation));
    if (annotations->empty()) metadata->erase(annotations);
  }
  return out;
}

// True when CRD `crd` has the condition Established True.
bool Established(const json& crd) {
  const json status = crd.value("status", json::object());
  if (!status.is_object()) return false;
  for (const json& condition : status.value("conditions", json::array())) {
    if (condition.is_object() && condition.value("type", "") == "Established") {
      return condition.value("status", "") == "True";
    }
  }
  return false;
}

const kube::GroupVersionResource kEndpoints{"", "v1", "endpoints"};

bool IsWebhookConfiguration(const kube::GroupVersionResource& gvr) {
  return gvr.group == "admissionregistration.k8s.io" &&
         (gvr.resource == "mutatingwebhookconfigurations" ||
          gvr.resource == "validatingwebhookconfigurations");
}

bool IsIngress(const kube::GroupVersionResource& gvr) {
  return gvr.resource == "ingresses" && (gvr.group == "networking.k8s.io" || gvr.group == "extensions");
}

// True when Endpoints `endpoints` has a ready address.
bool HasReadyAddress(const json& endpoints) {
  for (const json& subset : endpoints.value("subsets", json::array())) {
    if (subset.is_object() && subset.value("addresses", json::array()).is_array() &&
        !subset.value("addresses", json::array()).empty()) {
      return true;
    }
  }
  return false;
}

}  // namespace

std::vector<kube::ObjectKey> IngressServices(const json& ingress) {
  std::vector<kube::ObjectKey> services;
  if (!ingress.is_object()) return services;
  const std::string ns = common::MetadataString(ingress, "namespace");
  const auto add = [&](const json& backend) {
    if (!backend.is_object()) return;
    std::string name;
    if (const auto service = backend.find("service"); service != backend.end() && service->is_object()) {
      name = service->value("name", "");  // networking.k8s.io/v1
    } else {
      name = backend.value("serviceName", "");  // v1beta1
    }
    const kube::ObjectKey key{ns, name};
    if (!name.empty() && std::find(services.begin(), services.end(), key) == services.end()) services.push_back(key);
  };
  const json& spec = common::Member(ingress, "spec");
  add(common::Member(spec, "defaultBackend"));
  add(common::Member(spec, "backend"));
  const json& rules = common::Member(spec, "rules");
  if (!rules.is_array()) return services;
  for (const json& rule : rules) {
    const json& paths = common::Member(common::Member(rule, "http"), "paths");
    if (!paths.is_array()) continue;
    for (const json& path : paths) add(common::Member(path, "backend"));
  }
  return services;
}

std::vector<kube::ObjectKey> WebhookServices(const json& configuration) {
  std::vector<kube::ObjectKey> services;
  if (!configuration.is_object()) return services;
  for (const json& webhook : configuration.value("webhooks", json::array())) {
    if (!webhook.is_object()) continue;
    const json client = webhook.value("clientConfig", json::object());
    if (!client.is_object() || !client.contains("service") || !client["service"].is_object()) continue;
    kube::ObjectKey key{client["service"].value("namespace", ""), client["service"].value("name", "")};
    if (key.name.empty()) continue;
    if (std::find(services.begin(), services.end(), key) == services.end()) services.push_back(key);
  }
  return services;
}

namespace {

constexpr std::string_view kRedacted = "(redacted)";
constexpr std::string_view kLastApplied = "kubectl.kubernetes.io/last-applied-configuration";

// Every member of `map` (data, stringData, annotations) that may hold a Secret's value.
void RedactMembers(json& map) {
  if (!map.is_object()) return;
  for (auto& [key, value] : map.items()) value = kRedacted;
}

// A (part of a) Secret object `value` rooted at JSON pointer `path`.
void RedactSecretValue(const std::string& path, json& value) {
  const auto under = [&path](std::string_view prefix) {
    return path == prefix || path.rfind(std::string(prefix) + "/", 0) == 0;
  };
  const std::string last_applied =
      (json::json_pointer("/metadata/annotations") / std::string(kLastApplied)).to_string();
  if (under("/data") || under("/stringData") || path == last_applied) {
    if (value.is_object() && (path == "/data" || path == "/stringData")) {
      RedactMembers(value);
    } else {
      value = kRedacted;
    }
    return;
  }
  if (!value.is_object()) return;
  if (path.empty()) {
    for (const char* key : {"data", "stringData"}) {
      if (value.contains(key)) RedactMembers(value[key]);
    }
  }
  json* annotations = nullptr;
  if (path.empty() && value.contains("metadata") && value["metadata"].is_object()) {
    annotations = value["metadata"].contains("annotations") ? &value["metadata"]["annotations"] : nullptr;
  } else if (path == "/metadata" && value.contains("annotations")) {
    annotations = &value["annotations"];
  } else if (path == "/metadata/annotations") {
    annotations = &value;
  }
  if (annotations != nullptr && annotations->is_object() && annotations->contains(std::string(kLastApplied))) {
    (*annotations)[std::string(kLastApplied)] = kRedacted;
  }
}

}  // namespace

json RedactSecretValues(const kube::GroupVersionResource& gvr, json patch) {
  if (!gvr.group.empty() || gvr.resource != "secrets" || !patch.is_array()) return patch;
  for (json& op : patch) {
    if (!op.is_object() || !op.contains("value")) continue;
    RedactSecretValue(op.value("path", ""), op["value"]);
  }
  return patch;
}

json ChangeBetween(const json& before, const json& after) {
  return json::diff(ComparableForm(before), ComparableForm(after));
}

std::string_view ToString(PlannedAction action) {
  switch (action) {
    case PlannedAction::kCreate: return "Create";
    case PlannedAction::kPatch: return "Patch";
    case PlannedAction::kUnchanged: return "Unchanged";
    case PlannedAction::kSkip: return "Skip";
    case PlannedAction::kFail: return "Fail";
  }
  return "Fail";
}

bool ChangedByRun(const json& object, std::string_view uid) {
  const json& metadata = common::Metadata(object);
  const auto annotations = metadata.find("annotations");
  if (annotations == metadata.end() || !annotations->is_object()) return false;
  const auto it = annotations->find(kTaskRunUidKey);
  return it != annotations->end() && it->is_string() && it->get<std::string>() == uid;
}

json RestoreFromOriginal(const json& current, const json& original) {
  json out = current;
  if (!original.is_object()) return out;
  json patch = json::object();
  for (const auto& [key, value] : original.items()) {
    if (key == "apiVersion" || key == "kind" || key == "metadata" || key == "status") continue;
    patch[key] = value;
  }
  out.merge_patch(patch);
  const json& original_metadata = common::Metadata(original);
  json& metadata = out["metadata"];
  if (!metadata.is_object()) metadata = json::object();
  OverlayMap(original_metadata, "labels", metadata);
  OverlayMap(original_metadata, "annotations", metadata);
  return out;
}

json TransformObject(const json& current, const TransformationResource& resource,
                     const json* original, const RunIdentity& run) {
  json out = original != nullptr ? RestoreFromOriginal(current, *original) : current;
  resource.patch.Apply(out, resource.patch_options);
  json& metadata = out["metadata"];
  if (!metadata.is_object()) metadata = json::object();
  json& annotations = metadata["annotations"];
  if (!annotations.is_object()) annotations = json::object();
  annotations[std::string(kTaskRunUidKey)] = run.uid;
  annotations[std::string(kTaskRunAnnotation)] = run.ns + "/" + run.name;
  return out;
}

std::string TransformationReport::Summary() const {
  std::string text;
  if (dry_run) {
    int64_t unchanged = 0;
    for (const PlannedChange& change : planned) {
      if (change.action == PlannedAction::kUnchanged) ++unchanged;
    }
    text = "Dry run, nothing changed: " + std::to_string(patched) +
           (patched == 1 ? " object" : " objects") + " would be " + verb;
    if (planned_omitted == 0) {
      text += " (" + std::to_string(patched - unchanged) + " changed, " +
              std::to_string(unchanged) + " only annotated)";
    }
  } else {
    text = std::to_string(patched) + (patched == 1 ? " object " : " objects ") + verb;
  }
  if (skipped > 0) {
    text += ", " + std::to_string(skipped) + " left as they are (they exist)";
  }
  if (failed > 0) {
    text += ", " + std::to_string(failed) + (dry_run ? " would fail" : " failed");
    for (std::size_t i = 0; i < failures.size(); ++i) {
      text += (i == 0 ? ": " : "; ") + failures[i].object + ": " + failures[i].error;
    }
    if (static_cast<int64_t>(failures.size()) < failed) {
      text += "; and " + std::to_string(failed - static_cast<int64_t>(failures.size())) + " more";
    }
  }
  if (gone > 0) text += ", " + std::to_string(gone) + " deleted by someone else meanwhile";
  for (const std::string& error : resource_errors) text += "; " + error;
  return text;
}

ObjectTransformer::ObjectTransformer(TransformationConfig config, RunIdentity run,
                                     TransformationTarget target, log::Logger log,
                                     kube::Clock& clock, TransformerOptions options)
    : config_(std::move(config)),
      run_(std::move(run)),
      target_(std::move(target)),
      log_(std::move(log)),
      clock_(clock),
      options_(std::move(options)) {
  if (target_.destination == nullptr) {
    throw std::invalid_argument("ObjectTransformer: no destination client");
  }
  if (config_.UsesOriginals() && (!target_.read_original || !config_.live_synchronization)) {
    throw std::invalid_argument(
        "ObjectTransformer: fromOriginal needs a bucket reader and the LiveSynchronization");
  }
  if (options_.max_attempts < 1) {
    throw std::invalid_argument("ObjectTransformer: max_attempts must be >= 1");
  }
}

TransformationReport ObjectTransformer::Run(std::stop_token stop) {
  TransformationReport report;
  const bool needs_namespaces =
      std::any_of(config_.resources.begin(), config_.resources.end(),
                  [](const TransformationResource& r) { return r.filter.namespace_selector(); });
  json namespaces = json::object();
  if (needs_namespaces) {
    try {
      namespaces = NamespaceLabels(*target_.destination, options_.list_page_size);
    } catch (const std::exception& e) {
      log_.Error("error getting namespace from cluster",
                 {{"destinationCluster", AssetField(target_.destination_cluster)}, {"error", e.what()}});
      throw;
    }
  }
  report.dry_run = options_.dry_run;
  std::vector<kube::GroupVersionResource> gvrs;
  for (const TransformationResource& resource : config_.resources) gvrs.push_back(resource.gvr);
  std::vector<std::size_t> order(gvrs.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  if (config_.order == ResourceOrder::kDependencies) order = kubernetes::DependencyOrder(gvrs);
  for (const std::size_t i : order) {
    if (stop.stop_requested()) break;
    RunResource(config_.resources[i], namespaces, &report, stop);
  }
  return report;
}

void ObjectTransformer::Plan(TransformationReport* report, const kube::GroupVersionResource& gvr,
                             const json& object, const ObjectResult& result,
                             const std::string& note) const {
  PlannedChange change;
  change.resource = gvr.ToString();
  change.ns = common::StringMember(common::Metadata(object), "namespace");
  change.name = common::StringMember(common::Metadata(object), "name");
  switch (result.kind) {
    case ObjectResult::Kind::kChanged:
      change.action = result.patch == "[]" ? PlannedAction::kUnchanged : PlannedAction::kPatch;
      change.patch = result.patch;
      change.message = note;
      break;
    case ObjectResult::Kind::kGone:
      change.action = PlannedAction::kSkip;
      change.message = "deleted by someone else during the dry run";
      break;
    case ObjectResult::Kind::kFailed:
      change.action = PlannedAction::kFail;
      change.message = result.error;
      break;
  }
  AddPlannedChange(report, std::move(change), options_.max_planned_bytes);
}

void AddPlannedChange(TransformationReport* report, PlannedChange change, std::size_t max_bytes) {
  // 64: the entry's other fields as JSON.
  const std::size_t bytes = change.patch.size() + change.message.size() + change.name.size() +
                            change.ns.size() + change.resource.size() + 64;
  if (report->planned_omitted > 0 || report->planned_bytes + bytes > max_bytes) {
    ++report->planned_omitted;
    return;
  }
  report->planned_bytes += bytes;
  report->planned.push_back(std::move(change));
}

std::vector<std::string> WaitEstablished(kube::DynamicClient& client, const std::vector<std::string>& names,
                                         kube::Clock& clock, std::chrono::milliseconds timeout,
                                         std::chrono::milliseconds poll, std::stop_token stop) {
  std::vector<std::string> errors;
  const auto deadline = clock.SteadyNow() + timeout;
  for (const std::string& name : names) {
    std::string last;
    while (true) {
      try {
        if (Established(client.Get(kCustomResourceDefinitions, "", name))) break;
        last = "not Established yet";
      } catch (const std::exception& e) {
        last = e.what();
      }
      if (clock.SteadyNow() >= deadline || !clock.SleepFor(poll, stop)) {
        errors.push_back("CustomResourceDefinition " + name + " is not Established: " + last);
        break;
      }
    }
  }
  return errors;
}

std::string ObjectTransformer::EndpointProblem(const kube::ObjectKey& service) const {
  try {
    return HasReadyAddress(target_.destination->Get(kEndpoints, service.ns, service.name)) ? "" : "no ready endpoint";
  } catch (const std::exception& e) {
    return kube::IsNotFound(e) ? std::string("no Endpoints") : std::string(e.what());
  }
}

std::string ObjectTransformer::WaitForWebhookServices(const json& configuration, bool wait,
                                                      std::stop_token stop) {
  const auto deadline = clock_.SteadyNow() + options_.endpoints_timeout;
  for (const kube::ObjectKey& service : WebhookServices(configuration)) {
    bool logged = false;
    while (true) {
      const std::string last = EndpointProblem(service);
      if (last.empty()) break;
      if (!wait) {
        return "Service " + service.ToString() + " has " + last +
               " now: a real run waits for one before writing this configuration";
      }
      if (!logged) {
        log_.Info("waiting for the webhook service to have a ready endpoint",
                  {{"destinationCluster", AssetField(target_.destination_cluster)},
                   {"webhookConfiguration", common::MetadataString(configuration, "name")},
                   {"service", service.ToString()},
                   {"error", last}});
        logged = true;
      }
      if (clock_.SteadyNow() >= deadline || !clock_.SleepFor(options_.endpoints_poll, stop)) {
        return "Service " + service.ToString() + " called by its webhooks has " + last +
               ": not written, so that admission is not sent to nothing (scale up its "
               "workload and run the Task again)";
      }
    }
  }
  return "";
}

std::string ObjectTransformer::UnreadyIngressBackends(const json& ingress) const {
  std::string note;
  for (const kube::ObjectKey& service : IngressServices(ingress)) {
    const std::string problem = EndpointProblem(service);
    if (problem.empty()) continue;
    note += (note.empty() ? "" : "; ") + ("Service " + service.ToString() + " has " + problem);
  }
  if (note.empty()) return "";
  return note + " now: its routes answer 503 until the Service has a ready endpoint (written without waiting)";
}

void ObjectTransformer::RunResource(const TransformationResource& resource, const json& namespaces,
                                    TransformationReport* report, std::stop_token stop) {
  const kube::GroupVersionResource& gvr = resource.gvr;
  const std::string entry =
      "resources[" + std::to_string(resource.index) + "] (" + gvr.ToString() + ")";
  const json cluster = AssetField(target_.destination_cluster);
  // `report->resources` grows only here: the reference is stable for this entry.
  ResourceReport& counts = report->resources.emplace_back();
  counts.index = resource.index;
  counts.gvr = gvr;
  std::optional<kube::ApiResource> api;
  try {
    api = target_.destination->discovery().Find(gvr);
  } catch (const std::exception& e) {
    log_.Error("error reading resources for group version",
               {{"destinationCluster", cluster}, {"resource", gvr.ToString()}, {"error", e.what()}});
    if (kube::IsRetryable(e)) throw;
    report->resource_errors.push_back(entry + ": discovery failed: " + e.what());
    return;
  }
  if (!api) {
    log_.Info("resource group version not found",
              {{"destinationCluster", cluster}, {"resource", gvr.ToString()}});
    report->resource_errors.push_back(entry + ": not served by the destination cluster");
    return;
  }

  kube::ListOptions options;
  options.limit = options_.list_page_size;
  if (const auto& selector = resource.filter.selector()) {
    if (selector->MatchesNothing()) return;
    options.label_selector = selector->ToString();
  }
  log_.Info("listing objects in cluster",
            {{"destinationCluster", cluster}, {"resource", gvr.ToString()}});
  kube::ObjectList list;
  try {
    list = target_.destination->ListAll(gvr, "", options);
  } catch (const std::exception& e) {
    log_.Error("error listing objects in cluster",
               {{"destinationCluster", cluster}, {"resource", gvr.ToString()}, {"error", e.what()}});
    if (kube::IsRetryable(e)) throw;
    report->resource_errors.push_back(entry + ": list failed: " + e.what());
    return;
  }
  log_.Info("listed objects in cluster", {{"destinationCluster", cluster},
                                          {"resource", gvr.ToString()},
                                          {"objects", list.items.size()}});
  counts.listed = true;
  counts.objects = static_cast<int64_t>(list.items.size());
  if (const auto& namespace_selector = resource.filter.namespace_selector()) {
    int64_t selected = 0;
    for (const auto& [name, labels] : namespaces.items()) {
      if (namespace_selector->Matches(labels)) ++selected;
    }
    counts.namespaces_selected = selected;
  }

  std::vector<std::string> crds_written;
  for (json& item : list.items) {
    if (stop.stop_requested()) return;
    const json* labels = nullptr;
    if (api->namespaced) {
      const auto it = namespaces.find(common::StringMember(common::Metadata(item), "namespace"));
      if (it != namespaces.end()) labels = &*it;
    }
    if (!resource.filter.Matches(item, labels)) continue;
    ++counts.selected;
    const std::string description = Describe(gvr, item);
    std::string note;
    if (IsWebhookConfiguration(gvr)) {
      note = WaitForWebhookServices(item, !options_.dry_run, stop);
      if (!note.empty() && !options_.dry_run) {
        log_.Error("error updating object in cluster", {{"destinationCluster", cluster},
                                                        {"destinationObject", ObjectField(gvr, item)},
                                                        {"error", note}});
        Fail(report, description, note);
        continue;
      }
    } else if (IsIngress(gvr)) {
      // Routing comes after the workloads (apply_order.h) but is not held for them: an
      // Ingress written later would route nothing sooner, and holding it would delay every
      // other route behind one slow backend. Said in the log and the dry-run report.
      note = UnreadyIngressBackends(item);
      if (!note.empty() && !options_.dry_run) {
        log_.Warn("ingress backend not ready", {{"destinationCluster", cluster},
                                                 {"destinationObject", ObjectField(gvr, item)},
                                                 {"error", note}});
      }
    }
    const ObjectResult result =
        ChangeObject(resource, options_.dry_run ? item : std::move(item), stop);
    if (options_.dry_run) Plan(report, gvr, item, result, note);
    switch (result.kind) {
      case ObjectResult::Kind::kChanged:
        ++report->patched;
        ++counts.patched;
        if (gvr.group == kCustomResourceDefinitions.group &&
            gvr.resource == kCustomResourceDefinitions.resource && !options_.dry_run) {
          crds_written.push_back(result.name);
        }
        break;
      case ObjectResult::Kind::kGone:
        ++report->gone;
        break;
      case ObjectResult::Kind::kFailed:
        Fail(report, description, result.error);
        break;
    }
  }
  // A custom resource of a CRD just written is only served once the CRD is Established.
  if (!crds_written.empty()) {
    for (std::string& error : WaitEstablished(*target_.destination, crds_written, clock_, options_.established_timeout,
                                              options_.established_poll, stop)) {
      report->resource_errors.push_back(std::move(error));
    }
  }
}

void ObjectTransformer::Fail(TransformationReport* report, std::string object,
                             std::string error) const {
  ++report->failed;
  if (report->failures.size() < options_.max_reported_failures) {
    report->failures.push_back({std::move(object), std::move(error)});
  }
}

std::optional<json> ObjectTransformer::ReadOriginal(const TransformationResource& resource,
                                                    const json& object) {
  const json& metadata = common::Metadata(object);
  const std::string path = kubernetes::BucketObjectPath(
      config_.live_synchronization->ns, config_.live_synchronization->name, resource.gvr,
      common::StringMember(metadata, "namespace"), common::StringMember(metadata, "name"));
  const json fields = {{"bucket", AssetField(target_.bucket)}, {"bucketObject", {{"path", path}}}};
  log_.Debug("getting object from bucket", fields);
  std::optional<std::string> body;
  try {
    body = target_.read_original(path);
  } catch (const std::exception& e) {
    json error_fields = fields;
    error_fields["error"] = e.what();
    log_.Error("error getting object from bucket", error_fields);
    throw;
  }
  if (!body) return std::nullopt;
  log_.Info("object got from bucket", fields);
  return json::parse(*body);
}

ObjectTransformer::ObjectResult ObjectTransformer::ChangeObject(
    const TransformationResource& resource, json current, std::stop_token stop) {
  using Kind = ObjectResult::Kind;
  const auto failed = [](std::string error) {
    return ObjectResult{Kind::kFailed, std::move(error), "[]", ""};
  };
  const ObjectResult changed{Kind::kChanged, "", "[]", common::StringMember(common::Metadata(current), "name")};
  const ObjectResult gone{Kind::kGone, "", "[]", ""};
  const kube::GroupVersionResource& gvr = resource.gvr;
  const std::string ns = common::StringMember(common::Metadata(current), "namespace");
  const std::string name = common::StringMember(common::Metadata(current), "name");
  const json cluster = AssetField(target_.destination_cluster);
  std::optional<json> original;
  bool original_read = false;
  std::string last_error;
  common::Backoff backoff(options_.initial_backoff, options_.max_backoff, /*jitter=*/0);
  auto wait = [&] { return clock_.SleepFor(backoff.Next(), stop); };

  for (int attempt = 1; attempt <= options_.max_attempts; ++attempt) {
    if (ChangedByRun(current, run_.uid)) {
      log_.Debug("object already changed by this run",
                 {{"destinationCluster", cluster}, {"destinationObject", ObjectField(gvr, current)}});
      return changed;
    }
    if (resource.from_original && !original_read) {
      try {
        original = ReadOriginal(resource, current);
        original_read = true;
      } catch (const S3Error& e) {
        if (!e.retryable()) return failed(std::string("reading the original from the bucket: ") + e.what());
        last_error = std::string("reading the original from the bucket: ") + e.what();
        if (!wait()) return failed("interrupted by shutdown");
        continue;
      } catch (const BucketEncryptionError& e) {
        // Wrong or missing key, or a changed object: never retried, never read as JSON.
        return failed(std::string("reading the original from the bucket: ") + e.what());
      } catch (const json::exception& e) {
        return failed(std::string("the original in the bucket is not JSON: ") + e.what());
      }
      if (!original) {
        return failed("no original in the bucket at " +
                      kubernetes::BucketObjectPath(config_.live_synchronization->ns,
                                                   config_.live_synchronization->name, gvr, ns,
                                                   name));
      }
    }

    json desired;
    try {
      desired = TransformObject(current, resource, original ? &*original : nullptr, run_);
    } catch (const kubernetes::TransformError& e) {
      log_.Error("error transforming object", {{"destinationCluster", cluster},
                                               {"destinationObject", ObjectField(gvr, current)},
                                               {"error", e.what()}});
      return failed(std::string("patch: ") + e.what());
    }

    const json object_field = ObjectField(gvr, current);
    log_.Debug("updating object in cluster",
               {{"destinationCluster", cluster}, {"destinationObject", object_field}});
    try {
      kube::WriteOptions write;
      write.field_manager = options_.field_manager;
      write.dry_run = options_.dry_run;
      // A dry run reports the change, so it reads the whole answer; otherwise only the
      // log line reads it (its metadata).
      write.metadata_only = !options_.dry_run;
      const json updated = target_.destination->Update(gvr, ns, desired, write);
      if (options_.dry_run) {
        ObjectResult planned = changed;
        const json patch = RedactSecretValues(gvr, ChangeBetween(current, updated));
        planned.patch = patch.dump();
        log_.Info("dry run: object would be updated in cluster",
                  {{"destinationCluster", cluster}, {"destinationObject", object_field}, {"patch", patch}});
        return planned;
      }
      log_.Info("object updated in cluster",
                {{"destinationCluster", cluster}, {"destinationObject", ObjectField(gvr, updated)}});
      return changed;
    } catch (const kube::ApiError& e) {
      last_error = e.what();
      if (kube::IsNotFound(e)) {
        log_.Info("object not found in cluster",
                  {{"destinationCluster", cluster}, {"destinationObject", object_field}});
        return gone;
      }
      if (!kube::IsConflict(e) && !kube::IsRetryable(e)) {
        log_.Error("error updating object in cluster", {{"destinationCluster", cluster},
                                                        {"destinationObject", object_field},
                                                        {"error", e.what()}});
        return failed(last_error);
      }
      if (kube::IsConflict(e)) {
        // Someone wrote the object since it was read: read it again and redo the change.
        try {
          current = target_.destination->Get(gvr, ns, name);
          continue;
        } catch (const std::exception& get_error) {
          if (kube::IsNotFound(get_error)) {
            log_.Info("object not found in cluster",
                      {{"destinationCluster", cluster}, {"destinationObject", object_field}});
            return gone;
          }
          last_error = get_error.what();
        }
      }
    } catch (const kube::TransportError& e) {
      last_error = e.what();
    }
    log_.Warn("error updating object in cluster", {{"destinationCluster", cluster},
                                                   {"destinationObject", object_field},
                                                   {"attempt", attempt},
                                                   {"error", last_error}});
    if (attempt < options_.max_attempts && !wait()) return failed("interrupted by shutdown");
  }
  return failed("gave up after " + std::to_string(options_.max_attempts) + " attempts: " +
                last_error);
}

}  // namespace ro::plugins::tasks

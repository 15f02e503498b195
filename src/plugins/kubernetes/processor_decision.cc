#include "ro/plugins/kubernetes/processor_decision.h"

#include <utility>

#include <nlohmann/json.hpp>

#include "ro/plugins/kubernetes/bucket_object.h"
#include "ro/plugins/kubernetes/sanitizer.h"

namespace ro::plugins::kubernetes {
namespace {

using nlohmann::json;

std::string StringMember(const json* object, std::string_view key) {
  if (object == nullptr || !object->is_object()) return "";
  const auto it = object->find(key);
  return it != object->end() && it->is_string() ? it->get<std::string>() : "";
}

// Replaces `object` with the delete stub the synchronizer checks (see header).
void MakeDeleteStub(json& object, const ProcessorDecision& d, const StampInfo& stamp) {
  json stub = json::object();
  if (object.is_object()) {
    for (const char* key : {"apiVersion", "kind"}) {
      const auto it = object.find(key);
      if (it != object.end()) stub[key] = std::move(*it);
    }
  }
  json& metadata = stub["metadata"];
  metadata["name"] = d.name;
  if (!d.ns.empty()) metadata["namespace"] = d.ns;
  Stamp(stub, stamp, SourceVersion{d.source_uid, d.source_resource_version, {}});
  object = std::move(stub);
}

void SetBucket(ProcessorDecision& d, BucketAction action, const StampInfo& stamp,
               const kube::GroupVersionResource& gvr) {
  d.bucket_action = action;
  d.bucket_path = BucketObjectPath(stamp.live_sync_namespace, stamp.live_sync_name, gvr, d.ns, d.name);
}

}  // namespace

const ResourceRule* SelectRule(const LiveSyncConfig& config, const kube::GroupVersionResource& gvr,
                               const json& object, const json* namespace_labels) {
  if (!ShouldReplicate(gvr, object)) return nullptr;
  return config.Route(gvr, object, namespace_labels);
}

ProcessorDecision DecideProcessing(const LiveSyncConfig& config, const StampInfo& stamp,
                                   const ProcessorEvent& event) {
  ProcessorDecision d;
  json& object = event.object;
  if (!config.Replicates(event.gvr)) {
    d.reason = "resource-not-replicated";
    return d;
  }
  const json* metadata = nullptr;
  if (object.is_object()) {
    const auto it = object.find("metadata");
    if (it != object.end() && it->is_object()) metadata = &*it;
  }
  d.name = StringMember(metadata, "name");
  if (d.name.empty()) {
    d.reason = "invalid-object";
    return d;
  }
  d.ns = StringMember(metadata, "namespace");
  d.source_uid = StringMember(metadata, "uid");
  d.source_resource_version = StringMember(metadata, "resourceVersion");
  if (!ShouldReplicate(event.gvr, object)) {
    d.reason = "not-replicable";
    return d;
  }
  const bool has_bucket = config.bucket_name.has_value();

  if (event.type == EventType::kDelete) {
    d.action = ProcessorAction::kEnsureAbsent;
    d.reason = "source-deleted";
    if (has_bucket) SetBucket(d, BucketAction::kDelete, stamp, event.gvr);
    MakeDeleteStub(object, d, stamp);
    return d;
  }

  const ResourceRule* rule = config.Route(event.gvr, object, event.namespace_labels);
  if (rule == nullptr) {
    d.action = ProcessorAction::kEnsureAbsent;
    d.reason = "filtered-out";
    if (has_bucket && !event.resync) SetBucket(d, BucketAction::kDelete, stamp, event.gvr);
    MakeDeleteStub(object, d, stamp);
    return d;
  }

  d.rule = rule;
  if (has_bucket) {
    SetBucket(d, BucketAction::kPut, stamp, event.gvr);
    d.bucket_body = BucketObjectBody(event.gvr, object, stamp);
  }
  if (rule->transformation) rule->transformation->patch.Apply(object, rule->transformation->options);
  Sanitize(event.gvr, object);
  Stamp(object, stamp,
        SourceVersion{d.source_uid, d.source_resource_version, rule->transformation_fingerprint});
  d.action = ProcessorAction::kUpsert;
  d.reason = "matched";
  return d;
}

}  // namespace ro::plugins::kubernetes

// The processor's per-event decision as a pure function (docs/kubesync.md, processor):
// filter -> bucket action on the original -> transform -> sanitize -> stamp. The processor
// component decodes an event, calls DecideProcessing, then performs the bucket action and
// publishes the resulting object on the apply subject.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "ro/kube/gvr.h"
#include "ro/plugins/kubernetes/control_metadata.h"
#include "ro/plugins/kubernetes/live_sync_config.h"

namespace ro::plugins::kubernetes {

enum class EventType { kUpsert, kDelete };

// One event of the events subject. `object` is consumed: DecideProcessing rewrites it in
// place (no deep copy unless a bucket is configured), see ProcessorDecision.
struct ProcessorEvent {
  EventType type = EventType::kUpsert;
  // From a periodic or relist resync (envelope "resync").
  bool resync = false;
  const kube::GroupVersionResource& gvr;
  // Upsert: the full source object. Delete: its last known state (or a
  // SourceStubFromStamped for pruning deletes): name, namespace, uid, resourceVersion.
  nlohmann::json& object;
  // metadata.labels of the object's namespace (JSON null = no labels); nullptr for
  // cluster-scoped objects or an unknown namespace.
  const nlohmann::json* namespace_labels = nullptr;
};

enum class ProcessorAction {
  kDrop,          // nothing to publish (ack only)
  kEnsureAbsent,  // publish a delete: `object` is the delete stub
  kUpsert,        // publish an upsert: `object` is the destination form
};

enum class BucketAction { kNone, kPut, kDelete };

// Reasons (static strings, usable as metric labels):
//   kDrop:         "resource-not-replicated" (no resources[] entry for the GVR),
//                  "not-replicable" (ShouldReplicate said no), "invalid-object" (no name)
//   kEnsureAbsent: "source-deleted", "filtered-out" (an upsert no entry's filter matches)
//   kUpsert:       "matched"
struct ProcessorDecision {
  ProcessorAction action = ProcessorAction::kDrop;
  std::string_view reason;
  // The entry that matched (kUpsert), else nullptr. Points into the config.
  const ResourceRule* rule = nullptr;

  // Source identity, for logs (manual 6.2.4 sourceObject) and delete preconditions.
  std::string name;
  std::string ns;  // "" for cluster-scoped
  std::string source_uid;
  std::string source_resource_version;

  // With spec.config.bucketName: kPut the original (BucketObjectBody) on a matching
  // upsert; kDelete on a delete or a filtered-out live upsert. Filtered-out resync
  // upserts do not touch the bucket (the reconciler's pruning delete removes a stale
  // original; this avoids a bucket DELETE per unselected object every resyncPeriod).
  BucketAction bucket_action = BucketAction::kNone;
  std::string bucket_path;  // BucketObjectPath; set for kPut and kDelete
  std::string bucket_body;  // kPut: BucketObjectBody
};

// The entry that selects `object` for replication: nullptr when ShouldReplicate says no
// or no entry's filter matches, else LiveSyncConfig::Route. The one definition of
// "matching" shared by the processor and the reconciler (which prunes managed objects
// whose source is gone or no longer selected).
const ResourceRule* SelectRule(const LiveSyncConfig& config, const kube::GroupVersionResource& gvr,
                               const nlohmann::json& object, const nlohmann::json* namespace_labels);

// Decides what to do with one event; afterwards `event.object` holds:
//   kUpsert: the destination object (transformed with the matched entry's patch,
//            sanitized, stamped with the source uid/resourceVersion and the entry's
//            transformation fingerprint);
//   kEnsureAbsent: a delete stub {apiVersion, kind, metadata: {name, namespace, labels:
//            {managed-by}, annotations: {control annotations with the source uid and
//            resourceVersion}}} for the synchronizer's uid/resourceVersion checks;
//   kDrop:   unspecified.
// Deletes of a replicated GVR are never filtered: the destination copy must go even if
// the object stopped matching before it was deleted (the synchronizer only deletes
// objects this LiveSynchronization manages).
// Throws TransformError when the entry's patch cannot be applied (a permanent failure
// for this object version).
ProcessorDecision DecideProcessing(const LiveSyncConfig& config, const StampInfo& stamp,
                                   const ProcessorEvent& event);

}  // namespace ro::plugins::kubernetes

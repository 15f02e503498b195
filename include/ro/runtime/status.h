// Status writes for reconcilers: compute the desired status, write it only when it
// differs from what the object carries, and tell people about condition changes.
//
//   - UpdateStatusIfChanged: PUT .../status with the resourceVersion that was read, only
//     when the status differs; Conflict (409) is reported, not thrown, so the reconciler
//     can return Result{.requeue = true}.
//   - StatusWriter::ApplyCondition: sets one condition (lastTransitionTime semantics of
//     conditions.h), merges status fields and observedGeneration, writes when changed,
//     and on every change of the condition (status, reason or message) records an Event
//     (Normal when True, Warning otherwise; reason = the condition's reason) and a log
//     line naming the object.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <map>
#include <optional>
#include <string>

#include "ro/common/log.h"
#include "ro/kube/clock.h"
#include "ro/runtime/conditions.h"
#include "ro/runtime/finalizers.h"

namespace ro::kube {
class DynamicClient;
class EventRecorder;
struct GroupVersionResource;
}  // namespace ro::kube

namespace ro::runtime {

// Writes `desired_status` as `object`'s status when it differs from object["status"].
// `object` is the state the decision was based on (its metadata.resourceVersion is the
// precondition). Returns kUnchanged (no request), kWritten or kConflict. Throws ApiError
// for other failures (NotFound when the object was deleted meanwhile) / TransportError.
WriteOutcome UpdateStatusIfChanged(kube::DynamicClient& client,
                                   const kube::GroupVersionResource& gvr,
                                   const nlohmann::json& object,
                                   const nlohmann::json& desired_status);

// The object's identity for log lines: {"apiVersion","kind","namespace","name","uid",
// "resourceVersion"} (absent fields omitted).
nlohmann::json ObjectRef(const nlohmann::json& object);

// Top-level status fields besides conditions and observedGeneration, all strings in our
// CRDs ("server", "serverVersion", "endpoint", ...): a value sets the field, nullopt
// removes it.
using StatusFields = std::map<std::string, std::optional<std::string>>;

// Thread-safe (stateless apart from its references).
class StatusWriter {
 public:
  // Everything must outlive the writer. `log` carries the controller's base fields.
  StatusWriter(kube::DynamicClient& client, kube::EventRecorder& recorder, log::Logger log,
               kube::Clock& clock = kube::DefaultClock());

  // Sets `condition` (its observed_generation is replaced by the object's
  // metadata.generation), status.observedGeneration and `fields` on a copy of
  // object["status"],
  // then UpdateStatusIfChanged. On kWritten with a changed condition, records the Event
  // and logs. Throws what UpdateStatusIfChanged throws.
  WriteOutcome ApplyCondition(const kube::GroupVersionResource& gvr, const nlohmann::json& object,
                              Condition condition, const StatusFields& fields = {});

 private:
  kube::DynamicClient& client_;
  kube::EventRecorder& recorder_;
  const log::Logger log_;
  kube::Clock& clock_;
};

}  // namespace ro::runtime

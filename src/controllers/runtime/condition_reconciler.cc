#include "ro/runtime/condition_reconciler.h"

#include <utility>

#include <nlohmann/json.hpp>

#include "ro/kube/store.h"

namespace ro::runtime {

ConditionReconciler::ConditionReconciler(ObjectType type, const kube::Store& store,
                                         StatusWriter writer)
    : type_(std::move(type)), store_(store), writer_(std::move(writer)) {}

Result ConditionReconciler::Reconcile(const Request& request, std::stop_token stop) {
  const kube::ObjectPtr object = store_.Get(request.ToString());
  if (!object) return {};  // deleted: nothing of ours outlives it
  const nlohmann::json& metadata = object->at("metadata");
  if (metadata.contains("deletionTimestamp")) return {};  // being deleted: no finalizer of ours

  Observation observation = Observe(*object, stop);
  if (stop.stop_requested()) return {};  // a check cut short by shutdown proves nothing

  Condition ready;
  ready.type = std::string(kReadyCondition);
  ready.status = observation.status;
  ready.reason = std::move(observation.reason);
  ready.message = std::move(observation.message);
  const WriteOutcome outcome =
      writer_.ApplyCondition(type_.gvr, *object, std::move(ready), observation.fields);
  if (outcome == WriteOutcome::kConflict) return Result::Requeue();
  return Result::RequeueAfter(observation.recheck_after);
}

}  // namespace ro::runtime

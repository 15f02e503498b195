#include "placeholder/placeholder_controller.h"

#include <memory>
#include <utility>

#include <nlohmann/json.hpp>

#include "ro/common/log.h"
#include "ro/kube/informer.h"
#include "ro/runtime/condition_reconciler.h"
#include "ro/runtime/informer_cache.h"
#include "ro/runtime/manager.h"

namespace ro::controllers {

namespace {

constexpr const char* kAutomationGroup = "automation.astronetes.io";
constexpr const char* kVersion = "v1alpha1";

PlaceholderKind Kind(std::string resource, std::string kind, std::string controller,
                     std::string message) {
  return PlaceholderKind{
      runtime::ObjectType{kube::GroupVersionResource{kAutomationGroup, kVersion, std::move(resource)},
                          std::move(kind)},
      std::move(controller), std::move(message)};
}

class PlaceholderReconciler final : public runtime::ConditionReconciler {
 public:
  PlaceholderReconciler(const PlaceholderKind& kind, const kube::Store& store,
                        runtime::StatusWriter writer)
      : ConditionReconciler(kind.type, store, std::move(writer)), message_(kind.message) {}

 protected:
  runtime::Observation Observe(const nlohmann::json& /*object*/,
                               std::stop_token /*stop*/) override {
    runtime::Observation observation;
    observation.status = runtime::ConditionStatus::kFalse;
    observation.reason = kReasonNotImplemented;
    observation.message = message_;
    return observation;  // nothing changes until the object does: no periodic re-check
  }

 private:
  const std::string message_;
};

}  // namespace

PlaceholderKind SynchronizationPlanPlaceholder() {
  return Kind("synchronizationplans", "SynchronizationPlan", "synchronizationplan",
              "This build does not reconcile SynchronizationPlan objects yet: scheduled "
              "synchronization (manual sections 2.1 and 8.3) arrives with the "
              "SynchronizationPlan controller feature. No Synchronization is scheduled.");
}

void SetupPlaceholderController(runtime::Manager& manager, const PlaceholderKind& kind) {
  const kube::Store& store = manager.cache().Get(kind.type.gvr).store();
  runtime::StatusWriter writer(manager.client(), manager.recorder(),
                               log::Logger(nlohmann::json{{"controller", kind.controller}}),
                               manager.clock());
  manager
      .NewController(kind.controller,
                     std::make_unique<PlaceholderReconciler>(kind, store, std::move(writer)))
      .For(kind.type, runtime::OnGenerationChange());
}

}  // namespace ro::controllers

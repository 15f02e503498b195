// synchronizationplan-controller: reconciles SynchronizationPlan objects (automation.astronetes.io/v1alpha1).
// Until the real controller lands it runs the NotImplemented placeholder
// (placeholder/placeholder_controller.h).
#include "placeholder/placeholder_controller.h"
#include "ro/runtime/manager.h"

int main(int argc, char** argv) {
  return ro::runtime::RunControllerMain(
      argc, argv,
      {.binary_name = "synchronizationplan-controller",
       .add_flags = nullptr,
       .setup = [](ro::runtime::Manager& manager) {
         ro::controllers::SetupPlaceholderController(manager,
                                                     ro::controllers::SynchronizationPlanPlaceholder());
       }});
}

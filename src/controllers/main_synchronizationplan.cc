// synchronizationplan-controller: creates a Synchronization at each time of every
// SynchronizationPlan's schedule (automation.astronetes.io/v1alpha1; manual 6.1, 6.3;
// docs/zookeeper.md).
#include "ro/runtime/manager.h"
#include "synchronizationplan/synchronizationplan_controller.h"

int main(int argc, char** argv) {
  return ro::runtime::RunControllerMain(
      argc, argv,
      {.binary_name = "synchronizationplan-controller",
       .add_flags = nullptr,
       .setup = [](ro::runtime::Manager& manager) {
         ro::controllers::SetupSynchronizationPlanController(manager);
       }});
}

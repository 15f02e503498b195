// synchronization-controller: runs each Synchronization once
// (automation.astronetes.io/v1alpha1; manual 6.1, 6.3; docs/zookeeper.md).
#include "ro/runtime/manager.h"
#include "synchronization/synchronization_controller.h"

int main(int argc, char** argv) {
  ro::controllers::SynchronizationOptions options;
  return ro::runtime::RunControllerMain(
      argc, argv,
      {.binary_name = "synchronization-controller",
       .add_flags =
           [&options](ro::runtime::FlagSet& flags) {
             ro::controllers::AddSynchronizationFlags(flags, &options);
           },
       .setup = [&options](ro::runtime::Manager& manager) {
         ro::controllers::SetupSynchronizationController(manager, options);
       }});
}

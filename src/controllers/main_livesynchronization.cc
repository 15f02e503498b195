// livesynchronization-controller: runs the Kubesync pipeline of every LiveSynchronization
// (automation.astronetes.io/v1alpha1; manual 6.2, tutorials 8.1 and 8.2).
#include "livesynchronization/livesynchronization_controller.h"
#include "ro/runtime/manager.h"

int main(int argc, char** argv) {
  ro::controllers::LiveSynchronizationOptions options;
  return ro::runtime::RunControllerMain(
      argc, argv,
      {.binary_name = "livesynchronization-controller",
       .add_flags =
           [&options](ro::runtime::FlagSet& flags) {
             ro::controllers::AddLiveSynchronizationFlags(flags, &options);
           },
       .setup = [&options](ro::runtime::Manager& manager) {
         ro::controllers::SetupLiveSynchronizationController(manager, options);
       }});
}

// taskrun-controller: runs the Task every TaskRun names, once
// (automation.astronetes.io/v1alpha1; manual 7 and 8.2).
#include "ro/runtime/manager.h"
#include "taskrun/taskrun_controller.h"

int main(int argc, char** argv) {
  ro::controllers::TaskRunOptions options;
  return ro::runtime::RunControllerMain(
      argc, argv,
      {.binary_name = "taskrun-controller",
       .add_flags =
           [&options](ro::runtime::FlagSet& flags) {
             ro::controllers::AddTaskRunFlags(flags, &options);
           },
       .setup = [&options](ro::runtime::Manager& manager) {
         ro::controllers::SetupTaskRunController(manager, options);
       }});
}

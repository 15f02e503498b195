// task-controller: validates every Task (automation.astronetes.io/v1alpha1; manual 7 and
// 8.2) and reports whether a TaskRun could run it.
#include "ro/runtime/manager.h"
#include "task/task_controller.h"

int main(int argc, char** argv) {
  ro::controllers::TaskOptions options;
  return ro::runtime::RunControllerMain(
      argc, argv,
      {.binary_name = "task-controller",
       .add_flags =
           [&options](ro::runtime::FlagSet& flags) {
             ro::controllers::AddTaskFlags(flags, &options);
           },
       .setup = [&options](ro::runtime::Manager& manager) {
         ro::controllers::SetupTaskController(manager, options);
       }});
}

// database-controller: checks the connection to every Database
// (assets.astronetes.io/v1alpha1; manual 5.4).
#include "database/database_controller.h"
#include "ro/runtime/manager.h"

int main(int argc, char** argv) {
  ro::controllers::DatabaseOptions options;
  return ro::runtime::RunControllerMain(
      argc, argv,
      {.binary_name = "database-controller",
       .add_flags =
           [&options](ro::runtime::FlagSet& flags) {
             ro::controllers::AddDatabaseFlags(flags, &options);
           },
       .setup = [&options](ro::runtime::Manager& manager) {
         ro::controllers::SetupDatabaseController(manager, options);
       }});
}

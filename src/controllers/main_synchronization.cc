// synchronization-controller: runs each Synchronization once
// (automation.astronetes.io/v1alpha1; manual 6.1, 6.3; docs/zookeeper.md), and each
// Backup once (API reference 9.2; docs/backup.md): both are one-shot copies of an asset.
//
//   synchronization-controller [flags]             the controller
//   synchronization-controller --run-once=FILE     one copy, as the job runner's pod runs
//                                                  it (sync_run.h); the outcome goes to
//                                                  /dev/termination-log
#include <string_view>

#include "backup/backup_controller.h"
#include "ro/runtime/manager.h"
#include "synchronization/sync_run.h"
#include "synchronization/synchronization_controller.h"

int main(int argc, char** argv) {
  constexpr std::string_view kRunOnce = "--run-once=";
  if (argc == 2 && std::string_view(argv[1]).starts_with(kRunOnce)) {
    return ro::controllers::sync::RunOnceMain(std::string(std::string_view(argv[1]).substr(kRunOnce.size())),
                                              "/dev/termination-log");
  }
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
         // The same pauses as the Synchronizations' (--pending-recheck, --retry-interval).
         ro::controllers::BackupOptions backup_options;
         backup_options.pending_recheck = options.pending_recheck;
         backup_options.retry_interval = options.retry_interval;
         ro::controllers::SetupBackupController(manager, backup_options);
       }});
}

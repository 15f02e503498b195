// A disaster-recovery drill (docs/runbook.md "Drill"): the recovery Task rehearsed on a
// copy of the standby, in the destination cluster, while replication goes on and without
// touching the standby. `roctl drill run` creates, in the Task's namespace and each
// labelled kDrillLabel=<drill name>:
//
//   Backup <drill>            kubernetes-objects-to-bucket of the destination
//                             KubernetesCluster's namespaces the Task's namespaceSelector
//                             selects (the standby), to <bucket> at drills/<ns>/<drill>
//   Task <drill>-restore      kubernetes-objects-from-backup of it into the same cluster,
//                             every namespace renamed <name><suffix> and labelled
//                             kDrillLabel=<drill>; run by TaskRun <drill>-restore
//   Task <drill>-recovery     the recovery Task with each namespaceSelector replaced by
//                             kDrillLabel=<drill> (fromOriginal off: the originals are
//                             keyed by the standby's namespaces); run by TaskRun
//                             <drill>-recovery, whose duration is the drill's RTO
//
// `roctl drill cleanup` deletes the destination's namespaces labelled kDrillLabel=<drill>
// (and only those), then these objects. The standby and the LiveSynchronization are never
// written: the drill's namespaces have other names and no kubesync control metadata.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace ro::controllers {

inline constexpr std::string_view kDrillLabel = "automation.astronetes.io/drill";

struct DrillObjects {
  nlohmann::json backup;
  nlohmann::json restore_task;
  nlohmann::json restore_run;
  nlohmann::json recovery_task;
  nlohmann::json recovery_run;
  // What the drill leaves out, for people ("resources[1] (apps/v1/deployments): fromOriginal
  // is not rehearsed").
  std::vector<std::string> notes;
};

// Renders the drill `drill` of recovery Task `task` (a whole Task object). `bucket`: the
// Bucket for the standby's backup ("" uses the Task's bucketName). `suffix`: appended to
// the drill's namespaces ("-drill"). Throws std::invalid_argument saying why the Task
// cannot be drilled: not kubernetes-objects-transformation, no destinationName, no
// Bucket, resources without one common namespaceSelector. Pure.
DrillObjects RenderDrill(const nlohmann::json& task, const std::string& drill, const std::string& bucket,
                         const std::string& suffix);

}  // namespace ro::controllers

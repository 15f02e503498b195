// A TaskRun's status (docs/api.md "TaskRun", docs/automation.md "TaskRun"): the phase,
// the Ready condition that mirrors it, times, and the plugin's fields; and its writes,
// with an Event and a log line whenever the phase or the reason changes.
//
//   phase      Ready    reason
//   Pending    False    why it cannot start yet (TaskNotFound, ClusterNotFound, ...)
//   Running    Unknown  Running
//   Succeeded  True     Succeeded, or a warning reason (NothingRecovered, FewerObjectsRecovered:
//                       the run completed but did nothing useful; condition Warning True too)
//   Failed     False    why it failed (TaskNotFound, InvalidTask, ObjectsFailed, PodFailed, ...)
//
// The status is the record of the run: a controller restarted in the middle reads the
// phase and resumes from it.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "ro/common/log.h"
#include "ro/kube/clock.h"
#include "ro/kube/gvr.h"

namespace ro::kube {
class DynamicClient;
class EventRecorder;
}  // namespace ro::kube

namespace ro::controllers {

enum class RunPhase { kNone, kPending, kRunning, kSucceeded, kFailed };

// "", "Pending", "Running", "Succeeded", "Failed".
std::string_view ToString(RunPhase phase);
// status.phase of a TaskRun (kNone when absent or unknown).
RunPhase PhaseOf(const nlohmann::json& taskrun);
inline bool IsFinished(RunPhase phase) {
  return phase == RunPhase::kSucceeded || phase == RunPhase::kFailed;
}

// One status change. Unset optionals keep what the status has.
struct RunUpdate {
  RunPhase phase = RunPhase::kPending;
  // Ready's reason: the cause for Pending/Failed; Running and Succeeded use their phase
  // name when empty.
  std::string reason;
  std::string message;
  std::optional<std::string> pod_name;
  std::optional<int64_t> objects_patched;
  std::optional<int64_t> objects_failed;
  // status.dryRun (set when the run starts; a dry run changes nothing).
  std::optional<bool> dry_run;
  // status.dryRunReport as JSON text (a dry run that finished).
  std::optional<std::string> dry_run_report;
  // Further integer status fields, written as named (e.g. a Synchronization's
  // "nodesCreated").
  std::map<std::string, int64_t> counters;
  // Further string status fields, written as named (e.g. a Backup's "basePath").
  std::map<std::string, std::string> fields;
  // A Succeeded run that did nothing useful (recovery_check.h): the message of the
  // condition Warning (status True, reason `reason`), and its Event is a Warning. Empty:
  // no Warning condition (one already there is removed).
  std::string warning;
};

// The TaskRun condition a run that completed without doing anything useful carries.
inline constexpr std::string_view kWarningCondition = "Warning";

// The status `taskrun` should have after `update` at `now`: phase, message, Ready,
// Warning (when update.warning is set), observedGeneration; startTime set (once) when the phase is Running; completionTime set
// (once) when it is Succeeded or Failed. Pure.
nlohmann::json DesiredRunStatus(const nlohmann::json& taskrun, const RunUpdate& update,
                                std::chrono::system_clock::time_point now);

// Thread-safe (stateless apart from its references, which must outlive it).
class RunStatusWriter {
 public:
  RunStatusWriter(kube::DynamicClient& client, kube::EventRecorder& recorder, log::Logger log,
                  kube::Clock& clock);

  // Writes DesiredRunStatus when it differs from the current status (PUT .../status
  // with `taskrun`'s resourceVersion). Returns the TaskRun as stored after the write (or
  // `taskrun` itself when nothing changed), or nullopt on Conflict (re-read and retry).
  // On a change of phase or reason: an Event (Normal for Running and Succeeded without a
  // warning, Warning otherwise, reason = the condition's) and a log line. Throws ApiError / TransportError
  // for other failures.
  std::optional<nlohmann::json> Write(const kube::GroupVersionResource& gvr,
                                      const nlohmann::json& taskrun, const RunUpdate& update);

 private:
  kube::DynamicClient& client_;
  kube::EventRecorder& recorder_;
  const log::Logger log_;
  kube::Clock& clock_;
};

}  // namespace ro::controllers

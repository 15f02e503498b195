// The job runner of the Synchronization controller (docs/zookeeper.md, "Runners"): what
// it creates in the Synchronization's namespace and how it reads the result back. Pure
// functions; the controller does the I/O.
//
//   Secret  <JobName>-run   run.json (sync_run.h's run file: servers and digest
//                           credentials), controller ownerReference to the
//                           Synchronization; deleted by the controller when the run ends
//   Job     <JobName>       one pod of the operator image running
//                           `synchronization-controller --run-once=/etc/synchronization/run.json`,
//                           controller ownerReference to the Synchronization (kept after the
//                           run for its logs; goes with the Synchronization)
//
// Both carry the label kSynchronizationLabel = <Synchronization name>.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "synchronization/sync_run.h"

namespace ro::controllers::sync {

inline constexpr std::string_view kSynchronizationLabel = "automation.astronetes.io/synchronization";
inline constexpr std::string_view kRunFileKey = "run.json";
inline constexpr std::string_view kRunFileDir = "/etc/synchronization";
inline constexpr std::string_view kJobContainerName = "zookeeper-to-zookeeper-nodes";

struct JobRunnerOptions {
  // The operator's image (it holds synchronization-controller).
  std::string image = "ghcr.io/resiliency-operator/resiliency-operator:0.1.0";
  std::string image_pull_policy = "IfNotPresent";
};

// The Job's name: the Synchronization's, shortened with a hash suffix past 63 characters
// (a Job's name becomes its pods' job-name label value).
std::string JobName(const nlohmann::json& sync);
// "<JobName>-run".
std::string RunSecretName(const nlohmann::json& sync);

// The run file's Secret. `run_file` is RunFileJson's text.
nlohmann::json RenderRunSecret(const nlohmann::json& sync, const std::string& run_file);

// The Job: backoffLimit 0 with spec.restartPolicy Never, 6 (the Job controller's own
// default, with its exponential back-off between pods) with OnFailure; pods never restart
// in place (restartPolicy Never), so each attempt leaves its own termination message.
// Restricted pod security: non-root 65532, no privilege escalation, no capabilities,
// RuntimeDefault seccomp, read-only root filesystem, no service account token.
nlohmann::json RenderJob(const nlohmann::json& sync, const JobRunnerOptions& options);

// What the Job and its pods say about the run.
struct JobResult {
  enum class State { kRunning, kSucceeded, kFailed };
  State state = State::kRunning;
  // Succeeded, and Failed when the last terminated pod wrote one.
  std::optional<CopyOutcome> outcome;
  // For people when there is no outcome: the Job's Failed condition, or a pod's waiting
  // reason ("ErrImagePull: ..."); "" when there is nothing to say.
  std::string message;
};

// Reads the Job's Complete / Failed condition and the termination message of its most
// recently finished pod (`pods`: the Job's pods, any order). A Complete Job whose pod's
// message cannot be read is Succeeded with no outcome counts (outcome unset).
JobResult ReadJob(const nlohmann::json& job, const std::vector<nlohmann::json>& pods);

}  // namespace ro::controllers::sync

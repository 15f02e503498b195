#include "synchronization/sync_job.h"

#include <stdexcept>
#include <utility>

#include <nlohmann/json.hpp>

#include "ro/common/object_meta.h"
#include "ro/common/pod_security.h"
#include "ro/plugins/tasks/custom_image.h"

namespace ro::controllers::sync {
namespace {

using nlohmann::json;

constexpr const char* kApiVersion = "automation.astronetes.io/v1alpha1";

json Metadata(const json& sync, const std::string& name) {
  return {{"name", name},
          {"namespace", common::Namespace(sync)},
          {"labels",
           {{std::string(kSynchronizationLabel), common::Name(sync)},
            {"app.kubernetes.io/managed-by", "synchronization-controller"}}},
          {"ownerReferences", json::array({common::ControllerReference(
                                  sync.value("apiVersion", kApiVersion), "Synchronization", common::Name(sync),
                                  common::Uid(sync))})}};
}

// The terminated state of the pod's plugin container, or nullptr.
const json* Terminated(const json& pod) {
  const json& statuses = common::Member(common::Member(pod, "status"), "containerStatuses");
  if (!statuses.is_array()) return nullptr;
  for (const json& status : statuses) {
    if (common::StringMember(status, "name") != kJobContainerName) continue;
    const json& terminated = common::Member(common::Member(status, "state"), "terminated");
    return terminated.is_object() ? &terminated : nullptr;
  }
  return nullptr;
}

bool HasCondition(const json& job, std::string_view type, std::string* message) {
  const json& conditions = common::Member(common::Member(job, "status"), "conditions");
  if (!conditions.is_array()) return false;
  for (const json& c : conditions) {
    if (common::StringMember(c, "type") == type && common::StringMember(c, "status") == "True") {
      *message = common::StringMember(c, "reason");
      if (const std::string& detail = common::StringMember(c, "message"); !detail.empty()) {
        *message += (message->empty() ? "" : ": ") + detail;
      }
      return true;
    }
  }
  return false;
}

}  // namespace

std::string JobName(const json& sync) { return plugins::tasks::BoundedName(common::Name(sync), 63); }

std::string RunSecretName(const json& sync) { return JobName(sync) + "-run"; }

json RenderRunSecret(const json& sync, const std::string& run_file) {
  return {{"apiVersion", "v1"},
          {"kind", "Secret"},
          {"metadata", Metadata(sync, RunSecretName(sync))},
          {"type", "Opaque"},
          {"stringData", {{std::string(kRunFileKey), run_file}}}};
}

json RenderJob(const json& sync, const JobRunnerOptions& options) {
  const std::string restart = common::StringMember(common::Member(sync, "spec"), "restartPolicy");
  const std::string run_file = std::string(kRunFileDir) + "/" + std::string(kRunFileKey);
  json container = {
      {"name", kJobContainerName},
      {"image", options.image},
      {"imagePullPolicy", options.image_pull_policy},
      {"command", json::array({"synchronization-controller", "--run-once=" + run_file})},
      {"volumeMounts", json::array({{{"name", "run"}, {"mountPath", kRunFileDir}, {"readOnly", true}}})},
      {"terminationMessagePolicy", "File"},
      {"resources", {{"requests", {{"cpu", "100m"}, {"memory", "64Mi"}}}}},
      {"securityContext", common::RestrictedContainerSecurityContext()}};
  json pod_spec = {{"restartPolicy", "Never"},
                   {"automountServiceAccountToken", false},
                   {"enableServiceLinks", false},
                   {"securityContext", common::RestrictedPodSecurityContext()},
                   {"containers", json::array({std::move(container)})},
                   {"volumes", json::array({{{"name", "run"},
                                             {"secret",
                                              {{"secretName", RunSecretName(sync)},
                                               {"defaultMode", common::kSecretVolumeMode}}}}})}};
  json metadata = Metadata(sync, JobName(sync));
  return {{"apiVersion", "batch/v1"},
          {"kind", "Job"},
          {"metadata", metadata},
          {"spec",
           {{"backoffLimit", restart == "OnFailure" ? 6 : 0},
            {"template", {{"metadata", {{"labels", metadata["labels"]}}}, {"spec", std::move(pod_spec)}}}}}};
}

JobResult ReadJob(const json& job, const std::vector<json>& pods) {
  JobResult result;
  // The pod that finished last holds the run's outcome.
  const json* last = nullptr;
  std::string last_finished;
  for (const json& pod : pods) {
    const json* terminated = Terminated(pod);
    if (terminated == nullptr) continue;
    const std::string& finished = common::StringMember(*terminated, "finishedAt");
    if (last == nullptr || finished >= last_finished) {
      last = terminated;
      last_finished = finished;
    }
  }
  std::optional<CopyOutcome> outcome;
  if (last != nullptr) {
    try {
      outcome = OutcomeFromJson(common::StringMember(*last, "message"));
    } catch (const std::invalid_argument&) {
      // Killed before it wrote one (OOMKilled, deadline): the Job's condition says why.
    }
  }
  std::string message;
  if (HasCondition(job, "Complete", &message)) {
    result.state = JobResult::State::kSucceeded;
    if (outcome && outcome->succeeded) result.outcome = std::move(outcome);
  } else if (HasCondition(job, "Failed", &message)) {
    result.state = JobResult::State::kFailed;
    if (outcome && !outcome->succeeded) result.outcome = std::move(outcome);
    result.message = message;
    if (!result.outcome && last != nullptr) {
      const std::string& reason = common::StringMember(*last, "reason");
      if (!reason.empty()) result.message += " (last pod: " + reason + ")";
    }
  } else {
    // Running: what the newest pod waits for, if anything (ErrImagePull, ...).
    for (const json& pod : pods) {
      const plugins::tasks::PodOutcome state = plugins::tasks::ReadPodOutcome(pod);
      if (state.state == plugins::tasks::PodOutcome::State::kRunning) result.message = state.message;
    }
  }
  return result;
}

}  // namespace ro::controllers::sync

#include "synchronizationplan/synchronizationplan_controller.h"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "ro/common/log.h"
#include "ro/common/object_meta.h"
#include "ro/common/time.h"
#include "ro/kube/client.h"
#include "ro/kube/errors.h"
#include "ro/kube/event_recorder.h"
#include "ro/kube/informer.h"
#include "ro/plugins/kubernetes/config_error.h"
#include "ro/plugins/zookeeper/nodes_plan.h"
#include "ro/runtime/conditions.h"
#include "ro/runtime/informer_cache.h"
#include "ro/runtime/manager.h"
#include "ro/runtime/status.h"
#include "synchronization/synchronization_controller.h"
#include "synchronizationplan/plan_decision.h"
#include "taskrun/run_status.h"

namespace ro::controllers {

using nlohmann::json;
using runtime::Request;
using runtime::Result;
using TimePoint = std::chrono::system_clock::time_point;

namespace {

constexpr const char* kController = "synchronizationplan";

std::optional<TimePoint> TimeField(const json& object, const char* field) {
  const json status = object.value("status", json::object());
  if (!status.is_object() || !status.contains(field) || !status[field].is_string()) return std::nullopt;
  try {
    return common::ParseRfc3339(status[field].get<std::string>());
  } catch (const common::TimeError&) {
    return std::nullopt;
  }
}

TimePoint Created(const json& object) {
  try {
    return common::ParseRfc3339(common::MetadataString(object, "creationTimestamp"));
  } catch (const common::TimeError&) {
    return TimePoint{};
  }
}

bool OwnedBy(const json& object, const std::string& uid) {
  const json metadata = object.value("metadata", json::object());
  for (const json& ref : metadata.value("ownerReferences", json::array())) {
    if (ref.value("uid", "") == uid && ref.value("controller", false)) return true;
  }
  return false;
}

PlanSettings SettingsOf(const json& spec) {
  PlanSettings s;
  s.suspend = spec.value("suspend", false);
  if (spec.contains("startingDeadlineSeconds") && spec["startingDeadlineSeconds"].is_number_integer()) {
    s.starting_deadline = std::chrono::seconds{spec["startingDeadlineSeconds"].get<std::int64_t>()};
  }
  const std::string policy = spec.value("concurrencyPolicy", "Allow");
  s.concurrency = policy == "Forbid"    ? ConcurrencyPolicy::kForbid
                  : policy == "Replace" ? ConcurrencyPolicy::kReplace
                                        : ConcurrencyPolicy::kAllow;
  s.successful_history = spec.value("successfulJobsHistoryLimit", 2);
  s.failed_history = spec.value("failedJobsHistoryLimit", 2);
  return s;
}

class SynchronizationPlanReconciler final : public runtime::Reconciler {
 public:
  SynchronizationPlanReconciler(kube::DynamicClient& client, kube::EventRecorder& recorder,
                                const kube::Store& plans, const kube::Store& syncs, kube::Clock& clock)
      : client_(client), recorder_(recorder), plans_(plans), syncs_(syncs), clock_(clock),
        log_(json{{"controller", kController}}) {}

  Result Reconcile(const Request& request, std::stop_token /*stop*/) override {
    const kube::ObjectPtr object = plans_.Get(request.ToString());
    if (!object || common::Deleting(*object)) return {};
    const json& plan = *object;
    const json spec = plan.value("spec", json::object());

    std::optional<CronSchedule> schedule;
    try {
      schedule = CronSchedule::Parse(spec.value("schedule", ""));
    } catch (const CronError& e) {
      return Report(plan, {}, runtime::ConditionStatus::kFalse, kReasonPlanInvalidSchedule,
                    std::string("spec.schedule \"") + spec.value("schedule", "") + "\": " + e.what());
    }
    const json template_spec = spec.value("template", json::object()).value("spec", json::object());
    try {
      if (template_spec.value("plugin", "") != plugins::zookeeper::kNodesPluginName) {
        throw std::invalid_argument("spec.template.spec.plugin must be " +
                                    std::string(plugins::zookeeper::kNodesPluginName));
      }
      plugins::zookeeper::ParseNodesSyncConfig(template_spec.value("config", json::object()));
    } catch (const std::invalid_argument& e) {
      return Report(plan, {}, runtime::ConditionStatus::kFalse, kReasonPlanInvalidTemplate, e.what());
    }

    const std::string ns = common::MetadataString(plan, "namespace");
    const std::string uid = common::MetadataString(plan, "uid");
    std::vector<PlanRun> runs;
    std::map<std::string, std::string> uids;
    for (const kube::ObjectPtr& sync : syncs_.ListByNamespace(ns)) {
      if (!OwnedBy(*sync, uid)) continue;
      PlanRun run;
      run.name = common::MetadataString(*sync, "name");
      const RunPhase phase = PhaseOf(*sync);
      run.state = phase == RunPhase::kSucceeded ? PlanRun::State::kSucceeded
                  : phase == RunPhase::kFailed  ? PlanRun::State::kFailed
                                                : PlanRun::State::kActive;
      run.scheduled = Created(*sync);
      const std::string at = common::Annotation(*sync, kScheduledAtAnnotation);
      try {
        if (!at.empty()) run.scheduled = common::ParseRfc3339(at);
      } catch (const common::TimeError&) {
      }
      run.completed = TimeField(*sync, "completionTime");
      uids[run.name] = common::MetadataString(*sync, "uid");
      runs.push_back(std::move(run));
    }

    const TimePoint now = clock_.Now();
    const PlanDecision d = DecidePlan(*schedule, SettingsOf(spec), TimeField(plan, "lastScheduleTime"),
                                      Created(plan), runs, now);
    for (const std::string& name : d.delete_runs) Delete(plan, ns, name);
    json status_fields = json::object();
    if (d.start) {
      Start(plan, ns, template_spec, spec.value("template", json::object()).value("metadata", json::object()),
            *d.start);
      status_fields["lastScheduleTime"] = common::FormatRfc3339(*d.start);
    }
    if (!d.skipped.empty()) {
      recorder_.Event(plan, kube::EventType::kWarning, "Skipped", "Not starting a Synchronization: " + d.skipped);
    }
    json active = json::array();
    for (const std::string& name : d.active) {
      active.push_back({{"name", name}, {"namespace", ns}, {"uid", uids[name]}});
    }
    status_fields["active"] = std::move(active);
    if (d.last_successful) status_fields["lastSuccessfulTime"] = common::FormatRfc3339(*d.last_successful);
    if (d.next) status_fields["nextScheduleTime"] = common::FormatRfc3339(*d.next);
    const bool suspended = SettingsOf(spec).suspend;
    Result result = Report(plan, status_fields, runtime::ConditionStatus::kTrue,
                           suspended ? kReasonPlanSuspended : kReasonPlanScheduled,
                           suspended ? "Suspended: no Synchronization starts"
                                     : (d.next ? "Next run at " + common::FormatRfc3339(*d.next)
                                               : std::string("The schedule never fires again")));
    if (result.requeue || result.requeue_after.count() > 0) return result;
    if (d.next) {
      // A little past the schedule time, so the next reconcile finds it due.
      return Result::RequeueAfter(std::chrono::duration_cast<std::chrono::milliseconds>(*d.next - now) +
                                  std::chrono::milliseconds{100});
    }
    return {};
  }

 private:
  void Start(const json& plan, const std::string& ns, const json& template_spec,
             const json& template_metadata, TimePoint at) {
    const std::string plan_name = common::MetadataString(plan, "name");
    // CronJob's naming: the schedule time in minutes makes the name of a run unique and
    // its creation idempotent.
    const std::string name =
        plan_name + "-" + std::to_string(std::chrono::duration_cast<std::chrono::minutes>(
                                             at.time_since_epoch()).count());
    json metadata = {{"name", name}, {"namespace", ns}};
    metadata["labels"] = template_metadata.value("labels", json::object());
    metadata["annotations"] = template_metadata.value("annotations", json::object());
    metadata["annotations"][kScheduledAtAnnotation] = common::FormatRfc3339(at);
    metadata["ownerReferences"] = json::array({common::ControllerReference(
        "automation.astronetes.io/v1alpha1", "SynchronizationPlan", plan_name, common::Uid(plan))});
    const json sync = {{"apiVersion", "automation.astronetes.io/v1alpha1"},
                       {"kind", "Synchronization"},
                       {"metadata", std::move(metadata)},
                       {"spec", template_spec}};
    try {
      client_.Create(SynchronizationType().gvr, ns, sync);
    } catch (const kube::ApiError& e) {
      if (!kube::IsAlreadyExists(e)) throw;
      return;
    }
    recorder_.Event(plan, kube::EventType::kNormal, "SuccessfulCreate", "Created Synchronization " + name);
    log_.Info("synchronization created", {{"object", runtime::ObjectRef(plan)}, {"synchronization", name}});
  }

  void Delete(const json& plan, const std::string& ns, const std::string& name) {
    try {
      client_.Delete(SynchronizationType().gvr, ns, name, kube::DeleteOptions{});
    } catch (const kube::ApiError& e) {
      if (!kube::IsNotFound(e)) throw;
      return;
    }
    recorder_.Event(plan, kube::EventType::kNormal, "SuccessfulDelete", "Deleted Synchronization " + name);
  }

  Result Report(const json& plan, const json& fields, runtime::ConditionStatus status,
                const std::string& reason, const std::string& message) {
    json desired = plan.value("status", json::object());
    if (!desired.is_object()) desired = json::object();
    for (const auto& [key, value] : fields.items()) desired[key] = value;
    const std::int64_t generation = common::Generation(plan);
    desired["observedGeneration"] = generation;
    runtime::Condition ready;
    ready.type = std::string(runtime::kReadyCondition);
    ready.status = status;
    ready.reason = reason;
    ready.message = message;
    ready.observed_generation = generation;
    json conditions = desired.value("conditions", json::array());
    const std::optional<runtime::Condition> before =
        runtime::FindStatusCondition(conditions, runtime::kReadyCondition);
    runtime::SetStatusCondition(conditions, ready, clock_.Now());
    desired["conditions"] = std::move(conditions);
    const runtime::WriteOutcome outcome =
        runtime::UpdateStatusIfChanged(client_, SynchronizationPlanType().gvr, plan, desired);
    if (outcome == runtime::WriteOutcome::kConflict) return Result::Requeue();
    if (!before || before->reason != reason) {
      recorder_.Event(plan, status == runtime::ConditionStatus::kTrue ? kube::EventType::kNormal
                                                                      : kube::EventType::kWarning,
                      reason, message);
    }
    return {};
  }

  kube::DynamicClient& client_;
  kube::EventRecorder& recorder_;
  const kube::Store& plans_;
  const kube::Store& syncs_;
  kube::Clock& clock_;
  const log::Logger log_;
};

}  // namespace

runtime::ObjectType SynchronizationPlanType() {
  return {kube::GroupVersionResource{"automation.astronetes.io", "v1alpha1", "synchronizationplans"},
          "SynchronizationPlan"};
}

void SetupSynchronizationPlanController(runtime::Manager& manager) {
  const runtime::ObjectType type = SynchronizationPlanType();
  const kube::Store& plans = manager.cache().Get(type.gvr).store();
  const kube::Store& syncs = manager.cache().Get(SynchronizationType().gvr).store();
  manager
      .NewController(kController, std::make_unique<SynchronizationPlanReconciler>(
                                      manager.client(), manager.recorder(), plans, syncs,
                                      manager.clock()))
      .For(type, runtime::OnGenerationChange())
      .Owns(SynchronizationType());
}

}  // namespace ro::controllers

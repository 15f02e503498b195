// The SynchronizationPlan controller (manual 6.1, 6.3; docs/zookeeper.md
// "SynchronizationPlan"): creates a Synchronization from spec.template at each time of
// spec.schedule (5-field cron, UTC; cron_schedule.h), owned by the plan, with the
// Kubernetes CronJob controller's semantics (plan_decision.h): at most one catch-up run
// after downtime, startingDeadlineSeconds, suspend, concurrencyPolicy, history limits.
//
// Status: lastScheduleTime, lastSuccessfulTime, nextScheduleTime, active[], and Ready
// (True Scheduled / Suspended; False InvalidSchedule, InvalidTemplate). Events:
// SuccessfulCreate, SuccessfulDelete, Skipped (why a due run did not start).
// The time is the manager's Clock (ro/kube/clock.h).
#pragma once

#include "ro/runtime/controller.h"

namespace ro::runtime {
class Manager;
}  // namespace ro::runtime

namespace ro::controllers {

inline constexpr const char* kReasonPlanScheduled = "Scheduled";
inline constexpr const char* kReasonPlanSuspended = "Suspended";
inline constexpr const char* kReasonPlanInvalidSchedule = "InvalidSchedule";
inline constexpr const char* kReasonPlanInvalidTemplate = "InvalidTemplate";

// The annotation a plan's Synchronization carries: its schedule time (RFC 3339).
inline constexpr const char* kScheduledAtAnnotation = "automation.astronetes.io/scheduled-at";

// automation.astronetes.io/v1alpha1 SynchronizationPlan.
runtime::ObjectType SynchronizationPlanType();

// Registers the controller: For(SynchronizationPlan) + Owns(Synchronization).
void SetupSynchronizationPlanController(runtime::Manager& manager);

}  // namespace ro::controllers

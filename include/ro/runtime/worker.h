// The one worker loop shared by every controller (controller-runtime
// pkg/internal/controller/controller.go, reconcileHandler). Controllers never rewrite it.
//
// A worker takes a key from the rate-limited workqueue, calls the Reconciler, and turns
// the outcome into exactly one queue action, each with its own metric label:
//
//   outcome                           queue action                   result label
//   threw TerminalError               Forget (no retry)              "error"
//   threw anything else               AddRateLimited (backoff)       "error"
//   Result.requeue_after > 0          Forget + AddAfter(after)       "requeue_after"
//   Result.requeue                    AddRateLimited (backoff)       "requeue"
//   Result{}                          Forget                         "success"
//
// An exception never leaves the worker: it is logged with the object and counted.
#pragma once

#include <exception>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>

#include "ro/common/log.h"
#include "ro/kube/clock.h"
#include "ro/runtime/reconcile.h"

namespace ro::kube {
class RateLimitingQueue;
}  // namespace ro::kube

namespace ro::runtime {

class ControllerMetrics;

// The queue action chosen for one outcome.
enum class QueueAction {
  kForget,            // success: clear the backoff history
  kRequeueAfter,      // Forget, then AddAfter(requeue_after)
  kRequeueRateLimited,  // AddRateLimited because the reconciler asked to requeue
  kRetryError,        // AddRateLimited because the reconcile threw
  kDropTerminal,      // Forget: TerminalError, retrying cannot help
};

// The controller_runtime_reconcile_total `result` label of an action:
// "success", "requeue_after", "requeue", "error", "error".
std::string_view ResultLabel(QueueAction action);

// What one Reconcile() call produced: a Result, or the exception it threw.
struct ReconcileOutcome {
  Result result;
  std::exception_ptr error;  // null when Reconcile() returned normally
};

// The switch (pure): which action `outcome` calls for.
QueueAction DecideQueueAction(const ReconcileOutcome& outcome);

// Runs the worker loop of one controller. Thread-safe: any number of threads may call
// ProcessNextWorkItem() on the same worker (that is how N workers are run).
class ReconcileWorker {
 public:
  // Everything must outlive the worker. `controller` names the metric label and the
  // "controller" field of log lines.
  ReconcileWorker(std::string controller, kube::RateLimitingQueue& queue,
                  Reconciler& reconciler, ControllerMetrics& metrics,
                  kube::Clock& clock = kube::DefaultClock());

  // Blocks for the next key, reconciles it and applies DecideQueueAction. Returns false
  // once the queue is shut down and drained (the worker thread should then end).
  bool ProcessNextWorkItem(std::stop_token stop);

  // Runs ProcessNextWorkItem until it returns false.
  void Run(std::stop_token stop);

 private:
  void Apply(const std::string& key, const ReconcileOutcome& outcome, QueueAction action);

  // Constant after construction.
  const std::string controller_;
  kube::RateLimitingQueue& queue_;
  Reconciler& reconciler_;
  ControllerMetrics& metrics_;
  kube::Clock& clock_;
  const log::Logger log_;
};

// A readable description of an exception_ptr's exception ("ApiError: ..."), for logs.
std::string DescribeException(const std::exception_ptr& error);

}  // namespace ro::runtime

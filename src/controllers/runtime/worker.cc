#include "ro/runtime/worker.h"

#include <chrono>
#include <utility>

#include <nlohmann/json.hpp>

#include "ro/kube/errors.h"
#include "ro/kube/workqueue.h"
#include "ro/runtime/metrics.h"

namespace ro::runtime {

std::string_view ResultLabel(QueueAction action) {
  switch (action) {
    case QueueAction::kForget: return "success";
    case QueueAction::kRequeueAfter: return "requeue_after";
    case QueueAction::kRequeueRateLimited: return "requeue";
    case QueueAction::kRetryError:
    case QueueAction::kDropTerminal: return "error";
  }
  return "error";
}

QueueAction DecideQueueAction(const ReconcileOutcome& outcome) {
  if (outcome.error) {
    try {
      std::rethrow_exception(outcome.error);
    } catch (const TerminalError&) {
      return QueueAction::kDropTerminal;
    } catch (...) {
      return QueueAction::kRetryError;
    }
  }
  if (outcome.result.requeue_after.count() > 0) return QueueAction::kRequeueAfter;
  if (outcome.result.requeue) return QueueAction::kRequeueRateLimited;
  return QueueAction::kForget;
}

std::string DescribeException(const std::exception_ptr& error) {
  if (!error) return "";
  try {
    std::rethrow_exception(error);
  } catch (const kube::ApiError& e) {
    return std::string("API error: ") + e.what();
  } catch (const kube::TransportError& e) {
    return std::string("transport error: ") + e.what();
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown exception (not derived from std::exception)";
  }
}

ReconcileWorker::ReconcileWorker(std::string controller, kube::RateLimitingQueue& queue,
                                 Reconciler& reconciler, ControllerMetrics& metrics,
                                 kube::Clock& clock)
    : controller_(std::move(controller)),
      queue_(queue),
      reconciler_(reconciler),
      metrics_(metrics),
      clock_(clock),
      log_(nlohmann::json{{"controller", controller_}}) {}

bool ReconcileWorker::ProcessNextWorkItem(std::stop_token stop) {
  const std::optional<std::string> key = queue_.Get();
  if (!key) return false;
  if (stop.stop_requested()) {
    // Shutting down: keys still queued are dropped; the next leader lists everything.
    queue_.Done(*key);
    return true;
  }

  const kube::Clock::SteadyTime start = clock_.SteadyNow();
  ReconcileOutcome outcome;
  try {
    outcome.result = reconciler_.Reconcile(Request{kube::ObjectKey::Parse(*key)}, stop);
  } catch (...) {
    outcome.error = std::current_exception();
  }
  const std::chrono::duration<double> elapsed = clock_.SteadyNow() - start;

  const QueueAction action = DecideQueueAction(outcome);
  Apply(*key, outcome, action);
  metrics_.ObserveReconcile(controller_, ResultLabel(action), elapsed.count());
  queue_.Done(*key);
  return true;
}

// THE switch: the one place a reconcile outcome becomes a queue action.
void ReconcileWorker::Apply(const std::string& key, const ReconcileOutcome& outcome,
                            QueueAction action) {
  const kube::ObjectKey object = kube::ObjectKey::Parse(key);
  const nlohmann::json object_field = {{"namespace", object.ns}, {"name", object.name}};
  switch (action) {
    case QueueAction::kRetryError:
      log_.Error("reconcile failed; retrying with backoff",
                 {{"object", object_field},
                  {"error", DescribeException(outcome.error)},
                  {"retries", queue_.NumRequeues(key) + 1}});
      queue_.AddRateLimited(key);
      metrics_.CountRetry(controller_);
      return;
    case QueueAction::kDropTerminal:
      log_.Error("reconcile failed with a terminal error; not retrying",
                 {{"object", object_field}, {"error", DescribeException(outcome.error)}});
      queue_.Forget(key);
      return;
    case QueueAction::kRequeueAfter:
      queue_.Forget(key);
      queue_.AddAfter(key, outcome.result.requeue_after);
      return;
    case QueueAction::kRequeueRateLimited:
      queue_.AddRateLimited(key);
      metrics_.CountRetry(controller_);
      return;
    case QueueAction::kForget:
      queue_.Forget(key);
      return;
  }
}

void ReconcileWorker::Run(std::stop_token stop) {
  while (ProcessNextWorkItem(stop)) {
  }
}

}  // namespace ro::runtime

// The reconcile contract (controller-runtime pkg/reconcile): a Reconciler is handed the
// namespace/name of one object, never the watch event that woke it, reads the current
// state from the informer cache, acts, and says when to look again.
//
// Failures are exceptions (docs/architecture.md, "Errors"): anything thrown out of
// Reconcile() is retried with per-item exponential backoff, except TerminalError, which
// is logged and counted but not retried until the object changes again.
#pragma once

#include <chrono>
#include <stdexcept>
#include <stop_token>
#include <string>

#include "ro/kube/gvr.h"

namespace ro::runtime {

// Which object to reconcile: namespace/name only (namespace "" for cluster-scoped
// objects). The workqueue key is key.ToString() ("ns/name").
struct Request {
  kube::ObjectKey key;

  std::string ToString() const { return key.ToString(); }
  auto operator<=>(const Request&) const = default;
};

// What the queue does with a request after a reconcile that did not throw.
//   requeue_after > 0  -> AddAfter(requeue_after): look again then (periodic re-check)
//   requeue            -> AddRateLimited: look again soon, with backoff (e.g. a Conflict)
//   neither            -> Forget: done until the next watch event
// requeue_after wins when both are set (as in controller-runtime).
struct Result {
  bool requeue = false;
  std::chrono::milliseconds requeue_after{0};

  bool IsZero() const { return !requeue && requeue_after.count() <= 0; }

  static Result Requeue() {
    Result r;
    r.requeue = true;
    return r;
  }
  static Result RequeueAfter(std::chrono::milliseconds after) {
    Result r;
    r.requeue_after = after;
    return r;
  }
};

// Thrown by a reconciler for a failure that retrying cannot fix (an invalid spec that
// the reconciler could not express as a condition). Counted as an error, never retried.
class TerminalError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One controller's business logic. Implementations must be safe to call from several
// worker threads at once for DIFFERENT requests (the workqueue never hands the same
// request to two workers at the same time).
class Reconciler {
 public:
  virtual ~Reconciler() = default;
  // Brings the world in line with the object named by `request`. A request for an
  // object that no longer exists is normal (it was deleted): return Result{}.
  // `stop` is requested at shutdown; long checks should give up early then.
  // Throws anything: see the file comment for how it is retried.
  virtual Result Reconcile(const Request& request, std::stop_token stop) = 0;
};

}  // namespace ro::runtime

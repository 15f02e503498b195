// The reconcile shape shared by controllers whose whole job is to observe something and
// report it in the Ready condition (the asset controllers, and the placeholders of the
// kinds not implemented yet):
//
//   object := cache[request]          (gone or being deleted: nothing to do)
//   obs    := Observe(object)         (subclass: connect, check, decide)
//   StatusWriter::ApplyCondition(Ready = obs)   (write only on change; Event + log)
//   Conflict -> Result{.requeue}; else Result{.requeue_after = obs.recheck_after}
//
// Exceptions from Observe() are not turned into conditions here: they reach the worker
// and are retried with backoff (they are the unexpected failures; expected ones are
// reasons).
#pragma once

#include <chrono>
#include <stop_token>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "ro/runtime/conditions.h"
#include "ro/runtime/controller.h"
#include "ro/runtime/reconcile.h"
#include "ro/runtime/status.h"

namespace ro::kube {
class Store;
}  // namespace ro::kube

namespace ro::runtime {

// What Observe() found.
struct Observation {
  ConditionStatus status = ConditionStatus::kUnknown;
  std::string reason;   // one of the documented reasons of the kind
  std::string message;  // for humans; names the field or server involved
  StatusFields fields;  // other status fields to set or clear
  // Look again after this long (0: only on the next watch event).
  std::chrono::milliseconds recheck_after{0};
};

// Thread-safe when Observe() is.
class ConditionReconciler : public Reconciler {
 public:
  // `store` (the primary informer's cache) must outlive the reconciler.
  ConditionReconciler(ObjectType type, const kube::Store& store, StatusWriter writer);

  Result Reconcile(const Request& request, std::stop_token stop) final;

 protected:
  // Observes `object` (current state from the cache). Throws for unexpected failures.
  virtual Observation Observe(const nlohmann::json& object, std::stop_token stop) = 0;

  const ObjectType& type() const { return type_; }

 private:
  const ObjectType type_;
  const kube::Store& store_;
  StatusWriter writer_;
};

}  // namespace ro::runtime

// How the LiveSynchronization controller runs a pipeline (docs/livesynchronization.md,
// "Component runners"). Both runners render the same PipelinePlan; they differ only in
// the launcher:
//
//   DeploymentsRunner (default, production)  Deployments, Services and a Secret in the
//                                             LiveSynchronization's namespace
//   LocalRunner (--component-runner=local)    processes on the controller's host, for
//                                             clusters without nodes (tests, demo, laptop)
//
// Every method is idempotent and safe to call from several reconcile workers at once for
// DIFFERENT LiveSynchronizations (the workqueue never hands one key to two workers).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "ro/kube/gvr.h"
#include "ro/kubesync/runner/pipeline_plan.h"

namespace ro::kubesync::runner {

// The state of one part, as status.components[] shows it.
struct ComponentStatus {
  std::string name;                 // PartName: "eventsListener", "nats", ...
  bool ready = false;               // ready_replicas >= replicas (true when scaled to 0)
  std::int32_t replicas = 0;        // desired
  std::int32_t ready_replicas = 0;
  // Why it is not ready, or what runs (the local runner lists PIDs: "pid 4242").
  std::string message;

  bool operator==(const ComponentStatus&) const = default;
};

// True when every part is ready.
bool AllReady(const std::vector<ComponentStatus>& components);

// Where the controller itself reaches a pipeline's servers (for the finalizer's clean-up
// and the status statistics).
struct Endpoints {
  std::string nats_url;    // "nats://127.0.0.1:40123"
  std::string redis_addr;  // "127.0.0.1:40124"
  // The controller's credentials for them (ControllerSecurity); off when the pipeline
  // runs without security. Runners leave it empty: the controller, which keeps the
  // credentials, fills it in.
  ClientSecurity security;
};

// The runner cannot bring the pipeline into the wanted shape for a reason retrying does
// not fix (an object of the same name that another owner controls, a name the API
// rejects). The controller shows it as Ready=False, reason ComponentsFailed.
class RunnerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ComponentRunner {
 public:
  virtual ~ComponentRunner() = default;

  // "deployments" or "local".
  virtual std::string_view name() const = 0;

  // Creates, updates or starts everything `plan` describes (and removes parts it no
  // longer has, e.g. the metrics exporter when observability is switched off). Returns
  // the state of every part of the plan, in plan order. Throws RunnerError; the
  // deployments runner also kube::ApiError / TransportError (retry with backoff).
  virtual std::vector<ComponentStatus> Apply(const PipelinePlan& plan) = 0;

  // Stops the pipeline components of `ls` (NATS, Redis and the metrics exporter keep
  // running), without needing a valid configuration: for a LiveSynchronization that
  // became invalid. Nothing replicated is touched. No-op when nothing runs. Returns the
  // state of the parts that exist.
  virtual std::vector<ComponentStatus> StopPipeline(const kube::ObjectKey& ls) = 0;

  // Where the controller reaches the servers of `ls`; nullopt when unknown.
  virtual std::optional<Endpoints> ControllerEndpoints(const kube::ObjectKey& ls) = 0;

  // Removes everything of `ls`: stops the pipeline components, deletes its Redis keys
  // and JetStream stream where reachable (CleanUpPipelineState), then removes the
  // servers and every object or file. Blocks until done. Destination objects are never
  // touched. No-op for an unknown `ls`.
  // `security` is the controller's (ControllerSecurity), off when there is none.
  virtual void Teardown(const kube::ObjectKey& ls, const ClientSecurity& security) = 0;

  // How often the controller should look again while parts are not ready yet: the
  // local runner has no watch to wake the controller (short), the deployments runner's
  // Deployments are watched (0: no extra polling needed).
  virtual std::chrono::milliseconds StartupPollInterval() const = 0;
};

// Deletes the Redis keys ("ks:<id>:*") and the JetStream stream ("KS_<id>") of `ls` at
// `endpoints` (with endpoints.security), each bounded by `timeout` (connect + request).
// Best effort: an
// unreachable server is logged and skipped (its state dies with it). Never throws.
void CleanUpPipelineState(const kube::ObjectKey& ls, const Endpoints& endpoints,
                          std::chrono::milliseconds timeout);

}  // namespace ro::kubesync::runner

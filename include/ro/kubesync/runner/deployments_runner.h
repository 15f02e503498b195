// The default ComponentRunner: the pipeline as Kubernetes objects in the
// LiveSynchronization's namespace of the cluster the controller manages
// (docs/livesynchronization.md, "The deployments runner"):
//
//   Secret     <ls>-kubesync          config.json, both kubeconfigs, the bucket keys
//   Deployment <ls>-nats              nats-server -js, data on an emptyDir volume; with
//                                     components.nats.replicas 3 or 5 a StatefulSet of
//                                     that many members of one JetStream cluster, routes
//                                     on 6222 with mutual TLS, and the headless Service
//                                     <ls>-nats-routes naming each member
//   Deployment <ls>-redis             redis-server without persistence
//   Deployment <ls>-eventslistener, -processor, -synchronizer, -reconciler
//   Deployment <ls>-metricsexporter   only with observability.enabled
//   Service    <ls>-nats (4222), <ls>-redis (6379), <ls>-metrics (8080, observability)
//
// Every object has a controller ownerReference to the LiveSynchronization (the garbage
// collector removes them with it), the labels app.kubernetes.io/{name=kubesync,
// instance=<managed-by id>, component=<suffix>, part-of, managed-by}, and the pod
// security settings of deploy/operator (non-root 65532, read-only root filesystem, no
// privilege escalation, all capabilities dropped, RuntimeDefault seccomp). Objects are
// written only when they differ from what the cluster holds (IsSemanticSubset); a
// changed configuration rolls the kubesync pods through the pod template annotation
// kubesync.astronetes.io/config-hash.
#pragma once

#include <nlohmann/json.hpp>  // RenderedObject holds a json by value

#include <chrono>
#include <string>
#include <vector>

#include "ro/kube/gvr.h"
#include "ro/kubesync/runner/component_runner.h"

namespace ro::kube {
class DynamicClient;
}  // namespace ro::kube

namespace ro::kubesync::runner {

struct DeploymentsRunnerOptions {
  // Image with the `kubesync` binary at /usr/local/bin/kubesync: the operator's own
  // image (Containerfile), whose tag moves with the controller.
  std::string kubesync_image = "ghcr.io/resiliency-operator/resiliency-operator:0.1.0";
  // NATS with JetStream; 2.9 is the version the pipeline is tested against.
  std::string nats_image = "docker.io/library/nats:2.9.10";
  // Redis 7.0, the version the pipeline is tested against.
  std::string redis_image = "docker.io/library/redis:7.0.15";
  // Bound of the finalizer's connection to NATS/Redis (the controller runs in the
  // cluster, so the Services resolve; outside it they do not and this is skipped fast).
  std::chrono::milliseconds cleanup_timeout{3000};
  // The namespace of the operator's pods (POD_NAMESPACE): the NetworkPolicy lets its
  // livesynchronization-controller pods reach NATS and Redis (the finalizer's clean-up,
  // the status statistics).
  std::string operator_namespace = "resiliency-operator";
};

// One object the runner manages: its resource and its desired content.
struct RenderedObject {
  kube::GroupVersionResource gvr;
  nlohmann::json object;  // full object: apiVersion, kind, metadata, spec/data
};

// The objects of `plan`, in creation order: the components' Secret, with credentials the
// servers' Secret and the NetworkPolicy guarding NATS and Redis, the Services, the
// Deployments (and a NATS cluster's StatefulSet) (pure; the runner writes exactly these).
std::vector<RenderedObject> RenderPipelineObjects(const PipelinePlan& plan,
                                                  const DeploymentsRunnerOptions& options);

// The Placement of the Deployments: files under /etc/kubesync (the Secret mounted),
// nats://<ls>-nats:4222, <ls>-redis:6379 (Services of the same namespace).
Placement DeploymentsPlacement(const kube::ObjectKey& ls);

// status.components[] entry of one part from its Deployment or StatefulSet (as read from
// the cluster):
// desired spec.replicas, status.readyReplicas, ready when the controller observed the
// current generation and enough replicas are ready; the message quotes the Deployment's
// Available/Progressing condition when it is not ready.
ComponentStatus DeploymentComponentStatus(PipelinePart part, const nlohmann::json& deployment);

// Thread-safe (stateless apart from the shared client).
class DeploymentsRunner final : public ComponentRunner {
 public:
  // `client` (the cluster the controller manages) must outlive the runner.
  DeploymentsRunner(kube::DynamicClient& client, DeploymentsRunnerOptions options);

  std::string_view name() const override { return "deployments"; }
  std::vector<ComponentStatus> Apply(const PipelinePlan& plan) override;
  std::vector<ComponentStatus> StopPipeline(const kube::ObjectKey& ls) override;
  std::optional<Endpoints> ControllerEndpoints(const kube::ObjectKey& ls) override;
  void Teardown(const kube::ObjectKey& ls, const ClientSecurity& security) override;
  std::chrono::milliseconds StartupPollInterval() const override {
    return std::chrono::milliseconds{0};
  }

 private:
  // Creates `desired` or updates the existing object when it differs. Returns the
  // object as stored. Throws RunnerError when the name is taken by an object another
  // owner controls or the API rejects it as invalid.
  nlohmann::json Ensure(const RenderedObject& desired, const std::string& ls_name);
  // Deletes the object when it exists and this LiveSynchronization controls it.
  void DeleteOwned(const kube::GroupVersionResource& gvr, const kube::ObjectKey& ls,
                   const std::string& name);

  kube::DynamicClient& client_;
  const DeploymentsRunnerOptions options_;
};

}  // namespace ro::kubesync::runner

// Cost of the kubesync hot path per event for a typical Deployment (about 3 KB of JSON
// with managedFields, two containers, probes and status), with the manual's 8.2
// active-passive configuration (7 resources[] entries):
//   BM_CopyEvent           the deep copy a decoded event costs (baseline, not ours)
//   BM_Route               filter routing only (LiveSyncConfig::Route)
//   BM_ProcessorDecision   copy + DecideProcessing (filter, transform, sanitize, stamp)
//   BM_ProcessorDecisionWithBucket   same plus the bucket body (copy + serialize)
//   BM_SyncDecision        DecideSync against a metadata-only cached object
// Run: bench/k8splugin_bench (Google Benchmark flags apply).
#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include "ro/plugins/kubernetes/live_sync_config.h"
#include "ro/plugins/kubernetes/processor_decision.h"
#include "ro/plugins/kubernetes/synchronizer_decision.h"

namespace {

using nlohmann::json;
namespace k = ro::plugins::kubernetes;

json ActivePassiveConfig(bool bucket) {
  json c = json::parse(R"({
    "sourceName": "cluster-1", "destinationName": "cluster-2",
    "replication": {"resources": [
      {"group": "", "version": "v1", "resource": "services",
       "filters": {"namespaceSelector": {"matchLabels": {"sync": "true"}}}},
      {"group": "", "version": "v1", "resource": "secrets",
       "filters": {"namespaceSelector": {"matchLabels": {"sync": "true"}}}},
      {"group": "rbac.authorization.k8s.io", "version": "v1", "resource": "roles",
       "filters": {"namespaceSelector": {"matchLabels": {"sync": "true"}}}},
      {"group": "rbac.authorization.k8s.io", "version": "v1", "resource": "rolebindings",
       "filters": {"namespaceSelector": {"matchLabels": {"sync": "true"}}}},
      {"group": "", "version": "v1", "resource": "serviceaccounts",
       "filters": {"namespaceSelector": {"matchLabels": {"sync": "true"}},
                   "nameSelector": {"excludeRegex": ["^(default|deployer|builder)$"]}}},
      {"group": "networking.k8s.io", "version": "v1", "resource": "ingresses",
       "filters": {"namespaceSelector": {"matchLabels": {"sync": "true"}}}},
      {"group": "apps", "version": "v1", "resource": "deployments",
       "filters": {"namespaceSelector": {"matchLabels": {"sync": "true"}},
                   "nameSelector": {"excludeRegex": ["-canary$"]}},
       "transformation": {"patch": [{"op": "replace", "path": "/spec/replicas", "value": 0}]},
       "recoveryProcess": {"fromPatch": [{"op": "replace", "path": "/spec/replicas", "value": 1}]}}
    ]}})");
  if (bucket) c["bucketName"] = "bucket-dev";
  return c;
}

json TypicalDeployment() {
  return json::parse(R"({
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {
      "name": "checkout-api", "namespace": "shop", "uid": "5eb6d1d1-b694-4679-a482-d453bcd5317f",
      "resourceVersion": "61949", "generation": 7, "creationTimestamp": "2023-11-25T13:12:28Z",
      "labels": {"app": "checkout-api", "team": "payments", "app.kubernetes.io/version": "2.14.1"},
      "annotations": {"deployment.kubernetes.io/revision": "7",
                      "kubectl.kubernetes.io/last-applied-configuration": "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"checkout-api\",\"namespace\":\"shop\"}}"},
      "managedFields": [
        {"manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "apps/v1",
         "time": "2023-11-25T13:12:28Z", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}, "f:team": {}}},
                      "f:spec": {"f:replicas": {}, "f:selector": {}, "f:template": {"f:spec": {"f:containers": {}}}}}},
        {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "apps/v1",
         "time": "2023-11-28T18:05:26Z", "fieldsType": "FieldsV1", "subresource": "status",
         "fieldsV1": {"f:status": {"f:availableReplicas": {}, "f:conditions": {}, "f:readyReplicas": {}}}}]},
    "spec": {
      "replicas": 3, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
      "selector": {"matchLabels": {"app": "checkout-api"}},
      "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
      "template": {
        "metadata": {"labels": {"app": "checkout-api", "team": "payments"}},
        "spec": {
          "serviceAccountName": "checkout", "terminationGracePeriodSeconds": 30,
          "containers": [
            {"name": "api", "image": "registry.example.com/shop/checkout-api:2.14.1",
             "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
             "env": [{"name": "DB_HOST", "value": "postgres.shop.svc"},
                     {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
                     {"name": "LOG_LEVEL", "value": "info"}],
             "resources": {"limits": {"cpu": "1", "memory": "512Mi"}, "requests": {"cpu": "250m", "memory": "256Mi"}},
             "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 10},
             "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}, "periodSeconds": 20},
             "imagePullPolicy": "IfNotPresent"},
            {"name": "proxy", "image": "envoyproxy/envoy:v1.28.0",
             "args": ["-c", "/etc/envoy/envoy.yaml"],
             "volumeMounts": [{"name": "envoy", "mountPath": "/etc/envoy"}]}],
          "volumes": [{"name": "envoy", "configMap": {"name": "checkout-envoy"}}]}}},
    "status": {"observedGeneration": 7, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3,
               "availableReplicas": 3,
               "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                              {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}})");
}

const ro::kube::GroupVersionResource kDeployments{"apps", "v1", "deployments"};
const json kNamespaceLabels = {{"sync", "true"}, {"kubernetes.io/metadata.name", "shop"}};

void BM_CopyEvent(benchmark::State& state) {
  const json source = TypicalDeployment();
  for (auto _ : state) {
    json copy = source;
    benchmark::DoNotOptimize(copy);
  }
}
BENCHMARK(BM_CopyEvent);

void BM_Route(benchmark::State& state) {
  const k::LiveSyncConfig config = k::ParseLiveSyncConfig(ActivePassiveConfig(false));
  const json source = TypicalDeployment();
  for (auto _ : state) {
    benchmark::DoNotOptimize(config.Route(kDeployments, source, &kNamespaceLabels));
  }
}
BENCHMARK(BM_Route);

void ProcessorDecision(benchmark::State& state, bool bucket) {
  const k::LiveSyncConfig config = k::ParseLiveSyncConfig(ActivePassiveConfig(bucket));
  const k::StampInfo stamp = k::MakeStampInfo("dr-config", "active-passive", "dr-config", "cluster-1");
  const json source = TypicalDeployment();
  for (auto _ : state) {
    json object = source;  // what decoding the event would produce
    k::ProcessorDecision d = k::DecideProcessing(
        config, stamp, k::ProcessorEvent{k::EventType::kUpsert, false, kDeployments, object, &kNamespaceLabels});
    if (d.action != k::ProcessorAction::kUpsert) state.SkipWithError("expected an upsert");
    benchmark::DoNotOptimize(d);
    benchmark::DoNotOptimize(object);
  }
}
void BM_ProcessorDecision(benchmark::State& state) { ProcessorDecision(state, false); }
void BM_ProcessorDecisionWithBucket(benchmark::State& state) { ProcessorDecision(state, true); }
BENCHMARK(BM_ProcessorDecision);
BENCHMARK(BM_ProcessorDecisionWithBucket);

void BM_SyncDecision(benchmark::State& state) {
  const k::LiveSyncConfig config = k::ParseLiveSyncConfig(ActivePassiveConfig(false));
  const k::StampInfo stamp = k::MakeStampInfo("dr-config", "active-passive", "dr-config", "cluster-1");
  json desired = TypicalDeployment();
  k::DecideProcessing(config, stamp,
                      k::ProcessorEvent{k::EventType::kUpsert, false, kDeployments, desired, &kNamespaceLabels});
  // The synchronizer's cache keeps metadata only; the recorded version is older.
  json current = {{"metadata", desired["metadata"]}};
  current["metadata"]["annotations"]["kubesync.astronetes.io/source-resource-version"] = "61000";
  current["metadata"]["resourceVersion"] = "1234";
  for (auto _ : state) {
    k::SyncDecision d = k::DecideSync(k::EventType::kUpsert, desired, &current, stamp.managed_by);
    if (d.action != k::SyncAction::kUpdate) state.SkipWithError("expected an update");
    benchmark::DoNotOptimize(d);
  }
}
BENCHMARK(BM_SyncDecision);

}  // namespace

BENCHMARK_MAIN();

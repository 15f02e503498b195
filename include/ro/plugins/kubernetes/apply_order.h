// The order in which a recovery writes objects (docs/automation.md "Order"): what a
// workload needs is written before the workload, and what routes traffic or admission
// to a workload after it.
//
//   rank  stage             resources
//   0     Definitions       customresourcedefinitions (then wait for Established)
//   1     Namespaces        namespaces
//   2     Policies          resourcequotas, limitranges, networkpolicies,
//                           poddisruptionbudgets, priorityclasses, storageclasses
//   3     ServiceAccounts   serviceaccounts
//   4     Secrets           secrets
//   5     ConfigMaps        configmaps
//   6     RBAC              roles, rolebindings, clusterroles, clusterrolebindings
//   7     Storage           persistentvolumes, persistentvolumeclaims
//   8     Services          services, endpoints, endpointslices
//   9     CustomResources   everything not named here (a custom resource may hold what a
//                           workload mounts, e.g. a certificate's Secret)
//   10    Workloads         deployments, statefulsets, daemonsets, replicasets, pods,
//                           replicationcontrollers, jobs, cronjobs, horizontalpodautoscalers
//   11    Routing           ingresses, ingressclasses, gateways, httproutes, routes
//   12    Admission         mutatingwebhookconfigurations, validatingwebhookconfigurations,
//                           validatingadmissionpolicies(+bindings), apiservices
//
// A resource is known by its plural name in its group ("" core, apps, batch, ...); a
// custom resource that reuses a built-in plural in another group is a CustomResource.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

#include "ro/kube/gvr.h"

namespace ro::plugins::kubernetes {

enum class ApplyStage : int {
  kDefinitions = 0,
  kNamespaces,
  kPolicies,
  kServiceAccounts,
  kSecrets,
  kConfigMaps,
  kRbac,
  kStorage,
  kServices,
  kCustomResources,
  kWorkloads,
  kRouting,
  kAdmission,
};

// The stage of `gvr` (table above). Pure.
ApplyStage ApplyStageOf(const kube::GroupVersionResource& gvr);

// "Definitions", "Namespaces", ... (the table's names).
std::string_view ToString(ApplyStage stage);

// Positions 0..gvrs.size()-1 ordered by ApplyStageOf, ties kept in their given order
// (a stable sort). Pure.
std::vector<std::size_t> DependencyOrder(const std::vector<kube::GroupVersionResource>& gvrs);

}  // namespace ro::plugins::kubernetes

#include "ro/plugins/kubernetes/apply_order.h"

#include <algorithm>
#include <numeric>
#include <string>

namespace ro::plugins::kubernetes {

namespace {

struct Known {
  std::string_view group;
  std::string_view resource;
  ApplyStage stage;
};

// Built-in resources by group and plural. OpenShift's routes are routing too.
constexpr Known kKnown[] = {
    {"apiextensions.k8s.io", "customresourcedefinitions", ApplyStage::kDefinitions},
    {"", "namespaces", ApplyStage::kNamespaces},
    {"", "resourcequotas", ApplyStage::kPolicies},
    {"", "limitranges", ApplyStage::kPolicies},
    {"networking.k8s.io", "networkpolicies", ApplyStage::kPolicies},
    {"policy", "poddisruptionbudgets", ApplyStage::kPolicies},
    {"scheduling.k8s.io", "priorityclasses", ApplyStage::kPolicies},
    {"storage.k8s.io", "storageclasses", ApplyStage::kPolicies},
    {"", "serviceaccounts", ApplyStage::kServiceAccounts},
    {"", "secrets", ApplyStage::kSecrets},
    {"", "configmaps", ApplyStage::kConfigMaps},
    {"rbac.authorization.k8s.io", "roles", ApplyStage::kRbac},
    {"rbac.authorization.k8s.io", "rolebindings", ApplyStage::kRbac},
    {"rbac.authorization.k8s.io", "clusterroles", ApplyStage::kRbac},
    {"rbac.authorization.k8s.io", "clusterrolebindings", ApplyStage::kRbac},
    {"", "persistentvolumes", ApplyStage::kStorage},
    {"", "persistentvolumeclaims", ApplyStage::kStorage},
    {"", "services", ApplyStage::kServices},
    {"", "endpoints", ApplyStage::kServices},
    {"discovery.k8s.io", "endpointslices", ApplyStage::kServices},
    {"apps", "deployments", ApplyStage::kWorkloads},
    {"apps", "statefulsets", ApplyStage::kWorkloads},
    {"apps", "daemonsets", ApplyStage::kWorkloads},
    {"apps", "replicasets", ApplyStage::kWorkloads},
    {"", "pods", ApplyStage::kWorkloads},
    {"", "replicationcontrollers", ApplyStage::kWorkloads},
    {"batch", "jobs", ApplyStage::kWorkloads},
    {"batch", "cronjobs", ApplyStage::kWorkloads},
    {"autoscaling", "horizontalpodautoscalers", ApplyStage::kWorkloads},
    {"networking.k8s.io", "ingresses", ApplyStage::kRouting},
    {"networking.k8s.io", "ingressclasses", ApplyStage::kRouting},
    {"gateway.networking.k8s.io", "gateways", ApplyStage::kRouting},
    {"gateway.networking.k8s.io", "httproutes", ApplyStage::kRouting},
    {"route.openshift.io", "routes", ApplyStage::kRouting},
    {"admissionregistration.k8s.io", "mutatingwebhookconfigurations", ApplyStage::kAdmission},
    {"admissionregistration.k8s.io", "validatingwebhookconfigurations", ApplyStage::kAdmission},
    {"admissionregistration.k8s.io", "validatingadmissionpolicies", ApplyStage::kAdmission},
    {"admissionregistration.k8s.io", "validatingadmissionpolicybindings", ApplyStage::kAdmission},
    {"apiregistration.k8s.io", "apiservices", ApplyStage::kAdmission},
};

}  // namespace

ApplyStage ApplyStageOf(const kube::GroupVersionResource& gvr) {
  for (const Known& known : kKnown) {
    if (known.group == gvr.group && known.resource == gvr.resource) return known.stage;
  }
  return ApplyStage::kCustomResources;
}

std::string_view ToString(ApplyStage stage) {
  switch (stage) {
    case ApplyStage::kDefinitions: return "Definitions";
    case ApplyStage::kNamespaces: return "Namespaces";
    case ApplyStage::kPolicies: return "Policies";
    case ApplyStage::kServiceAccounts: return "ServiceAccounts";
    case ApplyStage::kSecrets: return "Secrets";
    case ApplyStage::kConfigMaps: return "ConfigMaps";
    case ApplyStage::kRbac: return "RBAC";
    case ApplyStage::kStorage: return "Storage";
    case ApplyStage::kServices: return "Services";
    case ApplyStage::kCustomResources: return "CustomResources";
    case ApplyStage::kWorkloads: return "Workloads";
    case ApplyStage::kRouting: return "Routing";
    case ApplyStage::kAdmission: return "Admission";
  }
  return "CustomResources";
}

std::vector<std::size_t> DependencyOrder(const std::vector<kube::GroupVersionResource>& gvrs) {
  std::vector<std::size_t> order(gvrs.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&gvrs](std::size_t a, std::size_t b) {
    return static_cast<int>(ApplyStageOf(gvrs[a])) < static_cast<int>(ApplyStageOf(gvrs[b]));
  });
  return order;
}

}  // namespace ro::plugins::kubernetes

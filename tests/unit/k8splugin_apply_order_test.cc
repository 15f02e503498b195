// The dependency order of a recovery (ro/plugins/kubernetes/apply_order.h,
// docs/automation.md "Order").
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ro/plugins/kubernetes/apply_order.h"

namespace ro::plugins::kubernetes {
namespace {

TEST(ApplyOrderTest, WhatAWorkloadNeedsComesBeforeItAndRoutingAndAdmissionAfter) {
  const std::vector<kube::GroupVersionResource> listed = {
      {"admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations"},
      {"apps", "v1", "deployments"},
      {"networking.k8s.io", "v1", "ingresses"},
      {"example.com", "v1", "widgets"},
      {"", "v1", "services"},
      {"", "v1", "configmaps"},
      {"rbac.authorization.k8s.io", "v1", "rolebindings"},
      {"", "v1", "secrets"},
      {"", "v1", "persistentvolumeclaims"},
      {"", "v1", "serviceaccounts"},
      {"batch", "v1", "cronjobs"},
      {"", "v1", "namespaces"},
      {"apiextensions.k8s.io", "v1", "customresourcedefinitions"},
      {"apps", "v1", "statefulsets"},
  };
  std::vector<std::string> ordered;
  for (const std::size_t i : DependencyOrder(listed)) ordered.push_back(listed[i].ToString());
  EXPECT_EQ(ordered, (std::vector<std::string>{
                         "apiextensions.k8s.io/v1/customresourcedefinitions",
                         "v1/namespaces",
                         "v1/serviceaccounts",
                         "v1/secrets",
                         "v1/configmaps",
                         "rbac.authorization.k8s.io/v1/rolebindings",
                         "v1/persistentvolumeclaims",
                         "v1/services",
                         "example.com/v1/widgets",
                         "apps/v1/deployments",  // ties keep the listed order
                         "batch/v1/cronjobs",
                         "apps/v1/statefulsets",
                         "networking.k8s.io/v1/ingresses",
                         "admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
                     }));
}

TEST(ApplyOrderTest, AKindIsKnownByGroupAndPlural) {
  EXPECT_EQ(ApplyStageOf({"apps", "v1", "deployments"}), ApplyStage::kWorkloads);
  // A custom resource that reuses a built-in plural is a custom resource.
  EXPECT_EQ(ApplyStageOf({"example.com", "v1", "deployments"}), ApplyStage::kCustomResources);
  EXPECT_EQ(ApplyStageOf({"", "v1", "deployments"}), ApplyStage::kCustomResources);
  EXPECT_EQ(ToString(ApplyStageOf({"", "v1", "secrets"})), "Secrets");
  EXPECT_EQ(ToString(ApplyStage::kAdmission), "Admission");
  EXPECT_TRUE(DependencyOrder({}).empty());
}

}  // namespace
}  // namespace ro::plugins::kubernetes

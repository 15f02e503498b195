// What is never copied from a source object to the destination or the bucket
// (docs/kubesync.md "Sanitizing"): server-set metadata, status, ownerReferences and the
// per-cluster fields of some kinds; and which objects are not replicated at all.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include "ro/kube/gvr.h"

namespace ro::plugins::kubernetes {

// Removes, in place:
//   every object: metadata.uid, resourceVersion, generation, creationTimestamp,
//     deletionTimestamp, deletionGracePeriodSeconds, selfLink, managedFields,
//     ownerReferences, and status.
//   core services: spec.clusterIP and spec.clusterIPs (except the headless "None"),
//     spec.ports[].nodePort, spec.healthCheckNodePort.
//   core serviceaccounts: secrets (token Secrets are per cluster).
//   core persistentvolumeclaims: spec.volumeName and the binding annotations the PV
//     controller sets (pv.kubernetes.io/bind-completed, pv.kubernetes.io/bound-by-controller,
//     volume.kubernetes.io/selected-node, volume(.beta).kubernetes.io/storage-provisioner):
//     copied, they make the destination's PV controller treat the claim as lost.
//   batch jobs without spec.manualSelector: spec.selector and the controller-uid labels
//     (controller-uid, batch.kubernetes.io/controller-uid) of metadata.labels,
//     spec.template.metadata.labels; the destination's apiserver generates new ones.
// The kind is recognised by `gvr` (group + resource), not by `kind`. Objects that are not
// JSON objects are left alone. Never throws on unexpected shapes (fields of the wrong
// type are left as they are).
void Sanitize(const kube::GroupVersionResource& gvr, nlohmann::json& object);

// False for objects that must not be replicated even when a filter selects them:
//   core secrets of type kubernetes.io/service-account-token (tokens are signed by the
//     source cluster's keys);
//   core configmaps kube-root-ca.crt and openshift-service-ca.crt (published into every
//     namespace by the destination's own controllers with the destination's CA;
//     overwriting them breaks in-cluster TLS to the apiserver);
//   discovery.k8s.io endpointslices managed by the endpointslice(-mirroring) controller
//     (regenerated from the destination's Services and Pods).
bool ShouldReplicate(const kube::GroupVersionResource& gvr, const nlohmann::json& object);

}  // namespace ro::plugins::kubernetes

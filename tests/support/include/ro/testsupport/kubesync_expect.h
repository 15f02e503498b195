// What a LiveSynchronization's destination must hold, for integration and e2e tests:
// the expected destination form of a source object, a comparison that ignores what the
// destination's apiserver sets by itself, and whole-resource convergence checks between
// two clusters. Built on the product's own pure decision (DecideProcessing), which its
// unit tests pin down, so a test checks what the running pipeline delivers.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ro/kube/client.h"
#include "ro/plugins/kubernetes/control_metadata.h"
#include "ro/plugins/kubernetes/live_sync_config.h"

namespace ro::testsupport {

// The destination object the pipeline must produce for `source` (as read from the source
// cluster): filtered, transformed, sanitized and stamped exactly as the processor does;
// nullopt when the object must be absent from the destination (not selected, or never
// replicated such as token Secrets). `namespace_labels`: metadata.labels of the object's
// namespace (JSON null for none), nullptr for cluster-scoped objects.
std::optional<nlohmann::json> ExpectedDestination(const plugins::kubernetes::LiveSyncConfig& config,
                                                  const plugins::kubernetes::StampInfo& stamp,
                                                  const kube::GroupVersionResource& gvr, const nlohmann::json& source,
                                                  const nlohmann::json* namespace_labels);

// "" when `actual` (read from the destination) equals `expected` ignoring what the
// destination's apiserver and controllers set: metadata.{uid, resourceVersion,
// generation, creationTimestamp, managedFields, selfLink}, status, Service
// spec.clusterIP(s) and node ports, ServiceAccount secrets, the annotation
// deployment.kubernetes.io/revision of Deployments. Otherwise the difference as
// a JSON Patch from expected to actual (compact text).
std::string DiffIgnoringServerFields(const kube::GroupVersionResource& gvr, const nlohmann::json& expected,
                                     const nlohmann::json& actual);

// The outcome of comparing one resource between the clusters.
struct Convergence {
  std::size_t expected = 0;           // objects the destination must hold
  std::vector<std::string> problems;  // "missing ns/name", "unexpected ns/name", "differs ns/name: <patch>"
  bool converged() const { return problems.empty(); }
  // The first few problems on one line, for assertion messages.
  std::string Summary(std::size_t max = 5) const;
};

// Lists `gvr` in both clusters (and the source's namespaces) and checks, object by
// object, that the destination objects managed by `stamp.managed_by` are exactly
// ExpectedDestination of the source objects. `namespaces`: limit the check to these
// (empty: every namespace). Throws ApiError/TransportError.
Convergence CompareClusters(kube::DynamicClient& source, kube::DynamicClient& destination,
                            const plugins::kubernetes::LiveSyncConfig& config,
                            const plugins::kubernetes::StampInfo& stamp, const kube::GroupVersionResource& gvr,
                            const std::vector<std::string>& namespaces = {});

// Managed destination objects whose recorded source resourceVersion
// (kubesync.astronetes.io/source-resource-version) differs from their source object's
// current one ("ns/name: recorded X, source Y"); objects absent at the source are not
// reported (that is pruning, see CompareClusters). After convergence this must be empty:
// no stale event overwrote a newer one.
std::vector<std::string> StaleDestinationObjects(kube::DynamicClient& source, kube::DynamicClient& destination,
                                                 const plugins::kubernetes::StampInfo& stamp,
                                                 const kube::GroupVersionResource& gvr,
                                                 const std::vector<std::string>& namespaces = {});

}  // namespace ro::testsupport

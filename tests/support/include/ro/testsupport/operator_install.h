// The operator installed from its image into a cluster with a node, as a user does it
// (manual section 3, docs/installation.md): shared by the in-cluster e2e test and the
// in-cluster benchmark.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "ro/kube/client.h"
#include "ro/testenv/kube_cluster.h"

namespace ro::testsupport {

// Namespace of the operator (manual section 3).
inline constexpr const char* kOperatorNamespace = "resiliency-operator";
// The operator's image reference (deploy/operator/operator.yaml) and the ones
// scripts/build-image.sh gives NATS, Redis and busybox.
inline constexpr const char* kOperatorImage = "ghcr.io/resiliency-operator/resiliency-operator:0.1.0";
inline constexpr const char* kNatsImage = "localhost/resiliency-operator/nats:2.9.10";
inline constexpr const char* kRedisImage = "localhost/resiliency-operator/redis:7.0.15";
inline constexpr const char* kBusyboxImage = "localhost/resiliency-operator/busybox:1.35.0";

// The eight controllers: the Deployment of "<c>" is resiliency-operator-<c>-controller.
const std::vector<std::string>& OperatorControllers();

// Directory of the Release binaries that go into the image: $RO_OPERATOR_BIN_DIR, else
// <source>/build/release/bin (scripts/test.sh builds it). Throws std::runtime_error,
// naming the build command, when kubesync or a controller is missing there.
std::filesystem::path OperatorBinDir();

// scripts/build-image.sh --binaries <bin_dir> operator nats redis busybox (cached:
// seconds when current, minutes cold), then imports the four archives into the node of
// `cluster`. Throws std::runtime_error / TestEnvError with the failing step's output.
void BuildAndImportImages(const testenv::KubeCluster& cluster, const std::filesystem::path& bin_dir);

// A license Secret (deploy/operator/license-key.example.yaml) whose license names
// `licensee`, as JSON for kubectl.
std::string LicenseSecret(const std::string& licensee);

// Manual section 3 with the images of BuildAndImportImages: kubectl create namespace,
// the license Secret, the CRDs (waits for Established), then `kubectl -n
// resiliency-operator apply -k deploy/overlays/local-images`, and waits until the eight
// controller Deployments have rolled out. Returns the time from that apply to all
// controllers available. Throws on failure (with pods and events).
std::chrono::milliseconds InstallOperator(const testenv::KubeCluster& cluster, kube::DynamicClient& client,
                                          const std::string& licensee);

// Waits until Deployment ns/name has rolled out: its current generation observed, every
// replica updated and available, no old replica left. Throws std::runtime_error with the
// Deployment's status, the namespace's pods and Events on timeout.
void WaitForRollout(const testenv::KubeCluster& cluster, kube::DynamicClient& client, const std::string& ns,
                    const std::string& name, std::chrono::milliseconds timeout);

}  // namespace ro::testsupport

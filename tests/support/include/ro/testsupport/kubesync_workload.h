// The write load of the Kubesync chaos and fault tests: writer threads that create,
// update and delete ConfigMaps and Deployments in a few source namespaces at a fixed total
// rate, each object owned by exactly one writer (so a writer's belief about its objects
// is exact but for unanswered requests). Shared by kubesync_chaos_test and
// kubesync_fault_table_test.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ro/kube/client.h"
#include "ro/testenv/kube_cluster.h"

namespace ro::testsupport {

inline const kube::GroupVersionResource kWorkloadConfigMaps{"", "v1", "configmaps"};
inline const kube::GroupVersionResource kWorkloadDeployments{"apps", "v1", "deployments"};

struct WorkloadOptions {
  // Source namespaces (they must exist); each holds the objects below.
  std::vector<std::string> namespaces;
  int config_maps_per_namespace = 80;   // cm-0 ...
  int deployments_per_namespace = 20;   // deploy-0 ...
  // Writer threads (one admin client each) and their total rate (operations/s).
  int writers = 4;
  double ops_per_second = 200;
  unsigned seed = 1234;
};

// Version `version` of the workload's ConfigMap / Deployment `ns/name`.
nlohmann::json WorkloadConfigMap(const std::string& ns, const std::string& name, int version);
nlohmann::json WorkloadDeployment(const std::string& ns, const std::string& name, int version);

// Each operation picks one of the writer's objects at random: create it when the writer
// believes it absent, else update it (70 %) or delete it (30 %). Errors from races with
// a fault (AlreadyExists, NotFound, no answer) are counted and only correct the belief.
// Start()/Stop() may alternate: the writers' beliefs carry over. Not thread-safe (the
// counters are).
class WorkloadWriter {
 public:
  // `source`: the cluster written to (admin clients; must outlive the writer).
  WorkloadWriter(const testenv::KubeCluster& source, WorkloadOptions options);
  ~WorkloadWriter();  // Stop()
  WorkloadWriter(const WorkloadWriter&) = delete;
  WorkloadWriter& operator=(const WorkloadWriter&) = delete;

  // Starts the writer threads. No-op while running.
  void Start();
  // Stops them and waits until every request in flight has returned. Idempotent.
  void Stop();

  // Operations that succeeded / failed since construction.
  int ops() const { return ops_.load(); }
  int failures() const { return failures_.load(); }

 private:
  struct Target {
    const kube::GroupVersionResource* gvr;
    std::string ns;
    std::string name;
    bool exists = false;
    int version = 0;
  };
  void WriterMain(std::size_t writer, std::stop_token stop);

  const WorkloadOptions options_;
  std::vector<std::unique_ptr<kube::DynamicClient>> clients_;  // one per writer
  std::vector<std::vector<Target>> targets_;                   // per writer, its thread only
  std::vector<std::jthread> threads_;
  std::atomic<int> ops_{0};
  std::atomic<int> failures_{0};
};

}  // namespace ro::testsupport

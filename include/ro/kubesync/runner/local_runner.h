// The local ComponentRunner (--component-runner=local): the same PipelinePlan run as
// processes on the controller's host, for clusters without nodes to run Deployments on
// (tests, the demo, a laptop). docs/livesynchronization.md, "The local runner".
//
// Per LiveSynchronization, under <runtime_dir>/<namespace>/<name>/ (mode 0700):
//   files/   config.json, the kubeconfigs and bucket keys (0600): the Secret's content
//   nats/    JetStream's store dir        redis/   Redis' working dir (no persistence)
//   logs/<suffix>-<i>.log   run/<suffix>-<i>.pid (while it runs), per process: <suffix>
//   is PartSuffix ("nats", "processor", ...), <i> the replica index from 0
// processes (each on 127.0.0.1 only, on ports picked free once per LiveSynchronization):
//   nats-server -a 127.0.0.1 -p P -js -sd nats/
//   redis-server --bind 127.0.0.1 --port P --save '' --appendonly no --dir redis/
//   kubesync <component> --config files/config.json --health-probe-bind-address
//            127.0.0.1:H [--metrics-bind-address 127.0.0.1:M] --log-level L
// one process per replica. Readiness: TCP connect (servers), /readyz = 200 (kubesync).
// status.components[].message lists the PIDs ("pid 4242", "pids 4242, 4243").
//
// The processes are children of the controller (ProcessSupervisor): restarted with
// backoff when they exit, killed by the kernel when the controller dies. A restarted
// controller starts them again; NATS' store dir survives, Redis' state is rebuilt by a
// relist.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "ro/kubesync/runner/component_runner.h"
#include "ro/kubesync/runner/process_supervisor.h"

namespace ro::kubesync::runner {

struct LocalRunnerOptions {
  // The `kubesync` binary (absolute path). Required.
  std::filesystem::path kubesync_binary;
  // nats-server and redis-server: absolute paths, or names looked up in $PATH.
  std::string nats_server_binary = "nats-server";
  std::string redis_server_binary = "redis-server";
  // Parent of every LiveSynchronization's directory. Required. Two controllers on one
  // host need different directories.
  std::filesystem::path runtime_dir;
  SupervisorOptions supervisor;
  // Bound of the finalizer's connection to the local NATS/Redis.
  std::chrono::milliseconds cleanup_timeout{3000};
};

// Thread-safe.
class LocalRunner final : public ComponentRunner {
 public:
  // Resolves the binaries (std::invalid_argument naming a missing one, an empty
  // kubesync_binary or runtime_dir) and starts the supervisor.
  explicit LocalRunner(LocalRunnerOptions options);
  // Stops every process (the supervisor's destructor).
  ~LocalRunner() override;

  std::string_view name() const override { return "local"; }
  std::vector<ComponentStatus> Apply(const PipelinePlan& plan) override;
  std::vector<ComponentStatus> StopPipeline(const kube::ObjectKey& ls) override;
  std::optional<Endpoints> ControllerEndpoints(const kube::ObjectKey& ls) override;
  void Teardown(const kube::ObjectKey& ls, const ClientSecurity& security) override;
  // Processes start in about a second; nothing watches them for the controller.
  std::chrono::milliseconds StartupPollInterval() const override {
    return std::chrono::milliseconds{1000};
  }

  // <runtime_dir>/<namespace>/<name>.
  std::filesystem::path DirectoryOf(const kube::ObjectKey& ls) const;

 private:
  // Ports and the last plan of one LiveSynchronization.
  struct Instance {
    std::uint16_t nats_port = 0;
    std::uint16_t redis_port = 0;
    int nats_members = 0;  // nats-servers of the last plan (0: none applied yet)
    // Health (and metrics) ports per kubesync process id ("processor-0").
    std::map<std::string, std::uint16_t> ports;
    std::vector<ChildSpec> children;   // what was last asked of the supervisor
    std::map<std::string, PipelinePart> part_of;  // child id -> its part
    std::vector<PipelinePart> parts;   // parts of the last plan, in plan order
    std::map<std::string, std::int32_t> replicas;  // PartName -> desired replicas
    // The servers' rendered files (with credentials), whose hashes restart them: one
    // nats-server configuration per member of the JetStream cluster.
    std::vector<std::string> nats_configs;
    std::string redis_acl;
  };

  Instance& InstanceFor(const kube::ObjectKey& ls);  // REQUIRES: mu_ held
  std::uint16_t PortFor(Instance& instance, const std::string& id);  // REQUIRES: mu_ held
  // nats-server member `member`'s client and route ports (member 0's client port is
  // nats_port). REQUIRES: mu_ held
  std::uint16_t NatsClientPort(Instance& instance, int member);
  std::uint16_t NatsRoutePort(Instance& instance, int member);
  // Every member's client URL, comma-separated. REQUIRES: mu_ held
  std::string NatsUrl(Instance& instance, int members);
  std::vector<ChildSpec> ChildrenFor(const PipelinePlan& plan, Instance& instance,
                                     const std::string& fingerprint);  // REQUIRES: mu_ held
  std::vector<ComponentStatus> StatusOf(const kube::ObjectKey& ls,
                                        const Instance& instance) const;

  // Constant after construction.
  const LocalRunnerOptions options_;
  std::string nats_server_;   // resolved absolute paths
  std::string redis_server_;

  mutable std::mutex mu_;
  // Guarded by mu_.
  std::map<kube::ObjectKey, Instance> instances_;
  std::set<std::uint16_t> used_ports_;

  std::unique_ptr<ProcessSupervisor> supervisor_;  // last: stops the children first
};

// A TCP port on 127.0.0.1 that is free now, not in `avoid`: the kernel's choice for a
// bind to port 0, released at once. Another process may take it before our child binds
// it (unlikely: the kernel picks at random among ~28k ephemeral ports); the child then
// exits and is restarted with backoff. Throws RunnerError when no port can be bound.
std::uint16_t PickFreePort(const std::set<std::uint16_t>& avoid);

}  // namespace ro::kubesync::runner

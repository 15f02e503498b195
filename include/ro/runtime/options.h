// The manager's options and the command line every controller binary accepts
// (docs/runtime.md lists them). Parsing is CLI11's; this header hides it.
//
// Common flags (identical on all eight binaries):
//   --kubeconfig PATH                   (default: $KUBECONFIG, in-cluster, ~/.kube/config)
//   --namespace NS                      watch one namespace (default: all)
//   --leader-elect                      campaign for the Lease before reconciling
//   --leader-election-namespace NS      (default: $POD_NAMESPACE, else resiliency-operator)
//   --leader-election-id NAME           the Lease name (default: the binary name)
//   --leader-elect-lease-duration D     (default 15s)  Go durations: "15s", "1m30s"
//   --leader-elect-renew-deadline D     (default 10s)
//   --leader-elect-retry-period D       (default 2s)
//   --metrics-bind-address ADDR         (default ":8080"; "0" disables)
//   --health-probe-bind-address ADDR    (default ":8081"; "0" disables)
//   --log-level LEVEL                   debug | info | warn | error (default info)
//   --license-file PATH                 (default /etc/resiliency-operator/license/license)
//   --max-concurrent-reconciles N       (default 1)
//   --graceful-shutdown-timeout D       (default 25s)
// plus what the binary's main registers on the FlagSet (e.g. --recheck-interval).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace ro::runtime {

struct ManagerOptions {
  // The binary's name: process.id of log lines, Event source, default Lease name.
  std::string binary_name;
  std::string kubeconfig;
  std::string ns;  // "" = all namespaces
  bool leader_elect = false;
  std::string leader_election_namespace;
  std::string leader_election_id;
  // client-go's defaults (see ro/kube/leader_election.h).
  std::chrono::milliseconds lease_duration{15'000};
  std::chrono::milliseconds renew_deadline{10'000};
  std::chrono::milliseconds retry_period{2'000};
  std::string metrics_bind_address = ":8080";
  std::string health_probe_bind_address = ":8081";
  std::string log_level = "info";
  std::string license_file = "/etc/resiliency-operator/license/license";
  int max_concurrent_reconciles = 1;
  // Upper bound for a clean shutdown after SIGTERM (stop workers, release the Lease,
  // flush Events). Kubernetes' default terminationGracePeriodSeconds is 30 s; 25 s
  // leaves the kubelet's SIGKILL 5 s of margin.
  std::chrono::milliseconds graceful_shutdown_timeout{25'000};

  // Throws std::invalid_argument naming the first bad option.
  void Validate() const;
};

// The command line is not valid (or --help / --version was asked for). exit_code() is
// what the process should exit with (0 for --help), message() what to print.
class FlagError : public std::runtime_error {
 public:
  FlagError(int exit_code, const std::string& message)
      : std::runtime_error(message), exit_code_(exit_code) {}
  int exit_code() const noexcept { return exit_code_; }

 private:
  int exit_code_;
};

// Where a binary registers its own flags before parsing. Targets must outlive Parse().
class FlagSet {
 public:
  FlagSet();
  ~FlagSet();
  FlagSet(const FlagSet&) = delete;
  FlagSet& operator=(const FlagSet&) = delete;

  // A Go duration ("5m", "30s"); the target's value is the default.
  void AddDuration(const std::string& name, std::chrono::milliseconds* target,
                   const std::string& help);
  void AddString(const std::string& name, std::string* target, const std::string& help);
  void AddInt(const std::string& name, int* target, const std::string& help);
  void AddBool(const std::string& name, bool* target, const std::string& help);

 private:
  friend ManagerOptions ParseFlags(const std::vector<std::string>& args,
                                   const std::string& binary_name, FlagSet& extra,
                                   const std::function<std::string(const char*)>& getenv);
  struct Flag;
  std::vector<std::unique_ptr<Flag>> flags_;
};

// Parses `args` (argv without argv[0]) into options for `binary_name`, filling `extra`'s
// targets too. Defaults that depend on the environment come from `getenv`
// ($POD_NAMESPACE). Throws FlagError (message: CLI11's diagnosis or the help text).
ManagerOptions ParseFlags(const std::vector<std::string>& args, const std::string& binary_name,
                          FlagSet& extra,
                          const std::function<std::string(const char*)>& getenv);

}  // namespace ro::runtime

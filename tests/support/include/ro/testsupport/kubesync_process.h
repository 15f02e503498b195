// Running the real `kubesync` binary in tests and benchmarks: the configuration file a
// LiveSynchronization controller would write, one component process (start, wait for
// /readyz, SIGTERM, kill -9, restart, its JSON log lines), and the pipeline of one
// LiveSynchronization (all its components).
#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ro/kubesync/kubesync_config.h"
#include "ro/testenv/testenv.h"

namespace ro::testsupport {

// A kubesync configuration for LiveSynchronization `ls_namespace/ls_name` with
// `spec_config` (its spec.config, verbatim) replicating from `source` to `destination`
// (admin kubeconfigs; KubernetesClusters named spec_config.sourceName/destinationName in
// `ls_namespace`). `s3` non-null: the Bucket named spec_config.bucketName on that server,
// object-store bucket `bucket_name`.
kubesync::KubesyncConfig MakeKubesyncConfig(const std::string& ls_namespace, const std::string& ls_name,
                                            const nlohmann::json& spec_config, const testenv::KubeCluster& source,
                                            const testenv::KubeCluster& destination, const std::string& nats_url,
                                            const std::string& redis_addr, const testenv::S3Server* s3 = nullptr,
                                            const std::string& bucket_name = "");

// Writes ToJson(config) to `path` (0600: it holds bucket credentials).
void WriteKubesyncConfig(const std::filesystem::path& path, const kubesync::KubesyncConfig& config);

// GET http://127.0.0.1:<port><path>: the status (0 when nothing answered) and the body.
struct HttpAnswer {
  long status = 0;
  std::string body;
};
HttpAnswer HttpGet(std::uint16_t port, const std::string& path);

// One `kubesync <subcommand> --config FILE` process with its own health (and metrics)
// port and log file (appended across restarts). Not thread-safe.
class KubesyncProcess {
 public:
  KubesyncProcess(std::string subcommand, std::filesystem::path config, std::filesystem::path log_path,
                  std::string log_level = "info");
  ~KubesyncProcess();
  KubesyncProcess(const KubesyncProcess&) = delete;
  KubesyncProcess& operator=(const KubesyncProcess&) = delete;

  // Spawns the binary ($RO_BIN_DIR/kubesync) and waits until /readyz answers 200.
  // Throws testenv::TestEnvError (with the log tail) when it exits or is not ready in time.
  void Start(std::chrono::milliseconds ready_timeout = std::chrono::seconds{60});
  // SIGTERM and wait for the exit (SIGKILL after 20 s). Returns how it ended ("exit
  // status 0"), "" when it was not running.
  std::string Stop();
  // kill -9, then reap.
  void Kill();
  bool Running() const;
  pid_t pid() const;

  const std::string& subcommand() const { return subcommand_; }
  const std::filesystem::path& log_path() const { return log_path_; }
  std::uint16_t health_port() const { return health_port_.port(); }
  std::uint16_t metrics_port() const { return metrics_port_.port(); }
  // Every line of the log file that parses as JSON (a line that does not is returned as
  // {"unparsed": "<line>"}).
  std::vector<nlohmann::json> LogLines() const;
  // The last `lines` lines of the log file (stdout and stderr, e.g. a sanitizer report);
  // "" before the first start.
  std::string LogTail(std::size_t lines = 40) const;
  // Peak resident set size (kB) of the running process: VmHWM from /proc/<pid>/status.
  std::optional<long> PeakRssKb() const;

 private:
  const std::string subcommand_;
  const std::filesystem::path config_;
  const std::filesystem::path log_path_;
  const std::string log_level_;
  testenv::PortLease health_port_;
  testenv::PortLease metrics_port_;
  std::unique_ptr<testenv::Process> process_;
  std::optional<std::string> last_exit_;
};

// The components of one LiveSynchronization, each a KubesyncProcess logging to
// <dir>/<subcommand>.log. Not thread-safe.
class KubesyncPipeline {
 public:
  // The four pipeline components by default; add "metrics-exporter" when wanted. A
  // further replica of a component is named "<subcommand>#<n>" (e.g. "processor#2"):
  // the same subcommand, its own process and log <dir>/<subcommand>#<n>.log.
  KubesyncPipeline(const std::filesystem::path& config, const std::filesystem::path& dir,
                   std::vector<std::string> subcommands = {"events-listener", "processor", "synchronizer",
                                                           "reconciler"},
                   std::string log_level = "info");
  // Starts every component (in parallel: start-up is mostly waiting for informers).
  void StartAll();
  // SIGTERM to every component; returns "<subcommand>: <exit>" for any that did not exit 0,
  // followed by the last lines of its log.
  std::vector<std::string> StopAll();
  // A component by its name in the constructor ("processor", "processor#2").
  KubesyncProcess& operator[](std::string_view name);

 private:
  std::map<std::string, std::unique_ptr<KubesyncProcess>, std::less<>> processes_;
};

}  // namespace ro::testsupport

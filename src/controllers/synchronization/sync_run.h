// One run of a Synchronization's plugin (zookeeper-to-zookeeper-nodes; docs/zookeeper.md,
// "Runners"), the same code under both runners:
//
//   local  the controller calls RunCopy on the worker that reconciles the Synchronization
//   job    the controller writes a run file (RunFileJson) into a Secret and starts a Job of
//          the operator image; its pod runs `synchronization-controller --run-once=<file>`
//          (RunOnceMain), which calls RunCopy and writes the outcome (OutcomeJson) to its
//          termination message, where the controller reads it back (OutcomeFromJson).
//
// The run file (a Secret: it holds the Databases' digest passwords):
//   {"config": <spec.config verbatim>,
//    "source":      {"name": "zookeeper-1", "servers": ["10.0.1.11:2181", ...],
//                    "username": "...", "password": "..."},   (the last two optional)
//    "destination": {... the same ...},
//    "connectTimeoutMilliseconds": 10000}
//
// The outcome (at most kMaxOutcomeBytes, below the kubelet's 4 KiB termination message):
//   {"succeeded": true, "counts": {"created", "updated", "deleted", "unchanged", "skipped",
//    "bytes", "writes", "transactions"}, "durationMilliseconds": 812}
//   {"succeeded": false, "reason": "Unreachable", "message": "..."}
#pragma once

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "ro/plugins/zookeeper/nodes_sync.h"
#include "ro/plugins/zookeeper_client.h"

namespace ro::controllers::sync {

// What a run needs of one Database (resolved from the Database and its Secret).
struct DatabaseTarget {
  std::string name;
  std::vector<std::string> servers;  // host:port
  std::optional<plugins::ZooKeeperDigest> digest;
};

// How one run ended. `reason` (failures): the Ready reason (kReasonSync* of
// synchronization_controller.h: RootPathMissing, Unreachable, NotAuthorized,
// ZooKeeperError, InvalidConfig).
struct CopyOutcome {
  bool succeeded = false;
  std::string reason;
  std::string message;
  plugins::zookeeper::NodesSyncResult result;  // succeeded only
};

// Connects to both Databases and copies (plugins::zookeeper::SyncNodes). Never throws for
// a ZooKeeper or tree failure: it is the outcome, classified (a transport failure or an
// expired session is Unreachable, NoAuth/AuthFailed NotAuthorized, a missing rootPath
// RootPathMissing, anything else ZooKeeperError).
CopyOutcome RunCopy(const plugins::zookeeper::NodesSyncConfig& config, const DatabaseTarget& source,
                    const DatabaseTarget& destination, std::chrono::milliseconds connect_timeout);

// The run file's JSON (above). `spec_config` is the Synchronization's spec.config.
std::string RunFileJson(const nlohmann::json& spec_config, const DatabaseTarget& source,
                        const DatabaseTarget& destination, std::chrono::milliseconds connect_timeout);

// A run file that cannot be read back (missing member, wrong type).
class RunFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The largest OutcomeJson: the kubelet keeps at most 4096 bytes of a termination message.
inline constexpr std::size_t kMaxOutcomeBytes = 4000;

// The outcome's JSON (above); a long message is cut so that the whole stays within
// kMaxOutcomeBytes.
std::string OutcomeJson(const CopyOutcome& outcome);
// Reads OutcomeJson back. Throws std::invalid_argument when `text` is not one.
CopyOutcome OutcomeFromJson(std::string_view text);

// The Job pod's program: reads the run file at `run_file`, runs the copy, writes
// OutcomeJson to `termination_log` (the container's terminationMessagePath) and one JSON
// log line to stdout. Returns the exit code: 0 succeeded, 1 the copy failed, 2 the run
// file is unreadable (also written as an outcome, reason InvalidConfig).
int RunOnceMain(const std::string& run_file, const std::string& termination_log);

}  // namespace ro::controllers::sync

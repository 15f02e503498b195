// The Database controller (manual 5.4 and 6.3; reasons: docs/assets-database.md).
//
// For each Database it takes the ZooKeeper ensemble's client servers
// (spec.zookeeper.client.servers), opens a session within --connect-timeout and reads
// the root znode's stat, which proves the ensemble serves requests; with
// spec.zookeeper.admin it also reads the server's `srvr` report (status.serverVersion). The
// result is the Ready condition, with status.servers (comma-joined). It re-checks every
// --recheck-interval.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "ro/runtime/condition_reconciler.h"
#include "ro/runtime/controller.h"

namespace ro::runtime {
class FlagSet;
class Manager;
}  // namespace ro::runtime

namespace ro::controllers {

// Ready reasons (docs/assets-database.md).
inline constexpr const char* kReasonDatabaseConnected = "Connected";
inline constexpr const char* kReasonDatabaseInvalidSpec = "InvalidSpec";
inline constexpr const char* kReasonDatabaseUnreachable = "Unreachable";
inline constexpr const char* kReasonDatabaseAdminUnreachable = "AdminUnreachable";

struct DatabaseOptions {
  // Re-check period of every database.
  std::chrono::milliseconds recheck_interval{std::chrono::minutes{5}};
  // How long a session may take to establish. ZooKeeper clients retry the servers of
  // the list in turn; 5 s covers a few attempts without holding a worker for long.
  std::chrono::milliseconds connect_timeout{std::chrono::seconds{5}};
};

// assets.astronetes.io/v1alpha1 Database.
runtime::ObjectType DatabaseType();

// Registers --recheck-interval and --connect-timeout.
void AddDatabaseFlags(runtime::FlagSet& flags, DatabaseOptions* options);

// Registers the controller: For(Database).
void SetupDatabaseController(runtime::Manager& manager, const DatabaseOptions& options);

// --- The decision, with its I/O injected (unit-testable) -----------------------------

// "" when `server` is a valid "host:port", else what is wrong with it.
std::string CheckZooKeeperServer(const std::string& server);

// Connects to the ZooKeeper ensemble `servers` ("host:port") and reads "/". Throws
// plugins::ZooKeeperError.
using ZooKeeperProbe = std::function<void(const std::vector<std::string>& servers)>;

// Every server must be "host:port" (host a name, an IPv4 address or a bracketed IPv6
// address; port 1..65535), else InvalidSpec naming the entry. Any ZooKeeperError of the
// probe is Unreachable (the session or the read did not complete), except
// kBadArguments, which the library raises for a server list it cannot use: InvalidSpec.
//
// With spec.zookeeper.admin and an `admin_probe`, the server's own `srvr` report is read
// too (plugins::QueryServerInfo: AdminServer over http/https, or the four-letter word
// with protocol "tcp"): its version becomes status.serverVersion; a failure is
// AdminUnreachable, an admin block without protocol, host or port InvalidSpec.
using ZooKeeperAdminProbe =
    std::function<std::string(const std::string& protocol, const std::string& host,
                              const std::string& port)>;  // returns the version
runtime::Observation ObserveDatabase(const nlohmann::json& object, const ZooKeeperProbe& probe,
                                     const DatabaseOptions& options,
                                     const ZooKeeperAdminProbe& admin_probe = nullptr);

}  // namespace ro::controllers

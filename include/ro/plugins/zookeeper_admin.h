// A ZooKeeper server's own report of itself (its version and mode), from the `srvr`
// command: over the AdminServer (HTTP GET <protocol>://host:port/commands/srvr, JSON) or
// as the four-letter word on the client port (protocol "tcp"). The Database controller
// uses it for health and version (spec.zookeeper.admin).
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "ro/plugins/zookeeper_client.h"

namespace ro::plugins {

struct ZooKeeperServerInfo {
  std::string version;  // "3.8.0-..." as the server reports it, without the build line
  std::string mode;     // "standalone", "leader", "follower"; "" when not reported
};

// Where the admin endpoint is and how to speak to it.
struct ZooKeeperAdminEndpoint {
  std::string protocol;  // "http", "https" (AdminServer) or "tcp" (four-letter word)
  std::string host;
  std::string port;
};

// Queries `srvr`. Throws ZooKeeperError: kUnreachable (no connection or answer within
// `timeout`), kBadArguments (unknown protocol), kOther (an answer that is not a srvr
// report, an HTTP error status; the message has it).
ZooKeeperServerInfo QueryServerInfo(const ZooKeeperAdminEndpoint& endpoint,
                                    std::chrono::milliseconds timeout);

// The four-letter word's text ("Zookeeper version: 3.8.0-..., built on ...\n...Mode:
// standalone\n"). Throws ZooKeeperError kOther when it has no version line.
ZooKeeperServerInfo ParseSrvrText(std::string_view text);
// The AdminServer's JSON ({"version": "...", "server_stats": {"server_state": ...}}).
// Throws ZooKeeperError kOther when it is not such a document.
ZooKeeperServerInfo ParseSrvrJson(std::string_view body);

}  // namespace ro::plugins

// A synchronous ZooKeeper client over the C library libzookeeper-mt (3.8): one session,
// the znode operations the zookeeper-to-zookeeper-nodes plugin needs (manual 6.3), typed
// errors. The library's own log lines go to spdlog's default logger at "debug" (with all
// servers down it logs an error per reconnect attempt, thousands per second).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ro::plugins {

// A ZooKeeper call failed. code() is our classification, zoo_code() the library's
// ZOO_ERRORS value (ZNONODE = -101, ZNODEEXISTS = -110, ZBADVERSION = -103, ...), path()
// the znode involved (empty for session-level failures). What a caller can do:
//   kNoNode, kNodeExists, kNotEmpty   the tree differs from what was assumed: re-read.
//   kBadVersion                       someone else wrote first: re-read, redo the write.
//   kConnectionLoss, kOperationTimeout the outcome is unknown: retry (idempotently).
//   kUnreachable                      no session could be established: retry later.
//   kSessionExpired                   this client is dead: create a new one.
//   kNoAuth, kAuthFailed, kBadArguments, kOther  surface it; retrying cannot help.
class ZooKeeperError : public std::runtime_error {
 public:
  enum class Code {
    kNoNode,
    kNodeExists,
    kNotEmpty,
    kBadVersion,
    kNoChildrenForEphemerals,
    kNoAuth,
    kAuthFailed,
    kConnectionLoss,
    kOperationTimeout,
    kSessionExpired,
    kUnreachable,
    kBadArguments,
    kOther,
  };

  ZooKeeperError(Code code, int zoo_code, std::string path, const std::string& message);

  Code code() const noexcept { return code_; }
  int zoo_code() const noexcept { return zoo_code_; }
  const std::string& path() const noexcept { return path_; }
  // kConnectionLoss, kOperationTimeout and kUnreachable.
  bool retryable() const noexcept;

 private:
  Code code_;
  int zoo_code_;
  std::string path_;
};

// A znode's metadata (ZooKeeper's Stat). Times are milliseconds since the Unix epoch.
struct ZooKeeperStat {
  std::int64_t czxid = 0;            // zxid of the create
  std::int64_t mzxid = 0;            // zxid of the last data change
  std::int64_t pzxid = 0;            // zxid of the last child change
  std::int64_t ctime_ms = 0;
  std::int64_t mtime_ms = 0;
  std::int32_t version = 0;          // data version (what Set/Delete compare against)
  std::int32_t cversion = 0;         // children version
  std::int32_t aversion = 0;         // ACL version
  std::int64_t ephemeral_owner = 0;  // session id of the owner; 0 for persistent nodes
  std::int32_t data_length = 0;      // bytes
  std::int32_t num_children = 0;
};

struct ZooKeeperNode {
  std::string data;  // raw bytes; empty for a node without data
  ZooKeeperStat stat;
};

// Permission bits of an ACL entry (ZooKeeper's values).
namespace zk_perm {
inline constexpr std::int32_t kRead = 1;
inline constexpr std::int32_t kWrite = 2;
inline constexpr std::int32_t kCreate = 4;
inline constexpr std::int32_t kDelete = 8;
inline constexpr std::int32_t kAdmin = 16;
inline constexpr std::int32_t kAll = 31;
}  // namespace zk_perm

// One ACL entry: `perms` (zk_perm bits) granted to the identity `scheme`:`id`
// ("world":"anyone", "digest":"user:base64(sha1(user:password))", "ip":"10.0.0.0/8").
struct ZooKeeperAcl {
  std::int32_t perms = 0;
  std::string scheme;
  std::string id;

  bool operator==(const ZooKeeperAcl&) const = default;
};

// world:anyone with every permission: what ZooKeeper calls ZOO_OPEN_ACL_UNSAFE.
std::vector<ZooKeeperAcl> OpenAcl();

// Digest credentials ("digest" scheme): the session authenticates as `user`.
struct ZooKeeperDigest {
  std::string user;
  std::string password;
};

// The ACL id ZooKeeper derives from digest credentials: "user:base64(sha1(user:password))".
std::string DigestAclId(const ZooKeeperDigest& digest);

// What ReadMany learnt of one path. `exists` is false when the node does not exist (then
// the other fields are empty).
struct ZooKeeperRead {
  bool exists = false;
  std::string data;
  ZooKeeperStat stat;
  std::vector<ZooKeeperAcl> acl;
  std::vector<std::string> children;  // names, sorted; only when asked for
};

// One write of a Multi transaction.
struct ZooKeeperOp {
  enum class Kind { kCreate, kSet, kDelete };
  Kind kind = Kind::kCreate;
  std::string path;
  std::string data;               // kCreate, kSet
  std::vector<ZooKeeperAcl> acl;  // kCreate; empty means OpenAcl()
  // kCreate: persistent unless set; the exact path is created (never sequential).
  bool ephemeral = false;
};

struct ZooKeeperOptions {
  // "host:port" entries (the Database spec's zookeeper.client.servers). Required.
  std::vector<std::string> servers;
  // Requested session timeout; the server clamps it to [2, 20] x its tickTime.
  std::chrono::milliseconds session_timeout{10'000};
  // How long the constructor waits for the first session before giving up.
  std::chrono::milliseconds connect_timeout{5'000};
  // When set, the session adds these digest credentials right after connecting.
  // ZooKeeper accepts any digest (a wrong password only means ACLs do not match): a
  // wrong one shows as kNoAuth on the first protected node.
  std::optional<ZooKeeperDigest> digest;
  // Sessions ReadMany spreads a large read over (this one included; 1 = only this one).
  // The others are opened with the same servers and credentials by the constructor and
  // serve nothing else. A JVM server answers several sessions' pipelined reads with less
  // CPU per request than one session's, so 4 sessions read a tree about 1.7x faster on a
  // 2-core machine (bench/zookeeper_nodes_bench.cc).
  std::size_t read_sessions = 1;
};

struct ZooKeeperCreateOptions {
  bool ephemeral = false;       // deleted when this session ends
  bool sequential = false;      // the server appends a 10-digit counter to the name
  bool create_parents = false;  // create missing ancestors (persistent, empty data)
};

// One ZooKeeper session (RAII: the destructor closes it, deleting its ephemeral nodes),
// plus the read-only sessions of ZooKeeperOptions::read_sessions used by ReadMany.
// Thread-safe: the library serializes requests; any number of threads may call at once.
// Every call blocks until the server answers or the session times out. Nodes are
// created with the open ACL (world:anyone, all permissions) unless told otherwise. Paths are absolute
// ("/a/b"); the library rejects others with kBadArguments.
class ZooKeeperClient {
 public:
  // Any version: skip the optimistic-concurrency check of Set/Delete.
  static constexpr std::int32_t kAnyVersion = -1;

  // Opens a session and waits up to options.connect_timeout for it. Throws
  // ZooKeeperError kUnreachable (the message lists the servers), kAuthFailed, or
  // kBadArguments for an empty server list.
  explicit ZooKeeperClient(const ZooKeeperOptions& options);
  ~ZooKeeperClient();
  ZooKeeperClient(const ZooKeeperClient&) = delete;
  ZooKeeperClient& operator=(const ZooKeeperClient&) = delete;

  // The node's stat, or nullopt when it does not exist.
  std::optional<ZooKeeperStat> Exists(std::string_view path);
  // Data and stat, or nullopt when the node does not exist. Any size (up to the
  // server's jute.maxbuffer, 1 MiB by default).
  std::optional<ZooKeeperNode> Get(std::string_view path);
  // Child names (not paths), sorted. Throws kNoNode when `path` does not exist.
  std::vector<std::string> Children(std::string_view path);
  // Creates `path` and returns the created path (differs when sequential). Throws
  // kNodeExists, kNoNode (missing parent, unless create_parents).
  // `acl` is the node's (not its ancestors'); empty means OpenAcl().
  std::string Create(std::string_view path, std::string_view data,
                     const ZooKeeperCreateOptions& options = {},
                     const std::vector<ZooKeeperAcl>& acl = {});
  // Replaces the data if the node's version equals `version` (or kAnyVersion); returns
  // the new stat. Throws kBadVersion, kNoNode.
  ZooKeeperStat Set(std::string_view path, std::string_view data,
                    std::int32_t version = kAnyVersion);
  // Deletes a node without children. Throws kNoNode, kBadVersion, kNotEmpty.
  void Delete(std::string_view path, std::int32_t version = kAnyVersion);
  // Deletes `path` and everything below it, depth first; nodes that vanish meanwhile are
  // fine, and a missing `path` is a no-op. Refuses "/" (kBadArguments).
  void DeleteRecursive(std::string_view path);

  // The node's ACL. Throws kNoNode, kNoAuth.
  std::vector<ZooKeeperAcl> GetAcl(std::string_view path);
  // Replaces the node's ACL. Throws kNoNode, kNoAuth, kBadVersion, kOther (invalid ACL).
  void SetAcl(std::string_view path, const std::vector<ZooKeeperAcl>& acl,
              std::int32_t version = kAnyVersion);

  // Reads data, stat and ACL (and the children's names when `with_children`, asked only
  // of nodes whose stat counts children) of every path, pipelined: about `window`
  // requests in flight per session instead of one round trip per call. With
  // options.read_sessions > 1, a large `paths` is cut into contiguous slices read at once
  // by every session, and every session that reads first syncs with the leader
  // (zoo_async), so it sees at least what any of the sessions listed before the call. The result is in the order of `paths`; a
  // missing node has exists == false. Throws the first failure other than "no node"
  // (after every request has finished).
  std::vector<ZooKeeperRead> ReadMany(const std::vector<std::string>& paths,
                                      bool with_children, std::size_t window = 3000);

  // Applies every op in one transaction (zoo_multi): all or none. An empty list is a
  // no-op. Throws the failing op's error (path() names it); the others are not applied.
  void Multi(const std::vector<ZooKeeperOp>& ops);

  // The server-assigned session id (0 before connecting).
  std::int64_t session_id() const;

 private:
  // ReadMany on this session alone.
  std::vector<ZooKeeperRead> ReadPipelined(const std::vector<std::string>& paths,
                                           bool with_children, std::size_t window);

  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ro::plugins

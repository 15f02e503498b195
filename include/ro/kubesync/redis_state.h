// Redis state of one LiveSynchronization, with hiredis 0.14 for the protocol over our own
// socket, plain or TLS (src/kubesync/redis_stream.h; Debian's hiredis has no TLS): resume
// points of the events listener, small values, and the stats hashes (docs/kubesync.md,
// "Redis role"). Every key lives under the prefix "ks:<id>" (PipelineNames::redis_prefix),
// so deleting a LiveSynchronization removes its state with one DeleteAll().
//
// Redis holds nothing that cannot be rebuilt: losing it costs a relist, never
// correctness. Hence the failure policy: a call waits for Redis at most
// connect_timeout + command_timeout (twice that for an idempotent call that finds its
// connection dead and retries once), and while Redis is down calls fail fast with a
// RedisError (no reconnect attempt before the backoff expires).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

#include "ro/kube/clock.h"
#include "ro/kube/gvr.h"

namespace ro::kubesync {

// A Redis call failed. retryable(): the server was unreachable, timed out or dropped the
// connection (try again later; the state object reconnects by itself). Otherwise Redis
// answered with an error reply (WRONGTYPE, OOM, ...): retrying the same call cannot help.
class RedisError : public std::runtime_error {
 public:
  RedisError(const std::string& message, bool retryable);
  bool retryable() const noexcept { return retryable_; }

 private:
  bool retryable_;
};

// One write of a hash pipeline (RedisState::WriteHashes). `key` is relative to the
// prefix. `value` is the decimal text of the increment (kIncrBy: integer, kIncrByFloat:
// a double) or the value to store (kSet).
struct HashWrite {
  enum class Op { kIncrBy, kIncrByFloat, kSet };
  Op op = Op::kSet;
  std::string key;
  std::string field;
  std::string value;

  bool operator==(const HashWrite&) const = default;
};

struct RedisOptions {
  // TCP connect to the server.
  std::chrono::milliseconds connect_timeout{2000};
  // Socket read/write timeout of one command or pipeline.
  std::chrono::milliseconds command_timeout{2000};
  // Wait before the first reconnect attempt after a failed connect, doubled per failure
  // up to max_backoff (the client-go reflector's 800 ms -> 30 s idea, shorter because a
  // Redis restart takes well under a second).
  std::chrono::milliseconds initial_backoff{100};
  std::chrono::milliseconds max_backoff{5000};
  // ACL user and password (AUTH <user> <password> after every connect; docs/security.md);
  // empty user = no AUTH. A refused AUTH is retryable: credentials rotate with a restart.
  std::string user{};
  std::string password{};
  // TLS (docs/security.md): PEM CA certificates to verify the server against, and the
  // name its certificate must carry ("<ls>-redis"); empty ca_pem = plain TCP. A server
  // that fails verification is a retryable connect failure, like an unreachable one.
  std::string ca_pem{};
  std::string tls_server_name{};
};

// One connection to one Redis server, shared by the threads of a component.
// Thread-safe: a mutex serialises commands (each is a sub-millisecond round trip).
class RedisState {
 public:
  // `address` is "host:port" ("127.0.0.1:6379", "redis:6379"); `key_prefix` is
  // "ks:<id>" (non-empty, no '*', '?', '[' so that DeleteAll's SCAN pattern is exact).
  // Does not connect yet (the first call does). Throws std::invalid_argument for a
  // malformed address or prefix.
  RedisState(std::string_view address, std::string key_prefix, RedisOptions options = {},
             kube::Clock& clock = kube::DefaultClock());
  ~RedisState();
  RedisState(const RedisState&) = delete;
  RedisState& operator=(const RedisState&) = delete;

  const std::string& key_prefix() const { return prefix_; }
  // "<prefix>:<relative>", the absolute key of a relative one.
  std::string Key(std::string_view relative) const;

  // PING. Throws RedisError.
  void Ping();

  // The listener's resume point for `gvr` (key "rv:<gvr>", e.g. ks:a.b:rv:apps/v1/deployments),
  // nullopt when none was stored. Write it only after JetStream acked every event up to
  // it (Publisher::Flush). Throw RedisError.
  std::optional<std::string> GetResumeVersion(const kube::GroupVersionResource& gvr);
  void SetResumeVersion(const kube::GroupVersionResource& gvr, std::string_view resource_version);

  // Plain string values under relative keys. Get returns nullopt for a missing key.
  // Throw RedisError (also when the key holds a non-string).
  std::optional<std::string> Get(std::string_view key);
  void Set(std::string_view key, std::string_view value);
  // Returns whether the key existed.
  bool Delete(std::string_view key);

  // Sends every write in ONE pipeline (one round trip; HINCRBY / HINCRBYFLOAT / HSET).
  // Not a transaction: on a failure some writes may have been applied. Not retried
  // (increments are not idempotent). Throws RedisError. An empty span is a no-op.
  void WriteHashes(std::span<const HashWrite> writes);
  // HGETALL of a relative key; empty when the key does not exist. Throws RedisError.
  std::map<std::string, std::string> HGetAll(std::string_view key);

  // Deletes every key under the prefix (SCAN MATCH "<prefix>:*" + UNLINK in batches),
  // for a deleted LiveSynchronization. Returns how many keys were removed. Keys written
  // concurrently may survive. Throws RedisError.
  std::size_t DeleteAll();

 private:
  class Connection;
  std::string prefix_;
  std::unique_ptr<Connection> connection_;
};

}  // namespace ro::kubesync

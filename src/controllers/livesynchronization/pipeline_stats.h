// Reads the pipeline statistics of a LiveSynchronization from its Redis (kubesync/stats.h)
// for status.resources[], lastResyncTime and lagSeconds. One connection per
// LiveSynchronization, kept between reconciles and replaced when the address changes.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "ro/kube/gvr.h"
#include "ro/kubesync/pipeline_security.h"
#include "ro/kubesync/redis_state.h"
#include "ro/kubesync/stats.h"

namespace ro::controllers::livesync {

// Thread-safe.
class PipelineStatsReader {
 public:
  // A status refresh must not hold a worker long: short timeouts (the caller keeps the
  // previous statistics when Redis does not answer).
  explicit PipelineStatsReader(kubesync::RedisOptions options);

  // The statistics of `live_sync` from Redis at `redis_addr`, or nullopt when Redis
  // cannot be read (starting, unreachable from the controller). Never throws.
  // `security`: the controller's credentials (off when the pipeline has none).
  std::optional<kubesync::StatsSnapshot> Read(const kube::ObjectKey& live_sync, const std::string& redis_addr,
                                              const kubesync::ClientSecurity& security);

  // Closes the connection of a deleted LiveSynchronization.
  void Forget(const kube::ObjectKey& live_sync);

 private:
  struct Connection {
    std::string address;
    std::string password;  // the connection is replaced when the credentials rotate
    std::shared_ptr<kubesync::RedisState> redis;
  };

  // Constant after construction.
  const kubesync::RedisOptions options_;

  std::mutex mu_;
  std::map<kube::ObjectKey, Connection> connections_;  // guarded by mu_
};

}  // namespace ro::controllers::livesync

#include "livesynchronization/pipeline_stats.h"

#include <exception>
#include <utility>

#include <nlohmann/json.hpp>

#include "ro/common/log.h"
#include "ro/kubesync/envelope.h"

namespace ro::controllers::livesync {

PipelineStatsReader::PipelineStatsReader(kubesync::RedisOptions options) : options_(options) {}

std::optional<kubesync::StatsSnapshot> PipelineStatsReader::Read(const kube::ObjectKey& live_sync,
                                                                 const std::string& redis_addr,
                                                                 const kubesync::ClientSecurity& security) {
  std::shared_ptr<kubesync::RedisState> redis;
  try {
    std::lock_guard lock(mu_);
    Connection& connection = connections_[live_sync];
    if (!connection.redis || connection.address != redis_addr || connection.password != security.redis_password) {
      const kubesync::PipelineNames names(live_sync.ns, live_sync.name);
      connection.redis = std::make_shared<kubesync::RedisState>(redis_addr, names.redis_prefix(),
                                                                kubesync::WithSecurity(options_, security));
      connection.address = redis_addr;
      connection.password = security.redis_password;
    }
    redis = connection.redis;
  } catch (const std::exception& e) {  // a malformed address
    log::Logger().Debug("cannot read pipeline statistics",
                        {{"liveSynchronization", live_sync.ToString()}, {"error", e.what()}});
    return std::nullopt;
  }
  try {
    return kubesync::ReadStats(*redis);  // RedisState serialises its own commands
  } catch (const std::exception& e) {
    log::Logger().Debug("cannot read pipeline statistics",
                        {{"liveSynchronization", live_sync.ToString()}, {"redis", redis_addr}, {"error", e.what()}});
    return std::nullopt;
  }
}

void PipelineStatsReader::Forget(const kube::ObjectKey& live_sync) {
  std::lock_guard lock(mu_);
  connections_.erase(live_sync);
}

}  // namespace ro::controllers::livesync

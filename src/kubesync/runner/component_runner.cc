#include "ro/kubesync/runner/component_runner.h"

#include <algorithm>
#include <exception>

#include <nlohmann/json.hpp>

#include "ro/common/log.h"
#include "ro/kubesync/envelope.h"
#include "ro/kubesync/jetstream.h"
#include "ro/kubesync/redis_state.h"

namespace ro::kubesync::runner {

using nlohmann::json;

bool AllReady(const std::vector<ComponentStatus>& components) {
  return std::all_of(components.begin(), components.end(),
                     [](const ComponentStatus& c) { return c.ready; });
}

void CleanUpPipelineState(const kube::ObjectKey& ls, const Endpoints& endpoints,
                          std::chrono::milliseconds timeout) {
  const PipelineNames names(ls.ns, ls.name);
  const log::Logger log(json{{"liveSynchronization", ls.ToString()}});
  try {
    RedisOptions options;
    options.connect_timeout = timeout;
    options.command_timeout = timeout;
    RedisState redis(endpoints.redis_addr, names.redis_prefix(), WithSecurity(options, endpoints.security));
    const std::size_t removed = redis.DeleteAll();
    log.Info("deleted pipeline state from Redis", {{"keys", removed}, {"redis", endpoints.redis_addr}});
  } catch (const std::exception& e) {
    log.Info("Redis not reachable; its state goes with it",
             {{"redis", endpoints.redis_addr}, {"error", e.what()}});
  }
  try {
    NatsOptions options;
    options.connect_timeout = timeout;
    options.request_timeout = timeout;
    options.max_reconnect = 0;
    auto nats = NatsConnection::Connect(endpoints.nats_url, "livesynchronization-controller",
                                        WithSecurity(options, endpoints.security));
    const bool existed = nats->DeleteStream(names.stream());
    log.Info("deleted pipeline stream", {{"stream", names.stream()}, {"existed", existed}});
    const bool had_tombstones = nats->DeleteKeyValue(names.tombstone_bucket());
    log.Info("deleted pipeline tombstones", {{"bucket", names.tombstone_bucket()}, {"existed", had_tombstones}});
  } catch (const std::exception& e) {
    log.Info("NATS not reachable; its stream goes with it",
             {{"nats", endpoints.nats_url}, {"error", e.what()}});
  }
}

}  // namespace ro::kubesync::runner

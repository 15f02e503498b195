#include "database/database_controller.h"

#include <memory>
#include <utility>

#include <nlohmann/json.hpp>

#include "ro/common/log.h"
#include "ro/kube/informer.h"
#include "ro/plugins/zookeeper_admin.h"
#include "ro/plugins/zookeeper_client.h"
#include "ro/runtime/informer_cache.h"
#include "ro/runtime/manager.h"
#include "ro/runtime/options.h"

namespace ro::controllers {

using nlohmann::json;
using runtime::ConditionStatus;
using runtime::Observation;

namespace {

constexpr const char* kController = "database";

Observation NotReady(const char* reason, std::string message, runtime::StatusFields fields,
                     const DatabaseOptions& options) {
  return {ConditionStatus::kFalse, reason, std::move(message), std::move(fields), options.recheck_interval};
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += ",";
    out += item;
  }
  return out;
}

class DatabaseReconciler final : public runtime::ConditionReconciler {
 public:
  DatabaseReconciler(const kube::Store& store, runtime::StatusWriter writer,
                     DatabaseOptions options)
      : ConditionReconciler(DatabaseType(), store, std::move(writer)), options_(options) {}

 protected:
  Observation Observe(const json& object, std::stop_token /*stop*/) override {
    return ObserveDatabase(
        object,
        [this](const std::vector<std::string>& servers) {
          plugins::ZooKeeperOptions zk;
          zk.servers = servers;
          zk.connect_timeout = options_.connect_timeout;
          plugins::ZooKeeperClient client(zk);
          client.Exists("/");
        },
        options_,
        [this](const std::string& protocol, const std::string& host, const std::string& port) {
          return plugins::QueryServerInfo({protocol, host, port}, options_.connect_timeout).version;
        });
  }

 private:
  const DatabaseOptions options_;
};

}  // namespace

runtime::ObjectType DatabaseType() {
  return {kube::GroupVersionResource{"assets.astronetes.io", "v1alpha1", "databases"},
          "Database"};
}

void AddDatabaseFlags(runtime::FlagSet& flags, DatabaseOptions* options) {
  flags.AddDuration("--recheck-interval", &options->recheck_interval,
                    "How often every Database is connected to again");
  flags.AddDuration("--connect-timeout", &options->connect_timeout,
                    "How long a ZooKeeper session may take to establish");
}

std::string CheckZooKeeperServer(const std::string& server) {
  std::string host;
  std::string port;
  if (!server.empty() && server.front() == '[') {
    const std::size_t close = server.find(']');
    if (close == std::string::npos) return "unclosed '['";
    host = server.substr(1, close - 1);
    if (close + 1 >= server.size() || server[close + 1] != ':') return "no port";
    port = server.substr(close + 2);
  } else {
    const std::size_t colon = server.rfind(':');
    if (colon == std::string::npos) return "no port";
    host = server.substr(0, colon);
    port = server.substr(colon + 1);
    if (host.find(':') != std::string::npos) return "an IPv6 host must be in brackets";
  }
  if (host.empty()) return "empty host";
  if (host.find_first_of(" /,\t") != std::string::npos) return "invalid character in host";
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos) {
    return "port must be a number";
  }
  const int number = std::stoi(port);
  if (number < 1 || number > 65535) return "port out of range 1..65535";
  return "";
}

Observation ObserveDatabase(const json& object, const ZooKeeperProbe& probe,
                            const DatabaseOptions& options, const ZooKeeperAdminProbe& admin_probe) {
  runtime::StatusFields fields{{"servers", std::nullopt}, {"serverVersion", std::nullopt}};
  const json spec = object.value("spec", json::object());
  if (!spec.contains("zookeeper") || !spec["zookeeper"].is_object()) {
    return NotReady(kReasonDatabaseInvalidSpec,
                    "spec.zookeeper is required (ZooKeeper is the only database kind)", fields,
                    options);
  }
  const json servers_json =
      spec["zookeeper"].value("client", json::object()).value("servers", json::array());
  if (!servers_json.is_array()) {
    return NotReady(kReasonDatabaseInvalidSpec,
                    "spec.zookeeper.client.servers must be a list of \"host:port\"", fields,
                    options);
  }
  std::vector<std::string> servers;
  for (std::size_t i = 0; i < servers_json.size(); ++i) {
    const std::string entry = "spec.zookeeper.client.servers[" + std::to_string(i) + "]";
    if (!servers_json[i].is_string()) {
      return NotReady(kReasonDatabaseInvalidSpec, entry + " must be a \"host:port\" string",
                      fields, options);
    }
    const std::string server = servers_json[i].get<std::string>();
    if (const std::string problem = CheckZooKeeperServer(server); !problem.empty()) {
      return NotReady(kReasonDatabaseInvalidSpec,
                      entry + ": \"" + server + "\" is not host:port (" + problem + ")", fields,
                      options);
    }
    servers.push_back(server);
  }
  if (servers.empty()) {
    return NotReady(kReasonDatabaseInvalidSpec,
                    "spec.zookeeper.client.servers must list at least one \"host:port\"", fields,
                    options);
  }
  fields["servers"] = Join(servers);

  try {
    probe(servers);
  } catch (const plugins::ZooKeeperError& e) {
    if (e.code() == plugins::ZooKeeperError::Code::kBadArguments) {
      return NotReady(kReasonDatabaseInvalidSpec,
                      "spec.zookeeper.client.servers: " + std::string(e.what()), fields,
                      options);
    }
    return NotReady(kReasonDatabaseUnreachable,
                    "No ZooKeeper session with " + Join(servers) + ": " + e.what(), fields,
                    options);
  }
  const json admin = spec["zookeeper"].value("admin", json());
  if (admin_probe && admin.is_object()) {
    const auto text = [&](const char* key) {
      return admin.contains(key) && admin[key].is_string() ? admin[key].get<std::string>() : "";
    };
    const std::string protocol = text("protocol");
    const std::string host = text("host");
    const std::string port = text("port");
    if (protocol.empty() || host.empty() || port.empty()) {
      return NotReady(kReasonDatabaseInvalidSpec,
                      "spec.zookeeper.admin needs protocol, host and port", fields, options);
    }
    try {
      fields["serverVersion"] = admin_probe(protocol, host, port);
    } catch (const plugins::ZooKeeperError& e) {
      if (e.code() == plugins::ZooKeeperError::Code::kBadArguments) {
        return NotReady(kReasonDatabaseInvalidSpec, "spec.zookeeper.admin: " + std::string(e.what()),
                        fields, options);
      }
      return NotReady(kReasonDatabaseAdminUnreachable,
                      "Connected to ZooKeeper at " + Join(servers) + ", but its admin endpoint " +
                          protocol + "://" + host + ":" + port + " did not report: " + e.what(),
                      fields, options);
    }
  }
  return {ConditionStatus::kTrue, kReasonDatabaseConnected, "Connected to ZooKeeper at " + Join(servers),
          std::move(fields), options.recheck_interval};
}

void SetupDatabaseController(runtime::Manager& manager, const DatabaseOptions& options) {
  const runtime::ObjectType type = DatabaseType();
  const kube::Store& databases = manager.cache().Get(type.gvr).store();
  runtime::StatusWriter writer(manager.client(), manager.recorder(),
                               log::Logger(json{{"controller", kController}}), manager.clock());
  manager
      .NewController(kController,
                     std::make_unique<DatabaseReconciler>(databases, std::move(writer), options))
      .For(type, runtime::OnGenerationChange());
}

}  // namespace ro::controllers

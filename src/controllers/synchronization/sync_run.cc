#include "synchronization/sync_run.h"

#include <fstream>
#include <memory>
#include <utility>

#include <nlohmann/json.hpp>

#include "ro/common/log.h"
#include "ro/plugins/kubernetes/config_error.h"
#include "synchronization/synchronization_controller.h"

namespace ro::controllers::sync {
namespace {

using nlohmann::json;
namespace zk = plugins::zookeeper;

std::unique_ptr<plugins::ZooKeeperClient> Connect(const DatabaseTarget& target, std::chrono::milliseconds timeout,
                                                  const char* role) {
  plugins::ZooKeeperOptions options;
  options.servers = target.servers;
  options.connect_timeout = timeout;
  options.digest = target.digest;
  options.read_sessions = zk::kReadSessions;
  try {
    return std::make_unique<plugins::ZooKeeperClient>(options);
  } catch (const plugins::ZooKeeperError& e) {
    throw plugins::ZooKeeperError(e.code(), e.zoo_code(), e.path(),
                                  std::string(role) + " Database " + target.name + ": " + e.what());
  }
}

json TargetJson(const DatabaseTarget& target) {
  json out = {{"name", target.name}, {"servers", target.servers}};
  if (target.digest) {
    out["username"] = target.digest->user;
    out["password"] = target.digest->password;
  }
  return out;
}

DatabaseTarget TargetFromJson(const json& run, const char* member) {
  const auto it = run.find(member);
  if (it == run.end() || !it->is_object()) throw RunFileError(std::string(member) + ": missing or not an object");
  DatabaseTarget target;
  target.name = it->value("name", "");
  const json servers = it->value("servers", json::array());
  if (!servers.is_array() || servers.empty()) throw RunFileError(std::string(member) + ".servers: missing or empty");
  for (const json& server : servers) {
    if (!server.is_string()) throw RunFileError(std::string(member) + ".servers: not a list of strings");
    target.servers.push_back(server.get<std::string>());
  }
  if (it->contains("username")) {
    if (!(*it)["username"].is_string() || !it->value("password", json()).is_string()) {
      throw RunFileError(std::string(member) + ": username and password must both be strings");
    }
    target.digest = plugins::ZooKeeperDigest{(*it)["username"].get<std::string>(), (*it)["password"].get<std::string>()};
  }
  return target;
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

}  // namespace

CopyOutcome RunCopy(const zk::NodesSyncConfig& config, const DatabaseTarget& source, const DatabaseTarget& destination,
                    std::chrono::milliseconds connect_timeout) {
  CopyOutcome outcome;
  try {
    const std::unique_ptr<plugins::ZooKeeperClient> from = Connect(source, connect_timeout, "source");
    const std::unique_ptr<plugins::ZooKeeperClient> to = Connect(destination, connect_timeout, "destination");
    // What the destination's own session may do to the nodes it writes: the digest
    // identity when it has one (the ACLs copied from the source follow the source).
    const plugins::ZooKeeperAcl identity =
        destination.digest
            ? plugins::ZooKeeperAcl{plugins::zk_perm::kAll, "digest", plugins::DigestAclId(*destination.digest)}
            : plugins::ZooKeeperAcl{plugins::zk_perm::kAll, "world", "anyone"};
    outcome.result = zk::SyncNodes(*from, *to, config, identity);
    outcome.succeeded = true;
  } catch (const zk::NodesSyncError& e) {
    outcome.reason = kReasonSyncRootPathMissing;
    outcome.message = e.what();
  } catch (const plugins::ZooKeeperError& e) {
    using Code = plugins::ZooKeeperError::Code;
    outcome.reason = e.retryable() || e.code() == Code::kSessionExpired              ? kReasonSyncUnreachable
                     : e.code() == Code::kNoAuth || e.code() == Code::kAuthFailed ? kReasonSyncNotAuthorized
                                                                                   : kReasonSyncZooKeeperError;
    outcome.message = e.what();
  }
  return outcome;
}

std::string RunFileJson(const json& spec_config, const DatabaseTarget& source, const DatabaseTarget& destination,
                        std::chrono::milliseconds connect_timeout) {
  return json{{"config", spec_config},
              {"source", TargetJson(source)},
              {"destination", TargetJson(destination)},
              {"connectTimeoutMilliseconds", connect_timeout.count()}}
      .dump();
}

std::string OutcomeJson(const CopyOutcome& outcome) {
  if (outcome.succeeded) {
    const zk::NodesCounts& c = outcome.result.counts;
    return json{{"succeeded", true},
                {"counts",
                 {{"created", c.created},
                  {"updated", c.updated},
                  {"deleted", c.deleted},
                  {"unchanged", c.unchanged},
                  {"skipped", c.skipped},
                  {"bytes", c.bytes},
                  {"writes", c.writes},
                  {"transactions", c.transactions}}},
                {"durationMilliseconds", outcome.result.duration.count()}}
        .dump();
  }
  // A long message is cut (escaping may lengthen it: cut again until the whole fits);
  // a cut inside a UTF-8 sequence is replaced, never an invalid document.
  std::string message = outcome.message;
  std::size_t keep = kMaxOutcomeBytes - 256;
  while (true) {
    if (message.size() > keep) message = message.substr(0, keep) + "...";
    const json out = {{"succeeded", false}, {"reason", outcome.reason}, {"message", message}};
    std::string text = out.dump(-1, ' ', false, json::error_handler_t::replace);
    if (text.size() <= kMaxOutcomeBytes) return text;
    keep /= 2;
  }
}

CopyOutcome OutcomeFromJson(std::string_view text) {
  const json in = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!in.is_object() || !in.contains("succeeded") || !in["succeeded"].is_boolean()) {
    throw std::invalid_argument("not a Synchronization run outcome");
  }
  CopyOutcome outcome;
  outcome.succeeded = in["succeeded"].get<bool>();
  if (!outcome.succeeded) {
    outcome.reason = in.value("reason", "");
    outcome.message = in.value("message", "");
    if (outcome.reason.empty()) throw std::invalid_argument("a failed run outcome without a reason");
    return outcome;
  }
  const json counts = in.value("counts", json::object());
  if (!counts.is_object()) throw std::invalid_argument("run outcome: counts is not an object");
  const auto count = [&counts](const char* key) {
    const json& v = counts.contains(key) ? counts[key] : json(0);
    if (!v.is_number_integer()) throw std::invalid_argument(std::string("run outcome: counts.") + key);
    return v.get<std::int64_t>();
  };
  zk::NodesCounts& c = outcome.result.counts;
  c.created = count("created");
  c.updated = count("updated");
  c.deleted = count("deleted");
  c.unchanged = count("unchanged");
  c.skipped = count("skipped");
  c.bytes = count("bytes");
  c.writes = count("writes");
  c.transactions = count("transactions");
  const json duration = in.value("durationMilliseconds", json(0));
  if (!duration.is_number_integer()) throw std::invalid_argument("run outcome: durationMilliseconds");
  outcome.result.duration = std::chrono::milliseconds(duration.get<std::int64_t>());
  return outcome;
}

int RunOnceMain(const std::string& run_file, const std::string& termination_log) {
  const log::Logger logger(json{{"controller", "synchronization"}, {"runner", "job"}});
  CopyOutcome outcome;
  int exit_code = 1;
  try {
    std::ifstream in(run_file, std::ios::binary);
    if (!in) throw RunFileError("cannot read " + run_file);
    const json run = json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (!run.is_object()) throw RunFileError(run_file + " is not a JSON object");
    const zk::NodesSyncConfig config = zk::ParseNodesSyncConfig(run.value("config", json::object()));
    const DatabaseTarget source = TargetFromJson(run, "source");
    const DatabaseTarget destination = TargetFromJson(run, "destination");
    const json timeout = run.value("connectTimeoutMilliseconds", json(10'000));
    if (!timeout.is_number_integer()) throw RunFileError("connectTimeoutMilliseconds: not an integer");
    logger.Info("copying znodes", {{"rootPath", config.root_path},
                                   {"source", source.name},
                                   {"destination", destination.name}});
    outcome = RunCopy(config, source, destination, std::chrono::milliseconds(timeout.get<std::int64_t>()));
    exit_code = outcome.succeeded ? 0 : 1;
  } catch (const RunFileError& e) {
    outcome.reason = kReasonSyncInvalidConfig;
    outcome.message = std::string("run file: ") + e.what();
    exit_code = 2;
  } catch (const plugins::kubernetes::ConfigError& e) {
    outcome.reason = kReasonSyncInvalidConfig;
    outcome.message = std::string("spec.config: ") + e.what();
    exit_code = 2;
  }
  const std::string text = OutcomeJson(outcome);
  WriteFile(termination_log, text);
  if (outcome.succeeded) {
    logger.Info("znodes copied", json::parse(text));
  } else {
    logger.Error("error copying znodes", {{"reason", outcome.reason}, {"error", outcome.message}});
  }
  return exit_code;
}

}  // namespace ro::controllers::sync

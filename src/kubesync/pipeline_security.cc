#include "ro/kubesync/pipeline_security.h"

#include <crypt.h>
#include <openssl/rand.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <utility>

#include "ro/common/certificates.h"
#include "ro/common/digest.h"
#include "ro/common/time.h"

namespace ro::kubesync {

namespace {

using Clock = std::chrono::system_clock;

[[noreturn]] void OpenSslFailed(const char* what) {
  throw std::runtime_error(std::string("pipeline credentials: OpenSSL failed to ") + what);
}

void Check(int ok, const char* what) {
  if (ok != 1) OpenSslFailed(what);
}

std::string RandomHex(std::size_t bytes) {
  std::string raw(bytes, '\0');
  Check(RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)), "draw random bytes");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(bytes * 2);
  for (unsigned char c : raw) {
    hex.push_back(kHex[c >> 4]);
    hex.push_back(kHex[c & 0xf]);
  }
  return hex;
}

// bcrypt (cost 10) of `password` with a random salt, by libxcrypt.
std::string Bcrypt(const std::string& password) {
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  if (crypt_gensalt_rn("$2b$", 10, nullptr, 0, salt, sizeof salt) == nullptr) {
    throw std::runtime_error("pipeline credentials: libxcrypt failed to make a bcrypt salt");
  }
  auto data = std::make_unique<crypt_data>();
  const char* hash = crypt_rn(password.c_str(), salt, data.get(), sizeof(crypt_data));
  if (hash == nullptr || hash[0] == '*') throw std::runtime_error("pipeline credentials: bcrypt failed");
  return hash;
}

// The roles with a NATS user (the metrics exporter reads Redis only).
bool UsesNats(PipelineRole role) { return role != PipelineRole::kMetricsExporter; }

std::string Quote(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::string QuotedList(const std::vector<std::string>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ", ";
    out += Quote(items[i]);
  }
  return out + "]";
}

const std::string& Required(const std::map<std::string, std::string>& data, const std::string& key) {
  const auto found = data.find(key);
  if (found == data.end() || found->second.empty()) {
    throw PipelineSecurityError(key, "the pipeline credentials lack " + key);
  }
  return found->second;
}

std::string ReadFile(const std::string& dir, const std::string& file, bool required) {
  const std::string path = dir + "/" + file;
  std::ifstream in(path, std::ios::binary);
  std::stringstream content;
  if (in) content << in.rdbuf();
  std::string text = content.str();
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (text.empty() && required) throw PipelineSecurityError(file, "cannot read " + path + " (missing or empty)");
  return text;
}

}  // namespace

PipelineSecurityError::PipelineSecurityError(std::string field, const std::string& message)
    : std::runtime_error(message), field_(std::move(field)) {}

const std::vector<PipelineRole>& AllPipelineRoles() {
  static const std::vector<PipelineRole> kRoles = {PipelineRole::kEventsListener, PipelineRole::kProcessor,
                                                   PipelineRole::kSynchronizer,   PipelineRole::kReconciler,
                                                   PipelineRole::kMetricsExporter, PipelineRole::kController};
  return kRoles;
}

std::string_view RoleName(PipelineRole role) {
  switch (role) {
    case PipelineRole::kEventsListener: return "events-listener";
    case PipelineRole::kProcessor: return "processor";
    case PipelineRole::kSynchronizer: return "synchronizer";
    case PipelineRole::kReconciler: return "reconciler";
    case PipelineRole::kMetricsExporter: return "metrics-exporter";
    case PipelineRole::kController: return "controller";
  }
  return "unknown";
}

std::string PipelineCredentials::Fingerprint() const {
  std::string material;
  for (const auto& [key, value] : CredentialsSecretData(*this)) {
    material += key + "=" + std::to_string(value.size()) + ":" + value + ";";
  }
  return common::Sha256Hex(material, 16);
}

PipelineCredentials GenerateCredentials(const std::vector<std::string>& nats_dns_names,
                                        const std::vector<std::string>& redis_dns_names, Clock::time_point now,
                                        std::chrono::hours validity) {
  if (nats_dns_names.empty()) throw std::invalid_argument("GenerateCredentials: no NATS server name");
  if (redis_dns_names.empty()) throw std::invalid_argument("GenerateCredentials: no Redis server name");
  PipelineCredentials out;
  for (PipelineRole role : AllPipelineRoles()) {
    if (UsesNats(role)) {
      const std::string password = RandomHex(32);
      out.nats_passwords[std::string(RoleName(role))] = password;
      out.nats_password_hashes[std::string(RoleName(role))] = Bcrypt(password);
    }
    out.redis_passwords[std::string(RoleName(role))] = RandomHex(32);
  }
  out.jetstream_key = RandomHex(32);
  common::IssuedCertificates issued = common::IssueServerCertificates(
      "kubesync pipeline CA " + nats_dns_names.front(), {nats_dns_names, redis_dns_names}, now, validity);
  out.not_after = issued.not_after;
  out.ca_pem = std::move(issued.ca_pem);
  out.nats_cert_pem = std::move(issued.servers[0].cert_pem);
  out.nats_key_pem = std::move(issued.servers[0].key_pem);
  out.redis_cert_pem = std::move(issued.servers[1].cert_pem);
  out.redis_key_pem = std::move(issued.servers[1].key_pem);
  return out;
}

std::map<std::string, std::string> CredentialsSecretData(const PipelineCredentials& credentials) {
  std::map<std::string, std::string> data;
  data[std::string(kCaFile)] = credentials.ca_pem;
  data["nats.crt"] = credentials.nats_cert_pem;
  data["nats.key"] = credentials.nats_key_pem;
  data["redis.crt"] = credentials.redis_cert_pem;
  data["redis.key"] = credentials.redis_key_pem;
  data["jetstream.key"] = credentials.jetstream_key;
  data["not-after"] = common::FormatRfc3339(credentials.not_after);
  for (const auto& [role, password] : credentials.nats_passwords) data["nats-" + role + ".password"] = password;
  for (const auto& [role, hash] : credentials.nats_password_hashes) data["nats-" + role + ".bcrypt"] = hash;
  for (const auto& [role, password] : credentials.redis_passwords) data["redis-" + role + ".password"] = password;
  return data;
}

PipelineCredentials CredentialsFromSecretData(const std::map<std::string, std::string>& data) {
  PipelineCredentials out;
  out.ca_pem = Required(data, std::string(kCaFile));
  out.nats_cert_pem = Required(data, "nats.crt");
  out.nats_key_pem = Required(data, "nats.key");
  out.redis_cert_pem = Required(data, "redis.crt");
  out.redis_key_pem = Required(data, "redis.key");
  out.jetstream_key = Required(data, "jetstream.key");
  try {
    out.not_after = common::ParseRfc3339(Required(data, "not-after"));
  } catch (const PipelineSecurityError&) {
    throw;
  } catch (const std::exception& e) {
    throw PipelineSecurityError("not-after", std::string("the pipeline credentials' not-after: ") + e.what());
  }
  for (PipelineRole role : AllPipelineRoles()) {
    const std::string name(RoleName(role));
    if (UsesNats(role)) {
      out.nats_passwords[name] = Required(data, "nats-" + name + ".password");
      out.nats_password_hashes[name] = Required(data, "nats-" + name + ".bcrypt");
    }
    out.redis_passwords[name] = Required(data, "redis-" + name + ".password");
  }
  return out;
}

std::string NatsPasswordFile(PipelineRole role) { return "nats-" + std::string(RoleName(role)) + ".password"; }
std::string RedisPasswordFile(PipelineRole role) { return "redis-" + std::string(RoleName(role)) + ".password"; }

std::vector<std::pair<std::string, std::string>> ClientFiles(const PipelineCredentials& credentials) {
  std::vector<std::pair<std::string, std::string>> files;
  files.emplace_back(kCaFile, credentials.ca_pem);
  for (PipelineRole role : AllPipelineRoles()) {
    if (role == PipelineRole::kController) continue;
    const std::string name(RoleName(role));
    if (UsesNats(role)) files.emplace_back(NatsPasswordFile(role), credentials.nats_passwords.at(name));
    files.emplace_back(RedisPasswordFile(role), credentials.redis_passwords.at(name));
  }
  return files;
}

std::string InboxPrefixOf(PipelineRole role) {
  std::string prefix = "_INBOX_" + std::string(RoleName(role));
  for (char& c : prefix) {
    if (c == '-') c = '_';
  }
  return prefix;
}

NatsPermissions PermissionsOf(PipelineRole role, const PipelineNames& names) {
  const std::string stream = names.stream();
  const std::string kv = names.tombstone_bucket();
  const std::string api = "$JS.API.";
  NatsPermissions p;
  p.subscribe.push_back(InboxPrefixOf(role) + ".>");
  if (role == PipelineRole::kController) {
    // The finalizer's clean-up: delete the stream and the tombstone bucket.
    p.publish = {api + "STREAM.INFO." + stream, api + "STREAM.DELETE." + stream, api + "STREAM.INFO.KV_" + kv,
                 api + "STREAM.DELETE.KV_" + kv};
    return p;
  }
  if (role == PipelineRole::kMetricsExporter) return p;
  // Every producing or consuming role ensures the stream and both consumers at start-up
  // (EnsurePipeline; idempotent, so they may start in any order).
  p.publish = {api + "INFO", api + "STREAM.INFO." + stream, api + "STREAM.CREATE." + stream,
               api + "STREAM.UPDATE." + stream};
  for (const char* durable : {"processor", "synchronizer"}) {
    p.publish.push_back(api + "CONSUMER.INFO." + stream + "." + durable);
    p.publish.push_back(api + "CONSUMER.DURABLE.CREATE." + stream + "." + durable);
    p.publish.push_back(api + "CONSUMER.CREATE." + stream + "." + durable);
    p.publish.push_back(api + "CONSUMER.CREATE." + stream + "." + durable + ".>");
  }
  const auto consume = [&](const char* durable) {
    p.publish.push_back(api + "CONSUMER.MSG.NEXT." + stream + "." + durable);
    p.publish.push_back("$JS.ACK." + stream + "." + durable + ".>");
  };
  switch (role) {
    case PipelineRole::kEventsListener:
      p.publish.push_back(names.events_subject());
      p.publish.push_back(names.control_subject());
      break;
    case PipelineRole::kProcessor:
      consume("processor");
      p.publish.push_back(names.apply_subject());
      break;
    case PipelineRole::kSynchronizer:
      consume("synchronizer");
      // The tombstone bucket (JetStream key-value): create/bind, read, write.
      p.publish.push_back(api + "STREAM.INFO.KV_" + kv);
      p.publish.push_back(api + "STREAM.CREATE.KV_" + kv);
      p.publish.push_back(api + "STREAM.UPDATE.KV_" + kv);
      p.publish.push_back(api + "STREAM.MSG.GET.KV_" + kv);
      p.publish.push_back(api + "DIRECT.GET.KV_" + kv + ".>");
      p.publish.push_back("$KV." + kv + ".>");
      // The watch keeping the synchronizer's copy of the bucket (KeyValueMirror): cnats
      // finds the bucket's stream by subject, then runs an ordered ephemeral consumer
      // (created again after a gap, deleted when the watch stops) with flow control.
      // The pipeline's NATS server holds only this pipeline's streams.
      p.publish.push_back(api + "STREAM.NAMES");
      p.publish.push_back(api + "CONSUMER.CREATE.KV_" + kv);
      p.publish.push_back(api + "CONSUMER.CREATE.KV_" + kv + ".>");
      p.publish.push_back(api + "CONSUMER.DELETE.KV_" + kv + ".>");
      p.publish.push_back("$JS.FC.KV_" + kv + ".>");
      break;
    case PipelineRole::kReconciler:
      p.publish.push_back(names.events_subject());
      p.subscribe.push_back(names.control_subject());
      break;
    case PipelineRole::kMetricsExporter:
    case PipelineRole::kController: break;
  }
  return p;
}

std::string NatsServerConfig(const PipelineNames& names, const PipelineCredentials& credentials,
                             const NatsServerLayout& layout) {
  std::string out;
  out += "# Rendered by the LiveSynchronization controller (docs/security.md). Do not edit.\n";
  out += "listen: " + Quote(layout.listen) + "\n";
  if (layout.monitor_port > 0) out += "http_port: " + std::to_string(layout.monitor_port) + "\n";
  if (layout.debug) out += "debug: true\n";
  out += "tls {\n  cert_file: " + Quote(layout.cert_file) + "\n  key_file: " + Quote(layout.key_file) +
         "\n  timeout: 5\n}\n";
  out += "jetstream {\n  store_dir: " + Quote(layout.store_dir) + "\n  cipher: chachapoly\n  key: " +
         Quote(credentials.jetstream_key) + "\n}\n";
  if (!layout.cluster_listen.empty()) {
    // "$POD_NAME": an environment variable nats-server substitutes (only unquoted).
    const bool variable = layout.server_name.size() > 1 && layout.server_name[0] == '$' &&
                          layout.server_name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789", 1) ==
                              std::string::npos;
    out += "server_name: " + (variable ? layout.server_name : Quote(layout.server_name)) + "\n";
    out += "cluster {\n  name: " + Quote(names.stream()) + "\n  listen: " + Quote(layout.cluster_listen) + "\n";
    out += "  tls {\n    cert_file: " + Quote(layout.cert_file) + "\n    key_file: " + Quote(layout.key_file) +
           "\n    ca_file: " + Quote(layout.ca_file) + "\n    verify: true\n    timeout: 5\n  }\n";
    std::vector<std::string> routes;
    routes.reserve(layout.routes.size());
    for (const std::string& route : layout.routes) routes.push_back("nats-route://" + route);
    out += "  routes: " + QuotedList(routes) + "\n}\n";
  }
  out += "authorization {\n  users = [\n";
  for (PipelineRole role : AllPipelineRoles()) {
    const auto password = credentials.nats_password_hashes.find(RoleName(role));
    if (password == credentials.nats_password_hashes.end()) continue;
    const NatsPermissions p = PermissionsOf(role, names);
    out += "    {user: " + Quote(RoleName(role)) + ", password: " + Quote(password->second) +
           ", permissions: {publish: {allow: " + QuotedList(p.publish) + "}, subscribe: {allow: " +
           QuotedList(p.subscribe) + "}}}\n";
  }
  out += "  ]\n}\n";
  return out;
}

std::string RedisAclFile(const PipelineNames& names, const PipelineCredentials& credentials) {
  const std::string keys = "~" + names.redis_prefix() + ":*";
  std::string out = "user default off nopass nocommands\n";
  for (PipelineRole role : AllPipelineRoles()) {
    const auto password = credentials.redis_passwords.find(RoleName(role));
    if (password == credentials.redis_passwords.end()) continue;
    std::string commands;
    switch (role) {
      case PipelineRole::kMetricsExporter: commands = "+ping +get +hgetall +scan"; break;
      case PipelineRole::kController: commands = "+ping +get +hgetall +scan +del +unlink"; break;
      default: commands = "+ping +get +set +del +unlink +hgetall +hset +hincrby +hincrbyfloat +scan"; break;
    }
    out += "user " + std::string(RoleName(role)) + " on #" + common::Sha256Hex(password->second) +
           " resetkeys " + keys + " resetchannels -@all " + commands + "\n";
  }
  return out;
}

NatsOptions WithSecurity(NatsOptions base, const ClientSecurity& security) {
  if (!security.enabled()) return base;
  base.user = security.user;
  base.password = security.nats_password;
  base.ca_pem = security.ca_pem;
  base.tls_server_name = security.nats_server_name;
  base.inbox_prefix = security.inbox_prefix;
  return base;
}

RedisOptions WithSecurity(RedisOptions base, const ClientSecurity& security) {
  if (!security.enabled()) return base;
  base.user = security.user;
  base.password = security.redis_password;
  base.ca_pem = security.ca_pem;
  base.tls_server_name = security.redis_server_name;
  return base;
}

std::vector<std::string> RedisServerTlsArgs(int port, const std::string& files_dir) {
  return {"--port",          "0",
          "--tls-port",      std::to_string(port),
          "--tls-cert-file", files_dir + "/redis.crt",
          "--tls-key-file",  files_dir + "/redis.key",
          "--tls-ca-cert-file", files_dir + "/" + std::string(kCaFile),
          "--tls-auth-clients", "no",
          "--tls-protocols", "TLSv1.2 TLSv1.3"};
}

PipelineRole RoleOf(ComponentId component) {
  switch (component) {
    case ComponentId::kEventsListener: return PipelineRole::kEventsListener;
    case ComponentId::kProcessor: return PipelineRole::kProcessor;
    case ComponentId::kSynchronizer: return PipelineRole::kSynchronizer;
    case ComponentId::kReconciler: return PipelineRole::kReconciler;
    case ComponentId::kMetricsExporter: return PipelineRole::kMetricsExporter;
  }
  return PipelineRole::kMetricsExporter;
}

ClientSecurity ControllerSecurity(const PipelineCredentials& credentials, std::string nats_server_name,
                                  std::string redis_server_name) {
  ClientSecurity out;
  out.user = std::string(RoleName(PipelineRole::kController));
  out.nats_password = credentials.nats_passwords.at(out.user);
  out.redis_password = credentials.redis_passwords.at(out.user);
  out.ca_pem = credentials.ca_pem;
  out.nats_server_name = std::move(nats_server_name);
  out.redis_server_name = std::move(redis_server_name);
  out.inbox_prefix = InboxPrefixOf(PipelineRole::kController);
  return out;
}

ClientSecurity LoadClientSecurity(PipelineRole role, const std::string& dir, std::string nats_server_name,
                                  std::string redis_server_name) {
  ClientSecurity out;
  out.user = std::string(RoleName(role));
  if (UsesNats(role)) out.nats_password = ReadFile(dir, NatsPasswordFile(role), true);
  out.redis_password = ReadFile(dir, RedisPasswordFile(role), true);
  out.ca_pem = ReadFile(dir, std::string(kCaFile), true) + "\n";
  out.nats_server_name = std::move(nats_server_name);
  out.redis_server_name = std::move(redis_server_name);
  out.inbox_prefix = InboxPrefixOf(role);
  return out;
}

}  // namespace ro::kubesync

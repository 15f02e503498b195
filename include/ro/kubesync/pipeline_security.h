// Who may talk to a LiveSynchronization's NATS and Redis, and how (docs/security.md):
// the per-pipeline credentials the LiveSynchronization controller generates and keeps in
// the Secret "<ls>-kubesync-credentials", the nats-server configuration (TLS, users with
// per-component subject permissions, JetStream encryption at rest) and the Redis ACL
// file rendered from them. Pure functions but GenerateCredentials (random keys).
//
//   controller: GenerateCredentials -> CredentialsSecretData -> Secret
//   runners:    CredentialsFromSecretData -> NatsServerConfig / RedisAclFile (servers),
//               ClientFiles (what each component mounts)
//   components: ClientSecurityFor(role, dir) -> NatsOptions / RedisOptions
#pragma once

#include <chrono>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "ro/kubesync/component.h"
#include "ro/kubesync/envelope.h"
#include "ro/kubesync/jetstream.h"
#include "ro/kubesync/redis_state.h"

namespace ro::kubesync {

// The Secret's data is missing a key or holds something unusable (a certificate that does
// not parse). field() names the key. The controller regenerates the credentials.
class PipelineSecurityError : public std::runtime_error {
 public:
  PipelineSecurityError(std::string field, const std::string& message);
  const std::string& field() const noexcept { return field_; }

 private:
  std::string field_;
};

// The clients of a pipeline's servers. Each has its own NATS user and Redis ACL user.
enum class PipelineRole {
  kEventsListener,
  kProcessor,
  kSynchronizer,
  kReconciler,
  kMetricsExporter,
  kController,  // the LiveSynchronization controller: status statistics, clean-up
};

// Every role, in a fixed order.
const std::vector<PipelineRole>& AllPipelineRoles();
// The user name: "events-listener", "processor", "synchronizer", "reconciler",
// "metrics-exporter", "controller" (the kubesync subcommand names).
std::string_view RoleName(PipelineRole role);

// One pipeline's credentials. Plain value type; every string is non-empty once generated.
struct PipelineCredentials {
  // Role name -> password (64 hex digits, 256 random bits), one map per server.
  std::map<std::string, std::string, std::less<>> nats_passwords;
  std::map<std::string, std::string, std::less<>> redis_passwords;
  // Role name -> bcrypt hash ("$2b$10$...", libxcrypt) of its NATS password: what
  // nats-server's configuration holds, so the servers' files carry no NATS password.
  std::map<std::string, std::string, std::less<>> nats_password_hashes;
  // The pipeline's own CA (ECDSA P-256, self-signed, PEM). Its key is discarded once the
  // servers' certificates are signed: nothing can issue another certificate it trusts.
  std::string ca_pem;
  // nats-server's and redis-server's certificates (signed by the CA; DNS SANs from
  // GenerateCredentials plus IP 127.0.0.1) and their keys, PEM.
  std::string nats_cert_pem;
  std::string nats_key_pem;
  std::string redis_cert_pem;
  std::string redis_key_pem;
  // JetStream's encryption-at-rest key (64 hex digits) for cipher chachapoly.
  std::string jetstream_key;
  // The certificates' end of validity.
  std::chrono::system_clock::time_point not_after{};

  // 16 hex digits identifying this set (a new set -> every process restarts).
  std::string Fingerprint() const;
};

// New credentials: random passwords and JetStream key, a new CA, a NATS certificate for
// `nats_dns_names` (e.g. "pre-nats", "pre-nats.dr.svc"; the first is the name clients
// verify, runner::ServerName) and a Redis certificate for `redis_dns_names` ("pre-redis",
// ...), valid from now - 1 h (clock skew) for `validity`. Throws std::invalid_argument
// for an empty name list, std::runtime_error if OpenSSL fails.
PipelineCredentials GenerateCredentials(const std::vector<std::string>& nats_dns_names,
                                        const std::vector<std::string>& redis_dns_names,
                                        std::chrono::system_clock::time_point now,
                                        std::chrono::hours validity = std::chrono::hours{24 * 365});

// The Secret's data (key -> value, not base64): "ca.crt", "nats.crt", "nats.key",
// "redis.crt", "redis.key", "jetstream.key", "not-after" (RFC 3339),
// "nats-<role>.password", "nats-<role>.bcrypt", "redis-<role>.password".
std::map<std::string, std::string> CredentialsSecretData(const PipelineCredentials& credentials);
// Reads it back. Throws PipelineSecurityError naming the missing or malformed key (a
// Secret written before Redis had TLS lacks "redis.crt": the controller regenerates it).
PipelineCredentials CredentialsFromSecretData(const std::map<std::string, std::string>& data);

// The names of the files of one role's client credentials inside the directory a
// launcher gives them (the kubesync Secret's keys): "ca.crt", "nats-<role>.password",
// "redis-<role>.password".
inline constexpr std::string_view kCaFile = "ca.crt";
std::string NatsPasswordFile(PipelineRole role);
std::string RedisPasswordFile(PipelineRole role);
// Every client file of every component role, name -> content (the controller's role is
// left out: its credentials never leave the controller).
std::vector<std::pair<std::string, std::string>> ClientFiles(const PipelineCredentials& credentials);

// What a role may do on NATS: subjects it may publish to and subscribe to (nats-server
// "permissions" allow lists; everything else is denied). The JetStream API is limited to
// the pipeline's stream, its role's consumer and, for the synchronizer, the tombstone
// bucket; replies come back on the role's own inbox prefix "_INBOX_<role>.>".
struct NatsPermissions {
  std::vector<std::string> publish;
  std::vector<std::string> subscribe;
};
NatsPermissions PermissionsOf(PipelineRole role, const PipelineNames& names);
// The inbox prefix of a role's connection ("_INBOX_processor"): NatsOptions::inbox_prefix.
std::string InboxPrefixOf(PipelineRole role);

// Where nats-server finds its files and listens.
struct NatsServerLayout {
  std::string listen;         // "127.0.0.1:40123" or "0.0.0.0:4222"
  int monitor_port = 0;       // HTTP monitoring (health probes); 0 = none
  std::string store_dir;      // JetStream's directory
  std::string cert_file;      // nats.crt / nats.key as files
  std::string key_file;
  bool debug = false;         // -D
  // A member of a JetStream cluster when cluster_listen is set: its unique server_name
  // (or "$VARIABLE", read from nats-server's environment, e.g. "$POD_NAME"),
  // the address its routes listen on ("0.0.0.0:6222") and the other members' routes
  // ("host:port"), dialled with TLS. ca_file: the pipeline CA, which every route peer's
  // certificate must chain to (mutual TLS; the members hold the same certificate).
  std::string server_name;
  std::string cluster_listen;
  std::vector<std::string> routes;
  std::string ca_file;
};

// nats-server's configuration file: TLS with the pipeline's certificate (clients must use
// TLS), one user per role (bcrypt password hash) with PermissionsOf, no anonymous
// access, JetStream with cipher chachapoly and the pipeline's key; with
// layout.cluster_listen, a `cluster` block whose routes use mutual TLS against the
// pipeline CA (docs/security.md).
std::string NatsServerConfig(const PipelineNames& names, const PipelineCredentials& credentials,
                             const NatsServerLayout& layout);

// redis-server's TLS arguments: TLS only on `port` (no plain-text port), the pipeline's
// certificate and CA from `files_dir` ("redis.crt", "redis.key", "ca.crt"), clients not
// asked for certificates (they authenticate with their ACL user).
std::vector<std::string> RedisServerTlsArgs(int port, const std::string& files_dir);

// redis-server's ACL file: the default user off (unauthenticated clients are refused),
// one user per role with a SHA-256 password hash, only the keys "<redis_prefix>:*" and
// only the commands that role uses (the metrics exporter reads only).
std::string RedisAclFile(const PipelineNames& names, const PipelineCredentials& credentials);

// How a client authenticates, read from files (the components) or memory (the
// controller). Empty user = security off (a configuration without "security").
struct ClientSecurity {
  std::string user;
  std::string nats_password;
  std::string redis_password;
  std::string ca_pem;             // verify nats-server and redis-server against this CA
  std::string nats_server_name;   // the certificate names to expect
  std::string redis_server_name;
  std::string inbox_prefix;

  bool enabled() const { return !user.empty(); }
};

// `base` with the user, password, CA, server name and inbox prefix of `security` (no
// change when security is off).
NatsOptions WithSecurity(NatsOptions base, const ClientSecurity& security);
RedisOptions WithSecurity(RedisOptions base, const ClientSecurity& security);

// The role of a kubesync component.
PipelineRole RoleOf(ComponentId component);

// The controller's ClientSecurity for a pipeline.
ClientSecurity ControllerSecurity(const PipelineCredentials& credentials, std::string nats_server_name,
                                  std::string redis_server_name);

// Reads `role`'s client files from `dir`. Throws PipelineSecurityError naming the file
// that is missing or empty.
ClientSecurity LoadClientSecurity(PipelineRole role, const std::string& dir, std::string nats_server_name,
                                  std::string redis_server_name);

}  // namespace ro::kubesync

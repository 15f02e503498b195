// The pipeline's credentials (kubesync/pipeline_security.h, docs/security.md): the
// generated CA and NATS certificate, the Secret round trip, each role's NATS
// permissions, the rendered nats-server configuration and Redis ACL file, and what the
// Deployments runner mounts where.
#include <gtest/gtest.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <tuple>
#include <string>

#include <nlohmann/json.hpp>

#include "ro/common/base64.h"
#include "ro/common/certificates.h"
#include "ro/common/digest.h"
#include "ro/kubesync/pipeline_security.h"
#include "ro/kubesync/runner/deployments_runner.h"
#include "ro/kubesync/runner/pipeline_plan.h"
#include "ro/plugins/kubernetes/live_sync_config.h"

namespace {

using nlohmann::json;
namespace ks = ro::kubesync;
namespace runner = ro::kubesync::runner;
using ks::PipelineRole;
using std::chrono::hours;
using std::chrono::system_clock;

struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
using CertPtr = std::unique_ptr<X509, X509Deleter>;

CertPtr ParseCert(const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  return CertPtr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

const ks::PipelineCredentials& Credentials() {
  static const ks::PipelineCredentials credentials =
      ks::GenerateCredentials(runner::ServerDnsNames({"dr", "pre"}, runner::PipelinePart::kNats),
                              runner::ServerDnsNames({"dr", "pre"}, runner::PipelinePart::kRedis), system_clock::now());
  return credentials;
}

bool Contains(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

TEST(PipelineSecurity, TheServerCertificatesChainToThePipelineCaAndNameTheirServices) {
  const ks::PipelineCredentials& c = Credentials();
  CertPtr ca = ParseCert(c.ca_pem);
  ASSERT_TRUE(ca);
  for (const auto& [pem, service, other] : {std::tuple{c.nats_cert_pem, std::string("pre-nats"), "pre-redis"},
                                            std::tuple{c.redis_cert_pem, std::string("pre-redis"), "pre-nats"}}) {
    SCOPED_TRACE(service);
    CertPtr server = ParseCert(pem);
    ASSERT_TRUE(server);
    std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), X509_STORE_free);
    X509_STORE_add_cert(store.get(), ca.get());
    std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> ctx(X509_STORE_CTX_new(), X509_STORE_CTX_free);
    ASSERT_EQ(X509_STORE_CTX_init(ctx.get(), store.get(), server.get(), nullptr), 1);
    X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER);
    EXPECT_EQ(X509_verify_cert(ctx.get()), 1) << X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
    for (const std::string& name : {service, service + ".dr", service + ".dr.svc", service + ".dr.svc.cluster.local"}) {
      EXPECT_EQ(X509_check_host(server.get(), name.c_str(), 0, 0, nullptr), 1) << name;
    }
    EXPECT_EQ(X509_check_ip_asc(server.get(), "127.0.0.1", 0), 1);
    EXPECT_NE(X509_check_host(server.get(), other, 0, 0, nullptr), 1);  // each server its own name
  }
  // The CA cannot sign for anyone else: its key was never kept.
  const std::map<std::string, std::string> data = ks::CredentialsSecretData(c);
  for (const auto& [key, value] : data) {
    EXPECT_EQ(value.find("BEGIN PRIVATE KEY") != std::string::npos, key == "nats.key" || key == "redis.key") << key;
  }
  const auto left = c.not_after - system_clock::now();
  EXPECT_GT(left, hours{24 * 364});
  EXPECT_LT(left, hours{24 * 366});
}

TEST(PipelineSecurity, EveryRoleHasItsOwnRandomPasswords) {
  const ks::PipelineCredentials& c = Credentials();
  std::set<std::string> seen;
  for (const auto& [role, password] : c.nats_passwords) {
    EXPECT_EQ(password.size(), 64u) << role;
    EXPECT_TRUE(seen.insert(password).second);
  }
  for (const auto& [role, password] : c.redis_passwords) EXPECT_TRUE(seen.insert(password).second) << role;
  EXPECT_EQ(c.redis_passwords.size(), 6u);
  EXPECT_EQ(c.nats_passwords.size(), 5u);  // the metrics exporter does not use NATS
  EXPECT_FALSE(c.nats_passwords.contains("metrics-exporter"));
  const ks::PipelineCredentials other = ks::GenerateCredentials({"pre-nats"}, {"pre-redis"}, system_clock::now());
  EXPECT_NE(other.jetstream_key, c.jetstream_key);
  EXPECT_NE(other.Fingerprint(), c.Fingerprint());
}

TEST(PipelineSecurity, SecretDataRoundTripsAndAMissingKeyIsNamed) {
  const ks::PipelineCredentials& c = Credentials();
  std::map<std::string, std::string> data = ks::CredentialsSecretData(c);
  const ks::PipelineCredentials back = ks::CredentialsFromSecretData(data);
  EXPECT_EQ(back.Fingerprint(), c.Fingerprint());
  // A Secret written before Redis had TLS has no Redis certificate: named, so the
  // controller regenerates the set.
  for (const char* key : {"redis-synchronizer.password", "redis.crt"}) {
    std::map<std::string, std::string> without = data;
    without.erase(key);
    try {
      ks::CredentialsFromSecretData(without);
      FAIL() << "no error without " << key;
    } catch (const ks::PipelineSecurityError& e) {
      EXPECT_EQ(e.field(), key);
    }
  }
}

TEST(PipelineSecurity, EachRoleMayUseOnlyItsOwnSubjects) {
  const ks::PipelineNames names("dr", "pre");
  const auto listener = ks::PermissionsOf(PipelineRole::kEventsListener, names);
  const auto processor = ks::PermissionsOf(PipelineRole::kProcessor, names);
  const auto synchronizer = ks::PermissionsOf(PipelineRole::kSynchronizer, names);
  const auto reconciler = ks::PermissionsOf(PipelineRole::kReconciler, names);
  const auto controller = ks::PermissionsOf(PipelineRole::kController, names);
  const std::string events = names.events_subject();
  const std::string apply = names.apply_subject();
  // Only the processor publishes to the apply subject.
  EXPECT_TRUE(Contains(processor.publish, apply));
  for (const auto* p : {&listener, &synchronizer, &reconciler, &controller}) EXPECT_FALSE(Contains(p->publish, apply));
  // The listener and the reconciler publish events; nobody subscribes to them directly
  // (the processor pulls through its consumer).
  EXPECT_TRUE(Contains(listener.publish, events));
  EXPECT_TRUE(Contains(reconciler.publish, events));
  EXPECT_FALSE(Contains(processor.publish, events));
  for (const auto* p : {&listener, &processor, &synchronizer, &reconciler, &controller}) {
    EXPECT_FALSE(Contains(p->subscribe, events));
    EXPECT_FALSE(Contains(p->subscribe, apply));
    EXPECT_FALSE(Contains(p->subscribe, ">"));
    EXPECT_FALSE(Contains(p->publish, ">"));
    EXPECT_FALSE(Contains(p->subscribe, "_INBOX.>"));
  }
  // Pulling from a consumer: the processor only its own, the synchronizer only its own.
  const std::string next = "$JS.API.CONSUMER.MSG.NEXT." + names.stream() + ".";
  EXPECT_TRUE(Contains(processor.publish, next + "processor"));
  EXPECT_FALSE(Contains(processor.publish, next + "synchronizer"));
  EXPECT_TRUE(Contains(synchronizer.publish, next + "synchronizer"));
  EXPECT_FALSE(Contains(listener.publish, next + "processor"));
  EXPECT_FALSE(Contains(listener.publish, next + "synchronizer"));
  // The control subject: the listener asks, the reconciler listens.
  EXPECT_TRUE(Contains(listener.publish, names.control_subject()));
  EXPECT_TRUE(Contains(reconciler.subscribe, names.control_subject()));
  // Only the controller deletes the stream; only the synchronizer writes tombstones.
  EXPECT_TRUE(Contains(controller.publish, "$JS.API.STREAM.DELETE." + names.stream()));
  EXPECT_FALSE(Contains(synchronizer.publish, "$JS.API.STREAM.DELETE." + names.stream()));
  EXPECT_TRUE(Contains(synchronizer.publish, "$KV." + names.tombstone_bucket() + ".>"));
  EXPECT_FALSE(Contains(processor.publish, "$KV." + names.tombstone_bucket() + ".>"));
  // Replies come back on the role's own inbox.
  EXPECT_TRUE(Contains(processor.subscribe, "_INBOX_processor.>"));
  EXPECT_EQ(ks::InboxPrefixOf(PipelineRole::kEventsListener), "_INBOX_events_listener");
}

// A single server's files under /etc/s and /data/js, listening on `listen`.
ks::NatsServerLayout SingleServerLayout(const std::string& listen) {
  ks::NatsServerLayout layout;
  layout.listen = listen;
  layout.store_dir = "/data/js";
  layout.cert_file = "/etc/s/nats.crt";
  layout.key_file = "/etc/s/nats.key";
  return layout;
}

TEST(PipelineSecurity, TheNatsConfigurationRequiresTlsUsersAndEncryptsJetStream) {
  const ks::PipelineCredentials& c = Credentials();
  const ks::NatsServerLayout layout = SingleServerLayout("127.0.0.1:4222");
  const std::string config = ks::NatsServerConfig(ks::PipelineNames("dr", "pre"), c, layout);
  EXPECT_NE(config.find("tls {\n  cert_file: \"/etc/s/nats.crt\""), std::string::npos) << config;
  EXPECT_NE(config.find("cipher: chachapoly\n  key: \"" + c.jetstream_key + "\""), std::string::npos);
  EXPECT_EQ(config.find("no_auth_user"), std::string::npos);
  for (const auto& [role, password] : c.nats_passwords) {
    // Only the bcrypt hash, never the password.
    EXPECT_EQ(config.find(password), std::string::npos) << role;
    const std::string& hash = c.nats_password_hashes.at(role);
    EXPECT_EQ(hash.rfind("$2b$10$", 0), 0u) << hash;
    EXPECT_NE(config.find("{user: \"" + role + "\", password: \"" + hash + "\""), std::string::npos) << role;
  }
  EXPECT_EQ(config.find("http_port"), std::string::npos);  // monitor_port 0: none
  EXPECT_EQ(config.find("cluster"), std::string::npos);    // a single server
}

TEST(PipelineSecurity, TheMembersOfANatsClusterVerifyEachOthersRoutesAgainstThePipelineCa) {
  const ks::PipelineCredentials& c = Credentials();
  ks::NatsServerLayout layout = SingleServerLayout("0.0.0.0:4222");
  layout.server_name = "$POD_NAME";
  layout.cluster_listen = "0.0.0.0:6222";
  layout.routes = {runner::NatsMemberHost({"dr", "pre"}, 0) + ":6222", runner::NatsMemberHost({"dr", "pre"}, 1) + ":6222"};
  layout.ca_file = "/etc/s/ca.crt";
  const std::string config = ks::NatsServerConfig(ks::PipelineNames("dr", "pre"), c, layout);
  EXPECT_NE(config.find("server_name: $POD_NAME\n"), std::string::npos) << config;  // unquoted: substituted
  EXPECT_NE(config.find("cluster {\n  name: \"KS_dr_pre\"\n  listen: \"0.0.0.0:6222\"\n  tls {\n"
                        "    cert_file: \"/etc/s/nats.crt\"\n    key_file: \"/etc/s/nats.key\"\n"
                        "    ca_file: \"/etc/s/ca.crt\"\n    verify: true\n"),
            std::string::npos)
      << config;
  EXPECT_NE(config.find("routes: [\"nats-route://pre-nats-0.pre-nats-routes.dr.svc:6222\", "
                        "\"nats-route://pre-nats-1.pre-nats-routes.dr.svc:6222\"]"),
            std::string::npos)
      << config;
  layout.server_name = "n0";
  EXPECT_NE(ks::NatsServerConfig(ks::PipelineNames("dr", "pre"), c, layout).find("server_name: \"n0\"\n"),
            std::string::npos);

  // The certificate every member holds serves its routes and dials the others' (client
  // auth), under each member's name.
  CertPtr nats = ParseCert(c.nats_cert_pem);
  ASSERT_TRUE(nats);
  EXPECT_EQ(X509_check_purpose(nats.get(), X509_PURPOSE_SSL_CLIENT, 0), 1);
  EXPECT_EQ(X509_check_purpose(nats.get(), X509_PURPOSE_SSL_SERVER, 0), 1);
  for (int member : {0, 2, 4}) {
    const std::string host = runner::NatsMemberHost({"dr", "pre"}, member);
    EXPECT_TRUE(ro::common::CertificateNamesHost(c.nats_cert_pem, host)) << host;
    EXPECT_TRUE(ro::common::CertificateNamesHost(c.nats_cert_pem, host + ".cluster.local")) << host;
    EXPECT_FALSE(ro::common::CertificateNamesHost(c.redis_cert_pem, host)) << host;
  }
  EXPECT_FALSE(ro::common::CertificateNamesHost(c.nats_cert_pem, "x.pre-nats-routes.other.svc"));
  EXPECT_FALSE(ro::common::CertificateNamesHost("not a certificate", "pre-nats"));
}

TEST(PipelineSecurity, TheRedisAclFileRefusesAnonymousClientsAndHoldsOnlyHashes) {
  const ks::PipelineCredentials& c = Credentials();
  const std::string acl = ks::RedisAclFile(ks::PipelineNames("dr", "pre"), c);
  EXPECT_EQ(acl.rfind("user default off", 0), 0u) << acl;
  for (const auto& [role, password] : c.redis_passwords) {
    EXPECT_EQ(acl.find(password), std::string::npos) << role;
    EXPECT_NE(acl.find("user " + role + " on #" + ro::common::Sha256Hex(password) + " resetkeys ~ks:dr.pre:*"),
              std::string::npos)
        << role;
  }
  // The metrics exporter only reads.
  const auto line_start = acl.find("user metrics-exporter ");
  const std::string line = acl.substr(line_start, acl.find('\n', line_start) - line_start);
  EXPECT_EQ(line.find("+set"), std::string::npos) << line;
  EXPECT_EQ(line.find("+del"), std::string::npos) << line;
}

runner::PipelinePlan SecuredPlan() {
  const json config = json::parse(R"({"sourceName": "cluster-1", "destinationName": "cluster-2",
    "replication": {"resources": [{"group": "apps", "version": "v1", "resource": "deployments"}]}})");
  runner::PipelineInputs in;
  in.live_synchronization = {"pre", "dr", "ls-uid", "10"};
  in.spec_config = std::make_shared<const json>(config);
  in.source_cluster = {"cluster-1", "dr", "c1-uid", "11"};
  in.destination_cluster = {"cluster-2", "dr", "c2-uid", "12"};
  in.source_kubeconfig = "source kubeconfig";
  in.destination_kubeconfig = "destination kubeconfig";
  in.credentials = Credentials();
  return runner::PlanPipeline(in, ro::plugins::kubernetes::ParseLiveSyncConfig(config));
}

std::map<std::string, json> Rendered(const runner::PipelinePlan& plan) {
  std::map<std::string, json> objects;
  runner::DeploymentsRunnerOptions options;
  options.operator_namespace = "ops";
  for (const auto& rendered : runner::RenderPipelineObjects(plan, options)) {
    objects[rendered.object["kind"].get<std::string>() + "/" + rendered.object["metadata"]["name"].get<std::string>()] =
        rendered.object;
  }
  return objects;
}

std::set<std::string> MountedKeys(const json& deployment, const std::string& volume) {
  std::set<std::string> keys;
  for (const json& v : deployment["spec"]["template"]["spec"]["volumes"]) {
    if (v["name"] != volume) continue;
    for (const json& item : v["secret"]["items"]) keys.insert(item["key"].get<std::string>());
  }
  return keys;
}

TEST(PipelineSecurity, EachPodMountsOnlyItsOwnCredentials) {
  const std::map<std::string, json> objects = Rendered(SecuredPlan());
  const std::set<std::string> processor = MountedKeys(objects.at("Deployment/pre-processor"), "config");
  EXPECT_TRUE(processor.contains("nats-processor.password"));
  EXPECT_TRUE(processor.contains("redis-processor.password"));
  EXPECT_TRUE(processor.contains("ca.crt"));
  EXPECT_TRUE(processor.contains("config.json"));
  EXPECT_FALSE(processor.contains("nats-synchronizer.password"));
  EXPECT_FALSE(processor.contains("redis-events-listener.password"));
  EXPECT_FALSE(processor.contains("nats-controller.password"));
  // The components' Secret holds no server file and no controller credential.
  const json& secret = objects.at("Secret/pre-kubesync");
  for (const char* key : {"nats.key", "nats.conf", "users.acl", "jetstream.key", "nats-controller.password"}) {
    EXPECT_FALSE(secret["data"].contains(key)) << key;
  }
  // The servers mount theirs from the servers' Secret.
  EXPECT_EQ(MountedKeys(objects.at("Deployment/pre-nats"), "server"),
            (std::set<std::string>{"nats.conf", "nats.crt", "nats.key", "ca.crt"}));
  EXPECT_EQ(MountedKeys(objects.at("Deployment/pre-redis"), "server"),
            (std::set<std::string>{"users.acl", "redis.crt", "redis.key", "ca.crt"}));
  // Redis listens with TLS only: no plain-text port.
  const json redis_args = objects.at("Deployment/pre-redis")["spec"]["template"]["spec"]["containers"][0]["args"];
  const auto arg_after = [&](const std::string& flag) {
    for (std::size_t i = 0; i + 1 < redis_args.size(); ++i) {
      if (redis_args[i] == flag) return redis_args[i + 1].get<std::string>();
    }
    return std::string("(absent)");
  };
  EXPECT_EQ(arg_after("--port"), "0");
  EXPECT_EQ(arg_after("--tls-port"), "6379");
  EXPECT_EQ(arg_after("--tls-cert-file"), "/etc/kubesync-server/redis.crt");
  EXPECT_EQ(arg_after("--aclfile"), "/etc/kubesync-server/users.acl");
  const json nats_args = objects.at("Deployment/pre-nats")["spec"]["template"]["spec"]["containers"][0]["args"];
  EXPECT_EQ(nats_args, json::parse(R"(["-c", "/etc/kubesync-server/nats.conf"])"));
  const json config = json::parse(ro::kubesync::runner::PipelineFiles(
                                      SecuredPlan(), runner::DeploymentsPlacement({"dr", "pre"}))[0].second);
  EXPECT_EQ(config["security"], json::parse(R"({"credentialsDir": "/etc/kubesync", "natsServerName": "pre-nats", "redisServerName": "pre-redis"})"));
}

TEST(PipelineSecurity, TheNetworkPolicyAdmitsOnlyThePipelineAndTheController) {
  const std::map<std::string, json> objects = Rendered(SecuredPlan());
  const json& policy = objects.at("NetworkPolicy/pre-kubesync-servers");
  EXPECT_EQ(policy["spec"]["podSelector"]["matchExpressions"][0]["values"], json::parse(R"(["nats", "redis"])"));
  const json& from = policy["spec"]["ingress"][0]["from"];
  ASSERT_EQ(from.size(), 2u);
  EXPECT_EQ(from[0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"], "kubesync");
  EXPECT_FALSE(from[0].contains("namespaceSelector"));  // the LiveSynchronization's namespace only
  EXPECT_EQ(from[1]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"], "ops");
  EXPECT_EQ(from[1]["podSelector"]["matchLabels"]["app.kubernetes.io/component"], "livesynchronization-controller");
  std::set<int> ports;
  for (const json& port : policy["spec"]["ingress"][0]["ports"]) ports.insert(port["port"].get<int>());
  EXPECT_EQ(ports, (std::set<int>{4222, 8222, 6222, 6379}));  // 6222: the NATS cluster's routes
}

TEST(PipelineSecurity, ASecuredNatsClusterRendersOneConfigurationForEveryMember) {
  runner::PipelinePlan plan = SecuredPlan();
  for (runner::PartPlan& part : plan.parts) {
    if (part.part == runner::PipelinePart::kNats) part.replicas = 3;
  }
  const std::map<std::string, json> objects = Rendered(plan);
  const json& nats = objects.at("StatefulSet/pre-nats");
  EXPECT_EQ(nats["spec"]["template"]["spec"]["containers"][0]["args"],
            json::parse(R"(["-c", "/etc/kubesync-server/nats.conf"])"));
  const json& servers = objects.at("Secret/pre-kubesync-servers");
  const std::string config = ro::common::DecodeBase64(servers["data"]["nats.conf"].get<std::string>());
  EXPECT_NE(config.find("server_name: $POD_NAME\n"), std::string::npos) << config;
  EXPECT_NE(config.find("ca_file: \"/etc/kubesync-server/ca.crt\"\n    verify: true"), std::string::npos) << config;
  for (int member = 0; member < 3; ++member) {
    EXPECT_NE(config.find("nats-route://pre-nats-" + std::to_string(member) + ".pre-nats-routes.dr.svc:6222"),
              std::string::npos)
        << member;
  }
  // A new configuration (another member count) rolls the members.
  const json single = Rendered(SecuredPlan()).at("Deployment/pre-nats");
  EXPECT_NE(nats["spec"]["template"]["metadata"]["annotations"]["kubesync.astronetes.io/config-hash"],
            single["spec"]["template"]["metadata"]["annotations"]["kubesync.astronetes.io/config-hash"]);
}

TEST(PipelineSecurity, WithoutCredentialsNothingChanges) {
  runner::PipelinePlan plan = SecuredPlan();
  plan.inputs.credentials.reset();
  const std::map<std::string, json> objects = Rendered(plan);
  EXPECT_FALSE(objects.contains("NetworkPolicy/pre-kubesync-servers"));
  EXPECT_FALSE(objects.contains("Secret/pre-kubesync-servers"));
  const json config = json::parse(
      ro::kubesync::runner::PipelineFiles(plan, runner::DeploymentsPlacement({"dr", "pre"}))[0].second);
  EXPECT_TRUE(config["security"].is_null());
}

}  // namespace

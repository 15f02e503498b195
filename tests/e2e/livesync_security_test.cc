// The pipeline locked (docs/security.md), as the controller runs it by default: tutorial
// 8.2 replicates with per-component NATS users over TLS, Redis ACL users and JetStream
// encrypted at rest, while
//   - nats-server refuses anonymous and plain-text clients, and a component's
//     credentials cannot read another's subjects or forge an apply message;
//   - Redis speaks TLS only (the client verifies its certificate) and refuses
//     unauthenticated clients, wrong passwords and commands a role lacks;
//   - no replicated Secret value appears in JetStream's files, in any log line (every
//     component and server at debug level), Event or status, through creates, updates,
//     deletes and a refused write.
// Real servers: two kube-apiservers, NATS, Redis, the controllers' and kubesync's binaries.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <openssl/evp.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "livesync_e2e.h"
#include "ro/kubesync/envelope.h"
#include "ro/kubesync/jetstream.h"
#include "ro/kubesync/pipeline_security.h"
#include "ro/kubesync/redis_state.h"

namespace {

using namespace livesync_e2e;
using ::testing::HasSubstr;
using ::testing::Not;
namespace ks = ro::kubesync;
namespace fs = std::filesystem;

constexpr const char* kLiveSync = "active-passive";
const GroupVersionResource kSecrets{"", "v1", "secrets"};

std::string Base64(const std::string& data) {
  std::string out(4 * ((data.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(data.data()), static_cast<int>(data.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string RandomToken() {
  std::random_device random;
  std::ostringstream out;
  out << std::hex << random() << random() << random();
  return out.str();
}

std::string Slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

// Secret data of the destination's copy ns/name, decoded ("" when absent).
std::string DestinationValue(Env& env, const std::string& ns, const std::string& name) {
  const std::optional<json> secret = env.destination_client().GetIfExists(kSecrets, ns, name);
  if (!secret || !secret->contains("data") || !(*secret)["data"].contains("value")) return "";
  const std::string encoded = (*secret)["data"]["value"].get<std::string>();
  std::string decoded(encoded.size(), '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(decoded.data()),
                                reinterpret_cast<const unsigned char*>(encoded.data()), static_cast<int>(encoded.size()));
  decoded.resize(static_cast<std::size_t>(std::max(n, 0)));
  while (!decoded.empty() && decoded.back() == '\0') decoded.pop_back();
  return decoded;
}

class LiveSyncSecurityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ks::OpenNatsLibrary();
    EnvOptions options;
    options.label = "livesync-security";
    env_ = std::make_unique<Env>(options);
  }
  static void TearDownTestSuite() { env_.reset(); }

  // The pipeline's files as the local runner keeps them.
  static fs::path PipelineDir(const std::string& ns) { return env_->runtime_dir() / ns / kLiveSync; }

  static json PipelineConfig(const std::string& ns) {
    return json::parse(Slurp(PipelineDir(ns) / "files" / "config.json"));
  }

  // `role`'s credentials, as the components read them.
  static ks::ClientSecurity LoadAs(const std::string& ns, ks::PipelineRole role) {
    return ks::LoadClientSecurity(role, (PipelineDir(ns) / "files").string(), std::string(kLiveSync) + "-nats",
                                  std::string(kLiveSync) + "-redis");
  }

  // NATS options of `role` from the components' files; `tls` false drops the CA.
  static ks::NatsOptions NatsAs(const std::string& ns, ks::PipelineRole role, bool tls = true) {
    const ks::ClientSecurity security = LoadAs(ns, role);
    ks::NatsOptions options = ks::WithSecurity(ks::NatsOptions{}, security);
    if (!tls) options.ca_pem.clear();
    options.max_reconnect = 0;
    options.connect_timeout = std::chrono::seconds{3};
    return options;
  }

  static std::string NatsLog(const std::string& ns) { return Slurp(PipelineDir(ns) / "logs" / "nats-0.log"); }

  static std::unique_ptr<Env> env_;
};
std::unique_ptr<Env> LiveSyncSecurityTest::env_;

TEST_F(LiveSyncSecurityTest, ThePipelineReplicatesLockedAndNoSecretValueLeaks) {
  const std::string ns = "dr-sec";
  const std::string app = "shop-sec";
  const std::string created = "created-" + RandomToken();
  const std::string updated = "updated-" + RandomToken();
  const std::string deleted = "deleted-" + RandomToken();
  const std::string refused = "refused-" + RandomToken();
  CreateSampleApplication(*env_, app);
  env_->source().Kubectl({"apply", "-f", "-"}, ts::Secret(app, "db-password", created).dump());
  env_->source().Kubectl({"apply", "-f", "-"}, ts::Secret(app, "db-old", deleted).dump());
  // A Secret the destination already has and does not let us manage: the write is
  // refused (a failure path that must not log the value either).
  env_->destination().Kubectl({"apply", "-f", "-"}, ts::Secret(app, "taken", "the destination's own").dump());
  env_->source().Kubectl({"apply", "-f", "-"}, ts::Secret(app, "taken", refused).dump());

  const fs::path workdir = env_->UserWorkdir(ns);
  env_->RunTutorial(workdir, "8.2-active-passive-livesync.yaml");
  env_->WaitForReady(ns, kLiveSync, "True", "Running");
  // Every process at debug level, as a user debugging the pipeline would run it.
  env_->UserCommand(workdir,
                    "kubectl patch livesynchronization active-passive --type=merge -p '{\"spec\":{\"config\":"
                    "{\"components\":{\"nats\":{\"logLevel\":\"debug\"},\"redis\":{\"logLevel\":\"debug\"},"
                    "\"eventsListener\":{\"logLevel\":\"debug\"},\"processor\":{\"logLevel\":\"debug\"},"
                    "\"synchronizer\":{\"logLevel\":\"debug\"},\"reconciler\":{\"logLevel\":\"debug\"}}}}}'");
  te::WaitFor([&] { return DestinationValue(*env_, app, "db-password") == created; }, kEventually,
              "the Secret replicated", 200ms);

  // Creates, updates and deletes flow with debug logging on.
  te::WaitFor([&] { return Slurp(PipelineDir(ns) / "logs" / "processor-0.log").find("\"level\":\"debug\"") !=
                           std::string::npos; },
              kEventually, "the processor logging at debug level", 200ms);
  env_->source().Kubectl({"apply", "-f", "-"}, ts::Secret(app, "db-password", updated).dump());
  env_->source().Kubectl({"delete", "secret", "-n", app, "db-old"});
  te::WaitFor([&] { return DestinationValue(*env_, app, "db-password") == updated; }, kEventually,
              "the update replicated", 200ms);
  te::WaitFor([&] { return !env_->destination_client().GetIfExists(kSecrets, app, "db-old"); }, kEventually,
              "the delete replicated", 200ms);
  EXPECT_EQ(DestinationValue(*env_, app, "taken"), "the destination's own");

  const json config = PipelineConfig(ns);
  ASSERT_TRUE(config["security"].is_object()) << config.dump();
  const std::string nats_url = config["natsUrl"].get<std::string>();
  const std::string redis_addr = config["redisAddr"].get<std::string>();
  const ks::PipelineNames names(ns, kLiveSync);

  // --- NATS: who may connect, subscribe and publish.
  {
    ks::NatsOptions anonymous = NatsAs(ns, ks::PipelineRole::kProcessor);
    anonymous.user.clear();
    anonymous.password.clear();
    EXPECT_THROW(ks::NatsConnection::Connect(nats_url, "anonymous", anonymous), ks::NatsError);
    ks::NatsOptions wrong = NatsAs(ns, ks::PipelineRole::kProcessor);
    wrong.password = "not-the-password";
    EXPECT_THROW(ks::NatsConnection::Connect(nats_url, "wrong-password", wrong), ks::NatsError);
    EXPECT_THROW(ks::NatsConnection::Connect(nats_url, "plain-text", NatsAs(ns, ks::PipelineRole::kProcessor, false)),
                 ks::NatsError);
  }
  {
    // The synchronizer's credentials cannot read the events; the listener's cannot
    // forge an apply message.
    auto synchronizer = ks::NatsConnection::Connect(nats_url, "intruder", NatsAs(ns, ks::PipelineRole::kSynchronizer));
    std::atomic<int> received{0};
    auto subscription = synchronizer->Subscribe(names.events_subject(),
                                                [&](std::string_view, std::string_view) { ++received; });
    auto listener = ks::NatsConnection::Connect(nats_url, "forger", NatsAs(ns, ks::PipelineRole::kEventsListener));
    ks::Envelope forged;
    forged.gvr = {"", "v1", "secrets"};
    forged.observed_at = std::chrono::system_clock::now();
    forged.object = ts::Secret(app, "forged", "forged-value");
    forged.object["data"] = {{"value", Base64("forged-value")}};
    forged.object.erase("stringData");
    listener->PublishCore(names.apply_subject(), ks::Encode(forged));
    listener->FlushCore(std::chrono::seconds{5});
    te::WaitFor([&] {
      const std::string log = NatsLog(ns);
      // nats-server 2.9: `Publish Violation - User "events-listener", Subject "ks.<id>.apply"`.
      return log.find("Publish Violation - User \"events-listener\", Subject \"" + names.apply_subject() + "\"") !=
                 std::string::npos &&
             log.find("Subscription Violation - User \"synchronizer\", Subject \"" + names.events_subject() + "\"") !=
                 std::string::npos;
    }, kEventually, "nats-server refusing the forged publish and the foreign subscription", 200ms);
    // A later real change arrives; the forged one never does.
    env_->source().Kubectl({"apply", "-f", "-"}, ts::Secret(app, "db-password", updated + "-2").dump());
    te::WaitFor([&] { return DestinationValue(*env_, app, "db-password") == updated + "-2"; }, kEventually,
                "a change after the forgery replicated", 200ms);
    EXPECT_FALSE(env_->destination_client().GetIfExists(kSecrets, app, "forged"));
    EXPECT_EQ(received.load(), 0);
  }

  // --- Redis: TLS only, ACL users only, each with only its commands.
  {
    const auto refusal = [&](const ks::RedisOptions& options) {
      ks::RedisState client(redis_addr, names.redis_prefix(), options);
      try {
        client.Get("rv:probe");
      } catch (const ks::RedisError& e) {
        return std::string(e.what());
      }
      return std::string("(answered)");
    };
    const ks::ClientSecurity exporter = LoadAs(ns, ks::PipelineRole::kMetricsExporter);
    ks::RedisOptions plain;
    plain.connect_timeout = std::chrono::seconds{2};
    plain.command_timeout = std::chrono::seconds{2};
    // Plain text is not spoken at all: the server closes the connection.
    EXPECT_THAT(refusal(plain), Not(HasSubstr("answered")));
    ks::RedisOptions anonymous = plain;  // TLS, verified, but no user
    anonymous.ca_pem = exporter.ca_pem;
    anonymous.tls_server_name = exporter.redis_server_name;
    EXPECT_THAT(refusal(anonymous), HasSubstr("NOAUTH"));
    ks::RedisOptions wrong = ks::WithSecurity(plain, exporter);
    wrong.password = "not-the-password";
    EXPECT_THAT(refusal(wrong), HasSubstr("refused"));
    // The client verifies the server: another name (NATS') is not accepted.
    ks::RedisOptions misnamed = ks::WithSecurity(plain, exporter);
    misnamed.tls_server_name = exporter.nats_server_name;
    EXPECT_THAT(refusal(misnamed), HasSubstr("certificate verify failed"));
    ks::RedisState read_only(redis_addr, names.redis_prefix(), ks::WithSecurity(plain, exporter));
    EXPECT_NO_THROW(read_only.Get("rv:probe"));
    EXPECT_THROW(read_only.Set("rv:probe", "1"), ks::RedisError);
  }

  // --- Nothing in clear: JetStream's files, every log, Event and status.
  std::vector<std::string> values;
  for (const std::string& v : {created, updated, updated + "-2", deleted, refused}) {
    values.push_back(v);
    values.push_back(Base64(v));
  }
  std::size_t store_files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(PipelineDir(ns) / "nats")) {
    if (!entry.is_regular_file()) continue;
    ++store_files;
    const std::string content = Slurp(entry.path());
    for (const std::string& v : values) {
      EXPECT_EQ(content.find(v), std::string::npos) << v << " in " << entry.path();
    }
  }
  EXPECT_GT(store_files, 0u) << "JetStream wrote no file";
  std::vector<std::pair<std::string, std::string>> texts;
  for (const auto& entry : fs::directory_iterator(PipelineDir(ns) / "logs")) {
    texts.emplace_back(entry.path().string(), Slurp(entry.path()));
  }
  EXPECT_NE(NatsLog(ns).find("[DBG]"), std::string::npos) << "nats-server is not at debug level";
  {
    // Redis holds no object data (docs/security.md, "TLS": the compensating controls):
    // every key and value of the pipeline, read as the processor.
    const ks::ClientSecurity processor = LoadAs(ns, ks::PipelineRole::kProcessor);
    const std::string host = redis_addr.substr(0, redis_addr.rfind(':'));
    const std::string port = redis_addr.substr(redis_addr.rfind(':') + 1);
    const std::string cli = "redis-cli --no-auth-warning -h " + host + " -p " + port + " --tls --cacert " +
                            (PipelineDir(ns) / "files" / "ca.crt").string() + " --sni " +
                            processor.redis_server_name + " --user processor --pass " + processor.redis_password;
    te::RunOptions options;
    options.check = false;
    const std::string dump =
        te::RunCommand({"sh", "-c", "for k in $(" + cli + " --scan --pattern 'ks:*'); do echo \"$k\"; " + cli +
                                        " HGETALL \"$k\"; " + cli + " GET \"$k\"; done"},
                       options)
            .out;
    EXPECT_NE(dump.find(names.redis_prefix() + ":rv:"), std::string::npos) << dump;  // the dump is not empty
    texts.emplace_back("Redis", dump);
  }
  texts.emplace_back("livesynchronization-controller log", env_->controller().Log());
  texts.emplace_back("LiveSynchronization", env_->LiveSync(ns, kLiveSync)->dump());
  for (const json& event : env_->EventsAbout(ns, kLiveSync)) texts.emplace_back("Event", event.dump());
  texts.emplace_back("Events of " + app, env_->destination().Kubectl({"get", "events", "-n", app, "-o", "json"}));
  for (const auto& [where, text] : texts) {
    ASSERT_FALSE(text.empty()) << where;
    for (const std::string& v : values) EXPECT_EQ(text.find(v), std::string::npos) << v << " in " << where;
  }
  // The credentials themselves stay out of the logs too.
  const std::string password = Slurp(PipelineDir(ns) / "files" / "nats-processor.password");
  for (const auto& [where, text] : texts) EXPECT_EQ(text.find(password), std::string::npos) << where;
  // Every component stays within its NATS permissions (nats-server logs each refusal;
  // the "intruder" and "forger" clients above are refused on purpose), and the
  // synchronizer's watch of the tombstone bucket runs with them.
  for (const auto& [where, text] : texts) {
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
      const bool violation = line.find("Violation") != std::string::npos && line.find(":intruder\"") == std::string::npos &&
                             line.find(":forger\"") == std::string::npos;
      EXPECT_FALSE(violation) << where << ": " << line;
      EXPECT_EQ(line.find("key-value watch ended"), std::string::npos) << where << ": " << line;
    }
  }
  EXPECT_NE(Slurp(PipelineDir(ns) / "logs" / "synchronizer-0.log").find("key-value watch loaded"), std::string::npos);

  env_->DeleteLiveSync(ns, kLiveSync);
}

// The manual's component table: only the synchronizer writes, and only to the
// destination. The tutorial runs with a source kubeconfig that may only read and a
// destination kubeconfig that may only write the replicated kinds: everything replicates,
// and the source apiserver refused nothing (nothing tried to write there).
TEST_F(LiveSyncSecurityTest, TheTutorialReplicatesWithAReadOnlySourceAndANarrowDestination) {
  const std::string ns = "dr-least";
  const std::string app = "shop-least";
  CreateSampleApplication(*env_, app);
  const json reader = json::parse(R"({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
    "metadata": {"name": "kubesync-reader"},
    "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "watch"]}]})");
  const json writer = json::parse(R"({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
    "metadata": {"name": "kubesync-writer"},
    "rules": [
      {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
      {"apiGroups": ["", "apps", "networking.k8s.io"],
       "resources": ["services", "secrets", "serviceaccounts", "deployments", "ingresses"],
       "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
      {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"],
       "verbs": ["get", "list", "watch", "create", "update", "patch", "delete", "bind", "escalate"]}]})");
  const auto bind = [](te::KubeCluster& cluster, const json& role, const std::string& user) {
    cluster.Kubectl({"apply", "-f", "-"}, role.dump());
    cluster.Kubectl({"create", "clusterrolebinding", user, "--clusterrole=" + user, "--user=" + user});
  };
  bind(env_->source(), reader, "kubesync-reader");
  bind(env_->destination(), writer, "kubesync-writer");

  // The tutorial's steps with the narrow kubeconfigs in the cluster Secrets.
  const fs::path workdir = env_->UserWorkdir(ns);
  fs::copy_file(env_->source().KubeconfigFor("kubesync-reader"), workdir / "cluster-1-kubeconfig.yaml",
                fs::copy_options::overwrite_existing);
  fs::copy_file(env_->destination().KubeconfigFor("kubesync-writer"), workdir / "cluster-2-kubeconfig.yaml",
                fs::copy_options::overwrite_existing);
  env_->RunTutorial(workdir, "8.2-active-passive-livesync.yaml");
  env_->WaitForReady(ns, kLiveSync, "True", "Running");
  const json spec_config = ts::YamlToJson(ReadSample("8.2-active-passive-livesync.yaml"))["spec"]["config"];
  ExpectConverged(env_->source_client(), env_->destination_client(), ns, kLiveSync, spec_config, {app});
  env_->source().Kubectl({"apply", "-f", "-"}, ts::Secret(app, "web-config", "v2").dump());
  env_->source().Kubectl({"-n", app, "delete", "ingress", "web"});
  ExpectConverged(env_->source_client(), env_->destination_client(), ns, kLiveSync, spec_config, {app});

  // No component logged a refusal (a 403 would mean it tried more than it needs).
  for (const auto& entry : fs::directory_iterator(PipelineDir(ns) / "logs")) {
    const std::string log = Slurp(entry.path());
    EXPECT_EQ(log.find("forbidden"), std::string::npos) << entry.path();
    EXPECT_EQ(log.find("Forbidden"), std::string::npos) << entry.path();
  }
  env_->DeleteLiveSync(ns, kLiveSync);
}

// Scale-out, locked (docs/security.md "TLS"): components.nats.replicas 3 makes the local
// runner start three nats-servers of one JetStream cluster whose routes use mutual TLS
// with the pipeline's certificate; the stream has 3 replicas and a leader; kill -9 of a
// member (the runner restarts it) while the source changes loses nothing.
TEST_F(LiveSyncSecurityTest, AThreeServerNatsClusterRoutesOverMutualTlsAndSurvivesAKilledMember) {
  const std::string ns = "dr-nats-cluster";
  const std::string app = "shop-nats-cluster";
  CreateSampleApplication(*env_, app);
  const fs::path workdir = env_->UserWorkdir(ns);
  env_->RunTutorial(workdir, "8.2-active-passive-livesync.yaml");
  env_->WaitForReady(ns, kLiveSync, "True", "Running");
  env_->UserCommand(workdir,
                    "kubectl patch livesynchronization active-passive --type=merge -p "
                    "'{\"spec\":{\"config\":{\"components\":{\"nats\":{\"replicas\":3}}}}}'");
  env_->WaitForReady(ns, kLiveSync, "True", "Running");
  te::WaitFor(
      [&] {
        for (const json& c : env_->LiveSync(ns, kLiveSync)->value("status", json::object())
                                 .value("components", json::array())) {
          if (c.value("name", "") == "nats") return c.value("readyReplicas", 0) == 3;
        }
        return false;
      },
      kEventually, "three ready nats-servers in status.components");
  const json config = PipelineConfig(ns);
  EXPECT_EQ(config["natsReplicas"], 3);
  const std::string nats_url = config["natsUrl"].get<std::string>();
  EXPECT_EQ(std::count(nats_url.begin(), nats_url.end(), ','), 2) << nats_url;
  const std::string member_config = Slurp(PipelineDir(ns) / "server" / "nats-1.conf");
  EXPECT_THAT(member_config, HasSubstr("verify: true"));
  EXPECT_THAT(member_config, HasSubstr("server_name: \"n1\""));

  // The stream at 3 replicas, seen through the events listener's own credentials.
  std::unique_ptr<ks::NatsConnection> nats =
      ks::NatsConnection::Connect(nats_url, "security-e2e", NatsAs(ns, ks::PipelineRole::kEventsListener));
  const std::string stream = ks::PipelineNames(ns, kLiveSync).stream();
  ks::StreamState state;
  te::WaitFor(
      [&] {
        try {
          state = nats->GetStreamState(stream);
        } catch (const ks::NatsError&) {
          return false;
        }
        return state.current_followers == 2;
      },
      kEventually, "a leader and two current followers for " + stream);
  EXPECT_EQ(state.replicas, 3);
  nats.reset();
  const json spec_config = ts::YamlToJson(ReadSample("8.2-active-passive-livesync.yaml"))["spec"]["config"];
  ExpectConverged(env_->source_client(), env_->destination_client(), ns, kLiveSync, spec_config, {app});

  // kill -9 of the stream's leader while the source changes.
  const std::string victim = "nats-" + state.leader.substr(1) + ".pid";
  const pid_t pid = static_cast<pid_t>(std::stol(Slurp(PipelineDir(ns) / "run" / victim)));
  for (int i = 0; i < 10; ++i) {
    env_->source().Kubectl({"apply", "-f", "-"}, ts::Secret(app, "during-" + std::to_string(i), "v1").dump());
    if (i == 3) {
      ASSERT_EQ(::kill(pid, SIGKILL), 0) << victim;
    }
  }
  env_->source().Kubectl({"-n", app, "delete", "secret", "during-0"});
  ExpectConverged(env_->source_client(), env_->destination_client(), ns, kLiveSync, spec_config, {app});
  // The runner started the member again and it rejoined.
  te::WaitFor(
      [&] {
        const std::string now = Slurp(PipelineDir(ns) / "run" / victim);
        return !now.empty() && std::stol(now) != pid;
      },
      kEventually, "a new process for " + victim);
  env_->DeleteLiveSync(ns, kLiveSync);
}

}  // namespace

// Tutorial 8.3 (manual), one-shot part: the two Databases of the tutorial pointed at two
// real ZooKeeper servers (tests/testenv), the Synchronization created verbatim from the
// tutorial's zookeeper-sync-once.yaml with `kubectl create -f` (generateName), run by the
// build's database-controller and synchronization-controller against a real
// kube-apiserver. Also: a second run copies nothing, a Database that is not Ready keeps a
// Synchronization Pending, a failed copy is Failed with its reason and is never run again.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "livesync_e2e.h"
#include "ro/plugins/zookeeper_client.h"
#include "ro/testenv/testenv.h"
#include "ro/testsupport/controller_process.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ro::plugins::ZooKeeperClient;
using livesync_e2e::DatabaseSample;
using ro::testenv::KubeCluster;
using ro::testsupport::ControllerProcess;
using ::testing::HasSubstr;

constexpr const char* kNamespace = "zookeeper-sync";
constexpr std::chrono::seconds kTimeout{90};

std::unique_ptr<ControllerProcess> StartController(const std::string& binary, const KubeCluster& cluster,
                                                   const fs::path& dir, std::vector<std::string> args) {
  ro::testsupport::ControllerProcessOptions options;
  options.binary = binary;
  options.kubeconfig = cluster.kubeconfig_path();
  options.dir = dir;
  options.license_file = dir / "license";
  options.args = std::move(args);
  return std::make_unique<ControllerProcess>(std::move(options));
}

std::unique_ptr<ZooKeeperClient> Connect(const ro::testenv::ZooKeeperServer& server) {
  ro::plugins::ZooKeeperOptions options;
  options.servers = {server.connect_string()};
  options.connect_timeout = std::chrono::seconds(20);
  return std::make_unique<ZooKeeperClient>(options);
}

class ZooKeeperTutorialTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::make_unique<ro::testenv::TempDir>("zookeeper-tutorial");
    ro::testenv::KubeClusterOptions options;
    options.name = "operator";
    cluster_ = std::make_unique<KubeCluster>(options);
    source_server_ = std::make_unique<ro::testenv::ZooKeeperServer>();
    destination_server_ = std::make_unique<ro::testenv::ZooKeeperServer>();
    cluster_->Kubectl({"apply", "-f", (ro::testenv::SourceDir() / "deploy/crds/all.yaml").string()});
    cluster_->Kubectl({"wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"});
    cluster_->Kubectl({"create", "namespace", kNamespace});
    ro::testenv::WriteFile(dir_->path() / "license",
                           "licensee: E2E Tests\nexpiresAt: 2099-01-01T00:00:00Z\n");
    // The tutorial's two Databases.
    cluster_->Kubectl({"-n", kNamespace, "create", "-f", "-"},
                      DatabaseSample("8.3-database-zookeeper-1.yaml", source_server_->connect_string()));
    cluster_->Kubectl({"-n", kNamespace, "create", "-f", "-"},
                      DatabaseSample("8.3-database-zookeeper-2.yaml",
                                     destination_server_->connect_string()));
    database_controller_ = StartController("database-controller", *cluster_, dir_->path(),
                                           {"--recheck-interval=2s"});
    sync_controller_ = StartController("synchronization-controller", *cluster_, dir_->path(),
                                       {"--pending-recheck=1s"});
    plan_controller_ = StartController("synchronizationplan-controller", *cluster_, dir_->path(), {});
  }

  static void TearDownTestSuite() {
    plan_controller_.reset();
    sync_controller_.reset();
    database_controller_.reset();
    destination_server_.reset();
    source_server_.reset();
    cluster_.reset();
    dir_.reset();
  }

  static json Get(const std::string& resource, const std::string& name) {
    return json::parse(cluster_->Kubectl({"-n", kNamespace, "get", resource, name, "-o", "json"}));
  }

  static std::string ReadyOf(const json& object) {
    for (const json& c : object.value("status", json::object()).value("conditions", json::array())) {
      if (c.value("type", "") == "Ready") return c.value("status", "") + "/" + c.value("reason", "");
    }
    return "";
  }

  // `kubectl create -f` of a file; returns the generated name.
  static std::string Create(const std::string& yaml) {
    const std::string out = cluster_->Kubectl({"-n", kNamespace, "create", "-f", "-", "-o", "name"}, yaml);
    return out.substr(out.find('/') + 1, out.find_last_not_of("\n") - out.find('/'));
  }

  static json WaitForPhase(const std::string& name, const std::string& phase) {
    json sync;
    ro::testenv::WaitFor(
        [&] {
          sync = Get("synchronization", name);
          return sync.value("status", json::object()).value("phase", "") == phase;
        },
        kTimeout, "Synchronization " + name + " phase " + phase);
    return sync;
  }

  static inline std::unique_ptr<ro::testenv::TempDir> dir_;
  static inline std::unique_ptr<KubeCluster> cluster_;
  static inline std::unique_ptr<ro::testenv::ZooKeeperServer> source_server_;
  static inline std::unique_ptr<ro::testenv::ZooKeeperServer> destination_server_;
  static inline std::unique_ptr<ControllerProcess> database_controller_;
  static inline std::unique_ptr<ControllerProcess> sync_controller_;
  static inline std::unique_ptr<ControllerProcess> plan_controller_;
};

TEST_F(ZooKeeperTutorialTest, TheTutorialsOneShotSynchronizationCopiesTheTree) {
  auto source = Connect(*source_server_);
  auto destination = Connect(*destination_server_);
  source->Create("/app/config/db", "host=db-1", {.create_parents = true});
  source->Create("/app/config/empty", "");
  source->Create("/app/binary", std::string("\0\1\2\377", 4));
  ro::plugins::ZooKeeperCreateOptions sequential;
  sequential.sequential = true;
  const std::string job = source->Create("/app/job-", "queued", sequential);

  const std::string once =
      ro::testenv::ReadFile(ro::testenv::SourceDir() / "tests/samples/8.3-synchronization-once.yaml");

  const std::string name = Create(once);
  EXPECT_THAT(name, ::testing::StartsWith("synchronize-zookeeper-"));
  const json done = WaitForPhase(name, "Succeeded");
  const json& status = done["status"];
  EXPECT_EQ(ReadyOf(done), "True/Succeeded");
  EXPECT_EQ(status.value("nodesCreated", 0), 6);  // /app, /app/config, db, empty, binary, job
  EXPECT_EQ(status.value("nodesSkipped", 0), 1);  // /zookeeper, the server's own
  EXPECT_EQ(status.value("nodesDeleted", 0), 0);
  EXPECT_TRUE(status.contains("startTime") && status.contains("completionTime"));
  EXPECT_EQ(destination->Get("/app/config/db")->data, "host=db-1");
  EXPECT_EQ(destination->Get("/app/binary")->data, std::string("\0\1\2\377", 4));
  EXPECT_EQ(destination->Get(job)->data, "queued");
  const std::string events = cluster_->Kubectl(
      {"-n", kNamespace, "get", "events", "--field-selector", "involvedObject.name=" + name});
  EXPECT_THAT(events, HasSubstr("Succeeded"));
  const std::string metrics = sync_controller_->Get("/metrics").body;
  EXPECT_THAT(metrics, HasSubstr("ro_synchronization_znodes_total{result=\"created\"}"));
  EXPECT_THAT(metrics, HasSubstr("ro_synchronization_runs_total{result=\"Succeeded\"}"));
  const std::string table = cluster_->Kubectl({"-n", kNamespace, "get", "synchronizations"});
  EXPECT_THAT(table, HasSubstr("PHASE"));
  EXPECT_THAT(table, HasSubstr("CREATED"));

  // Again: nothing to write; a change in the source propagates.
  source->Set("/app/config/db", "host=db-2");
  source->Delete("/app/config/empty");
  const json again = WaitForPhase(Create(once), "Succeeded");
  EXPECT_EQ(again["status"].value("nodesCreated", -1), 0);
  EXPECT_EQ(again["status"].value("nodesUpdated", -1), 1);
  EXPECT_EQ(again["status"].value("nodesDeleted", -1), 1);
  EXPECT_EQ(destination->Get("/app/config/db")->data, "host=db-2");
  EXPECT_FALSE(destination->Exists("/app/config/empty"));
}

TEST_F(ZooKeeperTutorialTest, ASynchronizationWaitsForADatabaseThatIsNotReady) {
  const ro::testenv::PortLease unused;  // nothing listens
  cluster_->Kubectl({"-n", kNamespace, "apply", "-f", "-"},
                    json{{"apiVersion", "assets.astronetes.io/v1alpha1"},
                         {"kind", "Database"},
                         {"metadata", {{"name", "down"}}},
                         {"spec", {{"zookeeper", {{"client", {{"servers", {"127.0.0.1:" + std::to_string(unused.port())}}}}}}}}}
                        .dump());
  const std::string name = Create(json{{"apiVersion", "automation.astronetes.io/v1alpha1"},
                                       {"kind", "Synchronization"},
                                       {"metadata", {{"generateName", "waits-"}}},
                                       {"spec",
                                        {{"plugin", "zookeeper-to-zookeeper-nodes"},
                                         {"config",
                                          {{"sourceName", "down"},
                                           {"destinationName", "zookeeper-2"},
                                           {"rootPath", "/"}}}}}}
                                      .dump());
  ro::testenv::WaitFor([&] { return ReadyOf(Get("synchronization", name)) == "False/DatabaseNotReady"; },
                       kTimeout, "Synchronization " + name + " Pending DatabaseNotReady");
  EXPECT_EQ(Get("synchronization", name)["status"].value("phase", ""), "Pending");
}

TEST_F(ZooKeeperTutorialTest, AFailedCopyIsFailedWithItsReasonAndNeverRunAgain) {
  const std::string name = Create(json{{"apiVersion", "automation.astronetes.io/v1alpha1"},
                                       {"kind", "Synchronization"},
                                       {"metadata", {{"generateName", "fails-"}}},
                                       {"spec",
                                        {{"plugin", "zookeeper-to-zookeeper-nodes"},
                                         {"config",
                                          {{"sourceName", "zookeeper-1"},
                                           {"destinationName", "zookeeper-2"},
                                           {"rootPath", "/not-in-the-source"}}}}}}
                                      .dump());
  const json failed = WaitForPhase(name, "Failed");
  EXPECT_EQ(ReadyOf(failed), "False/RootPathMissing");
  EXPECT_THAT(failed["status"].value("message", ""), HasSubstr("/not-in-the-source"));
  // The path appearing later changes nothing: a restarted controller reconciles every
  // Synchronization again, and a finished one stays finished.
  Connect(*source_server_)->Create("/not-in-the-source", "");
  sync_controller_.reset();
  sync_controller_ = StartController("synchronization-controller", *cluster_, dir_->path(),
                                     {"--pending-recheck=1s"});
  const json list = json::parse(cluster_->Kubectl({"-n", kNamespace, "get", "synchronizations", "-o", "json"}));
  const double all = static_cast<double>(list["items"].size());
  ro::testenv::WaitFor([&] { return sync_controller_->ReconcileCount("synchronization") >= all; },
                       kTimeout, "the restarted controller to reconcile every Synchronization",
                       std::chrono::milliseconds{200});
  EXPECT_EQ(Get("synchronization", name)["status"].value("phase", ""), "Failed");
  EXPECT_FALSE(Connect(*destination_server_)->Exists("/not-in-the-source"));
}

TEST_F(ZooKeeperTutorialTest, DigestCredentialsFromTheSecretReadAndWriteProtectedZnodes) {
  const ro::plugins::ZooKeeperDigest user{"sync", "s3cret"};
  const ro::plugins::ZooKeeperAcl only_sync{ro::plugins::zk_perm::kAll, "digest",
                                            ro::plugins::DigestAclId(user)};
  {
    ro::plugins::ZooKeeperOptions options;
    options.servers = {source_server_->connect_string()};
    options.digest = user;
    ZooKeeperClient source(options);
    source.Create("/guarded", "", {}, {only_sync});
    source.Create("/guarded/key", "secret-value", {}, {only_sync});
  }
  cluster_->Kubectl({"-n", kNamespace, "create", "secret", "generic", "zk-auth",
                     "--from-literal=username=sync", "--from-literal=password=s3cret"});
  for (const auto& [name, server] :
       {std::pair{std::string("zk-1-auth"), source_server_.get()},
        std::pair{std::string("zk-2-auth"), destination_server_.get()}}) {
    cluster_->Kubectl({"-n", kNamespace, "apply", "-f", "-"},
                      json{{"apiVersion", "assets.astronetes.io/v1alpha1"},
                           {"kind", "Database"},
                           {"metadata", {{"name", name}}},
                           {"spec",
                            {{"zookeeper",
                              {{"client", {{"servers", {server->connect_string()}}}},
                               {"admin",
                                {{"protocol", "tcp"},
                                 {"host", "127.0.0.1"},
                                 {"port", std::to_string(server->port())},
                                 {"secretName", "zk-auth"}}}}}}}}
                          .dump());
  }
  json database;
  ro::testenv::WaitFor(
      [&] {
        database = Get("database", "zk-1-auth");
        return ReadyOf(database) == "True/Connected";
      },
      kTimeout, "Database zk-1-auth Ready");
  EXPECT_THAT(database["status"].value("serverVersion", ""), ::testing::StartsWith("3."));

  const auto sync = [](const std::string& source, const std::string& destination) {
    return json{{"apiVersion", "automation.astronetes.io/v1alpha1"},
                {"kind", "Synchronization"},
                {"metadata", {{"generateName", "guarded-"}}},
                {"spec",
                 {{"plugin", "zookeeper-to-zookeeper-nodes"},
                  {"config",
                   {{"sourceName", source},
                    {"destinationName", destination},
                    {"rootPath", "/guarded"},
                    {"createRootPath", true}}}}}}
        .dump();
  };
  const json denied = WaitForPhase(Create(sync("zookeeper-1", "zookeeper-2")), "Failed");
  EXPECT_EQ(ReadyOf(denied), "False/NotAuthorized");
  EXPECT_THAT(denied["status"].value("message", ""), HasSubstr("/guarded"));

  const json copied = WaitForPhase(Create(sync("zk-1-auth", "zk-2-auth")), "Succeeded");
  EXPECT_EQ(copied["status"].value("nodesCreated", 0), 2);
  ro::plugins::ZooKeeperOptions options;
  options.servers = {destination_server_->connect_string()};
  options.digest = user;
  ZooKeeperClient destination(options);
  EXPECT_EQ(destination.Get("/guarded/key")->data, "secret-value");
  EXPECT_EQ(destination.GetAcl("/guarded/key"), std::vector<ro::plugins::ZooKeeperAcl>{only_sync});
}

TEST_F(ZooKeeperTutorialTest, TheTutorialsHourlyPlanIsScheduled) {
  cluster_->Kubectl({"-n", kNamespace, "apply", "-f",
                     (ro::testenv::SourceDir() / "tests/samples/8.3-synchronizationplan.yaml").string()});
  json plan;
  ro::testenv::WaitFor(
      [&] {
        plan = Get("synchronizationplan", "synchronize-zookeeper");
        return ReadyOf(plan) == "True/Scheduled";
      },
      kTimeout, "the tutorial's plan Ready True/Scheduled");
  const std::string next = plan["status"].value("nextScheduleTime", "");
  EXPECT_THAT(next, ::testing::EndsWith(":00:00Z"));  // on the hour
  EXPECT_THAT(cluster_->Kubectl({"-n", kNamespace, "get", "syncplan"}), HasSubstr("0 * * * *"));
}

TEST_F(ZooKeeperTutorialTest, APlanOnAOneMinuteScheduleRunsAndRecordsIt) {
  Connect(*source_server_)->Create("/plan", "copied every minute");
  cluster_->Kubectl({"-n", kNamespace, "apply", "-f", "-"},
                    json{{"apiVersion", "automation.astronetes.io/v1alpha1"},
                         {"kind", "SynchronizationPlan"},
                         {"metadata", {{"name", "every-minute"}}},
                         {"spec",
                          {{"schedule", "* * * * *"},
                           {"concurrencyPolicy", "Forbid"},
                           {"template",
                            {{"spec",
                              {{"plugin", "zookeeper-to-zookeeper-nodes"},
                               {"config",
                                {{"sourceName", "zookeeper-1"},
                                 {"destinationName", "zookeeper-2"},
                                 {"rootPath", "/plan"},
                                 {"createRootPath", true}}}}}}}}}}
                        .dump());
  json plan;
  ro::testenv::WaitFor(
      [&] {
        plan = Get("synchronizationplan", "every-minute");
        return plan.value("status", json::object()).contains("lastSuccessfulTime");
      },
      std::chrono::seconds{150}, "a run of the plan to succeed", std::chrono::milliseconds{500});
  const std::string last = plan["status"].value("lastScheduleTime", "");
  EXPECT_THAT(last, ::testing::EndsWith(":00Z"));
  const json runs = json::parse(cluster_->Kubectl({"-n", kNamespace, "get", "synchronizations", "-o", "json"}));
  int owned = 0;
  for (const json& run : runs["items"]) {
    for (const json& ref : run["metadata"].value("ownerReferences", json::array())) {
      if (ref.value("name", "") == "every-minute") ++owned;
    }
  }
  EXPECT_GE(owned, 1);
  EXPECT_EQ(Connect(*destination_server_)->Get("/plan")->data, "copied every minute");
  cluster_->Kubectl({"-n", kNamespace, "delete", "synchronizationplan", "every-minute"});
}

}  // namespace

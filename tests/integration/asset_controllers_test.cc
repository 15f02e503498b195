// The three asset controllers as their real binaries (kubernetescluster-controller,
// bucket-controller, database-controller) against real servers: a kube-apiserver with
// the CRDs of deploy/crds/, a SECOND apiserver as the registered cluster, s3rver and
// ZooKeeper (tests/testenv). Every documented Ready reason (docs/assets-*.md) is
// produced by a real bad input, the controllers survive all of them, and each asset
// recovers when its input is fixed.

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ro/testenv/testenv.h"
#include "ro/testsupport/controller_process.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ro::testenv::KubeCluster;
using ro::testenv::PortLease;
using ro::testenv::Process;

// Generous for 2 busy cores: a reconcile is a few round trips to local servers.
constexpr std::chrono::seconds kConditionTimeout{90};
constexpr const char* kNamespace = "assets-test";

using ro::testsupport::ControllerProcess;
using ro::testsupport::HttpGet;

// One controller binary of the build, run with its probes on reserved loopback ports.
std::unique_ptr<ControllerProcess> StartController(const std::string& binary, const fs::path& kubeconfig,
                                                   const fs::path& dir, const fs::path& license,
                                                   std::vector<std::string> extra_args) {
  ro::testsupport::ControllerProcessOptions options;
  options.binary = binary;
  options.kubeconfig = kubeconfig;
  options.dir = dir;
  options.license_file = license;
  options.args = std::move(extra_args);
  return std::make_unique<ControllerProcess>(std::move(options));
}

class AssetControllersTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::make_unique<ro::testenv::TempDir>("asset-controllers");
    ro::testenv::KubeClusterOptions main_options;
    main_options.name = "assets";
    cluster_ = std::make_unique<KubeCluster>(main_options);
    ro::testenv::KubeClusterOptions remote_options;
    remote_options.name = "remote";
    remote_options.users = {{"nobody", {}}};  // authenticated, no RBAC grants: Forbidden
    remote_ = std::make_unique<KubeCluster>(remote_options);
    s3_ = std::make_unique<ro::testenv::S3Server>();
    s3_->CreateBucket("dr-bucket");
    zookeeper_ = std::make_unique<ro::testenv::ZooKeeperServer>();
    closed_port_ = std::make_unique<PortLease>();  // reserved, never bound: connections are refused

    cluster_->Kubectl({"apply", "-f", (ro::testenv::SourceDir() / "deploy/crds/all.yaml").string()});
    cluster_->Kubectl({"wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"});
    cluster_->Kubectl({"create", "namespace", kNamespace});

    const fs::path license = dir_->path() / "license";
    ro::testenv::WriteFile(license, "licensee: Integration Tests\nexpiresAt: 2099-01-01T00:00:00Z\n");
    const std::vector<std::string> fast = {"--recheck-interval=2s"};
    kubernetescluster_ = StartController("kubernetescluster-controller", cluster_->kubeconfig_path(),
                                        dir_->path(), license, fast);
    bucket_ = StartController("bucket-controller", cluster_->kubeconfig_path(), dir_->path(),
                             license, fast);
    database_ = StartController("database-controller", cluster_->kubeconfig_path(), dir_->path(),
                               license, fast);
  }

  static void TearDownTestSuite() {
    // Controllers first (they talk to the servers), the temp dir last.
    database_.reset();
    bucket_.reset();
    kubernetescluster_.reset();
    closed_port_.reset();
    zookeeper_.reset();
    s3_.reset();
    remote_.reset();
    cluster_.reset();
    dir_.reset();
  }

  static void Apply(const json& object) { cluster_->Kubectl({"apply", "-f", "-"}, object.dump()); }

  static json Secret(const std::string& name, const json& string_data) {
    return {{"apiVersion", "v1"},
            {"kind", "Secret"},
            {"metadata", {{"name", name}, {"namespace", kNamespace}}},
            {"stringData", string_data}};
  }

  static json KubernetesCluster(const std::string& name, const std::string& secret) {
    return {{"apiVersion", "assets.astronetes.io/v1alpha1"},
            {"kind", "KubernetesCluster"},
            {"metadata", {{"name", name}, {"namespace", kNamespace}}},
            {"spec", {{"secretName", secret}}}};
  }

  static json GenericBucket(const std::string& name, const std::string& bucket,
                            const std::string& secret) {
    return {{"apiVersion", "assets.astronetes.io/v1alpha1"},
            {"kind", "Bucket"},
            {"metadata", {{"name", name}, {"namespace", kNamespace}}},
            {"spec",
             {{"generic",
               {{"name", bucket},
                {"endpoint", s3_->endpoint()},
                {"useSSL", false},
                {"secretName", secret}}}}}};
  }

  static json ZooKeeperDatabase(const std::string& name, const std::string& server) {
    return {{"apiVersion", "assets.astronetes.io/v1alpha1"},
            {"kind", "Database"},
            {"metadata", {{"name", name}, {"namespace", kNamespace}}},
            {"spec", {{"zookeeper", {{"client", {{"servers", json::array({server})}}}}}}}};
  }

  // The object as the apiserver has it; null when it cannot be read.
  static json Get(const std::string& resource, const std::string& name) {
    try {
      return json::parse(cluster_->Kubectl({"-n", kNamespace, "get", resource, name, "-o", "json"}));
    } catch (const ro::testenv::TestEnvError&) {
      return nullptr;
    }
  }

  static json ReadyCondition(const json& object) {
    if (!object.is_object() || !object.contains("status")) return nullptr;
    for (const json& c : object["status"].value("conditions", json::array())) {
      if (c.value("type", "") == "Ready") return c;
    }
    return nullptr;
  }

  // Waits until the object's Ready condition has `status` and `reason`; returns the object.
  static json WaitForReady(const std::string& resource, const std::string& name,
                           const std::string& status, const std::string& reason) {
    json object;
    try {
      ro::testenv::WaitFor(
          [&] {
            object = Get(resource, name);
            const json ready = ReadyCondition(object);
            return ready.is_object() && ready.value("status", "") == status &&
                   ready.value("reason", "") == reason;
          },
          kConditionTimeout, resource + "/" + name + " Ready=" + status + " " + reason);
    } catch (const ro::testenv::WaitTimeout& timeout) {
      throw ro::testenv::WaitTimeout(std::string(timeout.what()) +
                                     " (last seen: " + ReadyCondition(object).dump() + ")");
    }
    return object;
  }

  static std::string Message(const json& object) {
    return ReadyCondition(object).value("message", "");
  }

  // Events about `name` in the test namespace.
  static std::vector<json> EventsAbout(const std::string& name) {
    const json list = json::parse(cluster_->Kubectl(
        {"-n", kNamespace, "get", "events", "--field-selector", "involvedObject.name=" + name,
         "-o", "json"}));
    return list["items"].get<std::vector<json>>();
  }

  static bool HasEvent(const std::string& name, const std::string& type,
                       const std::string& reason, const std::string& component) {
    for (const json& event : EventsAbout(name)) {
      if (event.value("type", "") == type && event.value("reason", "") == reason &&
          event["source"].value("component", "") == component) {
        return true;
      }
    }
    return false;
  }

  static void ExpectAlive(ControllerProcess& controller) {
    EXPECT_TRUE(controller.process().Running()) << controller.process().LogTail();
    EXPECT_EQ(HttpGet(controller.health_port(), "/healthz").status, 200);
  }

  // The remote cluster's admin kubeconfig with its token or server replaced.
  static std::string RemoteKubeconfig() { return ro::testenv::ReadFile(remote_->kubeconfig_path()); }
  static std::string RemoteKubeconfigWithToken(const std::string& token) {
    const fs::path path = dir_->path() / ("kubeconfig-" + token);
    remote_->WriteKubeconfig(path, token);
    return ro::testenv::ReadFile(path);
  }
  static std::string RemoteKubeconfigAt(const std::string& server) {
    std::string text = RemoteKubeconfig();
    const std::string url = remote_->server_url();
    text.replace(text.find(url), url.size(), server);
    return text;
  }

  // Shared by every test of the suite (started once: a cluster start costs seconds).
  static inline std::unique_ptr<ro::testenv::TempDir> dir_;
  static inline std::unique_ptr<KubeCluster> cluster_;
  static inline std::unique_ptr<KubeCluster> remote_;
  static inline std::unique_ptr<ro::testenv::S3Server> s3_;
  static inline std::unique_ptr<ro::testenv::ZooKeeperServer> zookeeper_;
  static inline std::unique_ptr<PortLease> closed_port_;
  static inline std::unique_ptr<ControllerProcess> kubernetescluster_;
  static inline std::unique_ptr<ControllerProcess> bucket_;
  static inline std::unique_ptr<ControllerProcess> database_;
};

TEST_F(AssetControllersTest, AKubernetesClusterWithAWorkingKubeconfigIsConnected) {
  Apply(Secret("remote-admin", {{"kubeconfig.yaml", RemoteKubeconfig()}}));
  Apply(KubernetesCluster("remote", "remote-admin"));
  const json object = WaitForReady("kubernetescluster", "remote", "True", "Connected");
  EXPECT_EQ(object["status"]["server"], remote_->server_url());
  EXPECT_EQ(object["status"]["serverVersion"].get<std::string>().rfind("v1.20", 0), 0u)
      << object["status"].dump();
  EXPECT_EQ(object["status"]["observedGeneration"], object["metadata"]["generation"]);
  EXPECT_EQ(ReadyCondition(object)["observedGeneration"], object["metadata"]["generation"]);
}

TEST_F(AssetControllersTest, AKubernetesClusterReportsAMissingSecretAndRecoversWhenItIsCreated) {
  Apply(KubernetesCluster("late-secret", "late-kubeconfig"));
  const json missing = WaitForReady("kubernetescluster", "late-secret", "False", "SecretNotFound");
  EXPECT_NE(Message(missing).find("late-kubeconfig"), std::string::npos) << Message(missing);
  const std::string first_transition = ReadyCondition(missing)["lastTransitionTime"];

  Apply(Secret("late-kubeconfig", {{"kubeconfig.yaml", RemoteKubeconfig()}}));
  const json fixed = WaitForReady("kubernetescluster", "late-secret", "True", "Connected");
  EXPECT_GE(ReadyCondition(fixed)["lastTransitionTime"].get<std::string>(), first_transition);

  ro::testenv::WaitFor(
      [] {
        return HasEvent("late-secret", "Warning", "SecretNotFound", "kubernetescluster-controller") &&
               HasEvent("late-secret", "Normal", "Connected", "kubernetescluster-controller");
      },
      kConditionTimeout, "Events SecretNotFound (Warning) and Connected (Normal)");
  ExpectAlive(*kubernetescluster_);
}

TEST_F(AssetControllersTest, AKubernetesClusterReportsAMissingKeyAndRecoversWhenTheSecretIsUpdated) {
  Apply(Secret("wrong-key", {{"config", RemoteKubeconfig()}}));
  Apply(KubernetesCluster("wrong-key", "wrong-key"));
  const json missing = WaitForReady("kubernetescluster", "wrong-key", "False", "SecretKeyMissing");
  EXPECT_NE(Message(missing).find("kubeconfig.yaml"), std::string::npos);

  Apply(Secret("wrong-key", {{"config", "x"}, {"kubeconfig.yaml", RemoteKubeconfig()}}));
  WaitForReady("kubernetescluster", "wrong-key", "True", "Connected");
}

TEST_F(AssetControllersTest, AKubernetesClusterReportsInvalidKubeconfigsNamingTheField) {
  Apply(Secret("garbage", {{"kubeconfig.yaml", "this is: [not a kubeconfig"}}));
  Apply(KubernetesCluster("garbage", "garbage"));
  const json garbage = WaitForReady("kubernetescluster", "garbage", "False", "InvalidKubeconfig");
  EXPECT_NE(Message(garbage).find("kubeconfig"), std::string::npos) << Message(garbage);

  std::string dangling = RemoteKubeconfig();
  const std::string context_key = "current-context: ";
  const std::size_t at = dangling.find(context_key);
  ASSERT_NE(at, std::string::npos) << dangling;
  dangling.replace(at, dangling.find('\n', at) - at, context_key + "no-such-context");
  Apply(Secret("dangling", {{"kubeconfig.yaml", dangling}}));
  Apply(KubernetesCluster("dangling", "dangling"));
  const json bad = WaitForReady("kubernetescluster", "dangling", "False", "InvalidKubeconfig");
  EXPECT_NE(Message(bad).find("no-such-context"), std::string::npos) << Message(bad);
  ExpectAlive(*kubernetescluster_);
}

TEST_F(AssetControllersTest, AKubernetesClusterReportsUnreachableUnauthorizedAndForbidden) {
  Apply(Secret("closed-port",
               {{"kubeconfig.yaml",
                 RemoteKubeconfigAt("https://127.0.0.1:" + std::to_string(closed_port_->port()))}}));
  Apply(KubernetesCluster("closed-port", "closed-port"));
  Apply(Secret("bad-token", {{"kubeconfig.yaml", RemoteKubeconfigWithToken("not-a-valid-token")}}));
  Apply(KubernetesCluster("bad-token", "bad-token"));
  Apply(Secret("nobody", {{"kubeconfig.yaml",
                           ro::testenv::ReadFile(remote_->KubeconfigFor("nobody"))}}));
  Apply(KubernetesCluster("nobody", "nobody"));

  const json unreachable = WaitForReady("kubernetescluster", "closed-port", "False", "Unreachable");
  EXPECT_EQ(unreachable["status"]["server"],
            "https://127.0.0.1:" + std::to_string(closed_port_->port()));
  EXPECT_FALSE(unreachable["status"].contains("serverVersion"));
  WaitForReady("kubernetescluster", "bad-token", "False", "Unauthorized");
  WaitForReady("kubernetescluster", "nobody", "False", "Forbidden");

  // Fixing the token in the Secret is enough.
  Apply(Secret("bad-token", {{"kubeconfig.yaml", RemoteKubeconfig()}}));
  WaitForReady("kubernetescluster", "bad-token", "True", "Connected");
  ExpectAlive(*kubernetescluster_);
}

TEST_F(AssetControllersTest, ABucketOnS3rverIsAccessible) {
  Apply(Secret("s3", {{"accessKeyID", s3_->access_key()}, {"secretAccessKey", s3_->secret_key()}}));
  Apply(GenericBucket("dr", "dr-bucket", "s3"));
  const json object = WaitForReady("bucket", "dr", "True", "Accessible");
  EXPECT_EQ(object["status"]["provider"], "generic");
  EXPECT_EQ(object["status"]["endpoint"], s3_->endpoint());
  EXPECT_EQ(object["status"]["bucketName"], "dr-bucket");
}

TEST_F(AssetControllersTest, ABucketReportsWrongKeysAndRecoversWhenTheSecretIsFixed) {
  Apply(Secret("s3-wrong", {{"accessKeyID", "AKIAWRONG"}, {"secretAccessKey", "wrong"}}));
  Apply(GenericBucket("wrong-keys", "dr-bucket", "s3-wrong"));
  WaitForReady("bucket", "wrong-keys", "False", "InvalidCredentials");
  ro::testenv::WaitFor(
      [] { return HasEvent("wrong-keys", "Warning", "InvalidCredentials", "bucket-controller"); },
      kConditionTimeout, "Event InvalidCredentials (Warning)");

  Apply(Secret("s3-wrong", {{"accessKeyID", s3_->access_key()}, {"secretAccessKey", s3_->secret_key()}}));
  WaitForReady("bucket", "wrong-keys", "True", "Accessible");
  ExpectAlive(*bucket_);
}

TEST_F(AssetControllersTest, ABucketReportsMissingSecretKeyAndBucket) {
  Apply(GenericBucket("no-secret", "dr-bucket", "s3-absent"));
  WaitForReady("bucket", "no-secret", "False", "SecretNotFound");
  Apply(Secret("s3-half", {{"accessKeyID", s3_->access_key()}}));
  Apply(GenericBucket("half-secret", "dr-bucket", "s3-half"));
  const json half = WaitForReady("bucket", "half-secret", "False", "SecretKeyMissing");
  EXPECT_NE(Message(half).find("secretAccessKey"), std::string::npos);

  Apply(Secret("s3-ok", {{"accessKeyID", s3_->access_key()}, {"secretAccessKey", s3_->secret_key()}}));
  Apply(GenericBucket("no-bucket", "bucket-created-later", "s3-ok"));
  WaitForReady("bucket", "no-bucket", "False", "BucketNotFound");
  // The periodic re-check notices the bucket once it exists.
  s3_->CreateBucket("bucket-created-later");
  WaitForReady("bucket", "no-bucket", "True", "Accessible");

  // A Secret created later is noticed at once (its watch), not only at the re-check.
  Apply(Secret("s3-absent", {{"accessKeyID", s3_->access_key()}, {"secretAccessKey", s3_->secret_key()}}));
  WaitForReady("bucket", "no-secret", "True", "Accessible");
  ExpectAlive(*bucket_);
}

TEST_F(AssetControllersTest, ADatabaseIsConnectedAndAnUnreachableOneRecoversWhenFixed) {
  Apply(ZooKeeperDatabase("zk", zookeeper_->connect_string()));
  const json object = WaitForReady("database", "zk", "True", "Connected");
  EXPECT_EQ(object["status"]["servers"], zookeeper_->connect_string());

  const std::string closed = "127.0.0.1:" + std::to_string(closed_port_->port());
  Apply(ZooKeeperDatabase("zk-down", closed));
  const json down = WaitForReady("database", "zk-down", "False", "Unreachable");
  EXPECT_NE(Message(down).find(closed), std::string::npos) << Message(down);
  ExpectAlive(*database_);

  Apply(ZooKeeperDatabase("zk-down", zookeeper_->connect_string()));
  WaitForReady("database", "zk-down", "True", "Connected");

  Apply(ZooKeeperDatabase("zk-typo", "zookeeper-without-port"));
  const json typo = WaitForReady("database", "zk-typo", "False", "InvalidSpec");
  EXPECT_NE(Message(typo).find("servers[0]"), std::string::npos) << Message(typo);
}

TEST_F(AssetControllersTest, KubectlGetListsEveryAssetWithItsColumns) {
  Apply(Secret("columns", {{"kubeconfig.yaml", RemoteKubeconfig()}}));
  Apply(KubernetesCluster("columns", "columns"));
  Apply(Secret("s3-columns", {{"accessKeyID", s3_->access_key()}, {"secretAccessKey", s3_->secret_key()}}));
  Apply(GenericBucket("columns", "dr-bucket", "s3-columns"));
  Apply(ZooKeeperDatabase("columns", zookeeper_->connect_string()));
  WaitForReady("kubernetescluster", "columns", "True", "Connected");
  WaitForReady("bucket", "columns", "True", "Accessible");
  WaitForReady("database", "columns", "True", "Connected");

  const std::string table = cluster_->Kubectl({"get", "kubernetesclusters,buckets,databases", "-A"});
  // One row per asset, the words of each row in order.
  auto row_of = [&](const std::string& resource) {
    std::istringstream lines(table);
    std::string line;
    while (std::getline(lines, line)) {
      if (line.find(resource + "/columns") != std::string::npos) return line;
    }
    return std::string();
  };
  auto words = [](const std::string& line) {
    std::istringstream in(line);
    std::vector<std::string> out;
    for (std::string w; in >> w;) out.push_back(w);
    return out;
  };
  EXPECT_NE(table.find("READY"), std::string::npos) << table;
  EXPECT_NE(table.find("REASON"), std::string::npos) << table;
  EXPECT_NE(table.find("VERSION"), std::string::npos) << table;
  EXPECT_NE(table.find("PROVIDER"), std::string::npos) << table;
  EXPECT_NE(table.find("SERVERS"), std::string::npos) << table;

  const std::vector<std::string> kc =
      words(row_of("kubernetescluster.assets.astronetes.io"));
  ASSERT_GE(kc.size(), 6u) << table;
  EXPECT_EQ(kc[0], kNamespace);
  EXPECT_EQ(kc[2], "True");
  EXPECT_EQ(kc[3], "Connected");
  EXPECT_EQ(kc[4].rfind("v1.20", 0), 0u) << table;

  const std::vector<std::string> bucket = words(row_of("bucket.assets.astronetes.io"));
  ASSERT_GE(bucket.size(), 7u) << table;
  EXPECT_EQ(bucket[2], "True");
  EXPECT_EQ(bucket[3], "generic");
  EXPECT_EQ(bucket[4], "dr-bucket");
  EXPECT_EQ(bucket[5], s3_->endpoint());

  const std::vector<std::string> database = words(row_of("database.assets.astronetes.io"));
  ASSERT_GE(database.size(), 5u) << table;
  EXPECT_EQ(database[2], "True");
  EXPECT_EQ(database[3], zookeeper_->connect_string());
}

TEST_F(AssetControllersTest, EveryLogLineIsJsonWithTheManualsBaseFields) {
  // Make sure each controller logged a condition change, then read all three logs.
  Apply(ZooKeeperDatabase("logged", zookeeper_->connect_string()));
  WaitForReady("database", "logged", "True", "Connected");
  for (ControllerProcess* controller : {kubernetescluster_.get(), bucket_.get(), database_.get()}) {
    const std::string& binary = controller->process().name();
    std::istringstream lines(controller->Log());
    std::string line;
    int count = 0;
    bool license_logged = false;
    bool condition_logged = false;
    while (std::getline(lines, line)) {
      if (line.empty()) continue;
      ++count;
      json entry;
      ASSERT_NO_THROW(entry = json::parse(line)) << binary << ": not JSON: " << line;
      ASSERT_TRUE(entry.is_object()) << line;
      EXPECT_TRUE(entry.contains("level") && entry.contains("timestamp") &&
                  entry.contains("msg") && entry.contains("process"))
          << line;
      EXPECT_EQ(entry["process"]["id"], binary) << line;
      EXPECT_EQ(entry["timestamp"].get<std::string>().size(), 30u) << line;  // ns precision
      if (entry["msg"] == "license loaded") {
        license_logged = true;
        EXPECT_EQ(entry["license"]["licensee"], "Integration Tests") << line;
        EXPECT_EQ(entry["license"]["sha256"].get<std::string>().size(), 64u) << line;
      }
      if (entry["msg"] == "condition changed") {
        condition_logged = true;
        EXPECT_TRUE(entry["object"].contains("name")) << line;
        EXPECT_TRUE(entry["object"].contains("kind")) << line;
      }
    }
    EXPECT_GT(count, 3) << binary;
    EXPECT_TRUE(license_logged) << binary;
    if (controller == database_.get()) {
      EXPECT_TRUE(condition_logged) << binary;
    }
  }
}

}  // namespace

// The decisions of the three asset controllers (the Ready reasons of
// docs/assets-*.md), with Secret reads and connection probes injected. The real
// connections are covered by tests/integration/asset_controllers_test.cc.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "bucket/bucket_controller.h"
#include "database/database_controller.h"
#include "kubernetescluster/kubernetescluster_controller.h"
#include "ro/kube/errors.h"
#include "ro/plugins/zookeeper_client.h"

namespace ro::controllers {
namespace {

using nlohmann::json;
using runtime::ConditionStatus;
using runtime::Observation;

// A minimal kubeconfig that LoadKubeconfig accepts.
constexpr const char* kKubeconfig = R"(apiVersion: v1
kind: Config
current-context: c
contexts:
- name: c
  context: {cluster: k, user: u}
clusters:
- name: k
  cluster: {server: "https://10.0.0.1:6443"}
users:
- name: u
  user: {token: abc}
)";

json Cluster() {
  return {{"metadata", {{"namespace", "ns1"}, {"name", "c1"}}},
          {"spec", {{"secretName", "kc"}}}};
}

json SecretWith(const std::string& key, const std::string& value) {
  return {{"metadata", {{"namespace", "ns1"}, {"name", "kc"}}}, {"stringData", {{key, value}}}};
}

Observation ObserveCluster(std::optional<json> secret, const ClusterProbe& probe) {
  KubernetesClusterOptions options;
  options.recheck_interval = std::chrono::seconds{7};
  return ObserveKubernetesCluster(
      Cluster(), [&](const std::string&, const std::string&) { return secret; }, probe, options);
}

std::string NeverCalled(const kube::RestConfig&) {
  ADD_FAILURE() << "the probe must not run";
  return "";
}

TEST(KubernetesClusterObserveTest, ConnectedFillsServerAndVersion) {
  const Observation o = ObserveCluster(SecretWith(kKubeconfigKey, kKubeconfig),
                                       [](const kube::RestConfig& c) {
                                         EXPECT_EQ(c.bearer_token, "abc");
                                         return std::string("v1.20.2");
                                       });
  EXPECT_EQ(o.status, ConditionStatus::kTrue);
  EXPECT_EQ(o.reason, "Connected");
  EXPECT_EQ(o.fields.at("server"), "https://10.0.0.1:6443");
  EXPECT_EQ(o.fields.at("serverVersion"), "v1.20.2");
  EXPECT_EQ(o.recheck_after, std::chrono::seconds{7});
}

TEST(KubernetesClusterObserveTest, SecretProblemsAreReportedBeforeConnecting) {
  EXPECT_EQ(ObserveCluster(std::nullopt, NeverCalled).reason, "SecretNotFound");
  EXPECT_EQ(ObserveCluster(SecretWith("kubeconfig", kKubeconfig), NeverCalled).reason,
            "SecretKeyMissing");
  const Observation garbage = ObserveCluster(SecretWith(kKubeconfigKey, "][ not yaml"), NeverCalled);
  EXPECT_EQ(garbage.reason, "InvalidKubeconfig");
  EXPECT_EQ(garbage.status, ConditionStatus::kFalse);
  const Observation no_context =
      ObserveCluster(SecretWith(kKubeconfigKey, "apiVersion: v1\nkind: Config\n"), NeverCalled);
  EXPECT_EQ(no_context.reason, "InvalidKubeconfig");
  EXPECT_NE(no_context.message.find("current-context"), std::string::npos) << no_context.message;
  EXPECT_EQ(no_context.fields.at("serverVersion"), std::nullopt);
}

TEST(KubernetesClusterObserveTest, ConnectionFailuresMapToTheirReasons) {
  const json secret = SecretWith(kKubeconfigKey, kKubeconfig);
  auto failing = [&](auto error) {
    return ObserveCluster(secret, [error](const kube::RestConfig&) -> std::string { throw error; });
  };
  const Observation refused =
      failing(kube::TransportError(kube::TransportError::Kind::kConnect, "connection refused"));
  EXPECT_EQ(refused.reason, "Unreachable");
  EXPECT_EQ(refused.fields.at("server"), "https://10.0.0.1:6443");
  EXPECT_EQ(failing(kube::ApiError(401, kube::StatusReason::kUnauthorized, "Unauthorized")).reason,
            "Unauthorized");
  EXPECT_EQ(failing(kube::ApiError(403, kube::StatusReason::kForbidden, "no")).reason, "Forbidden");
  EXPECT_EQ(failing(kube::ApiError(503, kube::StatusReason::kServiceUnavailable, "x")).reason,
            "Unreachable");
}

json GenericBucket(json extra = json::object()) {
  json spec = {{"generic", {{"name", "dr"}, {"endpoint", "127.0.0.1:9000"}, {"secretName", "s3"}}}};
  spec.update(extra);
  return {{"metadata", {{"namespace", "ns1"}, {"name", "b1"}}}, {"spec", spec}};
}

json S3Secret() {
  return {{"stringData", {{"accessKeyID", "S3RVER"}, {"secretAccessKey", "S3RVER"}}}};
}

Observation ObserveB(const json& bucket, std::optional<json> secret, const BucketProbe& probe) {
  return ObserveBucket(
      bucket, [&](const std::string&, const std::string&) { return secret; }, probe,
      BucketOptions{});
}

void Accessible(const plugins::S3Config&) {}

TEST(BucketObserveTest, AccessibleFillsProviderEndpointAndName) {
  const Observation o = ObserveB(GenericBucket(), S3Secret(), [](const plugins::S3Config& c) {
    EXPECT_EQ(c.credentials.access_key_id, "S3RVER");
    EXPECT_FALSE(c.use_ssl);
  });
  EXPECT_EQ(o.reason, "Accessible");
  EXPECT_EQ(o.fields.at("provider"), "generic");
  EXPECT_EQ(o.fields.at("endpoint"), "127.0.0.1:9000");
  EXPECT_EQ(o.fields.at("bucketName"), "dr");
}

TEST(BucketObserveTest, TheSpecLevelSecretNameIsTheFallback) {
  json bucket = GenericBucket({{"secretName", "fallback"}});
  bucket["spec"]["generic"].erase("secretName");
  std::string asked;
  ObserveBucket(
      bucket,
      [&](const std::string&, const std::string& name) -> std::optional<json> {
        asked = name;
        return S3Secret();
      },
      Accessible, BucketOptions{});
  EXPECT_EQ(asked, "fallback");
  EXPECT_EQ(BucketSecretNames(bucket), (std::vector<std::string>{"", "fallback"}));
}

// spec.encryption.clientSide: the key Secret is read and checked; the probe gets the
// cipher; the message names the write key's id (a rotation changes the status).
TEST(BucketObserveTest, ClientSideEncryptionKeySecretIsChecked) {
  const json bucket = GenericBucket({{"encryption", {{"clientSide", {{"secretName", "bucket-key"}, {"keyName", "k1"}}}}}});
  const std::string key(32, 'K');
  const auto observe = [&](std::optional<json> key_secret, const BucketProbe& probe = Accessible) {
    return ObserveBucket(
        bucket,
        [&](const std::string&, const std::string& name) -> std::optional<json> {
          return name == "bucket-key" ? key_secret : std::optional<json>(S3Secret());
        },
        probe, BucketOptions{});
  };
  const Observation ok = observe(json{{"stringData", {{"k1", key}}}}, [](const plugins::S3Config& c) {
    EXPECT_NE(c.cipher, nullptr);
  });
  EXPECT_EQ(ok.reason, "Accessible");
  EXPECT_NE(ok.message.find("client-side encryption key id " + plugins::EnvelopeKeyIdHex(key)), std::string::npos)
      << ok.message;
  EXPECT_EQ(observe(std::nullopt).reason, "EncryptionKeyMissing");
  EXPECT_EQ(observe(json{{"stringData", {{"other", key}}}}).reason, "EncryptionKeyMissing");
  EXPECT_EQ(observe(json{{"stringData", {{"k1", "too short"}}}}).reason, "EncryptionKeyInvalid");
  EXPECT_EQ(observe(json{{"data", {{"k1", "not base64!"}}}}).reason, "EncryptionKeyInvalid");
  json bad = bucket;
  bad["spec"]["encryption"]["serverSide"] = {{"algorithm", "rot13"}};
  EXPECT_EQ(ObserveB(bad, S3Secret(), Accessible).reason, "InvalidSpec");
  EXPECT_EQ(BucketReferencedSecretNames(bucket), (std::vector<std::string>{"s3", "", "bucket-key"}));
}

TEST(BucketObserveTest, SpecAndSecretProblems) {
  json two = GenericBucket({{"awsS3", {{"name", "x"}, {"region", "eu-west-1"}}}});
  EXPECT_EQ(ObserveB(two, S3Secret(), Accessible).reason, "InvalidSpec");
  json no_secret = GenericBucket();
  no_secret["spec"]["generic"].erase("secretName");
  EXPECT_EQ(ObserveB(no_secret, S3Secret(), Accessible).reason, "InvalidSpec");
  EXPECT_EQ(ObserveB(GenericBucket(), std::nullopt, Accessible).reason, "SecretNotFound");
  const Observation missing_key =
      ObserveB(GenericBucket(), json{{"stringData", {{"accessKeyID", "a"}}}}, Accessible);
  EXPECT_EQ(missing_key.reason, "SecretKeyMissing");
  EXPECT_NE(missing_key.message.find("secretAccessKey"), std::string::npos);
}

TEST(BucketObserveTest, S3ErrorsMapToTheDocumentedReasons) {
  using Code = plugins::S3Error::Code;
  auto failing = [](Code code, long status, std::string s3_code) {
    return ObserveB(GenericBucket(), S3Secret(), [=](const plugins::S3Config&) {
      throw plugins::S3Error(code, status, s3_code, "failed");
    });
  };
  EXPECT_EQ(failing(Code::kNoSuchBucket, 404, "NoSuchBucket").reason, "BucketNotFound");
  EXPECT_EQ(failing(Code::kAccessDenied, 403, "AccessDenied").reason, "AccessDenied");
  EXPECT_EQ(failing(Code::kInvalidCredentials, 403, "InvalidAccessKeyId").reason,
            "InvalidCredentials");
  EXPECT_EQ(failing(Code::kUnreachable, 0, "").reason, "Unreachable");
  EXPECT_EQ(failing(Code::kOther, 503, "SlowDown").reason, "Unreachable");
  EXPECT_EQ(failing(Code::kOther, 301, "PermanentRedirect").reason, "BucketNotFound");
  EXPECT_THROW(failing(Code::kOther, 400, "InvalidArgument"), plugins::S3Error);
}

json Zk(json servers) {
  return {{"metadata", {{"namespace", "ns1"}, {"name", "zk"}}},
          {"spec", {{"zookeeper", {{"client", {{"servers", servers}}}}}}}};
}

TEST(DatabaseObserveTest, ConnectedOrUnreachable) {
  const Observation ok = ObserveDatabase(Zk({"127.0.0.1:2181", "[::1]:2182"}),
                                         [](const std::vector<std::string>&) {}, DatabaseOptions{});
  EXPECT_EQ(ok.reason, "Connected");
  EXPECT_EQ(ok.fields.at("servers"), "127.0.0.1:2181,[::1]:2182");
  const Observation down = ObserveDatabase(
      Zk({"127.0.0.1:1"}),
      [](const std::vector<std::string>&) {
        throw plugins::ZooKeeperError(plugins::ZooKeeperError::Code::kUnreachable, -4, "",
                                      "no session");
      },
      DatabaseOptions{});
  EXPECT_EQ(down.reason, "Unreachable");
  EXPECT_EQ(down.status, ConditionStatus::kFalse);
}

TEST(DatabaseObserveTest, InvalidSpecsNameTheEntry) {
  auto never = [](const std::vector<std::string>&) { ADD_FAILURE() << "probe must not run"; };
  const Observation no_block = ObserveDatabase(
      json{{"metadata", {{"name", "zk"}}}, {"spec", json::object()}}, never, DatabaseOptions{});
  EXPECT_EQ(no_block.reason, "InvalidSpec");
  const Observation bad = ObserveDatabase(Zk({"127.0.0.1:2181", "zk-2"}), never, DatabaseOptions{});
  EXPECT_EQ(bad.reason, "InvalidSpec");
  EXPECT_NE(bad.message.find("servers[1]"), std::string::npos) << bad.message;
}

TEST(DatabaseObserveTest, ServerAddressesAreHostColonPort) {
  EXPECT_EQ(CheckZooKeeperServer("zk-0.zk.svc:2181"), "");
  EXPECT_EQ(CheckZooKeeperServer("[fd00::1]:2181"), "");
  EXPECT_NE(CheckZooKeeperServer("zk"), "");
  EXPECT_NE(CheckZooKeeperServer(":2181"), "");
  EXPECT_NE(CheckZooKeeperServer("zk:0"), "");
  EXPECT_NE(CheckZooKeeperServer("zk:65536"), "");
  EXPECT_NE(CheckZooKeeperServer("fd00::1:2181"), "");
  EXPECT_NE(CheckZooKeeperServer("zk:21x1"), "");
}

}  // namespace
}  // namespace ro::controllers

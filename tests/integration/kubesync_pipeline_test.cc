// The Kubesync pipeline end to end: the real `kubesync` binary (events-listener,
// processor, synchronizer, reconciler) between two real clusters, with real NATS
// JetStream, Redis and S3 servers from the harness. The LiveSynchronization
// configurations are the manual's tutorials 8.1 and 8.2, verbatim, plus a bucket variant.
#include <curl/curl.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "ro/common/log.h"
#include "ro/kube/client.h"
#include "ro/kube/config.h"
#include "ro/kube/errors.h"
#include "ro/kubesync/envelope.h"
#include "ro/kubesync/jetstream.h"
#include "ro/kubesync/kubesync_config.h"
#include "ro/kubesync/redis_state.h"
#include "ro/plugins/kubernetes/control_metadata.h"
#include "ro/plugins/kubernetes/live_sync_config.h"
#include "ro/plugins/bucket_encryption.h"
#include "ro/plugins/s3_client.h"
#include "ro/plugins/tasks/object_transformation.h"
#include "ro/plugins/tasks/task_spec.h"
#include "ro/testenv/testenv.h"
#include "ro/testsupport/kubesync_expect.h"
#include "ro/testsupport/clients.h"
#include "ro/testsupport/kubesync_process.h"
#include "ro/testsupport/objects.h"
#include "ro/testsupport/yaml.h"

namespace ro::kubesync {
namespace {

namespace te = ro::testenv;
namespace ts = ro::testsupport;
namespace k8s = ro::plugins::kubernetes;
using kube::GroupVersionResource;
using nlohmann::json;
using namespace std::chrono_literals;

// Replication normally takes well under a second; generous for two busy cores shared
// by two apiservers, etcd, NATS, Redis and four components.
constexpr auto kEventually = 90s;
// Polling whole-cluster comparisons faster only loads the apiservers.
constexpr auto kComparePoll = 500ms;
// Namespace of the LiveSynchronizations (and of their KubernetesClusters and Bucket).
constexpr char kLiveSyncNamespace[] = "dr-config";

const GroupVersionResource kDeployments{"apps", "v1", "deployments"};
const GroupVersionResource kServices{"", "v1", "services"};
const GroupVersionResource kSecrets{"", "v1", "secrets"};
const GroupVersionResource kRoles{"rbac.authorization.k8s.io", "v1", "roles"};
const GroupVersionResource kRoleBindings{"rbac.authorization.k8s.io", "v1", "rolebindings"};
const GroupVersionResource kServiceAccounts{"", "v1", "serviceaccounts"};
const GroupVersionResource kIngresses{"networking.k8s.io", "v1", "ingresses"};
const GroupVersionResource kNamespaces{"", "v1", "namespaces"};
const std::vector<GroupVersionResource> kTutorialKinds{kDeployments,  kServices,        kSecrets,  kRoles,
                                                       kRoleBindings, kServiceAccounts, kIngresses};

// spec.config of a LiveSynchronization manifest of the manual kept in tests/samples,
// e.g. "8.2-active-passive-livesync.yaml" (tutorial 8.2's livesync.yaml, verbatim).
json SampleSpecConfig(const std::string& sample) {
  return ts::YamlToJson(te::ReadFile(te::SourceDir() / "tests" / "samples" / sample))["spec"]["config"];
}
const char* const kActiveActive = "8.1-active-active-livesync.yaml";    // manual 8.1
const char* const kActivePassive = "8.2-active-passive-livesync.yaml";  // manual 8.2

// ---- objects of the tutorial kinds: ro/testsupport/objects.h ----
using ts::Deployment;
using ts::Ingress;
using ts::Meta;
using ts::Role;
using ts::RoleBinding;
using ts::Secret;
using ts::Service;
using ts::ServiceAccount;

using ts::AdminClient;


// One LiveSynchronization under test: its configuration and running components.
struct LiveSync {
  std::string name;
  k8s::LiveSyncConfig config;
  k8s::StampInfo stamp;
  std::unique_ptr<ts::KubesyncPipeline> pipeline;

  std::string id() const { return PipelineNames(kLiveSyncNamespace, name).id(); }
};

class KubesyncPipelineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    // The source gets the controllers that create every namespace's "default"
    // ServiceAccount and the token Secrets, which the tutorials must not copy.
    auto source = std::async(std::launch::async, [] {
      te::KubeClusterOptions options;
      options.name = "source";
      options.with_controller_manager = true;
      options.controllers = {"serviceaccount", "serviceaccount-token", "garbagecollector", "namespace"};
      return std::make_unique<te::KubeCluster>(options);
    });
    auto destination = std::async(std::launch::async, [] {
      te::KubeClusterOptions options;
      options.name = "destination";
      return std::make_unique<te::KubeCluster>(options);
    });
    nats_ = std::make_unique<te::NatsServer>();
    redis_ = std::make_unique<te::RedisServer>();
    s3_ = std::make_unique<te::S3Server>();
    source_ = source.get();
    destination_ = destination.get();
    source_client_ = AdminClient(*source_);
    destination_client_ = AdminClient(*destination_);
    dir_ = std::make_unique<te::TempDir>("kubesync-pipeline");
  }
  static void TearDownTestSuite() {
    source_client_.reset();
    destination_client_.reset();
    destination_.reset();
    source_.reset();
    s3_.reset();
    redis_.reset();
    nats_.reset();
    dir_.reset();
  }

  void TearDown() override {
    for (auto& ls : live_syncs_) {
      // SIGTERM is a graceful stop: every component exits 0.
      EXPECT_THAT(ls->pipeline->StopAll(), ::testing::IsEmpty()) << ls->name;
    }
  }

  // Writes the configuration file of LiveSynchronization dr-config/<name> and starts its
  // components. `bucket_name` non-empty: spec_config names a Bucket on the S3 server.
  LiveSync& StartLiveSync(const std::string& name, const json& spec_config, const std::string& bucket_name = "",
                          std::vector<std::string> components = {"events-listener", "processor", "synchronizer",
                                                                 "reconciler"},
                          const std::function<void(KubesyncConfig&)>& adjust = {}) {
    auto ls = std::make_unique<LiveSync>();
    ls->name = name;
    ls->config = k8s::ParseLiveSyncConfig(spec_config);
    ls->stamp = k8s::MakeStampInfo(kLiveSyncNamespace, name, kLiveSyncNamespace, ls->config.source_name);
    const auto path = dir_->path() / (name + ".json");
    KubesyncConfig file = ts::MakeKubesyncConfig(kLiveSyncNamespace, name, spec_config, *source_, *destination_,
                                                 nats_->url(), redis_->address(),
                                                 bucket_name.empty() ? nullptr : s3_.get(), bucket_name);
    if (adjust) adjust(file);
    ts::WriteKubesyncConfig(path, file);
    const auto logs = dir_->path() / name;
    std::filesystem::create_directories(logs);
    ls->pipeline = std::make_unique<ts::KubesyncPipeline>(path, logs, std::move(components));
    ls->pipeline->StartAll();
    live_syncs_.push_back(std::move(ls));
    return *live_syncs_.back();
  }

  static void CreateNamespace(kube::DynamicClient& client, const std::string& name, json labels = json::object()) {
    client.Create(kNamespaces, "", {{"apiVersion", "v1"}, {"kind", "Namespace"},
                                    {"metadata", {{"name", name}, {"labels", std::move(labels)}}}});
  }
  static void SetNamespaceLabels(const std::string& name, const json& labels) {
    source_client_->Patch(kNamespaces, "", name, kube::PatchType::kMergePatch,
                          json{{"metadata", {{"labels", labels}}}}.dump());
  }
  // Adds label rev=<rev> to an object (an update of any kind).
  static void Relabel(const GroupVersionResource& gvr, const std::string& ns, const std::string& name,
                      const std::string& rev) {
    source_client_->Patch(gvr, ns, name, kube::PatchType::kMergePatch,
                          json{{"metadata", {{"labels", {{"rev", rev}}}}}}.dump());
  }

  // Waits until, for every GVR, the destination holds exactly the expected form of the
  // source objects in `namespaces`.
  static void ExpectConverges(const LiveSync& ls, const std::vector<GroupVersionResource>& gvrs,
                              const std::vector<std::string>& namespaces) {
    for (const GroupVersionResource& gvr : gvrs) {
      ts::Convergence last;
      try {
        te::WaitFor(
            [&] {
              last = ts::CompareClusters(*source_client_, *destination_client_, ls.config, ls.stamp, gvr, namespaces);
              return last.converged();
            },
            kEventually, "destination == expected(source) for " + gvr.ToString(), kComparePoll);
      } catch (const te::WaitTimeout&) {
        ADD_FAILURE() << ls.name << " " << gvr.ToString() << " did not converge: " << last.Summary();
      }
    }
  }

  // True once a line of `component`'s log has `msg` and every member of `match`.
  static bool LogHas(ts::KubesyncProcess& component, std::string_view msg, const json& match = json::object()) {
    for (const json& line : component.LogLines()) {
      if (line.value("msg", "") != msg) continue;
      bool all = true;
      for (const auto& [key, value] : match.items()) {
        const json::json_pointer pointer("/" + key);
        all = all && line.contains(pointer) && line.at(pointer) == value;
      }
      if (all) return true;
    }
    return false;
  }

  static std::unique_ptr<te::KubeCluster> source_;
  static std::unique_ptr<te::KubeCluster> destination_;
  static std::unique_ptr<te::NatsServer> nats_;
  static std::unique_ptr<te::RedisServer> redis_;
  static std::unique_ptr<te::S3Server> s3_;
  static std::unique_ptr<kube::DynamicClient> source_client_;
  static std::unique_ptr<kube::DynamicClient> destination_client_;
  static std::unique_ptr<te::TempDir> dir_;

  std::vector<std::unique_ptr<LiveSync>> live_syncs_;
};
std::unique_ptr<te::KubeCluster> KubesyncPipelineTest::source_;
std::unique_ptr<te::KubeCluster> KubesyncPipelineTest::destination_;
std::unique_ptr<te::NatsServer> KubesyncPipelineTest::nats_;
std::unique_ptr<te::RedisServer> KubesyncPipelineTest::redis_;
std::unique_ptr<te::S3Server> KubesyncPipelineTest::s3_;
std::unique_ptr<kube::DynamicClient> KubesyncPipelineTest::source_client_;
std::unique_ptr<kube::DynamicClient> KubesyncPipelineTest::destination_client_;
std::unique_ptr<te::TempDir> KubesyncPipelineTest::dir_;

TEST_F(KubesyncPipelineTest, ActivePassiveTutorialReplicatesEveryKindWithDeploymentsScaledToZero) {
  const std::string ns = "ap-shop";
  const std::string other = "ap-unlabelled";
  CreateNamespace(*source_client_, ns, {{"sync", "true"}});
  CreateNamespace(*source_client_, other);
  CreateNamespace(*destination_client_, ns);
  CreateNamespace(*destination_client_, other);
  // The source's serviceaccount controller creates "default" in every namespace.
  te::WaitFor([&] { return source_client_->GetIfExists(kServiceAccounts, ns, "default").has_value(); }, kEventually,
              "the source's default ServiceAccount");
  LiveSync& ls = StartLiveSync("active-passive", SampleSpecConfig(kActivePassive));

  auto& src = *source_client_;
  src.Create(kDeployments, ns, Deployment(ns, "web", 3));
  src.Create(kServices, ns, Service(ns, "web"));
  src.Create(kSecrets, ns, Secret(ns, "web-credentials", "s3cr3t"));
  src.Create(kRoles, ns, Role(ns, "reader"));
  src.Create(kRoleBindings, ns, RoleBinding(ns, "reader-binding", "reader"));
  src.Create(kServiceAccounts, ns, ServiceAccount(ns, "app"));
  src.Create(kIngresses, ns, Ingress(ns, "web"));
  src.Create(kDeployments, other, Deployment(other, "ignored", 2));
  src.Create(kSecrets, other, Secret(other, "ignored", "x"));
  ExpectConverges(ls, kTutorialKinds, {ns, other});

  // The transformation: replicas 0 at the destination, the source untouched.
  EXPECT_EQ(destination_client_->Get(kDeployments, ns, "web")["spec"]["replicas"], 0);
  EXPECT_EQ(src.Get(kDeployments, ns, "web")["spec"]["replicas"], 3);
  // Not copied: the unlabelled namespace, the excluded "default" ServiceAccount, and the
  // token Secrets of the source's ServiceAccounts.
  EXPECT_FALSE(destination_client_->GetIfExists(kDeployments, other, "ignored"));
  EXPECT_FALSE(destination_client_->GetIfExists(kSecrets, other, "ignored"));
  EXPECT_FALSE(destination_client_->GetIfExists(kServiceAccounts, ns, "default"));
  kube::ListOptions managed;
  managed.label_selector = std::string(k8s::kManagedByLabel) + "=" + ls.stamp.managed_by;
  for (const json& secret : destination_client_->ListAll(kSecrets, ns, managed).items) {
    EXPECT_NE(secret.value("type", ""), "kubernetes.io/service-account-token") << secret["metadata"]["name"];
  }
  EXPECT_EQ(destination_client_->Get(kSecrets, ns, "web-credentials")["data"]["value"], "czNjcjN0");

  // Updates of every kind propagate (the Deployment keeps its transformation).
  src.Patch(kDeployments, ns, "web", kube::PatchType::kMergePatch,
            R"({"spec":{"template":{"spec":{"containers":[{"name":"main","image":"nginx:1.26"}]}}}})");
  src.Patch(kServices, ns, "web", kube::PatchType::kJsonPatch,
            R"([{"op":"replace","path":"/spec/ports/0/port","value":81}])");
  src.Patch(kSecrets, ns, "web-credentials", kube::PatchType::kMergePatch, R"({"stringData":{"value":"rotated"}})");
  for (const auto& [gvr, name] : std::vector<std::pair<GroupVersionResource, std::string>>{
           {kRoles, "reader"}, {kRoleBindings, "reader-binding"}, {kServiceAccounts, "app"}, {kIngresses, "web"}}) {
    Relabel(gvr, ns, name, "2");
  }
  ExpectConverges(ls, kTutorialKinds, {ns});
  const json web = destination_client_->Get(kDeployments, ns, "web");
  EXPECT_EQ(web["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.26");
  EXPECT_EQ(web["spec"]["replicas"], 0);
  EXPECT_EQ(destination_client_->Get(kServices, ns, "web")["spec"]["ports"][0]["port"], 81);

  // Deletes of every kind propagate.
  src.Delete(kDeployments, ns, "web");
  src.Delete(kServices, ns, "web");
  src.Delete(kSecrets, ns, "web-credentials");
  src.Delete(kRoles, ns, "reader");
  src.Delete(kRoleBindings, ns, "reader-binding");
  src.Delete(kServiceAccounts, ns, "app");
  src.Delete(kIngresses, ns, "web");
  ExpectConverges(ls, kTutorialKinds, {ns});
  EXPECT_FALSE(destination_client_->GetIfExists(kDeployments, ns, "web"));
  EXPECT_FALSE(destination_client_->GetIfExists(kIngresses, ns, "web"));
}

TEST_F(KubesyncPipelineTest, ActiveActiveTutorialKeepsReplicasAndFollowsNamespaceLabels) {
  const std::string ns = "aa-api";
  const std::string late = "aa-late";
  CreateNamespace(*source_client_, ns, {{"sync", "true"}});
  CreateNamespace(*source_client_, late);
  CreateNamespace(*destination_client_, ns);
  CreateNamespace(*destination_client_, late);
  LiveSync& ls = StartLiveSync("active-active", SampleSpecConfig(kActiveActive));

  source_client_->Create(kDeployments, ns, Deployment(ns, "api", 2));
  source_client_->Create(kDeployments, late, Deployment(late, "batch", 4));
  source_client_->Create(kServices, late, Service(late, "batch"));
  ExpectConverges(ls, {kDeployments, kServices}, {ns, late});
  EXPECT_EQ(destination_client_->Get(kDeployments, ns, "api")["spec"]["replicas"], 2);  // no transformation
  EXPECT_FALSE(destination_client_->GetIfExists(kDeployments, late, "batch"));

  // Labelled later: its objects are synced without any change to them.
  SetNamespaceLabels(late, {{"sync", "true"}});
  te::WaitFor([&] { return destination_client_->GetIfExists(kServices, late, "batch").has_value(); }, kEventually,
              "the labelled namespace's Service at the destination", kComparePoll);
  ExpectConverges(ls, {kDeployments, kServices}, {ns, late});
  EXPECT_EQ(destination_client_->Get(kDeployments, late, "batch")["spec"]["replicas"], 4);

  // Unlabelled again: its copies go.
  SetNamespaceLabels(late, {{"sync", nullptr}});
  te::WaitFor([&] { return !destination_client_->GetIfExists(kDeployments, late, "batch").has_value(); }, kEventually,
              "the unlabelled namespace's Deployment pruned", kComparePoll);
  ExpectConverges(ls, {kDeployments, kServices}, {ns, late});
}

TEST_F(KubesyncPipelineTest, BucketHoldsOriginalsAtTheDocumentedPathAndDeletesRemoveThem) {
  const std::string ns = "bk-shop";
  const std::string bucket = "kubesync-originals";
  s3_->CreateBucket(bucket);
  CreateNamespace(*source_client_, ns, {{"sync", "true"}});  // not at the destination:
  json spec = SampleSpecConfig(kActivePassive);
  spec["bucketName"] = "bucket-dev";
  spec["replication"]["forceNamespaceCreation"] = true;  // the synchronizer creates it
  LiveSync& ls = StartLiveSync("pre", spec, bucket);

  const json created = source_client_->Create(kDeployments, ns, Deployment(ns, "helloworld", 3));
  ExpectConverges(ls, {kDeployments}, {ns});
  EXPECT_TRUE(destination_client_->GetIfExists(kNamespaces, "", ns)) << "created by forceNamespaceCreation";

  plugins::S3Client s3(plugins::GenericBucketConfig(s3_->endpoint(), false, bucket,
                                                    {s3_->access_key(), s3_->secret_key()}));
  // <LiveSynchronization namespace>/<name>/<group-version-resource>/<namespace>.<name>
  const std::string path = "dr-config/pre/apps-v1-deployments/bk-shop.helloworld";
  std::optional<std::string> body;
  te::WaitFor([&] { return (body = s3.GetObject(path)).has_value(); }, kEventually, "the original in the bucket");
  const json original = json::parse(*body);
  EXPECT_EQ(original["spec"]["replicas"], 3) << "the original, not the transformed copy";
  EXPECT_EQ(original["metadata"]["annotations"][std::string(k8s::kSourceUidAnnotation)], created["metadata"]["uid"]);
  EXPECT_FALSE(original.contains("status"));
  EXPECT_FALSE(original["metadata"].contains("resourceVersion"));
  EXPECT_TRUE(LogHas(ls.pipeline->operator[]("processor"), "object uploaded in bucket",
                     {{"bucketObject/path", path}, {"bucket/name", "bucket-dev"}, {"process/id", "processor"}}));

  source_client_->Delete(kDeployments, ns, "helloworld");
  te::WaitFor([&] { return !s3.GetObject(path).has_value(); }, kEventually, "the original removed from the bucket");
  ExpectConverges(ls, {kDeployments}, {ns});
  EXPECT_TRUE(LogHas(ls.pipeline->operator[]("processor"), "object deleted from bucket", {{"bucketObject/path", path}}));
}

// Encryption at rest of the originals (docs/security.md): with client-side encryption
// and SSE on, the processor stores an AES-256-GCM envelope; an independent client
// (boto3) finds no Secret value in clear in the bucket and decrypts the object with the
// documented format (Python's cryptography); recovery fromOriginal through the same
// reader path as a TaskRun restores the source's value.
TEST_F(KubesyncPipelineTest, EncryptedOriginalsHoldNoSecretValueInClearAndStillRecover) {
  const std::string ns = "enc-shop";
  const std::string bucket = "kubesync-encrypted";
  s3_->CreateBucket(bucket);
  CreateNamespace(*source_client_, ns, {{"sync", "true"}});
  // The key Secret's content as the LiveSynchronization controller hands it over
  // (runner::kBucketEncryptionKeysFile): a random 32-byte key, hex.
  std::string key(plugins::kAesGcmKeyBytes, '\0');
  {
    std::ifstream random("/dev/urandom", std::ios::binary);
    random.read(key.data(), static_cast<std::streamsize>(key.size()));
    ASSERT_TRUE(random) << "no randomness for the test key";
  }
  std::string key_hex;
  for (const char c : key) {
    static constexpr char kHex[] = "0123456789abcdef";
    key_hex += kHex[static_cast<unsigned char>(c) >> 4];
    key_hex += kHex[static_cast<unsigned char>(c) & 0xf];
  }
  const auto keys_path = dir_->path() / "enc-keys.json";
  te::WriteFile(keys_path, json{{"keyName", "key-1"}, {"keys", {{"key-1", key_hex}}}}.dump());
  json spec = SampleSpecConfig(kActivePassive);
  spec["bucketName"] = "bucket-dev";
  spec["replication"]["forceNamespaceCreation"] = true;
  std::optional<BucketRef> bucket_ref;
  LiveSync& ls = StartLiveSync("enc", spec, bucket, {"events-listener", "processor", "synchronizer", "reconciler"},
                               [&](KubesyncConfig& config) {
                                 config.bucket->encryption_keys_path = keys_path.string();
                                 config.bucket->server_side_encryption = "AES256";
                                 bucket_ref = config.bucket;
                               });

  const std::string value = "known-value-7d1f0c9e-do-not-leak";
  const std::string value_base64 = "a25vd24tdmFsdWUtN2QxZjBjOWUtZG8tbm90LWxlYWs=";  // as the API stores it
  source_client_->Create(kSecrets, ns, Secret(ns, "app-credentials", value));
  ExpectConverges(ls, {kSecrets}, {ns});

  // The reader every restore uses: the S3 client of the Bucket's configuration.
  plugins::S3Client reader(BucketS3Config(*bucket_ref));
  const std::string path = "dr-config/enc/v1-secrets/enc-shop.app-credentials";
  std::optional<std::string> body;
  te::WaitFor([&] { return (body = reader.GetObject(path)).has_value(); }, kEventually, "the original in the bucket");
  EXPECT_EQ(json::parse(*body)["data"]["value"], value_base64);

  // An independent client: boto3 reads the stored bytes, cryptography decrypts them per
  // the documented envelope (magic, version, algorithm, key id, nonce | body | tag; the
  // associated data is the 26 header bytes followed by the object key).
  const std::string script = R"PY(
import binascii, json, sys, boto3
from botocore.config import Config
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
endpoint, bucket, key, key_hex = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url="http://" + endpoint, aws_access_key_id="S3RVER",
                  aws_secret_access_key="S3RVER", region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}))
raw = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
header = raw[:26]
assert header[:4] == b"\0ROE" and header[4] == 1 and header[5] == 1, header
plain = AESGCM(binascii.unhexlify(key_hex)).decrypt(header[14:26], raw[26:], header + key.encode())
print(json.dumps({"raw_hex": raw.hex(), "plain": plain.decode()}))
)PY";
  const te::CommandResult independent =
      te::RunCommand({"python3", "-c", script, s3_->endpoint(), bucket, path, key_hex});
  const json seen = json::parse(independent.out);
  std::string raw;
  const std::string raw_hex = seen["raw_hex"].get<std::string>();
  for (std::size_t i = 0; i + 1 < raw_hex.size(); i += 2) {
    raw += static_cast<char>(std::stoi(raw_hex.substr(i, 2), nullptr, 16));
  }
  EXPECT_TRUE(plugins::IsEncryptedEnvelope(raw));
  EXPECT_EQ(raw.find(value), std::string::npos) << "the Secret value in clear in the bucket";
  EXPECT_EQ(raw.find(value_base64), std::string::npos) << "the Secret value (base64) in the bucket";
  EXPECT_EQ(raw.find("app-credentials"), std::string::npos) << "the original's metadata in clear";
  EXPECT_EQ(json::parse(seen["plain"].get<std::string>()), json::parse(*body));
  // Stored bytes copied to another object's path are refused, not read as that object.
  plugins::S3Client raw_writer(plugins::GenericBucketConfig(s3_->endpoint(), false, bucket,
                                                            {s3_->access_key(), s3_->secret_key()}));
  const std::string other = "dr-config/enc/v1-secrets/enc-shop.other";
  raw_writer.PutObject(other, raw, "application/octet-stream");
  EXPECT_THROW(reader.GetObject(other), plugins::BucketEncryptionError);
  EXPECT_THROW(raw_writer.GetObject(path), plugins::BucketEncryptionError) << "a reader without the key";

  // The disaster: the pipeline is gone and the destination's copy was changed.
  EXPECT_THAT(ls.pipeline->StopAll(), ::testing::IsEmpty());
  destination_client_->Patch(kSecrets, ns, "app-credentials", kube::PatchType::kMergePatch,
                             json{{"data", {{"value", "b3ZlcndyaXR0ZW4="}}}}.dump());
  // Recovery fromOriginal, as the TaskRun runs it, reading through the Bucket's reader.
  const json task = {
      {"apiVersion", "automation.astronetes.io/v1alpha1"},
      {"kind", "Task"},
      {"metadata",
       {{"name", "enc-recovery"},
        {"namespace", kLiveSyncNamespace},
        {"annotations", {{std::string(k8s::kLiveSynchronizationAnnotation), std::string(kLiveSyncNamespace) + "/enc"}}}}},
      {"spec",
       {{"plugin", "kubernetes-objects-transformation"},
        {"config",
         {{"bucketName", "bucket-dev"},
          {"resources",
           json::array({{{"identifier", {{"group", ""}, {"version", "v1"}, {"resources", "secrets"}}},
                         {"filter", {{"nameSelector", {{"regex", json::array({"^app-credentials$"})}}}}},
                         {"fromOriginal", {{"enabled", true}}}}})}}}}}};
  plugins::tasks::TransformationTarget target;
  target.destination = destination_client_.get();
  target.read_original = [&reader](const std::string& key_path) { return reader.GetObject(key_path); };
  target.bucket = {"bucket-dev", kLiveSyncNamespace, "", ""};
  plugins::tasks::ObjectTransformer recovery(plugins::tasks::ParseTask(task).transformation(),
                                             {kLiveSyncNamespace, "enc-recovery-1", "run-uid-1"}, target,
                                             log::Logger(json{{"process", {{"id", "recovery"}}}}));
  const auto report = recovery.Run(std::stop_token{});
  EXPECT_TRUE(report.Succeeded()) << report.Summary();
  EXPECT_EQ(report.patched, 1);
  const json restored = destination_client_->Get(kSecrets, ns, "app-credentials");
  EXPECT_EQ(restored["data"]["value"], value_base64);
}

TEST_F(KubesyncPipelineTest, ObjectsDeletedWhileThePipelineWasDownArePrunedByTheReconciler) {
  const std::string ns = "pr-shop";
  CreateNamespace(*source_client_, ns, {{"sync", "true"}});
  CreateNamespace(*destination_client_, ns);
  LiveSync& ls = StartLiveSync("prune", SampleSpecConfig(kActiveActive));
  for (const char* name : {"s1", "s2", "s3", "s4"}) source_client_->Create(kSecrets, ns, Secret(ns, name, name));
  ExpectConverges(ls, {kSecrets}, {ns});

  // While the listener and the synchronizer are down, two secrets go; and the listener's
  // resume points are lost, so nothing will ever report those deletions as events.
  EXPECT_EQ(ls.pipeline->operator[]("events-listener").Stop(), "exit status 0");
  EXPECT_EQ(ls.pipeline->operator[]("synchronizer").Stop(), "exit status 0");
  source_client_->Delete(kSecrets, ns, "s1");
  source_client_->Delete(kSecrets, ns, "s2");
  RedisState redis(redis_->address(), PipelineNames(kLiveSyncNamespace, ls.name).redis_prefix());
  for (const GroupVersionResource& gvr : ls.config.DistinctGvrs()) redis.Delete("rv:" + gvr.ToString());

  ls.pipeline->operator[]("events-listener").Start();
  ls.pipeline->operator[]("synchronizer").Start();
  ExpectConverges(ls, {kSecrets}, {ns});
  EXPECT_FALSE(destination_client_->GetIfExists(kSecrets, ns, "s1"));
  EXPECT_TRUE(destination_client_->GetIfExists(kSecrets, ns, "s3"));
  EXPECT_TRUE(LogHas(ls.pipeline->operator[]("reconciler"), "pruning object from destination",
                     {{"sourceObject/name", "s1"}, {"sourceObject/namespace", ns}}));
}

// The initial list travels as batches (docs/kubesync.md, "Batches"): a few messages per
// page on each hop instead of one per object, and every object arrives.
TEST_F(KubesyncPipelineTest, AListTravelsAsBatchesAndEveryObjectArrives) {
  const std::string ns = "batch-shop";
  constexpr int kObjects = 200;
  CreateNamespace(*source_client_, ns, {{"sync", "true"}});
  CreateNamespace(*destination_client_, ns);
  for (int i = 0; i < kObjects; ++i) {
    const std::string name = "s" + std::to_string(i);
    source_client_->Create(kSecrets, ns, Secret(ns, name, name));
  }
  LiveSync& ls = StartLiveSync("batches", SampleSpecConfig(kActiveActive));
  ExpectConverges(ls, {kSecrets}, {ns});
  EXPECT_EQ(destination_client_->ListAll(kSecrets, ns, {}).items.size(), static_cast<std::size_t>(kObjects));

  // One message per object and hop would be more than 2 * kObjects.
  OpenNatsLibrary();
  auto nats = NatsConnection::Connect(nats_->url(), "kubesync-pipeline-test-batches");
  const StreamState stream = nats->GetStreamState(PipelineNames(kLiveSyncNamespace, ls.name).stream());
  EXPECT_LT(stream.last_sequence, static_cast<std::uint64_t>(kObjects) / 2)
      << "the list's objects did not travel as batches";
}

TEST_F(KubesyncPipelineTest, ObjectsChangedWhileTheListenerWasDownAreCaughtUpFromTheResumePoint) {
  const std::string ns = "cu-shop";
  CreateNamespace(*source_client_, ns, {{"sync", "true"}});
  CreateNamespace(*destination_client_, ns);
  LiveSync& ls = StartLiveSync("catch-up", SampleSpecConfig(kActiveActive));
  source_client_->Create(kSecrets, ns, Secret(ns, "a", "1"));
  ExpectConverges(ls, {kSecrets}, {ns});

  ts::KubesyncProcess& listener = ls.pipeline->operator[]("events-listener");
  const auto relists = [&] {
    int n = 0;
    for (const json& line : listener.LogLines()) {
      n += line.value("msg", "") == "listed objects in cluster" && line.value("resource", "") == "v1/secrets" &&
           !line.contains("namespace");
    }
    return n;
  };
  const int relists_before = relists();
  EXPECT_EQ(listener.Stop(), "exit status 0");
  source_client_->Create(kSecrets, ns, Secret(ns, "b", "2"));
  source_client_->Create(kServices, ns, Service(ns, "c"));
  source_client_->Patch(kSecrets, ns, "a", kube::PatchType::kMergePatch, R"({"stringData":{"value":"changed"}})");
  listener.Start();
  ExpectConverges(ls, {kSecrets, kServices}, {ns});
  EXPECT_EQ(destination_client_->Get(kSecrets, ns, "a")["data"]["value"], "Y2hhbmdlZA==");
  EXPECT_EQ(relists(), relists_before) << "resumed by watching from the stored resourceVersion, not by a list";
}

TEST_F(KubesyncPipelineTest, UnmanagedDestinationObjectWithTheSameNameIsNeverModified) {
  const std::string ns = "um-shop";
  CreateNamespace(*source_client_, ns, {{"sync", "true"}});
  CreateNamespace(*destination_client_, ns);
  const json theirs = destination_client_->Create(kSecrets, ns, Secret(ns, "shared", "theirs"));
  LiveSync& ls = StartLiveSync("unmanaged", SampleSpecConfig(kActiveActive));

  source_client_->Create(kSecrets, ns, Secret(ns, "shared", "ours"));
  source_client_->Create(kSecrets, ns, Secret(ns, "sentinel", "x"));
  te::WaitFor([&] { return destination_client_->GetIfExists(kSecrets, ns, "sentinel").has_value(); }, kEventually,
              "the sentinel replicated");
  ts::KubesyncProcess& synchronizer = ls.pipeline->operator[]("synchronizer");
  te::WaitFor([&] { return LogHas(synchronizer, "event skipped", {{"reason", "unmanaged"}, {"sourceObject/name", "shared"}}); },
              kEventually, "the synchronizer skipping the unmanaged Secret", kComparePoll);
  source_client_->Patch(kSecrets, ns, "shared", kube::PatchType::kMergePatch, R"({"stringData":{"value":"ours-2"}})");
  source_client_->Patch(kSecrets, ns, "sentinel", kube::PatchType::kMergePatch, R"({"stringData":{"value":"y"}})");
  te::WaitFor([&] { return destination_client_->Get(kSecrets, ns, "sentinel")["data"]["value"] == "eQ=="; },
              kEventually, "the sentinel's update replicated", kComparePoll);

  const json now = destination_client_->Get(kSecrets, ns, "shared");
  EXPECT_EQ(now["metadata"]["resourceVersion"], theirs["metadata"]["resourceVersion"]);
  EXPECT_EQ(now["data"]["value"], "dGhlaXJz");
  EXPECT_FALSE(k8s::ReadStamp(now).has_value());
}

// An update of a replicated NodePort Service keeps what the destination allocated (its
// cluster IP and node port, which the processor sanitized away and the applied-state cache
// keeps per object): the destination apiserver takes the update and re-allocates nothing.
TEST_F(KubesyncPipelineTest, AServiceUpdateKeepsTheClusterIPAndNodePortTheDestinationAllocated) {
  const std::string ns = "al-shop";
  CreateNamespace(*source_client_, ns, {{"sync", "true"}});
  CreateNamespace(*destination_client_, ns);
  StartLiveSync("allocated", SampleSpecConfig(kActiveActive));
  json service = Service(ns, "front");
  service["spec"]["type"] = "NodePort";
  source_client_->Create(kServices, ns, service);
  json first;
  te::WaitFor(
      [&] {
        const std::optional<json> got = destination_client_->GetIfExists(kServices, ns, "front");
        if (got) first = *got;
        return got.has_value();
      },
      kEventually, "the Service replicated", kComparePoll);
  const std::string cluster_ip = first["spec"]["clusterIP"];
  const json node_port = first["spec"]["ports"][0]["nodePort"];
  ASSERT_FALSE(cluster_ip.empty());
  ASSERT_TRUE(node_port.is_number());

  source_client_->Patch(kServices, ns, "front", kube::PatchType::kMergePatch,
                        R"({"metadata":{"labels":{"rev":"2"}}})");
  te::WaitFor(
      [&] {
        return destination_client_->Get(kServices, ns, "front")["metadata"]["labels"].value("rev", "") == "2";
      },
      kEventually, "the Service's update replicated", kComparePoll);
  const json updated = destination_client_->Get(kServices, ns, "front");
  EXPECT_EQ(updated["spec"]["clusterIP"], cluster_ip);
  EXPECT_EQ(updated["spec"]["ports"][0]["nodePort"], node_port);
}

TEST_F(KubesyncPipelineTest, LogLinesAreJsonWithTheManualsFieldsAndMessages) {
  const std::string ns = "lg-shop";
  CreateNamespace(*source_client_, ns, {{"sync", "true"}});
  CreateNamespace(*destination_client_, ns);
  LiveSync& ls = StartLiveSync("logs", SampleSpecConfig(kActivePassive));
  ts::KubesyncProcess& listener = ls.pipeline->operator[]("events-listener");
  ts::KubesyncProcess& synchronizer = ls.pipeline->operator[]("synchronizer");
  // Objects of the initial list are published without an "object read from cluster"
  // line (they are not events): create only once the listener watches.
  te::WaitFor([&] { return LogHas(listener, "listed objects in cluster", {{"resource", "apps/v1/deployments"}}); },
              kEventually, "the listener's initial list of deployments", kComparePoll);
  source_client_->Create(kDeployments, ns, Deployment(ns, "web", 1));
  te::WaitFor([&] { return destination_client_->GetIfExists(kDeployments, ns, "web").has_value(); }, kEventually,
              "created at the destination", kComparePoll);
  Relabel(kDeployments, ns, "web", "2");
  te::WaitFor([&] { return destination_client_->Get(kDeployments, ns, "web")["metadata"]["labels"].contains("rev"); },
              kEventually, "updated at the destination", kComparePoll);
  source_client_->Delete(kDeployments, ns, "web");
  te::WaitFor([&] { return !destination_client_->GetIfExists(kDeployments, ns, "web").has_value(); }, kEventually,
              "deleted at the destination", kComparePoll);

  for (const char* type : {"create", "update", "delete"}) {
    EXPECT_TRUE(LogHas(listener, "object read from cluster",
                       {{"event/type", type}, {"process/id", "eventslistener"}, {"sourceObject/name", "web"},
                        {"sourceObject/apiGroup", "apps"}, {"sourceObject/resource", "deployments"},
                        {"sourceCluster/name", "cluster-1"}}))
        << type;
  }
  EXPECT_TRUE(LogHas(listener, "object read from cluster",
                     {{"event/type", "update"}, {"oldSourceObject/name", "web"}}));
  for (const char* msg : {"object created in cluster", "object updated in cluster", "object deleted in cluster"}) {
    EXPECT_TRUE(LogHas(synchronizer, msg,
                       {{"level", "info"}, {"process/id", "synchronizer"}, {"destinationCluster/name", "cluster-2"},
                        {"destinationObject/name", "web"}, {"sourceObject/name", "web"}}))
        << msg;
  }
  // The line before each write is debug (the outcome's info line carries the same
  // fields): one line per replicated object at info, not two.
  for (const char* msg : {"creating object in cluster", "updating object in cluster", "deleting object in cluster"}) {
    EXPECT_FALSE(LogHas(synchronizer, msg)) << msg;
  }
  // Every line of every component is one JSON object with the manual's fields; the
  // manual's `jq 'select(.sourceCluster != null)'` finds the listener's reads, and
  // sourceCluster/destinationCluster only appear where the manual says they may.
  const std::set<std::string> catalogue = {
      "object read from cluster", "object uploaded in bucket", "object deleted from bucket",
      "creating object in cluster", "object created in cluster", "updating object in cluster",
      "object updated in cluster", "deleting object in cluster", "object deleted in cluster",
      "event skipped", "pruning object from destination", "listing objects in cluster",
      "listed objects in cluster", "error creating object in cluster", "error updating object in cluster",
      "error deleting object in cluster", "reading object from cluster", "object not found in cluster"};
  for (const char* name : {"events-listener", "processor", "synchronizer", "reconciler"}) {
    ts::KubesyncProcess& component = ls.pipeline->operator[](name);
    const std::vector<json> lines = component.LogLines();
    ASSERT_FALSE(lines.empty()) << name;
    int with_source_cluster = 0;
    for (const json& line : lines) {
      ASSERT_FALSE(line.contains("unparsed")) << name << ": " << line;
      for (const char* key : {"level", "timestamp", "msg", "process"}) EXPECT_TRUE(line.contains(key)) << line;
      EXPECT_TRUE(line["process"].contains("id")) << line;
      if (line.contains("sourceObject") || line.contains("destinationObject")) {
        EXPECT_TRUE(catalogue.contains(line.value("msg", ""))) << name << ": " << line;
      }
      with_source_cluster += line.contains("sourceCluster");
      if (std::string(name) == "synchronizer") {
        EXPECT_FALSE(line.contains("sourceCluster")) << line;
      }
      if (std::string(name) == "events-listener" || std::string(name) == "processor") {
        EXPECT_FALSE(line.contains("destinationCluster")) << line;
      }
    }
    if (std::string(name) == "events-listener") {
      EXPECT_GT(with_source_cluster, 0);
    }
  }
  // The consumers name themselves (manual 6.2.4: process.consumerID).
  for (const char* name : {"processor", "synchronizer"}) {
    const std::vector<json> lines = ls.pipeline->operator[](name).LogLines();
    ASSERT_FALSE(lines.empty());
    EXPECT_THAT(lines.front()["process"].value("consumerID", ""), ::testing::StartsWith(std::string(name) + "-"));
  }
}

}  // namespace
}  // namespace ro::kubesync

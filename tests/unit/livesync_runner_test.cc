// The component runners' shared rendering (kubesync/runner): which parts a
// LiveSynchronization runs, the kubesync configuration file, the Deployments runner's
// objects, the semantic comparison that keeps it from rewriting unchanged objects, and
// the local runner's restart backoff.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "ro/kubesync/kubesync_config.h"
#include "ro/kubesync/runner/deployments_runner.h"
#include "ro/plugins/bucket_encryption.h"
#include "ro/kubesync/runner/pipeline_plan.h"
#include "ro/kubesync/runner/process_supervisor.h"
#include "ro/kubesync/runner/semantic_compare.h"
#include "ro/plugins/kubernetes/live_sync_config.h"

namespace {

using nlohmann::json;
namespace runner = ro::kubesync::runner;
using runner::PipelinePart;
using std::chrono::milliseconds;

json SpecConfig() {
  return json::parse(R"({
    "sourceName": "cluster-1", "destinationName": "cluster-2",
    "observability": {"enabled": true, "interval": "45s"},
    "components": {
      "processor": {"logLevel": "debug", "replicas": 3, "concurrentTasks": 16,
                    "imagePullPolicy": "Always",
                    "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}}},
      "nats": {"logLevel": "debug"}
    },
    "replication": {"resources": [{"group": "apps", "version": "v1", "resource": "deployments"}]}
  })");
}

runner::PipelineInputs Inputs(const json& spec_config, bool suspended = false, bool bucket = false) {
  runner::PipelineInputs in;
  in.live_synchronization = {"active-passive", "dr", "ls-uid", "10"};
  in.spec_config = std::make_shared<const json>(spec_config);
  in.source_cluster = {"cluster-1", "dr", "c1-uid", "11"};
  in.destination_cluster = {"cluster-2", "dr", "c2-uid", "12"};
  in.source_kubeconfig = "source kubeconfig";
  in.destination_kubeconfig = "destination kubeconfig";
  in.suspended = suspended;
  if (bucket) {
    runner::BucketInputs b;
    b.identity = {"backups", "dr", "b-uid", "13"};
    b.endpoint = "127.0.0.1:9000";
    b.bucket_name = "dr-originals";
    b.access_key_id = "AKIA";
    b.secret_access_key = "SECRET";
    in.bucket = b;
  }
  return in;
}

runner::PipelinePlan Plan(const json& spec_config, bool suspended = false, bool bucket = false) {
  json config = spec_config;
  if (bucket) config["bucketName"] = "backups";
  return runner::PlanPipeline(Inputs(config, suspended, bucket), ro::plugins::kubernetes::ParseLiveSyncConfig(config));
}

std::map<std::string, json> ObjectsByKindAndName(const runner::PipelinePlan& plan) {
  std::map<std::string, json> objects;
  for (const auto& rendered : runner::RenderPipelineObjects(plan, runner::DeploymentsRunnerOptions{})) {
    objects[rendered.object["kind"].get<std::string>() + "/" + rendered.object["metadata"]["name"].get<std::string>()] =
        rendered.object;
  }
  return objects;
}

json ContainerOf(const json& deployment) { return deployment["spec"]["template"]["spec"]["containers"][0]; }

std::string Base64Decode(const std::string& text) {
  static const std::string kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  int value = 0;
  int bits = -8;
  for (char c : text) {
    if (c == '=') break;
    value = (value << 6) + static_cast<int>(kAlphabet.find(c));
    bits += 6;
    if (bits >= 0) {
      out.push_back(static_cast<char>((value >> bits) & 0xFF));
      bits -= 8;
    }
  }
  return out;
}

TEST(LiveSyncPlanTest, RunsServersPipelineAndMetricsExporterWithTheirSettings) {
  const runner::PipelinePlan plan = Plan(SpecConfig());
  ASSERT_EQ(plan.parts.size(), 7u);
  EXPECT_EQ(plan.parts.front().part, PipelinePart::kNats);
  EXPECT_EQ(plan.parts.back().part, PipelinePart::kMetricsExporter);
  EXPECT_EQ(plan.Find(PipelinePart::kProcessor)->replicas, 3);
  EXPECT_EQ(plan.Find(PipelinePart::kProcessor)->settings.image_pull_policy, "Always");
  EXPECT_EQ(plan.Find(PipelinePart::kSynchronizer)->replicas, 1);
  EXPECT_EQ(plan.Find(PipelinePart::kNats)->replicas, 1) << "a single NATS server by default";
  EXPECT_EQ(plan.Find(PipelinePart::kRedis)->replicas, 1);
}

TEST(LiveSyncPlanTest, NatsReplicasMakeAJetStreamClusterWhoseStreamHasAsManyReplicas) {
  json config = SpecConfig();
  config["components"]["nats"]["replicas"] = 3;
  const runner::PipelinePlan plan = Plan(config);
  EXPECT_EQ(plan.Find(PipelinePart::kNats)->replicas, 3);
  const runner::Placement placement{"/etc/kubesync", "nats://a:4222,nats://b:4222", "r:6379", "n", "r"};
  const ro::kubesync::KubesyncConfig file = runner::ConfigFor(plan, placement);
  EXPECT_EQ(file.nats_replicas, 3);
  EXPECT_EQ(file.nats_url, "nats://a:4222,nats://b:4222");
  EXPECT_EQ(ro::kubesync::KubesyncConfigFromJson(ro::kubesync::ToJson(file)).nats_replicas, 3);
  EXPECT_EQ(runner::ConfigFor(Plan(SpecConfig()), placement).nats_replicas, 1);
}

TEST(LiveSyncPlanTest, WithoutObservabilityThereIsNoMetricsExporter) {
  json config = SpecConfig();
  config["observability"]["enabled"] = false;
  EXPECT_EQ(Plan(config).Find(PipelinePart::kMetricsExporter), nullptr);
}

TEST(LiveSyncPlanTest, SuspendStopsOnlyThePipelineComponents) {
  const runner::PipelinePlan plan = Plan(SpecConfig(), /*suspended=*/true);
  for (const runner::PartPlan& part : plan.parts) {
    if (runner::IsPipelineComponent(part.part)) {
      EXPECT_EQ(part.replicas, 0) << runner::PartName(part.part);
    } else {
      EXPECT_GE(part.replicas, 1) << runner::PartName(part.part) << " keeps running while suspended";
    }
  }
}

TEST(LiveSyncPlanTest, ConfigFileNamesFilesAndAddressesButHoldsNoSecret) {
  runner::PipelinePlan plan = Plan(SpecConfig(), false, /*bucket=*/true);
  plan.inputs.generation = 6;
  const runner::Placement placement{"/etc/kubesync", "nats://x-nats:4222", "x-redis:6379", "x-nats", "x-redis"};
  json file = ro::kubesync::ToJson(runner::ConfigFor(plan, placement));
  EXPECT_EQ(file["sourceCluster"]["kubeconfigPath"], "/etc/kubesync/source-kubeconfig.yaml");
  EXPECT_EQ(file["destinationCluster"]["kubeconfigPath"], "/etc/kubesync/destination-kubeconfig.yaml");
  EXPECT_EQ(file["bucket"]["credentialsPath"], "/etc/kubesync");
  EXPECT_EQ(file["bucket"]["bucketName"], "dr-originals");
  EXPECT_EQ(file["natsUrl"], "nats://x-nats:4222");
  EXPECT_EQ(file["redisAddr"], "x-redis:6379");
  EXPECT_EQ(file["config"], *plan.inputs.spec_config) << "spec.config is copied verbatim";
  EXPECT_EQ(file["liveSynchronization"]["generation"], 6) << "what the components stamp on their messages";
  EXPECT_EQ(file.dump().find("SECRET"), std::string::npos);

  std::map<std::string, std::string> files;
  for (auto& [name, content] : runner::PipelineFiles(plan, placement)) files[name] = content;
  EXPECT_EQ(files.at("source-kubeconfig.yaml"), "source kubeconfig");
  EXPECT_EQ(files.at("accessKeyID"), "AKIA");
  EXPECT_EQ(files.at("secretAccessKey"), "SECRET");
  // The file says which fingerprint it belongs to (a pod compares it with its
  // KUBESYNC_CONFIG_HASH before it starts).
  json written = json::parse(files.at("config.json"));
  EXPECT_EQ(written["configHash"], runner::ConfigFingerprint(plan, placement));
  written.erase("configHash");
  EXPECT_EQ(written, file);
}

TEST(LiveSyncPlanTest, FingerprintIgnoresAssetResourceVersionsButNotCredentials) {
  const runner::Placement placement{"/etc/kubesync", "nats://n:4222", "r:6379", "n", "r"};
  runner::PipelinePlan plan = Plan(SpecConfig());
  const std::string before = runner::ConfigFingerprint(plan, placement);
  EXPECT_EQ(before.size(), 16u);
  plan.inputs.source_cluster.resource_version = "999";
  EXPECT_EQ(runner::ConfigFingerprint(plan, placement), before) << "a cluster's status write must not restart pods";
  plan.inputs.source_kubeconfig = "rotated kubeconfig";
  EXPECT_NE(runner::ConfigFingerprint(plan, placement), before);
}

// The Bucket's encryption settings reach the processor: SSE in the configuration file,
// the keys in their own file (never in config.json), read back into the same cipher; a
// rotated key changes the fingerprint (the components restart with it).
TEST(LiveSyncPlanTest, BucketEncryptionKeysReachTheComponentsAndARotationRestartsThem) {
  runner::PipelinePlan plan = Plan(SpecConfig(), false, /*bucket=*/true);
  const std::string key_1(32, '1');
  plan.inputs.bucket->server_side_encryption = "AES256";
  plan.inputs.bucket->encryption_key_name = "k1";
  plan.inputs.bucket->encryption_keys = {{"k1", key_1}};
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("ro-unit-bucketenc-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const runner::Placement placement{dir.string(), "nats://n:4222", "r:6379", "n", "r"};
  const ro::kubesync::KubesyncConfig config = runner::ConfigFor(plan, placement);
  ASSERT_TRUE(config.bucket);
  EXPECT_EQ(config.bucket->server_side_encryption, "AES256");
  EXPECT_EQ(config.bucket->encryption_keys_path, (dir / "bucketEncryptionKeys.json").string());
  for (auto& [name, content] : runner::PipelineFiles(plan, placement)) {
    if (name == "config.json") {
      EXPECT_EQ(content.find("31313131"), std::string::npos) << "a key in config.json";
    }
    std::ofstream(dir / name, std::ios::binary) << content;
  }
  const ro::plugins::S3Config s3 = ro::kubesync::BucketS3Config(*config.bucket);
  std::filesystem::remove_all(dir);
  ASSERT_NE(s3.cipher, nullptr);
  EXPECT_EQ(s3.server_side_encryption, "AES256");
  EXPECT_EQ(s3.cipher->write_key_id(), ro::plugins::EnvelopeKeyIdHex(key_1));
  EXPECT_EQ(s3.cipher->Open("p", ro::plugins::BucketCipher(key_1).Seal("p", "original")), "original");

  const std::string before = runner::ConfigFingerprint(plan, placement);
  plan.inputs.bucket->encryption_keys["k2"] = std::string(32, '2');
  plan.inputs.bucket->encryption_key_name = "k2";
  EXPECT_NE(runner::ConfigFingerprint(plan, placement), before);
}

TEST(LiveSyncDeploymentsTest, RendersTheDocumentedObjectsOwnedByTheLiveSynchronization) {
  const auto objects = ObjectsByKindAndName(Plan(SpecConfig()));
  for (const char* name :
       {"Secret/active-passive-kubesync", "Service/active-passive-nats", "Service/active-passive-redis",
        "Service/active-passive-metrics", "Deployment/active-passive-nats", "Deployment/active-passive-redis",
        "Deployment/active-passive-eventslistener", "Deployment/active-passive-processor",
        "Deployment/active-passive-synchronizer", "Deployment/active-passive-reconciler",
        "Deployment/active-passive-metricsexporter"}) {
    ASSERT_TRUE(objects.contains(name)) << name;
    const json& metadata = objects.at(name)["metadata"];
    EXPECT_EQ(metadata["namespace"], "dr") << name;
    ASSERT_EQ(metadata["ownerReferences"].size(), 1u) << name;
    const json& owner = metadata["ownerReferences"][0];
    EXPECT_EQ(owner["kind"], "LiveSynchronization");
    EXPECT_EQ(owner["apiVersion"], "automation.astronetes.io/v1alpha1");
    EXPECT_EQ(owner["name"], "active-passive");
    EXPECT_EQ(owner["uid"], "ls-uid");
    EXPECT_EQ(owner["controller"], true);
  }
  EXPECT_EQ(objects.size(), 11u);
}

TEST(LiveSyncDeploymentsTest, HonoursComponentSettings) {
  const auto objects = ObjectsByKindAndName(Plan(SpecConfig()));
  const json& processor = objects.at("Deployment/active-passive-processor");
  EXPECT_EQ(processor["spec"]["replicas"], 3);
  json container = ContainerOf(processor);
  EXPECT_EQ(container["image"], runner::DeploymentsRunnerOptions{}.kubesync_image);
  EXPECT_EQ(container["imagePullPolicy"], "Always");
  EXPECT_EQ(container["resources"]["limits"]["cpu"], "500m");
  EXPECT_EQ(container["args"][0], "processor");
  const json& args = container["args"];
  const auto level = std::find(args.begin(), args.end(), "--log-level");
  ASSERT_NE(level, args.end());
  EXPECT_EQ(*(level + 1), "debug");
  EXPECT_EQ(ContainerOf(objects.at("Deployment/active-passive-synchronizer"))["imagePullPolicy"], "IfNotPresent");
  EXPECT_EQ(objects.at("Deployment/active-passive-nats")["spec"]["replicas"], 1);
}

TEST(LiveSyncDeploymentsTest, ANatsClusterIsAStatefulSetWhoseMembersFindEachOtherThroughAHeadlessService) {
  json config = SpecConfig();
  config["components"]["nats"]["replicas"] = 3;
  const auto objects = ObjectsByKindAndName(Plan(config));
  EXPECT_FALSE(objects.contains("Deployment/active-passive-nats"));
  ASSERT_TRUE(objects.contains("StatefulSet/active-passive-nats"));
  const json& nats = objects.at("StatefulSet/active-passive-nats");
  EXPECT_EQ(nats["spec"]["replicas"], 3);
  EXPECT_EQ(nats["spec"]["serviceName"], "active-passive-nats-routes");
  EXPECT_EQ(nats["spec"]["podManagementPolicy"], "Parallel");
  EXPECT_EQ(nats["metadata"]["ownerReferences"][0]["name"], "active-passive");
  const json container = ContainerOf(nats);
  EXPECT_EQ(container["env"][0]["name"], "POD_NAME");
  EXPECT_EQ(container["env"][0]["valueFrom"]["fieldRef"]["fieldPath"], "metadata.name");
  EXPECT_EQ(container["ports"][2], json({{"name", "routes"}, {"containerPort", 6222}}));
  // Without credentials (security off) the routes are flags; server name = pod name.
  const std::string args = container["args"].dump();
  EXPECT_NE(args.find(R"x("--name","$(POD_NAME)")x"), std::string::npos) << args;
  EXPECT_NE(args.find("nats://active-passive-nats-0.active-passive-nats-routes.dr.svc:6222,"
                      "nats://active-passive-nats-1.active-passive-nats-routes.dr.svc:6222,"
                      "nats://active-passive-nats-2.active-passive-nats-routes.dr.svc:6222"),
            std::string::npos)
      << args;
  ASSERT_TRUE(objects.contains("Service/active-passive-nats-routes"));
  const json& routes = objects.at("Service/active-passive-nats-routes");
  EXPECT_EQ(routes["spec"]["clusterIP"], "None");
  EXPECT_EQ(routes["spec"]["publishNotReadyAddresses"], true);
  EXPECT_EQ(routes["spec"]["ports"][0]["port"], 6222);
  // Clients keep using the Service of the cluster (and learn the members from it).
  EXPECT_TRUE(objects.contains("Service/active-passive-nats"));
  const json file = json::parse(Base64Decode(objects.at("Secret/active-passive-kubesync")["data"]["config.json"]));
  EXPECT_EQ(file["natsUrl"], "nats://active-passive-nats:4222");
  EXPECT_EQ(file["natsReplicas"], 3);
}

TEST(LiveSyncDeploymentsTest, PodsRunWithTheOperatorsSecuritySettings) {
  const auto objects = ObjectsByKindAndName(Plan(SpecConfig()));
  for (const auto& [name, object] : objects) {
    if (object["kind"] != "Deployment" && object["kind"] != "StatefulSet") continue;
    const json& pod = object["spec"]["template"]["spec"];
    EXPECT_EQ(pod["securityContext"]["runAsNonRoot"], true) << name;
    EXPECT_EQ(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault") << name;
    json security = ContainerOf(object)["securityContext"];
    EXPECT_EQ(security["allowPrivilegeEscalation"], false) << name;
    EXPECT_EQ(security["readOnlyRootFilesystem"], true) << name;
    EXPECT_EQ(security["capabilities"]["drop"], json::array({"ALL"})) << name;
  }
}

TEST(LiveSyncDeploymentsTest, ComponentsMountTheSecretAndRollWhenTheConfigurationChanges) {
  runner::PipelinePlan plan = Plan(SpecConfig(), false, /*bucket=*/true);
  auto objects = ObjectsByKindAndName(plan);
  const json& secret = objects.at("Secret/active-passive-kubesync");
  EXPECT_EQ(Base64Decode(secret["data"]["secretAccessKey"]), "SECRET");
  json config = json::parse(Base64Decode(secret["data"]["config.json"]));
  EXPECT_EQ(config["natsUrl"], "nats://active-passive-nats:4222");
  EXPECT_EQ(config["redisAddr"], "active-passive-redis:6379");

  const json& listener = objects.at("Deployment/active-passive-eventslistener");
  EXPECT_EQ(listener["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"], "active-passive-kubesync");
  const std::string hash = listener["spec"]["template"]["metadata"]["annotations"]["kubesync.astronetes.io/config-hash"];
  // The pod is told which configuration it was made for, and the file says which it is:
  // a pod handed a stale copy of the Secret waits (WaitForConfig).
  std::string env_hash;
  for (const json& env : listener["spec"]["template"]["spec"]["containers"][0]["env"]) {
    if (env["name"] == "KUBESYNC_CONFIG_HASH") env_hash = env["value"];
  }
  EXPECT_EQ(env_hash, hash);
  EXPECT_EQ(config["configHash"], hash);
  plan.inputs.destination_kubeconfig = "another";
  objects = ObjectsByKindAndName(plan);
  EXPECT_NE(objects.at("Deployment/active-passive-eventslistener")["spec"]["template"]["metadata"]["annotations"]
                   ["kubesync.astronetes.io/config-hash"],
            hash);
}

TEST(LiveSyncDeploymentsTest, MetricsExporterIsScrapedAtTheObservabilityInterval) {
  const auto objects = ObjectsByKindAndName(Plan(SpecConfig()));
  const json& service = objects.at("Service/active-passive-metrics");
  EXPECT_EQ(service["metadata"]["annotations"]["prometheus.io/scrape"], "true");
  EXPECT_EQ(service["metadata"]["annotations"]["prometheus.io/interval"], "45s");
  EXPECT_EQ(service["spec"]["ports"][0]["port"], 8080);
  const json& exporter = objects.at("Deployment/active-passive-metricsexporter");
  EXPECT_EQ(exporter["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"], "8080");
}

TEST(LiveSyncDeploymentsTest, ComponentStatusComesFromTheDeployment) {
  json deployment = json::parse(R"({"metadata": {"generation": 2}, "spec": {"replicas": 2},
      "status": {"observedGeneration": 2, "readyReplicas": 1,
                 "conditions": [{"type": "Available", "status": "False", "message": "Deployment does not have minimum availability."}]}})");
  runner::ComponentStatus status = runner::DeploymentComponentStatus(PipelinePart::kProcessor, deployment);
  EXPECT_EQ(status.name, "processor");
  EXPECT_FALSE(status.ready);
  EXPECT_EQ(status.replicas, 2);
  EXPECT_EQ(status.ready_replicas, 1);
  EXPECT_EQ(status.message, "Deployment does not have minimum availability.");

  json scaled_down = json::parse(R"({"metadata": {"generation": 3}, "spec": {"replicas": 0},
      "status": {"observedGeneration": 3}})");
  EXPECT_TRUE(runner::DeploymentComponentStatus(PipelinePart::kProcessor, scaled_down).ready);
}

TEST(SemanticCompareTest, ServerDefaultsAndCanonicalQuantitiesAreNotDifferences) {
  json desired = json::parse(R"({"spec": {"replicas": 1, "template": {"spec": {"containers": [
      {"name": "c", "ports": [{"containerPort": 8081}], "resources": {"limits": {"cpu": "0.5", "memory": "1024Mi"}},
       "volumeMounts": []}]}}}})");
  json actual = json::parse(R"({"metadata": {"uid": "x"}, "spec": {"replicas": 1, "progressDeadlineSeconds": 600,
      "template": {"spec": {"dnsPolicy": "ClusterFirst", "containers": [
      {"name": "c", "terminationMessagePath": "/dev/termination-log",
       "ports": [{"containerPort": 8081, "protocol": "TCP"}], "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}}}]}}}})");
  EXPECT_TRUE(runner::IsSemanticSubset(desired, actual));
}

TEST(SemanticCompareTest, ChangedValuesAndListLengthsAreDifferences) {
  json actual = json::parse(R"({"spec": {"replicas": 1, "args": ["a", "b"]}})");
  EXPECT_FALSE(runner::IsSemanticSubset(json::parse(R"({"spec": {"replicas": 0}})"), actual));
  EXPECT_FALSE(runner::IsSemanticSubset(json::parse(R"({"spec": {"args": ["a"]}})"), actual));
  EXPECT_FALSE(runner::IsSemanticSubset(json::parse(R"({"spec": {"missing": "x"}})"), actual));
  EXPECT_FALSE(runner::IsSemanticSubset(json::parse(R"({"resources": {"limits": {"cpu": "1"}}})"),
                                        json::parse(R"({"resources": {"limits": {"cpu": "999m"}}})")));
}

TEST(SemanticCompareTest, ParsesKubernetesQuantities) {
  EXPECT_EQ(runner::ParseQuantity("500m"), 0.5L);
  EXPECT_EQ(runner::ParseQuantity("1Gi"), 1073741824.0L);
  EXPECT_EQ(runner::ParseQuantity("2k"), 2000.0L);
  EXPECT_EQ(runner::ParseQuantity("1e3"), 1000.0L);
  EXPECT_EQ(runner::ParseQuantity("1E"), 1e18L);
  EXPECT_EQ(runner::ParseQuantity("12"), 12.0L);
  EXPECT_FALSE(runner::ParseQuantity("1x"));
  EXPECT_FALSE(runner::ParseQuantity("m"));
  EXPECT_FALSE(runner::ParseQuantity(""));
}

TEST(ProcessSupervisorTest, RestartDelayDoublesUpToItsCap) {
  const milliseconds initial{1000};
  const milliseconds max{30000};
  EXPECT_EQ(runner::RestartDelay(0, initial, max), milliseconds{0});
  EXPECT_EQ(runner::RestartDelay(1, initial, max), milliseconds{1000});
  EXPECT_EQ(runner::RestartDelay(2, initial, max), milliseconds{2000});
  EXPECT_EQ(runner::RestartDelay(5, initial, max), milliseconds{16000});
  EXPECT_EQ(runner::RestartDelay(6, initial, max), milliseconds{30000});
  EXPECT_EQ(runner::RestartDelay(100, initial, max), milliseconds{30000});
}

}  // namespace

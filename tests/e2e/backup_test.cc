// Backup (API reference 9.2; docs/backup.md) against real servers: the
// synchronization-controller and kubernetescluster-controller binaries of the build, a
// "source" kube-apiserver reached through a KubernetesCluster, and an s3rver Bucket.
// What the bucket holds is read back with another S3 client (botocore, Debian's
// python3-boto3), and every object is checked against the index's SHA-256.
// Bad input: a missing Bucket (Pending, Event), wrong access keys, an unreachable
// cluster, a missing namespace, an invalid config (Failed, with the reason).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include "ro/common/digest.h"
#include "ro/kube/client.h"
#include "ro/kube/config.h"
#include "ro/kube/errors.h"
#include "ro/plugins/zookeeper_client.h"
#include "ro/testenv/testenv.h"
#include "ro/testsupport/controller_process.h"

namespace {

namespace fs = std::filesystem;
namespace te = ro::testenv;
using nlohmann::json;
using ro::kube::DynamicClient;
using ro::kube::GroupVersionResource;
using ro::testsupport::ControllerProcess;
using ::testing::HasSubstr;

constexpr std::chrono::seconds kTimeout{90};
constexpr std::chrono::milliseconds kPoll{200};
constexpr const char* kNamespace = "dr";
const GroupVersionResource kBackups{"automation.astronetes.io", "v1alpha1", "backups"};

// Runs a Python script with botocore against the s3rver: argv[1..3] are the endpoint and
// keys, argv[4] the bucket, the rest the script's own.
std::string Boto3(const te::S3Server& s3, const std::string& body, const std::vector<std::string>& args) {
  const std::string script =
      "import sys, json, hashlib, boto3\n"
      "from botocore.config import Config\n"
      "c = boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id=sys.argv[2],\n"
      "                 aws_secret_access_key=sys.argv[3], region_name='us-east-1',\n"
      "                 config=Config(s3={'addressing_style': 'path'}))\n"
      "bucket = sys.argv[4]\n" + body;
  std::vector<std::string> argv = {"/usr/bin/python3", "-c", script, "http://" + s3.endpoint(), s3.access_key(),
                                   s3.secret_key()};
  argv.insert(argv.end(), args.begin(), args.end());
  return te::RunCommand(argv).out;
}

class BackupTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    dir_ = std::make_unique<te::TempDir>("backup");
    te::KubeClusterOptions operator_options;
    operator_options.name = "operator";
    operator_ = std::make_unique<te::KubeCluster>(operator_options);
    te::KubeClusterOptions source_options;
    source_options.name = "source";
    source_options.with_controller_manager = true;  // namespace deletion (drill cleanup)
    source_ = std::make_unique<te::KubeCluster>(source_options);
    s3_ = std::make_unique<te::S3Server>();
    s3_->CreateBucket("backups");
    local_ = std::make_unique<DynamicClient>(ro::kube::LoadKubeconfigFile(operator_->kubeconfig_path().string()));

    operator_->Kubectl({"apply", "-f", (te::SourceDir() / "deploy/crds/all.yaml").string()});
    operator_->Kubectl({"wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"});
    operator_->Kubectl({"create", "namespace", kNamespace});
    Apply({{"apiVersion", "v1"},
           {"kind", "Secret"},
           {"metadata", {{"name", "cluster-1-kubeconfig"}, {"namespace", kNamespace}}},
           {"stringData", {{"kubeconfig.yaml", te::ReadFile(source_->kubeconfig_path())}}}});
    Apply({{"apiVersion", "assets.astronetes.io/v1alpha1"},
           {"kind", "KubernetesCluster"},
           {"metadata", {{"name", "cluster-1"}, {"namespace", kNamespace}}},
           {"spec", {{"secretName", "cluster-1-kubeconfig"}}}});
    ApplyAccessKeys("bucket-credentials", s3_->access_key(), s3_->secret_key());
    Apply(Bucket("backups", "bucket-credentials"));

    te::WriteFile(dir_->path() / "license", "licensee: E2E Tests\nexpiresAt: 2099-01-01T00:00:00Z\n");
    clusters_controller_ = Start("kubernetescluster-controller", {});
    sync_controller_ = Start("synchronization-controller", {"--pending-recheck=1s", "--retry-interval=2s"});
    // Restores are Tasks run by TaskRuns.
    task_controller_ = Start("task-controller", {"--recheck-interval=2s"});
    taskrun_controller_ = Start("taskrun-controller", {"--pending-recheck=1s"});
  }

  static void TearDownTestSuite() {
    taskrun_controller_.reset();
    task_controller_.reset();
    sync_controller_.reset();
    clusters_controller_.reset();
    local_.reset();
    s3_.reset();
    source_.reset();
    operator_.reset();
    dir_.reset();
  }

  static std::unique_ptr<ControllerProcess> Start(const std::string& binary, std::vector<std::string> args) {
    ro::testsupport::ControllerProcessOptions options;
    options.binary = binary;
    options.kubeconfig = operator_->kubeconfig_path();
    options.dir = dir_->path();
    options.license_file = dir_->path() / "license";
    options.args = std::move(args);
    return std::make_unique<ControllerProcess>(std::move(options));
  }

  static void Apply(const json& object) { operator_->Kubectl({"apply", "-f", "-"}, object.dump()); }
  // Secret `name` with a Bucket's access keys (the keys a Bucket's secretName points to).
  static void ApplyAccessKeys(const std::string& name, const std::string& access_key, const std::string& secret_key) {
    Apply({{"apiVersion", "v1"},
           {"kind", "Secret"},
           {"metadata", {{"name", name}, {"namespace", kNamespace}}},
           {"stringData", {{"accessKeyID", access_key}, {"secretAccessKey", secret_key}}}});
  }
  static void ApplySource(const json& object) { source_->Kubectl({"apply", "-f", "-"}, object.dump()); }

  static json Bucket(const std::string& name, const std::string& secret) {
    return {{"apiVersion", "assets.astronetes.io/v1alpha1"},
            {"kind", "Bucket"},
            {"metadata", {{"name", name}, {"namespace", kNamespace}}},
            {"spec",
             {{"generic",
               {{"name", "backups"}, {"endpoint", s3_->endpoint()}, {"useSSL", false}, {"secretName", secret}}}}}};
  }

  static json Backup(const std::string& name, const std::string& cluster, const json& namespaces,
                     const std::string& bucket, const std::string& base_path = "") {
    json config = {{"source", {{"kubernetesCluster", {{"name", cluster}}}}},
                   {"destination", {{"bucket", {{"name", bucket}}}}}};
    if (!namespaces.is_null()) config["source"]["kubernetesCluster"]["namespaces"] = namespaces;
    if (!base_path.empty()) config["destination"]["bucket"]["basePath"] = base_path;
    return {{"apiVersion", "automation.astronetes.io/v1alpha1"},
            {"kind", "Backup"},
            {"metadata", {{"name", name}, {"namespace", kNamespace}}},
            {"spec", {{"plugin", "kubernetes-objects-to-bucket"}, {"config", config}}}};
  }

  static json Get(const std::string& name) {
    try {
      return local_->Get(kBackups, kNamespace, name);
    } catch (const ro::kube::ApiError& e) {
      if (ro::kube::IsNotFound(e)) return nullptr;
      throw;
    }
  }

  // Waits until Backup `name` has `phase` and Ready's reason `reason` ("" any); returns it.
  static json WaitFor(const std::string& name, const std::string& phase, const std::string& reason = "") {
    json backup;
    te::WaitFor(
        [&] {
          backup = Get(name);
          if (!backup.is_object()) return false;
          const json status = backup.value("status", json::object());
          if (status.value("phase", "") != phase) return false;
          if (reason.empty()) return true;
          for (const json& c : status.value("conditions", json::array())) {
            if (c.value("type", "") == "Ready") return c.value("reason", "") == reason;
          }
          return false;
        },
        kTimeout, "Backup " + name + " " + phase + "/" + reason + " (last: " + backup.dump() + ")", kPoll);
    return backup;
  }

  // Waits for an Event of `name` with `reason`.
  static void WaitForEvent(const std::string& name, const std::string& reason) {
    te::WaitFor(
        [&] {
          const json events = json::parse(operator_->Kubectl(
              {"-n", kNamespace, "get", "events", "--field-selector", "involvedObject.name=" + name, "-o", "json"}));
          for (const json& e : events["items"]) {
            if (e.value("reason", "") == reason) return true;
          }
          return false;
        },
        kTimeout, "Event " + reason + " on Backup " + name, kPoll);
  }

  static std::unique_ptr<te::TempDir> dir_;
  static std::unique_ptr<te::KubeCluster> operator_;
  static std::unique_ptr<te::KubeCluster> source_;
  static std::unique_ptr<te::S3Server> s3_;
  static std::unique_ptr<DynamicClient> local_;
  static std::unique_ptr<ControllerProcess> clusters_controller_;
  static std::unique_ptr<ControllerProcess> sync_controller_;
  static std::unique_ptr<ControllerProcess> task_controller_;
  static std::unique_ptr<ControllerProcess> taskrun_controller_;
};

std::unique_ptr<te::TempDir> BackupTest::dir_;
std::unique_ptr<te::KubeCluster> BackupTest::operator_;
std::unique_ptr<te::KubeCluster> BackupTest::source_;
std::unique_ptr<te::S3Server> BackupTest::s3_;
std::unique_ptr<DynamicClient> BackupTest::local_;
std::unique_ptr<ControllerProcess> BackupTest::clusters_controller_;
std::unique_ptr<ControllerProcess> BackupTest::sync_controller_;
std::unique_ptr<ControllerProcess> BackupTest::task_controller_;
std::unique_ptr<ControllerProcess> BackupTest::taskrun_controller_;

// Two namespaces of three, with a custom resource and an object a controller owns: every
// object of the two (but the owned one) is in the bucket under basePath in the
// LiveSynchronization originals' layout, sanitized, with the CRD of the custom resource,
// and the index (written last) lists each with the SHA-256 another S3 client verifies.
TEST_F(BackupTest, NamespacesOfAClusterGoToTheBucketWithAnIndexAnotherClientVerifies) {
  for (const char* ns : {"shop", "billing", "other"}) source_->Kubectl({"create", "namespace", ns});
  ApplySource(json::parse(R"({"apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
      "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}})"));
  const std::string deployment_uid = source_->Kubectl({"-n", "shop", "get", "deployment", "web", "-o", "jsonpath={.metadata.uid}"});
  // What the Deployment controller would make: owned, so not backed up.
  ApplySource(json::parse(R"({"apiVersion": "apps/v1", "kind": "ReplicaSet",
    "metadata": {"name": "web-1", "namespace": "shop",
      "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": ")" + deployment_uid +
                          R"(", "controller": true}]},
    "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
      "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}})"));
  ApplySource({{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "settings"}, {"namespace", "shop"}}},
               {"data", {{"mode", "live"}}}});
  ApplySource({{"apiVersion", "v1"}, {"kind", "Secret"}, {"metadata", {{"name", "db"}, {"namespace", "shop"}}},
               {"stringData", {{"password", "s3cr3t"}}}});
  ApplySource({{"apiVersion", "v1"}, {"kind", "Service"}, {"metadata", {{"name", "front"}, {"namespace", "shop"}}},
               {"spec", {{"selector", {{"app", "web"}}}, {"ports", {{{"port", 80}}}}}}});
  ApplySource({{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "rates"}, {"namespace", "billing"}}},
               {"data", {{"eur", "1"}}}});
  ApplySource({{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "unrelated"}, {"namespace", "other"}}}});
  ApplySource(json::parse(R"({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {"group": "example.com", "scope": "Namespaced", "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
      "versions": [{"name": "v1", "served": true, "storage": true,
        "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}})"));
  source_->Kubectl({"wait", "--for=condition=Established", "--timeout=60s", "crd/widgets.example.com"});
  ApplySource(json::parse(R"({"apiVersion": "example.com/v1", "kind": "Widget",
    "metadata": {"name": "w1", "namespace": "shop"}, "spec": {"size": 3}})"));

  Apply(Backup("shop-billing", "cluster-1", {"shop", "billing"}, "backups", "/nightly/2026-12-06/"));
  const json done = WaitFor("shop-billing", "Succeeded", "Succeeded");
  const json status = done["status"];
  EXPECT_EQ(status["basePath"], "nightly/2026-12-06");
  EXPECT_EQ(status["index"], "nightly/2026-12-06/index.json");
  EXPECT_THAT(status.value("message", ""), HasSubstr("namespaces shop, billing of KubernetesCluster cluster-1"));

  // The index, and every object it lists, as botocore reads them.
  const json check = json::parse(Boto3(*s3_, R"(
prefix = sys.argv[5]
index = json.loads(c.get_object(Bucket=bucket, Key=prefix + '/index.json')['Body'].read())
keys = sorted(o['Key'] for o in c.list_objects_v2(Bucket=bucket, Prefix=prefix + '/')['Contents'])
bad = [o['key'] for o in index['objects']
       if hashlib.sha256(c.get_object(Bucket=bucket, Key=prefix + '/' + o['key'])['Body'].read()).hexdigest() != o['sha256']]
deployment = json.loads(c.get_object(Bucket=bucket, Key=prefix + '/apps-v1-deployments/shop.web')['Body'].read())
print(json.dumps({'index': index, 'keys': keys, 'bad': bad, 'deployment': deployment}))
)", {"backups", "nightly/2026-12-06"}));
  const json& index = check["index"];
  EXPECT_EQ(check["bad"], json::array()) << "objects whose SHA-256 differs from the index";
  std::set<std::string> keys;
  for (const json& key : check["keys"]) keys.insert(key.get<std::string>());
  for (const std::string expected :
       {"v1-namespaces/shop", "v1-namespaces/billing", "apps-v1-deployments/shop.web", "v1-configmaps/shop.settings",
        "v1-secrets/shop.db", "v1-services/shop.front", "v1-configmaps/billing.rates", "example.com-v1-widgets/shop.w1",
        "apiextensions.k8s.io-v1-customresourcedefinitions/widgets.example.com", "index.json"}) {
    EXPECT_TRUE(keys.count("nightly/2026-12-06/" + expected)) << expected << " missing from " << check["keys"].dump();
  }
  for (const std::string absent : {"apps-v1-replicasets/shop.web-1", "v1-configmaps/other.unrelated", "v1-namespaces/other"}) {
    EXPECT_FALSE(keys.count("nightly/2026-12-06/" + absent)) << absent << " should not be backed up";
  }
  EXPECT_EQ(keys.size(), index["objects"].size() + 1) << "every file but the index is listed in the index";
  EXPECT_EQ(index["kind"], "BackupIndex");
  EXPECT_EQ(index["backup"]["name"], "shop-billing");
  EXPECT_EQ(index["source"]["kubernetesCluster"]["name"], "cluster-1");
  EXPECT_THAT(index["source"]["kubernetesCluster"].value("serverVersion", ""), HasSubstr("v1."));
  EXPECT_EQ(index["source"]["namespaces"], json({"billing", "shop"}));
  EXPECT_EQ(index["counts"]["objects"], status["objects"]);
  EXPECT_EQ(index["counts"]["bytes"], status["bytes"]);
  EXPECT_EQ(index["counts"]["resources"]["apps/v1/deployments"], 1);
  EXPECT_FALSE(index.value("startTime", "").empty());
  EXPECT_FALSE(index.value("completionTime", "").empty());
  // Sanitized as the LiveSynchronization originals are.
  const json& deployment = check["deployment"];
  EXPECT_EQ(deployment["spec"]["replicas"], 2);
  EXPECT_EQ(deployment["kind"], "Deployment");
  EXPECT_FALSE(deployment.contains("status"));
  EXPECT_FALSE(deployment["metadata"].contains("uid"));
  EXPECT_FALSE(deployment["metadata"].contains("resourceVersion"));
  EXPECT_FALSE(deployment["metadata"].contains("managedFields"));
  EXPECT_TRUE(sync_controller_->process().Running()) << sync_controller_->process().LogTail();
}

const GroupVersionResource kTaskRuns{"automation.astronetes.io", "v1alpha1", "taskruns"};

// Waits until TaskRun `name` finished; returns it.
json WaitForRun(DynamicClient& client, const std::string& name) {
  json run;
  te::WaitFor(
      [&] {
        run = client.Get(kTaskRuns, kNamespace, name);
        const std::string phase = run.value("status", json::object()).value("phase", "");
        return phase == "Succeeded" || phase == "Failed";
      },
      kTimeout, "TaskRun " + name + " finished (last: " + run.dump() + ")", kPoll);
  return run;
}

json RestoreRun(const std::string& name, const std::string& task, bool dry_run) {
  json run = {{"apiVersion", "automation.astronetes.io/v1alpha1"},
              {"kind", "TaskRun"},
              {"metadata", {{"name", name}, {"namespace", kNamespace}}},
              {"spec", {{"taskName", task}}}};
  if (dry_run) run["spec"]["dryRun"] = true;
  return run;
}

// Restoring a Backup through a Task (docs/backup.md "Restoring") into another cluster
// (the operator's own) under another namespace name, as a drill copy: the dry run reports
// every object as a Create in dependency order (the CRD first, the Deployment after what
// it mounts) and creates nothing; the run creates them all (the custom resource once its
// CRD is Established); a second run leaves them as they are; an object changed in the
// bucket fails on its SHA-256 and nothing else does.
TEST_F(BackupTest, ABackupIsRestoredThroughATaskWithADryRunTheDependencyOrderAndItsChecksums) {
  source_->Kubectl({"create", "namespace", "app"});
  ApplySource(json::parse(R"({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "gadgets.example.com"},
    "spec": {"group": "example.com", "scope": "Namespaced", "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
      "versions": [{"name": "v1", "served": true, "storage": true,
        "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}})"));
  source_->Kubectl({"wait", "--for=condition=Established", "--timeout=60s", "crd/gadgets.example.com"});
  ApplySource(json::parse(R"({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": "app"},
    "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "api"}},
      "template": {"metadata": {"labels": {"app": "api"}}, "spec": {"containers": [{"name": "api", "image": "busybox:1.36"}]}}}})"));
  ApplySource({{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "conf"}, {"namespace", "app"}}},
               {"data", {{"level", "debug"}}}});
  ApplySource({{"apiVersion", "v1"}, {"kind", "Secret"}, {"metadata", {{"name", "token"}, {"namespace", "app"}}},
               {"stringData", {{"value", "abc"}}}});
  ApplySource(json::parse(R"({"apiVersion": "example.com/v1", "kind": "Gadget",
    "metadata": {"name": "g1", "namespace": "app"}, "spec": {"color": "red"}})"));
  Apply(Backup("app", "cluster-1", {"app"}, "backups"));
  WaitFor("app", "Succeeded");

  Apply(json::parse(R"({"apiVersion": "automation.astronetes.io/v1alpha1", "kind": "Task",
    "metadata": {"name": "restore-app", "namespace": "dr"},
    "spec": {"plugin": "kubernetes-objects-from-backup",
      "config": {"bucketName": "backups", "basePath": "dr/app",
                 "namespaceMapping": {"app": "app-copy"}, "namespaceLabels": {"drill": "true"}}}})"));

  Apply(RestoreRun("restore-app-dry", "restore-app", true));
  const json dry = WaitForRun(*local_, "restore-app-dry");
  ASSERT_EQ(dry["status"]["phase"], "Succeeded") << dry.dump();
  EXPECT_THAT(dry["status"].value("message", ""), HasSubstr("Dry run, nothing changed: 6 objects would be restored"));
  std::vector<std::string> order;
  for (const json& entry : dry["status"]["dryRunReport"]["objects"]) {
    EXPECT_EQ(entry["action"], "Create") << entry.dump();
    order.push_back(entry["resource"].get<std::string>() + " " + entry.value("namespace", "") + "/" +
                    entry["name"].get<std::string>());
  }
  EXPECT_EQ(order, (std::vector<std::string>{
                       "apiextensions.k8s.io/v1/customresourcedefinitions /gadgets.example.com",
                       "v1/namespaces /app-copy", "v1/secrets app-copy/token", "v1/configmaps app-copy/conf",
                       "example.com/v1/gadgets app-copy/g1", "apps/v1/deployments app-copy/api"}));
  // The Secret's value (abc, YWJj) is not in the report: a TaskRun's status is no place for it.
  EXPECT_EQ(dry["status"]["dryRunReport"].dump().find("YWJj"), std::string::npos);
  EXPECT_THROW(operator_->Kubectl({"get", "namespace", "app-copy"}), te::TestEnvError) << "a dry run creates nothing";
  EXPECT_THROW(operator_->Kubectl({"get", "crd", "gadgets.example.com"}), te::TestEnvError);

  Apply(RestoreRun("restore-app-1", "restore-app", false));
  const json run = WaitForRun(*local_, "restore-app-1");
  ASSERT_EQ(run["status"]["phase"], "Succeeded") << run.dump();
  EXPECT_EQ(run["status"]["objectsPatched"], 6);
  EXPECT_EQ(operator_->Kubectl({"get", "namespace", "app-copy", "-o", "jsonpath={.metadata.labels.drill}"}), "true");
  EXPECT_EQ(operator_->Kubectl({"-n", "app-copy", "get", "configmap", "conf", "-o", "jsonpath={.data.level}"}), "debug");
  EXPECT_EQ(operator_->Kubectl({"-n", "app-copy", "get", "deployment", "api", "-o", "jsonpath={.spec.replicas}"}), "3");
  EXPECT_EQ(operator_->Kubectl({"-n", "app-copy", "get", "gadget", "g1", "-o", "jsonpath={.spec.color}"}), "red");

  Apply(RestoreRun("restore-app-2", "restore-app", false));
  const json again = WaitForRun(*local_, "restore-app-2");
  EXPECT_EQ(again["status"]["phase"], "Succeeded") << again.dump();
  EXPECT_THAT(again["status"].value("message", ""), HasSubstr("0 objects restored, 6 left as they are"));

  // A file changed in the bucket since the backup: that object fails, the rest restore.
  Boto3(*s3_, "c.put_object(Bucket=bucket, Key=sys.argv[5], Body=sys.argv[6].encode())\n",
        {"backups", "dr/app/v1-configmaps/app.conf",
         R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"conf","namespace":"app"},"data":{"level":"evil"}})"});
  Apply(json::parse(R"({"apiVersion": "automation.astronetes.io/v1alpha1", "kind": "Task",
    "metadata": {"name": "restore-app-3", "namespace": "dr"},
    "spec": {"plugin": "kubernetes-objects-from-backup",
      "config": {"bucketName": "backups", "basePath": "dr/app", "namespaceMapping": {"app": "app-third"}}}})"));
  Apply(RestoreRun("restore-app-3", "restore-app-3", false));
  const json damaged = WaitForRun(*local_, "restore-app-3");
  EXPECT_EQ(damaged["status"]["phase"], "Failed");
  EXPECT_EQ(damaged["status"]["objectsFailed"], 1);
  EXPECT_THAT(damaged["status"].value("message", ""), HasSubstr("does not match the SHA-256 of the index"));
  EXPECT_THROW(operator_->Kubectl({"-n", "app-third", "get", "configmap", "conf"}), te::TestEnvError);
  EXPECT_EQ(operator_->Kubectl({"-n", "app-third", "get", "secret", "token", "-o", "jsonpath={.data.value}"}), "YWJj");
}

// A DR drill (docs/runbook.md "Drill") with roctl, the standby in cluster-1 as a
// LiveSynchronization leaves it (Deployment at 0 replicas with kubesync's control label):
// the copy of the standby's namespace is recovered (1 replica) under another name with
// no control metadata, the measured RTO is printed, and the standby is never written;
// cleanup deletes the copy and the drill's objects, and nothing else.
TEST_F(BackupTest, ADrillRecoversACopyOfTheStandbyAndCleanupLeavesTheStandbyAsItWas) {
  source_->Kubectl({"create", "namespace", "standby-a"});
  source_->Kubectl({"label", "namespace", "standby-a", "sync=true"});
  ApplySource(json::parse(R"({"apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "standby-a",
      "labels": {"kubesync.astronetes.io/managed-by": "dr.active-passive"},
      "annotations": {"kubesync.astronetes.io/live-synchronization": "dr/active-passive"}},
    "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
      "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}})"));
  ApplySource({{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "conf"}, {"namespace", "standby-a"}}},
               {"data", {{"k", "v"}}}});
  const auto standby_versions = [&] {
    return source_->Kubectl({"-n", "standby-a", "get", "deployments,configmaps", "-o",
                             "jsonpath={range .items[*]}{.metadata.name}={.metadata.resourceVersion} {end}"});
  };
  const std::string before = standby_versions();
  // The recovery Task as the LiveSynchronization controller generates it (manual 8.2).
  Apply(json::parse(R"({"apiVersion": "automation.astronetes.io/v1alpha1", "kind": "Task",
    "metadata": {"name": "recover", "namespace": "dr"},
    "spec": {"plugin": "kubernetes-objects-transformation",
      "config": {"destinationName": "cluster-1", "resources": [
        {"identifier": {"group": "apps", "version": "v1", "resources": "deployments"},
         "patch": {"operations": [{"op": "replace", "path": "/spec/replicas", "value": 1}]},
         "filter": {"namespaceSelector": {"matchLabels": {"sync": "true"}}}}]}}})"));

  te::RunOptions no_check;
  no_check.check = false;
  no_check.timeout = std::chrono::seconds{150};
  const std::string roctl = (te::BinDir() / "roctl").string();
  const te::CommandResult run = te::RunCommand(
      {roctl, "drill", "run", "recover", "--name", "rehearsal", "--bucket", "backups", "-n", kNamespace,
       "--kubeconfig", operator_->kubeconfig_path().string(), "--timeout", "120s"},
      no_check);
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_THAT(run.out, HasSubstr("Drill RTO: "));
  EXPECT_THAT(run.out, HasSubstr("1 object patched"));
  EXPECT_EQ(source_->Kubectl({"get", "namespace", "standby-a-drill", "-o",
                              "jsonpath={.metadata.labels.automation\\.astronetes\\.io/drill}"}),
            "rehearsal");
  EXPECT_EQ(source_->Kubectl({"-n", "standby-a-drill", "get", "deployment", "web", "-o", "jsonpath={.spec.replicas}"}), "1");
  EXPECT_EQ(source_->Kubectl({"-n", "standby-a-drill", "get", "deployment", "web", "-o", "jsonpath={.metadata.labels}"}),
            "") << "the copy carries no kubesync control label";
  EXPECT_EQ(source_->Kubectl({"-n", "standby-a", "get", "deployment", "web", "-o", "jsonpath={.spec.replicas}"}), "0");
  EXPECT_EQ(standby_versions(), before) << "the drill wrote the standby";

  const te::CommandResult again = te::RunCommand(
      {roctl, "drill", "run", "recover", "--name", "rehearsal", "--bucket", "backups", "-n", kNamespace,
       "--kubeconfig", operator_->kubeconfig_path().string()},
      no_check);
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_THAT(again.err, HasSubstr("roctl drill cleanup rehearsal"));

  const te::CommandResult cleanup = te::RunCommand(
      {roctl, "drill", "cleanup", "rehearsal", "-n", kNamespace, "--kubeconfig", operator_->kubeconfig_path().string(),
       "--timeout", "120s"},
      no_check);
  ASSERT_EQ(cleanup.exit_code, 0) << cleanup.out << cleanup.err;
  EXPECT_THROW(source_->Kubectl({"get", "namespace", "standby-a-drill"}), te::TestEnvError);
  EXPECT_EQ(standby_versions(), before);
  EXPECT_THAT(operator_->Kubectl({"-n", kNamespace, "get", "tasks,taskruns,backups", "-l",
                                  "automation.astronetes.io/drill=rehearsal", "-o", "name"}),
              ::testing::IsEmpty());
  EXPECT_EQ(operator_->Kubectl({"-n", kNamespace, "get", "task", "recover", "-o", "name"}), "task.automation.astronetes.io/recover\n");
}

// A restore of a basePath with no finished backup fails BackupNotFound.
TEST_F(BackupTest, ARestoreOfAnUnfinishedBackupFailsWithBackupNotFound) {
  Apply(json::parse(R"({"apiVersion": "automation.astronetes.io/v1alpha1", "kind": "Task",
    "metadata": {"name": "restore-nothing", "namespace": "dr"},
    "spec": {"plugin": "kubernetes-objects-from-backup", "config": {"bucketName": "backups", "basePath": "no/such"}}})"));
  Apply(RestoreRun("restore-nothing", "restore-nothing", false));
  const json run = WaitForRun(*local_, "restore-nothing");
  EXPECT_EQ(run["status"]["phase"], "Failed");
  EXPECT_THAT(run["status"].value("message", ""), HasSubstr("no backup index at no/such/index.json"));
}

// A Database's tree (zookeeper-nodes-to-bucket; docs/backup.md "ZooKeeper") against two
// real ZooKeeper servers: rootPath /app with an excluded subtree and an ephemeral znode
// left out; binary data and a digest ACL kept; the bucket checked with botocore. Then the
// backup is restored through a zookeeper-nodes-from-backup Task into the other Database
// under another rootPath (its missing ancestors created): a dry run reports every znode
// as a Create and writes nothing; the run restores data and ACLs (the locked znode's
// child too, under the provisional ACL); a changed znode is left with existing: Skip and
// set back with existing: Update; a missing rootPath fails the Backup with its reason.
TEST_F(BackupTest, ADatabaseTreeGoesToTheBucketAndIsRestoredIntoAnotherDatabaseWithItsAcls) {
  te::ZooKeeperServer source_zk;
  te::ZooKeeperServer destination_zk;
  const ro::plugins::ZooKeeperDigest admin{"admin", "zk-pass"};
  const auto connect = [&](const te::ZooKeeperServer& server) {
    ro::plugins::ZooKeeperOptions options;
    options.servers = {server.connect_string()};
    options.connect_timeout = std::chrono::seconds(20);
    options.digest = admin;
    return std::make_unique<ro::plugins::ZooKeeperClient>(options);
  };
  auto source = connect(source_zk);
  auto destination = connect(destination_zk);
  const std::vector<ro::plugins::ZooKeeperAcl> locked_acl = {
      {ro::plugins::zk_perm::kAll, "digest", ro::plugins::DigestAclId(admin)},
      {ro::plugins::zk_perm::kRead, "world", "anyone"}};
  source->Create("/app", "root");
  source->Create("/app/config/db", "host=db-1", {.create_parents = true});
  source->Create("/app/binary", std::string("\0\1\2\377", 4));
  source->Create("/app/locked", "l", {}, locked_acl);
  source->Create("/app/locked/child", "c", {}, locked_acl);
  source->Create("/app/tmp/scratch", "x", {.create_parents = true});
  source->Create("/app/session", "s", {.ephemeral = true});

  Apply({{"apiVersion", "v1"},
         {"kind", "Secret"},
         {"metadata", {{"name", "zk-admin"}, {"namespace", kNamespace}}},
         {"stringData", {{"username", admin.user}, {"password", admin.password}}}});
  const auto database = [](const std::string& name, const te::ZooKeeperServer& server, bool credentials) {
    json spec = {{"zookeeper", {{"client", {{"servers", {server.connect_string()}}}}}}};
    if (credentials) {
      spec["zookeeper"]["admin"] = {{"protocol", "tcp"}, {"host", "127.0.0.1"},
                                    {"port", std::to_string(server.port())}, {"secretName", "zk-admin"}};
    }
    return json{{"apiVersion", "assets.astronetes.io/v1alpha1"},
                {"kind", "Database"},
                {"metadata", {{"name", name}, {"namespace", kNamespace}}},
                {"spec", spec}};
  };
  Apply(database("zookeeper-1", source_zk, true));
  // No credentials: the restore's own identity is world:anyone.
  Apply(database("zookeeper-2", destination_zk, false));
  const std::unique_ptr<ControllerProcess> database_controller = Start("database-controller", {"--recheck-interval=2s"});

  Apply(json::parse(R"({"apiVersion": "automation.astronetes.io/v1alpha1", "kind": "Backup",
    "metadata": {"name": "zk-nightly", "namespace": "dr"},
    "spec": {"plugin": "zookeeper-nodes-to-bucket",
      "config": {"source": {"database": {"name": "zookeeper-1", "rootPath": "/app",
                                         "excludePathRegexp": "^/app/tmp", "ignoreEphemeral": true}},
                 "destination": {"bucket": {"name": "backups", "basePath": "zk/nightly"}}}}})"));
  const json done = WaitFor("zk-nightly", "Succeeded", "Succeeded");
  EXPECT_EQ(done["status"]["objects"], 6) << done.dump();
  EXPECT_THAT(done["status"].value("message", ""), HasSubstr("6 znodes"));

  const json check = json::parse(Boto3(*s3_, R"(
prefix = sys.argv[5]
index = json.loads(c.get_object(Bucket=bucket, Key=prefix + '/index.json')['Body'].read())
keys = sorted(o['Key'] for o in c.list_objects_v2(Bucket=bucket, Prefix=prefix + '/')['Contents'])
bad = [o['key'] for o in index['objects']
       if hashlib.sha256(c.get_object(Bucket=bucket, Key=prefix + '/' + o['key'])['Body'].read()).hexdigest() != o['sha256']]
binary = json.loads(c.get_object(Bucket=bucket, Key=prefix + '/znodes/app/binary')['Body'].read())
locked = json.loads(c.get_object(Bucket=bucket, Key=prefix + '/znodes/app/locked')['Body'].read())
print(json.dumps({'index': index, 'keys': keys, 'bad': bad, 'binary': binary, 'locked': locked}))
)", {"backups", "zk/nightly"}));
  EXPECT_EQ(check["bad"], json::array());
  EXPECT_EQ(check["keys"], json({"zk/nightly/index.json", "zk/nightly/znodes/app", "zk/nightly/znodes/app/binary",
                                 "zk/nightly/znodes/app/config", "zk/nightly/znodes/app/config/db",
                                 "zk/nightly/znodes/app/locked", "zk/nightly/znodes/app/locked/child"}));
  EXPECT_EQ(check["index"]["plugin"], "zookeeper-nodes-to-bucket");
  EXPECT_EQ(check["index"]["source"]["database"]["name"], "zookeeper-1");
  EXPECT_EQ(check["index"]["source"]["rootPath"], "/app");
  EXPECT_EQ(check["index"]["counts"]["resources"]["zookeeper/znodes"], 6);
  EXPECT_EQ(check["binary"]["data"], "AAEC/w==");
  EXPECT_EQ(check["locked"]["acl"].size(), 2u) << check["locked"].dump();

  Apply(json::parse(R"({"apiVersion": "automation.astronetes.io/v1alpha1", "kind": "Task",
    "metadata": {"name": "restore-zk", "namespace": "dr"},
    "spec": {"plugin": "zookeeper-nodes-from-backup",
      "config": {"bucketName": "backups", "basePath": "zk/nightly", "destinationName": "zookeeper-2",
                 "rootPath": "/restored/app"}}})"));
  Apply(RestoreRun("restore-zk-dry", "restore-zk", true));
  const json dry = WaitForRun(*local_, "restore-zk-dry");
  ASSERT_EQ(dry["status"]["phase"], "Succeeded") << dry.dump();
  std::vector<std::string> planned;
  for (const json& entry : dry["status"]["dryRunReport"]["objects"]) {
    planned.push_back(entry["action"].get<std::string>() + " " + entry["name"].get<std::string>());
  }
  EXPECT_EQ(planned, (std::vector<std::string>{"Create /restored/app", "Create /restored/app/binary",
                                               "Create /restored/app/config", "Create /restored/app/locked",
                                               "Create /restored/app/config/db", "Create /restored/app/locked/child"}))
      << dry["status"]["dryRunReport"].dump();
  EXPECT_FALSE(destination->Exists("/restored")) << "a dry run writes nothing";
  EXPECT_EQ(dry["status"]["dryRunReport"].dump().find("host=db-1"), std::string::npos);

  Apply(RestoreRun("restore-zk-1", "restore-zk", false));
  const json run = WaitForRun(*local_, "restore-zk-1");
  ASSERT_EQ(run["status"]["phase"], "Succeeded") << run.dump();
  EXPECT_EQ(run["status"]["objectsPatched"], 6);
  EXPECT_EQ(destination->Get("/restored/app")->data, "root");
  EXPECT_EQ(destination->Get("/restored/app/config/db")->data, "host=db-1");
  EXPECT_EQ(destination->Get("/restored/app/binary")->data, std::string("\0\1\2\377", 4));
  EXPECT_EQ(destination->Get("/restored/app/locked/child")->data, "c");
  EXPECT_EQ(destination->GetAcl("/restored/app/locked"), locked_acl);
  EXPECT_EQ(destination->GetAcl("/restored/app/locked/child"), locked_acl);
  EXPECT_FALSE(destination->Exists("/restored/app/tmp"));
  EXPECT_FALSE(destination->Exists("/restored/app/session"));

  // existing: Skip (the default) leaves a changed znode; Update sets it back.
  destination->Set("/restored/app/config/db", "host=changed");
  Apply(RestoreRun("restore-zk-2", "restore-zk", false));
  const json skipped = WaitForRun(*local_, "restore-zk-2");
  EXPECT_EQ(skipped["status"]["phase"], "Succeeded") << skipped.dump();
  EXPECT_EQ(skipped["status"]["objectsPatched"], 0);
  EXPECT_EQ(destination->Get("/restored/app/config/db")->data, "host=changed");
  Apply(json::parse(R"({"apiVersion": "automation.astronetes.io/v1alpha1", "kind": "Task",
    "metadata": {"name": "restore-zk-update", "namespace": "dr"},
    "spec": {"plugin": "zookeeper-nodes-from-backup",
      "config": {"bucketName": "backups", "basePath": "zk/nightly", "destinationName": "zookeeper-2",
                 "rootPath": "/restored/app", "existing": "Update"}}})"));
  // Its dry run names the change: znodes often hold credentials, so the patch has the
  // data's size and SHA-256, never the data, and digest ids without their password hash.
  Apply(RestoreRun("restore-zk-3-dry", "restore-zk-update", true));
  const json update_dry = WaitForRun(*local_, "restore-zk-3-dry");
  ASSERT_EQ(update_dry["status"]["phase"], "Succeeded") << update_dry.dump();
  const std::string report = update_dry["status"]["dryRunReport"].dump();
  json patched = nullptr;
  for (const json& entry : update_dry["status"]["dryRunReport"]["objects"]) {
    if (entry["action"] == "Patch") patched = entry;
  }
  ASSERT_TRUE(patched.is_object()) << report;
  EXPECT_EQ(patched["name"], "/restored/app/config/db");
  EXPECT_NE(patched["patch"].dump().find(ro::common::Sha256Hex("host=db-1")), std::string::npos) << report;
  for (const std::string& secret : {std::string("host=db-1"), std::string("host=changed"), std::string("aG9zdD1kYi0x"),
                                   ro::plugins::DigestAclId(admin)}) {
    EXPECT_EQ(report.find(secret), std::string::npos) << secret << " in " << report;
  }
  EXPECT_EQ(destination->Get("/restored/app/config/db")->data, "host=changed") << "a dry run writes nothing";
  Apply(RestoreRun("restore-zk-3", "restore-zk-update", false));
  const json updated = WaitForRun(*local_, "restore-zk-3");
  EXPECT_EQ(updated["status"]["phase"], "Succeeded") << updated.dump();
  EXPECT_EQ(updated["status"]["objectsPatched"], 1);
  EXPECT_EQ(destination->Get("/restored/app/config/db")->data, "host=db-1");

  // Bad input: a rootPath the Database does not have.
  Apply(json::parse(R"({"apiVersion": "automation.astronetes.io/v1alpha1", "kind": "Backup",
    "metadata": {"name": "zk-missing-root", "namespace": "dr"},
    "spec": {"plugin": "zookeeper-nodes-to-bucket",
      "config": {"source": {"database": {"name": "zookeeper-1", "rootPath": "/nothing"}},
                 "destination": {"bucket": {"name": "backups"}}}}})"));
  const json missing = WaitFor("zk-missing-root", "Failed", "RootPathNotFound");
  EXPECT_THAT(missing["status"].value("message", ""), HasSubstr("rootPath /nothing"));
}

// Bad input: conditions, an Event, and nothing written.
TEST_F(BackupTest, AMissingBucketWaitsWithAnEventUntilItExists) {
  source_->Kubectl({"create", "namespace", "late"});
  Apply(Backup("late-bucket", "cluster-1", {"late"}, "not-yet"));
  const json pending = WaitFor("late-bucket", "Pending", "BucketNotFound");
  EXPECT_THAT(pending["status"].value("message", ""), HasSubstr("Bucket dr/not-yet (spec.config.destination.bucket.name) does not exist"));
  WaitForEvent("late-bucket", "BucketNotFound");
  Apply(Bucket("not-yet", "bucket-credentials"));
  WaitFor("late-bucket", "Succeeded");
}

TEST_F(BackupTest, WrongAccessKeysFailWithBucketError) {
  ApplyAccessKeys("wrong-keys", "nobody", "wrong");
  Apply(Bucket("wrong", "wrong-keys"));
  source_->Kubectl({"create", "namespace", "keys"});
  Apply(Backup("wrong-keys", "cluster-1", {"keys"}, "wrong"));
  const json failed = WaitFor("wrong-keys", "Failed", "BucketError");
  EXPECT_THAT(failed["status"].value("message", ""), HasSubstr("InvalidAccessKeyId"));
  WaitForEvent("wrong-keys", "BucketError");
}

TEST_F(BackupTest, AnUnreachableClusterFailsWithSourceUnavailable) {
  const te::PortLease closed;  // nothing listens there
  std::string kubeconfig = te::ReadFile(source_->kubeconfig_path());
  const std::size_t server = kubeconfig.find("server: ");
  ASSERT_NE(server, std::string::npos);
  kubeconfig.replace(server, kubeconfig.find('\n', server) - server,
                     "server: https://127.0.0.1:" + std::to_string(closed.port()));
  Apply({{"apiVersion", "v1"},
         {"kind", "Secret"},
         {"metadata", {{"name", "gone-kubeconfig"}, {"namespace", kNamespace}}},
         {"stringData", {{"kubeconfig.yaml", kubeconfig}}}});
  Apply({{"apiVersion", "assets.astronetes.io/v1alpha1"},
         {"kind", "KubernetesCluster"},
         {"metadata", {{"name", "gone"}, {"namespace", kNamespace}}},
         {"spec", {{"secretName", "gone-kubeconfig"}}}});
  Apply(Backup("unreachable", "gone", json::array(), "backups"));
  const json failed = WaitFor("unreachable", "Failed", "SourceUnavailable");
  EXPECT_THAT(failed["status"].value("message", ""), HasSubstr("listing the namespaces of KubernetesCluster gone"));
  WaitForEvent("unreachable", "SourceUnavailable");
}

// restartPolicy OnFailure: a failed run is Running/Retrying (with an Event) and runs again
// after --retry-interval until it succeeds; here once the Bucket's keys are corrected.
TEST_F(BackupTest, RestartPolicyOnFailureRunsAgainUntilTheBackupSucceeds) {
  ApplyAccessKeys("fixable-keys", "nobody", "wrong");
  Apply(Bucket("fixable", "fixable-keys"));
  source_->Kubectl({"create", "namespace", "retried"});
  ApplySource({{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "kept"}, {"namespace", "retried"}}},
               {"data", {{"k", "v"}}}});
  json backup = Backup("retried", "cluster-1", {"retried"}, "fixable");
  backup["spec"]["restartPolicy"] = "OnFailure";
  Apply(backup);
  const json retrying = WaitFor("retried", "Running", "Retrying");
  EXPECT_THAT(retrying["status"].value("message", ""), HasSubstr("InvalidAccessKeyId"));
  EXPECT_THAT(retrying["status"].value("message", ""), HasSubstr("(restartPolicy OnFailure)"));
  WaitForEvent("retried", "Retrying");
  ApplyAccessKeys("fixable-keys", s3_->access_key(), s3_->secret_key());
  const json done = WaitFor("retried", "Succeeded", "Succeeded");
  EXPECT_GE(done["status"].value("objects", 0), 2);  // the namespace and its ConfigMap (and its ServiceAccount)
  const std::string keys = Boto3(*s3_, R"(
print('\n'.join(sorted(o['Key'] for o in c.list_objects_v2(Bucket=bucket, Prefix=sys.argv[5])['Contents'])))
)", {"backups", "dr/retried/"});
  EXPECT_THAT(keys, HasSubstr("dr/retried/v1-configmaps/retried.kept"));
  EXPECT_THAT(keys, HasSubstr("dr/retried/index.json"));
}

// No namespaces listed: every namespace of the cluster, each listed in the index.
TEST_F(BackupTest, AnEmptyNamespaceListBacksUpEveryNamespace) {
  for (const char* ns : {"everywhere-a", "everywhere-b"}) {
    source_->Kubectl({"create", "namespace", ns});
    ApplySource({{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "cm"}, {"namespace", ns}}},
                 {"data", {{"k", ns}}}});
  }
  Apply(Backup("everything", "cluster-1", json::array(), "backups", "all"));
  const json done = WaitFor("everything", "Succeeded", "Succeeded");
  EXPECT_THAT(done["status"].value("message", ""), HasSubstr("every namespace of KubernetesCluster cluster-1"));
  const json check = json::parse(Boto3(*s3_, R"(
index = json.loads(c.get_object(Bucket=bucket, Key='all/index.json')['Body'].read())
keys = sorted(o['Key'] for o in c.list_objects_v2(Bucket=bucket, Prefix='all/')['Contents'])
print(json.dumps({'namespaces': index['source']['namespaces'], 'keys': keys}))
)", {"backups"}));
  std::set<std::string> namespaces;
  for (const json& ns : check["namespaces"]) namespaces.insert(ns.get<std::string>());
  for (const std::string ns : {"default", "kube-system", "everywhere-a", "everywhere-b"}) {
    EXPECT_TRUE(namespaces.count(ns)) << ns << " missing from " << check["namespaces"].dump();
  }
  std::set<std::string> keys;
  for (const json& key : check["keys"]) keys.insert(key.get<std::string>());
  for (const std::string key : {"all/v1-configmaps/everywhere-a.cm", "all/v1-configmaps/everywhere-b.cm",
                                "all/v1-namespaces/everywhere-a", "all/v1-namespaces/default"}) {
    EXPECT_TRUE(keys.count(key)) << key << " missing from " << check["keys"].dump();
  }
}

TEST_F(BackupTest, AMissingNamespaceAndAnInvalidConfigFailWithTheirReasons) {
  Apply(Backup("typo", "cluster-1", {"shopp"}, "backups"));
  const json missing = WaitFor("typo", "Failed", "NamespaceNotFound");
  EXPECT_THAT(missing["status"].value("message", ""), HasSubstr("namespace shopp"));
  json invalid = Backup("invalid", "cluster-1", json::array(), "backups");
  invalid["spec"]["config"].erase("destination");
  Apply(invalid);
  const json failed = WaitFor("invalid", "Failed", "InvalidConfig");
  EXPECT_THAT(failed["status"].value("message", ""), HasSubstr("spec.config.destination"));
}

}  // namespace

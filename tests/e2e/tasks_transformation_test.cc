// The recovery of a warm standby (manual 8.2 "Recover from disasters", 6.2.2
// "RecoveryProcess", 6.2.3 "Recovering from a Bucket"): the task-controller and
// taskrun-controller binaries of the build against real servers (tests/testenv):
//   - "operator": the kube-apiserver the operator runs in, with our CRDs; also the
//     destination of the manual's generated Task, which names no destinationName;
//   - "destination": a second kube-apiserver reached through a KubernetesCluster;
//   - s3rver: the Bucket holding the originals at BucketObjectPath.
// The standby's Deployments (replicas 0) are created directly, as the LiveSynchronization
// pipeline would have left them. Also a run that recovers nothing, or fewer objects than
// its LiveSynchronization reports replicated: Succeeded with a warning.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include "ro/kube/client.h"
#include "ro/kube/config.h"
#include "ro/kube/errors.h"
#include "ro/plugins/kubernetes/bucket_object.h"
#include "ro/plugins/kubernetes/control_metadata.h"
#include "ro/plugins/s3_client.h"
#include "ro/plugins/tasks/object_transformation.h"
#include "ro/testenv/testenv.h"
#include "ro/testsupport/controller_process.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ro::kube::DynamicClient;
using ro::kube::GroupVersionResource;
using ro::testenv::KubeCluster;
using ro::testenv::PortLease;
using ro::testenv::Process;

// Generous for 2 busy cores: a run is a few dozen requests to local servers.
constexpr std::chrono::seconds kTimeout{90};
constexpr std::chrono::milliseconds kPoll{200};
// The TaskRun controller's --start-timeout here: long enough for apply ordering, short
// enough that the bad-input tests see the final Failed quickly.
constexpr const char* kStartTimeout = "--start-timeout=4s";
constexpr const char* kNamespace = "dr";  // where the Tasks, TaskRuns and assets live

const GroupVersionResource kDeployments{"apps", "v1", "deployments"};
const GroupVersionResource kTasks{"automation.astronetes.io", "v1alpha1", "tasks"};
const GroupVersionResource kTaskRuns{"automation.astronetes.io", "v1alpha1", "taskruns"};
const GroupVersionResource kLiveSyncs{"automation.astronetes.io", "v1alpha1", "livesynchronizations"};

using ro::testsupport::ControllerProcess;
using ::testing::HasSubstr;

// One controller binary of the build with its probes on reserved loopback ports.
std::unique_ptr<ControllerProcess> StartController(const std::string& binary, const fs::path& kubeconfig,
                                                   const fs::path& dir, std::vector<std::string> extra_args) {
  ro::testsupport::ControllerProcessOptions options;
  options.binary = binary;
  options.kubeconfig = kubeconfig;
  options.dir = dir;
  options.license_file = dir / "license";
  options.args = std::move(extra_args);
  return std::make_unique<ControllerProcess>(std::move(options));
}

json Namespace(const std::string& name, const json& labels) {
  return {{"apiVersion", "v1"},
          {"kind", "Namespace"},
          {"metadata", {{"name", name}, {"labels", labels}}}};
}

json Deployment(const std::string& ns, const std::string& name, int replicas,
                const std::string& image = "nginx:1.25") {
  return {{"apiVersion", "apps/v1"},
          {"kind", "Deployment"},
          {"metadata", {{"name", name}, {"namespace", ns}, {"labels", {{"app", name}}}}},
          {"spec",
           {{"replicas", replicas},
            {"selector", {{"matchLabels", {{"app", name}}}}},
            {"template",
             {{"metadata", {{"labels", {{"app", name}}}}},
              {"spec", {{"containers", {{{"name", "app"}, {"image", image}}}}}}}}}}};
}

json TaskRun(const std::string& name, const std::string& task) {
  return {{"apiVersion", "automation.astronetes.io/v1alpha1"},
          {"kind", "TaskRun"},
          {"metadata", {{"name", name}, {"namespace", kNamespace}}},
          {"spec", {{"taskName", task}}}};
}

json Condition(const json& object, const std::string& type) {
  const json status = object.value("status", json::object());
  for (const json& c : status.value("conditions", json::array())) {
    if (c.value("type", "") == type) return c;
  }
  return nullptr;
}

json ReadyCondition(const json& object) { return Condition(object, "Ready"); }

// "status/reason" of Ready, "" when absent.
std::string ReadyOf(const json& object) {
  const json ready = ReadyCondition(object);
  if (!ready.is_object()) return "";
  return ready.value("status", "") + "/" + ready.value("reason", "");
}

class TasksTransformationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    curl_global_init(CURL_GLOBAL_DEFAULT);  // the clients below, as main() does in the binaries
    dir_ = std::make_unique<ro::testenv::TempDir>("tasks-transformation");
    ro::testenv::KubeClusterOptions operator_options;
    operator_options.name = "operator";
    operator_ = std::make_unique<KubeCluster>(operator_options);
    ro::testenv::KubeClusterOptions destination_options;
    destination_options.name = "destination";
    destination_ = std::make_unique<KubeCluster>(destination_options);
    s3_ = std::make_unique<ro::testenv::S3Server>();
    s3_->CreateBucket("originals");

    local_ = Client(*operator_);
    remote_ = Client(*destination_);
    operator_->Kubectl({"apply", "-f", (ro::testenv::SourceDir() / "deploy/crds/all.yaml").string()});
    operator_->Kubectl({"wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"});
    operator_->Kubectl({"create", "namespace", kNamespace});

    // The destination cluster as the manual registers it (5.2, 8.2) and the bucket (6.2.3).
    Apply(*operator_, {{"apiVersion", "v1"},
                       {"kind", "Secret"},
                       {"metadata", {{"name", "cluster-2-kubeconfig"}, {"namespace", kNamespace}}},
                       {"stringData",
                        {{"kubeconfig.yaml", ro::testenv::ReadFile(destination_->kubeconfig_path())}}}});
    Apply(*operator_, {{"apiVersion", "assets.astronetes.io/v1alpha1"},
                       {"kind", "KubernetesCluster"},
                       {"metadata", {{"name", "cluster-2"}, {"namespace", kNamespace}}},
                       {"spec", {{"secretName", "cluster-2-kubeconfig"}}}});
    Apply(*operator_, {{"apiVersion", "v1"},
                       {"kind", "Secret"},
                       {"metadata", {{"name", "bucket-credentials"}, {"namespace", kNamespace}}},
                       {"stringData",
                        {{"accessKeyID", s3_->access_key()}, {"secretAccessKey", s3_->secret_key()}}}});
    Apply(*operator_, {{"apiVersion", "assets.astronetes.io/v1alpha1"},
                       {"kind", "Bucket"},
                       {"metadata", {{"name", "originals"}, {"namespace", kNamespace}}},
                       {"spec",
                        {{"generic",
                          {{"name", "originals"},
                           {"endpoint", s3_->endpoint()},
                           {"useSSL", false},
                           {"secretName", "bucket-credentials"}}}}}});

    ro::testenv::WriteFile(dir_->path() / "license",
                           "licensee: E2E Tests\nexpiresAt: 2099-01-01T00:00:00Z\n");
    task_controller_ = StartController(
        "task-controller", operator_->kubeconfig_path(), dir_->path(),
        std::vector<std::string>{"--recheck-interval=2s"});
    StartTaskRunController();
  }

  static void TearDownTestSuite() {
    taskrun_controller_.reset();
    task_controller_.reset();
    remote_.reset();
    local_.reset();
    s3_.reset();
    destination_.reset();
    operator_.reset();
    dir_.reset();
  }

  static void StartTaskRunController() {
    taskrun_controller_ = StartController(
        "taskrun-controller", operator_->kubeconfig_path(), dir_->path(),
        std::vector<std::string>{kStartTimeout, "--pending-recheck=1s"});
  }

  static std::unique_ptr<DynamicClient> Client(const KubeCluster& cluster) {
    return std::make_unique<DynamicClient>(
        ro::kube::LoadKubeconfigFile(cluster.kubeconfig_path().string()));
  }

  static void Apply(const KubeCluster& cluster, const json& object) {
    cluster.Kubectl({"apply", "-f", "-"}, object.dump());
  }

  // The object, or null when it does not exist.
  static json Get(DynamicClient& client, const GroupVersionResource& gvr, const std::string& ns,
                  const std::string& name) {
    try {
      return client.Get(gvr, ns, name);
    } catch (const ro::kube::ApiError& e) {
      if (ro::kube::IsNotFound(e)) return nullptr;
      throw;
    }
  }

  static int Replicas(DynamicClient& client, const std::string& ns, const std::string& name) {
    return client.Get(kDeployments, ns, name)["spec"]["replicas"].get<int>();
  }

  // Waits until `resource`/`name` in kNamespace has Ready "status/reason"; returns it.
  static json WaitForReady(const GroupVersionResource& gvr, const std::string& name,
                           const std::string& ready) {
    json object;
    ro::testenv::WaitFor(
        [&] {
          object = Get(*local_, gvr, kNamespace, name);
          return ReadyOf(object) == ready;
        },
        kTimeout, gvr.resource + "/" + name + " Ready=" + ready + " (last: " + object.dump() + ")",
        kPoll);
    return object;
  }

  // Waits until TaskRun `ns`/`name` reaches `phase`; returns it.
  static json WaitForPhase(const std::string& name, const std::string& phase,
                           const std::string& ns = kNamespace) {
    json run;
    ro::testenv::WaitFor(
        [&] {
          run = Get(*local_, kTaskRuns, ns, name);
          return run.is_object() && run.value("status", json::object()).value("phase", "") == phase;
        },
        kTimeout, "TaskRun " + name + " phase " + phase + " (last: " + run.dump() + ")", kPoll);
    return run;
  }

  // What LiveSynchronization dr/pre would have stored for `source` (BucketObjectBody at
  // BucketObjectPath), written to the real bucket.
  static void StoreOriginal(const json& source) {
    const std::string ns = source["metadata"]["namespace"];
    const std::string name = source["metadata"]["name"];
    const auto stamp = ro::plugins::kubernetes::MakeStampInfo(kNamespace, "pre", kNamespace, "cluster-1");
    ro::plugins::S3Client client(ro::plugins::GenericBucketConfig(
        s3_->endpoint(), false, "originals", {s3_->access_key(), s3_->secret_key()}));
    client.PutObject(ro::plugins::kubernetes::BucketObjectPath(kNamespace, "pre", kDeployments, ns, name),
                     ro::plugins::kubernetes::BucketObjectBody(kDeployments, source, stamp),
                     "application/json");
  }

  // The Task of 6.2.3 as the LiveSynchronization controller generates it for dr/pre:
  // restore deployments of namespaces labelled `env: <env>` in cluster-2 from the bucket.
  static json FromOriginalTask(const std::string& name, const std::string& env) {
    return {{"apiVersion", "automation.astronetes.io/v1alpha1"},
            {"kind", "Task"},
            {"metadata",
             {{"name", name},
              {"namespace", kNamespace},
              {"annotations", {{"kubesync.astronetes.io/live-synchronization", "dr/pre"}}}}},
            {"spec",
             {{"plugin", "kubernetes-objects-transformation"},
              {"config",
               {{"sourceName", "cluster-1"},
                {"destinationName", "cluster-2"},
                {"bucketName", "originals"},
                {"resources",
                 {{{"identifier", {{"group", "apps"}, {"version", "v1"}, {"resources", "deployments"}}},
                   {"fromOriginal", {{"enabled", true}}},
                   {"filter", {{"namespaceSelector", {{"matchLabels", {{"env", env}}}}}}}}}}}}}}};
  }

  // The Events of object `name` in kNamespace with `reason` (kubectl describe shows them;
  // they are sent asynchronously): waits until there is one.
  static json WaitForEvent(const std::string& name, const std::string& reason) {
    json found;
    ro::testenv::WaitFor(
        [&] {
          const json events = json::parse(operator_->Kubectl(
              {"-n", kNamespace, "get", "events", "--field-selector", "involvedObject.name=" + name, "-o", "json"}));
          for (const json& e : events["items"]) {
            if (e.value("reason", "") == reason) found = e;
          }
          return found.is_object();
        },
        kTimeout, "Event " + reason + " on " + name, kPoll);
    return found;
  }

  // `kubectl get taskrun <name>` as header -> value, cut at the headers' positions (an
  // empty cell is "").
  static std::map<std::string, std::string> Columns(const std::string& name) {
    std::istringstream table(operator_->Kubectl({"-n", kNamespace, "get", "taskrun", name}));
    std::string header_line, row_line;
    std::getline(table, header_line);
    std::getline(table, row_line);
    std::map<std::string, std::string> columns;
    std::size_t start = 0;
    while (start < header_line.size()) {
      const std::size_t header_end = header_line.find(' ', start);
      const std::string header = header_line.substr(start, header_end - start);
      const std::size_t next = header_line.find_first_not_of(' ', header_end);
      std::string cell = start < row_line.size() ? row_line.substr(start, next - start) : "";
      cell.erase(cell.find_last_not_of(' ') + 1);
      columns[header] = cell;
      start = next;
    }
    EXPECT_TRUE(columns.count("RECOVERED") && columns.count("WARNING")) << header_line << "\n" << row_line;
    return columns;
  }

  // A recovery Task as the LiveSynchronization controller generates it for `live_sync`
  // (annotation; none when empty): replicas 1 for the deployments of cluster-2's
  // namespaces labelled `label`=true.
  static json RecoveryTask(const std::string& name, const std::string& label, const std::string& live_sync) {
    json task = json::parse(R"({
      "apiVersion": "automation.astronetes.io/v1alpha1", "kind": "Task",
      "spec": {"plugin": "kubernetes-objects-transformation",
        "config": {"sourceName": "cluster-1", "destinationName": "cluster-2",
          "resources": [{"identifier": {"group": "apps", "version": "v1", "resources": "deployments"},
                         "patch": {"operations": [{"op": "replace", "path": "/spec/replicas", "value": 1}]},
                         "filter": {"namespaceSelector": {"matchLabels": {}}}}]}}})");
    task["metadata"] = {{"name", name}, {"namespace", kNamespace}};
    task["spec"]["config"]["resources"][0]["filter"]["namespaceSelector"]["matchLabels"][label] = "true";
    if (!live_sync.empty()) {
      task["metadata"]["annotations"] = {{"kubesync.astronetes.io/live-synchronization", live_sync}};
    }
    return task;
  }

  static void ExpectControllersAlive() {
    EXPECT_TRUE(task_controller_->process().Running()) << task_controller_->process().LogTail();
    EXPECT_TRUE(taskrun_controller_->process().Running()) << taskrun_controller_->process().LogTail();
  }

  static std::unique_ptr<ro::testenv::TempDir> dir_;
  static std::unique_ptr<KubeCluster> operator_;
  static std::unique_ptr<KubeCluster> destination_;
  static std::unique_ptr<ro::testenv::S3Server> s3_;
  static std::unique_ptr<DynamicClient> local_;
  static std::unique_ptr<DynamicClient> remote_;
  static std::unique_ptr<ControllerProcess> task_controller_;
  static std::unique_ptr<ControllerProcess> taskrun_controller_;
};

std::unique_ptr<ro::testenv::TempDir> TasksTransformationTest::dir_;
std::unique_ptr<KubeCluster> TasksTransformationTest::operator_;
std::unique_ptr<KubeCluster> TasksTransformationTest::destination_;
std::unique_ptr<ro::testenv::S3Server> TasksTransformationTest::s3_;
std::unique_ptr<DynamicClient> TasksTransformationTest::local_;
std::unique_ptr<DynamicClient> TasksTransformationTest::remote_;
std::unique_ptr<ControllerProcess> TasksTransformationTest::task_controller_;
std::unique_ptr<ControllerProcess> TasksTransformationTest::taskrun_controller_;

// Manual 8.2: the generated Task (no destinationName: the cluster the operator runs in)
// and a TaskRun bring every Deployment of the sync=true namespaces to one replica.
TEST_F(TasksTransformationTest, TutorialRecoveryStartsEveryDeploymentOfTheSyncedNamespaces) {
  Apply(*operator_, Namespace("shop", {{"sync", "true"}}));
  Apply(*operator_, Namespace("billing", {{"sync", "true"}}));
  Apply(*operator_, Namespace("sandbox", {{"sync", "false"}}));
  Apply(*operator_, Deployment("shop", "cart", 0));
  Apply(*operator_, Deployment("shop", "catalog", 0));
  Apply(*operator_, Deployment("billing", "invoices", 0));
  Apply(*operator_, Deployment("sandbox", "experiment", 0));
  const std::string untouched_rv =
      local_->Get(kDeployments, "sandbox", "experiment")["metadata"]["resourceVersion"];

  operator_->Kubectl({"-n", kNamespace, "apply", "-f",
                      (ro::testenv::SourceDir() / "tests/samples/8.2-task-generated.yaml").string()});
  const json task = WaitForReady(kTasks, "active-passive", "True/Valid");
  EXPECT_EQ(task["status"]["plugin"], "kubernetes-objects-transformation");

  Apply(*operator_, TaskRun("restore-apps", "active-passive"));
  const json run = WaitForPhase("restore-apps", "Succeeded");
  EXPECT_EQ(run["status"]["objectsPatched"], 3);
  EXPECT_EQ(run["status"]["objectsFailed"], 0);
  EXPECT_EQ(run["status"]["message"], "3 objects patched");
  EXPECT_TRUE(run["status"].contains("startTime"));
  EXPECT_TRUE(run["status"].contains("completionTime"));
  EXPECT_EQ(ReadyOf(run), "True/Succeeded");
  // The run in the controller's metrics (docs/metrics.md "Recovery"): its result, RTO and
  // objects.
  const std::string metrics = taskrun_controller_->Get("/metrics").body;
  // prometheus-cpp writes labels in name order.
  const auto series = [](const std::string& name, const std::string& key, const std::string& value) {
    return name + R"({namespace="dr",)" + key + "=\"" + value + R"(",task="active-passive"} )";
  };
  EXPECT_THAT(metrics, HasSubstr(series("ro_recovery_runs_total", "result", "Succeeded") + "1")) << metrics;
  EXPECT_THAT(metrics, HasSubstr(series("ro_recovery_objects_total", "result", "recovered") + "3")) << metrics;
  EXPECT_THAT(metrics, HasSubstr(series("ro_recovery_objects_total", "result", "failed") + "0")) << metrics;
  EXPECT_THAT(metrics, HasSubstr(series("ro_recovery_duration_seconds_count", "phase", "Succeeded") + "1"))
      << metrics;

  EXPECT_EQ(Replicas(*local_, "shop", "cart"), 1);
  EXPECT_EQ(Replicas(*local_, "shop", "catalog"), 1);
  EXPECT_EQ(Replicas(*local_, "billing", "invoices"), 1);
  const json experiment = local_->Get(kDeployments, "sandbox", "experiment");
  EXPECT_EQ(experiment["spec"]["replicas"], 0);
  EXPECT_EQ(experiment["metadata"]["resourceVersion"], untouched_rv);
  const json cart = local_->Get(kDeployments, "shop", "cart");
  EXPECT_EQ(cart["metadata"]["annotations"]["automation.astronetes.io/taskrun"], "dr/restore-apps");

  // The run is recorded as Events on the TaskRun (kubectl describe shows them); they
  // are sent asynchronously.
  std::vector<std::string> reasons;
  ro::testenv::WaitFor(
      [&] {
        const json events = json::parse(operator_->Kubectl(
            {"-n", kNamespace, "get", "events", "--field-selector",
             "involvedObject.name=restore-apps", "-o", "json"}));
        reasons.clear();
        for (const json& e : events["items"]) reasons.push_back(e.value("reason", ""));
        return std::find(reasons.begin(), reasons.end(), "Succeeded") != reasons.end() &&
               std::find(reasons.begin(), reasons.end(), "Running") != reasons.end();
      },
      kTimeout, "Events Running and Succeeded on TaskRun restore-apps", kPoll);

  // A finished TaskRun is never run again; a new TaskRun runs the Task again.
  json scaled_down = local_->Get(kDeployments, "shop", "cart");
  scaled_down["spec"]["replicas"] = 0;
  local_->Update(kDeployments, "shop", scaled_down);
  Apply(*operator_, TaskRun("restore-apps-again", "active-passive"));
  WaitForPhase("restore-apps-again", "Succeeded");
  EXPECT_EQ(Replicas(*local_, "shop", "cart"), 1);
  const json first = local_->Get(kTaskRuns, kNamespace, "restore-apps");
  EXPECT_EQ(first["status"]["completionTime"], run["status"]["completionTime"]);
  EXPECT_EQ(first["metadata"]["resourceVersion"], run["metadata"]["resourceVersion"]);
  ExpectControllersAlive();
}

// Manual 6.2.3: fromOriginal restores the source's spec (replicas 3, its image) from the
// bucket into the destination cluster, keeping the destination object (same uid).
TEST_F(TasksTransformationTest, FromOriginalRestoresTheSourceSpecFromTheBucket) {
  Apply(*destination_, Namespace("store", {{"env", "pre"}}));
  // The standby copy carries kubesync's control annotations (docs/kubesync.md).
  json standby = Deployment("store", "web", 0, "nginx:1.25");
  standby["metadata"]["annotations"] = {{"kubesync.astronetes.io/live-synchronization", "dr/pre"},
                                        {"kubesync.astronetes.io/source-resource-version", "41"}};
  Apply(*destination_, standby);
  Apply(*destination_, Deployment("store", "worker", 0, "busybox:1.36"));
  StoreOriginal(Deployment("store", "web", 3, "nginx:1.27"));
  StoreOriginal(Deployment("store", "worker", 2, "busybox:1.37"));
  const std::string uid = remote_->Get(kDeployments, "store", "web")["metadata"]["uid"];

  Apply(*operator_, FromOriginalTask("restore-pre", "pre"));
  WaitForReady(kTasks, "restore-pre", "True/Valid");
  Apply(*operator_, TaskRun("restore-pre-1", "restore-pre"));
  const json run = WaitForPhase("restore-pre-1", "Succeeded");
  EXPECT_EQ(run["status"]["objectsPatched"], 2);

  const json web = remote_->Get(kDeployments, "store", "web");
  EXPECT_EQ(web["spec"]["replicas"], 3);
  EXPECT_EQ(web["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.27");
  EXPECT_EQ(web["metadata"]["uid"], uid);
  EXPECT_EQ(web["metadata"]["annotations"]["kubesync.astronetes.io/source-resource-version"], "41");
  EXPECT_FALSE(web["metadata"]["labels"].contains("kubesync.astronetes.io/managed-by"));
  EXPECT_EQ(Replicas(*remote_, "store", "worker"), 2);
  // Nothing of the kind was touched in the operator's own cluster.
  EXPECT_TRUE(Get(*local_, kDeployments, "store", "web").is_null());
  ExpectControllersAlive();
}

json ConfigMap(const std::string& ns, const std::string& name) {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"namespace", ns}}},
          {"data", {{"mode", "standby"}}}};
}

json Service(const std::string& ns, const std::string& name) {
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata", {{"name", name}, {"namespace", ns}}},
          {"spec", {{"selector", {{"app", name}}}, {"ports", {{{"port", 80}}}}}}};
}

// TaskRun spec.dryRun (docs/automation.md "Dry run"): the report says, object by object
// and in dependency order, what the run would do, and changes nothing (every
// resourceVersion stays); the real run that follows makes exactly the reported changes,
// and fails on exactly the object the dry run said it would (a value only the
// destination's validation refuses).
TEST_F(TasksTransformationTest, ADryRunChangesNothingAndTheRealRunMakesExactlyTheReportedChanges) {
  const GroupVersionResource configmaps{"", "v1", "configmaps"};
  const GroupVersionResource services{"", "v1", "services"};
  Apply(*destination_, Namespace("preview", {{"env", "preview"}}));
  Apply(*destination_, Deployment("preview", "web", 0, "nginx:1.25"));
  Apply(*destination_, ConfigMap("preview", "settings"));
  Apply(*destination_, Service("preview", "front"));
  StoreOriginal(Deployment("preview", "web", 2, "nginx:1.27"));

  // Listed against the dependency order: workloads, then services, then configmaps.
  json task = FromOriginalTask("preview", "preview");
  json& resources = task["spec"]["config"]["resources"];
  const json filter = resources[0]["filter"];
  resources.push_back({{"identifier", {{"version", "v1"}, {"resources", "services"}}},
                       {"patch", {{"operations", {{{"op", "replace"}, {"path", "/spec/ports/0/port"}, {"value", 70000}}}}}},
                       {"filter", filter}});
  resources.push_back({{"identifier", {{"version", "v1"}, {"resources", "configmaps"}}},
                       {"patch", {{"operations", {{{"op", "add"}, {"path", "/metadata/labels"}, {"value", {{"restored", "true"}}}},
                                                  {{"op", "replace"}, {"path", "/data/mode"}, {"value", "active"}}}}}},
                       {"filter", filter}});
  Apply(*operator_, task);
  WaitForReady(kTasks, "preview", "True/Valid");
  const std::vector<std::pair<GroupVersionResource, std::string>> objects = {
      {configmaps, "settings"}, {services, "front"}, {kDeployments, "web"}};
  std::map<std::string, json> before;
  for (const auto& [gvr, name] : objects) before[gvr.ToString()] = remote_->Get(gvr, "preview", name);

  json dry = TaskRun("preview-dry", "preview");
  dry["spec"]["dryRun"] = true;
  Apply(*operator_, dry);
  const json dry_run = WaitForPhase("preview-dry", "Failed");
  EXPECT_EQ(ReadyOf(dry_run), "False/ObjectsFailed");
  EXPECT_THAT(dry_run["status"].value("message", ""), HasSubstr("Dry run, nothing changed: 2 objects would be patched"));
  EXPECT_EQ(dry_run["status"]["dryRun"], true);
  EXPECT_EQ(dry_run["status"]["objectsPatched"], 2);
  EXPECT_EQ(dry_run["status"]["objectsFailed"], 1);
  // The same from the command line: roctl creates a dry-run TaskRun, waits and prints.
  ro::testenv::RunOptions no_check;
  no_check.check = false;
  no_check.timeout = kTimeout;
  const ro::testenv::CommandResult roctl = ro::testenv::RunCommand(
      {(ro::testenv::BinDir() / "roctl").string(), "dry-run", "preview", "-n", kNamespace,
       "--kubeconfig", operator_->kubeconfig_path().string(), "--timeout", "80s"},
      no_check);
  EXPECT_EQ(roctl.exit_code, 1) << roctl.out << roctl.err;  // 1: the run would fail
  EXPECT_THAT(roctl.out, HasSubstr("Dry run, nothing changed: 2 objects would be patched"));
  EXPECT_THAT(roctl.out, HasSubstr("Workloads"));
  EXPECT_THAT(roctl.out, HasSubstr("replace /spec/replicas 2"));
  EXPECT_THAT(roctl.out, HasSubstr("replace /data/mode \"active\""));
  EXPECT_THAT(roctl.out, HasSubstr("70000"));
  const ro::testenv::CommandResult report_json = ro::testenv::RunCommand(
      {(ro::testenv::BinDir() / "roctl").string(), "report", "preview-dry", "-n", kNamespace,
       "--kubeconfig", operator_->kubeconfig_path().string(), "-o", "json"},
      no_check);
  EXPECT_EQ(report_json.exit_code, 1) << report_json.err;
  EXPECT_EQ(json::parse(report_json.out)["report"], dry_run["status"]["dryRunReport"]);
  for (const auto& [gvr, name] : objects) {
    EXPECT_EQ(remote_->Get(gvr, "preview", name)["metadata"]["resourceVersion"],
              before[gvr.ToString()]["metadata"]["resourceVersion"])
        << gvr.ToString() << " changed by a dry run";
  }
  const json report = dry_run["status"]["dryRunReport"];
  ASSERT_EQ(report["objects"].size(), 3u) << report.dump();
  std::vector<std::string> order;
  for (const json& entry : report["objects"]) order.push_back(entry["resource"]);
  EXPECT_EQ(order, (std::vector<std::string>{"v1/configmaps", "v1/services", "apps/v1/deployments"}));
  std::vector<std::string> stages;
  for (const json& entry : report["resources"]) stages.push_back(entry["stage"]);
  EXPECT_EQ(stages, (std::vector<std::string>{"ConfigMaps", "Services", "Workloads"}));
  EXPECT_EQ(report["objects"][0]["action"], "Patch");
  EXPECT_EQ(report["objects"][1]["action"], "Fail");
  EXPECT_THAT(report["objects"][1].value("message", ""), HasSubstr("70000"));
  EXPECT_EQ(report["objects"][2]["action"], "Patch");
  // The restore's field diff: the source's replicas and image come back.
  const json web_patch = report["objects"][2]["patch"];
  EXPECT_THAT(web_patch.dump(), HasSubstr(R"("path":"/spec/replicas","value":2)"));
  EXPECT_THAT(web_patch.dump(), HasSubstr("nginx:1.27"));

  Apply(*operator_, TaskRun("preview-real", "preview"));
  const json real_run = WaitForPhase("preview-real", "Failed");
  EXPECT_EQ(ReadyOf(real_run), "False/ObjectsFailed");
  EXPECT_EQ(real_run["status"]["objectsPatched"], 2);
  EXPECT_EQ(real_run["status"]["objectsFailed"], 1);
  EXPECT_FALSE(real_run["status"].contains("dryRunReport"));
  for (std::size_t i = 0; i < objects.size(); ++i) {
    const auto& [gvr, name] = objects[i];
    const json after = remote_->Get(gvr, "preview", name);
    const json reported = report["objects"][i].value("patch", json::array());
    EXPECT_EQ(ro::plugins::tasks::ChangeBetween(before[gvr.ToString()], after), reported)
        << gvr.ToString() << " " << name;
  }
  EXPECT_EQ(remote_->Get(configmaps, "preview", "settings")["data"]["mode"], "active");
  ExpectControllersAlive();
}

// The dependency order with a CRD, its custom resources, an Ingress and a webhook
// configuration (docs/automation.md "Order"), listed the other way round in the Task: the
// dry run reports them CRD first, webhook last, noting that the webhook's and the
// Ingress's Services have no endpoints; the real run changes the CRD, the custom resource
// and the Ingress (with a warning: routing is not held for its backends), then waits with
// the webhook configuration unchanged until its Service has an endpoint, then writes it.
TEST_F(TasksTransformationTest, CrdsComeFirstAndAWebhookWaitsForItsServicesEndpoints) {
  const GroupVersionResource crds{"apiextensions.k8s.io", "v1", "customresourcedefinitions"};
  const GroupVersionResource widgets{"example.com", "v1", "widgets"};
  const GroupVersionResource webhooks{"admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations"};
  const GroupVersionResource ingresses{"networking.k8s.io", "v1", "ingresses"};
  Apply(*destination_, json::parse(R"({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com", "labels": {"app": "order"}},
    "spec": {"group": "example.com", "scope": "Namespaced",
      "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
      "versions": [{"name": "v1", "served": true, "storage": true,
        "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}})"));
  destination_->Kubectl({"wait", "--for=condition=Established", "--timeout=60s", "crd/widgets.example.com"});
  Apply(*destination_, Namespace("order", {{"env", "order"}}));
  Apply(*destination_, json::parse(R"({"apiVersion": "example.com/v1", "kind": "Widget",
    "metadata": {"name": "w1", "namespace": "order", "labels": {"app": "order"}}, "spec": {"size": 1}})"));
  // A Service without a selector: its Endpoints are the test's to write.
  Apply(*destination_, json::parse(R"({"apiVersion": "v1", "kind": "Service",
    "metadata": {"name": "hooks", "namespace": "order"}, "spec": {"ports": [{"port": 443}]}})"));
  Apply(*destination_, json::parse(R"({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
    "metadata": {"name": "front", "namespace": "order", "labels": {"app": "order"}},
    "spec": {"rules": [{"host": "order.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix",
      "backend": {"service": {"name": "hooks", "port": {"number": 443}}}}]}}]}})"));
  Apply(*destination_, json::parse(R"({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
    "metadata": {"name": "order-hook", "labels": {"app": "order"}},
    "webhooks": [{"name": "hook.example.com", "sideEffects": "None", "admissionReviewVersions": ["v1"],
      "failurePolicy": "Ignore", "timeoutSeconds": 1,
      "clientConfig": {"service": {"namespace": "order", "name": "hooks", "path": "/mutate"}},
      "rules": [{"operations": ["CREATE"], "apiGroups": ["example.com"], "apiVersions": ["v1"], "resources": ["gadgets"]}]}]})"));

  json task = json::parse(R"({"apiVersion": "automation.astronetes.io/v1alpha1", "kind": "Task",
    "metadata": {"name": "order", "namespace": "dr"},
    "spec": {"plugin": "kubernetes-objects-transformation", "config": {"destinationName": "cluster-2", "resources": []}}})");
  for (const GroupVersionResource& gvr : {webhooks, ingresses, widgets, crds}) {
    task["spec"]["config"]["resources"].push_back(
        {{"identifier", {{"group", gvr.group}, {"version", gvr.version}, {"resources", gvr.resource}}},
         {"patch", {{"operations", {{{"op", "add"}, {"path", "/metadata/labels/restored"}, {"value", "true"}}}}}},
         {"filter", {{"selector", {{"matchLabels", {{"app", "order"}}}}}}}});
  }
  Apply(*operator_, task);
  WaitForReady(kTasks, "order", "True/Valid");

  json dry = TaskRun("order-dry", "order");
  dry["spec"]["dryRun"] = true;
  Apply(*operator_, dry);
  const json report = WaitForPhase("order-dry", "Succeeded")["status"]["dryRunReport"];
  ASSERT_EQ(report["objects"].size(), 4u) << report.dump();
  EXPECT_EQ(report["objects"][0]["name"], "widgets.example.com");
  EXPECT_EQ(report["objects"][1]["name"], "w1");
  EXPECT_EQ(report["objects"][2]["name"], "front");
  EXPECT_THAT(report["objects"][2].value("message", ""),
              HasSubstr("order/hooks has no Endpoints now: its routes answer 503"));
  EXPECT_EQ(report["objects"][3]["name"], "order-hook");
  EXPECT_THAT(report["objects"][3].value("message", ""), HasSubstr("order/hooks has no Endpoints now"));
  std::vector<std::string> stages;
  for (const json& entry : report["resources"]) stages.push_back(entry["stage"]);
  EXPECT_EQ(stages, (std::vector<std::string>{"Definitions", "CustomResources", "Routing", "Admission"}));

  const auto restored = [&](const GroupVersionResource& gvr, const std::string& ns, const std::string& name) {
    return remote_->Get(gvr, ns, name)["metadata"]["labels"].contains("restored");
  };
  Apply(*operator_, TaskRun("order-real", "order"));
  ro::testenv::WaitFor(
      [&] {
        return restored(crds, "", "widgets.example.com") && restored(widgets, "order", "w1") &&
               restored(ingresses, "order", "front");
      },
      kTimeout, "the CRD, the widget and the Ingress changed", kPoll);
  EXPECT_FALSE(taskrun_controller_->LogLines("ingress backend not ready").empty());
  // The run waits for the webhook's Service with the configuration unchanged.
  ro::testenv::WaitFor(
      [&] {
        for (const json& line : taskrun_controller_->LogLines("waiting for the webhook service to have a ready endpoint")) {
          if (line.value("taskRun", "") == "dr/order-real" && line.value("service", "") == "order/hooks") return true;
        }
        return false;
      },
      kTimeout, "the run waiting for Service order/hooks", kPoll);
  EXPECT_FALSE(restored(webhooks, "", "order-hook"));
  EXPECT_EQ(Get(*local_, kTaskRuns, kNamespace, "order-real")["status"]["phase"], "Running");
  Apply(*destination_, json::parse(R"({"apiVersion": "v1", "kind": "Endpoints",
    "metadata": {"name": "hooks", "namespace": "order"},
    "subsets": [{"addresses": [{"ip": "10.0.0.10"}], "ports": [{"port": 443}]}]})"));
  const json run = WaitForPhase("order-real", "Succeeded");
  EXPECT_EQ(run["status"]["objectsPatched"], 4);
  EXPECT_TRUE(restored(webhooks, "", "order-hook"));
  ExpectControllersAlive();
}

// A custom-image Task cannot be dry-run: its container's effects are unknown.
TEST_F(TasksTransformationTest, ADryRunOfACustomImageTaskFailsWithDryRunNotSupported) {
  Apply(*operator_, json::parse(R"({"apiVersion": "automation.astronetes.io/v1alpha1", "kind": "Task",
      "metadata": {"name": "echo", "namespace": "dr"},
      "spec": {"plugin": "custom-image", "config": {"image": "busybox:1.36", "command": ["echo", "hi"]}}})"));
  json dry = TaskRun("echo-dry", "echo");
  dry["spec"]["dryRun"] = true;
  Apply(*operator_, dry);
  const json run = WaitForPhase("echo-dry", "Failed");
  EXPECT_EQ(ReadyOf(run), "False/DryRunNotSupported");
  EXPECT_FALSE(run["status"].contains("podName"));
}

// One object without an original fails; the others are still restored, and the run
// reports both counts.
TEST_F(TasksTransformationTest, AMissingOriginalFailsThatObjectOnly) {
  Apply(*destination_, Namespace("orders", {{"env", "partial"}}));
  Apply(*destination_, Deployment("orders", "api", 0));
  Apply(*destination_, Deployment("orders", "unsynced", 0));
  StoreOriginal(Deployment("orders", "api", 3));

  Apply(*operator_, FromOriginalTask("restore-partial", "partial"));
  Apply(*operator_, TaskRun("restore-partial-1", "restore-partial"));
  const json run = WaitForPhase("restore-partial-1", "Failed");
  EXPECT_EQ(run["status"]["objectsPatched"], 1);
  EXPECT_EQ(run["status"]["objectsFailed"], 1);
  EXPECT_EQ(ReadyOf(run), "False/ObjectsFailed");
  const std::string message = run["status"]["message"];
  EXPECT_NE(message.find("no original in the bucket at dr/pre/apps-v1-deployments/orders.unsynced"),
            std::string::npos)
      << message;
  EXPECT_EQ(Replicas(*remote_, "orders", "api"), 3);
  EXPECT_EQ(Replicas(*remote_, "orders", "unsynced"), 0);
  ExpectControllersAlive();
}

// A TaskRun left Running by a controller that stopped mid-pass is finished by the next
// one: objects the run already changed are not written again.
TEST_F(TasksTransformationTest, ARunInterruptedByARestartIsFinishedWithoutRepeatingWrites) {
  Apply(*operator_, Namespace("resume", {{"resume", "yes"}}));
  Apply(*operator_, Deployment("resume", "done", 0));
  Apply(*operator_, Deployment("resume", "todo", 0));
  Apply(*operator_,
        {{"apiVersion", "automation.astronetes.io/v1alpha1"},
         {"kind", "Task"},
         {"metadata", {{"name", "resume"}, {"namespace", kNamespace}}},
         {"spec",
          {{"plugin", "kubernetes-objects-transformation"},
           {"config",
            {{"resources",
              {{{"identifier", {{"group", "apps"}, {"version", "v1"}, {"resources", "deployments"}}},
                {"patch",
                 {{"operations", {{{"op", "replace"}, {"path", "/spec/replicas"}, {"value", 2}}}}}},
                {"filter", {{"namespaceSelector", {{"matchLabels", {{"resume", "yes"}}}}}}}}}}}}}}});
  WaitForReady(kTasks, "resume", "True/Valid");

  taskrun_controller_.reset();  // "crashes"
  json run = local_->Create(kTaskRuns, kNamespace, TaskRun("resumed", "resume"));
  const std::string uid = run["metadata"]["uid"];
  run["status"] = {{"phase", "Running"}, {"startTime", "2024-05-01T10:00:00Z"}, {"message", "in progress"}};
  local_->UpdateStatus(kTaskRuns, kNamespace, run);
  // What the interrupted pass had done to "done": replicas 2, stamped with the run.
  json done = local_->Get(kDeployments, "resume", "done");
  done["spec"]["replicas"] = 2;
  done["metadata"]["annotations"]["automation.astronetes.io/taskrun-uid"] = uid;
  done = local_->Update(kDeployments, "resume", done);

  StartTaskRunController();
  const json finished = WaitForPhase("resumed", "Succeeded");
  EXPECT_EQ(finished["status"]["objectsPatched"], 2);
  EXPECT_EQ(finished["status"]["objectsFailed"], 0);
  EXPECT_EQ(finished["status"]["startTime"], "2024-05-01T10:00:00Z");
  EXPECT_EQ(local_->Get(kDeployments, "resume", "done")["metadata"]["resourceVersion"],
            done["metadata"]["resourceVersion"]);
  EXPECT_EQ(Replicas(*local_, "resume", "todo"), 2);
  ExpectControllersAlive();
}

// The recovery of the tutorial in a standby whose namespaces were created without the
// source's sync=true label: the generated Task's namespaceSelector selects nothing
// there. The run completes, but says that it recovered nothing and why, in its
// conditions, a Warning Event and `kubectl get taskrun`.
TEST_F(TasksTransformationTest, ARecoveryWhoseSelectorMatchesNothingEndsWithAWarning) {
  Apply(*destination_, Namespace("standby-shop", json::object()));  // no sync=true
  Apply(*destination_, Deployment("standby-shop", "cart", 0));
  Apply(*operator_, RecoveryTask("unlabelled", "sync", ""));
  WaitForReady(kTasks, "unlabelled", "True/Valid");

  Apply(*operator_, TaskRun("unlabelled-1", "unlabelled"));
  const json run = WaitForPhase("unlabelled-1", "Succeeded");
  EXPECT_EQ(run["status"]["objectsPatched"], 0);
  EXPECT_EQ(run["status"]["objectsFailed"], 0);
  EXPECT_EQ(ReadyOf(run), "True/NothingRecovered");
  const std::string why = "namespace selector sync=true matches no namespace in cluster-2";
  const json warning = Condition(run, "Warning");
  ASSERT_TRUE(warning.is_object()) << run.dump();
  EXPECT_EQ(warning["status"], "True");
  EXPECT_EQ(warning["reason"], "NothingRecovered");
  EXPECT_NE(warning["message"].get<std::string>().find(why), std::string::npos) << warning.dump();
  EXPECT_NE(run["status"]["message"].get<std::string>().find(why), std::string::npos) << run.dump();
  EXPECT_EQ(Replicas(*remote_, "standby-shop", "cart"), 0);

  const json event = WaitForEvent("unlabelled-1", "NothingRecovered");
  EXPECT_EQ(event["type"], "Warning");
  EXPECT_NE(event["message"].get<std::string>().find(why), std::string::npos) << event.dump();

  // kubectl get taskrun: the Recovered and Warning columns.
  const std::map<std::string, std::string> columns = Columns("unlabelled-1");
  EXPECT_EQ(columns.at("PHASE"), "Succeeded");
  EXPECT_EQ(columns.at("RECOVERED"), "0");
  EXPECT_EQ(columns.at("WARNING"), "NothingRecovered");

  // Labelling the standby namespace as the source's fixes the recovery.
  destination_->Kubectl({"label", "namespace", "standby-shop", "sync=true"});
  Apply(*operator_, TaskRun("unlabelled-2", "unlabelled"));
  const json fixed = WaitForPhase("unlabelled-2", "Succeeded");
  EXPECT_EQ(ReadyOf(fixed), "True/Succeeded");
  EXPECT_TRUE(Condition(fixed, "Warning").is_null()) << fixed.dump();
  EXPECT_EQ(Replicas(*remote_, "standby-shop", "cart"), 1);
  EXPECT_EQ(Columns("unlabelled-2").at("RECOVERED"), "1");
  EXPECT_EQ(Columns("unlabelled-2").at("WARNING"), "");
  ExpectControllersAlive();
}

// A Task generated from a LiveSynchronization readable in the TaskRun's cluster (the
// 2-cluster architecture): recovering fewer objects than it reports replicated is a
// warning naming the resource and both counts. Its status is written here as the
// LiveSynchronization controller writes it.
TEST_F(TasksTransformationTest, RecoveringFewerObjectsThanTheLiveSynchronizationReplicatedIsAWarning) {
  json live_sync = local_->Create(kLiveSyncs, kNamespace, json::parse(R"({
    "apiVersion": "automation.astronetes.io/v1alpha1", "kind": "LiveSynchronization",
    "metadata": {"name": "partial-standby"},
    "spec": {"plugin": "kubernetes-objects-to-kubernetes", "suspend": true,
      "config": {"sourceName": "cluster-1", "destinationName": "cluster-2",
        "replication": {"resources": [
          {"group": "apps", "version": "v1", "resource": "deployments",
           "filters": {"namespaceSelector": {"matchLabels": {"partial": "true"}}},
           "recoveryProcess": {"fromPatch": [{"op": "replace", "path": "/spec/replicas", "value": 1}]}}]}}}})"));
  live_sync["status"] = json::parse(R"({"resources": [
      {"group": "apps", "version": "v1", "resource": "deployments", "objects": 3}]})");
  local_->UpdateStatus(kLiveSyncs, kNamespace, live_sync);
  ASSERT_EQ(local_->Get(kLiveSyncs, kNamespace, "partial-standby")["status"]["resources"][0]["objects"], 3);
  // Only one of the three replicated Deployments is in a namespace labelled like the source's.
  Apply(*destination_, Namespace("partial-a", {{"partial", "true"}}));
  Apply(*destination_, Namespace("partial-b", json::object()));
  Apply(*destination_, Deployment("partial-a", "web", 0));
  Apply(*destination_, Deployment("partial-b", "api", 0));
  Apply(*destination_, Deployment("partial-b", "db", 0));
  Apply(*operator_, RecoveryTask("partial-standby", "partial", "dr/partial-standby"));
  WaitForReady(kTasks, "partial-standby", "True/Valid");

  Apply(*operator_, TaskRun("partial-1", "partial-standby"));
  const json run = WaitForPhase("partial-1", "Succeeded");
  EXPECT_EQ(run["status"]["objectsPatched"], 1);
  EXPECT_EQ(ReadyOf(run), "True/FewerObjectsRecovered");
  const std::string why =
      "apps/v1/deployments: 1 recovered, but LiveSynchronization dr/partial-standby reports 3 replicated";
  ASSERT_TRUE(Condition(run, "Warning").is_object()) << run.dump();
  EXPECT_NE(Condition(run, "Warning").value("message", "").find(why), std::string::npos) << run.dump();
  const json event = WaitForEvent("partial-1", "FewerObjectsRecovered");
  EXPECT_EQ(event["type"], "Warning");
  EXPECT_NE(event["message"].get<std::string>().find(why), std::string::npos) << event.dump();
  EXPECT_EQ(Replicas(*remote_, "partial-a", "web"), 1);

  // Without the LiveSynchronization (the 3-cluster architecture: it lives in another
  // cluster) the comparison is skipped and the run is a plain success.
  local_->Delete(kLiveSyncs, kNamespace, "partial-standby");
  Apply(*operator_, TaskRun("partial-2", "partial-standby"));
  const json unchecked = WaitForPhase("partial-2", "Succeeded");
  EXPECT_EQ(ReadyOf(unchecked), "True/Succeeded");
  EXPECT_EQ(unchecked["status"]["objectsPatched"], 1);
  ExpectControllersAlive();
}

// The manual's own TaskRun sample names a Task the manual never creates.
TEST_F(TasksTransformationTest, ATaskRunForAMissingTaskWaitsThenFailsWithTaskNotFound) {
  operator_->Kubectl({"create", "namespace", "manual-sample"});
  operator_->Kubectl({"-n", "manual-sample", "apply", "-f",
                      (ro::testenv::SourceDir() / "tests/samples/8.2-taskrun.yaml").string()});
  const json pending = WaitForPhase("restore-apps", "Pending", "manual-sample");
  EXPECT_EQ(ReadyOf(pending), "False/TaskNotFound");
  const json failed = WaitForPhase("restore-apps", "Failed", "manual-sample");
  EXPECT_EQ(ReadyOf(failed), "False/TaskNotFound");
  EXPECT_NE(failed["status"]["message"].get<std::string>().find("set-test-label"), std::string::npos);
  EXPECT_TRUE(failed["status"].contains("completionTime"));
  ExpectControllersAlive();
}

TEST_F(TasksTransformationTest, AnInvalidPatchPathMakesTheTaskNotReadyAndItsRunsFail) {
  json task = {{"apiVersion", "automation.astronetes.io/v1alpha1"},
               {"kind", "Task"},
               {"metadata", {{"name", "bad-path"}, {"namespace", kNamespace}}},
               {"spec",
                {{"plugin", "kubernetes-objects-transformation"},
                 {"config",
                  {{"resources",
                    {{{"identifier", {{"group", "apps"}, {"version", "v1"}, {"resources", "deployments"}}},
                      {"patch", {{"operations", {{{"op", "replace"}, {"path", "spec/replicas"}, {"value", 1}}}}}}}}}}}}}};
  Apply(*operator_, task);
  const json bad = WaitForReady(kTasks, "bad-path", "False/InvalidPatch");
  EXPECT_NE(ReadyCondition(bad)["message"].get<std::string>().find(
                "spec.config.resources[0].patch.operations[0].path"),
            std::string::npos)
      << bad.dump();
  EXPECT_FALSE(bad["status"].contains("plugin"));

  Apply(*operator_, TaskRun("bad-path-run", "bad-path"));
  const json run = WaitForPhase("bad-path-run", "Failed");
  EXPECT_EQ(ReadyOf(run), "False/InvalidTask");

  // Fixing the Task makes it Ready again.
  task["spec"]["config"]["resources"][0]["patch"]["operations"][0]["path"] = "/spec/replicas";
  Apply(*operator_, task);
  WaitForReady(kTasks, "bad-path", "True/Valid");
  ExpectControllersAlive();
}

TEST_F(TasksTransformationTest, AnUnknownClusterIsReportedUntilItIsCreated) {
  json task = FromOriginalTask("elsewhere", "nowhere");
  task["spec"]["config"]["destinationName"] = "cluster-9";
  Apply(*operator_, task);
  const json not_ready = WaitForReady(kTasks, "elsewhere", "False/ClusterNotFound");
  EXPECT_NE(ReadyCondition(not_ready)["message"].get<std::string>().find("dr/cluster-9"),
            std::string::npos);

  Apply(*operator_, TaskRun("elsewhere-run", "elsewhere"));
  EXPECT_EQ(ReadyOf(WaitForPhase("elsewhere-run", "Pending")), "False/ClusterNotFound");
  EXPECT_EQ(ReadyOf(WaitForPhase("elsewhere-run", "Failed")), "False/ClusterNotFound");

  // The Task controller watches KubernetesClusters: creating it fixes the Task at once.
  Apply(*operator_, {{"apiVersion", "assets.astronetes.io/v1alpha1"},
                     {"kind", "KubernetesCluster"},
                     {"metadata", {{"name", "cluster-9"}, {"namespace", kNamespace}}},
                     {"spec", {{"secretName", "cluster-2-kubeconfig"}}}});
  WaitForReady(kTasks, "elsewhere", "True/Valid");
  ExpectControllersAlive();
}

}  // namespace

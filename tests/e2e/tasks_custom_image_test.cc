// The custom-image plugin (manual 7.2.1): the task-controller and taskrun-controller
// binaries of the build against a real kube-apiserver with our CRDs (tests/testenv).
// The manual's two samples (busybox echo; kubectl with clusterRole cluster-admin) are
// applied unchanged. The test cluster has no kubelet: a Pod is stored, never run, so the
// tests play the kubelet and set the Pod's phase through the pods/status subresource.

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ro/kube/client.h"
#include "ro/kube/config.h"
#include "ro/kube/errors.h"
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

constexpr std::chrono::seconds kTimeout{90};
constexpr std::chrono::milliseconds kPoll{200};
constexpr const char* kNamespace = "automation";

const GroupVersionResource kPods{"", "v1", "pods"};
const GroupVersionResource kServiceAccounts{"", "v1", "serviceaccounts"};
const GroupVersionResource kBindings{"rbac.authorization.k8s.io", "v1", "clusterrolebindings"};
const GroupVersionResource kTasks{"automation.astronetes.io", "v1alpha1", "tasks"};
const GroupVersionResource kTaskRuns{"automation.astronetes.io", "v1alpha1", "taskruns"};

using ro::testsupport::ControllerProcess;

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

std::string ReadyOf(const json& object) {
  if (!object.is_object()) return "";
  const json status = object.value("status", json::object());
  for (const json& c : status.value("conditions", json::array())) {
    if (c.value("type", "") == "Ready") return c.value("status", "") + "/" + c.value("reason", "");
  }
  return "";
}

json TaskRun(const std::string& name, const std::string& task) {
  return {{"apiVersion", "automation.astronetes.io/v1alpha1"},
          {"kind", "TaskRun"},
          {"metadata", {{"name", name}, {"namespace", kNamespace}}},
          {"spec", {{"taskName", task}}}};
}

class TasksCustomImageTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::make_unique<ro::testenv::TempDir>("tasks-custom-image");
    ro::testenv::KubeClusterOptions options;
    options.name = "custom-image";
    cluster_ = std::make_unique<KubeCluster>(options);
    client_ = std::make_unique<DynamicClient>(
        ro::kube::LoadKubeconfigFile(cluster_->kubeconfig_path().string()));
    cluster_->Kubectl({"apply", "-f", (ro::testenv::SourceDir() / "deploy/crds/all.yaml").string()});
    cluster_->Kubectl({"wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"});
    cluster_->Kubectl({"create", "namespace", kNamespace});
    for (const char* sample : {"7.2.1.3-task-custom-image-bash.yaml", "7.2.1.3-task-custom-image-kubectl.yaml"}) {
      cluster_->Kubectl({"-n", kNamespace, "apply", "-f",
                         (ro::testenv::SourceDir() / "tests/samples" / sample).string()});
    }

    ro::testenv::WriteFile(dir_->path() / "license",
                           "licensee: E2E Tests\nexpiresAt: 2099-01-01T00:00:00Z\n");
    task_controller_ = StartController(
        "task-controller", cluster_->kubeconfig_path(), dir_->path(),
        std::vector<std::string>{"--recheck-interval=1s"});
    taskrun_controller_ = StartController(
        "taskrun-controller", cluster_->kubeconfig_path(), dir_->path(),
        std::vector<std::string>{"--pod-poll-interval=1s", "--start-timeout=3s",
                                 "--pending-recheck=1s"});
  }

  static void TearDownTestSuite() {
    taskrun_controller_.reset();
    task_controller_.reset();
    client_.reset();
    cluster_.reset();
    dir_.reset();
  }

  static json Get(const GroupVersionResource& gvr, const std::string& ns, const std::string& name) {
    try {
      return client_->Get(gvr, ns, name);
    } catch (const ro::kube::ApiError& e) {
      if (ro::kube::IsNotFound(e)) return nullptr;
      throw;
    }
  }

  static json WaitForTaskReady(const std::string& name, const std::string& ready) {
    json task;
    ro::testenv::WaitFor(
        [&] {
          task = Get(kTasks, kNamespace, name);
          return ReadyOf(task) == ready;
        },
        kTimeout, "Task " + name + " Ready=" + ready + " (last: " + task.dump() + ")", kPoll);
    return task;
  }

  static json WaitForPhase(const std::string& name, const std::string& phase) {
    json run;
    ro::testenv::WaitFor(
        [&] {
          run = Get(kTaskRuns, kNamespace, name);
          return run.is_object() && run.value("status", json::object()).value("phase", "") == phase;
        },
        kTimeout, "TaskRun " + name + " phase " + phase + " (last: " + run.dump() + ")", kPoll);
    return run;
  }

  // Plays the kubelet: the Pod's container terminated with `exit_code`.
  static void FinishPod(const std::string& name, int exit_code) {
    json pod = client_->Get(kPods, kNamespace, name);
    const std::string now = "2024-05-01T10:00:00Z";
    pod["status"] = {
        {"phase", exit_code == 0 ? "Succeeded" : "Failed"},
        {"containerStatuses",
         {{{"name", "task"},
           {"image", pod["spec"]["containers"][0]["image"]},
           {"imageID", ""},
           {"ready", false},
           {"restartCount", 0},
           {"state",
            {{"terminated",
              {{"exitCode", exit_code},
               {"reason", exit_code == 0 ? "Completed" : "Error"},
               {"startedAt", now},
               {"finishedAt", now}}}}}}}}};
    client_->UpdateStatus(kPods, kNamespace, pod);
  }

  static void ExpectControllersAlive() {
    EXPECT_TRUE(task_controller_->process().Running()) << task_controller_->process().LogTail();
    EXPECT_TRUE(taskrun_controller_->process().Running()) << taskrun_controller_->process().LogTail();
  }

  static std::unique_ptr<ro::testenv::TempDir> dir_;
  static std::unique_ptr<KubeCluster> cluster_;
  static std::unique_ptr<DynamicClient> client_;
  static std::unique_ptr<ControllerProcess> task_controller_;
  static std::unique_ptr<ControllerProcess> taskrun_controller_;
};

std::unique_ptr<ro::testenv::TempDir> TasksCustomImageTest::dir_;
std::unique_ptr<KubeCluster> TasksCustomImageTest::cluster_;
std::unique_ptr<DynamicClient> TasksCustomImageTest::client_;
std::unique_ptr<ControllerProcess> TasksCustomImageTest::task_controller_;
std::unique_ptr<ControllerProcess> TasksCustomImageTest::taskrun_controller_;

TEST_F(TasksCustomImageTest, BashSampleRunsBusyboxAndSucceedsWithItsPod) {
  const json task = WaitForTaskReady("hello-world", "True/Valid");
  EXPECT_EQ(task["status"]["plugin"], "custom-image");

  cluster_->Kubectl({"apply", "-f", "-"}, TaskRun("hello", "hello-world").dump());
  const json running = WaitForPhase("hello", "Running");
  EXPECT_EQ(ReadyOf(running), "Unknown/Running");
  EXPECT_TRUE(running["status"].contains("startTime"));
  const std::string pod_name = running["status"]["podName"];

  const json pod = client_->Get(kPods, kNamespace, pod_name);
  const json& container = pod["spec"]["containers"][0];
  EXPECT_EQ(container["image"], "busybox");
  EXPECT_EQ(container["command"], json({"echo", "hello world"}));
  EXPECT_EQ(container["securityContext"]["allowPrivilegeEscalation"], false);
  EXPECT_EQ(pod["spec"]["restartPolicy"], "Never");
  EXPECT_EQ(pod["spec"]["automountServiceAccountToken"], false);
  EXPECT_EQ(pod["metadata"]["ownerReferences"][0]["kind"], "TaskRun");
  EXPECT_EQ(pod["metadata"]["ownerReferences"][0]["uid"], running["metadata"]["uid"]);

  FinishPod(pod_name, 0);
  const json done = WaitForPhase("hello", "Succeeded");
  EXPECT_EQ(ReadyOf(done), "True/Succeeded");
  EXPECT_TRUE(done["status"].contains("completionTime"));
  EXPECT_EQ(done["status"]["podName"], pod_name);
  ExpectControllersAlive();
}

TEST_F(TasksCustomImageTest, KubectlSampleRunsUnderClusterAdminAndCleansUpWhenThePodFails) {
  WaitForTaskReady("kubectl", "True/Valid");
  cluster_->Kubectl({"apply", "-f", "-"}, TaskRun("cluster-info", "kubectl").dump());
  const json running = WaitForPhase("cluster-info", "Running");
  const std::string pod_name = running["status"]["podName"];
  const std::string uid = running["metadata"]["uid"];

  const json pod = client_->Get(kPods, kNamespace, pod_name);
  EXPECT_EQ(pod["spec"]["containers"][0]["image"], "bitnami/kubectl:1.27");
  EXPECT_EQ(pod["spec"]["containers"][0]["command"], json({"kubectl", "cluster-info"}));
  const std::string account = pod["spec"]["serviceAccountName"];
  EXPECT_EQ(pod["spec"]["automountServiceAccountToken"], true);
  EXPECT_TRUE(Get(kServiceAccounts, kNamespace, account).is_object());
  const std::string binding_name = "taskrun-" + std::string(kNamespace) + "-cluster-info-" + uid.substr(0, 8);
  const json binding = client_->Get(kBindings, "", binding_name);
  EXPECT_EQ(binding["roleRef"]["name"], "cluster-admin");
  EXPECT_EQ(binding["subjects"][0]["name"], account);
  EXPECT_EQ(binding["subjects"][0]["namespace"], kNamespace);
  const json with_finalizer = client_->Get(kTaskRuns, kNamespace, "cluster-info");
  EXPECT_EQ(with_finalizer["metadata"]["finalizers"], json({"automation.astronetes.io/taskrun-cleanup"}));

  FinishPod(pod_name, 1);
  const json failed = WaitForPhase("cluster-info", "Failed");
  EXPECT_EQ(ReadyOf(failed), "False/PodFailed");
  EXPECT_NE(failed["status"]["message"].get<std::string>().find("exited with code 1"), std::string::npos)
      << failed.dump();
  // The run's credentials are gone with the run.
  EXPECT_TRUE(Get(kBindings, "", binding_name).is_null());
  EXPECT_TRUE(Get(kServiceAccounts, kNamespace, account).is_null());
  EXPECT_FALSE(failed["metadata"].contains("finalizers"));
  EXPECT_TRUE(Get(kPods, kNamespace, pod_name).is_object());  // kept for its logs
  ExpectControllersAlive();
}

TEST_F(TasksCustomImageTest, DeletingARunningTaskRunRemovesItsClusterRoleBinding) {
  WaitForTaskReady("kubectl", "True/Valid");
  cluster_->Kubectl({"apply", "-f", "-"}, TaskRun("abandoned", "kubectl").dump());
  const json running = WaitForPhase("abandoned", "Running");
  const std::string uid = running["metadata"]["uid"];
  const std::string binding_name = "taskrun-" + std::string(kNamespace) + "-abandoned-" + uid.substr(0, 8);
  ASSERT_TRUE(Get(kBindings, "", binding_name).is_object());

  cluster_->Kubectl({"-n", kNamespace, "delete", "taskrun", "abandoned", "--wait=false"});
  ro::testenv::WaitFor([&] { return Get(kTaskRuns, kNamespace, "abandoned").is_null(); }, kTimeout,
                       "TaskRun abandoned to be deleted", kPoll);
  EXPECT_TRUE(Get(kBindings, "", binding_name).is_null());
  ExpectControllersAlive();
}

TEST_F(TasksCustomImageTest, APodDeletedBeforeItFinishedFailsTheRun) {
  cluster_->Kubectl({"apply", "-f", "-"}, TaskRun("interrupted", "hello-world").dump());
  const json running = WaitForPhase("interrupted", "Running");
  client_->Delete(kPods, kNamespace, running["status"]["podName"].get<std::string>());
  const json failed = WaitForPhase("interrupted", "Failed");
  EXPECT_EQ(ReadyOf(failed), "False/PodDeleted");
  ExpectControllersAlive();
}

TEST_F(TasksCustomImageTest, AMissingClusterRoleIsReportedUntilItExists) {
  const json task = {{"apiVersion", "automation.astronetes.io/v1alpha1"},
                     {"kind", "Task"},
                     {"metadata", {{"name", "needs-role"}, {"namespace", kNamespace}}},
                     {"spec",
                      {{"plugin", "custom-image"},
                       {"config",
                        {{"image", "busybox"}, {"command", {"true"}}, {"clusterRole", "dr-operator"}}}}}};
  cluster_->Kubectl({"apply", "-f", "-"}, task.dump());
  WaitForTaskReady("needs-role", "False/ClusterRoleNotFound");

  cluster_->Kubectl({"apply", "-f", "-"}, TaskRun("needs-role-run", "needs-role").dump());
  EXPECT_EQ(ReadyOf(WaitForPhase("needs-role-run", "Failed")), "False/ClusterRoleNotFound");

  cluster_->Kubectl({"create", "clusterrole", "dr-operator", "--verb=get", "--resource=pods"});
  WaitForTaskReady("needs-role", "True/Valid");
  ExpectControllersAlive();
}

TEST_F(TasksCustomImageTest, ATaskWithoutImageIsInvalidConfig) {
  const json task = {{"apiVersion", "automation.astronetes.io/v1alpha1"},
                     {"kind", "Task"},
                     {"metadata", {{"name", "no-image"}, {"namespace", kNamespace}}},
                     {"spec", {{"plugin", "custom-image"}, {"config", {{"command", {"true"}}}}}}};
  cluster_->Kubectl({"apply", "-f", "-"}, task.dump());
  const json bad = WaitForTaskReady("no-image", "False/InvalidConfig");
  EXPECT_FALSE(bad["status"].contains("plugin"));
  cluster_->Kubectl({"apply", "-f", "-"}, TaskRun("no-image-run", "no-image").dump());
  EXPECT_EQ(ReadyOf(WaitForPhase("no-image-run", "Failed")), "False/InvalidTask");
  ExpectControllersAlive();
}

}  // namespace

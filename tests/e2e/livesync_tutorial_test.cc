// Tutorials 8.2 (active-passive) and 8.1 (active-active) end to end, as a user runs
// them: the manual's commands and YAML files (tests/samples/) with the real kubectl
// against cluster 2, which runs the operator (CRDs, kubernetescluster-controller and the
// livesynchronization-controller binary with the local component runner), replicating a
// sample application from cluster 1. Also the operations of the tutorials (suspend,
// resume), a component killed with SIGKILL, and deleting the LiveSynchronization.
#include <signal.h>

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "livesync_e2e.h"

namespace {

using namespace livesync_e2e;

constexpr const char* kActivePassive = "8.2-active-passive-livesync.yaml";
constexpr const char* kActiveActive = "8.1-active-active-livesync.yaml";

bool Alive(pid_t pid) { return ::kill(pid, 0) == 0; }

class LiveSyncTutorialTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    EnvOptions options;
    options.label = "livesync-tutorial";
    env_ = std::make_unique<Env>(options);
  }
  static void TearDownTestSuite() { env_.reset(); }

  // Every test runs its own LiveSynchronization on its own application namespace; only
  // one runs at a time (they all select the namespaces labelled sync=true).
  void TearDown() override {
    for (const auto& [ns, name, app] : started_) {
      env_->DeleteLiveSync(ns, name);
      env_->source().Kubectl({"label", "namespace", app, "sync-"});
    }
  }

  // Tutorial `sample` ("8.2-...") in namespace `ns` of cluster 2, replicating the sample
  // application in namespace `app` of cluster 1; returns the user's working directory
  // once the LiveSynchronization is Ready and the destination has converged.
  std::filesystem::path StartTutorial(const std::string& ns, const std::string& app, const std::string& sample) {
    const std::string name = ts::YamlToJson(ReadSample(sample))["metadata"]["name"].get<std::string>();
    CreateSampleApplication(*env_, app);
    const std::filesystem::path workdir = env_->UserWorkdir(ns);
    env_->RunTutorial(workdir, sample);
    started_.emplace_back(ns, name, app);
    env_->WaitForReady(ns, name, "True", "Running");
    env_->ExpectConverges(ns, name, SpecConfig(sample), {app});
    return workdir;
  }

  static json SpecConfig(const std::string& sample) { return ts::YamlToJson(ReadSample(sample))["spec"]["config"]; }

  static std::unique_ptr<Env> env_;
  std::vector<std::tuple<std::string, std::string, std::string>> started_;
};
std::unique_ptr<Env> LiveSyncTutorialTest::env_;

TEST_F(LiveSyncTutorialTest, ActivePassiveKeepsAWarmStandbyWithDeploymentsScaledToZero) {
  const std::string ns = "dr-active-passive";
  const std::string app = "shop";
  StartTutorial(ns, app, kActivePassive);
  auto& destination = env_->destination_client();

  EXPECT_EQ(destination.Get(kDeployments, app, "web")["spec"]["replicas"], 0);
  // Cluster 2 runs no ServiceAccount controller: a "default" there could only be a copy.
  EXPECT_FALSE(destination.GetIfExists(kServiceAccounts, app, "default")) << "the tutorial excludes it";
  EXPECT_TRUE(destination.GetIfExists(kServiceAccounts, app, "web"));

  // Status: counts, lag, last resync, components, Task.
  json ls;
  te::WaitFor(
      [&] {
        ls = *env_->LiveSync(ns, "active-passive");
        const json& status = ls["status"];
        for (const json& r : status.value("resources", json::array())) {
          if (r.value("resource", "") == "deployments" && r.value("objects", 0) >= 1 && status.contains("lagSeconds")) {
            return true;
          }
        }
        return false;
      },
      kEventually, "status with object counts and lag");
  EXPECT_EQ(ls["status"]["phase"], "Running");
  EXPECT_EQ(ls["status"]["taskName"], "active-passive");
  EXPECT_GE(ls["status"]["lagSeconds"].get<double>(), 0.0);
  EXPECT_TRUE(ls["status"].contains("lastResyncTime"));
  ASSERT_EQ(ls["status"]["components"].size(), 6u) << "nats, redis and the four pipeline components";
  for (const json& component : ls["status"]["components"]) {
    EXPECT_TRUE(component["ready"].get<bool>()) << component.dump();
    EXPECT_EQ(component["message"].get<std::string>().rfind("pid ", 0), 0u) << component.dump();
  }
  EXPECT_TRUE(env_->HasEvent(ns, "active-passive", "Normal", "Running"));

  // The generated Task is the manual's ("Understanding the TaskRun"), owned by the
  // LiveSynchronization.
  json task = destination.Get(kTasks, ns, "active-passive");
  json manual = ts::YamlToJson(ReadSample("8.2-task-generated.yaml"));
  EXPECT_EQ(task["spec"]["plugin"], manual["spec"]["plugin"]);
  EXPECT_EQ(task["spec"]["config"]["resources"], manual["spec"]["config"]["resources"]);
  EXPECT_EQ(task["metadata"]["ownerReferences"][0]["kind"], "LiveSynchronization");
  EXPECT_EQ(task["metadata"]["ownerReferences"][0]["uid"], ls["metadata"]["uid"]);

  // Updates, creates and deletes in the source follow.
  env_->source().Kubectl({"-n", app, "set", "image", "deployment/web", "main=nginx:1.26"});
  env_->source().Kubectl({"-n", app, "apply", "-f", "-"}, Secret(app, "web-config", "v2").dump());
  env_->source().Kubectl({"-n", app, "apply", "-f", "-"}, Deployment(app, "api", 3).dump());
  env_->source().Kubectl({"-n", app, "delete", "service", "web"});
  env_->ExpectConverges(ns, "active-passive", SpecConfig(kActivePassive), {app});
  EXPECT_EQ(destination.Get(kDeployments, app, "web")["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:1.26");
  EXPECT_EQ(destination.Get(kDeployments, app, "api")["spec"]["replicas"], 0);
  EXPECT_FALSE(destination.GetIfExists(kServices, app, "web"));
}

TEST_F(LiveSyncTutorialTest, ChangesMadeWhileSuspendedArriveAfterResume) {
  const std::string ns = "dr-suspend";
  const std::string app = "shop-suspend";
  const auto workdir = StartTutorial(ns, app, kActivePassive);
  const std::vector<pid_t> listener = env_->ComponentPids(ns, "active-passive", "eventsListener");
  ASSERT_FALSE(listener.empty());

  // "Pause the synchronization", verbatim.
  env_->UserCommand(workdir,
                    "kubectl patch livesynchronization active-passive -p '{\"spec\":{\"suspend\":true}}' --type=merge");
  env_->WaitForReady(ns, "active-passive", "False", "Suspended");
  te::WaitFor(
      [&] {
        for (const char* component : {"eventsListener", "processor", "synchronizer", "reconciler"}) {
          json c = env_->Component(ns, "active-passive", component);
          if (!c.is_object() || c.value("replicas", -1) != 0) return false;
        }
        return !Alive(listener.front());
      },
      kEventually, "the pipeline components to stop");
  EXPECT_FALSE(env_->ComponentPids(ns, "active-passive", "nats").empty()) << "NATS keeps running while suspended";
  EXPECT_FALSE(env_->ComponentPids(ns, "active-passive", "redis").empty()) << "Redis keeps running while suspended";
  EXPECT_EQ(env_->LiveSync(ns, "active-passive")->at("status").at("phase"), "Suspended");

  // Changes while nothing replicates.
  env_->source().Kubectl({"-n", app, "apply", "-f", "-"}, Deployment(app, "late", 1).dump());
  env_->source().Kubectl({"-n", app, "apply", "-f", "-"}, Secret(app, "web-config", "changed-while-suspended").dump());
  env_->source().Kubectl({"-n", app, "delete", "ingress", "web"});
  EXPECT_FALSE(env_->destination_client().GetIfExists(kDeployments, app, "late"));

  // "Resume the synchronization", verbatim: nothing is lost.
  env_->UserCommand(workdir,
                    "kubectl patch livesynchronization active-passive -p '{\"spec\":{\"suspend\":false}}' --type=merge");
  env_->WaitForReady(ns, "active-passive", "True", "Running");
  env_->ExpectConverges(ns, "active-passive", SpecConfig(kActivePassive), {app});
  EXPECT_TRUE(env_->destination_client().GetIfExists(kDeployments, app, "late"));
  EXPECT_FALSE(env_->destination_client().GetIfExists(kIngresses, app, "web"));
}

TEST_F(LiveSyncTutorialTest, AKilledComponentIsRestartedAndReplicationGoesOn) {
  const std::string ns = "dr-kill";
  const std::string app = "shop-kill";
  StartTutorial(ns, app, kActivePassive);
  for (const char* component : {"processor", "synchronizer"}) {
    const std::vector<pid_t> before = env_->ComponentPids(ns, "active-passive", component);
    ASSERT_EQ(before.size(), 1u) << component;
    ASSERT_EQ(::kill(before.front(), SIGKILL), 0);
    te::WaitFor(
        [&] {
          const std::vector<pid_t> now = env_->ComponentPids(ns, "active-passive", component);
          json c = env_->Component(ns, "active-passive", component);
          return now.size() == 1 && now.front() != before.front() && c.value("ready", false);
        },
        kEventually, std::string(component) + " restarted");
  }
  env_->WaitForReady(ns, "active-passive", "True", "Running");
  env_->source().Kubectl({"-n", app, "apply", "-f", "-"}, Deployment(app, "after-kill", 2).dump());
  env_->ExpectConverges(ns, "active-passive", SpecConfig(kActivePassive), {app});
  EXPECT_EQ(env_->destination_client().Get(kDeployments, app, "after-kill")["spec"]["replicas"], 0);
}

TEST_F(LiveSyncTutorialTest, DeletingTheLiveSynchronizationRemovesThePipelineAndKeepsTheStandby) {
  const std::string ns = "dr-delete";
  const std::string app = "shop-delete";
  const auto workdir = StartTutorial(ns, app, kActivePassive);
  std::vector<pid_t> pids;
  for (const char* component : {"nats", "redis", "eventsListener", "processor", "synchronizer", "reconciler"}) {
    for (pid_t pid : env_->ComponentPids(ns, "active-passive", component)) pids.push_back(pid);
  }
  ASSERT_EQ(pids.size(), 6u);
  const auto runtime = env_->runtime_dir() / ns / "active-passive";
  ASSERT_TRUE(std::filesystem::exists(runtime / "files" / "config.json"));

  env_->UserCommand(workdir, "kubectl delete livesynchronization active-passive");  // waits for the finalizer
  EXPECT_FALSE(env_->LiveSync(ns, "active-passive"));
  te::WaitFor(
      [&] {
        for (pid_t pid : pids) {
          if (Alive(pid)) return false;
        }
        return true;
      },
      kEventually, "every component process to be gone");
  EXPECT_FALSE(std::filesystem::exists(runtime));
  EXPECT_FALSE(env_->destination_client().GetIfExists(kTasks, ns, "active-passive")) << "the generated Task is deleted";
  // The standby stays: destination objects are never deleted with the LiveSynchronization.
  const std::optional<json> web = env_->destination_client().GetIfExists(kDeployments, app, "web");
  ASSERT_TRUE(web);
  EXPECT_EQ((*web)["spec"]["replicas"], 0);
  EXPECT_TRUE(env_->destination_client().GetIfExists(kSecrets, app, "web-config"));
  EXPECT_FALSE(env_->controller().LogLines("pipeline removed; destination objects are kept").empty());
}

TEST_F(LiveSyncTutorialTest, ActiveActiveReplicatesTheApplicationAsItRuns) {
  const std::string ns = "dr-active-active";
  const std::string app = "shop-active";
  StartTutorial(ns, app, kActiveActive);
  auto& destination = env_->destination_client();
  EXPECT_EQ(destination.Get(kDeployments, app, "web")["spec"]["replicas"], 2) << "no transformation in 8.1";
  EXPECT_TRUE(destination.GetIfExists(kRoleBindings, app, "web-reader"));
  EXPECT_TRUE(destination.GetIfExists(kIngresses, app, "web"));
  json ls = *env_->LiveSync(ns, "active-active");
  EXPECT_FALSE(ls["status"].contains("taskName")) << "8.1 has no recoveryProcess, hence no Task";
  EXPECT_FALSE(destination.GetIfExists(kTasks, ns, "active-active"));

  env_->source().Kubectl({"-n", app, "scale", "deployment/web", "--replicas=4"});
  env_->ExpectConverges(ns, "active-active", SpecConfig(kActiveActive), {app});
  EXPECT_EQ(destination.Get(kDeployments, app, "web")["spec"]["replicas"], 4);
}

}  // namespace

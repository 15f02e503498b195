// First use as the manual tells it: tutorial 8.2 verbatim against a destination cluster
// that has none of the application's namespaces (docs/livesynchronization.md,
// "Namespaces in the destination"; docs/getting-started.md).
//   - without forceNamespaceCreation the LiveSynchronization names the missing
//     namespaces (condition DestinationNamespacesMissing, a Warning Event) and nothing
//     crashes; creating a namespace in the destination brings its objects within seconds;
//   - turning forceNamespaceCreation on creates the namespaces with the source namespace's
//     labels and annotations, keeps them in step, and the tutorial's TaskRun (whose
//     namespaceSelector sync=true runs in the destination) then scales every Deployment
//     to 1.
// Real servers: two kube-apiservers, NATS, Redis, the controllers' and kubesync's binaries.
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <string>
#include <tuple>
#include <vector>

#include "livesync_e2e.h"
#include "ro/plugins/kubernetes/namespace_metadata.h"

namespace {

using namespace livesync_e2e;

constexpr const char* kActivePassive = "8.2-active-passive-livesync.yaml";
constexpr const char* kLiveSync = "active-passive";
const GroupVersionResource kNamespaces{"", "v1", "namespaces"};

class LiveSyncEmptyStandbyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    EnvOptions options;
    options.label = "livesync-empty-standby";
    options.tasks = true;
    env_ = std::make_unique<Env>(options);
  }
  static void TearDownTestSuite() { env_.reset(); }

  void TearDown() override {
    for (const auto& [ns, app] : started_) {
      env_->DeleteLiveSync(ns, kLiveSync);
      env_->source().Kubectl({"label", "namespace", app, "sync-"});
    }
  }

  // Tutorial 8.2 verbatim in namespace `ns` of cluster 2 for the sample application in
  // namespace `app` of cluster 1, which cluster 2 does not have; returns the user's
  // working directory once the LiveSynchronization is Ready.
  std::filesystem::path StartOnEmptyStandby(const std::string& ns, const std::string& app) {
    CreateSampleApplication(*env_, app, /*destination_namespace=*/false);
    const std::filesystem::path workdir = env_->UserWorkdir(ns);
    env_->RunTutorial(workdir, kActivePassive);
    started_.emplace_back(ns, app);
    env_->WaitForReady(ns, kLiveSync, "True", "Running");
    return workdir;
  }

  // The DestinationNamespacesMissing condition of ns/active-passive (null when absent).
  json NamespacesCondition(const std::string& ns) {
    const std::optional<json> ls = env_->LiveSync(ns, kLiveSync);
    if (!ls) return json();
    for (const json& c : ls->value("status", json::object()).value("conditions", json::array())) {
      if (c.value("type", "") == "DestinationNamespacesMissing") return c;
    }
    return json();
  }

  json WaitForNamespacesCondition(const std::string& ns, const std::string& status) {
    json last;
    te::WaitFor(
        [&] {
          last = NamespacesCondition(ns);
          return last.is_object() && last.value("status", "") == status;
        },
        kEventually, "DestinationNamespacesMissing=" + status, 200ms);
    return last;
  }

  static json SpecConfig() { return ts::YamlToJson(ReadSample(kActivePassive))["spec"]["config"]; }

  static std::unique_ptr<Env> env_;
  std::vector<std::tuple<std::string, std::string>> started_;
};
std::unique_ptr<Env> LiveSyncEmptyStandbyTest::env_;

TEST_F(LiveSyncEmptyStandbyTest, MissingNamespacesAreNamedAndTheirObjectsArriveOnceTheyExist) {
  const std::string ns = "dr-empty";
  const std::string app = "shop-empty";
  StartOnEmptyStandby(ns, app);

  const json missing = WaitForNamespacesCondition(ns, "True");
  EXPECT_EQ(missing["reason"], "NamespacesNotFound");
  EXPECT_NE(missing["message"].get<std::string>().find(app), std::string::npos) << missing.dump();
  EXPECT_NE(missing["message"].get<std::string>().find("cluster-2"), std::string::npos) << missing.dump();
  te::WaitFor([&] { return env_->HasEvent(ns, kLiveSync, "Warning", "NamespacesNotFound"); }, kEventually,
              "a Warning Event NamespacesNotFound", 200ms);
  // Nothing crashed: the pipeline runs on; nothing reached the destination.
  EXPECT_EQ(env_->ReadyCondition(ns, kLiveSync).value("status", ""), "True");
  EXPECT_FALSE(env_->destination_client().GetIfExists(kNamespaces, "", app));

  // The user creates the namespace in the destination: the objects follow within
  // seconds, not at the next resync (1 h).
  const auto created = std::chrono::steady_clock::now();
  env_->destination().Kubectl({"create", "namespace", app});
  ExpectConverged(env_->source_client(), env_->destination_client(), ns, kLiveSync, SpecConfig(), {app}, 30s);
  const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - created).count();
  std::cout << "[ heal ] objects of a namespace created in the destination arrived in " << seconds << " s\n";

  const json healed = WaitForNamespacesCondition(ns, "False");
  EXPECT_EQ(healed["reason"], "NamespacesExist");
  te::WaitFor([&] { return env_->HasEvent(ns, kLiveSync, "Normal", "NamespacesExist"); }, kEventually,
              "a Normal Event NamespacesExist", 200ms);
}

TEST_F(LiveSyncEmptyStandbyTest, ANamespaceCreatedWhileThePipelineWasStoppedHealsWhenItStarts) {
  const std::string ns = "dr-away";
  const std::string app = "shop-away";
  const std::filesystem::path workdir = StartOnEmptyStandby(ns, app);
  WaitForNamespacesCondition(ns, "True");

  // The events listener is not running when the namespace appears: it is in the initial
  // list of the listener that starts later, so it never "appears" to that one.
  env_->UserCommand(workdir, "kubectl patch livesynchronization active-passive --type=merge -p "
                             "'{\"spec\":{\"suspend\":true}}'");
  env_->WaitForReady(ns, kLiveSync, "False", "Suspended");
  te::WaitFor([&] { return env_->ComponentPids(ns, kLiveSync, "eventsListener").empty(); }, kEventually,
              "the events listener stopped", 200ms);
  env_->destination().Kubectl({"create", "namespace", app});
  const auto resumed = std::chrono::steady_clock::now();
  env_->UserCommand(workdir, "kubectl patch livesynchronization active-passive --type=merge -p "
                             "'{\"spec\":{\"suspend\":false}}'");
  // Within seconds, not at the next resync (1 h).
  ExpectConverged(env_->source_client(), env_->destination_client(), ns, kLiveSync, SpecConfig(), {app}, 60s);
  std::cout << "[ heal ] objects of a namespace created while the pipeline was stopped arrived "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - resumed).count()
            << " s after it resumed\n";
  WaitForNamespacesCondition(ns, "False");
}

TEST_F(LiveSyncEmptyStandbyTest, ForcedNamespacesCarryTheSourceLabelsAndTheTutorialsTaskRunRecovers) {
  const std::string ns = "dr-forced";
  const std::string app = "shop-forced";
  const std::filesystem::path workdir = StartOnEmptyStandby(ns, app);
  env_->source().Kubectl({"label", "namespace", app, "team=web"});
  env_->source().Kubectl({"annotate", "namespace", app, "owner=web@example.com"});
  WaitForNamespacesCondition(ns, "True");

  // Turned on afterwards, as a user who read the condition does.
  env_->UserCommand(workdir,
                    "kubectl patch livesynchronization active-passive --type=merge "
                    "-p '{\"spec\":{\"config\":{\"replication\":{\"forceNamespaceCreation\":true}}}}'");
  json spec_config = SpecConfig();
  spec_config["replication"]["forceNamespaceCreation"] = true;
  ExpectConverged(env_->source_client(), env_->destination_client(), ns, kLiveSync, spec_config, {app});

  json created = env_->destination_client().Get(kNamespaces, "", app);
  EXPECT_EQ(created["metadata"]["labels"]["sync"], "true") << created.dump();
  EXPECT_EQ(created["metadata"]["labels"]["team"], "web");
  EXPECT_EQ(created["metadata"]["labels"][std::string(k8s::kNamespaceCreatedByLabel)],
            k8s::ManagedById(ns, kLiveSync));
  EXPECT_FALSE(created["metadata"]["labels"].contains(std::string(k8s::kManagedByLabel))) << "never pruned";
  EXPECT_EQ(created["metadata"]["annotations"]["owner"], "web@example.com");
  WaitForNamespacesCondition(ns, "False");

  // Kept in step with the source namespace.
  env_->source().Kubectl({"label", "namespace", app, "tier=gold", "team-"});
  te::WaitFor(
      [&] {
        created = env_->destination_client().Get(kNamespaces, "", app);
        const json& labels = created["metadata"]["labels"];
        return labels.value("tier", "") == "gold" && !labels.contains("team");
      },
      kEventually, "the destination namespace follows the source's labels", 200ms);

  // "Recover from disaster", tutorial 8.2: pause, then run the generated Task. Its
  // namespaceSelector (sync=true) is evaluated in the destination, where the created
  // namespace carries the label.
  env_->UserCommand(workdir,
                    "kubectl patch livesynchronization active-passive -p '{\"spec\":{\"suspend\":true}}' --type=merge");
  env_->WaitForReady(ns, kLiveSync, "False", "Suspended");
  te::WriteFile(workdir / "taskrun.yaml", ReadSample("8.2-taskrun.yaml"));
  env_->UserCommand(workdir, "sed -i 's/taskName: .*/taskName: active-passive/' taskrun.yaml && "
                             "kubectl create -f taskrun.yaml");
  json run;
  te::WaitFor(
      [&] {
        run = env_->destination_client().Get({"automation.astronetes.io", "v1alpha1", "taskruns"}, ns,
                                              "restore-apps");
        return run.value("status", json::object()).value("phase", "") == "Succeeded";
      },
      kEventually, "TaskRun restore-apps Succeeded", 200ms);
  const std::vector<json> deployments = env_->destination_client().List(kDeployments, app).items;
  ASSERT_FALSE(deployments.empty());
  for (const json& deployment : deployments) {
    EXPECT_EQ(deployment["spec"]["replicas"], 1) << deployment["metadata"]["name"];
  }
}

}  // namespace

// The objects a custom-image TaskRun creates (Pod, ServiceAccount, ClusterRoleBinding),
// their names, and how a Pod's status reads as the run's outcome.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>

#include "ro/plugins/tasks/custom_image.h"

namespace ro::plugins::tasks {
namespace {

using nlohmann::json;

json TaskRun(const std::string& name = "hello") {
  return {{"apiVersion", "automation.astronetes.io/v1alpha1"},
          {"kind", "TaskRun"},
          {"metadata",
           {{"name", name},
            {"namespace", "dr"},
            {"uid", "0123abcd-4567-89ab-cdef-0123456789ab"}}},
          {"spec", {{"taskName", "hello-world"}}}};
}

CustomImageConfig Busybox() { return {"busybox", {"echo", "hello world"}, std::nullopt}; }

TEST(CustomImageTest, PodRunsTheImageWithSecureDefaultsAndNoToken) {
  const json pod = RenderPod(TaskRun(), "hello-world", Busybox(), RestartPolicy::kNever);
  EXPECT_EQ(pod["metadata"]["name"], "hello-0123abcd");
  EXPECT_EQ(pod["metadata"]["namespace"], "dr");
  EXPECT_EQ(pod["metadata"]["labels"]["automation.astronetes.io/taskrun-uid"],
            "0123abcd-4567-89ab-cdef-0123456789ab");
  EXPECT_EQ(pod["metadata"]["annotations"]["automation.astronetes.io/taskrun"], "dr/hello");
  EXPECT_EQ(pod["metadata"]["annotations"]["automation.astronetes.io/task"], "hello-world");
  const json& owner = pod["metadata"]["ownerReferences"][0];
  EXPECT_EQ(owner["kind"], "TaskRun");
  EXPECT_EQ(owner["uid"], "0123abcd-4567-89ab-cdef-0123456789ab");
  EXPECT_EQ(owner["controller"], true);
  const json& spec = pod["spec"];
  EXPECT_EQ(spec["restartPolicy"], "Never");
  EXPECT_EQ(spec["automountServiceAccountToken"], false);
  EXPECT_FALSE(spec.contains("serviceAccountName"));
  const json& container = spec["containers"][0];
  EXPECT_EQ(container["image"], "busybox");
  EXPECT_EQ(container["command"], json({"echo", "hello world"}));
  EXPECT_EQ(container["securityContext"]["allowPrivilegeEscalation"], false);
  EXPECT_EQ(container["securityContext"]["capabilities"]["drop"], json({"ALL"}));
  EXPECT_EQ(container["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
}

TEST(CustomImageTest, ClusterRoleGetsAServiceAccountAndABinding) {
  CustomImageConfig config{"bitnami/kubectl:1.27", {"kubectl", "cluster-info"}, "cluster-admin"};
  const json pod = RenderPod(TaskRun(), "kubectl", config, RestartPolicy::kOnFailure);
  EXPECT_EQ(pod["spec"]["restartPolicy"], "OnFailure");
  EXPECT_EQ(pod["spec"]["serviceAccountName"], "hello-0123abcd");
  EXPECT_EQ(pod["spec"]["automountServiceAccountToken"], true);

  const json sa = RenderServiceAccount(TaskRun(), "kubectl");
  EXPECT_EQ(sa["kind"], "ServiceAccount");
  EXPECT_EQ(sa["metadata"]["name"], "hello-0123abcd");
  EXPECT_EQ(sa["metadata"]["ownerReferences"][0]["name"], "hello");

  const json crb = RenderClusterRoleBinding(TaskRun(), "kubectl", config);
  EXPECT_EQ(crb["metadata"]["name"], "taskrun-dr-hello-0123abcd");
  EXPECT_FALSE(crb["metadata"].contains("namespace"));
  EXPECT_FALSE(crb["metadata"].contains("ownerReferences"));  // cluster-scoped
  EXPECT_EQ(crb["roleRef"]["name"], "cluster-admin");
  EXPECT_EQ(crb["subjects"][0],
            json({{"kind", "ServiceAccount"}, {"name", "hello-0123abcd"}, {"namespace", "dr"}}));
  EXPECT_THROW(RenderClusterRoleBinding(TaskRun(), "x", Busybox()), std::invalid_argument);
}

TEST(CustomImageTest, LongNamesAreShortenedStablyWithAHash) {
  const std::string long_name(250, 'a');
  const std::string name = RunObjectName(TaskRun(long_name));
  EXPECT_EQ(name.size(), 253u);
  EXPECT_EQ(name, RunObjectName(TaskRun(long_name)));
  EXPECT_NE(name, RunObjectName(TaskRun(std::string(249, 'a') + "b")));
  EXPECT_EQ(BoundedName("short", 253), "short");
  // A cut never leaves "-" before the hash separator.
  const std::string cut = BoundedName(std::string(20, 'a') + "-" + std::string(20, 'b'), 32);
  EXPECT_EQ(cut.size(), 31u);
  EXPECT_EQ(cut.substr(0, 21), std::string(20, 'a') + "-");
}

TEST(CustomImageTest, OwnershipIsReadFromOwnerReferences) {
  const json pod = RenderPod(TaskRun(), "t", Busybox(), RestartPolicy::kNever);
  EXPECT_TRUE(IsOwnedBy(pod, "0123abcd-4567-89ab-cdef-0123456789ab"));
  EXPECT_FALSE(IsOwnedBy(pod, "other"));
  EXPECT_FALSE(IsOwnedBy(json::object(), "other"));
}

TEST(CustomImageTest, PodPhasesReadAsRunOutcomes) {
  EXPECT_EQ(ReadPodOutcome(json::object()).state, PodOutcome::State::kRunning);
  EXPECT_EQ(ReadPodOutcome(json::object()).message, "Pending");

  const PodOutcome pulling = ReadPodOutcome(json::parse(R"({"status": {"phase": "Pending",
    "containerStatuses": [{"name": "task", "state": {"waiting": {"reason": "ImagePullBackOff",
    "message": "Back-off pulling image"}}}]}})"));
  EXPECT_EQ(pulling.state, PodOutcome::State::kRunning);
  EXPECT_EQ(pulling.message, "Pending: container task waiting: ImagePullBackOff: Back-off pulling image");

  const PodOutcome done = ReadPodOutcome(json::parse(R"({"status": {"phase": "Succeeded"}})"));
  EXPECT_EQ(done.state, PodOutcome::State::kSucceeded);

  const PodOutcome failed = ReadPodOutcome(json::parse(R"({"status": {"phase": "Failed",
    "containerStatuses": [{"name": "task", "state": {"terminated": {"exitCode": 2,
    "reason": "Error", "message": "boom"}}}]}})"));
  EXPECT_EQ(failed.state, PodOutcome::State::kFailed);
  EXPECT_EQ(failed.message, "container task exited with code 2 (Error): boom");

  const PodOutcome evicted = ReadPodOutcome(json::parse(R"({"status": {"phase": "Failed",
    "reason": "Evicted", "message": "low on memory"}})"));
  EXPECT_EQ(evicted.message, "Evicted: low on memory");
}

}  // namespace
}  // namespace ro::plugins::tasks

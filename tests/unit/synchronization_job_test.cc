// The Synchronization job runner's pure parts: the Job and Secret it renders, how the
// outcome travels through the pod's termination message, and how a Job reads as a run.
#include "synchronization/sync_job.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "synchronization/sync_run.h"
#include "synchronization/synchronization_controller.h"

namespace ro::controllers::sync {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

std::string ReadFile(const std::filesystem::path& path) {
  // Through a stringstream: GCC 12's -Wnull-dereference misreads the istreambuf_iterator
  // constructor under -fsanitize=thread (scripts/tsan.sh builds with -Werror).
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

json Sync(const std::string& name = "synchronize-zookeeper-x7k2p", const char* restart = nullptr) {
  json sync = {{"apiVersion", "automation.astronetes.io/v1alpha1"},
               {"kind", "Synchronization"},
               {"metadata", {{"name", name}, {"namespace", "dr"}, {"uid", "u-42"}}},
               {"spec",
                {{"plugin", "zookeeper-to-zookeeper-nodes"},
                 {"config", {{"sourceName", "zookeeper-1"}, {"destinationName", "zookeeper-2"}, {"rootPath", "/"}}}}}};
  if (restart != nullptr) sync["spec"]["restartPolicy"] = restart;
  return sync;
}

CopyOutcome Succeeded() {
  CopyOutcome outcome;
  outcome.succeeded = true;
  outcome.result.counts = {.created = 6, .updated = 1, .deleted = 2, .unchanged = 9, .skipped = 1, .bytes = 1234,
                           .writes = 9, .transactions = 1};
  outcome.result.duration = std::chrono::milliseconds(812);
  return outcome;
}

json PodTerminated(const std::string& message, const std::string& finished, const std::string& reason = "Completed",
                   int exit_code = 0) {
  return {{"status",
           {{"phase", exit_code == 0 ? "Succeeded" : "Failed"},
            {"containerStatuses",
             json::array({{{"name", kJobContainerName},
                           {"state",
                            {{"terminated",
                              {{"exitCode", exit_code},
                               {"reason", reason},
                               {"message", message},
                               {"finishedAt", finished}}}}}}})}}}};
}

json JobWith(const char* condition, const std::string& reason = "", const std::string& message = "") {
  json job = {{"metadata", {{"name", "j"}, {"uid", "job-uid"}}}, {"status", json::object()}};
  if (condition != nullptr) {
    job["status"]["conditions"] =
        json::array({{{"type", condition}, {"status", "True"}, {"reason", reason}, {"message", message}}});
  }
  return job;
}

TEST(SynchronizationJob, TheJobRunsTheOperatorImageOnceAsARestrictedPodOwnedByTheSynchronization) {
  JobRunnerOptions options;
  options.image = "registry.example/resiliency-operator:1.2";
  const json job = RenderJob(Sync(), options);
  EXPECT_EQ(job["apiVersion"], "batch/v1");
  EXPECT_EQ(job["metadata"]["name"], "synchronize-zookeeper-x7k2p");
  EXPECT_EQ(job["metadata"]["namespace"], "dr");
  const json& owner = job["metadata"]["ownerReferences"][0];
  EXPECT_EQ(owner["kind"], "Synchronization");
  EXPECT_EQ(owner["uid"], "u-42");
  EXPECT_EQ(owner["controller"], true);
  EXPECT_EQ(job["spec"]["backoffLimit"], 0) << "restartPolicy Never (the default): one attempt";
  const json& pod = job["spec"]["template"]["spec"];
  EXPECT_EQ(pod["restartPolicy"], "Never");
  EXPECT_EQ(pod["automountServiceAccountToken"], false);
  EXPECT_EQ(pod["securityContext"]["runAsNonRoot"], true);
  const json& container = pod["containers"][0];
  EXPECT_EQ(container["image"], "registry.example/resiliency-operator:1.2");
  EXPECT_EQ(container["command"],
            json::array({"synchronization-controller", "--run-once=/etc/synchronization/run.json"}));
  EXPECT_EQ(container["securityContext"]["readOnlyRootFilesystem"], true);
  EXPECT_EQ(container["securityContext"]["capabilities"]["drop"], json::array({"ALL"}));
  EXPECT_EQ(pod["volumes"][0]["secret"]["secretName"], "synchronize-zookeeper-x7k2p-run");
  EXPECT_EQ(job["spec"]["template"]["metadata"]["labels"][std::string(kSynchronizationLabel)],
            "synchronize-zookeeper-x7k2p");

  EXPECT_EQ(RenderJob(Sync("s", "OnFailure"), options)["spec"]["backoffLimit"], 6);
  const std::string long_name(80, 'a');
  EXPECT_EQ(JobName(Sync(long_name)).size(), 63u);
  EXPECT_EQ(JobName(Sync(long_name)), JobName(Sync(long_name))) << "stable";
}

TEST(SynchronizationJob, TheRunFileHoldsTheCredentialsInASecretAndReadsBack) {
  DatabaseTarget source{"zookeeper-1", {"10.0.1.11:2181", "10.0.1.12:2181"}, plugins::ZooKeeperDigest{"app", "s3cret"}};
  DatabaseTarget destination{"zookeeper-2", {"10.0.2.11:2181"}, std::nullopt};
  const std::string file = RunFileJson(Sync()["spec"]["config"], source, destination, std::chrono::seconds(7));
  const json secret = RenderRunSecret(Sync(), file);
  EXPECT_EQ(secret["kind"], "Secret");
  EXPECT_EQ(secret["metadata"]["name"], "synchronize-zookeeper-x7k2p-run");
  EXPECT_EQ(secret["metadata"]["ownerReferences"][0]["uid"], "u-42");
  const json run = json::parse(secret["stringData"]["run.json"].get<std::string>());
  EXPECT_EQ(run["source"]["servers"], json::array({"10.0.1.11:2181", "10.0.1.12:2181"}));
  EXPECT_EQ(run["source"]["password"], "s3cret");
  EXPECT_FALSE(run["destination"].contains("username"));
  EXPECT_EQ(run["connectTimeoutMilliseconds"], 7000);
  EXPECT_EQ(run["config"]["rootPath"], "/");
}

TEST(SynchronizationJob, TheOutcomeTravelsThroughTheTerminationMessage) {
  const CopyOutcome back = OutcomeFromJson(OutcomeJson(Succeeded()));
  EXPECT_TRUE(back.succeeded);
  EXPECT_EQ(back.result.counts, Succeeded().result.counts);
  EXPECT_EQ(back.result.duration, std::chrono::milliseconds(812));

  CopyOutcome failed;
  failed.reason = kReasonSyncNotAuthorized;
  failed.message = "destination Database zookeeper-2: not authenticated";
  const CopyOutcome failed_back = OutcomeFromJson(OutcomeJson(failed));
  EXPECT_FALSE(failed_back.succeeded);
  EXPECT_EQ(failed_back.reason, "NotAuthorized");
  EXPECT_EQ(failed_back.message, failed.message);

  // The kubelet keeps 4 KiB: a long message (and one full of characters JSON escapes)
  // is cut, never the document.
  for (const std::string& message : {std::string(10'000, 'x'), std::string(5'000, '\x01')}) {
    failed.message = message;
    const std::string text = OutcomeJson(failed);
    EXPECT_LE(text.size(), kMaxOutcomeBytes);
    EXPECT_EQ(OutcomeFromJson(text).reason, "NotAuthorized");
  }
  for (const char* bad : {"", "garbage", "{}", R"({"succeeded":false})", R"({"succeeded":true,"counts":{"created":"1"}})"}) {
    EXPECT_THROW(OutcomeFromJson(bad), std::invalid_argument) << bad;
  }
}

TEST(SynchronizationJob, AJobReadsAsRunningSucceededOrFailedWithTheLastPodsOutcome) {
  EXPECT_EQ(ReadJob(JobWith(nullptr), {}).state, JobResult::State::kRunning);
  json waiting = {{"status",
                   {{"phase", "Pending"},
                    {"containerStatuses",
                     json::array({{{"name", kJobContainerName},
                                   {"state", {{"waiting", {{"reason", "ErrImagePull"}, {"message", "not found"}}}}}}})}}}};
  EXPECT_THAT(ReadJob(JobWith(nullptr), {waiting}).message, HasSubstr("ErrImagePull"));

  const JobResult done = ReadJob(JobWith("Complete"), {PodTerminated(OutcomeJson(Succeeded()), "2026-12-06T05:00:00Z")});
  EXPECT_EQ(done.state, JobResult::State::kSucceeded);
  ASSERT_TRUE(done.outcome.has_value());
  EXPECT_EQ(done.outcome->result.counts.created, 6);

  // OnFailure: several pods; the one that finished last speaks for the run.
  CopyOutcome unreachable;
  unreachable.reason = kReasonSyncUnreachable;
  unreachable.message = "source Database zookeeper-1: connection refused";
  CopyOutcome denied;
  denied.reason = kReasonSyncNotAuthorized;
  denied.message = "no auth";
  const JobResult failed =
      ReadJob(JobWith("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
              {PodTerminated(OutcomeJson(denied), "2026-12-06T05:00:09Z", "Error", 1),
               PodTerminated(OutcomeJson(unreachable), "2026-12-06T05:00:01Z", "Error", 1)});
  EXPECT_EQ(failed.state, JobResult::State::kFailed);
  ASSERT_TRUE(failed.outcome.has_value());
  EXPECT_EQ(failed.outcome->reason, "NotAuthorized");

  // Killed before it could write an outcome: the Job's own reason.
  const JobResult killed = ReadJob(JobWith("Failed", "DeadlineExceeded", "Job was active longer than specified"),
                                   {PodTerminated("", "2026-12-06T05:00:09Z", "OOMKilled", 137)});
  EXPECT_EQ(killed.state, JobResult::State::kFailed);
  EXPECT_FALSE(killed.outcome.has_value());
  EXPECT_THAT(killed.message, HasSubstr("DeadlineExceeded"));
  EXPECT_THAT(killed.message, HasSubstr("OOMKilled"));
}

TEST(SynchronizationJob, RunOnceWritesAnInvalidRunFileAsAnOutcomeAndExits2) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("ro-unit-sync-run-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "run.json") << R"({"config": {"sourceName": "a"}, "source": {}, "destination": {}})";
  EXPECT_EQ(RunOnceMain((dir / "run.json").string(), (dir / "termination-log").string()), 2);
  const CopyOutcome outcome = OutcomeFromJson(ReadFile(dir / "termination-log"));
  EXPECT_FALSE(outcome.succeeded);
  EXPECT_EQ(outcome.reason, "InvalidConfig");
  EXPECT_EQ(RunOnceMain((dir / "missing.json").string(), (dir / "termination-log").string()), 2);
  EXPECT_THAT(OutcomeFromJson(ReadFile(dir / "termination-log")).message, HasSubstr("cannot read"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ro::controllers::sync

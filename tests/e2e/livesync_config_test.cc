// What a LiveSynchronization that cannot run shows, against the real operator binaries
// on cluster 2 (livesync_e2e.h): the manual's invalid "*.test" sample, patches and
// resync periods the CRD schema cannot check, missing clusters and resources the source
// does not serve, the one-per-namespace rule; the manual's other spellings
// (spec.config.resyncPeriod, op: delete). Every problem is a Ready=False condition
// with its reason and the field, a Warning Event and a log line, never a crash; fixing
// the spec recovers; an invalid edit of a running LiveSynchronization stops its
// components and keeps what is replicated. Also the bucketName variant (manual 6.2.3):
// the originals land in the bucket.
#include <curl/curl.h>
#include <signal.h>

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "livesync_e2e.h"
#include "ro/plugins/s3_client.h"

namespace {

using namespace livesync_e2e;

bool Alive(pid_t pid) { return ::kill(pid, 0) == 0; }

json LiveSyncObject(const std::string& name, json config) {
  return {{"apiVersion", "automation.astronetes.io/v1alpha1"},
          {"kind", "LiveSynchronization"},
          {"metadata", {{"name", name}}},
          {"spec", {{"plugin", "kubernetes-objects-to-kubernetes"}, {"suspend", false}, {"config", std::move(config)}}}};
}

// ConfigMaps of the source namespaces labelled `label`=true, cluster-1 -> cluster-2.
json ConfigMapsConfig(const std::string& label) {
  return {{"sourceName", "cluster-1"},
          {"destinationName", "cluster-2"},
          {"replication",
           {{"resources", json::array({{{"version", "v1"},
                                        {"resource", "configmaps"},
                                        {"filters", {{"namespaceSelector", {{"matchLabels", {{label, "true"}}}}}}}}})}}}};
}

json ConfigMap(const std::string& ns, const std::string& name) {
  return {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", Meta(ns, name)}, {"data", {{"k", "v"}}}};
}

class LiveSyncConfigTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    curl_global_init(CURL_GLOBAL_DEFAULT);  // the S3 client, before any thread uses curl
    EnvOptions options;
    options.label = "livesync-config";
    options.s3 = true;
    options.tasks = true;   // the recovery from the bucket's originals
    options.drills = true;  // roctl drill while the LiveSynchronization replicates
    env_ = std::make_unique<Env>(options);
  }
  static void TearDownTestSuite() { env_.reset(); }

  void TearDown() override {
    for (const auto& [ns, name] : created_) env_->DeleteLiveSync(ns, name);
  }

  // Registers cluster `which` (1 or 2) as KubernetesCluster `name` in the user's
  // namespace, the way manual 5.2 does.
  static void ImportCluster(const std::filesystem::path& workdir, const std::string& name, int which) {
    const std::string n = std::to_string(which);
    env_->UserCommand(workdir, "kubectl create secret generic " + name +
                                   "-kubeconfig --from-file=kubeconfig.yaml=cluster-" + n + "-kubeconfig.yaml");
    te::WriteFile(workdir / (name + ".yaml"), "apiVersion: assets.astronetes.io/v1alpha1\nkind: KubernetesCluster\n"
                                              "metadata:\n  name: " + name + "\nspec:\n  secretName: " + name +
                                                  "-kubeconfig\n");
    env_->UserCommand(workdir, "kubectl create -f " + name + ".yaml");
  }

  void Apply(const std::string& ns, const json& live_sync) {
    env_->destination().Kubectl({"-n", ns, "apply", "-f", "-"}, live_sync.dump());
    created_.emplace_back(ns, live_sync["metadata"]["name"]);
  }

  // Bucket asset `name` in namespace `ns` for s3rver bucket `s3_bucket` (created), with
  // its access keys in Secret bucket-credentials.
  static void CreateBucketAsset(const std::string& ns, const std::string& name, const std::string& s3_bucket) {
    env_->s3().CreateBucket(s3_bucket);
    env_->destination().Kubectl(
        {"-n", ns, "apply", "-f", "-"},
        json{{"apiVersion", "v1"},
             {"kind", "Secret"},
             {"metadata", {{"name", "bucket-credentials"}}},
             {"stringData", {{"accessKeyID", env_->s3().access_key()}, {"secretAccessKey", env_->s3().secret_key()}}}}
            .dump());
    env_->destination().Kubectl({"-n", ns, "apply", "-f", "-"},
                                json{{"apiVersion", "assets.astronetes.io/v1alpha1"},
                                     {"kind", "Bucket"},
                                     {"metadata", {{"name", name}}},
                                     {"spec",
                                      {{"generic",
                                        {{"endpoint", env_->s3().endpoint()},
                                         {"name", s3_bucket},
                                         {"useSSL", false},
                                         {"secretName", "bucket-credentials"}}}}}}
                                    .dump());
  }

  // Ready=False `reason` whose message names `field`, with a Warning Event and a log line.
  void ExpectProblem(const std::string& ns, const std::string& name, const std::string& reason,
                     const std::string& field) {
    json condition = env_->WaitForReady(ns, name, "False", reason);
    EXPECT_NE(condition.value("message", "").find(field), std::string::npos)
        << name << ": the message names " << field << ": " << condition.dump();
    te::WaitFor([&] { return env_->HasEvent(ns, name, "Warning", reason); }, kEventually,
                "Warning Event " + reason + " about " + name);
    te::WaitFor([&] { return env_->LoggedCondition(ns, name, reason); }, kEventually,
                "log line of " + name + " becoming " + reason);
    EXPECT_EQ(env_->LiveSync(ns, name)->at("status").value("phase", ""), "Failed");
  }

  static std::unique_ptr<Env> env_;
  std::vector<std::pair<std::string, std::string>> created_;
};
std::unique_ptr<Env> LiveSyncConfigTest::env_;

TEST_F(LiveSyncConfigTest, TheManualsExcludeRegexIsReportedAndAnInvalidEditKeepsWhatIsReplicated) {
  const std::string ns = "cfg-regex";
  const auto workdir = env_->UserWorkdir(ns);
  ImportCluster(workdir, "source", 1);       // the names of the 6.2.2 samples
  ImportCluster(workdir, "destination", 2);
  te::WriteFile(workdir / "livesynchronization.yaml", ReadSample("6.2.2-livesynchronization-exclude-regex.yaml"));
  env_->UserCommand(workdir, "kubectl apply -f livesynchronization.yaml");
  created_.emplace_back(ns, "livesynchronization-sample");
  ExpectProblem(ns, "livesynchronization-sample", "InvalidRegex",
                "spec.config.replication.resources[0].filters.nameSelector.excludeRegex[0]");
  EXPECT_TRUE(env_->LiveSync(ns, "livesynchronization-sample")->at("status").at("components").empty())
      << "nothing was started";
  EXPECT_TRUE(env_->controller().process().Running());

  // What the sample meant: names ending in ".test".
  const std::string fix =
      "kubectl patch livesynchronization livesynchronization-sample --type=json -p "
      "'[{\"op\":\"replace\",\"path\":\"/spec/config/replication/resources/0/filters/nameSelector/excludeRegex/0\","
      "\"value\":\"\\\\.test$\"}]'";
  env_->UserCommand(workdir, fix);
  env_->WaitForReady(ns, "livesynchronization-sample", "True", "Running");
  env_->source().Kubectl({"create", "namespace", "regex-app"});
  env_->destination().Kubectl({"create", "namespace", "regex-app"});
  env_->source().Kubectl({"apply", "-f", "-"}, ConfigMap("regex-app", "settings").dump());
  env_->source().Kubectl({"apply", "-f", "-"}, ConfigMap("regex-app", "settings.test").dump());
  json fixed = env_->LiveSync(ns, "livesynchronization-sample")->at("spec").at("config");
  env_->ExpectConverges(ns, "livesynchronization-sample", fixed, {"regex-app"});
  ASSERT_TRUE(env_->destination_client().GetIfExists(kConfigMaps, "regex-app", "settings"));
  EXPECT_FALSE(env_->destination_client().GetIfExists(kConfigMaps, "regex-app", "settings.test"));

  // An invalid edit of the running LiveSynchronization: components stop, the copies stay.
  const std::vector<pid_t> processor = env_->ComponentPids(ns, "livesynchronization-sample", "processor");
  ASSERT_EQ(processor.size(), 1u);
  env_->destination().Kubectl(
      {"-n", ns, "patch", "livesynchronization", "livesynchronization-sample", "--type=json", "-p",
       R"([{"op":"replace","path":"/spec/config/replication/resources/0/filters/nameSelector/excludeRegex/0","value":"*.test"}])"});
  env_->WaitForReady(ns, "livesynchronization-sample", "False", "InvalidRegex");
  te::WaitFor([&] { return !Alive(processor.front()); }, kEventually, "the processor to stop");
  EXPECT_TRUE(env_->destination_client().GetIfExists(kConfigMaps, "regex-app", "settings"))
      << "an invalid LiveSynchronization keeps what is already replicated";
  env_->UserCommand(workdir, fix);
  env_->WaitForReady(ns, "livesynchronization-sample", "True", "Running");
}

TEST_F(LiveSyncConfigTest, PatchesAndPeriodsTheSchemaCannotCheckAreReportedWithTheirField) {
  const std::string ns = "cfg-invalid";
  env_->destination().Kubectl({"create", "namespace", ns});
  struct Case {
    std::string name;
    json config;
    std::string reason;
    std::string field;
  };
  std::vector<Case> cases;
  {
    json c = ConfigMapsConfig("x");
    c["replication"]["resources"][0]["transformation"] = {{"patch", json::array({{{"op", "add"}, {"path", "/data/x"}}})}};
    cases.push_back({"add-without-value", c, "InvalidPatch", "spec.config.replication.resources[0].transformation.patch[0]"});
  }
  {
    json c = ConfigMapsConfig("x");
    c["replication"]["resources"][0]["transformation"] = {
        {"patch", json::array({{{"op", "replace"}, {"path", "data/x"}, {"value", "y"}}})}};
    cases.push_back({"relative-path", c, "InvalidPatch", "spec.config.replication.resources[0].transformation.patch[0].path"});
  }
  {
    json c = ConfigMapsConfig("x");
    c["replication"]["resources"][0]["recoveryProcess"] = {
        {"fromPatch", json::array({{{"op", "replace"}, {"path", "/metadata/name"}, {"value", "renamed"}}})}};
    cases.push_back({"identity-path", c, "InvalidPatch", "spec.config.replication.resources[0].recoveryProcess.fromPatch[0].path"});
  }
  {
    json c = ConfigMapsConfig("x");
    c["replication"]["resyncPeriod"] = "0s";
    cases.push_back({"zero-resync", c, "InvalidResyncPeriod", "spec.config.replication.resyncPeriod"});
  }
  {
    json c = ConfigMapsConfig("x");
    json transform = {{"patch", json::array({{{"op", "replace"}, {"path", "/data/k"}, {"value", "w"}}})}};
    c["replication"]["resources"] = json::array({{{"version", "v1"}, {"resource", "configmaps"}, {"transformation", transform}},
                                                 {{"version", "v1"}, {"resource", "configmaps"}, {"transformation", transform}}});
    cases.push_back({"overlapping", c, "OverlappingTransformations", "spec.config.replication.resources[1]"});
  }
  for (const Case& c : cases) Apply(ns, LiveSyncObject(c.name, c.config));
  for (const Case& c : cases) ExpectProblem(ns, c.name, c.reason, c.field);

  // What the schema can check never reaches the controller: kubectl shows the error,
  // naming the field (this apiserver leaves the list indexes out of the path).
  struct Rejected {
    json::json_pointer field;
    json value;
    std::string shown;
  };
  for (const Rejected& r : std::vector<Rejected>{
           {json::json_pointer("/replication/resources/0/transformation"),
            {{"patch", json::array({{{"op", "erase"}, {"path", "/data/k"}}})}},
            "spec.config.replication.resources.transformation.patch.op: Unsupported value: \"erase\""},
           {json::json_pointer("/replication/resources/0/recoveryProcess"),
            {{"fromPatch", json::array({{{"op", "move"}, {"path", "/data/k"}}})}},
            "spec.config.replication.resources.recoveryProcess.fromPatch.op: Unsupported value: \"move\""},
           {json::json_pointer("/replication/resyncPeriod"), "1 hour", "spec.config.replication.resyncPeriod"},
           {json::json_pointer("/resyncPeriod"), "1 hour", "spec.config.resyncPeriod"}}) {
    json config = ConfigMapsConfig("x");
    config[r.field] = r.value;
    te::RunOptions options;
    options.check = false;
    options.stdin_data = LiveSyncObject("rejected", config).dump();
    const te::CommandResult result = te::RunCommand(
        {"kubectl", "--kubeconfig", env_->destination().kubeconfig_path().string(), "-n", ns, "apply", "-f", "-"},
        options);
    EXPECT_NE(result.exit_code, 0) << r.field.to_string();
    EXPECT_NE(result.err.find(r.shown), std::string::npos) << result.err;
  }
  EXPECT_TRUE(env_->controller().process().Running());
}

// The manual's 6.2.5 text puts resyncPeriod directly under spec.config and its 6.2.6
// table spells remove "delete": both are accepted and do what they say; a resyncPeriod
// in both places that disagrees is reported on its field.
TEST_F(LiveSyncConfigTest, TheManualsOtherSpellingsOfResyncPeriodAndRemoveAreAccepted) {
  const std::string ns = "cfg-spellings";
  const std::string app = "spell-app";
  const auto workdir = env_->UserWorkdir(ns);
  ImportCluster(workdir, "cluster-1", 1);
  ImportCluster(workdir, "cluster-2", 2);
  env_->source().Kubectl({"create", "namespace", app});
  env_->source().Kubectl({"label", "namespace", app, "spell=true"});
  env_->destination().Kubectl({"create", "namespace", app});
  json settings = ConfigMap(app, "settings");
  settings["data"]["drop"] = "only in the source";
  env_->source().Kubectl({"apply", "-f", "-"}, settings.dump());

  json config = ConfigMapsConfig("spell");
  config["resyncPeriod"] = "3s";
  config["replication"]["resources"][0]["transformation"] = {
      {"patch", json::array({{{"op", "delete"}, {"path", "/data/drop"}}})}};
  config["replication"]["resources"][0]["recoveryProcess"] = {
      {"fromPatch", json::array({{{"op", "delete"}, {"path", "/data/k"}}})}};
  Apply(ns, LiveSyncObject("spellings", config));
  env_->WaitForReady(ns, "spellings", "True", "Running");
  EXPECT_EQ(env_->LiveSync(ns, "spellings")->at("spec").at("config").value("resyncPeriod", ""), "3s")
      << "the CRD keeps spec.config.resyncPeriod";

  // op: delete removed the field in the destination.
  env_->ExpectConverges(ns, "spellings", config, {app});
  const json copy = env_->destination_client().Get(kConfigMaps, app, "settings");
  EXPECT_EQ(copy["data"], (json{{"k", "v"}})) << copy.dump();
  // The generated recovery Task carries the RFC 6902 spelling.
  const json task = env_->destination_client().Get(kTasks, ns, "spellings");
  EXPECT_EQ(task["spec"]["config"]["resources"][0]["patch"]["operations"],
            json::parse(R"([{"op": "remove", "path": "/data/k"}])"))
      << task.dump();

  // resyncPeriod: 3s is the period in use: the last resync keeps moving.
  std::string first_resync;
  te::WaitFor(
      [&] {
        first_resync = env_->LiveSync(ns, "spellings")->at("status").value("lastResyncTime", "");
        return !first_resync.empty();
      },
      kEventually, "a first resync of spellings");
  te::WaitFor(
      [&] {
        const std::string now = env_->LiveSync(ns, "spellings")->at("status").value("lastResyncTime", "");
        return !now.empty() && now != first_resync;
      },
      60s, "another resync of spellings within seconds (resyncPeriod 3s, not the default 1h)");

  // Set in both places with different durations: a configuration error on its field.
  env_->destination().Kubectl({"-n", ns, "patch", "livesynchronization", "spellings", "--type=json", "-p",
                               R"([{"op":"add","path":"/spec/config/replication/resyncPeriod","value":"1h"}])"});
  ExpectProblem(ns, "spellings", "InvalidResyncPeriod", "spec.config.resyncPeriod");
  EXPECT_NE(env_->ReadyCondition(ns, "spellings").value("message", "").find("conflicts with replication.resyncPeriod"),
            std::string::npos)
      << env_->ReadyCondition(ns, "spellings").dump();
  // The same duration in both places is no conflict.
  env_->destination().Kubectl({"-n", ns, "patch", "livesynchronization", "spellings", "--type=json", "-p",
                               R"([{"op":"replace","path":"/spec/config/replication/resyncPeriod","value":"0h0m3s"}])"});
  env_->WaitForReady(ns, "spellings", "True", "Running");
}

TEST_F(LiveSyncConfigTest, MissingClustersAndUnservedResourcesAreReportedUntilTheyExist) {
  const std::string ns = "cfg-refs";
  const auto workdir = env_->UserWorkdir(ns);
  json config = ConfigMapsConfig("refs");
  config["replication"]["resources"].push_back({{"group", "example.com"}, {"version", "v1"}, {"resource", "widgets"}});
  Apply(ns, LiveSyncObject("refs", config));
  ExpectProblem(ns, "refs", "SourceClusterNotFound", "spec.config.sourceName");
  ImportCluster(workdir, "cluster-1", 1);
  ExpectProblem(ns, "refs", "DestinationClusterNotFound", "spec.config.destinationName");
  ImportCluster(workdir, "cluster-2", 2);
  ExpectProblem(ns, "refs", "UnknownResource", "spec.config.replication.resources[1]");
  env_->destination().Kubectl(
      {"-n", ns, "patch", "livesynchronization", "refs", "--type=json", "-p",
       R"([{"op":"remove","path":"/spec/config/replication/resources/1"}])"});
  env_->WaitForReady(ns, "refs", "True", "Running");
  EXPECT_TRUE(env_->HasEvent(ns, "refs", "Normal", "Running"));
}

TEST_F(LiveSyncConfigTest, ASecondLiveSynchronizationSharingAClusterWaitsForTheFirst) {
  const std::string ns = "cfg-conflict";
  const auto workdir = env_->UserWorkdir(ns);
  ImportCluster(workdir, "cluster-1", 1);
  ImportCluster(workdir, "cluster-2", 2);
  Apply(ns, LiveSyncObject("first", ConfigMapsConfig("first")));
  env_->WaitForReady(ns, "first", "True", "Running");
  Apply(ns, LiveSyncObject("second", ConfigMapsConfig("second")));
  json condition = env_->WaitForReady(ns, "second", "False", "ConflictingLiveSynchronization");
  EXPECT_NE(condition.value("message", "").find("first"), std::string::npos) << condition.dump();
  EXPECT_TRUE(env_->HasEvent(ns, "second", "Warning", "ConflictingLiveSynchronization"));
  EXPECT_EQ(env_->ReadyCondition(ns, "first").value("status", ""), "True") << "the older one keeps running";

  env_->DeleteLiveSync(ns, "first");
  env_->WaitForReady(ns, "second", "True", "Running");
}

// What another S3 client reads at `key` of bucket `bucket` (botocore, Debian's
// python3-boto3, path-style against s3rver): the bucket holds what we think it holds.
std::string ReadWithBoto3(const te::S3Server& s3, const std::string& bucket, const std::string& key) {
  const std::string script =
      "import sys, boto3\n"
      "from botocore.config import Config\n"
      "c = boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id=sys.argv[2],\n"
      "                 aws_secret_access_key=sys.argv[3], region_name='us-east-1',\n"
      "                 config=Config(s3={'addressing_style': 'path'}))\n"
      "sys.stdout.write(c.get_object(Bucket=sys.argv[4], Key=sys.argv[5])['Body'].read().decode())\n";
  return te::RunCommand({"/usr/bin/python3", "-c", script, "http://" + s3.endpoint(), s3.access_key(), s3.secret_key(),
                         bucket, key})
      .out;
}

// Manual 6.2.3 end to end: a LiveSynchronization with bucketName keeps the source
// definitions in the bucket (checked with another S3 client too), and a recovery of its
// generated Task with fromOriginal puts the source definition back in the destination:
// the field the transformation changed (replicas 0) is the source's again (2).
TEST_F(LiveSyncConfigTest, BucketNameKeepsTheOriginalsAndARecoveryFromThemRestoresTheSource) {
  const std::string ns = "cfg-bucket";
  const std::string app = "bucket-app";
  const auto workdir = env_->UserWorkdir(ns);
  ImportCluster(workdir, "cluster-1", 1);
  ImportCluster(workdir, "cluster-2", 2);
  CreateBucketAsset(ns, "backups", "dr-originals");
  env_->source().Kubectl({"create", "namespace", app});
  env_->source().Kubectl({"label", "namespace", app, "bucket=true"});
  env_->destination().Kubectl({"create", "namespace", app});
  // The generated Task selects namespaces as the LiveSynchronization does, in the
  // destination: the standby's namespace carries the label too.
  env_->destination().Kubectl({"label", "namespace", app, "bucket=true"});
  env_->source().Kubectl({"apply", "-f", "-"}, Deployment(app, "web", 2).dump());

  json config = json::parse(R"({
    "sourceName": "cluster-1", "destinationName": "cluster-2", "bucketName": "backups",
    "replication": {"resources": [
      {"group": "apps", "version": "v1", "resource": "deployments",
       "filters": {"namespaceSelector": {"matchLabels": {"bucket": "true"}}},
       "transformation": {"patch": [{"op": "replace", "path": "/spec/replicas", "value": 0}]},
       "recoveryProcess": {"fromOriginal": {"enabled": true}}}]}})");
  Apply(ns, LiveSyncObject("with-bucket", config));
  env_->WaitForReady(ns, "with-bucket", "True", "Running");
  env_->ExpectConverges(ns, "with-bucket", config, {app});
  EXPECT_EQ(env_->destination_client().Get(kDeployments, app, "web")["spec"]["replicas"], 0);

  // docs/kubesync.md "Bucket object path": <ls namespace>/<ls name>/<g>-<v>-<r>/<ns>.<name>.
  ro::plugins::S3Client s3(ro::plugins::GenericBucketConfig(
      env_->s3().endpoint(), false, "dr-originals", {env_->s3().access_key(), env_->s3().secret_key()}));
  const std::string key = ns + "/with-bucket/apps-v1-deployments/" + app + ".web";
  std::optional<std::string> original;
  te::WaitFor([&] { return (original = s3.GetObject(key)).has_value(); }, kEventually, "the original in the bucket");
  EXPECT_EQ(json::parse(*original)["spec"]["replicas"], 2) << "the bucket keeps the untransformed original";

  const json by_boto3 = json::parse(ReadWithBoto3(env_->s3(), "dr-originals", key));
  EXPECT_EQ(by_boto3["spec"]["replicas"], 2);
  EXPECT_EQ(by_boto3["metadata"]["name"], "web");

  json task = env_->destination_client().Get(kTasks, ns, "with-bucket");
  EXPECT_EQ(task["spec"]["config"]["bucketName"], "backups");
  EXPECT_EQ(task["spec"]["config"]["resources"][0]["fromOriginal"]["enabled"], true);

  // Disaster: replication stops (tutorial 8.2), the recovery restores from the bucket.
  env_->destination().Kubectl({"-n", ns, "patch", "livesynchronization", "with-bucket", "--type=merge", "-p",
                               R"({"spec":{"suspend":true}})"});
  env_->WaitForReady(ns, "with-bucket", "False", "Suspended");
  env_->destination().Kubectl({"-n", ns, "apply", "-f", "-"},
                              json{{"apiVersion", "automation.astronetes.io/v1alpha1"},
                                   {"kind", "TaskRun"},
                                   {"metadata", {{"name", "restore-originals"}}},
                                   {"spec", {{"taskName", "with-bucket"}}}}
                                  .dump());
  json run;
  te::WaitFor(
      [&] {
        run = env_->destination_client().Get(kTaskRuns, ns, "restore-originals");
        const std::string phase = run.value("status", json::object()).value("phase", "");
        return phase == "Succeeded" || phase == "Failed";
      },
      kEventually, "TaskRun restore-originals to finish", 200ms);
  ASSERT_EQ(run["status"]["phase"], "Succeeded") << run.dump();
  EXPECT_EQ(run["status"]["objectsPatched"], 1);
  EXPECT_EQ(env_->destination_client().Get(kDeployments, app, "web")["spec"]["replicas"], 2)
      << "the source definition is back";

  // Replication resumes; the source's deletion removes the original too.
  env_->destination().Kubectl({"-n", ns, "patch", "livesynchronization", "with-bucket", "--type=merge", "-p",
                               R"({"spec":{"suspend":false}})"});
  env_->WaitForReady(ns, "with-bucket", "True", "Running");

  env_->source().Kubectl({"-n", app, "delete", "deployment", "web"});
  te::WaitFor([&] { return !s3.GetObject(key).has_value(); }, kEventually, "the original removed from the bucket");
}

// A DR drill (docs/runbook.md "Every week") while the LiveSynchronization replicates:
// `roctl drill run` copies the standby namespace (a Backup of cluster 2 to the bucket,
// restored as <namespace>-drill) and recovers the copy with the generated Task's patches,
// printing the drill's RTO; meanwhile changes in the source keep reaching the standby and
// never the copy, and the reconciler (it prunes only what the LiveSynchronization manages)
// leaves the copy alone; `roctl drill cleanup` removes the copy and leaves the standby
// exactly as the replication makes it.
TEST_F(LiveSyncConfigTest, ADrillDuringReplicationRecoversACopyAndLeavesTheStandbyToTheReplication) {
  const std::string ns = "cfg-drill";
  const std::string app = "drill-app";
  const std::string copy = app + "-drill";
  const auto workdir = env_->UserWorkdir(ns);
  ImportCluster(workdir, "cluster-1", 1);
  ImportCluster(workdir, "cluster-2", 2);
  CreateBucketAsset(ns, "drills", "drills");
  for (te::KubeCluster* cluster : {&env_->source(), &env_->destination()}) {
    cluster->Kubectl({"create", "namespace", app});
    cluster->Kubectl({"label", "namespace", app, "drill=true"});
  }
  env_->source().Kubectl({"apply", "-f", "-"}, Deployment(app, "web", 2).dump());
  env_->source().Kubectl({"apply", "-f", "-"}, ConfigMap(app, "settings").dump());

  json config = json::parse(R"({
    "sourceName": "cluster-1", "destinationName": "cluster-2",
    "replication": {"resyncPeriod": "5s", "resources": [
      {"group": "apps", "version": "v1", "resource": "deployments",
       "filters": {"namespaceSelector": {"matchLabels": {"drill": "true"}}},
       "transformation": {"patch": [{"op": "replace", "path": "/spec/replicas", "value": 0}]},
       "recoveryProcess": {"fromPatch": [{"op": "replace", "path": "/spec/replicas", "value": 1}]}},
      {"version": "v1", "resource": "configmaps",
       "filters": {"namespaceSelector": {"matchLabels": {"drill": "true"}}}}]}})");
  Apply(ns, LiveSyncObject("drilled", config));
  env_->WaitForReady(ns, "drilled", "True", "Running");
  env_->ExpectConverges(ns, "drilled", config, {app});

  te::RunOptions no_check;
  no_check.check = false;
  no_check.timeout = std::chrono::seconds{150};
  const std::string roctl = (te::BinDir() / "roctl").string();
  const std::string kubeconfig = env_->destination().kubeconfig_path().string();
  const te::CommandResult run = te::RunCommand({roctl, "drill", "run", "drilled", "--name", "rehearsal", "--bucket",
                                                "drills", "-n", ns, "--kubeconfig", kubeconfig, "--timeout", "120s"},
                                               no_check);
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_NE(run.out.find("Drill RTO: "), std::string::npos) << run.out;
  auto& cluster2 = env_->destination_client();
  const json recovered = cluster2.Get(kDeployments, copy, "web");
  EXPECT_EQ(recovered["spec"]["replicas"], 1) << "the copy is recovered";
  EXPECT_FALSE(recovered["metadata"].value("labels", json::object()).contains(std::string(k8s::kManagedByLabel)));
  EXPECT_EQ(cluster2.Get(kDeployments, app, "web")["spec"]["replicas"], 0) << "the standby stays a standby";

  // Replication goes on during the drill: the standby follows the source, the copy does not.
  json changed = ConfigMap(app, "settings");
  changed["data"]["k"] = "changed";
  env_->source().Kubectl({"apply", "-f", "-"}, changed.dump());
  env_->source().Kubectl({"apply", "-f", "-"}, ConfigMap(app, "added").dump());
  env_->ExpectConverges(ns, "drilled", config, {app});
  EXPECT_EQ(cluster2.Get(kConfigMaps, app, "settings")["data"]["k"], "changed");
  EXPECT_EQ(cluster2.Get(kConfigMaps, copy, "settings")["data"]["k"], "v");
  EXPECT_FALSE(cluster2.GetIfExists(kConfigMaps, copy, "added"));
  // A resync (every 5 s) after the copy existed: the reconciler never prunes the copy.
  const auto last_resync = [&] {
    return env_->LiveSync(ns, "drilled")->at("status").value("lastResyncTime", "");
  };
  const std::string resynced_before = last_resync();
  te::WaitFor([&] { return last_resync() != resynced_before; }, kEventually, "a resync after the drill's copy");
  EXPECT_TRUE(cluster2.GetIfExists(kDeployments, copy, "web"));
  EXPECT_TRUE(cluster2.GetIfExists(kConfigMaps, copy, "settings"));

  const te::CommandResult cleanup = te::RunCommand(
      {roctl, "drill", "cleanup", "rehearsal", "-n", ns, "--kubeconfig", kubeconfig, "--timeout", "120s"}, no_check);
  ASSERT_EQ(cleanup.exit_code, 0) << cleanup.out << cleanup.err;
  EXPECT_FALSE(cluster2.GetIfExists({"", "v1", "namespaces"}, "", copy));
  env_->ExpectConverges(ns, "drilled", config, {app});
  EXPECT_EQ(cluster2.Get(kDeployments, app, "web")["spec"]["replicas"], 0);
}

}  // namespace

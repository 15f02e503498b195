// The API surface users `kubectl apply`: the CRDs of deploy/crds/, every YAML sample of
// the manual (tests/samples/) and the operator manifests of deploy/operator/, checked
// with the real kubectl against a real kube-apiserver 1.20 (tests/testenv).
//
// Invalid objects are sent with --validate=false so that the apiserver itself (the CRD
// schema) rejects them, as it does for every client; one case also checks kubectl's own
// validation names the field.

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "ro/testenv/testenv.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ro::testenv::KubeCluster;
using ro::testenv::TestEnvError;

// A CRD becomes Established within a second or two; generous for 2 busy cores.
constexpr std::chrono::seconds kEstablishTimeout{60};
constexpr const char* kOperatorNamespace = "resiliency-operator";

// The CRDs of deploy/crds/: name -> short name (the kubectl contract of docs/api.md).
const std::map<std::string, std::string>& ExpectedCrds() {
  static const std::map<std::string, std::string> crds = {
      {"kubernetesclusters.assets.astronetes.io", "kc"},
      {"buckets.assets.astronetes.io", "bkt"},
      {"databases.assets.astronetes.io", "rodb"},
      {"livesynchronizations.automation.astronetes.io", "lsync"},
      {"synchronizations.automation.astronetes.io", "rosync"},
      {"synchronizationplans.automation.astronetes.io", "syncplan"},
      {"tasks.automation.astronetes.io", "rotask"},
      {"taskruns.automation.astronetes.io", "rotaskrun"},
      {"backups.automation.astronetes.io", "robackup"},
  };
  return crds;
}

// The controllers, named as in the manual's `rollout restart` list (section 4.1).
const std::vector<std::string>& Controllers() {
  static const std::vector<std::string> names = {
      "bucket",          "database", "kubernetescluster", "livesynchronization",
      "synchronization", "synchronizationplan", "task",    "taskrun"};
  return names;
}

// kube-openapi 1.20 prints list paths without indices ("resources.group"), newer
// apiservers with them ("resources[0].group"): compare without indices.
std::string WithoutListIndices(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '[') {
      std::size_t end = i + 1;
      while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]))) ++end;
      if (end > i + 1 && end < text.size() && text[end] == ']') {
        i = end;
        continue;
      }
    }
    out += text[i];
  }
  return out;
}

// The value of a top-level metadata field ("  <field>: value") of a one-object sample
// file, or "" when absent. The sample files are plain YAML written by us.
std::string MetadataField(const std::string& text, const std::string& field) {
  std::string key = "\n  " + field + ":";
  std::size_t at = text.find(key);
  if (at == std::string::npos) return {};
  std::size_t start = text.find_first_not_of(' ', at + key.size());
  std::size_t end = text.find('\n', start);
  return text.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

// Column headers of a `kubectl get` table: separated by at least two spaces
// ("LAST SCHEDULE" has one inside).
std::vector<std::string> SplitHeader(const std::string& header) {
  std::vector<std::string> columns;
  std::size_t start = 0;
  while (start < header.size()) {
    std::size_t end = header.find("  ", start);
    if (end == std::string::npos) end = header.size();
    columns.push_back(header.substr(start, end - start));
    start = header.find_first_not_of(' ', end);
    if (start == std::string::npos) break;
  }
  return columns;
}

// True when every field of `expected` is in `actual` with the same value (objects
// recursively; arrays element by element and of the same length). Extra fields of
// `actual` (server defaults) are allowed.
bool Contains(const json& actual, const json& expected, std::string path, std::string* why) {
  if (expected.is_object()) {
    if (!actual.is_object()) {
      *why = path + " is not an object in the stored copy";
      return false;
    }
    for (const auto& [key, value] : expected.items()) {
      if (!actual.contains(key)) {
        *why = path + "." + key + " was dropped by the apiserver";
        return false;
      }
      if (!Contains(actual.at(key), value, path + "." + key, why)) return false;
    }
    return true;
  }
  if (expected.is_array()) {
    if (!actual.is_array() || actual.size() != expected.size()) {
      *why = path + " has a different length in the stored copy";
      return false;
    }
    for (std::size_t i = 0; i < expected.size(); ++i) {
      if (!Contains(actual[i], expected[i], path + "[" + std::to_string(i) + "]", why)) {
        return false;
      }
    }
    return true;
  }
  if (actual != expected) {
    *why = path + " is " + actual.dump() + " in the stored copy, " + expected.dump() + " in the file";
    return false;
  }
  return true;
}

class CrdsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ro::testenv::KubeClusterOptions options;
    options.name = "crds";
    cluster_ = std::make_unique<KubeCluster>(options);
    Kubectl({"apply", "-f", (Source() / "deploy/crds/").string()});
    for (const auto& [name, short_name] : ExpectedCrds()) {
      ro::testenv::WaitFor(
          [&, crd = name] {
            return Kubectl({"get", "crd", crd, "-o",
                            R"(jsonpath={.status.conditions[?(@.type=="Established")].status})"}) ==
                   "True";
          },
          kEstablishTimeout, "CRD " + name + " Established");
    }
  }
  static void TearDownTestSuite() { cluster_.reset(); }

  void SetUp() override { ASSERT_NE(cluster_, nullptr) << "the test cluster did not start"; }

  static fs::path Source() { return ro::testenv::SourceDir(); }

  static std::string Kubectl(const std::vector<std::string>& args, std::string_view stdin_data = {}) {
    return cluster_->Kubectl(args, stdin_data);
  }

  // The manual's install (3.2): the namespace first, then the manifests into it. Applying
  // a Namespace object keeps this idempotent for the tests sharing the cluster.
  static void CreateOperatorNamespace() {
    Kubectl({"apply", "-f", "-"}, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: resiliency-operator\n");
  }

  // Runs kubectl expecting it to fail; returns its error output. Fails the test when
  // kubectl succeeds.
  static std::string KubectlError(const std::vector<std::string>& args, std::string_view stdin_data) {
    try {
      std::string out = cluster_->Kubectl(args, stdin_data);
      ADD_FAILURE() << "kubectl " << ro::testenv::QuoteCommandLine(args)
                    << " succeeded but should have been rejected:\n"
                    << out;
      return {};
    } catch (const TestEnvError& e) {
      return e.what();
    }
  }

  static void ApplyNamespace(const std::string& ns) {
    Kubectl({"apply", "-f", "-"}, "apiVersion: v1\nkind: Namespace\nmetadata: {name: " + ns + "}\n");
  }

  static std::vector<fs::path> SampleFiles() {
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(Source() / "tests/samples")) {
      if (entry.path().extension() == ".yaml") files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    return files;
  }

  static inline std::unique_ptr<KubeCluster> cluster_;
};

TEST_F(CrdsTest, EveryCrdIsEstablishedWithAStructuralSchemaAndItsShortName) {
  json crds = json::parse(Kubectl({"get", "crd", "-o", "json"}));
  std::set<std::string> seen;
  for (const auto& crd : crds.at("items")) {
    std::string name = crd.at("metadata").at("name");
    auto expected = ExpectedCrds().find(name);
    if (expected == ExpectedCrds().end()) continue;
    seen.insert(name);
    SCOPED_TRACE(name);
    for (const auto& condition : crd.at("status").at("conditions")) {
      // Kubernetes reports schema problems as NonStructuralSchema (status True).
      EXPECT_NE(condition.at("type"), "NonStructuralSchema") << condition.dump();
    }
    const auto& names = crd.at("spec").at("names");
    EXPECT_EQ(names.at("shortNames"), json::array({expected->second}));
    EXPECT_EQ(names.at("categories"), json::array({"resiliency"}));
    EXPECT_EQ(crd.at("spec").at("scope"), "Namespaced");
    const auto& version = crd.at("spec").at("versions").at(0);
    EXPECT_EQ(version.at("name"), "v1alpha1");
    EXPECT_TRUE(version.at("subresources").contains("status"));
  }
  EXPECT_EQ(seen.size(), ExpectedCrds().size());
}

TEST_F(CrdsTest, ConditionsAndObservedGenerationHaveTheSameSchemaOnEveryKind) {
  json crds = json::parse(Kubectl({"get", "crd", "-o", "json"}));
  json reference;
  for (const auto& crd : crds.at("items")) {
    std::string name = crd.at("metadata").at("name");
    if (!ExpectedCrds().contains(name)) continue;
    SCOPED_TRACE(name);
    const auto& status = crd.at("spec").at("versions").at(0).at("schema").at("openAPIV3Schema")
                             .at("properties").at("status").at("properties");
    json common = {{"conditions", status.at("conditions")},
                   {"observedGeneration", status.at("observedGeneration")}};
    if (reference.is_null()) reference = common;
    EXPECT_EQ(common, reference);
  }
  ASSERT_FALSE(reference.is_null());
  EXPECT_EQ(reference.at("conditions").at("x-kubernetes-list-type"), "map");
}

TEST_F(CrdsTest, EverySampleOfTheManualAppliesUnchangedAndIsStoredAsWritten) {
  auto files = SampleFiles();
  // One file per sample of the manual (see tests/samples/README.md).
  ASSERT_GE(files.size(), 28u);
  // The sample files are plain, one object each: their metadata is readable as text.
  struct Sample {
    fs::path file;
    std::string text;
    std::string ns;
    bool generated;  // generateName: meant for `kubectl create` (apply needs a name)
  };
  std::vector<Sample> samples;
  std::set<std::string> namespaces;
  for (const auto& file : files) {
    Sample sample{file, ro::testenv::ReadFile(file), "", false};
    // A sample that names its namespace goes there; the others to a fresh namespace.
    sample.ns = MetadataField(sample.text, "namespace");
    if (sample.ns.empty()) sample.ns = "sample-" + std::to_string(samples.size() + 1);
    sample.generated = !MetadataField(sample.text, "generateName").empty();
    namespaces.insert(sample.ns);
    samples.push_back(std::move(sample));
  }
  std::string namespace_list;
  for (const auto& ns : namespaces) {
    namespace_list += "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: " + ns + "}\n";
  }
  Kubectl({"apply", "-f", "-"}, namespace_list);

  // The files as kubectl reads them, in one call: what the stored objects must contain.
  std::vector<std::string> read_args = {"create", "--dry-run=client", "-o", "json"};
  for (const auto& sample : samples) {
    read_args.push_back("-f");
    read_args.push_back(sample.file.string());
  }
  // kubectl prints one JSON document per object.
  std::istringstream documents(Kubectl(read_args));
  std::vector<json> written_objects;
  while ((documents >> std::ws).peek() != std::char_traits<char>::eof()) {
    documents >> written_objects.emplace_back();
  }
  ASSERT_EQ(written_objects.size(), samples.size()) << "one object per sample file";

  for (std::size_t i = 0; i < samples.size(); ++i) {
    const Sample& sample = samples[i];
    const json& written = written_objects[i];
    SCOPED_TRACE(sample.file.filename().string());
    std::string verb = sample.generated ? "create" : "apply";
    json stored;
    try {
      stored = json::parse(Kubectl({verb, "-n", sample.ns, "-f", sample.file.string(), "-o", "json"}));
    } catch (const TestEnvError& e) {
      ADD_FAILURE() << "kubectl " << verb << " rejected " << sample.file.filename() << ":\n"
                    << e.what();
      continue;
    }
    EXPECT_EQ(stored.at("kind"), written.at("kind"));
    EXPECT_EQ(stored.at("metadata").at("namespace"), sample.ns);
    // kubectl prints the object the apiserver stored: pruning would have dropped fields
    // the schema does not know, silently.
    if (written.contains("spec")) {
      std::string why;
      EXPECT_TRUE(Contains(stored.at("spec"), written.at("spec"), "spec", &why)) << why;
    }
  }
}

TEST_F(CrdsTest, EverySampleFileIsListedInTheSamplesReadme) {
  std::string readme = ro::testenv::ReadFile(Source() / "tests/samples/README.md");
  for (const auto& file : SampleFiles()) {
    EXPECT_NE(readme.find("`" + file.filename().string() + "`"), std::string::npos)
        << file.filename() << " is not described in tests/samples/README.md";
  }
}

TEST_F(CrdsTest, SpecDefaultsAreAppliedByTheApiserver) {
  ApplyNamespace("defaults");
  Kubectl({"apply", "-n", "defaults", "-f", "-"}, R"(
apiVersion: automation.astronetes.io/v1alpha1
kind: LiveSynchronization
metadata: {name: minimal}
spec:
  plugin: kubernetes-objects-to-kubernetes
  config:
    sourceName: a
    destinationName: b
    replication:
      resources: [{version: v1, resource: configmaps}]
---
apiVersion: automation.astronetes.io/v1alpha1
kind: SynchronizationPlan
metadata: {name: minimal}
spec:
  schedule: "@hourly"
  template:
    spec:
      plugin: zookeeper-to-zookeeper-nodes
      config: {sourceName: a, destinationName: b, rootPath: /}
)");
  json live = json::parse(Kubectl({"get", "-n", "defaults", "lsync", "minimal", "-o", "json"}));
  EXPECT_EQ(live.at("spec").at("suspend"), false);
  json plan = json::parse(Kubectl({"get", "-n", "defaults", "syncplan", "minimal", "-o", "json"}));
  EXPECT_EQ(plan.at("spec").at("suspend"), false);
  EXPECT_EQ(plan.at("spec").at("concurrencyPolicy"), "Allow");
  EXPECT_EQ(plan.at("spec").at("successfulJobsHistoryLimit"), 2);
  EXPECT_EQ(plan.at("spec").at("failedJobsHistoryLimit"), 2);
}

// One object per kind with a status written through the status subresource, as the
// controllers do; `kubectl get` must show the documented columns and values.
struct ColumnsCase {
  std::string resource;            // what `kubectl get` is given (short name)
  std::string manifest;            // the object
  std::string status;              // merge patch for the status subresource ("" = none)
  std::vector<std::string> header;  // expected column headers, in order
  std::vector<std::string> cells;   // values that must appear in the object's row
};

TEST_F(CrdsTest, KubectlGetShowsThePrinterColumnsOfEveryKind) {
  const std::string ready_true =
      R"("conditions":[{"type":"Ready","status":"True","reason":"%s","message":"",)"
      R"("lastTransitionTime":"2024-02-09T14:05:30Z"}])";
  auto ready = [&](const std::string& reason) {
    std::string s = ready_true;
    s.replace(s.find("%s"), 2, reason);
    return s;
  };
  const std::vector<ColumnsCase> cases = {
      {"kc",
       "apiVersion: assets.astronetes.io/v1alpha1\nkind: KubernetesCluster\n"
       "metadata: {name: c1}\nspec: {secretName: c1-kubeconfig}\n",
       R"({"status":{)" + ready("Connected") + R"(,"serverVersion":"v1.28.3"}})",
       {"NAME", "READY", "REASON", "VERSION", "AGE"},
       {"c1", "True", "Connected", "v1.28.3"}},
      {"bkt",
       "apiVersion: assets.astronetes.io/v1alpha1\nkind: Bucket\nmetadata: {name: b1}\n"
       "spec: {generic: {name: backups, endpoint: 'minio:9000', secretName: creds}}\n",
       R"({"status":{)" + ready("Accessible") +
           R"(,"provider":"generic","bucketName":"backups","endpoint":"minio:9000"}})",
       {"NAME", "READY", "PROVIDER", "BUCKET", "ENDPOINT", "AGE"},
       {"b1", "True", "generic", "backups", "minio:9000"}},
      {"rodb",
       "apiVersion: assets.astronetes.io/v1alpha1\nkind: Database\nmetadata: {name: d1}\n"
       "spec: {zookeeper: {client: {servers: ['zk-0:2181', 'zk-1:2181']}}}\n",
       R"({"status":{)" + ready("Connected") + R"(,"servers":"zk-0:2181,zk-1:2181"}})",
       {"NAME", "READY", "SERVERS", "VERSION", "AGE"},
       {"d1", "True", "zk-0:2181,zk-1:2181"}},
      {"lsync",
       "apiVersion: automation.astronetes.io/v1alpha1\nkind: LiveSynchronization\n"
       "metadata: {name: l1}\nspec:\n  plugin: kubernetes-objects-to-kubernetes\n"
       "  config:\n    sourceName: cluster-1\n    destinationName: cluster-2\n"
       "    replication: {resources: [{version: v1, resource: configmaps}]}\n",
       R"({"status":{)" + ready("Running") + R"(,"phase":"Running","objects":14,"lagSeconds":1.5,"rpoSeconds":2.5}})",
       {"NAME", "READY", "PHASE", "SOURCE", "DESTINATION", "SUSPEND", "OBJECTS", "LAG", "RPO", "AGE"},
       {"l1", "True", "Running", "cluster-1", "cluster-2", "false", "14", "1.5", "2.5"}},
      {"rosync",
       "apiVersion: automation.astronetes.io/v1alpha1\nkind: Synchronization\n"
       "metadata: {name: s1}\nspec:\n  plugin: zookeeper-to-zookeeper-nodes\n"
       "  config: {sourceName: zk-a, destinationName: zk-b, rootPath: /app}\n",
       R"({"status":{"phase":"Succeeded"}})",
       {"NAME", "PHASE", "SOURCE", "DESTINATION", "CREATED", "UPDATED", "DELETED", "COMPLETED", "AGE"},
       {"s1", "Succeeded", "zk-a", "zk-b"}},
      {"syncplan",
       "apiVersion: automation.astronetes.io/v1alpha1\nkind: SynchronizationPlan\n"
       "metadata: {name: p1}\nspec:\n  schedule: '*/5 * * * *'\n  template:\n    spec:\n"
       "      plugin: zookeeper-to-zookeeper-nodes\n"
       "      config: {sourceName: zk-a, destinationName: zk-b, rootPath: /}\n",
       "",
       {"NAME", "SCHEDULE", "SUSPEND", "LAST SCHEDULE", "AGE"},
       {"p1", "*/5 * * * *", "false"}},
      {"rotask",
       "apiVersion: automation.astronetes.io/v1alpha1\nkind: Task\nmetadata: {name: t1}\n"
       "spec: {plugin: custom-image, config: {image: busybox, command: [date]}}\n",
       R"({"status":{)" + ready("Valid") + R"(,"plugin":"custom-image"}})",
       {"NAME", "PLUGIN", "READY", "AGE"},
       {"t1", "custom-image", "True"}},
      {"rotaskrun",
       "apiVersion: automation.astronetes.io/v1alpha1\nkind: TaskRun\nmetadata: {name: r1}\n"
       "spec: {taskName: t1}\n",
       R"({"status":{"phase":"Succeeded","objectsPatched":0,"conditions":[)"
       R"({"type":"Warning","status":"True","reason":"NothingRecovered","message":"",)"
       R"("lastTransitionTime":"2024-02-09T14:05:30Z"}]}})",
       {"NAME", "TASK", "PHASE", "RECOVERED", "WARNING", "AGE"},
       {"r1", "t1", "Succeeded", " 0 ", "NothingRecovered"}},
      {"robackup",
       "apiVersion: automation.astronetes.io/v1alpha1\nkind: Backup\nmetadata: {name: k1}\n"
       "spec: {plugin: kubernetes-objects-to-bucket, config: {source: {kubernetesCluster: {name: c1}}}}\n",
       R"({"status":{"phase":"Succeeded","objects":42}})",
       {"NAME", "PLUGIN", "PHASE", "OBJECTS", "AGE"},
       {"k1", "kubernetes-objects-to-bucket", "Succeeded", "42"}},
  };
  ApplyNamespace("columns");
  for (const auto& c : cases) {
    SCOPED_TRACE(c.resource);
    Kubectl({"apply", "-n", "columns", "-f", "-"}, c.manifest);
    std::string name = c.cells.front();
    if (!c.status.empty()) {
      Kubectl({"patch", "-n", "columns", c.resource, name, "--subresource=status", "--type=merge",
               "-p", c.status});
    }
    std::string table = Kubectl({"get", "-n", "columns", c.resource, name});
    std::string header = table.substr(0, table.find('\n'));
    std::string row = table.substr(table.find('\n') + 1);
    std::vector<std::string> columns = SplitHeader(header);
    EXPECT_EQ(columns, c.header) << table;
    for (const auto& cell : c.cells) {
      EXPECT_NE(row.find(cell), std::string::npos) << "missing " << cell << " in\n" << table;
    }
  }
  // Every kind is in the "resiliency" category.
  std::string all = Kubectl({"get", "resiliency", "-n", "columns", "-o", "name"});
  for (const char* object :
       {"kubernetescluster.assets.astronetes.io/c1", "bucket.assets.astronetes.io/b1",
        "database.assets.astronetes.io/d1", "livesynchronization.automation.astronetes.io/l1",
        "synchronization.automation.astronetes.io/s1",
        "synchronizationplan.automation.astronetes.io/p1", "task.automation.astronetes.io/t1",
        "taskrun.automation.astronetes.io/r1", "backup.automation.astronetes.io/k1"}) {
    EXPECT_NE(all.find(object), std::string::npos) << object << " not in\n" << all;
  }
}

// An object the apiserver must refuse, and the field path its message must name.
struct InvalidCase {
  std::string what;
  std::string manifest;
  std::vector<std::string> expected;  // substrings of the error (list indices removed)
};

constexpr const char* kLiveSyncHead =
    "apiVersion: automation.astronetes.io/v1alpha1\nkind: LiveSynchronization\n"
    "metadata: {name: bad}\n";

std::string LiveSync(const std::string& config_extra, const std::string& resource_extra = "",
                     const std::string& plugin = "kubernetes-objects-to-kubernetes") {
  return std::string(kLiveSyncHead) + "spec:\n" +
         (plugin.empty() ? "" : "  plugin: " + plugin + "\n") +
         "  config:\n    sourceName: a\n    destinationName: b\n" + config_extra +
         "    replication:\n      resources:\n      - version: v1\n        resource: configmaps\n" +
         resource_extra;
}

TEST_F(CrdsTest, InvalidObjectsAreRejectedWithAMessageNamingTheField) {
  const std::vector<InvalidCase> cases = {
      {"KubernetesCluster without secretName",
       "apiVersion: assets.astronetes.io/v1alpha1\nkind: KubernetesCluster\n"
       "metadata: {name: bad}\nspec: {}\n",
       {"spec.secretName", "Required value"}},
      {"KubernetesCluster without spec",
       "apiVersion: assets.astronetes.io/v1alpha1\nkind: KubernetesCluster\n"
       "metadata: {name: bad}\n",
       {"spec", "Required value"}},
      {"LiveSynchronization without plugin", LiveSync("", "", ""),
       {"spec.plugin", "Required value"}},
      {"LiveSynchronization with an unknown plugin", LiveSync("", "", "kubernetes-to-s3"),
       {"spec.plugin", "Unsupported value", "kubernetes-objects-to-kubernetes"}},
      {"LiveSynchronization with replicas as a word",
       LiveSync("    components:\n      processor: {replicas: two}\n"),
       {"spec.config.components.processor.replicas", "integer"}},
      {"LiveSynchronization with negative replicas",
       LiveSync("    components:\n      redis: {replicas: -1}\n"),
       {"spec.config.components.redis.replicas"}},
      {"LiveSynchronization with concurrentTasks 0",
       LiveSync("    components:\n      synchronizer: {concurrentTasks: 0}\n"),
       {"spec.config.components.synchronizer.concurrentTasks"}},
      {"LiveSynchronization with an unknown imagePullPolicy",
       LiveSync("    components:\n      nats: {imagePullPolicy: Sometimes}\n"),
       {"spec.config.components.nats.imagePullPolicy", "Unsupported value"}},
      {"LiveSynchronization with a bad resource quantity",
       LiveSync("    components:\n      processor: {resources: {limits: {memory: lots}}}\n"),
       {"spec.config.components.processor.resources.limits.memory"}},
      {"LiveSynchronization with a resyncPeriod that is not a duration",
       std::string(kLiveSyncHead) +
           "spec:\n  plugin: kubernetes-objects-to-kubernetes\n  config:\n    sourceName: a\n"
           "    destinationName: b\n    replication:\n      resyncPeriod: 1 hour\n"
           "      resources: [{version: v1, resource: configmaps}]\n",
       {"spec.config.replication.resyncPeriod"}},
      {"LiveSynchronization with a resyncPeriod directly under config that is not a duration",
       LiveSync("    resyncPeriod: 1 hour\n"),
       {"spec.config.resyncPeriod"}},
      {"LiveSynchronization with a patch operation outside replace/add/remove (and delete, the manual's remove)",
       LiveSync("", "        transformation:\n          patch:\n          - {op: move, path: /a}\n"),
       {"spec.config.replication.resources.transformation.patch.op", "Unsupported value"}},
      {"LiveSynchronization resource without version",
       std::string(kLiveSyncHead) +
           "spec:\n  plugin: kubernetes-objects-to-kubernetes\n  config:\n    sourceName: a\n"
           "    destinationName: b\n    replication:\n      resources: [{resource: configmaps}]\n",
       {"spec.config.replication.resources.version", "Required value"}},
      {"LiveSynchronization without destinationName",
       std::string(kLiveSyncHead) +
           "spec:\n  plugin: kubernetes-objects-to-kubernetes\n  config:\n    sourceName: a\n"
           "    replication:\n      resources: [{version: v1, resource: configmaps}]\n",
       {"spec.config.destinationName", "Required value"}},
      {"Bucket generic block without endpoint",
       "apiVersion: assets.astronetes.io/v1alpha1\nkind: Bucket\nmetadata: {name: bad}\n"
       "spec: {generic: {name: b, secretName: s}}\n",
       {"spec.generic.endpoint", "Required value"}},
      {"Bucket with useSSL as a word",
       "apiVersion: assets.astronetes.io/v1alpha1\nkind: Bucket\nmetadata: {name: bad}\n"
       "spec: {generic: {name: b, endpoint: e, useSSL: sometimes}}\n",
       {"spec.generic.useSSL", "boolean"}},
      {"Database with no ZooKeeper servers",
       "apiVersion: assets.astronetes.io/v1alpha1\nkind: Database\nmetadata: {name: bad}\n"
       "spec: {zookeeper: {client: {servers: []}}}\n",
       {"spec.zookeeper.client.servers"}},
      {"Synchronization with a relative rootPath",
       "apiVersion: automation.astronetes.io/v1alpha1\nkind: Synchronization\n"
       "metadata: {name: bad}\nspec:\n  plugin: zookeeper-to-zookeeper-nodes\n"
       "  config: {sourceName: a, destinationName: b, rootPath: test}\n",
       {"spec.config.rootPath"}},
      {"Synchronization with an unknown plugin",
       "apiVersion: automation.astronetes.io/v1alpha1\nkind: Synchronization\n"
       "metadata: {name: bad}\nspec:\n  plugin: etcd-to-etcd\n"
       "  config: {sourceName: a, destinationName: b, rootPath: /}\n",
       {"spec.plugin", "Unsupported value"}},
      {"SynchronizationPlan without schedule",
       "apiVersion: automation.astronetes.io/v1alpha1\nkind: SynchronizationPlan\n"
       "metadata: {name: bad}\nspec:\n  template:\n    spec:\n"
       "      plugin: zookeeper-to-zookeeper-nodes\n"
       "      config: {sourceName: a, destinationName: b, rootPath: /}\n",
       {"spec.schedule", "Required value"}},
      {"SynchronizationPlan with a negative history limit",
       "apiVersion: automation.astronetes.io/v1alpha1\nkind: SynchronizationPlan\n"
       "metadata: {name: bad}\nspec:\n  schedule: '@daily'\n  successfulJobsHistoryLimit: -1\n"
       "  template:\n    spec:\n      plugin: zookeeper-to-zookeeper-nodes\n"
       "      config: {sourceName: a, destinationName: b, rootPath: /}\n",
       {"spec.successfulJobsHistoryLimit"}},
      {"SynchronizationPlan with an unknown concurrencyPolicy",
       "apiVersion: automation.astronetes.io/v1alpha1\nkind: SynchronizationPlan\n"
       "metadata: {name: bad}\nspec:\n  schedule: '@daily'\n  concurrencyPolicy: Sometimes\n"
       "  template:\n    spec:\n      plugin: zookeeper-to-zookeeper-nodes\n"
       "      config: {sourceName: a, destinationName: b, rootPath: /}\n",
       {"spec.concurrencyPolicy", "Unsupported value"}},
      {"Task with an unknown plugin",
       "apiVersion: automation.astronetes.io/v1alpha1\nkind: Task\nmetadata: {name: bad}\n"
       "spec: {plugin: shell, config: {}}\n",
       {"spec.plugin", "Unsupported value"}},
      {"TaskRun without taskName",
       "apiVersion: automation.astronetes.io/v1alpha1\nkind: TaskRun\nmetadata: {name: bad}\n"
       "spec: {}\n",
       {"spec.taskName", "Required value"}},
  };
  ApplyNamespace("invalid");
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    std::string error = WithoutListIndices(
        KubectlError({"apply", "-n", "invalid", "--validate=false", "-f", "-"}, c.manifest));
    for (const auto& expected : c.expected) {
      EXPECT_NE(error.find(expected), std::string::npos)
          << "expected \"" << expected << "\" in:\n"
          << error;
    }
  }
}

TEST_F(CrdsTest, KubectlsOwnValidationAlsoNamesTheField) {
  ApplyNamespace("invalid");
  std::string error = KubectlError({"apply", "-n", "invalid", "-f", "-"},
                                   LiveSync("    components:\n      processor: {replicas: two}\n"));
  EXPECT_NE(error.find("replicas"), std::string::npos) << error;
}

TEST_F(CrdsTest, StatusConditionsFollowTheMetav1ConditionShape) {
  ApplyNamespace("conditions");
  Kubectl({"apply", "-n", "conditions", "-f", "-"},
          "apiVersion: assets.astronetes.io/v1alpha1\nkind: KubernetesCluster\n"
          "metadata: {name: c}\nspec: {secretName: s}\n");
  std::string error = WithoutListIndices(KubectlError(
      {"patch", "-n", "conditions", "kc", "c", "--subresource=status", "--type=merge", "-p",
       R"({"status":{"conditions":[{"type":"Ready","status":"Maybe","reason":"Connected",)"
       R"("message":"","lastTransitionTime":"2024-02-09T14:05:30Z"}]}})"},
      {}));
  EXPECT_NE(error.find("status.conditions.status"), std::string::npos) << error;
  // An empty message is valid (the common case for Ready=True).
  Kubectl({"patch", "-n", "conditions", "kc", "c", "--subresource=status", "--type=merge", "-p",
           R"({"status":{"observedGeneration":1,"conditions":[{"type":"Ready","status":"False",)"
           R"("reason":"SecretNotFound","message":"","observedGeneration":1,)"
           R"("lastTransitionTime":"2024-02-09T14:05:30Z"}]}})"});
  EXPECT_EQ(Kubectl({"get", "-n", "conditions", "kc", "c", "-o",
                     R"(jsonpath={.status.conditions[?(@.type=="Ready")].reason})"}),
            "SecretNotFound");
}

TEST_F(CrdsTest, OperatorManifestsApplyAndTheManualsRestartCommandsWork) {
  CreateOperatorNamespace();
  Kubectl({"-n", "resiliency-operator", "apply", "-f", (Source() / "deploy/operator/operator.yaml").string()});
  Kubectl({"apply", "-f", (Source() / "deploy/operator/license-key.example.yaml").string()});
  // The OpenShift variant differs only in the pod security context: validate it fully
  // on the server without replacing the objects just applied.
  Kubectl({"apply", "--dry-run=server", "-f",
           (Source() / "deploy/operator/operator-openshift.yaml").string()});
  for (const auto& controller : Controllers()) {
    SCOPED_TRACE(controller);
    std::string name = "resiliency-operator-" + controller + "-controller";
    json deployment =
        json::parse(Kubectl({"get", "-n", kOperatorNamespace, "deployment", name, "-o", "json"}));
    const json& pod = deployment.at("spec").at("template").at("spec");
    EXPECT_EQ(pod.at("serviceAccountName"), name);
    const json& container = pod.at("containers").at(0);
    EXPECT_EQ(container.at("command"), json::array({"/usr/local/bin/" + controller + "-controller"}));
    EXPECT_EQ(container.at("securityContext").at("readOnlyRootFilesystem"), true);
    // Manual 4.1: the license is picked up by restarting every controller Deployment.
    Kubectl({"-n", kOperatorNamespace, "rollout", "restart", "deployment", name});
  }
}

// One question to the apiserver's RBAC authorizer about a controller's ServiceAccount.
struct AccessCheck {
  std::string controller;   // "taskrun" -> resiliency-operator-taskrun-controller
  std::string verb;
  std::string resource;     // "plural", "plural.group", optionally "/name"
  std::string ns;           // "" = every namespace, or cluster-scoped
  std::string subresource;  // "status", "finalizers" or ""
  bool allowed;
};

// Asks all checks in one kubectl call (a List of SubjectAccessReviews, exactly what
// `kubectl auth can-i --as` sends) and returns the answers in order.
std::vector<bool> ReviewAccess(const KubeCluster& cluster, const std::vector<AccessCheck>& checks) {
  json list = {{"apiVersion", "v1"}, {"kind", "List"}, {"items", json::array()}};
  for (const auto& check : checks) {
    std::string resource = check.resource;
    std::string name;
    if (auto slash = resource.find('/'); slash != std::string::npos) {
      name = resource.substr(slash + 1);
      resource.resize(slash);
    }
    std::string group;
    if (auto dot = resource.find('.'); dot != std::string::npos) {
      group = resource.substr(dot + 1);
      resource.resize(dot);
    }
    json attributes = {{"verb", check.verb},   {"group", group},
                       {"resource", resource}, {"subresource", check.subresource},
                       {"name", name},         {"namespace", check.ns}};
    list["items"].push_back(
        {{"apiVersion", "authorization.k8s.io/v1"},
         {"kind", "SubjectAccessReview"},
         {"spec",
          {{"user", "system:serviceaccount:" + std::string(kOperatorNamespace) +
                        ":resiliency-operator-" + check.controller + "-controller"},
           {"groups", json::array({"system:serviceaccounts",
                                   "system:serviceaccounts:" + std::string(kOperatorNamespace),
                                   "system:authenticated"})},
           {"resourceAttributes", attributes}}}});
  }
  // kubectl prints one answer per review, in order: "true" or "false" on its own line.
  std::string answers = cluster.Kubectl(
      {"create", "-f", "-", "-o", R"(jsonpath={.status.allowed}{"\n"})"}, list.dump());
  std::vector<bool> allowed;
  std::size_t start = 0;
  while (start < answers.size()) {
    std::size_t end = answers.find('\n', start);
    if (end == std::string::npos) end = answers.size();
    allowed.push_back(answers.substr(start, end - start) == "true");
    start = end + 1;
  }
  return allowed;
}

TEST_F(CrdsTest, EachControllerServiceAccountMayDoWhatItNeedsAndNoMore) {
  CreateOperatorNamespace();
  Kubectl({"-n", "resiliency-operator", "apply", "-f", (Source() / "deploy/operator/operator.yaml").string()});
  const std::map<std::string, std::string> kind_of = {
      {"bucket", "buckets.assets.astronetes.io"},
      {"database", "databases.assets.astronetes.io"},
      {"kubernetescluster", "kubernetesclusters.assets.astronetes.io"},
      {"livesynchronization", "livesynchronizations.automation.astronetes.io"},
      {"synchronization", "synchronizations.automation.astronetes.io"},
      {"synchronizationplan", "synchronizationplans.automation.astronetes.io"},
      {"task", "tasks.automation.astronetes.io"},
      {"taskrun", "taskruns.automation.astronetes.io"},
  };
  const std::string op = kOperatorNamespace;
  const std::string user_ns = "team-a";  // where users keep their assets
  std::vector<AccessCheck> checks;
  // What every controller gets, and what none gets.
  for (const auto& controller : Controllers()) {
    const std::string& kind = kind_of.at(controller);
    const std::string lease = "leases.coordination.k8s.io/resiliency-operator-" + controller + "-controller";
    std::vector<AccessCheck> common = {
        {controller, "watch", kind, "", "", true},
        {controller, "patch", kind, "", "", true},
        {controller, "update", kind, "", "status", true},
        {controller, "update", kind, "", "finalizers", true},
        {controller, "delete", kind, "", "", false},
        {controller, "create", kind, "", "", false},
        {controller, "create", "events", user_ns, "", true},
        {controller, "patch", "events.events.k8s.io", user_ns, "", true},
        {controller, "create", "leases.coordination.k8s.io", op, "", true},
        {controller, "get", lease, op, "", true},
        {controller, "update", lease, op, "", true},
        {controller, "update", "leases.coordination.k8s.io/someone-else", op, "", false},
        {controller, "create", "leases.coordination.k8s.io", user_ns, "", false},
        {controller, "get", "secrets/license-key", op, "", true},
        {controller, "create", "customresourcedefinitions.apiextensions.k8s.io", "", "", false},
        {controller, "create", "clusterroles.rbac.authorization.k8s.io", "", "", false},
        {controller, "escalate", "clusterroles.rbac.authorization.k8s.io", "", "", false},
    };
    checks.insert(checks.end(), common.begin(), common.end());
  }
  // Asset controllers read the credentials Secrets users keep in their namespaces.
  for (const char* controller : {"kubernetescluster", "bucket", "database"}) {
    std::vector<AccessCheck> assets = {
        {controller, "watch", "secrets", "", "", true},
        {controller, "create", "secrets", user_ns, "", false},
        {controller, "list", "pods", "", "", false},
        {controller, "list", "deployments.apps", "", "", false},
    };
    checks.insert(checks.end(), assets.begin(), assets.end());
  }
  for (const char* resource : {"secrets", "configmaps", "services", "serviceaccounts",
                               "deployments.apps", "tasks.automation.astronetes.io"}) {
    checks.push_back({"livesynchronization", "create", resource, user_ns, "", true});
    checks.push_back({"livesynchronization", "delete", resource, user_ns, "", true});
  }
  const std::vector<AccessCheck> specific = {
      {"livesynchronization", "get", "kubernetesclusters.assets.astronetes.io", "", "", true},
      {"livesynchronization", "list", "buckets.assets.astronetes.io", "", "", true},
      {"livesynchronization", "update", "buckets.assets.astronetes.io", "", "", false},
      {"livesynchronization", "create", "pods", user_ns, "", false},
      {"livesynchronization", "create", "roles.rbac.authorization.k8s.io", user_ns, "", false},
      {"synchronization", "list", "databases.assets.astronetes.io", "", "", true},
      {"synchronization", "get", "secrets", user_ns, "", true},
      {"synchronization", "update", "secrets", user_ns, "", false},
      // The job runner: its Job, the run file's Secret, and the Job's pods read.
      {"synchronization", "create", "secrets", user_ns, "", true},
      {"synchronization", "delete", "secrets", user_ns, "", true},
      {"synchronization", "create", "jobs.batch", user_ns, "", true},
      {"synchronization", "delete", "jobs.batch", user_ns, "", false},
      {"synchronization", "list", "pods", user_ns, "", true},
      {"synchronization", "create", "pods", user_ns, "", false},
      // Backups run in the synchronization controller: it reads their sources and buckets
      // and writes their status, never their spec.
      {"synchronization", "list", "kubernetesclusters.assets.astronetes.io", "", "", true},
      {"synchronization", "watch", "buckets.assets.astronetes.io", "", "", true},
      {"synchronization", "update", "buckets.assets.astronetes.io", "", "", false},
      {"synchronization", "update", "backups.automation.astronetes.io", user_ns, "status", true},
      {"synchronization", "update", "backups.automation.astronetes.io", user_ns, "", false},
      {"synchronizationplan", "create", "synchronizations.automation.astronetes.io", user_ns, "", true},
      {"synchronizationplan", "delete", "synchronizations.automation.astronetes.io", user_ns, "", true},
      {"synchronizationplan", "update", "synchronizations.automation.astronetes.io", user_ns, "", false},
      {"synchronizationplan", "get", "secrets", user_ns, "", false},
      {"task", "list", "kubernetesclusters.assets.astronetes.io", "", "", true},
      {"task", "watch", "buckets.assets.astronetes.io", "", "", true},
      {"task", "watch", "databases.assets.astronetes.io", "", "", true},
      {"taskrun", "list", "databases.assets.astronetes.io", "", "", true},
      {"taskrun", "update", "databases.assets.astronetes.io", "", "", false},
      {"task", "get", "secrets", user_ns, "", false},
      {"task", "create", "pods", user_ns, "", false},
      {"taskrun", "watch", "tasks.automation.astronetes.io", "", "", true},
      {"taskrun", "update", "tasks.automation.astronetes.io", "", "", false},
      {"taskrun", "get", "livesynchronizations.automation.astronetes.io", user_ns, "", true},
      {"taskrun", "update", "livesynchronizations.automation.astronetes.io", user_ns, "", false},
      {"taskrun", "list", "buckets.assets.astronetes.io", "", "", true},
      {"taskrun", "create", "pods", user_ns, "", true},
      {"taskrun", "delete", "pods", user_ns, "", true},
      {"taskrun", "update", "pods", user_ns, "", false},
      {"taskrun", "create", "serviceaccounts", user_ns, "", true},
      {"taskrun", "update", "serviceaccounts", user_ns, "", false},
      {"taskrun", "create", "clusterrolebindings.rbac.authorization.k8s.io", "", "", true},
      {"taskrun", "update", "clusterrolebindings.rbac.authorization.k8s.io", "", "", false},
      {"taskrun", "bind", "clusterroles.rbac.authorization.k8s.io/cluster-admin", "", "", true},
      {"taskrun", "get", "secrets", user_ns, "", true},
      {"taskrun", "create", "secrets", user_ns, "", false},
  };
  checks.insert(checks.end(), specific.begin(), specific.end());

  std::vector<bool> allowed = ReviewAccess(*cluster_, checks);
  ASSERT_EQ(allowed.size(), checks.size());
  for (std::size_t i = 0; i < checks.size(); ++i) {
    const auto& c = checks[i];
    EXPECT_EQ(allowed[i], c.allowed)
        << c.controller << " controller: " << c.verb << " " << c.resource
        << (c.subresource.empty() ? "" : "/" + c.subresource) << " in "
        << (c.ns.empty() ? "all namespaces" : "namespace " + c.ns) << " should be "
        << (c.allowed ? "allowed" : "denied");
  }
}

// The generated files are committed; the scripts that produce them must agree.
TEST(GeneratedManifestsTest, CrdBundleIsUpToDateWithThePerKindFiles) {
  auto source = ro::testenv::SourceDir();
  ro::testenv::RunOptions options;
  options.check = false;
  auto result =
      ro::testenv::RunCommand({"bash", (source / "deploy/crds/build-all.sh").string(), "--check"}, options);
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
}

TEST(GeneratedManifestsTest, BothOperatorVariantsAreUpToDateWithTheirSource) {
  auto source = ro::testenv::SourceDir();
  ro::testenv::RunOptions options;
  options.check = false;
  auto result =
      ro::testenv::RunCommand({"bash", (source / "deploy/operator/build.sh").string(), "--check"}, options);
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
}

TEST(GeneratedManifestsTest, OpenShiftVariantDiffersOnlyByTheFixedIds) {
  auto source = ro::testenv::SourceDir();
  auto lines = [](const std::string& text) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start < text.size()) {
      std::size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      std::string line = text.substr(start, end - start);
      start = end + 1;
      std::string trimmed = line.substr(std::min(line.find_first_not_of(' '), line.size()));
      bool fixed_id = trimmed.starts_with("runAsUser:") || trimmed.starts_with("runAsGroup:") ||
                      trimmed.starts_with("fsGroup:");
      if (line.starts_with("#") || fixed_id) continue;
      out.push_back(line);
    }
    return out;
  };
  std::string plain = ro::testenv::ReadFile(source / "deploy/operator/operator.yaml");
  std::string openshift = ro::testenv::ReadFile(source / "deploy/operator/operator-openshift.yaml");
  EXPECT_EQ(openshift.find("runAsUser:"), std::string::npos);
  EXPECT_EQ(openshift.find("fsGroup:"), std::string::npos);
  EXPECT_NE(plain.find("runAsUser: 65532"), std::string::npos);
  EXPECT_EQ(lines(plain), lines(openshift));
}

}  // namespace

// A real Prometheus (Debian package prometheus) scrapes a running pipeline's metrics
// exporter and a controller, with the alert rules of deploy/prometheus/prometheusrule.yaml
// loaded:
//   - during replication, every query of the Grafana dashboard (template variables
//     substituted as "All" does) returns series;
//   - KubesyncRpoHigh (RPO now) fires while the destination apiserver is unreachable and
//     resolves when it is back and the pipeline has caught up.
// Real servers: two kube-apiservers (the destination behind a fault proxy), NATS, Redis,
// an S3 server, Prometheus; the kubesync binary and the kubernetescluster-controller.
#include <curl/curl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <future>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "ro/kube/client.h"
#include "ro/kubesync/kubesync_config.h"
#include "ro/testenv/prometheus_server.h"
#include "ro/testenv/testenv.h"
#include "ro/testsupport/clients.h"
#include "ro/testsupport/controller_process.h"
#include "ro/testsupport/kubesync_process.h"
#include "ro/testsupport/yaml.h"

namespace ro {
namespace {

namespace te = ro::testenv;
namespace ts = ro::testsupport;
using kube::GroupVersionResource;
using nlohmann::json;
using namespace std::chrono_literals;

constexpr auto kEventually = 90s;
constexpr char kLsNamespace[] = "dr-config";
constexpr char kLsName[] = "monitored";
constexpr char kAppNamespace[] = "shop";
const GroupVersionResource kConfigMaps{"", "v1", "configmaps"};
const GroupVersionResource kNamespaces{"", "v1", "namespaces"};
const GroupVersionResource kSecrets{"", "v1", "secrets"};
const GroupVersionResource kKubernetesClusters{"assets.astronetes.io", "v1alpha1", "kubernetesclusters"};

// The test's RPO threshold and `for` (the manifest's are 60 s and 2 m, too long to wait
// for here): the rule is the manifest's otherwise.
constexpr int kTestRpoThresholdSeconds = 5;

const json kSpecConfig = json::parse(R"({
  "sourceName": "source", "destinationName": "destination", "bucketName": "originals",
  "replication": {"resources": [
    {"version": "v1", "resource": "configmaps",
     "filters": {"namespaceSelector": {"matchLabels": {"sync": "true"}}}}
  ]}
})");

json YamlFile(const std::string& relative) { return ts::YamlToJson(te::ReadFile(te::SourceDir() / relative)); }

json ConfigMap(const std::string& name, std::string value) {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"namespace", kAppNamespace}}},
          {"data", {{"value", std::move(value)}}}};
}

class MonitoringPrometheusTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    auto source = std::async(std::launch::async, [] {
      te::KubeClusterOptions options;
      options.name = "source";
      return std::make_unique<te::KubeCluster>(options);
    });
    te::KubeClusterOptions options;
    options.name = "destination";
    destination_ = std::make_unique<te::KubeCluster>(options);
    source_ = source.get();
    destination_proxy_ = te::FaultProxy::ForCluster(*destination_);
    nats_ = std::make_unique<te::NatsServer>();
    redis_ = std::make_unique<te::RedisServer>();
    s3_ = std::make_unique<te::S3Server>();
    s3_->CreateBucket("monitored-originals");
    source_client_ = ts::AdminClient(*source_);
    destination_client_ = ts::AdminClient(*destination_);
    dir_ = std::make_unique<te::TempDir>("monitoring-prometheus");

    for (kube::DynamicClient* client : {source_client_.get(), destination_client_.get()}) {
      client->Create(kNamespaces, "", {{"apiVersion", "v1"}, {"kind", "Namespace"},
                                       {"metadata", {{"name", kAppNamespace}, {"labels", {{"sync", "true"}}}}}});
    }

    // The pipeline, writing to the destination through the proxy.
    kubesync::KubesyncConfig file = ts::MakeKubesyncConfig(kLsNamespace, kLsName, kSpecConfig, *source_, *destination_,
                                                           nats_->url(), redis_->address(), s3_.get(),
                                                           "monitored-originals");
    file.destination_cluster.kubeconfig_path = destination_proxy_->kubeconfig_path().string();
    const auto config_path = dir_->path() / "pipeline.json";
    ts::WriteKubesyncConfig(config_path, file);
    pipeline_ = std::make_unique<ts::KubesyncPipeline>(
        config_path, dir_->path(),
        std::vector<std::string>{"events-listener", "processor", "synchronizer", "reconciler", "metrics-exporter"});
    pipeline_->StartAll();

    // A controller of the operator (its controller_runtime_* / workqueue_* metrics): the
    // KubernetesCluster controller on the destination, with one object to reconcile.
    destination_->Kubectl({"apply", "-f", (te::SourceDir() / "deploy/crds/all.yaml").string()});
    destination_->Kubectl({"wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"});
    destination_->Kubectl({"create", "namespace", kLsNamespace});
    const std::filesystem::path license = dir_->path() / "license";
    te::WriteFile(license, "licensee: Integration Tests\nexpiresAt: 2099-01-01T00:00:00Z\n");
    ts::ControllerProcessOptions controller;
    controller.binary = "kubernetescluster-controller";
    controller.kubeconfig = destination_->kubeconfig_path();
    controller.dir = dir_->path();
    controller.license_file = license;
    controller_ = std::make_unique<ts::ControllerProcess>(std::move(controller));
    destination_client_->Create(kSecrets, kLsNamespace,
                                {{"apiVersion", "v1"},
                                 {"kind", "Secret"},
                                 {"metadata", {{"name", "source-kubeconfig"}, {"namespace", kLsNamespace}}},
                                 {"stringData", {{"kubeconfig", te::ReadFile(source_->kubeconfig_path())}}}});
    destination_client_->Create(kKubernetesClusters, kLsNamespace,
                                {{"apiVersion", "assets.astronetes.io/v1alpha1"},
                                 {"kind", "KubernetesCluster"},
                                 {"metadata", {{"name", "source"}, {"namespace", kLsNamespace}}},
                                 {"spec", {{"secretName", "source-kubeconfig"}}}});

    // Prometheus: the PodMonitors' jobs as static targets, the PrometheusRule's groups.
    json rules = {{"groups", YamlFile("deploy/prometheus/prometheusrule.yaml")["spec"]["groups"]}};
    bool found = false;
    for (json& group : rules["groups"]) {
      for (json& rule : group["rules"]) {
        if (rule.value("alert", "") != "KubesyncRpoHigh") continue;
        std::string expr = rule["expr"];
        const std::size_t at = expr.find("> 60");
        ASSERT_NE(at, std::string::npos) << expr;
        expr.replace(at, 4, "> " + std::to_string(kTestRpoThresholdSeconds));
        rule["expr"] = expr;
        rule["for"] = "2s";
        found = true;
      }
    }
    ASSERT_TRUE(found) << "no KubesyncRpoHigh in deploy/prometheus/prometheusrule.yaml";
    te::PrometheusServerOptions prometheus;
    prometheus.config = {
        {"global", {{"scrape_interval", "1s"}, {"evaluation_interval", "1s"}}},
        {"scrape_configs",
         json::array({{{"job_name", "resiliency-operator/kubesync"},
                       {"honor_labels", true},
                       {"static_configs",
                        json::array({{{"targets", json::array({"127.0.0.1:" + std::to_string(
                                                                   (*pipeline_)["metrics-exporter"].metrics_port())})}}})}},
                      {{"job_name", "resiliency-operator/resiliency-operator"},
                       {"static_configs", json::array({{{"targets", json::array({"127.0.0.1:" + std::to_string(
                                                                                    controller_->metrics_port())})}}})}}})}};
    prometheus.rules = rules;
    prometheus_ = std::make_unique<te::PrometheusServer>(prometheus);
  }

  static void TearDownTestSuite() {
    prometheus_.reset();
    controller_.reset();
    if (pipeline_) {
      EXPECT_THAT(pipeline_->StopAll(), ::testing::IsEmpty());
    }
    pipeline_.reset();
    source_client_.reset();
    destination_client_.reset();
    destination_proxy_.reset();
    destination_.reset();
    source_.reset();
    s3_.reset();
    redis_.reset();
    nats_.reset();
    dir_.reset();
  }

  // The result vector of an instant query (empty when no series).
  static json Series(const std::string& promql) { return prometheus_->Query(promql)["result"]; }

  // The active alerts named `name` ("pending" or "firing").
  static std::vector<std::string> AlertStates(const std::string& name) {
    std::vector<std::string> states;
    for (const json& alert : prometheus_->Alerts()) {
      if (alert["labels"].value("alertname", "") == name) states.push_back(alert.value("state", ""));
    }
    return states;
  }

  static std::unique_ptr<te::KubeCluster> source_;
  static std::unique_ptr<te::KubeCluster> destination_;
  static std::unique_ptr<te::FaultProxy> destination_proxy_;
  static std::unique_ptr<te::NatsServer> nats_;
  static std::unique_ptr<te::RedisServer> redis_;
  static std::unique_ptr<te::S3Server> s3_;
  static std::unique_ptr<kube::DynamicClient> source_client_;
  static std::unique_ptr<kube::DynamicClient> destination_client_;
  static std::unique_ptr<te::TempDir> dir_;
  static std::unique_ptr<ts::KubesyncPipeline> pipeline_;
  static std::unique_ptr<ts::ControllerProcess> controller_;
  static std::unique_ptr<te::PrometheusServer> prometheus_;
};
std::unique_ptr<te::KubeCluster> MonitoringPrometheusTest::source_;
std::unique_ptr<te::KubeCluster> MonitoringPrometheusTest::destination_;
std::unique_ptr<te::FaultProxy> MonitoringPrometheusTest::destination_proxy_;
std::unique_ptr<te::NatsServer> MonitoringPrometheusTest::nats_;
std::unique_ptr<te::RedisServer> MonitoringPrometheusTest::redis_;
std::unique_ptr<te::S3Server> MonitoringPrometheusTest::s3_;
std::unique_ptr<kube::DynamicClient> MonitoringPrometheusTest::source_client_;
std::unique_ptr<kube::DynamicClient> MonitoringPrometheusTest::destination_client_;
std::unique_ptr<te::TempDir> MonitoringPrometheusTest::dir_;
std::unique_ptr<ts::KubesyncPipeline> MonitoringPrometheusTest::pipeline_;
std::unique_ptr<ts::ControllerProcess> MonitoringPrometheusTest::controller_;
std::unique_ptr<te::PrometheusServer> MonitoringPrometheusTest::prometheus_;

TEST_F(MonitoringPrometheusTest, EveryDashboardQueryReturnsSeriesDuringReplication) {
  // Replication (bucket uploads included), and one event ended for good: a ConfigMap
  // whose event is over NATS' max_payload (1 MiB).
  source_client_->Create(kConfigMaps, kAppNamespace, ConfigMap("app-config", "v1"));
  source_client_->Create(kConfigMaps, kAppNamespace, ConfigMap("oversized", std::string(600 * 1024, '"')));
  te::WaitFor([] { return destination_client_->GetIfExists(kConfigMaps, kAppNamespace, "app-config").has_value(); },
              kEventually, "app-config replicated");

  const json dashboard = json::parse(te::ReadFile(te::SourceDir() / "deploy/grafana/resiliency-operator-dashboard.json"));
  const auto substitute = [](std::string expr) {
    for (const char* variable : {"$namespace", "$livesynchronization", "$group", "$object_namespace"}) {
      for (std::size_t at = expr.find(variable); at != std::string::npos; at = expr.find(variable)) {
        expr.replace(at, std::string(variable).size(), ".*");
      }
    }
    return expr;
  };
  // The panels of other controllers, which this test does not run: ZooKeeper
  // Synchronizations and recoveries (their metrics are checked where they run:
  // it_runtime_test, e2e.tasks_transformation_test).
  const std::set<std::string> not_here = {"ZooKeeper Synchronizations finished (last hour), by result",
                                          "Recovery runs (last 24 h), by Task and result",
                                          "RTO: TaskRun created -> finished, by Task",
                                          "Objects recovered and failed (last 24 h), by Task"};
  std::vector<std::pair<std::string, std::string>> queries;
  for (const json& panel : dashboard["panels"]) {
    if (panel["type"] == "row" || not_here.contains(panel["title"].get<std::string>())) continue;
    for (const json& target : panel["targets"]) {
      queries.emplace_back(panel["title"].get<std::string>(), substitute(target["expr"].get<std::string>()));
    }
  }
  ASSERT_GE(queries.size(), 15u);
  // rate()/increase() need two scrapes of a series; everything settles within seconds.
  std::string empty;
  try {
    te::WaitFor(
        [&] {
          empty.clear();
          for (const auto& [title, expr] : queries) {
            if (Series(expr).empty()) empty += "\n  " + title + ": " + expr;
          }
          return empty.empty();
        },
        kEventually, "every dashboard query to return series", 1s);
  } catch (const te::WaitTimeout&) {
    ADD_FAILURE() << "queries without series:" << empty;
  }
  // The variables' own queries list this pipeline.
  for (const json& variable : dashboard["templating"]["list"]) {
    if (variable["type"] != "query") continue;
    const std::string query = variable["query"]["query"];  // label_values(<selector>, <label>)
    const std::string selector = query.substr(13, query.rfind(',') - 13);
    EXPECT_FALSE(Series(substitute(selector)).empty()) << variable["name"];
  }
  // The Object Namespace filter: the app's namespace is a label value.
  EXPECT_FALSE(Series(R"(kubesync_events_processed_total{component="synchronizer", object_namespace="shop"})").empty());
  EXPECT_FALSE(Series(R"(kubesync_replication_lag_seconds_count{object_namespace="shop"})").empty());
  const json rpo = Series("kubesync_rpo_seconds");
  ASSERT_EQ(rpo.size(), 1u) << rpo.dump();
  EXPECT_EQ(rpo[0]["metric"]["livesynchronization"], kLsName);
  EXPECT_EQ(rpo[0]["metric"]["namespace"], kLsNamespace);
  EXPECT_TRUE(AlertStates("KubesyncRpoHigh").empty());
}

TEST_F(MonitoringPrometheusTest, TheRpoAlertFiresWhileTheDestinationIsUnreachableAndResolvesAfter) {
  te::WaitFor([] { return !Series("kubesync_rpo_seconds").empty(); }, kEventually, "RPO now is scraped");
  EXPECT_TRUE(AlertStates("KubesyncRpoHigh").empty());

  // The destination apiserver stops answering; a change in the source waits.
  destination_proxy_->Blackhole(10min);
  const auto cut = std::chrono::steady_clock::now();
  source_client_->Create(kConfigMaps, kAppNamespace, ConfigMap("during-outage", "waits"));
  te::WaitFor([] { return AlertStates("KubesyncRpoHigh") == std::vector<std::string>{"firing"}; }, kEventually,
              "KubesyncRpoHigh firing", 500ms);
  const double fired_after = std::chrono::duration<double>(std::chrono::steady_clock::now() - cut).count();
  const json rpo = Series("kubesync_rpo_seconds");
  ASSERT_EQ(rpo.size(), 1u);
  EXPECT_GT(std::stod(rpo[0]["value"][1].get<std::string>()), kTestRpoThresholdSeconds);
  EXPECT_GE(std::stoi(Series("kubesync_pending_changes")[0]["value"][1].get<std::string>()), 1);

  // Back: the change is applied, nothing waits, the alert resolves.
  destination_proxy_->Clear();
  const auto back = std::chrono::steady_clock::now();
  te::WaitFor([] { return destination_client_->GetIfExists(kConfigMaps, kAppNamespace, "during-outage").has_value(); },
              kEventually, "the change made during the outage replicated");
  te::WaitFor([] { return AlertStates("KubesyncRpoHigh").empty(); }, kEventually, "KubesyncRpoHigh resolved", 500ms);
  std::printf("[monitoring] KubesyncRpoHigh (threshold %d s, for 2 s) fired %.1f s after the destination was cut, "
              "resolved %.1f s after it came back\n",
              kTestRpoThresholdSeconds, fired_after,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - back).count());
  EXPECT_EQ(Series("kubesync_rpo_seconds")[0]["value"][1], "0");
}

}  // namespace
}  // namespace ro

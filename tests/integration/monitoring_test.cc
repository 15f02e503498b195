// The monitoring manifests (deploy/prometheus, deploy/grafana) checked by Prometheus' own
// rule engine: promtool (Debian package prometheus) loads every alert rule, runs the
// alert unit tests below (`promtool test rules`: synthetic series, the real evaluator),
// and parses every dashboard query as PromQL. The PodMonitors select what the operator's
// manifests and the LiveSynchronization controller really label and name.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "ro/kubesync/runner/pipeline_plan.h"
#include "ro/testenv/paths.h"
#include "ro/testenv/process.h"
#include "ro/testsupport/yaml.h"

namespace ro {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
namespace te = testenv;

std::string Source(const std::string& relative) { return te::ReadFile(te::SourceDir() / relative); }

// The YAML documents of a file (separated by lines "---"), as JSON.
std::vector<json> Documents(const std::string& relative) {
  std::vector<json> out;
  const std::string text = Source(relative);
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find("\n---\n", start);
    if (end == std::string::npos) end = text.size();
    const json doc = testsupport::YamlToJson(std::string_view(text).substr(start, end - start));
    if (!doc.is_null()) out.push_back(doc);
    start = end + 5;
  }
  return out;
}

class MonitoringTest : public ::testing::Test {
 protected:
  MonitoringTest() : dir_("monitoring") {}

  // promtool with `args`; the result, with the output in failure messages.
  te::CommandResult Promtool(std::vector<std::string> args) {
    args.insert(args.begin(), te::FindExecutable("promtool", "run scripts/setup.sh (Debian package prometheus)").string());
    te::RunOptions options;
    options.check = false;  // the exit code and output are the test's to judge
    return te::RunCommand(args, options);
  }

  // The PrometheusRule's groups as a plain rules file (JSON is YAML). Without
  // annotations for the unit tests: promtool compares them too, and their templates are
  // checked by `promtool check rules` on the complete file.
  std::string RulesFile(bool with_annotations = true) {
    const std::vector<json> docs = Documents("deploy/prometheus/prometheusrule.yaml");
    EXPECT_EQ(docs.size(), 1u);
    EXPECT_EQ(docs.at(0).value("kind", ""), "PrometheusRule");
    json groups = docs.at(0)["spec"]["groups"];
    if (!with_annotations) {
      for (json& group : groups) {
        for (json& rule : group["rules"]) rule.erase("annotations");
      }
    }
    const auto path = dir_.path() / (with_annotations ? "rules.json" : "rules-without-annotations.json");
    te::WriteFile(path, json{{"groups", groups}}.dump(2));
    return path.string();
  }

  te::TempDir dir_;
};

TEST_F(MonitoringTest, EveryAlertRuleLoadsInPrometheus) {
  const te::CommandResult result = Promtool({"check", "rules", RulesFile()});
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
  EXPECT_THAT(result.out, HasSubstr("SUCCESS: 11 rules found"));
}

// promtool's rule unit tests: each alert fires on the series that mean trouble, after
// its `for`, and stays quiet on healthy ones.
TEST_F(MonitoringTest, AlertsFireOnTroubleAndNotOnAHealthyPipeline) {
  const std::string rules = RulesFile(/*with_annotations=*/false);
  const std::string ls = R"(namespace="dr", livesynchronization="active-passive")";
  const std::string gvr = R"(group="apps", version="v1", resource="deployments")";
  const auto series = [](std::string name, std::string labels, std::string values) {
    return json{{"series", name + "{" + labels + "}"}, {"values", values}};
  };
  json lag_buckets = json::array();
  // Every change of the last 30 minutes took more than 30 s: p99 is the top bound.
  for (const char* le : {"5", "10", "30"}) {
    lag_buckets.push_back(series("kubesync_replication_lag_seconds_bucket", ls + ", " + gvr + ", le=\"" + le + "\"", "0x40"));
  }
  lag_buckets.push_back(series("kubesync_replication_lag_seconds_bucket", ls + ", " + gvr + ", le=\"+Inf\"", "0+10x40"));
  json inputs = lag_buckets;
  // RPO now: nothing waits for 5 minutes, then the oldest change ages a minute per minute.
  inputs.push_back(series("kubesync_rpo_seconds", ls, "0x5 60+60x35"));
  // One failed destination write per second for 40 minutes.
  inputs.push_back(series("kubesync_errors_total", ls + ", " + gvr + R"(, component="synchronizer", reason="Transport")",
                          "0+60x40"));
  // Three events ended for good at minute 20.
  inputs.push_back(series("kubesync_failed_events_total", ls + ", " + gvr + R"(, component="synchronizer", reason="Invalid")",
                          "0x20 3x20"));
  // The last resync completed 10,000 s before the test's clock starts (at Unix time 0).
  inputs.push_back(series("kubesync_last_resync_timestamp_seconds", ls + ", " + gvr, "-10000x40"));
  // A controller pod down from the start, another up; the exporter up.
  inputs.push_back(series("up", R"(job="resiliency-operator/resiliency-operator", namespace="resiliency-operator", pod="task-controller-0")", "0x40"));
  inputs.push_back(series("up", R"(job="resiliency-operator/resiliency-operator", namespace="resiliency-operator", pod="bucket-controller-0")", "1x40"));
  inputs.push_back(series("up", R"(job="resiliency-operator/kubesync", namespace="dr", pod="active-passive-metricsexporter-0")", "1x40"));
  inputs.push_back(series("ro_synchronization_runs_total", R"(result="Unreachable")", "0x10 1x30"));
  inputs.push_back(series("ro_synchronization_runs_total", R"(result="Succeeded")", "0+1x40"));
  inputs.push_back(series("ro_recovery_runs_total", R"(namespace="dr", task="active-passive", result="ObjectsFailed")",
                          "0x10 1x30"));
  inputs.push_back(series("ro_recovery_runs_total", R"(namespace="dr", task="active-passive", result="Succeeded")",
                          "0+1x40"));

  const json ls_labels = {{"namespace", "dr"}, {"livesynchronization", "active-passive"}};
  const auto expect = [](const char* alert, const char* at, std::vector<json> firing) {
    json alerts = json::array();
    for (json& labels : firing) alerts.push_back(json{{"exp_labels", std::move(labels)}});
    return json{{"eval_time", at}, {"alertname", alert}, {"exp_alerts", alerts}};
  };
  const auto with = [](json labels, json extra) {
    labels.update(extra);
    return labels;
  };
  const json lag_labels = with(ls_labels, {{"severity", "warning"}});
  const json failing_labels = with(ls_labels, {{"severity", "critical"}, {"reason", "Transport"}});
  const json failed_labels =
      with(ls_labels, {{"severity", "warning"}, {"component", "synchronizer"}, {"reason", "Invalid"}});
  const json down_labels = {{"severity", "critical"}, {"job", "resiliency-operator/resiliency-operator"},
                            {"namespace", "resiliency-operator"}, {"pod", "task-controller-0"}};
  json trouble = json::object();
  trouble["interval"] = "1m";
  trouble["input_series"] = inputs;
  trouble["alert_rule_test"] = json::array({
      // Not yet: the `for` of each has not passed.
      expect("KubesyncReplicationLagHigh", "5m", {}),
      expect("KubesyncRpoHigh", "7m", {}),  // over 60 s since minute 6; `for` 2 minutes
      expect("KubesyncSynchronizerFailing", "5m", {}),
      expect("ResiliencyOperatorControllerDown", "3m", {}),
      // Firing.
      expect("KubesyncReplicationLagHigh", "30m", {lag_labels}),
      expect("KubesyncRpoHigh", "9m", {with(ls_labels, {{"severity", "critical"}})}),
      expect("KubesyncSynchronizerFailing", "30m", {failing_labels}),
      expect("KubesyncEventsFailed", "25m", {failed_labels}),
      expect("KubesyncResyncOverdue", "30m", {with(ls_labels, {{"severity", "warning"}})}),
      expect("ResiliencyOperatorControllerDown", "10m", {down_labels}),
      expect("SynchronizationFailed", "30m", {json{{"severity", "warning"}, {"result", "Unreachable"}}}),
      expect("RecoveryFailed", "5m", {}),
      expect("RecoveryFailed", "30m",
             {json{{"severity", "critical"}, {"namespace", "dr"}, {"task", "active-passive"}, {"result", "ObjectsFailed"}}}),
      // Quiet: the exporter is up, nothing waits in a workqueue, nothing failed to reconcile.
      expect("KubesyncMetricsExporterDown", "30m", {}),
      expect("ResiliencyOperatorWorkqueueBacklog", "30m", {}),
      expect("ResiliencyOperatorReconcileErrors", "30m", {})});
  // A healthy pipeline: changes applied within 10 ms, the last resync at minute 20.
  json healthy = json::object();
  healthy["interval"] = "1m";
  healthy["input_series"] = json::array(
      {series("kubesync_replication_lag_seconds_bucket", ls + ", " + gvr + ", le=\"0.01\"", "0+100x40"),
       series("kubesync_replication_lag_seconds_bucket", ls + ", " + gvr + ", le=\"30\"", "0+100x40"),
       series("kubesync_replication_lag_seconds_bucket", ls + ", " + gvr + ", le=\"+Inf\"", "0+100x40"),
       series("kubesync_errors_total", ls + ", " + gvr + R"(, component="synchronizer", reason="Conflict")", "0x40"),
       series("kubesync_last_resync_timestamp_seconds", ls + ", " + gvr, "1200x40"),
       // Changes wait a few seconds at most.
       series("kubesync_rpo_seconds", ls, "0 2 0 5 1x36")});
  healthy["alert_rule_test"] = json::array({expect("KubesyncReplicationLagHigh", "30m", {}),
                                            expect("KubesyncRpoHigh", "30m", {}),
                                            expect("KubesyncSynchronizerFailing", "30m", {}),
                                            expect("KubesyncResyncOverdue", "30m", {})});
  json tests = json::object();
  tests["rule_files"] = json::array({rules});
  tests["evaluation_interval"] = "1m";
  tests["tests"] = json::array({trouble, healthy});
  const auto path = dir_.path() / "alerts_test.json";
  te::WriteFile(path, tests.dump(2));
  const te::CommandResult result = Promtool({"test", "rules", path.string()});
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
}

// Every query of the dashboard (template variables substituted as "All" does) and the
// selector of every variable query is PromQL that Prometheus parses.
TEST_F(MonitoringTest, EveryDashboardQueryIsValidPromQl) {
  const json dashboard = json::parse(Source("deploy/grafana/resiliency-operator-dashboard.json"));
  json rules = json::array();
  std::set<int> ids;
  const auto substitute = [](std::string expr) {
    for (const char* variable : {"$namespace", "$livesynchronization", "$group", "$object_namespace"}) {
      for (std::size_t at = expr.find(variable); at != std::string::npos; at = expr.find(variable)) {
        expr.replace(at, std::string(variable).size(), ".*");
      }
    }
    return expr;
  };
  for (const json& panel : dashboard["panels"]) {
    EXPECT_TRUE(ids.insert(panel["id"].get<int>()).second) << "duplicate panel id " << panel["id"];
    if (panel["type"] == "row") continue;
    ASSERT_FALSE(panel["targets"].empty()) << panel["title"];
    for (const json& target : panel["targets"]) {
      rules.push_back({{"record", "dashboard:panel_" + std::to_string(rules.size())},
                       {"expr", substitute(target["expr"].get<std::string>())}});
    }
  }
  std::vector<std::string> labels;
  for (const json& variable : dashboard["templating"]["list"]) {
    labels.push_back(variable.value("label", ""));
    if (variable["type"] != "query") continue;
    // label_values(<selector>, <label>): Grafana's function around a series selector.
    const std::string query = variable["query"]["query"];
    ASSERT_THAT(query, ::testing::StartsWith("label_values("));
    const std::string selector = query.substr(13, query.rfind(',') - 13);
    rules.push_back({{"record", "dashboard:variable_" + std::to_string(rules.size())},
                     {"expr", "count(" + substitute(selector) + ")"}});
  }
  // The manual's filters (6.2.8) that the metrics carry.
  EXPECT_THAT(labels, ::testing::IsSupersetOf({"Namespace", "Recovery Plan", "Object Namespace", "Object API Group"}));
  const auto path = dir_.path() / "dashboard_queries.json";
  te::WriteFile(path, json{{"groups", {{{"name", "dashboard"}, {"rules", rules}}}}}.dump(2));
  const te::CommandResult result = Promtool({"check", "rules", path.string()});
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
}

TEST_F(MonitoringTest, TheGrafanaDashboardResourceHoldsTheSameDashboard) {
  const std::vector<json> docs = Documents("deploy/grafana/grafana-v5-dashboard.yaml");
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0]["apiVersion"], "grafana.integreatly.org/v1beta1");
  EXPECT_EQ(docs[0]["kind"], "GrafanaDashboard");
  EXPECT_EQ(json::parse(docs[0]["spec"]["json"].get<std::string>()),
            json::parse(Source("deploy/grafana/resiliency-operator-dashboard.json")));
}

// The PodMonitors select pods that exist, by the port names they really have.
TEST_F(MonitoringTest, PodMonitorsSelectTheOperatorAndTheMetricsExporters) {
  const std::vector<json> monitors = Documents("deploy/prometheus/podmonitors.yaml");
  ASSERT_EQ(monitors.size(), 2u);
  // The controllers: every Deployment of the operator's manifest.
  int controllers = 0;
  for (const json& doc : Documents("deploy/operator/operator.yaml")) {
    if (doc.value("kind", "") != "Deployment") continue;
    ++controllers;
    const json& pod = doc["spec"]["template"];
    EXPECT_EQ(pod["metadata"]["labels"]["app.kubernetes.io/name"],
              monitors[0]["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]);
    bool has_port = false;
    for (const json& port : pod["spec"]["containers"][0].value("ports", json::array())) {
      has_port = has_port || port["name"] == monitors[0]["spec"]["podMetricsEndpoints"][0]["port"];
    }
    EXPECT_TRUE(has_port) << doc["metadata"]["name"] << " has no port named metrics";
  }
  EXPECT_EQ(controllers, 9);  // the eight controllers and the audit webhook
  // The exporters: the labels the LiveSynchronization controller gives the exporter's pods.
  const json& exporter = monitors[1]["spec"]["selector"]["matchLabels"];
  EXPECT_EQ(exporter["app.kubernetes.io/name"], "kubesync");
  EXPECT_EQ(exporter["app.kubernetes.io/component"],
            std::string(kubesync::runner::PartSuffix(kubesync::runner::PipelinePart::kMetricsExporter)));
  EXPECT_EQ(monitors[1]["spec"]["podMetricsEndpoints"][0]["port"], "metrics");
}

}  // namespace
}  // namespace ro

// roctl: the operator's command line (docs/automation.md "Dry run").
//
//   roctl dry-run TASK [-n NS] [--kubeconfig FILE] [-o text|json] [--timeout 10m]
//       creates a TaskRun of TASK with spec.dryRun: true (generateName TASK-dry-run-),
//       waits for it to finish and prints its report: object by object, in the order a
//       real run would write them, the JSON Patch it would send, or why it would skip or
//       fail. Nothing in the destination changes. The TaskRun is kept as the record.
//   roctl report TASKRUN [-n NS] [--kubeconfig FILE] [-o text|json]
//       prints the report of an existing dry-run TaskRun.
//
// Exit status: 0 the run would succeed (report: the TaskRun succeeded), 1 it would fail,
// 2 bad usage or an API error, 3 --timeout passed before the TaskRun finished.
#include <chrono>
#include <iostream>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>
#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include "ro/common/duration.h"
#include "ro/common/object_meta.h"
#include "ro/kube/client.h"
#include "ro/kube/config.h"
#include "taskrun/dry_run_text.h"
#include "taskrun/run_status.h"
#include "taskrun/taskrun_controller.h"

namespace {

using nlohmann::json;

struct Options {
  std::string name;  // TASK or TASKRUN
  std::string ns;
  std::string kubeconfig;
  std::string output = "text";
  std::string timeout = "10m";
};

int Print(const json& taskrun, const std::string& output) {
  if (output == "json") {
    const json status = taskrun.value("status", json::object());
    std::cout << json{{"taskRun", ro::common::MetadataString(taskrun, "namespace") + "/" +
                                      ro::common::MetadataString(taskrun, "name")},
                      {"phase", status.value("phase", "")},
                      {"message", status.value("message", "")},
                      {"objectsPatched", status.value("objectsPatched", 0)},
                      {"objectsFailed", status.value("objectsFailed", 0)},
                      {"report", status.value("dryRunReport", json::object())}}
                     .dump(2)
              << "\n";
  } else {
    std::cout << ro::controllers::DryRunReportText(taskrun);
  }
  return ro::controllers::PhaseOf(taskrun) == ro::controllers::RunPhase::kSucceeded ? 0 : 1;
}

int DryRun(ro::kube::DynamicClient& client, const Options& options, const std::string& ns) {
  const ro::kube::GroupVersionResource gvr = ro::controllers::TaskRunType().gvr;
  // generateName: at most 63 characters with the 5 the apiserver appends.
  const std::string prefix = options.name.substr(0, 50) + "-dry-run-";
  const json created = client.Create(
      gvr, ns,
      {{"apiVersion", "automation.astronetes.io/v1alpha1"},
       {"kind", "TaskRun"},
       {"metadata", {{"generateName", prefix}, {"namespace", ns}}},
       {"spec", {{"taskName", options.name}, {"dryRun", true}}}});
  const std::string name = created["metadata"]["name"];
  std::cerr << "TaskRun " << ns << "/" << name << " created (dryRun: true); waiting for it\n";
  const auto deadline = std::chrono::steady_clock::now() + ro::common::ParseDuration(options.timeout);
  while (true) {
    const json taskrun = client.Get(gvr, ns, name);
    if (ro::controllers::IsFinished(ro::controllers::PhaseOf(taskrun))) return Print(taskrun, options.output);
    if (std::chrono::steady_clock::now() >= deadline) {
      std::cerr << "TaskRun " << ns << "/" << name << " did not finish within " << options.timeout
                << " (phase " << taskrun.value("status", json::object()).value("phase", "none")
                << "); `roctl report " << name << "` shows it later\n";
      return 3;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{500});
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Resiliency Operator command line (docs/automation.md)", "roctl"};
  app.require_subcommand(1);
  Options options;
  const auto common_flags = [&options](CLI::App* command) {
    command->add_option("-n,--namespace", options.ns, "Namespace (default: the kubeconfig context's)");
    command->add_option("--kubeconfig", options.kubeconfig, "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)");
    command->add_option("-o,--output", options.output, "text or json")->check(CLI::IsMember({"text", "json"}));
  };
  CLI::App* dry_run = app.add_subcommand("dry-run", "Show what a run of a Task would change, changing nothing");
  dry_run->add_option("task", options.name, "Task to dry-run")->required();
  dry_run->add_option("--timeout", options.timeout, "How long to wait for the dry run (Go duration)");
  common_flags(dry_run);
  CLI::App* report = app.add_subcommand("report", "Print the report of a dry-run TaskRun");
  report->add_option("taskrun", options.name, "TaskRun")->required();
  common_flags(report);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  curl_global_init(CURL_GLOBAL_DEFAULT);
  int code = 2;
  try {
    const ro::kube::RestConfig config = ro::kube::LoadDefaultConfig(options.kubeconfig);
    const std::string ns = !options.ns.empty() ? options.ns : config.default_namespace;
    ro::kube::DynamicClient client(config);
    if (dry_run->parsed()) {
      code = DryRun(client, options, ns);
    } else {
      code = Print(client.Get(ro::controllers::TaskRunType().gvr, ns, options.name), options.output);
    }
  } catch (const std::exception& e) {
    std::cerr << "roctl: " << e.what() << "\n";
    code = 2;
  }
  curl_global_cleanup();
  return code;
}

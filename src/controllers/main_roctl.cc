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
//   roctl drill run TASK --name DRILL [--bucket B] [--suffix -drill] [-n NS] ...
//       rehearses recovery Task TASK on a copy of the standby (taskrun/drill.h,
//       docs/runbook.md "Drill"): backs up the namespaces it selects in its destination,
//       restores them as <name><suffix> there, runs the recovery on the copy, prints the
//       measured RTO. The standby and the replication are not touched.
//   roctl drill cleanup DRILL [-n NS] [--destination-kubeconfig FILE] ...
//       deletes the drill's namespaces in the destination (those labelled with the drill's
//       name, and only those), then its Backup, Tasks and TaskRuns. The destination is
//       reached with its KubernetesCluster's kubeconfig, or FILE when that address is not
//       reachable from where roctl runs.
//
// Exit status: 0 the run would succeed (report: the TaskRun succeeded; drill: every step
// did), 1 it would fail (a step failed), 2 bad usage or an API error, 3 --timeout passed
// before the TaskRun finished.
#include <chrono>
#include <iomanip>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <vector>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>
#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include "ro/common/duration.h"
#include "ro/common/object_meta.h"
#include "ro/kube/client.h"
#include "ro/kube/config.h"
#include "ro/kube/errors.h"
#include "ro/runtime/cluster_kubeconfig.h"
#include "ro/runtime/secrets.h"
#include "taskrun/drill.h"
#include "taskrun/dry_run_text.h"
#include "taskrun/run_status.h"
#include "taskrun/taskrun_controller.h"

namespace {

using nlohmann::json;

struct Options {
  std::string name;  // TASK, TASKRUN or DRILL
  std::string drill;
  std::string bucket;
  std::string suffix = "-drill";
  std::string destination_kubeconfig;  // drill cleanup: instead of the KubernetesCluster's
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

const ro::kube::GroupVersionResource kTasks{"automation.astronetes.io", "v1alpha1", "tasks"};
const ro::kube::GroupVersionResource kBackups{"automation.astronetes.io", "v1alpha1", "backups"};
const ro::kube::GroupVersionResource kClusters{"assets.astronetes.io", "v1alpha1", "kubernetesclusters"};
const ro::kube::GroupVersionResource kNamespaces{"", "v1", "namespaces"};

// A drill step failed: what to print, exit 1.
struct StepFailed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Polls `gvr` ns/name until its status.phase is Succeeded or Failed; returns it.
json WaitFinished(ro::kube::DynamicClient& client, const ro::kube::GroupVersionResource& gvr, const std::string& ns,
                  const std::string& name, std::chrono::steady_clock::time_point deadline, const std::string& what) {
  while (true) {
    const json object = client.Get(gvr, ns, name);
    const std::string phase = object.value("status", json::object()).value("phase", "");
    if (phase == "Succeeded") return object;
    if (phase == "Failed") {
      throw StepFailed(what + " failed: " + object["status"].value("message", ""));
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      throw StepFailed(what + " did not finish in time (phase " + (phase.empty() ? "none" : phase) + ")");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{200});
  }
}

json CreateNew(ro::kube::DynamicClient& client, const ro::kube::GroupVersionResource& gvr, const json& object,
               const std::string& drill) {
  try {
    return client.Create(gvr, object["metadata"]["namespace"].get<std::string>(), object);
  } catch (const std::exception& e) {
    if (ro::kube::IsAlreadyExists(e)) {
      throw StepFailed(object.value("kind", "") + " " + object["metadata"]["name"].get<std::string>() +
                       " exists: drill " + drill + " was run before; `roctl drill cleanup " + drill + "` first");
    }
    throw;
  }
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int DrillRun(ro::kube::DynamicClient& client, const Options& options, const std::string& ns) {
  const auto deadline = std::chrono::steady_clock::now() + ro::common::ParseDuration(options.timeout);
  const json task = client.Get(kTasks, ns, options.name);
  const ro::controllers::DrillObjects drill =
      ro::controllers::RenderDrill(task, options.drill, options.bucket, options.suffix);
  try {
    std::cout << std::fixed << std::setprecision(3);
    std::cout << "Drill " << options.drill << " of recovery Task " << ns << "/" << options.name << "\n";
    for (const std::string& note : drill.notes) std::cout << "  note: " << note << "\n";
    const auto started = std::chrono::steady_clock::now();
    CreateNew(client, kBackups, drill.backup, options.drill);
    const json backup = WaitFinished(client, kBackups, ns, options.drill, deadline, "Backup " + options.drill);
    std::cout << "  1. standby backed up: " << backup["status"].value("objects", 0) << " objects to "
              << backup["status"].value("basePath", "") << "/ (" << SecondsSince(started) << " s)\n";
    const auto restoring = std::chrono::steady_clock::now();
    CreateNew(client, kTasks, drill.restore_task, options.drill);
    CreateNew(client, ro::controllers::TaskRunType().gvr, drill.restore_run, options.drill);
    const json restored = WaitFinished(client, ro::controllers::TaskRunType().gvr, ns, options.drill + "-restore",
                                       deadline, "TaskRun " + options.drill + "-restore");
    std::cout << "  2. copy restored: " << restored["status"].value("objectsPatched", 0)
              << " objects, namespaces renamed with " << options.suffix << " (" << SecondsSince(restoring)
              << " s)\n";
    CreateNew(client, kTasks, drill.recovery_task, options.drill);
    const auto recovery = std::chrono::steady_clock::now();
    CreateNew(client, ro::controllers::TaskRunType().gvr, drill.recovery_run, options.drill);
    const json recovered = WaitFinished(client, ro::controllers::TaskRunType().gvr, ns, options.drill + "-recovery",
                                        deadline, "TaskRun " + options.drill + "-recovery");
    const double rto = SecondsSince(recovery);
    std::cout << "  3. recovery rehearsed on the copy: " << recovered["status"].value("message", "") << "\n";
    std::cout << "Drill RTO: " << rto << " s (the recovery TaskRun created until Succeeded)\n";
    std::cout << "The standby was not written. Remove the copy with: roctl drill cleanup " << options.drill
              << " -n " << ns << "\n";
    return 0;
  } catch (const StepFailed& e) {
    std::cerr << "drill " << options.drill << ": " << e.what() << "\n";
    return 1;
  }
}

int DrillCleanup(ro::kube::DynamicClient& client, const Options& options, const std::string& ns) {
  const auto deadline = std::chrono::steady_clock::now() + ro::common::ParseDuration(options.timeout);
  const std::string selector = std::string(ro::controllers::kDrillLabel) + "=" + options.name;
  // The destination and the suffix, from the drill's restore Task.
  const std::optional<json> restore = client.GetIfExists(kTasks, ns, options.name + "-restore");
  if (restore) {
    const json config = restore->value("spec", json::object()).value("config", json::object());
    const std::string suffix = config.value("namespaceSuffix", "");
    ro::kube::RestConfig destination_config;
    if (!options.destination_kubeconfig.empty()) {
      destination_config = ro::kube::LoadKubeconfigFile(options.destination_kubeconfig);
    } else {
      // The KubernetesCluster's kubeconfig: the address the operator reaches the cluster
      // at, which may not be reachable from here (--destination-kubeconfig then).
      const std::optional<json> cluster = client.GetIfExists(kClusters, ns, config.value("destinationName", ""));
      if (!cluster) throw std::runtime_error("KubernetesCluster " + config.value("destinationName", "") + " is gone");
      destination_config =
          ro::runtime::ResolveClusterKubeconfig(*cluster, [&client](const std::string& secret_ns, const std::string& name) {
            return ro::runtime::GetSecret(client, secret_ns, name);
          }).config;
    }
    ro::kube::DynamicClient destination(std::move(destination_config));
    ro::kube::ListOptions list;
    list.label_selector = selector;
    std::vector<std::string> deleting;
    for (const json& item : destination.ListAll(kNamespaces, "", list).items) {
      const std::string name = ro::common::MetadataString(item, "name");
      // Only the drill's copies: its label and its suffix.
      if (suffix.empty() || name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
        std::cerr << "  skipped namespace " << name << ": it carries the drill's label but not its suffix " << suffix << "\n";
        continue;
      }
      ro::kube::DeleteOptions once;
      once.precondition_uid = ro::common::MetadataString(item, "uid");
      destination.Delete(kNamespaces, "", name, once);
      deleting.push_back(name);
      std::cout << "  namespace " << name << " deleted in the destination\n";
    }
    for (const std::string& name : deleting) {
      while (destination.GetIfExists(kNamespaces, "", name)) {
        if (std::chrono::steady_clock::now() >= deadline) {
          std::cerr << "namespace " << name << " is still terminating\n";
          return 3;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds{250});
      }
    }
  } else {
    std::cerr << "  no Task " << options.name << "-restore: no namespace to delete\n";
  }
  ro::kube::ListOptions list;
  list.label_selector = selector;
  for (const ro::kube::GroupVersionResource& gvr : {ro::controllers::TaskRunType().gvr, kTasks, kBackups}) {
    for (const json& item : client.ListAll(gvr, ns, list).items) {
      client.Delete(gvr, ns, ro::common::MetadataString(item, "name"));
      std::cout << "  " << item.value("kind", gvr.resource) << " " << ro::common::MetadataString(item, "name")
                << " deleted\n";
    }
  }
  std::cout << "Drill " << options.name << " cleaned up (its backup files stay in the bucket under drills/" << ns
            << "/" << options.name << "/)\n";
  return 0;
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
  CLI::App* drill = app.add_subcommand("drill", "Rehearse a recovery on a copy of the standby (docs/runbook.md)");
  drill->require_subcommand(1);
  CLI::App* drill_run = drill->add_subcommand("run", "Copy the standby, recover the copy, print the RTO");
  drill_run->add_option("task", options.name, "The recovery Task")->required();
  drill_run->add_option("--name", options.drill, "The drill's name (its objects' names and label)")->required();
  drill_run->add_option("--bucket", options.bucket, "Bucket for the copy (default: the Task's bucketName)");
  drill_run->add_option("--suffix", options.suffix, "Appended to the copied namespaces' names");
  drill_run->add_option("--timeout", options.timeout, "How long the whole drill may take (Go duration)");
  common_flags(drill_run);
  CLI::App* drill_cleanup = drill->add_subcommand("cleanup", "Delete a drill's copy and objects");
  drill_cleanup->add_option("drill", options.name, "The drill's name")->required();
  drill_cleanup->add_option("--timeout", options.timeout, "How long to wait for the namespaces to go");
  drill_cleanup->add_option("--destination-kubeconfig", options.destination_kubeconfig,
                            "kubeconfig of the destination cluster (default: its KubernetesCluster's)");
  common_flags(drill_cleanup);
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
    } else if (drill_run->parsed()) {
      code = DrillRun(client, options, ns);
    } else if (drill_cleanup->parsed()) {
      code = DrillCleanup(client, options, ns);
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

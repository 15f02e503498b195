#include "ro/testsupport/controller_process.h"

#include <sstream>

#include "ro/testenv/paths.h"

namespace ro::testsupport {

ControllerProcess::ControllerProcess(ControllerProcessOptions options) {
  testenv::ProcessOptions process;
  process.name = options.binary + (options.instance.empty() ? "" : "-" + options.instance);
  process.argv = {(testenv::BinDir() / options.binary).string(),
                  "--kubeconfig=" + options.kubeconfig.string(),
                  "--health-probe-bind-address=127.0.0.1:" + std::to_string(health_.port()),
                  "--metrics-bind-address=127.0.0.1:" + std::to_string(metrics_.port()),
                  "--license-file=" + options.license_file.string()};
  process.argv.insert(process.argv.end(), options.args.begin(), options.args.end());
  process.log_path = options.dir / (process.name + ".log");
  process.env = std::move(options.env);
  process.stop_timeout = options.stop_timeout;
  process_ = std::make_unique<testenv::Process>(std::move(process));
  WaitFor(options.ready_path, options.ready_timeout);
}

HttpAnswer ControllerProcess::Get(const std::string& path) const {
  return HttpGet(path == "/metrics" ? metrics_.port() : health_.port(), path);
}

void ControllerProcess::WaitFor(const std::string& path, std::chrono::milliseconds timeout) {
  process_->WaitUntilReady([&] { return Get(path).status == 200; }, timeout, path + " to answer 200");
}

double ControllerProcess::ReconcileCount(const std::string& controller) const {
  const std::string prefix = "controller_runtime_reconcile_total{";
  const std::string label = "controller=\"" + controller + "\"";
  std::istringstream in(Get("/metrics").body);
  std::string line;
  double total = 0;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) != 0) continue;
    if (!controller.empty() && line.find(label) == std::string::npos) continue;
    total += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return total;
}

std::string ControllerProcess::Log() const { return testenv::ReadFile(process_->log_path()); }

std::vector<nlohmann::json> ControllerProcess::LogLines(std::string_view msg) const {
  std::vector<nlohmann::json> lines;
  std::istringstream in(Log());
  std::string line;
  while (std::getline(in, line)) {
    nlohmann::json parsed = nlohmann::json::parse(line, nullptr, false);
    if (!parsed.is_discarded() && parsed.value("msg", "") == msg) lines.push_back(std::move(parsed));
  }
  return lines;
}

}  // namespace ro::testsupport

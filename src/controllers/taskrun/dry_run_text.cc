#include "taskrun/dry_run_text.h"

#include <algorithm>
#include <cstddef>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ro/common/object_meta.h"
#include "ro/kube/gvr.h"
#include "ro/plugins/kubernetes/apply_order.h"

namespace ro::controllers {

namespace {

using nlohmann::json;

std::string StringOf(const json& object, const char* key) {
  if (!object.is_object()) return "";
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string StageOf(const std::string& resource) {
  try {
    return std::string(plugins::kubernetes::ToString(
        plugins::kubernetes::ApplyStageOf(kube::GroupVersionResource::Parse(resource))));
  } catch (const std::exception&) {
    return "?";
  }
}

// "replace /spec/replicas 2", "remove /spec/strategy".
std::string OperationText(const json& op) {
  // append(), not operator+ on temporaries: GCC 12's -Wrestrict misreads the latter at -O2.
  std::string text = StringOf(op, "op");
  text.append(" ").append(StringOf(op, "path"));
  if (op.is_object() && op.contains("from")) text.append(" from ").append(StringOf(op, "from"));
  if (op.is_object() && op.contains("value")) text.append(" ").append(op["value"].dump());
  return text;
}

}  // namespace

std::string DryRunReportText(const json& taskrun) {
  const json status = taskrun.is_object() ? taskrun.value("status", json::object()) : json::object();
  const std::string ns = common::MetadataString(taskrun, "namespace");
  const std::string name = common::MetadataString(taskrun, "name");
  std::ostringstream out;
  std::string phase = StringOf(status, "phase");
  std::string reason;
  for (const json& condition : status.value("conditions", json::array())) {
    if (StringOf(condition, "type") == "Ready") reason = StringOf(condition, "reason");
  }
  out << "TaskRun " << ns << "/" << name << ": " << (phase.empty() ? "not started" : phase);
  if (!reason.empty() && reason != phase) out << " (" << reason << ")";
  out << "\n";
  if (const std::string message = StringOf(status, "message"); !message.empty()) out << message << "\n";
  if (!status.value("dryRun", false)) {
    out << "This TaskRun is not a dry run (spec.dryRun was not true when it started).\n";
    return out.str();
  }
  const json report = status.value("dryRunReport", json::object());
  if (!report.is_object() || !report.contains("objects")) {
    out << "No report yet: the dry run has not finished.\n";
    return out.str();
  }

  struct Row {
    std::string index, stage, resource, object, action;
    std::vector<std::string> details;
  };
  std::vector<Row> rows;
  std::size_t i = 0;
  for (const json& entry : report.value("objects", json::array())) {
    Row row;
    row.index = std::to_string(++i);
    row.resource = StringOf(entry, "resource");
    row.stage = StageOf(row.resource);
    const std::string object_ns = StringOf(entry, "namespace");
    row.object = (object_ns.empty() ? "" : object_ns + "/") + StringOf(entry, "name");
    row.action = StringOf(entry, "action");
    for (const json& op : entry.value("patch", json::array())) row.details.push_back(OperationText(op));
    if (const std::string message = StringOf(entry, "message"); !message.empty()) {
      row.details.push_back(message);
    }
    rows.push_back(std::move(row));
  }
  const Row header{"#", "STAGE", "RESOURCE", "OBJECT", "ACTION", {}};
  std::size_t widths[4] = {header.index.size(), header.stage.size(), header.resource.size(),
                           header.object.size()};
  for (const Row& row : rows) {
    widths[0] = std::max(widths[0], row.index.size());
    widths[1] = std::max(widths[1], row.stage.size());
    widths[2] = std::max(widths[2], row.resource.size());
    widths[3] = std::max(widths[3], row.object.size());
  }
  const auto pad = [](const std::string& text, std::size_t width) {
    return text + std::string(width - text.size() + 2, ' ');
  };
  const auto print = [&](const Row& row) {
    out << pad(row.index, widths[0]) << pad(row.stage, widths[1]) << pad(row.resource, widths[2])
        << pad(row.object, widths[3]) << row.action << "\n";
    for (const std::string& detail : row.details) out << "     " << detail << "\n";
  };
  out << "\n";
  print(header);
  for (const Row& row : rows) print(row);
  if (rows.empty()) out << "(the Task selects no object)\n";
  if (const int64_t omitted = report.value("omitted", int64_t{0}); omitted > 0) {
    out << "(" << omitted << " more objects left out of the TaskRun to keep it small: the "
        << "taskrun-controller's log has a line for each)\n";
  }
  std::string resources;
  for (const json& entry : report.value("resources", json::array())) {
    resources += (resources.empty() ? "" : "; ") + StringOf(entry, "resource") + " (" +
                 StringOf(entry, "stage") + ") " + std::to_string(entry.value("objects", int64_t{0})) +
                 " listed, " + std::to_string(entry.value("selected", int64_t{0})) + " selected";
  }
  if (!resources.empty()) out << "resources: " << resources << "\n";
  return out.str();
}

}  // namespace ro::controllers

// A TaskRun's dry-run report (status.dryRunReport, docs/automation.md "Dry run") for
// people: what `roctl dry-run` and `roctl report` print.
//
//   TaskRun dr/preview-dry: Failed (ObjectsFailed)
//   Dry run, nothing changed: 2 objects would be patched (2 changed, 0 only annotated), 1 would fail: ...
//
//   #  STAGE       RESOURCE             OBJECT            ACTION
//   1  ConfigMaps  v1/configmaps        preview/settings  Patch
//        replace /data/mode "active"
//   2  Services    v1/services          preview/front     Fail
//        Service "front" is invalid: spec.ports[0].port: Invalid value: 70000: ...
//   ...
//   resources: v1/configmaps (ConfigMaps) 1 listed, 1 selected; ...
#pragma once

#include <string>

#include <nlohmann/json_fwd.hpp>

namespace ro::controllers {

// The text above for `taskrun` (any phase: a run that has not finished, or is no dry run,
// says so in its first lines). Pure.
std::string DryRunReportText(const nlohmann::json& taskrun);

}  // namespace ro::controllers

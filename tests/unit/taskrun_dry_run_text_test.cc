// roctl's text of a dry-run report (src/controllers/taskrun/dry_run_text.h).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>

#include "taskrun/dry_run_text.h"

namespace ro::controllers {
namespace {

using nlohmann::json;

TEST(DryRunTextTest, OneRowPerObjectWithItsOperationsOrWhyItWouldFail) {
  const json taskrun = json::parse(R"({
    "metadata": {"name": "preview-dry", "namespace": "dr"},
    "status": {"phase": "Failed", "dryRun": true, "message": "Dry run, nothing changed: 1 object would be patched",
      "conditions": [{"type": "Ready", "status": "False", "reason": "ObjectsFailed"}],
      "dryRunReport": {
        "objects": [
          {"resource": "v1/configmaps", "namespace": "shop", "name": "settings", "action": "Patch",
           "patch": [{"op": "replace", "path": "/data/mode", "value": "active"}]},
          {"resource": "v1/services", "namespace": "shop", "name": "front", "action": "Fail",
           "message": "spec.ports[0].port: Invalid value: 70000"},
          {"resource": "apiextensions.k8s.io/v1/customresourcedefinitions", "name": "widgets.example.com",
           "action": "Unchanged"}],
        "resources": [{"index": 0, "resource": "v1/configmaps", "stage": "ConfigMaps", "objects": 3, "selected": 1}],
        "omitted": 4}}})");
  EXPECT_EQ(DryRunReportText(taskrun),
            "TaskRun dr/preview-dry: Failed (ObjectsFailed)\n"
            "Dry run, nothing changed: 1 object would be patched\n"
            "\n"
            "#  STAGE        RESOURCE                                           OBJECT               ACTION\n"
            "1  ConfigMaps   v1/configmaps                                      shop/settings        Patch\n"
            "     replace /data/mode \"active\"\n"
            "2  Services     v1/services                                        shop/front           Fail\n"
            "     spec.ports[0].port: Invalid value: 70000\n"
            "3  Definitions  apiextensions.k8s.io/v1/customresourcedefinitions  widgets.example.com  Unchanged\n"
            "(4 more objects left out of the TaskRun to keep it small: the taskrun-controller's log has a line for each)\n"
            "resources: v1/configmaps (ConfigMaps) 3 listed, 1 selected\n");
}

TEST(DryRunTextTest, ARunThatIsNoDryRunOrHasNotFinishedSaysSo) {
  json taskrun = {{"metadata", {{"name", "r"}, {"namespace", "dr"}}}, {"status", {{"phase", "Succeeded"}}}};
  EXPECT_NE(DryRunReportText(taskrun).find("not a dry run"), std::string::npos);
  taskrun["status"] = {{"phase", "Running"}, {"dryRun", true}};
  EXPECT_NE(DryRunReportText(taskrun).find("has not finished"), std::string::npos);
}

}  // namespace
}  // namespace ro::controllers

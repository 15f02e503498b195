// What the Backup plugins' configurations share (private to src/plugins/backup/).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "ro/plugins/kubernetes/config_error.h"

namespace ro::plugins::backup::internal {

// The Backup's spec, after checking spec.plugin is `plugin` (a problem of spec.plugin
// otherwise, naming both plugins); nullptr (with a problem) when spec is not an object.
const nlohmann::json* BackupSpec(const nlohmann::json& backup, std::string_view plugin,
                                 std::vector<kubernetes::ConfigProblem>* problems);

// spec.config.destination.bucket: its name (required) into `bucket_name` and basePath into
// `base_path` (leading and trailing '/' dropped; default "<namespace>/<name>" of the
// Backup).
void ParseBucketDestination(const nlohmann::json& backup, const nlohmann::json& config,
                            std::vector<kubernetes::ConfigProblem>* problems, std::string* bucket_name,
                            std::string* base_path);

}  // namespace ro::plugins::backup::internal

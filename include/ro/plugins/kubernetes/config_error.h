// Validation problems of a LiveSynchronization `spec.config` (manual 6.2.6) and of the
// pieces it is built from (patches, filters). Validation collects every problem instead
// of stopping at the first, so one status condition can list them all.
// Reason codes are used verbatim as condition reasons (docs/kubesync.md "Configuration
// validation").
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ro::plugins::kubernetes {

// Condition reasons, one per kind of problem.
namespace reason {
// A required field is missing, or a field has the wrong JSON type or an invalid value
// not covered by a more specific reason below.
inline constexpr std::string_view kInvalidConfig = "InvalidConfig";
// replication.resyncPeriod (or resyncPeriod) is not a Go duration or is not > 0, or both
// are set to different durations.
inline constexpr std::string_view kInvalidResyncPeriod = "InvalidResyncPeriod";
// A nameSelector regex / excludeRegex does not compile with RE2.
inline constexpr std::string_view kInvalidRegex = "InvalidRegex";
// A selector / namespaceSelector is not a valid metav1.LabelSelector.
inline constexpr std::string_view kInvalidSelector = "InvalidSelector";
// A patch operation is malformed (op, path, value) or would change object identity.
inline constexpr std::string_view kInvalidPatch = "InvalidPatch";
// Two resources[] entries of one GVR both transform and their filters may overlap.
inline constexpr std::string_view kOverlappingTransformations = "OverlappingTransformations";
// A components.<name> setting is invalid (logLevel, imagePullPolicy, counts, resources).
inline constexpr std::string_view kInvalidComponent = "InvalidComponent";
}  // namespace reason

// One problem. `field` is a path relative to spec.config, e.g.
// "replication.resources[2].filters.nameSelector.excludeRegex[0]"; "" is the config
// object itself. `reason` is one of the reason:: codes. `message` says what is wrong and,
// where it helps, what would be right.
struct ConfigProblem {
  std::string field;
  std::string reason;
  std::string message;

  bool operator==(const ConfigProblem&) const = default;
};

// A short text for a condition message: the first `max_listed` problems as
// "<field>: <message>" joined by "; ", then "; and N more" when there are more.
// Returns "" for an empty list.
std::string ProblemsToMessage(const std::vector<ConfigProblem>& problems,
                              std::size_t max_listed = 3);

// The configuration is invalid. Carries every problem found (never empty).
// what() == ProblemsToMessage(problems()); reason() is the first problem's reason, the
// one a Ready=False condition shows.
class ConfigError : public std::invalid_argument {
 public:
  // REQUIRES: !problems.empty().
  explicit ConfigError(std::vector<ConfigProblem> problems);

  const std::vector<ConfigProblem>& problems() const noexcept { return problems_; }
  const std::string& reason() const noexcept { return problems_.front().reason; }

 private:
  std::vector<ConfigProblem> problems_;
};

}  // namespace ro::plugins::kubernetes

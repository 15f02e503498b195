#include "ro/plugins/kubernetes/config_error.h"

#include <algorithm>
#include <utility>

namespace ro::plugins::kubernetes {

std::string ProblemsToMessage(const std::vector<ConfigProblem>& problems, std::size_t max_listed) {
  std::string out;
  const std::size_t listed = std::min(problems.size(), max_listed);
  for (std::size_t i = 0; i < listed; ++i) {
    if (!out.empty()) out += "; ";
    const ConfigProblem& p = problems[i];
    if (!p.field.empty()) {
      out += p.field;
      out += ": ";
    }
    out += p.message;
  }
  if (problems.size() > listed) {
    out += "; and " + std::to_string(problems.size() - listed) + " more";
  }
  return out;
}

ConfigError::ConfigError(std::vector<ConfigProblem> problems)
    : std::invalid_argument(ProblemsToMessage(problems)), problems_(std::move(problems)) {
  if (problems_.empty()) {
    problems_.push_back({"", std::string(reason::kInvalidConfig), "invalid configuration"});
  }
}

}  // namespace ro::plugins::kubernetes

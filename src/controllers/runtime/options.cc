#include "ro/runtime/options.h"

#include <algorithm>
#include <cstdlib>
#include <utility>
#include <variant>

#include <CLI/CLI.hpp>

#include "ro/common/duration.h"
#include "ro/common/log.h"

namespace ro::runtime {

namespace {

// The namespace the manifests of deploy/operator install into.
constexpr const char* kDefaultOperatorNamespace = "resiliency-operator";

std::chrono::milliseconds ParseFlagDuration(const std::string& flag, const std::string& text) {
  try {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
        common::ParseNonNegativeDuration(text));
  } catch (const common::DurationError& e) {
    throw FlagError(2, flag + ": " + e.what());
  }
}

}  // namespace

void ManagerOptions::Validate() const {
  if (binary_name.empty()) throw std::invalid_argument("binary name must not be empty");
  if (max_concurrent_reconciles < 1) {
    throw std::invalid_argument("--max-concurrent-reconciles must be at least 1");
  }
  log::ParseLevel(log_level);  // throws naming the accepted values
  if (leader_elect) {
    if (leader_election_namespace.empty() || leader_election_id.empty()) {
      throw std::invalid_argument(
          "--leader-election-namespace and --leader-election-id must not be empty");
    }
    if (!(lease_duration > renew_deadline) || renew_deadline.count() <= 0 ||
        retry_period.count() <= 0 ||
        !(renew_deadline.count() * 10 > retry_period.count() * 12)) {
      // 1.2: client-go's JitterFactor, checked the same way by ro::kube::LeaderElector.
      throw std::invalid_argument(
          "leader election needs lease-duration > renew-deadline > 1.2 * retry-period > 0");
    }
  }
  if (graceful_shutdown_timeout.count() <= 0) {
    throw std::invalid_argument("--graceful-shutdown-timeout must be positive");
  }
}

struct FlagSet::Flag {
  std::string name;
  std::variant<std::chrono::milliseconds*, std::string*, int*, bool*> target;
  std::string help;
  std::string text;  // durations: the raw value until converted
};

FlagSet::FlagSet() = default;
FlagSet::~FlagSet() = default;

void FlagSet::AddDuration(const std::string& name, std::chrono::milliseconds* target,
                          const std::string& help) {
  flags_.push_back(
      std::make_unique<Flag>(Flag{name, target, help, common::FormatDuration(*target)}));
}
void FlagSet::AddString(const std::string& name, std::string* target, const std::string& help) {
  flags_.push_back(std::make_unique<Flag>(Flag{name, target, help, ""}));
}
void FlagSet::AddInt(const std::string& name, int* target, const std::string& help) {
  flags_.push_back(std::make_unique<Flag>(Flag{name, target, help, ""}));
}
void FlagSet::AddBool(const std::string& name, bool* target, const std::string& help) {
  flags_.push_back(std::make_unique<Flag>(Flag{name, target, help, ""}));
}

ManagerOptions ParseFlags(const std::vector<std::string>& args, const std::string& binary_name,
                          FlagSet& extra,
                          const std::function<std::string(const char*)>& getenv) {
  ManagerOptions o;
  o.binary_name = binary_name;
  const std::string pod_namespace = getenv("POD_NAMESPACE");
  o.leader_election_namespace = pod_namespace.empty() ? kDefaultOperatorNamespace : pod_namespace;
  o.leader_election_id = binary_name;

  CLI::App app{"Resiliency Operator controller (docs/runtime.md)", binary_name};
  app.option_defaults()->always_capture_default();
  std::string lease_duration = common::FormatDuration(o.lease_duration);
  std::string renew_deadline = common::FormatDuration(o.renew_deadline);
  std::string retry_period = common::FormatDuration(o.retry_period);
  std::string graceful = common::FormatDuration(o.graceful_shutdown_timeout);

  app.add_option("--kubeconfig", o.kubeconfig,
                 "Path to a kubeconfig; default: $KUBECONFIG, in-cluster, ~/.kube/config");
  app.add_option("--namespace", o.ns, "Watch only this namespace; default: all namespaces");
  app.add_flag("--leader-elect", o.leader_elect,
               "Campaign for a Lease and reconcile only while holding it");
  app.add_option("--leader-election-namespace", o.leader_election_namespace,
                 "Namespace of the leader-election Lease; default: $POD_NAMESPACE or "
                 "resiliency-operator");
  app.add_option("--leader-election-id", o.leader_election_id,
                 "Name of the leader-election Lease; default: the binary name");
  app.add_option("--leader-elect-lease-duration", lease_duration,
                 "How long a non-leader waits after the last observed renewal (Go duration)");
  app.add_option("--leader-elect-renew-deadline", renew_deadline,
                 "How long the leader retries renewing before giving up (Go duration)");
  app.add_option("--leader-elect-retry-period", retry_period,
                 "Wait between leader-election attempts (Go duration)");
  app.add_option("--metrics-bind-address", o.metrics_bind_address,
                 "host:port (or :port) for /metrics; \"0\" disables");
  app.add_option("--health-probe-bind-address", o.health_probe_bind_address,
                 "host:port (or :port) for /healthz and /readyz; \"0\" disables");
  app.add_option("--log-level", o.log_level, "debug, info, warn or error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  app.add_option("--license-file", o.license_file, "The mounted license key");
  app.add_option("--max-concurrent-reconciles", o.max_concurrent_reconciles,
                 "Objects reconciled in parallel")
      ->check(CLI::PositiveNumber);
  app.add_option("--graceful-shutdown-timeout", graceful,
                 "Upper bound for the clean shutdown after SIGTERM (Go duration)");

  for (const auto& flag : extra.flags_) {
    FlagSet::Flag& f = *flag;
    if (std::holds_alternative<std::chrono::milliseconds*>(f.target)) {
      app.add_option(f.name, f.text, f.help + " (Go duration)");
    } else if (auto* const* text = std::get_if<std::string*>(&f.target)) {
      app.add_option(f.name, **text, f.help);
    } else if (auto* const* number = std::get_if<int*>(&f.target)) {
      app.add_option(f.name, **number, f.help);
    } else if (auto* const* flag_value = std::get_if<bool*>(&f.target)) {
      app.add_flag(f.name, **flag_value, f.help);
    }
  }

  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 wants them reversed
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    throw FlagError(0, app.help());
  } catch (const CLI::ParseError& e) {
    throw FlagError(2, std::string(e.what()) + "\nRun with --help for the list of flags.");
  }

  o.lease_duration = ParseFlagDuration("--leader-elect-lease-duration", lease_duration);
  o.renew_deadline = ParseFlagDuration("--leader-elect-renew-deadline", renew_deadline);
  o.retry_period = ParseFlagDuration("--leader-elect-retry-period", retry_period);
  o.graceful_shutdown_timeout = ParseFlagDuration("--graceful-shutdown-timeout", graceful);
  for (const auto& flag : extra.flags_) {
    if (auto* const* duration = std::get_if<std::chrono::milliseconds*>(&flag->target)) {
      **duration = ParseFlagDuration(flag->name, flag->text);
    }
  }
  try {
    o.Validate();
  } catch (const std::invalid_argument& e) {
    throw FlagError(2, e.what());
  }
  return o;
}

}  // namespace ro::runtime

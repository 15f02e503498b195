// ro::plugins::kubernetes::ParseLiveSyncConfig on a JSON input (a LiveSynchronization's
// spec.config). It returns a LiveSyncConfig or throws ConfigError. Properties
// (live_sync_config.h): a parsed config has at least one resource, positive periods and
// a 16-hex-digit fingerprint exactly for the entries with a non-empty transformation; a
// ConfigError lists at least one problem, each with a known reason and a message that
// can be written into the status condition it becomes.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fuzz_check.h"
#include "ro/plugins/kubernetes/live_sync_config.h"

namespace {

namespace k8s = ro::plugins::kubernetes;
using ro::fuzz::Check;

bool KnownReason(std::string_view r) {
  namespace reason = k8s::reason;
  return r == reason::kInvalidConfig || r == reason::kInvalidResyncPeriod ||
         r == reason::kInvalidRegex || r == reason::kInvalidSelector ||
         r == reason::kInvalidPatch || r == reason::kOverlappingTransformations ||
         r == reason::kInvalidComponent;
}

bool IsHex16(const std::string& s) {
  return s.size() == 16 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const nlohmann::json spec_config =
      ro::fuzz::ParseJsonInput(std::string_view(reinterpret_cast<const char*>(data), size));
  if (spec_config.is_discarded()) return 0;
  try {
    const k8s::LiveSyncConfig config = k8s::ParseLiveSyncConfig(spec_config);
    Check(!config.source_name.empty() && !config.destination_name.empty() &&
              config.source_name != config.destination_name,
          "source and destination are named and differ");
    Check(!config.replication.resources.empty(), "at least one resource");
    Check(config.replication.resync_period.count() > 0, "resyncPeriod > 0");
    Check(config.observability.interval.count() > 0, "observability interval > 0");
    for (std::size_t i = 0; i < config.replication.resources.size(); ++i) {
      const k8s::ResourceRule& rule = config.replication.resources[i];
      Check(rule.index == i, "rules keep their index");
      const bool transforms = rule.transformation && !rule.transformation->patch.empty();
      Check(transforms ? IsHex16(rule.transformation_fingerprint)
                       : rule.transformation_fingerprint.empty(),
            "a fingerprint exactly for non-empty transformations");
      Check(config.Replicates(rule.gvr), "Replicates every configured GVR");
    }
    const auto gvrs = config.DistinctGvrs();
    Check(!gvrs.empty() && gvrs.size() <= config.replication.resources.size(),
          "DistinctGvrs lists each GVR once");
  } catch (const k8s::ConfigError& e) {
    Check(!e.problems().empty(), "a ConfigError lists a problem");
    Check(e.reason() == e.problems().front().reason, "reason() is the first problem's");
    for (const k8s::ConfigProblem& p : e.problems()) {
      Check(KnownReason(p.reason), "every problem has a documented reason");
      Check(ro::fuzz::JsonWritable(p.field) && ro::fuzz::JsonWritable(p.message),
            "problems can be written into a status condition");
    }
    Check(ro::fuzz::JsonWritable(e.what()), "what() can be written into a status condition");
  }
  return 0;
}

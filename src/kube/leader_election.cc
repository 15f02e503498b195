#include "ro/kube/leader_election.h"

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <thread>
#include <utility>

#include "ro/common/log.h"
#include "ro/common/time.h"
#include "ro/kube/client.h"
#include "ro/kube/errors.h"
#include "ro/kube/gvr.h"

namespace ro::kube {
namespace {

// The elector's log lines carry {"lease": "<namespace>/<name>", "identity": <candidate>}.
ro::log::Logger LeaseLog(const ResourceLock& lock, const std::string& identity) {
  return ro::log::Logger(nlohmann::json{{"lease", lock.Describe()}, {"identity", identity}});
}

// client-go's leaderelection.JitterFactor: the acquire loop waits retry_period stretched
// by up to 120%, so candidates that started together do not keep colliding.
constexpr double kJitterFactor = 1.2;
// Lease times are metav1.MicroTime: microseconds.

const GroupVersionResource& LeaseGvr() {
  static const GroupVersionResource gvr{"coordination.k8s.io", "v1", "leases"};
  return gvr;
}

Clock::WallTime ParseTimeOr(const nlohmann::json& spec, const char* field) {
  const auto it = spec.find(field);
  if (it == spec.end() || !it->is_string()) return {};
  try {
    return common::ParseRfc3339(it->get<std::string>());
  } catch (const std::invalid_argument&) {
    return {};
  }
}

LeaderElectionRecord RecordFromLease(const nlohmann::json& lease) {
  LeaderElectionRecord r;
  const auto spec_it = lease.find("spec");
  if (spec_it == lease.end() || !spec_it->is_object()) return r;
  const nlohmann::json& spec = *spec_it;
  r.holder_identity = spec.value("holderIdentity", std::string());
  r.lease_duration_seconds = spec.value("leaseDurationSeconds", 0);
  r.acquire_time = ParseTimeOr(spec, "acquireTime");
  r.renew_time = ParseTimeOr(spec, "renewTime");
  r.lease_transitions = spec.value("leaseTransitions", 0);
  return r;
}

nlohmann::json SpecFromRecord(const LeaderElectionRecord& r) {
  return {{"holderIdentity", r.holder_identity},
          {"leaseDurationSeconds", r.lease_duration_seconds},
          {"acquireTime", common::FormatRfc3339Micro(r.acquire_time)},
          {"renewTime", common::FormatRfc3339Micro(r.renew_time)},
          {"leaseTransitions", r.lease_transitions}};
}

class LeaseLock final : public ResourceLock {
 public:
  LeaseLock(DynamicClient& client, std::string ns, std::string name)
      : client_(client), ns_(std::move(ns)), name_(std::move(name)) {}

  std::optional<Observed> Get() override {
    try {
      last_ = client_.Get(LeaseGvr(), ns_, name_);
    } catch (const ApiError& e) {
      if (e.reason() == StatusReason::kNotFound) return std::nullopt;
      throw;
    }
    return Observed{RecordFromLease(last_), ObjectResourceVersionOf(last_)};
  }

  void Create(const LeaderElectionRecord& record) override {
    nlohmann::json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                            {"kind", "Lease"},
                            {"metadata", {{"name", name_}, {"namespace", ns_}}},
                            {"spec", SpecFromRecord(record)}};
    last_ = client_.Create(LeaseGvr(), ns_, lease);
  }

  void Update(const LeaderElectionRecord& record, const std::string& resource_version) override {
    // Keep whatever else the object carries (labels, ownerReferences) from the last read.
    nlohmann::json lease = last_.is_object() ? last_
                                             : nlohmann::json{{"apiVersion", "coordination.k8s.io/v1"},
                                                              {"kind", "Lease"},
                                                              {"metadata", {{"name", name_}, {"namespace", ns_}}}};
    lease["metadata"]["resourceVersion"] = resource_version;
    lease["spec"] = SpecFromRecord(record);
    last_ = client_.Update(LeaseGvr(), ns_, lease);
  }

  std::string Describe() const override { return ns_ + "/" + name_; }

 private:
  static std::string ObjectResourceVersionOf(const nlohmann::json& object) {
    const auto meta = object.find("metadata");
    if (meta == object.end() || !meta->is_object()) return "";
    return meta->value("resourceVersion", std::string());
  }

  DynamicClient& client_;
  const std::string ns_;
  const std::string name_;
  nlohmann::json last_;  // the lease as last read or written
};

void Validate(const LeaderElectionConfig& c) {
  if (c.identity.empty()) throw std::invalid_argument("leader election: identity is required");
  if (!c.on_started_leading) {
    throw std::invalid_argument("leader election: on_started_leading is required");
  }
  if (c.lease_duration.count() <= 0 || c.renew_deadline.count() <= 0 ||
      c.retry_period.count() <= 0) {
    throw std::invalid_argument("leader election: durations must be positive");
  }
  if (c.lease_duration <= c.renew_deadline) {
    throw std::invalid_argument("leader election: lease_duration must be greater than renew_deadline");
  }
  if (static_cast<double>(c.renew_deadline.count()) <=
      kJitterFactor * static_cast<double>(c.retry_period.count())) {
    throw std::invalid_argument(
        "leader election: renew_deadline must be greater than 1.2 * retry_period");
  }
}

}  // namespace

std::unique_ptr<ResourceLock> NewLeaseLock(DynamicClient& client, std::string ns, std::string name) {
  return std::make_unique<LeaseLock>(client, std::move(ns), std::move(name));
}

LeaderElector::LeaderElector(std::unique_ptr<ResourceLock> lock, LeaderElectionConfig config,
                             Clock& clock)
    : lock_(std::move(lock)), config_(std::move(config)), clock_(clock), rng_(std::random_device{}()) {
  if (!lock_) throw std::invalid_argument("leader election: lock is required");
  Validate(config_);
}

bool LeaderElector::IsLeader() const {
  std::lock_guard lock(mu_);
  return is_leader_;
}

std::string LeaderElector::Leader() const {
  std::lock_guard lock(mu_);
  return leader_;
}

std::chrono::milliseconds LeaderElector::JitteredRetryPeriod() {
  std::uniform_real_distribution<double> stretch(1.0, 1.0 + kJitterFactor);
  return std::chrono::milliseconds{
      static_cast<int64_t>(static_cast<double>(config_.retry_period.count()) * stretch(rng_))};
}

void LeaderElector::Observe(const LeaderElectionRecord& record) {
  if (record != observed_record_) {
    observed_record_ = record;
    observed_time_ = clock_.SteadyNow();
  }
  {
    std::lock_guard lock(mu_);
    leader_ = record.holder_identity;
    is_leader_ = leader_ == config_.identity;
  }
  if (!record.holder_identity.empty() && record.holder_identity != reported_leader_) {
    reported_leader_ = record.holder_identity;
    LeaseLog(*lock_, config_.identity).Info("new leader", {{"leader", reported_leader_}});
    if (config_.on_new_leader) config_.on_new_leader(reported_leader_);
  }
}

bool LeaderElector::TryAcquireOrRenew() {
  // Truncated to the Lease's microsecond precision, so the record we wrote compares equal
  // to the one we read back.
  const Clock::WallTime now =
      std::chrono::time_point_cast<std::chrono::microseconds>(clock_.Now());
  LeaderElectionRecord desired{
      config_.identity,
      static_cast<int>(std::chrono::duration_cast<std::chrono::seconds>(config_.lease_duration).count()),
      now, now, 0};

  std::optional<ResourceLock::Observed> current;
  try {
    current = lock_->Get();
  } catch (const std::exception& e) {
    LeaseLog(*lock_, config_.identity).Warn("reading the lease failed", {{"error", e.what()}});
    return false;
  }
  if (!current) {
    try {
      lock_->Create(desired);
    } catch (const std::exception& e) {
      LeaseLog(*lock_, config_.identity).Warn("creating the lease failed", {{"error", e.what()}});
      return false;
    }
    Observe(desired);
    return true;
  }

  const LeaderElectionRecord old = current->record;
  Observe(old);
  const bool held_by_other = !old.holder_identity.empty() && old.holder_identity != config_.identity;
  if (held_by_other) {
    const std::chrono::milliseconds duration =
        old.lease_duration_seconds > 0 ? std::chrono::seconds{old.lease_duration_seconds}
                                       : config_.lease_duration;
    if (observed_time_ + duration > clock_.SteadyNow()) return false;  // still held
  }
  if (old.holder_identity == config_.identity) {
    desired.acquire_time = old.acquire_time;
    desired.lease_transitions = old.lease_transitions;
  } else {
    desired.lease_transitions = old.lease_transitions + 1;
  }
  try {
    lock_->Update(desired, current->resource_version);
  } catch (const std::exception& e) {
    if (IsConflict(e)) {
      LeaseLog(*lock_, config_.identity).Debug("lost a concurrent update of the lease", {{"error", e.what()}});
    } else {
      LeaseLog(*lock_, config_.identity).Warn("updating the lease failed", {{"error", e.what()}});
    }
    return false;
  }
  Observe(desired);
  return true;
}

bool LeaderElector::Acquire(std::stop_token stop) {
  LeaseLog(*lock_, config_.identity).Info("campaigning for leadership");
  while (!stop.stop_requested()) {
    if (TryAcquireOrRenew()) {
      LeaseLog(*lock_, config_.identity).Info("acquired leadership");
      return true;
    }
    if (!clock_.SleepFor(JitteredRetryPeriod(), stop)) return false;
  }
  return false;
}

bool LeaderElector::RenewUntilLostOrStopped(std::stop_token stop) {
  while (!stop.stop_requested()) {
    const Clock::SteadyTime deadline = clock_.SteadyNow() + config_.renew_deadline;
    bool renewed = false;
    while (!renewed) {
      renewed = TryAcquireOrRenew();
      if (renewed) break;
      if (clock_.SteadyNow() + config_.retry_period > deadline) break;
      if (!clock_.SleepFor(config_.retry_period, stop)) return true;
    }
    if (!renewed) {
      LeaseLog(*lock_, config_.identity).Warn("could not renew the lease in time; stopping leading",
                 {{"renewDeadlineMs", config_.renew_deadline.count()}});
      return false;
    }
    if (!clock_.SleepFor(config_.retry_period, stop)) return true;
  }
  return true;
}

void LeaderElector::Release() {
  try {
    const std::optional<ResourceLock::Observed> current = lock_->Get();
    if (!current || current->record.holder_identity != config_.identity) return;
    const Clock::WallTime now =
        std::chrono::time_point_cast<std::chrono::microseconds>(clock_.Now());
    // As client-go: holder cleared, duration 1 s, transitions kept.
    const LeaderElectionRecord released{"", 1, now, now, current->record.lease_transitions};
    lock_->Update(released, current->resource_version);
    Observe(released);
    LeaseLog(*lock_, config_.identity).Info("released leadership");
  } catch (const std::exception& e) {
    LeaseLog(*lock_, config_.identity).Warn("releasing the lease failed", {{"error", e.what()}});
  }
}

void LeaderElector::Run(std::stop_token stop) {
  if (!Acquire(stop)) return;
  bool stopped = false;
  {
    std::jthread leading([this](std::stop_token leading_stop) {
      try {
        config_.on_started_leading(leading_stop);
      } catch (const std::exception& e) {
        LeaseLog(*lock_, config_.identity).Error("on_started_leading threw", {{"error", e.what()}});
      }
    });
    std::stop_callback forward(stop, [&leading] { leading.request_stop(); });
    stopped = RenewUntilLostOrStopped(stop);
    leading.request_stop();
  }  // joins `leading`: the guarded work has returned before any release
  if (stopped && config_.release_on_cancel) Release();
  {
    std::lock_guard lock(mu_);
    is_leader_ = false;
  }
  if (config_.on_stopped_leading) config_.on_stopped_leading();
}

}  // namespace ro::kube

// Leader election on a coordination.k8s.io/v1 Lease (client-go tools/leaderelection).
//
// Candidates race to write their identity into the Lease with optimistic concurrency
// (resourceVersion preconditions). The holder renews renewTime every retry_period; a
// candidate takes over when it has seen the same record unchanged for
// leaseDurationSeconds, measured on its OWN monotonic clock from when it observed the
// record (so clock skew between machines does not matter), or at once when the holder
// released the lease (holderIdentity ""). A leader that cannot renew within
// renew_deadline stops leading before the lease can expire for others
// (renew_deadline < lease_duration), so two leaders never overlap if clocks run at the
// same rate.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stop_token>
#include <string>

#include "ro/kube/clock.h"

namespace ro::kube {

class DynamicClient;

// The Lease spec fields that carry the election (LeaderElectionRecord in client-go).
struct LeaderElectionRecord {
  std::string holder_identity;     // "" when released
  int lease_duration_seconds = 0;  // how long others wait after the last observed change
  Clock::WallTime acquire_time;    // when the current holder acquired it
  Clock::WallTime renew_time;      // last renewal by the holder
  int lease_transitions = 0;       // times the holder changed
  bool operator==(const LeaderElectionRecord&) const = default;
};

// Storage of the record (client-go resourcelock.Interface). Used from one thread.
class ResourceLock {
 public:
  struct Observed {
    LeaderElectionRecord record;
    std::string resource_version;
  };
  virtual ~ResourceLock() = default;
  // The current record, or nullopt when the lock object does not exist.
  // Throws ApiError / TransportError.
  virtual std::optional<Observed> Get() = 0;
  // Creates the lock object. Throws ApiError (kAlreadyExists: another candidate won).
  virtual void Create(const LeaderElectionRecord& record) = 0;
  // Writes `record` if the object is still at `resource_version`. Throws ApiError
  // (kConflict: someone else wrote in between).
  virtual void Update(const LeaderElectionRecord& record, const std::string& resource_version) = 0;
  // "namespace/name" for log lines.
  virtual std::string Describe() const = 0;
};

// A Lease `ns`/`name` through `client` (which must outlive it). The client's
// RestConfig::timeout should be below renew_deadline, or one hung request can outlast it.
std::unique_ptr<ResourceLock> NewLeaseLock(DynamicClient& client, std::string ns, std::string name);

struct LeaderElectionConfig {
  // This candidate's unique identity (e.g. "<pod name>_<random>"). Required.
  std::string identity;
  // Defaults are client-go's and controller-runtime's: a crashed leader is replaced
  // within ~15 s; a leader survives ~10 s of apiserver trouble (5 renew attempts, one
  // every 2 s) before giving up. Constraints (checked): lease_duration > renew_deadline >
  // 1.2 * retry_period (1.2 is the retry jitter factor), all > 0.
  std::chrono::milliseconds lease_duration{15'000};
  std::chrono::milliseconds renew_deadline{10'000};
  std::chrono::milliseconds retry_period{2'000};
  // On a clean stop (Run's stop_token), the leader writes holderIdentity "" so another
  // candidate takes over at once instead of after lease_duration. Safe because Run
  // waits for on_started_leading to return before releasing.
  bool release_on_cancel = true;
  // Runs on its own thread when this candidate becomes leader; must return promptly once
  // its stop_token is requested (leadership lost, or Run's stop). Required.
  std::function<void(std::stop_token)> on_started_leading;
  // Called on Run's thread after leading ended (lost or stopped), after
  // on_started_leading returned. Not called if this candidate never led.
  std::function<void()> on_stopped_leading;
  // Called on Run's thread when the observed holder changes (including to this
  // candidate; a released lease, holder "", is not reported). Must be quick.
  std::function<void(const std::string& identity)> on_new_leader;
};

// Not thread-safe except: Run() on one thread, IsLeader()/Leader() from any thread.
class LeaderElector {
 public:
  // `clock` must outlive the elector. Throws std::invalid_argument for a bad config.
  LeaderElector(std::unique_ptr<ResourceLock> lock, LeaderElectionConfig config,
                Clock& clock = DefaultClock());
  LeaderElector(const LeaderElector&) = delete;
  LeaderElector& operator=(const LeaderElector&) = delete;

  // Campaigns until this candidate leads or `stop` is requested; then leads until the
  // lease cannot be renewed within renew_deadline or `stop` is requested; then returns
  // (releasing the lease on a clean stop when configured). Never throws for API errors
  // (logged, retried). Call once.
  void Run(std::stop_token stop);

  bool IsLeader() const;
  // The last observed holder identity ("" when unknown or released).
  std::string Leader() const;

 private:
  // One attempt to create, take over or renew the lease. Returns true when this
  // candidate holds it afterwards.
  bool TryAcquireOrRenew();
  bool Acquire(std::stop_token stop);
  // Renews until it fails for renew_deadline or `stop`. Returns true when stopped.
  bool RenewUntilLostOrStopped(std::stop_token stop);
  void Release();
  void Observe(const LeaderElectionRecord& record);
  std::chrono::milliseconds JitteredRetryPeriod();

  // Constant after construction.
  const std::unique_ptr<ResourceLock> lock_;
  const LeaderElectionConfig config_;
  Clock& clock_;

  // Owned by the Run() thread.
  std::mt19937_64 rng_;
  LeaderElectionRecord observed_record_;
  Clock::SteadyTime observed_time_{};
  std::string reported_leader_;

  mutable std::mutex mu_;
  // Guarded by mu_.
  std::string leader_;
  bool is_leader_ = false;
};

}  // namespace ro::kube

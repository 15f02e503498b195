// Pipeline statistics of one LiveSynchronization: what the components record per event,
// how the deltas reach Redis, and how they are read back (by the metrics exporter and by
// the LiveSynchronization controller for status). Metric names: docs/metrics.md.
//
// Redis layout (keys relative to the "ks:<id>" prefix; fields joined with '|', a '|'
// inside a label value is written as '_'):
//   stats:events   <component>|<gvr>|<type>|<ns>    integer  (HINCRBY); <ns> is the
//                                               object's namespace ("" cluster-scoped)
//   stats:errors   <component>|<gvr>|<reason>|<ns>  integer  (HINCRBY)
//   stats:lag      <gvr>|<ns>|le=<bound>       integer, NON-cumulative: observations in
//                                               (previous bound, bound]; bound "+Inf"
//                  <gvr>|<ns>|sum               seconds  (HINCRBYFLOAT)
//                  <gvr>|<ns>|last, ...|last_at last observation (s) and when (unix s)
//   (without an object namespace the field has no <ns> part: "<component>|<gvr>|<type>",
//   "<gvr>|le=<bound>", as before the namespace was recorded)
//   stats:objects  <gvr>                        objects in sync (HSET, last writer wins)
//   stats:resync   <gvr>                        last successful resync, unix seconds
//   stats:bucket   <op>|<result>                integer  (HINCRBY)
//   stats:failures <component>|<gvr>|<reason>  integer: messages ended for good (HINCRBY)
//   stats:lastfailure <component>|<gvr>|<reason>  JSON {"object","message","at"} of the
//                                               latest one (HSET, last writer wins)
//   stats:namespaces <namespace>|missing       unix s when an object last could not be
//                                               written: its namespace is missing in the
//                                               destination (HSET, last writer wins)
//                    <namespace>|present       unix s when an object was last written
//                                               in it after that, or at least once a minute
//   stats:backlog  messages                     changes in the pipeline's stream (observed,
//                                               not yet applied or ended) (HSET)
//                  oldest                       unix s the oldest of them was published, 0
//                                               when none
//                  at                           unix s of this sample (events listener)
// Counters from several replicas add up in Redis; gauges are last-writer-wins.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "ro/kube/clock.h"
#include "ro/kubesync/redis_state.h"

namespace ro::kubesync {

// Upper bounds (seconds) of the replication-lag histogram: Prometheus' default buckets
// (5 ms .. 10 s) plus 30 s, where events land that waited for a redelivery after the
// longest NAK delays. Slower observations count in +Inf only.
inline constexpr std::array<double, 12> kLagBucketBounds{0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                         0.5,   1.0,  2.5,   5.0,  10.0, 30.0};

// Relative Redis keys of the stats hashes (layout above).
inline constexpr std::string_view kStatsEventsKey = "stats:events";
inline constexpr std::string_view kStatsErrorsKey = "stats:errors";
inline constexpr std::string_view kStatsLagKey = "stats:lag";
inline constexpr std::string_view kStatsObjectsKey = "stats:objects";
inline constexpr std::string_view kStatsResyncKey = "stats:resync";
inline constexpr std::string_view kStatsBucketKey = "stats:bucket";
inline constexpr std::string_view kStatsFailuresKey = "stats:failures";
inline constexpr std::string_view kStatsLastFailureKey = "stats:lastfailure";
inline constexpr std::string_view kStatsNamespacesKey = "stats:namespaces";
inline constexpr std::string_view kStatsBacklogKey = "stats:backlog";

// A backlog sample older than this no longer describes the pipeline (the events listener
// that takes one every couple of seconds is down or cannot reach NATS): RPO now counts
// from the sample's time, since nothing newer is known to be replicated.
inline constexpr std::chrono::seconds kBacklogStaleAfter{30};

// Where StatsRecorder sends each flush: one call per flush with every delta. May throw
// (the recorder drops that flush and logs). Called from the recorder's flusher thread.
class StatsSink {
 public:
  virtual ~StatsSink() = default;
  virtual void Write(std::span<const HashWrite> writes) = 0;
};

// Writes each flush as ONE Redis pipeline. `redis` must outlive the sink.
class RedisStatsSink final : public StatsSink {
 public:
  explicit RedisStatsSink(RedisState& redis) : redis_(redis) {}
  void Write(std::span<const HashWrite> writes) override { redis_.WriteHashes(writes); }

 private:
  RedisState& redis_;
};

struct StatsOptions {
  // Period of the background flush. 500 ms keeps Redis at ~2 pipelines/s per component
  // while the exporter (scraped every 15-30 s) and status stay fresh.
  std::chrono::milliseconds flush_interval{500};
};

// Records pipeline statistics in memory and flushes the deltas every flush_interval.
// Label conventions: `component` is the process id ("eventslistener", "processor",
// "synchronizer", "reconciler"), `gvr` the GroupVersionResource::ToString() form
// ("apps/v1/deployments"; "" when not about one resource), `type` ToString(EventType)
// ("upsert", "delete"), `reason` a short CamelCase cause ("Invalid", "Forbidden",
// "Transport", "Decode"), bucket `op` "upload" | "delete" | "get" and `result`
// "success" | "error".
//
// Thread-safe. Recording is lock-light and allocation-free after the first use of a
// label combination: a shared lock, a map lookup with the caller's string_views and an
// atomic add. A failed flush (Redis down) drops its deltas and logs once per outage:
// statistics may be lost, the pipeline is never blocked.
class StatsRecorder {
 public:
  // Starts the flusher thread on `clock` (a FakeClock in tests). `sink` and `clock` must
  // outlive the recorder. Throws std::invalid_argument for a non-positive interval.
  StatsRecorder(StatsSink& sink, kube::Clock& clock, StatsOptions options = {});
  // Stops the flusher and flushes what is left once (errors are logged, not thrown).
  ~StatsRecorder();
  StatsRecorder(const StatsRecorder&) = delete;
  StatsRecorder& operator=(const StatsRecorder&) = delete;

  // `object_ns`: the namespace of the object concerned ("" for a cluster-scoped object or
  // a failure not about one object); the manual's Object Namespace filter (6.2.8).
  // One event handled by `component`.
  void RecordEvent(std::string_view component, std::string_view gvr, std::string_view type,
                   std::string_view object_ns = {});
  // One failure (counted once per failed attempt).
  void RecordError(std::string_view component, std::string_view gvr, std::string_view reason,
                   std::string_view object_ns = {});
  // Replication lag of one applied event: apply time - Envelope::observed_at. Negative
  // values (clock skew between nodes) count as 0.
  void ObserveLag(std::string_view gvr, std::chrono::nanoseconds lag, std::string_view object_ns = {});
  // Objects of `gvr` currently in sync at the destination (a gauge).
  void SetObjectsInSync(std::string_view gvr, std::int64_t count);
  // A full resync of `gvr` completed at `when`.
  void SetLastResync(std::string_view gvr, std::chrono::system_clock::time_point when);
  // One bucket (object store) operation.
  void RecordBucketOperation(std::string_view op, std::string_view result);
  // A message ended for good without its effect (a permanent failure: terminated, or
  // rejected by JetStream): counted, and the latest one per (component, gvr, reason) kept
  // with the object ("<namespace>/<name>" or "<name>") and what went wrong, for the
  // LiveSynchronization's Events and Degraded condition. `message` must not hold secrets.
  void RecordFailure(std::string_view component, std::string_view gvr, std::string_view reason,
                     std::string_view object, std::string_view message);
  // An object could not be written because its namespace `ns` is missing in the
  // destination (now, on the recorder's clock), for the LiveSynchronization's
  // DestinationNamespacesMissing condition.
  void RecordNamespaceMissing(std::string_view ns);
  // An object was written in `ns` (now): a namespace recorded missing before exists.
  void RecordNamespacePresent(std::string_view ns);
  // What waits in the pipeline's stream now (on the recorder's clock): `messages`
  // changes, the oldest published at `oldest` (nullopt when messages is 0). A gauge; the
  // events listener samples it from the stream (work-queue retention: a message leaves
  // the stream when it was applied or ended for good).
  void SetBacklog(std::uint64_t messages, std::optional<std::chrono::system_clock::time_point> oldest);

  // Sends everything recorded since the previous flush to the sink now, on this thread
  // (the flusher does the same every interval). Nothing is sent when nothing changed.
  // Returns false when the sink threw (the deltas are dropped).
  bool FlushNow();

 private:
  struct LagSeries {
    std::array<std::atomic<std::uint64_t>, kLagBucketBounds.size() + 1> buckets{};  // last: +Inf
    std::atomic<std::uint64_t> sum_ns{0};
    std::atomic<std::int64_t> last_ns{0};
    std::atomic<std::int64_t> last_at_ns{0};  // wall clock, unix ns
    std::atomic<bool> observed{false};        // observed since the previous flush
  };
  struct Gauge {
    std::atomic<std::int64_t> value{0};
    std::atomic<bool> dirty{false};
  };
  using Key3 = std::tuple<std::string, std::string, std::string>;
  using Key4 = std::tuple<std::string, std::string, std::string, std::string>;
  using Key2 = std::tuple<std::string, std::string>;

  template <typename Map, typename Key>
  typename Map::mapped_type& Slot(Map& map, const Key& key);
  std::vector<HashWrite> CollectDeltas();
  void FlusherMain(std::stop_token stop);

  // Constant after construction.
  StatsSink& sink_;
  kube::Clock& clock_;
  const StatsOptions options_;

  // The maps only grow; entries (and their atomics) are stable. Guarded by mu_ (shared
  // for lookups and flush, exclusive to insert).
  std::shared_mutex mu_;
  std::map<Key4, std::atomic<std::uint64_t>, std::less<>> events_;  // (component, gvr, type, ns)
  std::map<Key4, std::atomic<std::uint64_t>, std::less<>> errors_;  // (component, gvr, reason, ns)
  std::map<std::tuple<std::string, std::string>, LagSeries, std::less<>> lag_;  // (gvr, ns)
  std::map<std::string, Gauge, std::less<>> objects_;
  std::map<std::string, Gauge, std::less<>> resync_;  // value: unix ns
  std::map<Key2, std::atomic<std::uint64_t>, std::less<>> bucket_ops_;
  std::map<Key3, std::atomic<std::uint64_t>, std::less<>> failures_;
  std::map<Key2, Gauge, std::less<>> namespaces_;  // (namespace, "missing"|"present") -> unix ns

  // The latest failure per key, JSON, not yet flushed. Rare: a plain mutex.
  std::mutex last_failure_mu_;
  std::map<Key3, std::string> last_failure_;  // guarded by last_failure_mu_
  // The latest backlog sample not yet flushed (fields of stats:backlog). Guarded by
  // last_failure_mu_ (rare too).
  std::optional<std::array<std::string, 3>> backlog_;

  // Serialises flushes (flusher thread, FlushNow, destructor). Guards failing_/dropped_.
  std::mutex flush_mu_;
  bool failing_ = false;       // the previous flush failed (log once per outage)
  std::uint64_t dropped_ = 0;  // flushes dropped during the current outage

  std::mutex wait_mu_;                   // for the flusher's clock wait
  std::condition_variable_any wait_cv_;  // never notified: the wait ends on time or stop
  std::jthread flusher_;                 // last: starts after everything above exists
};

// Statistics read back from Redis (ReadStats), summed over replicas.
struct StatsSnapshot {
  struct EventKey {
    std::string component, gvr, type;
    std::string object_namespace{};
    auto operator<=>(const EventKey&) const = default;
  };
  // Also the key of failures and last_failure, whose object_namespace is always "" (the
  // failed object, namespace included, is in FailureDetail).
  struct ErrorKey {
    std::string component, gvr, reason;
    std::string object_namespace{};
    auto operator<=>(const ErrorKey&) const = default;
  };
  struct LagKey {
    std::string gvr, object_namespace;
    auto operator<=>(const LagKey&) const = default;
  };
  struct FailureDetail {
    std::string object;   // "<namespace>/<name>" or "<name>"
    std::string message;  // what went wrong
    std::chrono::system_clock::time_point at{};
  };
  struct BucketOpKey {
    std::string op, result;
    auto operator<=>(const BucketOpKey&) const = default;
  };
  struct LagHistogram {
    // Upper bound (s; +infinity for +Inf) -> observations in (previous bound, bound].
    std::map<double, std::uint64_t> buckets;
    double sum_seconds = 0;
    std::optional<double> last_seconds;                           // last observation
    std::optional<std::chrono::system_clock::time_point> last_at;  // when it was made
    // Total observations (sum of the buckets).
    std::uint64_t count() const;
  };

  std::map<EventKey, std::uint64_t> events;
  std::map<ErrorKey, std::uint64_t> errors;
  std::map<std::string, LagHistogram> lag;  // by gvr, over every object namespace
  std::map<LagKey, LagHistogram> lag_by_namespace;
  std::map<std::string, std::int64_t> objects_in_sync;
  std::map<std::string, std::chrono::system_clock::time_point> last_resync;
  std::map<BucketOpKey, std::uint64_t> bucket_operations;
  // Permanent failures (RecordFailure), summed over replicas, and the latest of each.
  std::map<ErrorKey, std::uint64_t> failures;
  std::map<ErrorKey, FailureDetail> last_failure;
  // What the synchronizers recorded of destination namespaces (RecordNamespaceMissing,
  // RecordNamespacePresent), by namespace.
  struct NamespaceSeen {
    std::optional<std::chrono::system_clock::time_point> missing_at;
    std::optional<std::chrono::system_clock::time_point> present_at;
  };
  std::map<std::string, NamespaceSeen> namespaces;
  // The latest backlog sample (SetBacklog), nullopt before the first.
  struct Backlog {
    std::uint64_t messages = 0;
    std::optional<std::chrono::system_clock::time_point> oldest;
    std::chrono::system_clock::time_point sampled_at{};
  };
  std::optional<Backlog> backlog;

  // RPO now (seconds) at `now`: the age of the oldest change observed in the source and
  // not yet applied at the destination (0 when nothing waits); with a sample older than
  // kBacklogStaleAfter, at least the sample's age. nullopt without a sample.
  std::optional<double> RpoSeconds(std::chrono::system_clock::time_point now) const;

  // Current lag of `gvr` for status: its last flushed observation (any replica, last
  // writer wins), nullopt when none. Callers should treat it as stale when `last_at` is
  // older than a few flush intervals (no events flowing means nothing lags).
  std::optional<double> CurrentLagSeconds(std::string_view gvr) const;
  // The latest resync over every GVR, nullopt when none completed yet.
  std::optional<std::chrono::system_clock::time_point> LastResync() const;
  // Objects in sync summed over every GVR.
  std::int64_t ObjectsInSync() const;
  // The namespaces still missing in the destination, sorted: recorded missing within
  // `window` before `now` and not recorded present since. The window ends the report of
  // a namespace nobody writes to any more (its objects were deleted in the source, or the
  // LiveSynchronization no longer selects them); a resync records it again while it is
  // still missing, so choose it above the resync period.
  std::vector<std::string> MissingNamespaces(std::chrono::system_clock::time_point now,
                                             std::chrono::system_clock::duration window) const;
};

// Builds a snapshot from HGETALL results keyed by the relative stats keys above; fields
// that do not parse are skipped. Pure (unit-tested); ReadStats uses it.
StatsSnapshot SnapshotFromHashes(const std::map<std::string, std::map<std::string, std::string>, std::less<>>& hashes);

// HGETALL of every stats hash (nine round trips) -> snapshot. Throws RedisError.
StatsSnapshot ReadStats(RedisState& redis);

}  // namespace ro::kubesync

#include "ro/kubesync/stats.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "ro/common/log.h"

namespace ro::kubesync {
namespace {

using Clock = std::chrono::system_clock;

constexpr char kSeparator = '|';
constexpr std::string_view kBucketPrefix = "le=";
constexpr std::string_view kInfBound = "+Inf";
constexpr double kNanosPerSecond = 1e9;

// Shortest text that reads back as the same double ("0.25", "1700000000.5").
std::string FormatDouble(double value) {
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return ec == std::errc() ? std::string(buffer, end) : std::to_string(value);
}

std::string FormatBound(std::size_t index) {
  return index < kLagBucketBounds.size() ? FormatDouble(kLagBucketBounds[index]) : std::string(kInfBound);
}

double NanosToSeconds(std::int64_t ns) { return static_cast<double>(ns) / kNanosPerSecond; }

void AppendLabel(std::string& out, std::string_view value) {
  for (char c : value) out.push_back(c == kSeparator ? '_' : c);
}

std::string JoinField(std::initializer_list<std::string_view> parts) {
  std::string out;
  bool first = true;
  for (auto part : parts) {
    if (!first) out.push_back(kSeparator);
    first = false;
    AppendLabel(out, part);
  }
  return out;
}

// JoinField of `parts`, then "|<object_ns>" unless it is empty (the field as it was
// before the object namespace was recorded: cluster-scoped objects keep it).
std::string JoinFieldWithNamespace(std::initializer_list<std::string_view> parts, std::string_view object_ns) {
  std::string out = JoinField(parts);
  if (!object_ns.empty()) {
    out.push_back(kSeparator);
    AppendLabel(out, object_ns);
  }
  return out;
}

// JoinField({gvr, [object_ns,] suffix}): the lag fields, "<gvr>|<suffix>" without one.
std::string LagField(std::string_view gvr, std::string_view object_ns, std::string_view suffix) {
  return object_ns.empty() ? JoinField({gvr, suffix}) : JoinField({gvr, object_ns, suffix});
}

std::vector<std::string_view> SplitField(std::string_view field) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    auto at = field.find(kSeparator, start);
    parts.push_back(field.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
    if (at == std::string_view::npos) break;
    start = at + 1;
  }
  return parts;
}

template <typename T>
std::optional<T> ParseNumber(std::string_view text) {
  T value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<double> ParseBound(std::string_view text) {
  if (text == kInfBound) return std::numeric_limits<double>::infinity();
  return ParseNumber<double>(text);
}

Clock::time_point FromUnixSeconds(double seconds) {
  return Clock::time_point(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds)));
}

ro::log::Logger StatsLogger() { return ro::log::Logger(nlohmann::json{{"component", "stats"}}); }

using Hashes = std::map<std::string, std::map<std::string, std::string>, std::less<>>;

const std::map<std::string, std::string>& HashOf(const Hashes& hashes, std::string_view key) {
  static const std::map<std::string, std::string> kEmpty;
  auto it = hashes.find(key);
  return it == hashes.end() ? kEmpty : it->second;
}

}  // namespace

// ---- recorder ----

StatsRecorder::StatsRecorder(StatsSink& sink, kube::Clock& clock, StatsOptions options)
    : sink_(sink), clock_(clock), options_(options) {
  if (options_.flush_interval <= std::chrono::milliseconds::zero()) {
    throw std::invalid_argument("StatsOptions.flush_interval must be > 0");
  }
  flusher_ = std::jthread([this](std::stop_token stop) { FlusherMain(std::move(stop)); });
}

StatsRecorder::~StatsRecorder() {
  flusher_.request_stop();
  if (flusher_.joinable()) flusher_.join();
  FlushNow();
}

template <typename Map, typename Key>
typename Map::mapped_type& StatsRecorder::Slot(Map& map, const Key& key) {
  {
    std::shared_lock lock(mu_);
    auto it = map.find(key);
    if (it != map.end()) return it->second;
  }
  std::unique_lock lock(mu_);
  // try_emplace value-initialises the atomics in place; an entry inserted by another
  // thread meanwhile is returned as is.
  return map.try_emplace(typename Map::key_type(key)).first->second;
}

void StatsRecorder::RecordEvent(std::string_view component, std::string_view gvr, std::string_view type,
                                std::string_view object_ns) {
  Slot(events_, std::tuple{component, gvr, type, object_ns}).fetch_add(1, std::memory_order_relaxed);
}

void StatsRecorder::RecordError(std::string_view component, std::string_view gvr, std::string_view reason,
                                std::string_view object_ns) {
  Slot(errors_, std::tuple{component, gvr, reason, object_ns}).fetch_add(1, std::memory_order_relaxed);
}

void StatsRecorder::ObserveLag(std::string_view gvr, std::chrono::nanoseconds lag, std::string_view object_ns) {
  std::int64_t ns = std::max<std::int64_t>(lag.count(), 0);
  double seconds = NanosToSeconds(ns);
  std::size_t bucket = static_cast<std::size_t>(
      std::lower_bound(kLagBucketBounds.begin(), kLagBucketBounds.end(), seconds) - kLagBucketBounds.begin());
  LagSeries& series = Slot(lag_, std::tuple{gvr, object_ns});
  series.buckets[bucket].fetch_add(1, std::memory_order_relaxed);
  series.sum_ns.fetch_add(static_cast<std::uint64_t>(ns), std::memory_order_relaxed);
  series.last_ns.store(ns, std::memory_order_relaxed);
  series.last_at_ns.store(std::chrono::duration_cast<std::chrono::nanoseconds>(clock_.Now().time_since_epoch()).count(),
                          std::memory_order_relaxed);
  series.observed.store(true, std::memory_order_release);
}

void StatsRecorder::SetObjectsInSync(std::string_view gvr, std::int64_t count) {
  Gauge& gauge = Slot(objects_, gvr);
  gauge.value.store(count, std::memory_order_relaxed);
  gauge.dirty.store(true, std::memory_order_release);
}

void StatsRecorder::RecordNamespaceMissing(std::string_view ns) {
  Gauge& gauge = Slot(namespaces_, std::tuple{ns, std::string_view("missing")});
  gauge.value.store(std::chrono::duration_cast<std::chrono::nanoseconds>(clock_.Now().time_since_epoch()).count(),
                    std::memory_order_relaxed);
  gauge.dirty.store(true, std::memory_order_release);
}

void StatsRecorder::RecordNamespacePresent(std::string_view ns) {
  Gauge& gauge = Slot(namespaces_, std::tuple{ns, std::string_view("present")});
  gauge.value.store(std::chrono::duration_cast<std::chrono::nanoseconds>(clock_.Now().time_since_epoch()).count(),
                    std::memory_order_relaxed);
  gauge.dirty.store(true, std::memory_order_release);
}

void StatsRecorder::SetBacklog(std::uint64_t messages, std::optional<std::chrono::system_clock::time_point> oldest) {
  const auto unix_ns = [](std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  };
  std::array<std::string, 3> fields{std::to_string(messages),
                                    FormatDouble(messages > 0 && oldest ? NanosToSeconds(unix_ns(*oldest)) : 0.0),
                                    FormatDouble(NanosToSeconds(unix_ns(clock_.Now())))};
  std::lock_guard lock(last_failure_mu_);
  backlog_ = std::move(fields);
}

void StatsRecorder::SetLastResync(std::string_view gvr, std::chrono::system_clock::time_point when) {
  Gauge& gauge = Slot(resync_, gvr);
  gauge.value.store(std::chrono::duration_cast<std::chrono::nanoseconds>(when.time_since_epoch()).count(),
                    std::memory_order_relaxed);
  gauge.dirty.store(true, std::memory_order_release);
}

void StatsRecorder::RecordBucketOperation(std::string_view op, std::string_view result) {
  Slot(bucket_ops_, std::tuple{op, result}).fetch_add(1, std::memory_order_relaxed);
}

void StatsRecorder::RecordFailure(std::string_view component, std::string_view gvr, std::string_view reason,
                                  std::string_view object, std::string_view message) {
  Slot(failures_, std::tuple{component, gvr, reason}).fetch_add(1, std::memory_order_relaxed);
  const nlohmann::json detail = {
      {"object", object},
      {"message", message},
      {"at", NanosToSeconds(
                 std::chrono::duration_cast<std::chrono::nanoseconds>(clock_.Now().time_since_epoch()).count())}};
  std::lock_guard lock(last_failure_mu_);
  last_failure_[Key3{component, gvr, reason}] = detail.dump();
}

std::vector<HashWrite> StatsRecorder::CollectDeltas() {
  using Op = HashWrite::Op;
  std::vector<HashWrite> writes;
  auto add = [&](Op op, std::string_view key, std::string field, std::string value) {
    writes.push_back(HashWrite{op, std::string(key), std::move(field), std::move(value)});
  };

  std::shared_lock lock(mu_);
  for (auto& [key, counter] : events_) {
    if (auto delta = counter.exchange(0, std::memory_order_relaxed)) {
      add(Op::kIncrBy, kStatsEventsKey,
          JoinFieldWithNamespace({std::get<0>(key), std::get<1>(key), std::get<2>(key)}, std::get<3>(key)),
          std::to_string(delta));
    }
  }
  for (auto& [key, counter] : errors_) {
    if (auto delta = counter.exchange(0, std::memory_order_relaxed)) {
      add(Op::kIncrBy, kStatsErrorsKey,
          JoinFieldWithNamespace({std::get<0>(key), std::get<1>(key), std::get<2>(key)}, std::get<3>(key)),
          std::to_string(delta));
    }
  }
  for (auto& [key, series] : lag_) {
    if (!series.observed.exchange(false, std::memory_order_acquire)) continue;
    const std::string& gvr = std::get<0>(key);
    const std::string& ns = std::get<1>(key);
    for (std::size_t i = 0; i < series.buckets.size(); ++i) {
      if (auto delta = series.buckets[i].exchange(0, std::memory_order_relaxed)) {
        add(Op::kIncrBy, kStatsLagKey, LagField(gvr, ns, std::string(kBucketPrefix) + FormatBound(i)),
            std::to_string(delta));
      }
    }
    auto sum_ns = series.sum_ns.exchange(0, std::memory_order_relaxed);
    add(Op::kIncrByFloat, kStatsLagKey, LagField(gvr, ns, "sum"),
        FormatDouble(static_cast<double>(sum_ns) / kNanosPerSecond));
    add(Op::kSet, kStatsLagKey, LagField(gvr, ns, "last"),
        FormatDouble(NanosToSeconds(series.last_ns.load(std::memory_order_relaxed))));
    add(Op::kSet, kStatsLagKey, LagField(gvr, ns, "last_at"),
        FormatDouble(NanosToSeconds(series.last_at_ns.load(std::memory_order_relaxed))));
  }
  for (auto& [gvr, gauge] : objects_) {
    if (gauge.dirty.exchange(false, std::memory_order_acquire)) {
      add(Op::kSet, kStatsObjectsKey, JoinField({gvr}), std::to_string(gauge.value.load(std::memory_order_relaxed)));
    }
  }
  for (auto& [gvr, gauge] : resync_) {
    if (gauge.dirty.exchange(false, std::memory_order_acquire)) {
      add(Op::kSet, kStatsResyncKey, JoinField({gvr}),
          FormatDouble(NanosToSeconds(gauge.value.load(std::memory_order_relaxed))));
    }
  }
  for (auto& [key, counter] : bucket_ops_) {
    if (auto delta = counter.exchange(0, std::memory_order_relaxed)) {
      add(Op::kIncrBy, kStatsBucketKey, JoinField({std::get<0>(key), std::get<1>(key)}), std::to_string(delta));
    }
  }
  for (auto& [key, counter] : failures_) {
    if (auto delta = counter.exchange(0, std::memory_order_relaxed)) {
      add(Op::kIncrBy, kStatsFailuresKey, JoinField({std::get<0>(key), std::get<1>(key), std::get<2>(key)}),
          std::to_string(delta));
    }
  }
  for (auto& [key, gauge] : namespaces_) {
    if (gauge.dirty.exchange(false, std::memory_order_acquire)) {
      add(Op::kSet, kStatsNamespacesKey, JoinField({std::get<0>(key), std::get<1>(key)}),
          FormatDouble(NanosToSeconds(gauge.value.load(std::memory_order_relaxed))));
    }
  }
  std::map<Key3, std::string> last_failure;
  std::optional<std::array<std::string, 3>> backlog;
  {
    std::lock_guard failure_lock(last_failure_mu_);
    last_failure.swap(last_failure_);
    backlog.swap(backlog_);
  }
  if (backlog) {
    add(Op::kSet, kStatsBacklogKey, "messages", std::move((*backlog)[0]));
    add(Op::kSet, kStatsBacklogKey, "oldest", std::move((*backlog)[1]));
    add(Op::kSet, kStatsBacklogKey, "at", std::move((*backlog)[2]));
  }
  for (auto& [key, detail] : last_failure) {
    add(Op::kSet, kStatsLastFailureKey, JoinField({std::get<0>(key), std::get<1>(key), std::get<2>(key)}),
        std::move(detail));
  }
  return writes;
}

bool StatsRecorder::FlushNow() {
  std::lock_guard flush_lock(flush_mu_);
  std::vector<HashWrite> writes = CollectDeltas();
  if (writes.empty()) return true;
  try {
    sink_.Write(writes);
  } catch (const std::exception& e) {
    ++dropped_;
    if (!failing_) {
      StatsLogger().Warn("stats flush failed, dropping statistics until the store is back", {{"error", e.what()}});
    }
    failing_ = true;
    return false;
  }
  if (failing_) {
    StatsLogger().Info("stats flush recovered", {{"droppedFlushes", dropped_}});
    failing_ = false;
    dropped_ = 0;
  }
  return true;
}

void StatsRecorder::FlusherMain(std::stop_token stop) {
  while (!stop.stop_requested()) {
    {
      std::unique_lock lock(wait_mu_);
      clock_.WaitUntil(lock, wait_cv_, clock_.SteadyNow() + options_.flush_interval, stop, [] { return false; });
    }
    if (stop.stop_requested()) return;
    FlushNow();
  }
}

// ---- snapshot ----

std::uint64_t StatsSnapshot::LagHistogram::count() const {
  std::uint64_t total = 0;
  for (const auto& [bound, n] : buckets) total += n;
  return total;
}

std::optional<double> StatsSnapshot::CurrentLagSeconds(std::string_view gvr) const {
  auto it = lag.find(std::string(gvr));
  if (it == lag.end()) return std::nullopt;
  return it->second.last_seconds;
}

std::optional<double> StatsSnapshot::RpoSeconds(std::chrono::system_clock::time_point now) const {
  if (!backlog) return std::nullopt;
  const auto seconds_since = [&](std::chrono::system_clock::time_point t) {
    return std::max(0.0, std::chrono::duration<double>(now - t).count());
  };
  double rpo = backlog->oldest ? seconds_since(*backlog->oldest) : 0.0;
  if (now - backlog->sampled_at > kBacklogStaleAfter) rpo = std::max(rpo, seconds_since(backlog->sampled_at));
  return rpo;
}

std::optional<std::chrono::system_clock::time_point> StatsSnapshot::LastResync() const {
  std::optional<std::chrono::system_clock::time_point> latest;
  for (const auto& [gvr, when] : last_resync) {
    if (!latest || when > *latest) latest = when;
  }
  return latest;
}

std::int64_t StatsSnapshot::ObjectsInSync() const {
  std::int64_t total = 0;
  for (const auto& [gvr, n] : objects_in_sync) total += n;
  return total;
}

std::vector<std::string> StatsSnapshot::MissingNamespaces(std::chrono::system_clock::time_point now,
                                                          std::chrono::system_clock::duration window) const {
  std::vector<std::string> missing;
  for (const auto& [ns, seen] : namespaces) {
    if (!seen.missing_at || now - *seen.missing_at > window) continue;
    if (seen.present_at && *seen.present_at >= *seen.missing_at) continue;
    missing.push_back(ns);
  }
  return missing;
}

StatsSnapshot SnapshotFromHashes(const Hashes& hashes) {
  StatsSnapshot snapshot;
  for (const auto& [field, value] : HashOf(hashes, kStatsEventsKey)) {
    auto parts = SplitField(field);
    auto n = ParseNumber<std::uint64_t>(value);
    if ((parts.size() != 3 && parts.size() != 4) || !n) continue;
    snapshot.events[{std::string(parts[0]), std::string(parts[1]), std::string(parts[2]),
                     parts.size() == 4 ? std::string(parts[3]) : std::string()}] += *n;
  }
  for (const auto& [field, value] : HashOf(hashes, kStatsErrorsKey)) {
    auto parts = SplitField(field);
    auto n = ParseNumber<std::uint64_t>(value);
    if ((parts.size() != 3 && parts.size() != 4) || !n) continue;
    snapshot.errors[{std::string(parts[0]), std::string(parts[1]), std::string(parts[2]),
                     parts.size() == 4 ? std::string(parts[3]) : std::string()}] += *n;
  }
  for (const auto& [field, value] : HashOf(hashes, kStatsLagKey)) {
    auto parts = SplitField(field);  // gvr|ns|suffix, or gvr|suffix
    if (parts.size() != 2 && parts.size() != 3) continue;
    StatsSnapshot::LagHistogram& lag = snapshot.lag_by_namespace[{
        std::string(parts[0]), parts.size() == 3 ? std::string(parts[1]) : std::string()}];
    const std::string_view suffix = parts.back();
    auto number = ParseNumber<double>(value);
    if (suffix.starts_with(kBucketPrefix)) {
      auto bound = ParseBound(suffix.substr(kBucketPrefix.size()));
      auto n = ParseNumber<std::uint64_t>(value);
      if (bound && n) lag.buckets[*bound] += *n;
    } else if (suffix == "sum" && number) {
      lag.sum_seconds += *number;
    } else if (suffix == "last" && number) {
      lag.last_seconds = *number;
    } else if (suffix == "last_at" && number) {
      lag.last_at = FromUnixSeconds(*number);
    }
  }
  // Per resource over every object namespace: buckets and sums add up, the last
  // observation is the newest.
  for (const auto& [key, one] : snapshot.lag_by_namespace) {
    StatsSnapshot::LagHistogram& all = snapshot.lag[key.gvr];
    for (const auto& [bound, n] : one.buckets) all.buckets[bound] += n;
    all.sum_seconds += one.sum_seconds;
    if (one.last_at && (!all.last_at || *one.last_at > *all.last_at)) {
      all.last_at = one.last_at;
      all.last_seconds = one.last_seconds;
    }
  }
  for (const auto& [gvr, value] : HashOf(hashes, kStatsObjectsKey)) {
    if (auto n = ParseNumber<std::int64_t>(value)) snapshot.objects_in_sync[gvr] = *n;
  }
  for (const auto& [gvr, value] : HashOf(hashes, kStatsResyncKey)) {
    if (auto seconds = ParseNumber<double>(value)) snapshot.last_resync[gvr] = FromUnixSeconds(*seconds);
  }
  {
    const auto& backlog = HashOf(hashes, kStatsBacklogKey);
    const auto field = [&](const char* name) -> std::optional<double> {
      const auto found = backlog.find(name);
      return found == backlog.end() ? std::nullopt : ParseNumber<double>(found->second);
    };
    const std::optional<double> messages = field("messages");
    const std::optional<double> oldest = field("oldest");
    const std::optional<double> at = field("at");
    if (messages && at && *messages >= 0) {
      StatsSnapshot::Backlog out;
      out.messages = static_cast<std::uint64_t>(*messages);
      if (out.messages > 0 && oldest && *oldest > 0) out.oldest = FromUnixSeconds(*oldest);
      out.sampled_at = FromUnixSeconds(*at);
      snapshot.backlog = out;
    }
  }
  for (const auto& [field, value] : HashOf(hashes, kStatsBucketKey)) {
    auto parts = SplitField(field);
    auto n = ParseNumber<std::uint64_t>(value);
    if (parts.size() != 2 || !n) continue;
    snapshot.bucket_operations[{std::string(parts[0]), std::string(parts[1])}] += *n;
  }
  for (const auto& [field, value] : HashOf(hashes, kStatsFailuresKey)) {
    auto parts = SplitField(field);
    auto n = ParseNumber<std::uint64_t>(value);
    if (parts.size() != 3 || !n) continue;
    snapshot.failures[{std::string(parts[0]), std::string(parts[1]), std::string(parts[2])}] += *n;
  }
  for (const auto& [field, value] : HashOf(hashes, kStatsLastFailureKey)) {
    auto parts = SplitField(field);
    const nlohmann::json detail = nlohmann::json::parse(value, nullptr, false);
    if (parts.size() != 3 || !detail.is_object()) continue;
    StatsSnapshot::FailureDetail out;
    if (detail.contains("object") && detail["object"].is_string()) out.object = detail["object"].get<std::string>();
    if (detail.contains("message") && detail["message"].is_string()) {
      out.message = detail["message"].get<std::string>();
    }
    if (detail.contains("at") && detail["at"].is_number()) out.at = FromUnixSeconds(detail["at"].get<double>());
    snapshot.last_failure[{std::string(parts[0]), std::string(parts[1]), std::string(parts[2])}] = std::move(out);
  }
  for (const auto& [field, value] : HashOf(hashes, kStatsNamespacesKey)) {
    auto parts = SplitField(field);
    auto seconds = ParseNumber<double>(value);
    if (parts.size() != 2 || !seconds) continue;
    StatsSnapshot::NamespaceSeen& seen = snapshot.namespaces[std::string(parts[0])];
    if (parts[1] == "missing") seen.missing_at = FromUnixSeconds(*seconds);
    if (parts[1] == "present") seen.present_at = FromUnixSeconds(*seconds);
  }
  return snapshot;
}

StatsSnapshot ReadStats(RedisState& redis) {
  Hashes hashes;
  for (std::string_view key :
       {kStatsEventsKey, kStatsErrorsKey, kStatsLagKey, kStatsObjectsKey, kStatsResyncKey, kStatsBucketKey,
        kStatsFailuresKey, kStatsLastFailureKey, kStatsNamespacesKey, kStatsBacklogKey}) {
    hashes.emplace(std::string(key), redis.HGetAll(key));
  }
  return SnapshotFromHashes(hashes);
}

}  // namespace ro::kubesync

#include "ro/kubesync/jetstream.h"

#include <nats/nats.h>

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <map>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "ro/common/log.h"

namespace ro::kubesync {
namespace {

using std::chrono::milliseconds;

// Unanswered client PINGs before the connection counts as dead (cnats default 2).
constexpr int kMaxPingsOut = 3;
// PublishAsync waits this much longer than ack_timeout for room: by then every pending
// publish has either been acked or failed with its own ack timeout.
constexpr milliseconds kStallMargin{1000};
// How long a destructor waits for a library callback already in progress to return.
// Callbacks only touch memory, so this bounds a bug, not a normal wait.
constexpr milliseconds kCallbackDrainTimeout{10000};

std::int64_t Millis(milliseconds d) { return d.count(); }
std::int64_t Nanos(std::chrono::nanoseconds d) { return d.count(); }

// The thread's last cnats error text when it belongs to `status` (it carries the server's
// description for JetStream API errors), else the status text.
std::string Detail(natsStatus status) {
  natsStatus last = NATS_OK;
  const char* text = nats_GetLastError(&last);
  if (text != nullptr && *text != '\0' && last == status) return text;
  return natsStatus_GetText(status);
}

[[noreturn]] void Throw(std::string_view operation, natsStatus status, jsErrCode js_error_code = static_cast<jsErrCode>(0)) {
  throw NatsError(operation, static_cast<int>(status), static_cast<int>(js_error_code), Detail(status));
}

void Check(std::string_view operation, natsStatus status, jsErrCode js_error_code = static_cast<jsErrCode>(0)) {
  if (status != NATS_OK) Throw(operation, status, js_error_code);
}

std::string Quoted(std::string_view what, std::string_view name) {
  return std::string(what) + " \"" + std::string(name) + "\"";
}

ro::log::Logger NatsLogger() { return ro::log::Logger(nlohmann::json{{"component", "nats"}}); }

std::string ConnectedUrl(natsConnection* nc) {
  char buffer[256] = {};
  if (natsConnection_GetConnectedUrl(nc, buffer, sizeof(buffer)) != NATS_OK) return "";
  return buffer;
}

// Connection event callbacks: log only (they get no closure, so they never outlive
// anything of ours).
void OnDisconnected(natsConnection*, void*) { NatsLogger().Warn("nats connection lost, reconnecting"); }
void OnReconnected(natsConnection* nc, void*) {
  NatsLogger().Info("nats connection re-established", {{"url", ConnectedUrl(nc)}});
}
void OnClosed(natsConnection*, void*) { NatsLogger().Info("nats connection closed"); }
void OnAsyncError(natsConnection*, natsSubscription*, natsStatus err, void*) {
  NatsLogger().Warn("nats asynchronous error", {{"error", natsStatus_GetText(err)}});
}

struct OptionsDeleter {
  void operator()(natsOptions* o) const { natsOptions_Destroy(o); }
};

std::shared_ptr<jsCtx> NewJetStreamContext(natsConnection* nc, jsOptions* options) {
  jsCtx* js = nullptr;
  Check("create JetStream context", natsConnection_JetStream(&js, nc, options));
  return std::shared_ptr<jsCtx>(js, [](jsCtx* p) { jsCtx_Destroy(p); });
}

// How many times `nc` reconnected so far (0 when the statistics cannot be read).
std::uint64_t Reconnects(natsConnection* nc) {
  natsStatistics* stats = nullptr;
  if (natsStatistics_Create(&stats) != NATS_OK) return 0;
  std::uint64_t in_msgs = 0, in_bytes = 0, out_msgs = 0, out_bytes = 0, reconnects = 0;
  if (natsConnection_GetStats(nc, stats) == NATS_OK) {
    natsStatistics_GetCounts(stats, &in_msgs, &in_bytes, &out_msgs, &out_bytes, &reconnects);
  }
  natsStatistics_Destroy(stats);
  return reconnects;
}

}  // namespace

// ---- errors ----

NatsError::NatsError(std::string_view operation, int status, int js_error_code, std::string_view detail)
    : std::runtime_error([&] {
        std::string text = std::string(operation) + ": " + natsStatus_GetText(static_cast<natsStatus>(status));
        if (!detail.empty() && detail != natsStatus_GetText(static_cast<natsStatus>(status))) {
          text += ": " + std::string(detail);
        }
        if (js_error_code != 0) text += " (" + std::to_string(js_error_code) + ")";
        return text;
      }()),
      status_(status),
      js_error_code_(js_error_code) {}

bool NatsError::retryable() const noexcept {
  if (js_error_code_ == JSClusterNotAvailErr) return true;  // JetStream restarting
  switch (static_cast<natsStatus>(status_)) {
    case NATS_TIMEOUT:
    case NATS_IO_ERROR:
    case NATS_NO_SERVER:
    case NATS_STALE_CONNECTION:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_NOT_YET_CONNECTED:
    case NATS_NO_RESPONDERS:
    case NATS_INSUFFICIENT_BUFFER:
    case NATS_MISSED_HEARTBEAT:
      return true;
    default:
      return false;
  }
}

bool NatsError::RejectsMessage(int status, int js_error_code) noexcept {
  return status == NATS_MAX_PAYLOAD || js_error_code == JSStreamMessageExceedsMaximumErr;
}

PublishError::PublishError(std::vector<PublishFailure> failures, std::uint64_t acked)
    : NatsError("flush async publishes", failures.empty() ? NATS_ERR : failures.front().status,
                failures.empty() ? 0 : failures.front().js_error_code,
                std::to_string(failures.size()) + " publish(es) not acked (" + std::to_string(acked) +
                    " acked); first: " + (failures.empty() ? "" : failures.front().subject + ": " + failures.front().error)),
      failures_(std::move(failures)),
      acked_(acked) {}

void OpenNatsLibrary() {
  // 0: cnats' mutexes block at once instead of spinning up to 2,000 times first (its
  // default): on the 2 cores a pipeline typically gets, with a thread per lane, the spin
  // mostly burns the time slice the holder needs (natsMutex_Lock was 4.5 % of the
  // components' CPU in the pipeline bench).
  Check("open the NATS library", nats_Open(0));
}

void CloseNatsLibrary(milliseconds timeout) { nats_CloseAndWait(Millis(timeout)); }

// ---- connection ----

struct NatsConnection::Impl {
  NatsOptions options;
  std::shared_ptr<natsConnection> nc;
  std::shared_ptr<jsCtx> js;  // for management calls and pull subscriptions
};

NatsConnection::NatsConnection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

NatsConnection::~NatsConnection() = default;

std::unique_ptr<NatsConnection> NatsConnection::Connect(std::string_view url, std::string_view client_name,
                                                        const NatsOptions& options) {
  natsOptions* raw = nullptr;
  Check("create NATS options", natsOptions_Create(&raw));
  std::unique_ptr<natsOptions, OptionsDeleter> opts(raw);
  std::string name(client_name);
  // One URL, or the members of a cluster: natsOptions_SetURL takes a single URL.
  std::vector<std::string> urls;
  for (std::size_t start = 0; start <= url.size();) {
    const std::size_t comma = std::min(url.find(',', start), url.size());
    if (comma > start) urls.emplace_back(url.substr(start, comma - start));
    start = comma + 1;
  }
  std::vector<const char*> servers;
  for (const std::string& u : urls) servers.push_back(u.c_str());
  if (servers.size() <= 1) {
    Check("set NATS url", natsOptions_SetURL(opts.get(), servers.empty() ? "" : servers.front()));
  } else {
    Check("set NATS servers", natsOptions_SetServers(opts.get(), servers.data(), static_cast<int>(servers.size())));
  }
  Check("set NATS options", natsOptions_SetName(opts.get(), name.c_str()));
  Check("set NATS options", natsOptions_SetTimeout(opts.get(), Millis(options.connect_timeout)));
  Check("set NATS options", natsOptions_SetAllowReconnect(opts.get(), true));
  Check("set NATS options", natsOptions_SetMaxReconnect(opts.get(), options.max_reconnect));
  Check("set NATS options", natsOptions_SetReconnectWait(opts.get(), Millis(options.reconnect_wait)));
  Check("set NATS options", natsOptions_SetPingInterval(opts.get(), Millis(options.ping_interval)));
  Check("set NATS options", natsOptions_SetMaxPingsOut(opts.get(), kMaxPingsOut));
  Check("set NATS options", natsOptions_SetReconnectBufSize(opts.get(), options.reconnect_buffer_bytes));
  // Requests (JetStream API calls, AckSync, sync Publish) fail at once while
  // disconnected instead of waiting for their whole timeout.
  Check("set NATS options", natsOptions_SetFailRequestsOnDisconnect(opts.get(), true));
  Check("set NATS options", natsOptions_SetDisconnectedCB(opts.get(), OnDisconnected, nullptr));
  Check("set NATS options", natsOptions_SetReconnectedCB(opts.get(), OnReconnected, nullptr));
  Check("set NATS options", natsOptions_SetClosedCB(opts.get(), OnClosed, nullptr));
  Check("set NATS options", natsOptions_SetErrorHandler(opts.get(), OnAsyncError, nullptr));
  if (!options.user.empty()) {
    Check("set NATS credentials",
          natsOptions_SetUserInfo(opts.get(), options.user.c_str(), options.password.c_str()));
  }
  if (!options.ca_pem.empty()) {
    Check("enable NATS TLS", natsOptions_SetSecure(opts.get(), true));
    Check("set NATS CA", natsOptions_SetCATrustedCertificates(opts.get(), options.ca_pem.c_str()));
    if (!options.tls_server_name.empty()) {
      Check("set NATS TLS server name", natsOptions_SetExpectedHostname(opts.get(), options.tls_server_name.c_str()));
    }
  }
  if (!options.inbox_prefix.empty()) {
    Check("set NATS inbox prefix", natsOptions_SetCustomInboxPrefix(opts.get(), options.inbox_prefix.c_str()));
  }

  natsConnection* nc = nullptr;
  natsStatus s = natsConnection_Connect(&nc, opts.get());
  if (s != NATS_OK) Throw("connect to NATS at " + std::string(url), s);

  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->nc = std::shared_ptr<natsConnection>(nc, [](natsConnection* p) { natsConnection_Destroy(p); });
  jsOptions js_options;
  jsOptions_Init(&js_options);
  js_options.Wait = Millis(options.request_timeout);
  impl->js = NewJetStreamContext(nc, &js_options);
  return std::unique_ptr<NatsConnection>(new NatsConnection(std::move(impl)));
}

bool NatsConnection::connected() const {
  return natsConnection_Status(impl_->nc.get()) == NATS_CONN_STATUS_CONNECTED;
}

std::uint64_t NatsConnection::reconnects() const {
  return Reconnects(impl_->nc.get());
}

void NatsConnection::EnsureStream(const StreamConfig& config) {
  std::vector<const char*> subjects;
  subjects.reserve(config.subjects.size());
  for (const auto& subject : config.subjects) subjects.push_back(subject.c_str());

  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = config.name.c_str();
  cfg.Subjects = subjects.data();
  cfg.SubjectsLen = static_cast<int>(subjects.size());
  cfg.Retention = js_WorkQueuePolicy;
  cfg.Storage = js_FileStorage;
  cfg.MaxAge = Nanos(config.max_age);
  cfg.MaxBytes = config.max_bytes;
  cfg.MaxMsgSize = config.max_msg_size;
  cfg.Discard = config.discard_new ? js_DiscardNew : js_DiscardOld;
  cfg.Replicas = config.replicas;

  jsStreamInfo* info = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_AddStream(&info, impl_->js.get(), &cfg, nullptr, &jerr);
  if (s != NATS_OK && jerr == JSStreamNameExistErr) {
    // Exists with a different configuration: move it to the wanted one.
    jerr = static_cast<jsErrCode>(0);
    s = js_UpdateStream(&info, impl_->js.get(), &cfg, nullptr, &jerr);
    jsStreamInfo_Destroy(info);
    Check(Quoted("update stream", config.name), s, jerr);
    return;
  }
  jsStreamInfo_Destroy(info);
  Check(Quoted("add stream", config.name), s, jerr);
}

bool NatsConnection::DeleteStream(std::string_view name) {
  std::string stream(name);
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_DeleteStream(impl_->js.get(), stream.c_str(), nullptr, &jerr);
  if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) return false;
  Check(Quoted("delete stream", stream), s, jerr);
  return true;
}

StreamState NatsConnection::GetStreamState(std::string_view name) {
  std::string stream(name);
  jsStreamInfo* info = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&info, impl_->js.get(), stream.c_str(), nullptr, &jerr);
  if (s == NATS_NOT_FOUND && jerr == 0) jerr = JSStreamNotFoundErr;
  Check(Quoted("get stream", stream), s, jerr);
  StreamState state;
  state.messages = info->State.Msgs;
  state.bytes = info->State.Bytes;
  state.first_sequence = info->State.FirstSeq;
  state.last_sequence = info->State.LastSeq;
  state.consumers = info->State.Consumers;
  state.created_unix_nanos = info->Created;
  state.first_unix_nanos = state.messages > 0 ? info->State.FirstTime : 0;
  state.replicas = info->Config != nullptr ? static_cast<int>(info->Config->Replicas) : 1;
  if (info->Cluster != nullptr) {
    if (info->Cluster->Leader != nullptr) state.leader = info->Cluster->Leader;
    for (int i = 0; i < info->Cluster->ReplicasLen; ++i) {
      if (info->Cluster->Replicas[i] != nullptr && info->Cluster->Replicas[i]->Current) ++state.current_followers;
    }
  }
  jsStreamInfo_Destroy(info);
  return state;
}

void NatsConnection::EnsureConsumer(const ConsumerConfig& config) {
  std::vector<std::int64_t> backoff;
  backoff.reserve(config.backoff.size());
  for (auto d : config.backoff) backoff.push_back(Nanos(d));

  jsConsumerConfig cc;
  jsConsumerConfig_Init(&cc);
  cc.Durable = config.durable.c_str();
  cc.FilterSubject = config.filter_subject.c_str();
  cc.DeliverPolicy = js_DeliverAll;
  cc.AckPolicy = js_AckExplicit;
  cc.ReplayPolicy = js_ReplayInstant;
  cc.AckWait = Nanos(config.ack_wait);
  cc.MaxAckPending = config.max_ack_pending;
  cc.MaxDeliver = config.max_deliver;
  cc.BackOff = backoff.empty() ? nullptr : backoff.data();
  cc.BackOffLen = static_cast<int>(backoff.size());

  const std::string what = "consumer \"" + config.durable + "\" of stream \"" + config.stream + "\"";
  jsConsumerInfo* info = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetConsumerInfo(&info, impl_->js.get(), config.stream.c_str(), config.durable.c_str(), nullptr, &jerr);
  jsConsumerInfo_Destroy(info);
  info = nullptr;
  bool exists = s == NATS_OK;
  if (s != NATS_OK && s != NATS_NOT_FOUND && jerr != JSConsumerNotFoundErr) Check("get " + what, s, jerr);

  jerr = static_cast<jsErrCode>(0);
  if (!exists) {
    s = js_AddConsumer(&info, impl_->js.get(), config.stream.c_str(), &cc, nullptr, &jerr);
    jsConsumerInfo_Destroy(info);
    info = nullptr;
    // Another replica created it between our get and add: update below.
    if (s == NATS_OK || (jerr != JSConsumerNameExistErr && jerr != JSConsumerExistingActiveErr)) {
      Check("add " + what, s, jerr);
      return;
    }
    jerr = static_cast<jsErrCode>(0);
  }
  s = js_UpdateConsumer(&info, impl_->js.get(), config.stream.c_str(), &cc, nullptr, &jerr);
  jsConsumerInfo_Destroy(info);
  Check("update " + what, s, jerr);
}

ConsumerState NatsConnection::GetConsumerState(std::string_view stream, std::string_view durable) {
  std::string stream_name(stream);
  std::string consumer(durable);
  jsConsumerInfo* info = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetConsumerInfo(&info, impl_->js.get(), stream_name.c_str(), consumer.c_str(), nullptr, &jerr);
  Check("get consumer \"" + consumer + "\" of stream \"" + stream_name + "\"", s, jerr);
  ConsumerState state;
  state.num_pending = info->NumPending;
  state.num_ack_pending = info->NumAckPending;
  state.num_redelivered = info->NumRedelivered;
  state.delivered_stream_sequence = info->Delivered.Stream;
  state.ack_floor_stream_sequence = info->AckFloor.Stream;
  jsConsumerInfo_Destroy(info);
  return state;
}

// ---- key-value ----

struct KeyValueStore::Impl {
  std::shared_ptr<natsConnection> nc;  // keeps the connection alive
  std::shared_ptr<jsCtx> js;
  kvStore* kv = nullptr;
  std::string bucket;
  ~Impl() { kvStore_Destroy(kv); }
};

KeyValueStore::KeyValueStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KeyValueStore::~KeyValueStore() = default;

void KeyValueStore::Put(std::string_view key, std::string_view value) {
  const std::string k(key);
  std::uint64_t revision = 0;
  Check(Quoted("put key", k) + " of bucket \"" + impl_->bucket + "\"",
        kvStore_Put(&revision, impl_->kv, k.c_str(), value.data(), static_cast<int>(value.size())));
}

std::optional<std::string> KeyValueStore::Get(std::string_view key) {
  std::optional<Entry> entry = GetEntry(key);
  if (!entry) return std::nullopt;
  return std::move(entry->value);
}

std::optional<KeyValueStore::Entry> KeyValueStore::GetEntry(std::string_view key) {
  const std::string k(key);
  kvEntry* entry = nullptr;
  const natsStatus s = kvStore_Get(&entry, impl_->kv, k.c_str());
  if (s == NATS_NOT_FOUND) return std::nullopt;  // never put, deleted or expired
  Check(Quoted("get key", k) + " of bucket \"" + impl_->bucket + "\"", s);
  Entry out{std::string(static_cast<const char*>(kvEntry_Value(entry)), static_cast<std::size_t>(kvEntry_ValueLen(entry))),
            kvEntry_Revision(entry)};
  kvEntry_Destroy(entry);
  return out;
}

bool KeyValueStore::Update(std::string_view key, std::string_view value, std::uint64_t revision) {
  const std::string k(key);
  std::uint64_t stored = 0;
  const natsStatus s =
      revision == 0 ? kvStore_Create(&stored, impl_->kv, k.c_str(), value.data(), static_cast<int>(value.size()))
                    : kvStore_Update(&stored, impl_->kv, k.c_str(), value.data(), static_cast<int>(value.size()), revision);
  if (s == NATS_OK) return true;
  const NatsError error(Quoted("update key", k) + " of bucket \"" + impl_->bucket + "\"", s, 0, Detail(s));
  if (error.retryable()) throw error;
  // The server refused the expected revision (js 10071, reported by cnats as a plain
  // error): a conflict when the key has moved on since `revision`.
  const std::optional<Entry> now = GetEntry(key);
  if ((now ? now->revision : 0) != revision) return false;
  throw error;
}

// How long the first caller of a WaitCurrent round waits for others to join it: under
// load one request then serves every lane whose write ended within the window, instead of
// one request per write.
constexpr std::chrono::milliseconds kGatherWindow{5};
// The wait for the stream's last sequence before a watch starts.
constexpr std::chrono::milliseconds kFloorTimeout{5000};

struct KeyValueMirror::State {
  struct Value {
    std::string data;
    std::chrono::system_clock::time_point created;
  };

  std::shared_ptr<KeyValueStore> bucket;
  std::chrono::milliseconds ttl{0};
  mutable std::mutex mu;
  std::condition_variable cv;                              // stop requests
  bool stopping = false;                                   // guarded by mu
  bool loaded = false;                                     // guarded by mu
  std::map<std::string, Value, std::less<>> values;        // guarded by mu
  kvWatcher* watcher = nullptr;                            // guarded by mu; stopped on stop
  std::chrono::steady_clock::time_point next_prune;        // watch thread only
  std::thread thread;

  // WaitCurrent. `applied`: the highest stream sequence the copy reflects (meaningful once
  // loaded): the largest revision the watch delivered, and at least the stream's last
  // sequence read just before the watch started (its first delivery covers everything up
  // to there, also a last message that was removed since).
  std::uint64_t applied = 0;                 // guarded by mu
  int applied_waiters = 0;                   // guarded by mu; the watch notifies only then
  std::condition_variable applied_cv;        // `applied`, `loaded` or `stopping` changed
  std::uint64_t rounds_started = 0;          // guarded by mu
  std::uint64_t rounds_finished = 0;         // guarded by mu
  std::uint64_t last_ok_round = 0;           // guarded by mu
  bool round_running = false;                // guarded by mu
  std::condition_variable round_cv;          // a round ended

  // The bucket stream's last sequence, from its leader (STREAM.INFO), waiting at most
  // `timeout` for the answer. Throws NatsError.
  std::uint64_t LastSequence(std::chrono::milliseconds timeout) const {
    const std::string stream = "KV_" + bucket->impl_->bucket;
    jsOptions options;
    jsOptions_Init(&options);
    options.Wait = std::max<std::int64_t>(1, timeout.count());
    jsStreamInfo* info = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    const natsStatus s = js_GetStreamInfo(&info, bucket->impl_->js.get(), stream.c_str(), &options, &jerr);
    Check(Quoted("get stream", stream), s, jerr);
    const std::uint64_t last = info->State.LastSeq;
    jsStreamInfo_Destroy(info);
    return last;
  }

  // REQUIRES: mu held.
  void Applied(std::uint64_t sequence) {
    if (sequence <= applied) return;
    applied = sequence;
    if (applied_waiters > 0) applied_cv.notify_all();
  }

  // One round of WaitCurrent: true once the copy reached the last sequence the server
  // reports now.
  bool RunRound(std::chrono::steady_clock::time_point deadline) {
    std::uint64_t last = 0;
    try {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      last = LastSequence(left);
    } catch (const NatsError&) {
      return false;
    }
    std::unique_lock lock(mu);
    ++applied_waiters;
    const bool reached =
        applied_cv.wait_until(lock, deadline, [&] { return stopping || (loaded && applied >= last); });
    --applied_waiters;
    return reached && !stopping;
  }

  bool Expired(const Value& value, std::chrono::system_clock::time_point now) const {
    return ttl.count() > 0 && value.created + ttl <= now;
  }

  // One watch, from its start to its end (a failure, a lost connection, or a stop).
  // Returns the status. A connection lost even for a moment ends it: what the watch
  // missed meanwhile cannot be told, so the copy is loaded again.
  natsStatus Watch(kvWatcher* w, const ro::log::Logger& logger) {
    natsConnection* nc = bucket->impl_->nc.get();
    const std::uint64_t reconnects = Reconnects(nc);
    while (true) {
      kvEntry* entry = nullptr;
      const natsStatus s = kvWatcher_Next(&entry, w, 500);
      const bool connection_lost =
          natsConnection_Status(nc) != NATS_CONN_STATUS_CONNECTED || Reconnects(nc) != reconnects;
      std::lock_guard lock(mu);
      if (stopping || connection_lost) {
        kvEntry_Destroy(entry);
        return stopping ? NATS_OK : NATS_CONNECTION_DISCONNECTED;
      }
      if (s == NATS_TIMEOUT) {
        PruneExpired();
        continue;
      }
      if (s != NATS_OK) return s;
      if (entry == nullptr) {  // every value the bucket held at the start is in
        loaded = true;
        if (applied_waiters > 0) applied_cv.notify_all();
        logger.Info("key-value watch loaded", {{"keys", values.size()}});
        continue;
      }
      Applied(kvEntry_Revision(entry));
      std::string key(kvEntry_Key(entry));
      if (kvEntry_Operation(entry) == kvOp_Put) {
        values[std::move(key)] = Value{
            std::string(static_cast<const char*>(kvEntry_Value(entry)), static_cast<std::size_t>(kvEntry_ValueLen(entry))),
            std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(
                std::chrono::nanoseconds(kvEntry_Created(entry))))};
      } else {
        values.erase(key);
      }
      kvEntry_Destroy(entry);
    }
  }

  // The server drops values older than the TTL without telling watchers: so does the
  // copy, once a minute. REQUIRES: mu held.
  void PruneExpired() {
    const auto steady_now = std::chrono::steady_clock::now();
    if (ttl.count() == 0 || steady_now < next_prune) return;
    next_prune = steady_now + std::chrono::minutes(1);
    const auto now = std::chrono::system_clock::now();
    std::erase_if(values, [&](const auto& item) { return Expired(item.second, now); });
  }

  void Run() {
    ro::log::Logger logger(nlohmann::json{{"component", "nats"}, {"bucket", bucket->impl_->bucket}});
    while (true) {
      kvWatcher* w = nullptr;
      natsStatus s = NATS_OK;
      try {
        const std::uint64_t floor = LastSequence(kFloorTimeout);  // before the watch: it covers up to here
        std::lock_guard lock(mu);
        applied = floor;
      } catch (const NatsError& e) {
        s = e.status() != NATS_OK ? static_cast<natsStatus>(e.status()) : NATS_ERR;
      }
      if (s == NATS_OK) s = kvStore_WatchAll(&w, bucket->impl_->kv, nullptr);
      {
        std::lock_guard lock(mu);
        watcher = w;
        if (stopping) s = NATS_OK;
      }
      if (s == NATS_OK && w != nullptr) s = Watch(w, logger);
      {
        std::lock_guard lock(mu);
        watcher = nullptr;
        loaded = false;
        applied = 0;
        values.clear();
      }
      kvWatcher_Destroy(w);
      std::unique_lock lock(mu);
      if (stopping) return;
      lock.unlock();
      if (s == NATS_CONNECTION_DISCONNECTED) {
        // The connection's own handlers already report the loss.
        logger.Info("key-value watch stopped with the connection, starting it again");
      } else {
        logger.Warn("key-value watch ended, starting it again in 1 s", {{"error", natsStatus_GetText(s)}});
      }
      lock.lock();
      if (cv.wait_for(lock, std::chrono::seconds(1), [&] { return stopping; })) return;
    }
  }
};

KeyValueMirror::KeyValueMirror(std::shared_ptr<KeyValueStore> bucket, std::chrono::milliseconds ttl)
    : state_(std::make_shared<State>()) {
  state_->bucket = std::move(bucket);
  state_->ttl = ttl;
  state_->thread = std::thread([state = state_] { state->Run(); });
}

KeyValueMirror::~KeyValueMirror() {
  {
    std::lock_guard lock(state_->mu);
    state_->stopping = true;
    if (state_->watcher != nullptr) kvWatcher_Stop(state_->watcher);
  }
  state_->cv.notify_all();
  state_->applied_cv.notify_all();
  state_->thread.join();
}

bool KeyValueMirror::WaitCurrent(std::chrono::milliseconds timeout) const {
  State& state = *state_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock lock(state.mu);
  // A round that starts after this call began: the next one.
  const std::uint64_t need = state.rounds_started + 1;
  while (state.rounds_finished < need) {
    if (!state.round_running) {
      // No round in flight and `need` not run yet: this caller runs it for everyone
      // waiting (rounds_started == need - 1 here). Callers arriving within the gathering
      // window still compute `need` and join it; the request goes out after it.
      state.round_running = true;
      lock.unlock();
      std::this_thread::sleep_for(kGatherWindow);
      lock.lock();
      state.rounds_started = need;
      lock.unlock();
      const bool ok = state.RunRound(deadline);
      lock.lock();
      state.round_running = false;
      state.rounds_finished = need;
      if (ok) state.last_ok_round = need;
      state.round_cv.notify_all();
      break;
    }
    if (state.round_cv.wait_until(lock, deadline) == std::cv_status::timeout && state.rounds_finished < need) {
      return false;
    }
  }
  return state.last_ok_round >= need;
}

KeyValueMirror::Lookup KeyValueMirror::Find(std::string_view key) const {
  std::lock_guard lock(state_->mu);
  if (!state_->loaded) return {};
  const auto it = state_->values.find(key);
  if (it == state_->values.end() || state_->Expired(it->second, std::chrono::system_clock::now())) {
    return {true, std::nullopt};
  }
  return {true, it->second.data};
}

std::string EscapeKeyValueKey(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || u == '-' || u == '_' ||
        u == '/') {
      out.push_back(c);
    } else {
      out.push_back('=');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xF]);
    }
  }
  return out;
}

std::unique_ptr<KeyValueStore> NatsConnection::EnsureKeyValue(const KeyValueConfig& config) {
  // Reads must come from the bucket stream's leader. With direct gets allowed on the
  // stream, any replica of a replicated bucket may answer kvStore_Get: a follower that
  // lags answers with an older value, or none, and the tombstone checks read to decide
  // whether to delete what was just written. So the stream is created with direct gets
  // off (as cnats' js_CreateKeyValue would create it otherwise: the "KV_<bucket>" stream
  // on "$KV.<bucket>.>", ADR-8), an older bucket has them turned off, and only then is
  // the store bound: cnats decides at binding whether its reads are direct gets, and a
  // store bound while they were allowed sends them on after they were turned off, where
  // nothing answers them (every read times out). Binding last is what keeps replicas
  // that ensure the bucket at the same moment safe.
  const std::string stream = "KV_" + config.bucket;
  const std::string subject = "$KV." + config.bucket + ".>";
  const char* subjects[] = {subject.c_str()};
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = stream.c_str();
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.MaxMsgsPerSubject = 1;  // history 1
  cfg.MaxBytes = config.max_bytes == 0 ? -1 : config.max_bytes;
  cfg.MaxAge = Nanos(config.ttl);
  cfg.Storage = js_FileStorage;
  cfg.Replicas = config.replicas;
  cfg.AllowRollup = true;
  cfg.DenyDelete = true;
  cfg.AllowDirect = false;
  cfg.Discard = js_DiscardNew;
  jsStreamInfo* info = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_AddStream(&info, impl_->js.get(), &cfg, nullptr, &jerr);
  jsStreamInfo_Destroy(info);
  info = nullptr;
  // A client creating the same stream at the same moment makes the server answer "name
  // already in use", or "subjects overlap" when it checks the other's subjects first
  // (nats-server 2.9): both mean the bucket may exist now. An overlap with a stream of
  // another name is reported as the create's error.
  const bool maybe_exists = jerr == JSStreamNameExistErr || jerr == JSStreamSubjectOverlapErr;
  if (s != NATS_OK && !maybe_exists) Check(Quoted("create key-value bucket", config.bucket), s, jerr);
  if (s != NATS_OK) {
    // Exists, possibly with another configuration (kept), possibly with direct gets on.
    const natsStatus create_status = s;
    const jsErrCode create_error = jerr;
    jerr = static_cast<jsErrCode>(0);
    s = js_GetStreamInfo(&info, impl_->js.get(), stream.c_str(), nullptr, &jerr);
    if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
      Check(Quoted("create key-value bucket", config.bucket), create_status, create_error);
    }
    Check(Quoted("get stream", stream), s, jerr);
    const bool direct = info->Config->AllowDirect;
    if (direct) {
      info->Config->AllowDirect = false;
      jsStreamInfo* updated = nullptr;
      s = js_UpdateStream(&updated, impl_->js.get(), info->Config, nullptr, &jerr);
      jsStreamInfo_Destroy(updated);
    }
    jsStreamInfo_Destroy(info);
    if (direct) Check(Quoted("turn direct gets off on stream", stream), s, jerr);
  }
  auto impl = std::make_unique<KeyValueStore::Impl>();  // destroys the kvStore on a throw
  impl->nc = impl_->nc;
  impl->js = impl_->js;
  impl->bucket = config.bucket;
  Check(Quoted("bind key-value bucket", config.bucket), js_KeyValue(&impl->kv, impl_->js.get(), config.bucket.c_str()));
  return std::unique_ptr<KeyValueStore>(new KeyValueStore(std::move(impl)));
}

bool NatsConnection::DeleteKeyValue(std::string_view bucket) {
  // A bucket is the stream "KV_<bucket>" (the JetStream key-value convention).
  return DeleteStream("KV_" + std::string(bucket));
}

void NatsConnection::PublishCore(std::string_view subject, std::string_view data) {
  std::string subj(subject);
  Check(Quoted("publish to", subj),
        natsConnection_Publish(impl_->nc.get(), subj.c_str(), data.data(), static_cast<int>(data.size())));
}

void NatsConnection::FlushCore(milliseconds timeout) {
  Check("flush NATS connection", natsConnection_FlushTimeout(impl_->nc.get(), Millis(timeout)));
}

// ---- publisher ----

struct Publisher::Impl {
  // Constant after construction.
  std::shared_ptr<natsConnection> nc;
  jsCtx* js = nullptr;  // own context: the ack handler and pending map are per context
  PublisherOptions options;
  milliseconds request_timeout{0};

  // Guarded by mu.
  mutable std::mutex mu;
  std::condition_variable cv;
  std::size_t in_flight = 0;
  std::size_t in_flight_bytes = 0;  // their payloads
  std::uint64_t acked = 0;
  std::vector<PublishFailure> failures;
  // cnats creates its pending map on the first async publish, and
  // js_PublishAsyncGetPendingList crashes on a context that has none (cnats 3.4.1).
  bool async_used = false;

  // cnats calls this once per async publish (ack, negative ack or MaxWait timeout) on its
  // dispatcher thread; `msg` is ours to destroy.
  static void OnAck(jsCtx*, natsMsg* msg, jsPubAck* ack, jsPubAckErr* error, void* closure) {
    auto* self = static_cast<Impl*>(closure);
    {
      std::lock_guard lock(self->mu);
      if (ack != nullptr && error == nullptr) {
        ++self->acked;
      } else {
        PublishFailure failure;
        if (const char* subject = natsMsg_GetSubject(msg)) failure.subject = subject;
        if (const char* data = natsMsg_GetData(msg)) failure.data.assign(data, static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
        if (error != nullptr) {
          failure.status = static_cast<int>(error->Err);
          failure.js_error_code = static_cast<int>(error->ErrCode);
          failure.error = error->ErrText != nullptr ? error->ErrText : natsStatus_GetText(error->Err);
        } else {
          failure.status = NATS_ERR;
          failure.error = "publish ack without result";
        }
        self->failures.push_back(std::move(failure));
      }
      --self->in_flight;
      self->in_flight_bytes -= std::min(self->in_flight_bytes, static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
      // Notify under the lock: once it is released the owner may destroy *self.
      self->cv.notify_all();
    }
    natsMsg_Destroy(msg);
  }

  // Takes every publish still awaiting its ack away from cnats (their acks, if any
  // arrive, are discarded) and returns them. REQUIRES: mu not held.
  std::vector<PublishFailure> TakePending() {
    std::vector<PublishFailure> taken;
    {
      std::lock_guard lock(mu);
      if (!async_used) return taken;
    }
    natsMsgList pending{};
    if (js_PublishAsyncGetPendingList(&pending, js) != NATS_OK) return taken;
    taken.reserve(static_cast<std::size_t>(pending.Count));
    for (int i = 0; i < pending.Count; ++i) {
      natsMsg* msg = pending.Msgs[i];
      PublishFailure failure;
      if (const char* subject = natsMsg_GetSubject(msg)) failure.subject = subject;
      if (const char* data = natsMsg_GetData(msg)) failure.data.assign(data, static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
      failure.status = NATS_TIMEOUT;
      failure.error = "no publish ack before the flush deadline";
      taken.push_back(std::move(failure));
    }
    natsMsgList_Destroy(&pending);
    std::size_t bytes = 0;
    for (const PublishFailure& failure : taken) bytes += failure.data.size();
    std::lock_guard lock(mu);
    in_flight -= taken.size();
    in_flight_bytes -= std::min(in_flight_bytes, bytes);
    cv.notify_all();
    return taken;
  }

  // Waits for callbacks already running (their messages left cnats' map before
  // TakePending could see them). REQUIRES: lock holds mu.
  void DrainCallbacks(std::unique_lock<std::mutex>& lock) {
    cv.wait_for(lock, kCallbackDrainTimeout, [&] { return in_flight == 0; });
  }
};

std::unique_ptr<Publisher> NatsConnection::NewPublisher(const PublisherOptions& options) {
  if (options.max_in_flight == 0) throw std::invalid_argument("PublisherOptions.max_in_flight must be >= 1");
  if (options.max_in_flight_bytes == 0) {
    throw std::invalid_argument("PublisherOptions.max_in_flight_bytes must be >= 1");
  }
  if (options.ack_timeout <= milliseconds::zero()) throw std::invalid_argument("PublisherOptions.ack_timeout must be > 0");
  auto impl = std::make_unique<Publisher::Impl>();
  impl->nc = impl_->nc;
  impl->options = options;
  impl->request_timeout = impl_->options.request_timeout;
  jsOptions js_options;
  jsOptions_Init(&js_options);
  js_options.Wait = Millis(impl_->options.request_timeout);
  js_options.PublishAsync.AckHandler = &Publisher::Impl::OnAck;
  js_options.PublishAsync.AckHandlerClosure = impl.get();
  // MaxPending stays 0 (unbounded in cnats): Publisher bounds in-flight itself so that a
  // full window blocks instead of failing after cnats' 200 ms stall wait.
  Check("create JetStream context", natsConnection_JetStream(&impl->js, impl_->nc.get(), &js_options));
  return std::unique_ptr<Publisher>(new Publisher(std::move(impl)));
}

Publisher::Publisher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Publisher::~Publisher() {
  impl_->TakePending();
  {
    std::unique_lock lock(impl_->mu);
    impl_->DrainCallbacks(lock);
  }
  jsCtx_Destroy(impl_->js);
}

void Publisher::PublishAsync(std::string_view subject, std::string_view data) {
  Impl& impl = *impl_;
  {
    std::unique_lock lock(impl.mu);
    const auto room = [&] {
      return impl.in_flight < impl.options.max_in_flight &&
             (impl.in_flight == 0 || impl.in_flight_bytes + data.size() <= impl.options.max_in_flight_bytes);
    };
    if (!impl.cv.wait_for(lock, impl.options.ack_timeout + kStallMargin, room)) {
      throw NatsError(Quoted("publish to", subject), NATS_TIMEOUT, 0,
                      "stalled: " + std::to_string(impl.in_flight) + " publishes (" +
                          std::to_string(impl.in_flight_bytes) + " bytes) await their ack");
    }
    ++impl.in_flight;
    impl.in_flight_bytes += data.size();
  }
  std::string subj(subject);
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = Millis(impl.options.ack_timeout);
  natsStatus s = js_PublishAsync(impl.js, subj.c_str(), data.data(), static_cast<int>(data.size()), &po);
  if (s == NATS_OK) {
    std::lock_guard lock(impl.mu);
    impl.async_used = true;
  } else {
    std::string detail = Detail(s);
    {
      std::lock_guard lock(impl.mu);
      --impl.in_flight;
      impl.in_flight_bytes -= std::min(impl.in_flight_bytes, data.size());
      impl.cv.notify_all();
    }
    throw NatsError(Quoted("publish to", subj), s, 0, detail);
  }
}

std::uint64_t Publisher::Flush(std::chrono::steady_clock::time_point deadline) {
  Impl& impl = *impl_;
  std::unique_lock lock(impl.mu);
  if (!impl.cv.wait_until(lock, deadline, [&] { return impl.in_flight == 0; })) {
    lock.unlock();
    std::vector<PublishFailure> late = impl.TakePending();
    lock.lock();
    impl.DrainCallbacks(lock);
    for (auto& failure : late) impl.failures.push_back(std::move(failure));
  }
  std::uint64_t acked = std::exchange(impl.acked, 0);
  std::vector<PublishFailure> failures = std::exchange(impl.failures, {});
  lock.unlock();
  if (!failures.empty()) throw PublishError(std::move(failures), acked);
  return acked;
}

std::uint64_t Publisher::Publish(std::string_view subject, std::string_view data) {
  std::string subj(subject);
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = Millis(impl_->request_timeout);
  jsPubAck* ack = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_Publish(&ack, impl_->js, subj.c_str(), data.data(), static_cast<int>(data.size()), &po, &jerr);
  if (s != NATS_OK) {
    jsPubAck_Destroy(ack);
    Throw(Quoted("publish to", subj), s, jerr);
  }
  std::uint64_t sequence = ack != nullptr ? ack->Sequence : 0;
  jsPubAck_Destroy(ack);
  return sequence;
}

std::size_t Publisher::in_flight() const {
  std::lock_guard lock(impl_->mu);
  return impl_->in_flight;
}

// ---- pull subscription and messages ----

namespace detail {
// A durable pull consumer read over core NATS: one synchronous subscription on this
// subscription's inbox, and pull requests published to the consumer's next-message
// subject ("JetStream Pull Subscribe", ADR-13). Not cnats' natsSubscription_Fetch: in
// cnats 3.4 (Debian bookworm's), when answers of an earlier fetch arrive after it gave
// up, the next fetch can write past its message array.
struct PullOwner {
  // Destroyed in reverse order: subscription, then connection.
  std::shared_ptr<natsConnection> nc;
  natsSubscription* sub = nullptr;  // synchronous, on "<inbox>.*"
  std::string inbox;                // "<inbox prefix>.<nuid>"; request n answers on "<inbox>.<n>"
  std::string next_subject;         // "$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>"
  std::string description;          // "consumer "x" of stream "y"" for errors
  milliseconds request_timeout{0};  // of AckSync

  // Guarded by fetch_mu (Fetch is serialised).
  std::mutex fetch_mu;
  struct OpenRequest {
    int remaining = 0;  // messages it may still bring
    std::chrono::steady_clock::time_point expires;
  };
  std::map<std::uint64_t, OpenRequest> open;  // by request number
  std::uint64_t requests = 0;

  ~PullOwner() { natsSubscription_Destroy(sub); }
};
}  // namespace detail

namespace {

// How long after its expiry a pull request whose end status never came (lost with a
// connection) stops counting as open.
constexpr milliseconds kOpenRequestGrace{1000};

// The request number of a message delivered on "<inbox>.<n>"; 0 when it is not one.
std::uint64_t RequestNumber(const char* subject, std::string_view inbox) {
  if (subject == nullptr) return 0;
  std::string_view s(subject);
  if (s.size() <= inbox.size() + 1 || s.substr(0, inbox.size()) != inbox || s[inbox.size()] != '.') return 0;
  const std::string_view digits = s.substr(inbox.size() + 1);
  std::uint64_t n = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  return error == std::errc() && end == digits.data() + digits.size() ? n : 0;
}

// The status code of a JetStream status message ("NATS/1.0 408 Request Timeout"), or 0
// for a message of the stream.
int StatusCode(natsMsg* msg) {
  const char* status = nullptr;
  if (natsMsgHeader_Get(msg, "Status", &status) != NATS_OK || status == nullptr) return 0;
  return std::atoi(status);
}

std::string StatusDescription(natsMsg* msg) {
  const char* text = nullptr;
  if (natsMsgHeader_Get(msg, "Description", &text) != NATS_OK || text == nullptr) return "";
  return text;
}

}  // namespace

std::unique_ptr<PullSubscription> NatsConnection::PullSubscribe(std::string_view stream, std::string_view durable) {
  auto owner = std::make_shared<detail::PullOwner>();
  owner->nc = impl_->nc;
  owner->request_timeout = impl_->options.request_timeout;
  std::string stream_name(stream);
  std::string consumer(durable);
  owner->description = "consumer \"" + consumer + "\" of stream \"" + stream_name + "\"";
  owner->next_subject = "$JS.API.CONSUMER.MSG.NEXT." + stream_name + "." + consumer;

  // The consumer must exist: a missing one fails here, with its name.
  jsConsumerInfo* info = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetConsumerInfo(&info, impl_->js.get(), stream_name.c_str(), consumer.c_str(), nullptr, &jerr);
  if (s == NATS_NOT_FOUND && jerr == 0) jerr = JSConsumerNotFoundErr;
  Check("get " + owner->description, s, jerr);
  jsConsumerInfo_Destroy(info);

  // A unique inbox under the connection's inbox prefix (what its NATS user may subscribe to).
  natsInbox* unique = nullptr;
  Check("create an inbox", natsInbox_Create(&unique));
  std::string_view nuid(unique);
  nuid = nuid.substr(nuid.rfind('.') + 1);
  owner->inbox = (impl_->options.inbox_prefix.empty() ? std::string("_INBOX") : impl_->options.inbox_prefix) + "." +
                 std::string(nuid);
  natsInbox_Destroy(unique);
  const std::string answers = owner->inbox + ".*";
  Check("subscribe to the answers of " + owner->description,
        natsConnection_SubscribeSync(&owner->sub, owner->nc.get(), answers.c_str()));
  return std::unique_ptr<PullSubscription>(new PullSubscription(std::move(owner)));
}

PullSubscription::PullSubscription(std::shared_ptr<detail::PullOwner> owner) : owner_(std::move(owner)) {}

PullSubscription::~PullSubscription() = default;

std::vector<Message> PullSubscription::Fetch(int max_messages, milliseconds timeout) {
  if (max_messages < 1) throw std::invalid_argument("Fetch: max_messages must be >= 1");
  using Clock = std::chrono::steady_clock;
  detail::PullOwner& o = *owner_;
  std::lock_guard lock(o.fetch_mu);
  const auto max = static_cast<std::size_t>(max_messages);
  const Clock::time_point deadline = Clock::now() + timeout;
  std::vector<Message> out;

  // Messages the open requests may still bring, once expired ones are forgotten.
  auto outstanding = [&] {
    const auto now = Clock::now();
    std::erase_if(o.open, [&](const auto& entry) { return entry.second.expires + kOpenRequestGrace < now; });
    std::size_t n = 0;
    for (const auto& entry : o.open) n += static_cast<std::size_t>(entry.second.remaining);
    return n;
  };
  auto want = [&] {
    const std::size_t missing = max - out.size();
    const std::size_t coming = outstanding();
    return missing > coming ? missing - coming : 0;
  };
  // Publishes a pull request for `batch` messages; the server answers on "<inbox>.<n>"
  // until it sent `batch` messages or `expires` passed (408), or, with no_wait, once it
  // sent what it holds (404 when that is nothing).
  auto request = [&](std::size_t batch, bool no_wait) {
    // Never 0 or less: the server would keep such a request open until filled.
    const auto expires = std::max<Clock::duration>(deadline - Clock::now(), milliseconds{1});
    const std::uint64_t n = ++o.requests;
    const std::string reply = o.inbox + "." + std::to_string(n);
    nlohmann::json body{{"batch", batch}, {"expires", std::chrono::nanoseconds(expires).count()}};
    if (no_wait) body["no_wait"] = true;
    const std::string data = body.dump();
    Check("fetch from " + o.description,
          natsConnection_PublishRequest(o.nc.get(), o.next_subject.c_str(), reply.c_str(), data.data(),
                                        static_cast<int>(data.size())));
    o.open[n] = {static_cast<int>(batch), Clock::now() + expires};
    return n;
  };
  // The next message of the inbox, waiting until the deadline at most (not at all with
  // `wait` false); nullptr when none came.
  auto next = [&](bool wait) -> natsMsg* {
    for (;;) {
      natsMsg* msg = nullptr;
      const auto left = std::chrono::ceil<milliseconds>(deadline - Clock::now());
      natsStatus s = natsSubscription_NextMsg(&msg, o.sub, wait ? std::max<std::int64_t>(Millis(left), 1) : 0);
      if (s == NATS_OK) return msg;
      if (s == NATS_TIMEOUT) return nullptr;
      // Messages were dropped on this client (its pending limit): JetStream redelivers
      // them after the ack wait. Go on with the next.
      if (s == NATS_SLOW_CONSUMER) continue;
      // With messages in hand, return them: the error comes back at the next fetch.
      if (!out.empty()) return nullptr;
      Throw("fetch from " + o.description, s);
    }
  };
  // A message of the stream joins the result (it carries its stream subject, not the
  // request's: the server answers requests in order, so it counts against the oldest
  // open one); a status ends the request it answers.
  std::uint64_t top_up = 0;     // this fetch's no-wait request, until its answer is complete:
  std::size_t top_up_left = 0;  // a status, or as many messages as it asked for
  std::string refused;          // a 409's description (e.g. "Consumer Deleted")
  auto take = [&](natsMsg* msg) {
    const int status = StatusCode(msg);
    if (status == 0) {
      auto oldest = o.open.begin();
      if (oldest != o.open.end() && --oldest->second.remaining <= 0) o.open.erase(oldest);
      if (top_up != 0 && --top_up_left == 0) top_up = 0;
      out.push_back(Message(msg, owner_));
      return;
    }
    if (status != 100) {  // 100: an idle heartbeat, nothing ends
      const std::uint64_t n = RequestNumber(natsMsg_GetSubject(msg), o.inbox);
      o.open.erase(n);
      if (n == top_up) top_up = 0;
      if (status == 409) refused = StatusDescription(msg);
    }
    natsMsg_Destroy(msg);
  };
  auto drain = [&] {
    while (out.size() < max) {
      natsMsg* msg = next(/*wait=*/false);
      if (msg == nullptr) break;
      take(msg);
    }
  };
  auto time_left = [&] { return Clock::now() + milliseconds{1} < deadline; };

  // 1. What earlier requests brought after their fetch had returned.
  drain();
  // 2. What the server holds right now.
  if (out.size() < max && time_left()) {
    if (const std::size_t n = want(); n > 0) {
      top_up = request(n, /*no_wait=*/true);
      top_up_left = n;
      while (top_up != 0 && out.size() < max && refused.empty()) {
        natsMsg* msg = next(/*wait=*/true);
        if (msg == nullptr) break;
        take(msg);
      }
    }
  }
  // 3. Nothing: wait for the first message (a request for one, so that nothing stays
  // open once it came), then take what came with it. At most two waiting requests,
  // should the server end the first early.
  int waiting = 0;
  while (out.empty() && refused.empty() && time_left()) {
    if (want() > 0 && waiting < 2) {
      request(1, /*no_wait=*/false);
      ++waiting;
    }
    natsMsg* msg = next(/*wait=*/true);
    if (msg == nullptr) break;
    take(msg);
  }
  drain();
  if (out.empty() && !refused.empty()) Throw("fetch from " + o.description + ": " + refused, NATS_ERR);
  return out;
}

Message::Message(natsMsg* msg, std::shared_ptr<detail::PullOwner> owner) : msg_(msg), owner_(std::move(owner)) {
  jsMsgMetaData* meta = nullptr;
  if (natsMsg_GetMetaData(&meta, msg_) == NATS_OK && meta != nullptr) {
    delivery_count_ = meta->NumDelivered;
    stream_sequence_ = meta->Sequence.Stream;
    stored_at_ = std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::nanoseconds(meta->Timestamp)));
  }
  jsMsgMetaData_Destroy(meta);
}

Message::Message(Message&& other) noexcept
    : msg_(std::exchange(other.msg_, nullptr)),
      owner_(std::move(other.owner_)),
      delivery_count_(other.delivery_count_),
      stream_sequence_(other.stream_sequence_),
      stored_at_(other.stored_at_) {}

Message& Message::operator=(Message&& other) noexcept {
  if (this != &other) {
    natsMsg_Destroy(msg_);
    msg_ = std::exchange(other.msg_, nullptr);
    owner_ = std::move(other.owner_);
    delivery_count_ = other.delivery_count_;
    stream_sequence_ = other.stream_sequence_;
    stored_at_ = other.stored_at_;
  }
  return *this;
}

Message::~Message() { natsMsg_Destroy(msg_); }

std::string_view Message::data() const {
  const char* data = natsMsg_GetData(msg_);
  return data == nullptr ? std::string_view() : std::string_view(data, static_cast<std::size_t>(natsMsg_GetDataLength(msg_)));
}

std::string_view Message::subject() const {
  const char* subject = natsMsg_GetSubject(msg_);
  return subject == nullptr ? std::string_view() : std::string_view(subject);
}

std::optional<std::string_view> Message::header(const std::string& key) const {
  const char* value = nullptr;
  if (natsMsgHeader_Get(msg_, key.c_str(), &value) != NATS_OK || value == nullptr) return std::nullopt;
  return std::string_view(value);
}

namespace {

// Publishes an acknowledgement `body` ("+ACK", "-NAK", "+TERM", "+WPI") to a delivery's
// reply subject (JetStream's ack protocol, ADR-15).
void PublishAck(const std::shared_ptr<detail::PullOwner>& owner, natsMsg* msg, std::string_view body,
                std::string_view what) {
  const char* reply = msg != nullptr ? natsMsg_GetReply(msg) : nullptr;
  if (owner == nullptr || reply == nullptr || *reply == '\0') {
    Throw(std::string(what) + ": not a JetStream message", NATS_ILLEGAL_STATE);
  }
  Check(what, natsConnection_Publish(owner->nc.get(), reply, body.data(), static_cast<int>(body.size())));
}

}  // namespace

void Message::Ack() { PublishAck(owner_, msg_, "+ACK", "ack message " + std::to_string(stream_sequence_)); }

void Message::AckSync() {
  const std::string what = "ack message " + std::to_string(stream_sequence_);
  const char* reply = msg_ != nullptr ? natsMsg_GetReply(msg_) : nullptr;
  if (owner_ == nullptr || reply == nullptr || *reply == '\0') {
    Throw(what + ": not a JetStream message", NATS_ILLEGAL_STATE);
  }
  natsMsg* answer = nullptr;
  const natsStatus s =
      natsConnection_RequestString(&answer, owner_->nc.get(), reply, "+ACK", Millis(owner_->request_timeout));
  natsMsg_Destroy(answer);
  Check(what, s);
}

void Message::Nak(milliseconds delay) {
  std::string body = "-NAK";
  if (delay > milliseconds::zero()) body += " " + nlohmann::json{{"delay", Nanos(delay)}}.dump();
  PublishAck(owner_, msg_, body, "nak message " + std::to_string(stream_sequence_));
}

void Message::Term() { PublishAck(owner_, msg_, "+TERM", "term message " + std::to_string(stream_sequence_)); }

std::string_view Message::reply_subject() const {
  const char* reply = msg_ != nullptr ? natsMsg_GetReply(msg_) : nullptr;
  return reply != nullptr ? std::string_view(reply) : std::string_view();
}

void Message::InProgress() {
  PublishAck(owner_, msg_, "+WPI", "mark message " + std::to_string(stream_sequence_) + " in progress");
}

// ---- core subscription ----

struct CoreSubscription::Impl {
  // Constant after construction.
  std::shared_ptr<natsConnection> nc;
  NatsConnection::CoreCallback callback;
  std::string subject;
  natsSubscription* sub = nullptr;

  // Guarded by mu.
  std::mutex mu;
  std::condition_variable cv;
  bool complete = false;  // cnats closed the subscription and no callback runs any more

  static void OnMessage(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
    auto* self = static_cast<Impl*>(closure);
    const char* data = natsMsg_GetData(msg);
    std::string_view payload = data == nullptr ? std::string_view() : std::string_view(data, static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
    const char* subject = natsMsg_GetSubject(msg);
    try {
      self->callback(subject == nullptr ? std::string_view() : std::string_view(subject), payload);
    } catch (const std::exception& e) {
      NatsLogger().Error("core subscription callback failed", {{"subject", self->subject}, {"error", e.what()}});
    } catch (...) {
      NatsLogger().Error("core subscription callback failed", {{"subject", self->subject}});
    }
    natsMsg_Destroy(msg);
  }

  static void OnComplete(void* closure) {
    auto* self = static_cast<Impl*>(closure);
    std::lock_guard lock(self->mu);
    self->complete = true;
    self->cv.notify_all();
  }
};

std::unique_ptr<CoreSubscription> NatsConnection::Subscribe(std::string_view subject, CoreCallback callback) {
  if (!callback) throw std::invalid_argument("Subscribe: callback is empty");
  auto impl = std::make_unique<CoreSubscription::Impl>();
  impl->nc = impl_->nc;
  impl->callback = std::move(callback);
  impl->subject = std::string(subject);
  Check(Quoted("subscribe to", impl->subject),
        natsConnection_Subscribe(&impl->sub, impl_->nc.get(), impl->subject.c_str(), &CoreSubscription::Impl::OnMessage,
                                 impl.get()));
  natsStatus s = natsSubscription_SetOnCompleteCB(impl->sub, &CoreSubscription::Impl::OnComplete, impl.get());
  if (s != NATS_OK) {
    natsSubscription_Unsubscribe(impl->sub);
    natsSubscription_Destroy(impl->sub);
    Throw(Quoted("subscribe to", impl->subject), s);
  }
  return std::unique_ptr<CoreSubscription>(new CoreSubscription(std::move(impl)));
}

CoreSubscription::CoreSubscription(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

CoreSubscription::~CoreSubscription() {
  natsStatus s = natsSubscription_Unsubscribe(impl_->sub);
  {
    std::unique_lock lock(impl_->mu);
    // When Unsubscribe failed the subscription was already closed (connection closed) and
    // completion has fired or fires shortly; the bounded wait covers both.
    impl_->cv.wait_for(lock, s == NATS_OK ? kCallbackDrainTimeout : milliseconds{1000},
                       [&] { return impl_->complete; });
  }
  natsSubscription_Destroy(impl_->sub);
}

}  // namespace ro::kubesync

// JetStream transport of the Kubesync pipeline over cnats 3.4 (libnats, <nats/nats.h>):
// one connection per component process, the per-LiveSynchronization work-queue stream,
// durable pull consumers, an acked async publisher and core-NATS control messages
// (docs/kubesync.md, "Data flow" and "Ordering").
//
// Process set-up: main() calls OpenNatsLibrary() once before it starts threads (tests do it
// in SetUpTestSuite). Connecting would open the library implicitly; the explicit call
// makes the one-time initialisation visible and lets a failure surface early.
//
// Lifetimes: every object created from a NatsConnection (Publisher, PullSubscription,
// Message, CoreSubscription) keeps the underlying connection alive, so they may be
// destroyed in any order. The TCP connection closes when the last of them is gone.
//
// Retry meaning of NatsError (see retryable()): connection-level failures (timeout,
// disconnected/reconnecting, no responders or js 10008 while JetStream restarts, a full
// reconnect buffer) -> back off and retry the same call; JetStream API errors (e.g. 10059
// stream not found, 10077 "maximum bytes exceeded") and a closed connection -> surface.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

// cnats' message handle (declared here so the header does not pull in nats.h).
typedef struct __natsMsg natsMsg;

namespace ro::kubesync {

namespace detail {
// Keeps a pull subscription, its JetStream context and the connection alive while a
// PullSubscription or any Message fetched from it exists (jetstream.cc).
struct PullOwner;
}  // namespace detail

// A cnats call failed. status() is the natsStatus value, js_error_code() the JetStream
// API error code (0 when the failure is not a JetStream API error). what() reads
// "<operation>: <status text>: <detail>" and includes the server's description for API
// errors, e.g. `add stream "KS_a_b": Error: stream name already in use (10058)`.
class NatsError : public std::runtime_error {
 public:
  NatsError(std::string_view operation, int status, int js_error_code, std::string_view detail);

  int status() const noexcept { return status_; }
  int js_error_code() const noexcept { return js_error_code_; }
  // True for failures where retrying the same call later can succeed: timeouts, I/O,
  // disconnected/reconnecting, no responders (JetStream not ready yet), stalled publish.
  bool retryable() const noexcept;
  // True when the failure is about the message itself and no retry can store it: larger
  // than the server's max_payload (NATS_MAX_PAYLOAD) or the stream's max_msg_size (js
  // 10054). The publisher must end that message and go on.
  bool rejects_message() const noexcept { return RejectsMessage(status_, js_error_code_); }
  static bool RejectsMessage(int status, int js_error_code) noexcept;

 private:
  int status_;
  int js_error_code_;
};

// One async publish that did not end in a JetStream ack (see Publisher::Flush).
struct PublishFailure {
  std::string subject;
  std::string data;        // the payload, so the caller may republish it
  std::string error;       // server description or status text
  int status = 0;          // natsStatus (NATS_TIMEOUT: no ack within ack_timeout/deadline)
  int js_error_code = 0;   // e.g. 10077 store failed (stream full with discard-new)
};

// Publisher::Flush found publishes that JetStream did not ack. failures() lists them in
// no particular order; acked() is how many of the same epoch did get acked.
class PublishError : public NatsError {
 public:
  PublishError(std::vector<PublishFailure> failures, std::uint64_t acked);
  const std::vector<PublishFailure>& failures() const noexcept { return failures_; }
  std::uint64_t acked() const noexcept { return acked_; }

 private:
  std::vector<PublishFailure> failures_;
  std::uint64_t acked_;
};

// nats_Open for the process; idempotent. Throws NatsError when the library cannot start.
// Must not run concurrently with CloseNatsLibrary.
void OpenNatsLibrary();
// Optional at exit, after every NATS object is destroyed: waits up to `timeout` for the
// library's threads to finish (nats_CloseAndWait). Never throws.
void CloseNatsLibrary(std::chrono::milliseconds timeout = std::chrono::seconds{5});

// Connection behaviour. Defaults suit a component in a pod: it never gives up on the
// server once connected (a NATS restart or rolling update must not kill it).
struct NatsOptions {
  // TCP connect + INFO/CONNECT handshake per attempt.
  std::chrono::milliseconds connect_timeout{5000};
  // Pause before reconnecting to the same server (cnats adds up to 100 ms jitter).
  std::chrono::milliseconds reconnect_wait{1000};
  // Reconnect attempts after a disconnect; -1 = forever (the default, see above).
  int max_reconnect = -1;
  // Client PING period; with 3 unanswered pings a silently dead server is detected
  // within ~3 * ping_interval and the reconnect loop starts.
  std::chrono::milliseconds ping_interval{10000};
  // Bytes of publishes buffered while reconnecting (cnats default 8 MiB); a publish that
  // does not fit fails at once with a retryable NatsError.
  int reconnect_buffer_bytes = 8 * 1024 * 1024;
  // Deadline of JetStream API requests (stream/consumer management, sync Publish,
  // AckSync) when the caller gives none.
  std::chrono::milliseconds request_timeout{5000};
  // Authentication (nats-server users, docs/security.md); empty user = anonymous.
  std::string user{};
  std::string password{};
  // TLS: when ca_pem is set the connection is TLS, the server's certificate must chain
  // to this CA (PEM) and name tls_server_name (or the URL's host when empty).
  std::string ca_pem{};
  std::string tls_server_name{};
  // Reply subjects' prefix instead of "_INBOX" (a user may subscribe only to its own).
  std::string inbox_prefix{};
};

// EnsureStream's wanted state. Retention is always work-queue (a message is removed once
// acked; at most one consumer per subject) and storage is file.
struct StreamConfig {
  std::string name{};                   // "KS_<id>" (PipelineNames::stream)
  std::vector<std::string> subjects{};  // PipelineNames::stream_subjects
  // Messages older than this are dropped unconsumed. A day is far beyond any sane
  // outage; what is dropped is recovered by the next resync (default 1 h) anyway.
  std::chrono::seconds max_age{24 * 3600};
  // Stream size cap (1 GiB) protecting the NATS volume. With discard-new (below) a full
  // stream rejects publishes (js error 10077, "maximum bytes exceeded"): the listener
  // stops advancing its resume point, i.e. back-pressure, never silent loss.
  std::int64_t max_bytes = std::int64_t{1} << 30;
  // Largest message; -1 = the server's max_payload (1 MiB by default: objects bigger than
  // that need a server with a larger max_payload).
  std::int32_t max_msg_size = -1;
  // true: DiscardNew (reject when full, see max_bytes); false: DiscardOld (drop oldest).
  bool discard_new = true;
  int replicas = 1;
};

// EnsureConsumer's wanted state: a durable pull consumer, explicit ack, deliver all.
struct ConsumerConfig {
  std::string stream{};
  std::string durable{};         // "processor", "synchronizer" (no '.', '*', '>')
  std::string filter_subject{};  // one subject of the stream
  // Redelivery after this long without Ack/Nak/InProgress. The pipeline's consumers use
  // kConsumerAckWait (5 s, ro/kubesync/pipeline_wire.h) with in-progress heartbeats.
  std::chrono::milliseconds ack_wait{30000};
  // Unacked messages the server hands out at once: the pipeline's back-pressure bound.
  int max_ack_pending = 1000;
  // Deliveries per message before the server stops redelivering; -1 = unlimited
  // (permanent failures are Term()ed by the components instead).
  int max_deliver = -1;
  // Optional redelivery delays replacing ack_wait per attempt (1st, 2nd, ... redelivery;
  // the last repeats). The server requires max_deliver == -1 or > backoff.size().
  std::vector<std::chrono::milliseconds> backoff{};
};

// Current state of a stream (for tests, status and diagnostics).
struct StreamState {
  std::uint64_t messages = 0;
  std::uint64_t bytes = 0;
  std::uint64_t first_sequence = 0;
  std::uint64_t last_sequence = 0;
  std::int64_t consumers = 0;
  // When the stream was created (unix nanoseconds): a stream lost with the server's store
  // and created again has another value (its messages are gone).
  std::int64_t created_unix_nanos = 0;
  // When the first (oldest) message still stored was published (unix nanoseconds; 0 when
  // the stream is empty).
  std::int64_t first_unix_nanos = 0;
  // The stream's configured replicas, and in a JetStream cluster the server name of its
  // leader and how many of its followers are current ("" and 0 on a single server).
  int replicas = 1;
  std::string leader;
  int current_followers = 0;
};

// Current state of a consumer.
struct ConsumerState {
  std::uint64_t num_pending = 0;        // stored, matching, not yet delivered
  std::int64_t num_ack_pending = 0;     // delivered, not yet acked
  std::int64_t num_redelivered = 0;
  std::uint64_t delivered_stream_sequence = 0;
  std::uint64_t ack_floor_stream_sequence = 0;
};

// EnsureKeyValue's wanted state: a JetStream key-value bucket (stream "KV_<bucket>"),
// file storage, one value per key.
struct KeyValueConfig {
  std::string bucket{};  // [A-Za-z0-9_-]+
  // Each value is dropped this long after it was put (the bucket's max age).
  std::chrono::seconds ttl{24 * 3600};
  // Size cap of the bucket; -1 = unlimited.
  std::int64_t max_bytes = -1;
  int replicas = 1;
};

class Publisher;
class PullSubscription;
class CoreSubscription;
class KeyValueStore;

struct PublisherOptions {
  // Async publishes awaiting their ack; PublishAsync blocks while this many are pending.
  std::size_t max_in_flight = 1024;
  // ... or while their payloads add up to this many bytes (each is kept until its ack,
  // for the retry): bounds the memory of a window of large objects. A payload larger
  // than this still goes, alone.
  std::size_t max_in_flight_bytes = 8 * 1024 * 1024;
  // A publish whose ack has not arrived after this long fails (reported by Flush).
  std::chrono::milliseconds ack_timeout{5000};
};

// One client connection. Thread-safe: share one per process.
class NatsConnection {
 public:
  // Connects to `url` ("nats://127.0.0.1:4222"; a comma-separated list is accepted) with
  // `client_name` shown in the server's connz. Returns once connected. Throws a
  // retryable NatsError when no server answers within connect_timeout: the caller
  // decides how long to keep trying (a component's runner retries with backoff).
  static std::unique_ptr<NatsConnection> Connect(std::string_view url, std::string_view client_name,
                                                 const NatsOptions& options = {});
  ~NatsConnection();
  NatsConnection(const NatsConnection&) = delete;
  NatsConnection& operator=(const NatsConnection&) = delete;

  // True while connected (false while reconnecting).
  bool connected() const;
  // How many times the connection was re-established so far: a change means the server
  // may have restarted (streams, consumers and buckets may have been lost with its store).
  std::uint64_t reconnects() const;

  // Creates the stream or updates it to `config` (idempotent). Throws NatsError, e.g.
  // when the subjects overlap another stream (10065) or the existing stream cannot take
  // the change (retention cannot change).
  void EnsureStream(const StreamConfig& config);
  // Deletes the stream and its consumers. Returns false when it did not exist.
  bool DeleteStream(std::string_view name);
  // Throws NatsError (js 10059) when the stream does not exist.
  StreamState GetStreamState(std::string_view name);

  // Creates the durable consumer or updates it to `config` (idempotent). Throws
  // NatsError when the stream is missing (10059), the filter overlaps another consumer of
  // the work-queue stream, or a field cannot change.
  void EnsureConsumer(const ConsumerConfig& config);
  ConsumerState GetConsumerState(std::string_view stream, std::string_view durable);

  // A publisher with its own ack accounting (one per producing thread).
  std::unique_ptr<Publisher> NewPublisher(const PublisherOptions& options = {});
  // Binds to the existing durable consumer `durable` of `stream` (EnsureConsumer first).
  // Throws NatsError (10014 consumer not found).
  std::unique_ptr<PullSubscription> PullSubscribe(std::string_view stream, std::string_view durable);

  // Creates the key-value bucket or binds to the existing one of that name (idempotent;
  // an existing bucket keeps its configuration, except that direct gets are turned off
  // on its stream: every read is answered by the stream's leader, never by a follower
  // that may lag). Safe for replicas that call it at the same moment: each store reads
  // from the leader. Throws NatsError.
  std::unique_ptr<KeyValueStore> EnsureKeyValue(const KeyValueConfig& config);
  // Deletes the bucket and its values. Returns false when it did not exist.
  bool DeleteKeyValue(std::string_view bucket);

  // Core NATS (not JetStream): at most once, nothing stored. `callback` runs on a library
  // thread, one message at a time per subscription, and must not throw (a throw is
  // logged and dropped). Throws NatsError.
  using CoreCallback = std::function<void(std::string_view subject, std::string_view data)>;
  std::unique_ptr<CoreSubscription> Subscribe(std::string_view subject, CoreCallback callback);
  // Fire and forget. Buffered while reconnecting. Throws NatsError.
  void PublishCore(std::string_view subject, std::string_view data);
  // Round trip to the server: every PublishCore before it has been processed. Throws.
  void FlushCore(std::chrono::milliseconds timeout);

 private:
  struct Impl;
  explicit NatsConnection(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Async JetStream publisher with bounded in-flight publishes and epochs of acks:
//
//   for (event : batch) publisher->PublishAsync(subject, Encode(event));
//   publisher->Flush(deadline);   // returns: every publish since the last Flush is stored
//   redis.SetResumeVersion(gvr, rv);  // only now
//
// Order: publishes reach the stream in call order while the connection is up. Across a
// disconnect some may fail (reported by Flush) while later ones succeed; the caller
// republishes from its last resume point, and consumers tolerate the duplicates and stale
// events this creates (docs/kubesync.md: the resourceVersion rule).
// Thread-safety: all methods may be called from any thread, but an epoch is per
// publisher: use one Publisher per producing thread.
class Publisher {
 public:
  ~Publisher();  // drops publishes still awaiting an ack (never blocks on the network)
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  // Queues one message (the data is copied). Blocks while max_in_flight publishes await
  // their ack, at most ack_timeout + 1 s. Throws a retryable NatsError when it stays
  // stalled or the reconnect buffer is full, NatsError when the connection is closed.
  void PublishAsync(std::string_view subject, std::string_view data);

  // Waits until every publish since the previous Flush has its ack, or `deadline`.
  // Returns how many were acked. Throws PublishError listing the failures (negative
  // acks, ack timeouts, and publishes still unacked at the deadline, which are dropped)
  // when there is any; the next epoch starts empty either way.
  std::uint64_t Flush(std::chrono::steady_clock::time_point deadline);

  // Synchronous publish for rare control-plane messages: returns the stream sequence
  // once stored. Throws NatsError (timeout = NatsOptions::request_timeout).
  std::uint64_t Publish(std::string_view subject, std::string_view data);

  // Publishes awaiting their ack right now.
  std::size_t in_flight() const;

 private:
  friend class NatsConnection;
  struct Impl;
  explicit Publisher(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// One delivered JetStream message (RAII over natsMsg*). Move-only. Not thread-safe (one
// Message is handled by one thread; different Messages are independent). Settle it with
// exactly one of Ack/AckSync/Nak/Term; destroying it unsettled means redelivery after the
// consumer's ack_wait.
class Message {
 public:
  Message(Message&&) noexcept;
  Message& operator=(Message&&) noexcept;
  ~Message();

  // Payload and subject, valid while this Message lives.
  std::string_view data() const;
  std::string_view subject() const;
  // A header value (the first one when repeated), or nullopt when absent.
  std::optional<std::string_view> header(const std::string& key) const;
  // The subject its acknowledgements go to (unique per delivery). Publishing "+WPI" there
  // on any thread (core NATS) is what InProgress() does, without touching this Message.
  std::string_view reply_subject() const;
  // 1 on the first delivery, 2 on the first redelivery, ...
  std::uint64_t delivery_count() const { return delivery_count_; }
  std::uint64_t stream_sequence() const { return stream_sequence_; }
  // When JetStream stored the message.
  std::chrono::system_clock::time_point stored_at() const { return stored_at_; }

  // Acknowledges (the message is removed from the work-queue stream). Fire and forget:
  // a lost ack means one harmless redelivery. Throws NatsError.
  void Ack();
  // Acknowledges and waits for the server's confirmation. Throws NatsError.
  void AckSync();
  // Negative ack: redeliver after `delay` (0 = at once). Throws NatsError.
  void Nak(std::chrono::milliseconds delay = std::chrono::milliseconds{0});
  // Never redeliver (permanent failure; the message is removed). Throws NatsError.
  void Term();
  // Resets the ack_wait timer for long work; may be called repeatedly. Throws NatsError.
  void InProgress();

 private:
  friend class PullSubscription;
  Message(natsMsg* msg, std::shared_ptr<detail::PullOwner> owner);

  natsMsg* msg_ = nullptr;
  std::shared_ptr<detail::PullOwner> owner_;
  std::uint64_t delivery_count_ = 0;
  std::uint64_t stream_sequence_ = 0;
  std::chrono::system_clock::time_point stored_at_{};
};

// A bound pull subscription on one durable consumer. Thread-safe: concurrent Fetch calls
// are serialised (for parallel fetching use one PullSubscription per thread; each gets
// different messages). Messages may be settled on any thread while another fetches.
class PullSubscription {
 public:
  ~PullSubscription();
  PullSubscription(const PullSubscription&) = delete;
  PullSubscription& operator=(const PullSubscription&) = delete;

  // Up to `max_messages` (>= 1) messages: first those that answers of earlier fetches
  // brought after those had returned, then what the server holds now; when that is
  // nothing, waits up to `timeout` for the first and returns it with whatever came with
  // it. Empty when none arrived in time. Never more than `max_messages`, however late
  // the server's answers come. Throws NatsError for anything else (retryable() while the
  // server restarts: back off; a refused request, e.g. "Consumer Deleted", is not
  // retryable).
  std::vector<Message> Fetch(int max_messages, std::chrono::milliseconds timeout);

 private:
  friend class NatsConnection;
  explicit PullSubscription(std::shared_ptr<detail::PullOwner> owner);
  std::shared_ptr<detail::PullOwner> owner_;
};

// One JetStream key-value bucket (cnats kvStore). Thread-safe. Keys: one or more of
// [-/_=.A-Za-z0-9], not starting or ending with '.', no empty '.'-separated token
// (EscapeKeyValueKey makes any string one).
class KeyValueStore {
 public:
  ~KeyValueStore();
  KeyValueStore(const KeyValueStore&) = delete;
  KeyValueStore& operator=(const KeyValueStore&) = delete;

  // Stores `value` under `key` once JetStream acked it. Throws NatsError (retryable()
  // while the server is unreachable).
  void Put(std::string_view key, std::string_view value);
  // The current value, or nullopt when the key was never put, was deleted or its value
  // expired (KeyValueConfig::ttl). Throws NatsError.
  std::optional<std::string> Get(std::string_view key);

  // A value and the bucket revision that stored it.
  struct Entry {
    std::string value;
    std::uint64_t revision = 0;
  };
  // Get() with the revision, for Update().
  std::optional<Entry> GetEntry(std::string_view key);
  // Compare-and-set: stores `value` only if the key's latest revision is still
  // `revision` (0: only if the key holds no value). Returns false, storing nothing, when
  // another writer got there first (read again and decide again). Throws NatsError for
  // anything else (retryable() while the server is unreachable).
  bool Update(std::string_view key, std::string_view value, std::uint64_t revision);

 private:
  friend class NatsConnection;
  friend class KeyValueMirror;
  struct Impl;
  explicit KeyValueStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A local copy of a whole key-value bucket, kept current by a watch (cnats
// kvStore_WatchAll: every current value, then every change) on a thread of its own, for
// lookups that cost no round trip. A lookup is "known" only once the watch has delivered
// every value the bucket held when it started, and until the watch fails; a failed watch
// (a NATS restart, a bucket lost with the server's store) is started again after 1 s,
// unknown meanwhile. The copy trails the server by the watch's delivery time (about a
// millisecond on one host): a caller that must see a write made elsewhere just before
// calls WaitCurrent first (or reads the server). Thread-safe.
class KeyValueMirror {
 public:
  // Starts watching `bucket` (kept alive until destruction). `ttl`: the bucket's
  // (KeyValueConfig::ttl): values older than it are absent, as on the server; 0: never.
  KeyValueMirror(std::shared_ptr<KeyValueStore> bucket, std::chrono::milliseconds ttl);
  // Stops the watch and joins its thread (within about 0.5 s).
  ~KeyValueMirror();
  KeyValueMirror(const KeyValueMirror&) = delete;
  KeyValueMirror& operator=(const KeyValueMirror&) = delete;

  struct Lookup {
    bool known = false;                // false: no current copy, ask the server
    std::optional<std::string> value;  // when known: the value, or nullopt when absent
  };
  Lookup Find(std::string_view key) const;

  // Blocks until the copy holds every write the bucket had stored when the call began:
  // one request for the bucket stream's last sequence (answered by its leader), then a
  // wait for the watch to deliver up to it. Callers that wait at the same time share one
  // request (a round starts when the previous one ends and serves everyone who arrived
  // meanwhile). After true, Find sees any write made elsewhere before the call. False
  // when that could not be established within `timeout` (NATS unreachable, the watch
  // restarting): read the server instead. Never throws.
  bool WaitCurrent(std::chrono::milliseconds timeout) const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

// A valid key-value key for any string: bytes outside [-/_A-Za-z0-9] (including '.',
// so no token is ever empty) become "=XX" (two upper-case hex digits); injective.
std::string EscapeKeyValueKey(std::string_view text);

// A core-NATS subscription. Destruction unsubscribes and waits for a callback in
// progress to return. REQUIRES: not destroyed from inside its own callback.
class CoreSubscription {
 public:
  ~CoreSubscription();
  CoreSubscription(const CoreSubscription&) = delete;
  CoreSubscription& operator=(const CoreSubscription&) = delete;

 private:
  friend class NatsConnection;
  struct Impl;
  explicit CoreSubscription(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ro::kubesync

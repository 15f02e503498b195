// The stage runtime's consuming loop (docs/kubesync.md, "Ordering"; ro/kubesync/stage.h):
// one thread fetches from a stage::Consumer and dispatches each event to one of N lanes
// by hash(gvr, namespace, name); each lane runs the stage on its events in arrival
// order, publishes what the stage asked to publish, commits, and settles every message
// in one place. One object's events are therefore handled in order while different
// objects are handled in parallel. A batch (ro/kubesync/envelope.h, BatchBuilder) is
// split into its events, which go to their lanes like single ones; the message is
// settled once, when the last of its events is (docs/kubesync.md, "Batches").
// Private to src/kubesync/components.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string_view>
#include <stop_token>
#include <thread>
#include <unordered_map>
#include <vector>

#include "ro/common/log.h"
#include "ro/kubesync/envelope.h"
#include "ro/kubesync/stage.h"
#include "ro/kubesync/stats.h"

namespace ro::kubesync {

struct StageRunnerOptions {
  // Parallel lanes (components.<name>.concurrentTasks).
  std::size_t lanes = 8;
  // Messages asked for per Fetch, at most (see max_held_bytes). Fetch returns early with
  // what is available, so this bounds a burst, not the latency.
  int fetch_batch = 256;
  // How long one Fetch waits for a first message; also how quickly a stop is noticed.
  std::chrono::milliseconds fetch_timeout{500};
  // Messages handled per lane before their publishes are committed together (one
  // publish confirmation round for the batch).
  std::size_t max_batch = 64;
  // Messages queued per lane before the fetcher waits for room (back-pressure on top of
  // the consumer's max_ack_pending).
  std::size_t lane_capacity = 512;
  // Heartbeats of held messages: every in_progress_interval, each message fetched at
  // least half an interval ago and not yet settled (queued in a lane, in the stage's
  // hands or waiting for its publishes to be confirmed) gets Delivered::InProgress(), on
  // a thread of the runner's own, so that the server does not deliver it again after
  // the consumer's ack wait (kConsumerAckWait). 0: no heartbeats.
  std::chrono::milliseconds in_progress_interval{0};
  // This component's configuration generation (PipelineContext::generation). A message
  // made under a newer one (Envelope::config_generation greater) is not handed to the
  // stage but NAKed for newer_config_delay: while the Deployments roll after a spec
  // change, the previous pods leave the new pods' messages to the new pods
  // (docs/kubesync.md, "Configuration changes"). 0: no check.
  std::int64_t config_generation = 0;
  std::chrono::milliseconds newer_config_delay{1'000};
  // Payload bytes of fetched messages not yet settled above which the fetcher waits, and
  // by which it sizes each fetch (the room left, counting each message as the largest
  // of the previous fetch and at least a full batch, kMaxBatchBytes): a backlog of
  // batches after an outage must not all be fetched into memory at once. The events
  // queued in the lanes are part of what is held, decoded (several times their wire
  // size): 1 MiB is ~700 small objects in flight (the consumer's max_ack_pending let
  // through 1,000 when every message carried one) or four full batches.
  std::size_t max_held_bytes = 1024 * 1024;
  // > 0: the publishes of one lane's batch on one subject go as batches of at most this
  // many bytes (BatchBuilder; the stage's Outcome::Publish data must then be an encoded
  // envelope). 0: one message per publish.
  std::size_t publish_batch_bytes = 0;
};

// Thread-safe where stated; Run() is called once.
class StageRunner {
 public:
  // The stage: handles one decoded event on its lane's thread. `stop` is the
  // component's stop token, for waits inside the stage. A throw is logged, counted by
  // `on_internal_error` and NAKed (a bug must not stop the lane).
  using Stage = std::function<Outcome(Envelope& envelope, const DeliveryInfo& info, std::stop_token stop)>;
  // Binds the consumer; called again after a non-retryable fetch error. Throws.
  using Subscribe = std::function<std::unique_ptr<stage::Consumer>()>;
  // A publisher for one lane; called once per lane, on first use. Null when the stage
  // never returns Outcome::Publish.
  using NewPublisher = std::function<std::unique_ptr<stage::Publisher>()>;

  struct Hooks {
    // A message that is not a valid envelope (it is Term()ed afterwards), or a member of
    // a batch that is not (it is skipped; the batch's other events are handled).
    std::function<void(std::uint64_t stream_sequence, const DecodeError& error)> on_decode_failure;
    // The stage threw.
    std::function<void(const Envelope& envelope, const std::exception& error)> on_internal_error;
  };

  StageRunner(Subscribe subscribe, NewPublisher new_publisher, Stage stage, Hooks hooks, ro::log::Logger logger,
              StageRunnerOptions options);

  // The components' hooks: an undecodable message is logged ("error decoding event") and
  // counted (reason "Decode"), a throwing stage counted (reason "Internal"), under
  // `component` (ProcessId). `stats` must outlive the runner.
  static Hooks CountingHooks(StatsRecorder& stats, std::string_view component);
  ~StageRunner();
  StageRunner(const StageRunner&) = delete;
  StageRunner& operator=(const StageRunner&) = delete;

  // Fetches and dispatches until `stop`; then stops fetching, lets every lane finish the
  // batch in hand, NAKs what is still queued (redelivered at once, e.g. to another
  // replica) and returns after the lanes have exited.
  void Run(std::stop_token stop);
  // True once the consumer has been bound. Thread-safe.
  bool Bound() const { return bound_.load(); }

  // The lane of an event: hash of "<gvr>/<namespace>/<name>" modulo `lanes`.
  static std::size_t LaneOf(const Envelope& envelope, std::size_t lanes);

 private:
  // How one event of a message ended, for the message's settlement.
  enum class Verdict { kAck, kTerm, kNak };
  // One fetched message, shared by the deliveries of its events (several for a batch).
  // Settled once, by whichever lane settles its last event: NAKed (after the longest
  // delay asked) when any event was NAKed (the redelivery repeats the others, which the
  // resourceVersion rule makes harmless), else acked, or terminated when every event was.
  struct Fetched {
    Fetched(std::unique_ptr<stage::Delivered> m, std::size_t events)
        : message(std::move(m)), bytes(message->data().size()), unsettled(events) {}
    const std::unique_ptr<stage::Delivered> message;
    const std::size_t bytes;                   // counted in held_bytes_ until settled
    std::mutex mu;
    std::size_t unsettled;                     // guarded by mu
    bool nak = false;                          // guarded by mu
    bool acked = false;                        // guarded by mu
    std::chrono::milliseconds nak_delay{0};    // guarded by mu
  };
  struct Delivery {
    std::shared_ptr<Fetched> fetched;
    Envelope envelope;
  };
  struct Lane {
    std::mutex mu;
    std::condition_variable_any cv;  // queue changed or draining
    std::deque<Delivery> queue;      // guarded by mu
    bool draining = false;           // guarded by mu
    std::unique_ptr<stage::Publisher> publisher;  // lane thread only
    std::jthread thread;
  };

  void LaneMain(std::size_t index, std::stop_token stop);
  // True when `envelope` was made under a stream older than the one bound now (a
  // nats-server that lost its store): acked unhandled, see Envelope::stream_created.
  bool Superseded(const Envelope& envelope, std::uint64_t stream_sequence);
  // Runs the stage over `batch`, publishes, commits and settles every message.
  void HandleBatch(Lane& lane, std::vector<Delivery>& batch, std::stop_token stop);
  // Waits for room in the lane, then queues. Returns false when stopped (NAKs `d`).
  bool Dispatch(Delivery d, std::stop_token stop);
  // Records how one event of `fetched` ended; the last one settles the message.
  void Settle(Fetched& fetched, Verdict verdict, std::chrono::milliseconds nak_delay = std::chrono::milliseconds{0});
  // The held-message registry of the heartbeats: Hold after a fetch, and every
  // settlement goes through Ack/NakNow/Term/NakAfter, which release first (so a
  // heartbeat never runs concurrently with or after a settlement).
  void Hold(stage::Delivered& message);
  void Release(stage::Delivered& message);
  void Ack(stage::Delivered& message);
  void Term(stage::Delivered& message);
  void Nak(stage::Delivered& message, std::chrono::milliseconds delay);
  void HeartbeatMain(std::stop_token stop);

  // Constant after construction.
  Subscribe subscribe_;
  NewPublisher new_publisher_;
  Stage stage_;
  Hooks hooks_;
  ro::log::Logger logger_;
  const StageRunnerOptions options_;

  std::vector<std::unique_ptr<Lane>> lanes_;
  std::atomic<bool> bound_{false};
  std::atomic<bool> newer_config_seen_{false};  // logged once
  // The stream incarnation of the consumer bound last (stage::Consumer::stream_created);
  // 0 = unknown. Set by Run's thread, read by the lanes.
  std::atomic<std::int64_t> stream_created_{0};
  // The incarnation whose first superseded message was logged (lanes).
  std::atomic<std::int64_t> superseded_logged_for_{0};
  // Payload bytes of the Fetched messages not yet settled (StageRunnerOptions::
  // max_held_bytes); the fetcher waits on held_bytes_cv_ while above it.
  std::mutex held_bytes_mu_;
  std::condition_variable_any held_bytes_cv_;
  std::size_t held_bytes_ = 0;  // guarded by held_bytes_mu_
  std::mutex held_mu_;
  // Unsettled messages -> when they were fetched. Guarded by held_mu_.
  std::unordered_map<stage::Delivered*, std::chrono::steady_clock::time_point> held_;
};

}  // namespace ro::kubesync

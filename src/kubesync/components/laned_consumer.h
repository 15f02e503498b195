// The consuming side of the processor and the synchronizer (docs/kubesync.md,
// "Ordering"): one thread fetches from a durable pull consumer and dispatches each
// message to one of N lanes by hash(gvr, namespace, name); each lane handles its messages
// in arrival order on its own thread. One object's events are therefore handled in
// order while different objects are handled in parallel. Private to
// src/kubesync/components.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "ro/common/log.h"
#include "ro/kubesync/envelope.h"
#include "ro/kubesync/jetstream.h"

namespace ro::kubesync {

// One decoded message, owned by the lane handling it.
struct Delivery {
  Message message;
  Envelope envelope;
};

struct LanedConsumerOptions {
  // Parallel lanes (components.<name>.concurrentTasks).
  std::size_t lanes = 8;
  // Messages asked for per Fetch. Fetch returns early with what is available, so this
  // bounds a burst, not the latency.
  int fetch_batch = 256;
  // How long one Fetch waits for a first message; also how quickly a stop is noticed.
  std::chrono::milliseconds fetch_timeout{500};
  // Deliveries handed to one handler call (a batch shares one publish confirmation).
  std::size_t max_batch = 64;
  // Deliveries queued per lane before the fetcher waits for room (back-pressure on
  // top of the consumer's max_ack_pending).
  std::size_t lane_capacity = 512;
  // Heartbeats of held messages: every in_progress_interval, `in_progress(reply)` is
  // called (on a thread of the consumer's own) for each message fetched at least half an
  // interval ago and not yet handled or released, whether queued in a lane or in the
  // handler's hands, so that JetStream does not deliver it again after the ack wait.
  // Publish "+WPI" to the reply subject; must be thread-safe and should not throw.
  // Empty or a zero interval: no heartbeats.
  std::function<void(std::string_view reply_subject)> in_progress;
  std::chrono::milliseconds in_progress_interval{0};
  // The connection's reconnect count (NatsConnection::reconnects): when it changes, the
  // subscription is bound again with `subscribe` (which ensures the stream and the
  // consumer: a nats-server that restarted without its store has neither, and a fetch
  // from a consumer that is gone just returns nothing). Empty: never.
  std::function<std::uint64_t()> connection_epoch;
};

// Thread-safe where stated; Run() is called once.
class LanedConsumer {
 public:
  // Binds the subscription; called again after a non-retryable fetch error. Throws
  // NatsError.
  using Subscribe = std::function<std::unique_ptr<PullSubscription>()>;
  // Handles `batch` (1..max_batch deliveries of one lane, in order) and settles every
  // message in it (Ack / Nak / Term). Runs on the lane's thread. `stop` is the
  // component's stop token, for waits inside the handler. Must not throw.
  using BatchHandler = std::function<void(std::size_t lane, std::vector<Delivery>& batch, std::stop_token stop)>;
  // A message that is not a valid envelope; the consumer Term()s it afterwards.
  using DecodeFailureHandler = std::function<void(const Message& message, const DecodeError& error)>;

  LanedConsumer(Subscribe subscribe, BatchHandler handler, DecodeFailureHandler on_decode_failure,
                ro::log::Logger logger, LanedConsumerOptions options);
  ~LanedConsumer();
  LanedConsumer(const LanedConsumer&) = delete;
  LanedConsumer& operator=(const LanedConsumer&) = delete;

  // Fetches and dispatches until `stop`; then stops fetching, lets every lane finish the
  // batch in hand, NAKs what is still queued (redelivered at once, e.g. to another
  // replica) and returns after the lanes have exited.
  void Run(std::stop_token stop);
  // True once the subscription has been bound (the consumer exists). Thread-safe.
  bool Bound() const { return bound_.load(); }

  // The lane of an event: hash of "<gvr>/<namespace>/<name>" modulo `lanes`.
  static std::size_t LaneOf(const Envelope& envelope, std::size_t lanes);

 private:
  struct Lane {
    std::mutex mu;
    std::condition_variable_any cv;  // queue changed or draining
    std::deque<Delivery> queue;      // guarded by mu
    bool draining = false;           // guarded by mu
    std::jthread thread;
  };

  void LaneMain(std::size_t index, std::stop_token stop);
  void InProgressMain(std::stop_token stop);
  // The registry of held messages (InProgressMain's work list).
  void Hold(const Message& message);
  void Release(std::string_view reply_subject);
  // Waits for room in the lane, then queues. Returns false when stopped (NAKs `d`).
  bool Dispatch(Delivery d, std::stop_token stop);

  // Constant after construction.
  Subscribe subscribe_;
  BatchHandler handler_;
  DecodeFailureHandler on_decode_failure_;
  ro::log::Logger logger_;
  const LanedConsumerOptions options_;

  std::vector<std::unique_ptr<Lane>> lanes_;
  std::atomic<bool> bound_{false};
  std::mutex held_mu_;
  // Reply subject (one per delivery) -> when it was fetched. Guarded by held_mu_.
  std::map<std::string, std::chrono::steady_clock::time_point, std::less<>> held_;
};

}  // namespace ro::kubesync

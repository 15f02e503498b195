// The one stage runtime of the Kubesync pipeline (docs/architecture.md, "Stage runtime").
//
// A stage (the processor, the synchronizer) is a function from one decoded message to an
// Outcome. The runtime (StageRunner) fetches from a Consumer, decodes, hands each message
// to the stage on the lane of its object, publishes what the stage asked to publish and
// settles every message in ONE place:
//
//   Outcome        settled as
//   Ack            Ack
//   Publish(s, d)  d published on s; Ack once JetStream stored it (Nak(0) if stopped first)
//   Nak(after)     Nak(NakDelay(delivery_count, after)): 250 ms doubling to 3 s, and at
//                  least the server's Retry-After (RFC 9110 10.2.3), clipped to 60 s
//   Term(reason)   Term: never redelivered (the stage logged and counted why)
//
// Which failures are transient is decided by one classification, OutcomeOf(exception):
// the table of ro/kube/errors.h for apiserver errors, NatsError::retryable() and
// S3Error::retryable(); anything transient is retried, never turned into a delete.
//
// The wire is behind two narrow interfaces, as kube has Transport and Clock: Consumer
// (a durable pull consumer) and Publisher (confirmed publishes). JetStream implements
// them for the components (NatsStageTransport); InMemoryTransport implements them for unit
// tests and benches.
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ro::kubesync {

struct ConsumerConfig;  // ro/kubesync/jetstream.h

namespace stage {

// One delivered message. Settle it with exactly one of Ack/Nak/Term (the runtime does);
// destroying it unsettled means redelivery after the consumer's ack wait. A settlement
// may throw NatsError: a lost settlement only costs a redelivery, which the pipeline's
// rules make harmless, so the runtime ignores it.
class Delivered {
 public:
  virtual ~Delivered() = default;
  // The payload, valid while this object lives.
  virtual std::string_view data() const = 0;
  // 1 on the first delivery, 2 on the first redelivery, ...
  virtual std::uint64_t delivery_count() const = 0;
  // The stream sequence (log and error fields).
  virtual std::uint64_t stream_sequence() const = 0;
  virtual void Ack() = 0;
  // Redeliver after `delay` (0: at once).
  virtual void Nak(std::chrono::milliseconds delay) = 0;
  virtual void Term() = 0;
  // Tells the server the message is still being worked on (JetStream "+WPI"), so it is
  // not delivered again after the ack wait. May be called from another thread than the
  // one that settles, never concurrently with or after a settlement (the runtime
  // serialises them). Throws NatsError (ignored: the next heartbeat tries again). The
  // default does nothing (a wire without an ack wait).
  virtual void InProgress() {}
};

// A durable pull consumer. Fetch is called from one thread.
class Consumer {
 public:
  virtual ~Consumer() = default;
  // Up to `max` messages, waiting at most `timeout` for the first; empty on timeout.
  // Throws NatsError (retryable: try again; otherwise the runtime subscribes again).
  virtual std::vector<std::unique_ptr<Delivered>> Fetch(int max, std::chrono::milliseconds timeout) = 0;
  // True when the binding may no longer be served (the connection was re-established
  // since Subscribe: a server that restarted without its store lost the consumer, and a
  // fetch from a consumer that is gone just returns nothing). The runtime then
  // subscribes again, which creates what is missing. Default: never.
  virtual bool Stale() const { return false; }
  // The creation time (unix ns) of the stream this consumer is bound to, read when it was
  // bound (Envelope::stream_created compares with it); 0 = unknown (no check). Default 0.
  virtual std::int64_t stream_created() const { return 0; }
};

// Publishes confirmed in batches: Publish queues, Commit returns once every message
// queued since the previous Commit is stored (retrying transient failures; a message no
// retry can store is ended, logged and counted, see DurablePublisher). Not thread-safe:
// one per lane.
class Publisher {
 public:
  virtual ~Publisher() = default;
  virtual void Publish(std::string_view subject, std::string_view data) = 0;
  // False when `stop` was requested first (the unconfirmed messages may be lost; their
  // inputs are NAKed and published again on redelivery).
  virtual bool Commit(std::stop_token stop) = 0;
};

// What a stage needs from the wire. Thread-safe.
class Transport {
 public:
  virtual ~Transport() = default;
  // Binds `consumer` (creating the pipeline's stream and consumers when missing).
  // Throws NatsError.
  virtual std::unique_ptr<Consumer> Subscribe(const ConsumerConfig& consumer) = 0;
  // A publisher for one lane.
  virtual std::unique_ptr<Publisher> NewPublisher() = 0;
};

}  // namespace stage

// How a stage ended one message (see the table above). A value type.
struct Outcome {
  enum class Kind { kAck, kNak, kTerm, kPublish };

  static Outcome Ack() { return Outcome(Kind::kAck); }
  // `retry_after`: the server's Retry-After (a 429), 0 when it gave none.
  static Outcome Nak(std::chrono::seconds retry_after = std::chrono::seconds{0}) {
    Outcome o(Kind::kNak);
    o.retry_after = retry_after;
    return o;
  }
  // `reason`: a short CamelCase cause ("Transform", "Invalid", ...), for tests and logs.
  static Outcome Term(std::string reason) {
    Outcome o(Kind::kTerm);
    o.reason = std::move(reason);
    return o;
  }
  static Outcome Publish(std::string subject, std::string data) {
    Outcome o(Kind::kPublish);
    o.subject = std::move(subject);
    o.data = std::move(data);
    return o;
  }

  explicit Outcome(Kind k = Kind::kNak) : kind(k) {}

  Kind kind;
  std::chrono::seconds retry_after{0};  // kNak
  std::string reason;                   // kTerm
  std::string subject;                  // kPublish
  std::string data;                     // kPublish
};

// What the runtime tells a stage about the message besides its envelope.
struct DeliveryInfo {
  std::uint64_t delivery_count = 1;
  std::uint64_t stream_sequence = 0;
};

// The one retry classification of the pipeline: Nak (with the error's Retry-After) for
// a transient failure (kube::IsRetryable: transport errors, 429, 5xx, timeouts;
// NatsError::retryable(); S3Error::retryable()), else Term(reason) with `reason` the
// apiserver's StatusReason ("Invalid", "Forbidden", ...), "Transport", "Nats", "S3" or
// "Internal".
Outcome OutcomeOf(const std::exception& error);
// The stats `reason` label of a failure, as OutcomeOf names it.
std::string FailureReason(const std::exception& error);

// The NAK delay of a message handled unsuccessfully for the `delivery_count`th time:
// 250 ms doubling per delivery up to kMaxRetryDelay (3 s, ro/kubesync/retry.h: a
// transient apiserver or S3 failure is retried quickly, the lag left after a long outage
// stays short; the outage costs one attempt per 3 s per message held).
std::chrono::milliseconds NakDelay(std::uint64_t delivery_count);
// The same, but at least the server's `retry_after` (a 429's Retry-After, RFC 9110
// section 10.2.3), which is clipped to 60 s like the kube transport clips it.
std::chrono::milliseconds NakDelay(std::uint64_t delivery_count, std::chrono::seconds retry_after);

}  // namespace ro::kubesync

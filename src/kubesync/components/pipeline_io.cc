#include "pipeline_io.h"

#include <utility>

#include "log_fields.h"
#include "ro/kube/errors.h"
#include "ro/kubesync/pipeline_wire.h"
#include "ro/kubesync/retry.h"
#include "ro/kubesync/envelope.h"

namespace ro::kubesync {
namespace {

using nlohmann::json;

// How long one Flush waits for the acks of a batch before the stragglers count as
// failed and are republished. Well above a JetStream round trip (< 1 ms on a LAN, a few
// ms under load) and above PublisherOptions::ack_timeout (5 s), so a Flush normally ends
// because every ack arrived or timed out individually.
constexpr std::chrono::seconds kFlushDeadline{10};

}  // namespace

DurablePublisher::DurablePublisher(NatsConnection& nats, ro::log::Logger logger, StatsRecorder& stats,
                                   std::string_view component, PublisherOptions options)
    : publisher_(nats.NewPublisher(options)), logger_(std::move(logger)), stats_(stats), component_(component) {}

void DurablePublisher::Publish(std::string_view subject, std::string_view data) {
  ++pending_;
  try {
    publisher_->PublishAsync(subject, data);
  } catch (const NatsError& e) {
    if (e.rejects_message()) {
      Reject(subject, data, e.what());
      return;
    }
    retry_.push_back(PublishFailure{std::string(subject), std::string(data), e.what(), e.status(), e.js_error_code()});
  }
}

void DurablePublisher::Reject(std::string_view subject, std::string_view data, std::string_view error) {
  // A batch the server refuses (a max_payload below kMaxBatchBytes): its events go one
  // by one, and only an event too large on its own is dropped.
  try {
    DecodedMessage decoded = DecodeMessage(data);
    if (decoded.events.size() > 1 || !decoded.invalid.empty()) {
      logger_.Warn("batch refused by NATS JetStream, publishing its events one by one",
                   {{"error", error}, {"subject", subject}, {"bytes", data.size()}, {"events", decoded.events.size()}});
      --pending_;
      for (const Envelope& envelope : decoded.events) Publish(subject, Encode(envelope));
      split_ = true;
      return;
    }
  } catch (const DecodeError&) {
    // Not an event (a control message): reported below.
  }
  std::string gvr;
  json object_ref;
  std::string key;
  try {
    const Envelope envelope = Decode(data);
    gvr = envelope.gvr.ToString();
    object_ref = fields::ObjectRef(envelope.gvr, envelope.object);
    key = fields::Key(envelope.object);
  } catch (const DecodeError&) {
    // Not an event (a control message): nothing more to say about it.
  }
  const std::string message = "the event (" + std::to_string(data.size()) +
                              " bytes) cannot be stored by NATS JetStream: " + std::string(error) +
                              "; it is dropped (raise the server's max_payload to replicate such objects)";
  logger_.Error("error publishing event",
                {{"error", message}, {"subject", subject}, {"sourceObject", object_ref}, {"permanent", true}});
  stats_.RecordError(component_, gvr, "MessageTooLarge");
  stats_.RecordFailure(component_, gvr, "MessageTooLarge", key, message);
}

bool DurablePublisher::Commit(std::stop_token stop) {
  // Reconnects take about NatsOptions::reconnect_wait (1 s); start below it.
  common::Backoff backoff(std::chrono::milliseconds{200}, kMaxRetryDelay);
  while (true) {
    // Reject may publish again (a batch's events): it appends to retry_.
    std::vector<PublishFailure> failures = std::exchange(retry_, {});
    for (PublishFailure& failure : failures) {
      try {
        publisher_->PublishAsync(failure.subject, failure.data);
      } catch (const NatsError& e) {
        if (e.rejects_message()) {
          Reject(failure.subject, failure.data, e.what());
          continue;
        }
        failure.error = e.what();
        retry_.push_back(std::move(failure));
      }
    }
    std::string error;
    try {
      publisher_->Flush(std::chrono::steady_clock::now() + kFlushDeadline);
    } catch (const PublishError& e) {
      for (const PublishFailure& failure : e.failures()) {
        if (NatsError::RejectsMessage(failure.status, failure.js_error_code)) {
          Reject(failure.subject, failure.data, failure.error);
        } else {
          retry_.push_back(failure);
        }
      }
      if (!retry_.empty()) error = e.what();
    } catch (const NatsError& e) {
      error = e.what();
    }
    if (retry_.empty() && error.empty()) {
      // A batch split after its publish failed: its events are still in flight.
      if (std::exchange(split_, false)) continue;
      pending_ = 0;
      return true;
    }
    if (error.empty()) error = retry_.front().error;
    const auto wait = backoff.Next();
    logger_.Error("error publishing event", {{"error", error},
                                            {"unconfirmed", retry_.size()},
                                            {"retryInMs", wait.count()}});
    if (!SleepFor(wait, stop)) {
      retry_.clear();
      split_ = false;
      pending_ = 0;
      return false;
    }
  }
}

namespace {

class NatsDelivered final : public stage::Delivered {
 public:
  explicit NatsDelivered(Message message) : message_(std::move(message)) {}
  std::string_view data() const override { return message_.data(); }
  std::uint64_t delivery_count() const override { return message_.delivery_count(); }
  std::uint64_t stream_sequence() const override { return message_.stream_sequence(); }
  void Ack() override { message_.Ack(); }
  void Nak(std::chrono::milliseconds delay) override { message_.Nak(delay); }
  void Term() override { message_.Term(); }
  void InProgress() override { message_.InProgress(); }

 private:
  Message message_;
};

class NatsConsumer final : public stage::Consumer {
 public:
  // `epoch`: the connection's reconnect count read before the consumer was bound;
  // `stream_created`: the stream's creation time read then.
  NatsConsumer(const NatsConnection& nats, std::uint64_t epoch, std::int64_t stream_created,
               std::unique_ptr<PullSubscription> subscription)
      : nats_(nats), epoch_(epoch), stream_created_(stream_created), subscription_(std::move(subscription)) {}
  std::vector<std::unique_ptr<stage::Delivered>> Fetch(int max, std::chrono::milliseconds timeout) override {
    std::vector<std::unique_ptr<stage::Delivered>> out;
    for (Message& message : subscription_->Fetch(max, timeout)) {
      out.push_back(std::make_unique<NatsDelivered>(std::move(message)));
    }
    return out;
  }
  bool Stale() const override { return nats_.reconnects() != epoch_; }
  std::int64_t stream_created() const override { return stream_created_; }

 private:
  const NatsConnection& nats_;
  const std::uint64_t epoch_;
  const std::int64_t stream_created_;
  std::unique_ptr<PullSubscription> subscription_;
};

}  // namespace

NatsStageTransport::NatsStageTransport(NatsConnection& nats, PipelineNames names, int replicas, StatsRecorder& stats,
                                       std::string_view component, std::function<void(NatsConnection&)> on_subscribe)
    : nats_(nats),
      names_(std::move(names)),
      replicas_(replicas),
      stats_(stats),
      component_(component),
      on_subscribe_(std::move(on_subscribe)) {}

std::unique_ptr<stage::Consumer> NatsStageTransport::Subscribe(const ConsumerConfig& consumer) {
  const std::uint64_t epoch = nats_.reconnects();  // a reconnect from here on binds again
  EnsurePipeline(nats_, names_, replicas_);
  if (on_subscribe_) on_subscribe_(nats_);
  // Read before binding: a stream created again after this read is a newer incarnation
  // than the one recorded, never an older one.
  const std::int64_t stream_created = nats_.GetStreamState(consumer.stream).created_unix_nanos;
  return std::make_unique<NatsConsumer>(nats_, epoch, stream_created,
                                        nats_.PullSubscribe(consumer.stream, consumer.durable));
}

std::unique_ptr<stage::Publisher> NatsStageTransport::NewPublisher() {
  return std::make_unique<DurablePublisher>(nats_, ro::log::Logger(), stats_, component_);
}

}  // namespace ro::kubesync

// I/O helpers shared by the components (private to src/kubesync/components):
//   DurablePublisher    JetStream publishes confirmed as stored, failures republished
//   NatsStageTransport  the stage runtime's wire on JetStream (ro/kubesync/stage.h)
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "ro/common/log.h"
#include "ro/kube/client.h"
#include "ro/kubesync/envelope.h"
#include "ro/kubesync/jetstream.h"
#include "ro/kubesync/stage.h"
#include "ro/kubesync/stats.h"

namespace ro::kubesync {

// Publishes messages and confirms them in batches: Publish() queues (async), Commit()
// returns once JetStream stored every message queued since the previous Commit,
// republishing the ones that failed (negative ack, ack timeout, NATS down) with backoff
// until they are stored or `stop` is requested. Republished messages may arrive after
// later ones; consumers tolerate that (docs/kubesync.md, the resourceVersion rule).
// A message no retry can store (NatsError::rejects_message: larger than max_payload) is
// ended at once: logged ("error publishing event" with the object), counted
// (RecordError + RecordFailure, reason "MessageTooLarge") and dropped, so it never
// stalls the messages behind it. A batch refused so (a server whose max_payload is
// below kMaxBatchBytes) is split: its events are published one by one instead.
// Not thread-safe: one per producing thread (a Publisher's epoch is per thread).
class DurablePublisher final : public stage::Publisher {
 public:
  // `nats` and `stats` must outlive the publisher. `logger` tags the "error publishing
  // event" lines; `component` is the stats label (ProcessId).
  DurablePublisher(NatsConnection& nats, ro::log::Logger logger, StatsRecorder& stats, std::string_view component,
                   PublisherOptions options = {});

  // Queues one message (blocks while PublisherOptions::max_in_flight await acks). A
  // message the connection refuses right now is kept and retried by Commit().
  void Publish(std::string_view subject, std::string_view data) override;
  // Waits until every message since the previous Commit is stored. Returns false when
  // `stop` was requested first (then the unconfirmed messages are dropped).
  bool Commit(std::stop_token stop) override;
  // Messages queued since the previous Commit.
  std::size_t pending() const { return pending_; }

 private:
  // Ends a message JetStream can never store (see the class comment).
  void Reject(std::string_view subject, std::string_view data, std::string_view error);

  std::unique_ptr<kubesync::Publisher> publisher_;  // JetStream (not the stage::Publisher this implements)
  ro::log::Logger logger_;
  StatsRecorder& stats_;
  std::string component_;
  std::vector<PublishFailure> retry_;  // refused by PublishAsync, to republish
  std::size_t pending_ = 0;
  bool split_ = false;  // Reject split a batch since the last Flush
};

// The stage runtime's wire on one NatsConnection: Subscribe ensures the pipeline's
// stream and consumers (EnsurePipeline), runs `on_subscribe` (e.g. the synchronizer binds
// its tombstone bucket) and binds the durable consumer; NewPublisher makes a
// DurablePublisher. Thread-safe; `nats` and `stats` must outlive it.
class NatsStageTransport final : public stage::Transport {
 public:
  // `replicas`: the stream's (KubesyncConfig::nats_replicas).
  NatsStageTransport(NatsConnection& nats, PipelineNames names, int replicas, StatsRecorder& stats,
                     std::string_view component, std::function<void(NatsConnection&)> on_subscribe = {});

  std::unique_ptr<stage::Consumer> Subscribe(const ConsumerConfig& consumer) override;
  std::unique_ptr<stage::Publisher> NewPublisher() override;

 private:
  NatsConnection& nats_;
  const PipelineNames names_;
  const int replicas_;
  StatsRecorder& stats_;
  const std::string component_;
  const std::function<void(NatsConnection&)> on_subscribe_;
};

}  // namespace ro::kubesync

#include "stage_runner.h"

#include <algorithm>
#include <functional>
#include <iterator>
#include <stdexcept>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "ro/common/backoff.h"
#include "ro/common/object_meta.h"
#include "ro/kube/clock.h"
#include "ro/kubesync/jetstream.h"
#include "ro/kubesync/retry.h"

namespace ro::kubesync {
namespace {

// Settles one message; a lost settlement only means a redelivery, which the pipeline's
// rules make harmless.
template <typename Fn>
void SettleIgnoringLoss(stage::Delivered& message, Fn&& settle) {
  try {
    settle(message);
  } catch (const NatsError&) {
  }
}

}  // namespace

StageRunner::StageRunner(Subscribe subscribe, NewPublisher new_publisher, Stage stage, Hooks hooks,
                         ro::log::Logger logger, StageRunnerOptions options)
    : subscribe_(std::move(subscribe)),
      new_publisher_(std::move(new_publisher)),
      stage_(std::move(stage)),
      hooks_(std::move(hooks)),
      logger_(std::move(logger)),
      options_(options) {
  if (options_.lanes == 0 || options_.fetch_batch < 1 || options_.max_batch == 0 || options_.lane_capacity == 0 ||
      options_.max_held_bytes == 0) {
    throw std::invalid_argument(
        "StageRunnerOptions: lanes, fetch_batch, max_batch, lane_capacity and max_held_bytes must be >= 1");
  }
  if (options_.in_progress_interval < std::chrono::milliseconds{0}) {
    throw std::invalid_argument("StageRunnerOptions: in_progress_interval must be >= 0");
  }
}

void StageRunner::Hold(stage::Delivered& message) {
  if (options_.in_progress_interval.count() == 0) return;
  std::lock_guard lock(held_mu_);
  held_.emplace(&message, std::chrono::steady_clock::now());
}

void StageRunner::Release(stage::Delivered& message) {
  if (options_.in_progress_interval.count() == 0) return;
  std::lock_guard lock(held_mu_);
  held_.erase(&message);
}

void StageRunner::Ack(stage::Delivered& message) {
  Release(message);
  SettleIgnoringLoss(message, [](stage::Delivered& m) { m.Ack(); });
}

void StageRunner::Term(stage::Delivered& message) {
  Release(message);
  SettleIgnoringLoss(message, [](stage::Delivered& m) { m.Term(); });
}

void StageRunner::Nak(stage::Delivered& message, std::chrono::milliseconds delay) {
  Release(message);
  SettleIgnoringLoss(message, [delay](stage::Delivered& m) { m.Nak(delay); });
}

void StageRunner::HeartbeatMain(std::stop_token stop) {
  const auto interval = options_.in_progress_interval;
  while (kube::DefaultClock().SleepFor(interval, stop)) {
    const auto cutoff = std::chrono::steady_clock::now() - interval / 2;
    std::lock_guard lock(held_mu_);  // InProgress only publishes (no round trip)
    for (const auto& [message, since] : held_) {
      if (since > cutoff) continue;
      try {
        message->InProgress();
      } catch (const NatsError&) {
        // Disconnected: the next round tries again, or the message comes back after the
        // ack wait, which the pipeline's rules make harmless.
      }
    }
  }
}

StageRunner::~StageRunner() = default;

StageRunner::Hooks StageRunner::CountingHooks(StatsRecorder& stats, std::string_view component) {
  Hooks hooks;
  hooks.on_decode_failure = [&stats, component](std::uint64_t sequence, const DecodeError& e) {
    ro::log::Logger().Error("error decoding event",
                            {{"error", e.what()}, {"field", e.field()}, {"streamSequence", sequence}});
    stats.RecordError(component, "", "Decode");
  };
  hooks.on_internal_error = [&stats, component](const Envelope& e, const std::exception&) {
    stats.RecordError(component, e.gvr.ToString(), "Internal");
  };
  return hooks;
}

std::size_t StageRunner::LaneOf(const Envelope& envelope, std::size_t lanes) {
  std::string key = envelope.gvr.ToString();
  key += '/';
  key += common::Namespace(envelope.object);
  key += '/';
  key += common::Name(envelope.object);
  return std::hash<std::string>{}(key) % lanes;
}

void StageRunner::Run(std::stop_token stop) {
  lanes_.clear();
  for (std::size_t i = 0; i < options_.lanes; ++i) lanes_.push_back(std::make_unique<Lane>());
  for (std::size_t i = 0; i < options_.lanes; ++i) {
    lanes_[i]->thread = std::jthread([this, i, stop] { LaneMain(i, stop); });
  }
  std::jthread heartbeats;  // stopped and joined when Run returns, after the lanes
  if (options_.in_progress_interval.count() > 0) {
    heartbeats = std::jthread([this](std::stop_token s) { HeartbeatMain(s); });
  }

  // A fetch failure is a NATS restart or a lost consumer: retry quickly first, then at
  // most every kMaxRetryDelay.
  common::Backoff backoff(std::chrono::milliseconds{100}, kMaxRetryDelay);
  std::unique_ptr<stage::Consumer> consumer;
  std::size_t largest = 0;  // the largest payload of the previous fetch
  while (!stop.stop_requested()) {
    // Memory: wait while the messages held are over their budget, and ask for no more
    // than what the rest of it holds, counting each message as a full batch at least
    // (any message may be one).
    int fetch = 1;
    {
      std::unique_lock lock(held_bytes_mu_);
      held_bytes_cv_.wait(lock, stop, [&] { return held_bytes_ < options_.max_held_bytes; });
      if (stop.stop_requested()) break;
      const std::size_t room = (options_.max_held_bytes - held_bytes_) / std::max(largest, kMaxBatchBytes);
      fetch = static_cast<int>(std::clamp<std::size_t>(room, 1, static_cast<std::size_t>(options_.fetch_batch)));
    }
    std::vector<std::unique_ptr<stage::Delivered>> messages;
    try {
      if (consumer && consumer->Stale()) {
        logger_.Info("binding the consumer again after a reconnect");
        consumer.reset();
      }
      if (!consumer) {
        consumer = subscribe_();
        stream_created_ = consumer->stream_created();
        bound_ = true;
      }
      messages = consumer->Fetch(fetch, options_.fetch_timeout);
      backoff.Reset();
    } catch (const std::exception& e) {
      const auto* nats_error = dynamic_cast<const NatsError*>(&e);
      if (nats_error == nullptr || !nats_error->retryable()) consumer.reset();  // bind again next time
      const auto wait = backoff.Next();
      logger_.Warn("error fetching events", {{"error", e.what()}, {"retryInMs", wait.count()}});
      if (!kube::DefaultClock().SleepFor(wait, stop)) break;
      continue;
    }
    if (!messages.empty()) largest = 0;
    for (std::unique_ptr<stage::Delivered>& message : messages) {
      Hold(*message);
      largest = std::max(largest, message->data().size());
    }
    bool stopped = false;
    for (std::unique_ptr<stage::Delivered>& message : messages) {
      if (stopped) break;
      DecodedMessage decoded;
      try {
        decoded = DecodeMessage(message->data());
      } catch (const DecodeError& e) {
        if (hooks_.on_decode_failure) hooks_.on_decode_failure(message->stream_sequence(), e);
        Term(*message);
        message.reset();
        continue;
      }
      for (const DecodeError& e : decoded.invalid) {
        if (hooks_.on_decode_failure) hooks_.on_decode_failure(message->stream_sequence(), e);
      }
      if (decoded.events.empty()) {
        Term(*message);
        message.reset();
        continue;
      }
      auto fetched = std::make_shared<Fetched>(std::move(message), decoded.events.size());
      {
        std::lock_guard lock(held_bytes_mu_);
        held_bytes_ += fetched->bytes;
      }
      for (Envelope& envelope : decoded.events) {
        if (stopped) {
          Settle(*fetched, Verdict::kNak);
        } else if (options_.config_generation != 0 && envelope.config_generation > options_.config_generation) {
          if (!newer_config_seen_.exchange(true)) {
            logger_.Info("events of a newer configuration: leaving them to the replacing components",
                         {{"generation", options_.config_generation}, {"eventGeneration", envelope.config_generation}});
          }
          Settle(*fetched, Verdict::kNak, options_.newer_config_delay);
        } else if (!Dispatch(Delivery{fetched, std::move(envelope)}, stop)) {
          stopped = true;
        }
      }
    }
    // Stopped in the middle of a batch: the rest is released at once (not left to the
    // ack wait), e.g. to another replica.
    for (std::unique_ptr<stage::Delivered>& message : messages) {
      if (message) Nak(*message, std::chrono::milliseconds{0});
    }
    if (stopped) break;
  }

  for (auto& lane : lanes_) {
    std::lock_guard lock(lane->mu);
    lane->draining = true;
    lane->cv.notify_all();
  }
  for (auto& lane : lanes_) {
    if (lane->thread.joinable()) lane->thread.join();
  }
}

bool StageRunner::Dispatch(Delivery d, std::stop_token stop) {
  Lane& lane = *lanes_[LaneOf(d.envelope, options_.lanes)];
  std::unique_lock lock(lane.mu);
  lane.cv.wait(lock, stop, [&] { return lane.queue.size() < options_.lane_capacity; });
  if (stop.stop_requested()) {
    lock.unlock();
    Settle(*d.fetched, Verdict::kNak);
    return false;
  }
  lane.queue.push_back(std::move(d));
  lane.cv.notify_all();
  return true;
}

void StageRunner::LaneMain(std::size_t index, std::stop_token stop) {
  Lane& lane = *lanes_[index];
  std::vector<Delivery> batch;
  while (true) {
    {
      std::unique_lock lock(lane.mu);
      lane.cv.wait(lock, [&] { return !lane.queue.empty() || lane.draining; });
      // Stop requested: hand nothing more to the stage, release what is queued.
      if (lane.draining || stop.stop_requested()) {
        std::deque<Delivery> rest = std::move(lane.queue);
        lane.queue.clear();
        lock.unlock();
        for (Delivery& d : rest) Settle(*d.fetched, Verdict::kNak);
        if (lane.draining) return;
        continue;
      }
      while (!lane.queue.empty() && batch.size() < options_.max_batch) {
        batch.push_back(std::move(lane.queue.front()));
        lane.queue.pop_front();
      }
      lane.cv.notify_all();  // room for the fetcher
    }
    HandleBatch(lane, batch, stop);
    batch.clear();
  }
}

bool StageRunner::Superseded(const Envelope& envelope, std::uint64_t stream_sequence) {
  const std::int64_t bound = stream_created_.load();
  if (envelope.stream_created == 0 || bound == 0 || envelope.stream_created >= bound) return false;
  if (superseded_logged_for_.exchange(bound) != bound) {
    logger_.Warn("events of a stream that was lost: dropping them, the events listener publishes every object again",
                 {{"streamCreated", bound}, {"eventStreamCreated", envelope.stream_created}});
  }
  logger_.Debug("event of a lost stream dropped",
                {{"streamSequence", stream_sequence}, {"eventStreamCreated", envelope.stream_created}});
  return true;
}

void StageRunner::Settle(Fetched& fetched, Verdict verdict, std::chrono::milliseconds nak_delay) {
  {
    std::lock_guard lock(fetched.mu);
    switch (verdict) {
      case Verdict::kAck:
        fetched.acked = true;
        break;
      case Verdict::kTerm:
        break;
      case Verdict::kNak:
        fetched.nak_delay = fetched.nak ? std::max(fetched.nak_delay, nak_delay) : nak_delay;
        fetched.nak = true;
        break;
    }
    if (--fetched.unsettled != 0) return;
  }
  // The last event: no other lane touches `fetched` any more.
  if (fetched.nak) {
    Nak(*fetched.message, fetched.nak_delay);
  } else if (fetched.acked) {
    Ack(*fetched.message);
  } else {
    Term(*fetched.message);
  }
  {
    std::lock_guard lock(held_bytes_mu_);
    held_bytes_ -= fetched.bytes;
  }
  held_bytes_cv_.notify_all();
}

void StageRunner::HandleBatch(Lane& lane, std::vector<Delivery>& batch, std::stop_token stop) {
  std::vector<Fetched*> published;
  // With publish_batch_bytes: the publishes of this batch per subject, sent at the end
  // (or when one is full).
  std::vector<std::pair<std::string, BatchBuilder>> batches;
  auto publish = [&](const std::string& subject, std::string data) {
    if (!lane.publisher) {
      if (!new_publisher_) throw std::logic_error("StageRunner: a stage published without a publisher factory");
      lane.publisher = new_publisher_();
    }
    if (options_.publish_batch_bytes == 0) {
      lane.publisher->Publish(subject, data);
      return;
    }
    auto it = std::find_if(batches.begin(), batches.end(), [&](const auto& b) { return b.first == subject; });
    if (it == batches.end()) {
      batches.emplace_back(subject, BatchBuilder(options_.publish_batch_bytes));
      it = std::prev(batches.end());
    }
    if (!it->second.Add(data)) {
      lane.publisher->Publish(subject, it->second.Take());
      it->second.Add(data);
    }
  };
  for (Delivery& d : batch) {
    stage::Delivered& message = *d.fetched->message;
    const DeliveryInfo info{message.delivery_count(), message.stream_sequence()};
    // Checked here, just before the stage acts, against the binding of now: a message
    // fetched before the loss and still queued is dropped too.
    if (Superseded(d.envelope, info.stream_sequence)) {
      Settle(*d.fetched, Verdict::kAck);
      continue;
    }
    Outcome outcome = Outcome::Nak();
    try {
      outcome = stage_(d.envelope, info, stop);
    } catch (const std::exception& e) {
      logger_.Error("error handling event", {{"error", e.what()}, {"streamSequence", info.stream_sequence}});
      if (hooks_.on_internal_error) hooks_.on_internal_error(d.envelope, e);
    }
    switch (outcome.kind) {
      case Outcome::Kind::kAck:
        Settle(*d.fetched, Verdict::kAck);
        break;
      case Outcome::Kind::kTerm:
        Settle(*d.fetched, Verdict::kTerm);
        break;
      case Outcome::Kind::kNak:
        Settle(*d.fetched, Verdict::kNak, NakDelay(info.delivery_count, outcome.retry_after));
        break;
      case Outcome::Kind::kPublish:
        publish(outcome.subject, std::move(outcome.data));
        published.push_back(d.fetched.get());
        break;
    }
  }
  if (published.empty()) return;
  for (auto& [subject, builder] : batches) {
    if (!builder.empty()) lane.publisher->Publish(subject, builder.Take());
  }
  // Acked only once JetStream stored what they produced: nothing is lost in between.
  const bool stored = lane.publisher->Commit(stop);
  for (Fetched* fetched : published) Settle(*fetched, stored ? Verdict::kAck : Verdict::kNak);
}

}  // namespace ro::kubesync

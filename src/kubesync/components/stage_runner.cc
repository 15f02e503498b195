#include "stage_runner.h"

#include <functional>
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
void Settle(stage::Delivered& message, Fn&& settle) {
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
  if (options_.lanes == 0 || options_.fetch_batch < 1 || options_.max_batch == 0 || options_.lane_capacity == 0) {
    throw std::invalid_argument("StageRunnerOptions: lanes, fetch_batch, max_batch and lane_capacity must be >= 1");
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
  Settle(message, [](stage::Delivered& m) { m.Ack(); });
}

void StageRunner::Term(stage::Delivered& message) {
  Release(message);
  Settle(message, [](stage::Delivered& m) { m.Term(); });
}

void StageRunner::Nak(stage::Delivered& message, std::chrono::milliseconds delay) {
  Release(message);
  Settle(message, [delay](stage::Delivered& m) { m.Nak(delay); });
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
  while (!stop.stop_requested()) {
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
      messages = consumer->Fetch(options_.fetch_batch, options_.fetch_timeout);
      backoff.Reset();
    } catch (const std::exception& e) {
      const auto* nats_error = dynamic_cast<const NatsError*>(&e);
      if (nats_error == nullptr || !nats_error->retryable()) consumer.reset();  // bind again next time
      const auto wait = backoff.Next();
      logger_.Warn("error fetching events", {{"error", e.what()}, {"retryInMs", wait.count()}});
      if (!kube::DefaultClock().SleepFor(wait, stop)) break;
      continue;
    }
    for (std::unique_ptr<stage::Delivered>& message : messages) Hold(*message);
    for (std::unique_ptr<stage::Delivered>& message : messages) {
      Envelope envelope;
      try {
        envelope = Decode(message->data());
      } catch (const DecodeError& e) {
        if (hooks_.on_decode_failure) hooks_.on_decode_failure(message->stream_sequence(), e);
        Term(*message);
        message.reset();
        continue;
      }
      if (options_.config_generation != 0 && envelope.config_generation > options_.config_generation) {
        if (!newer_config_seen_.exchange(true)) {
          logger_.Info("events of a newer configuration: leaving them to the replacing components",
                       {{"generation", options_.config_generation}, {"eventGeneration", envelope.config_generation}});
        }
        Nak(*message, options_.newer_config_delay);
        message.reset();
        continue;
      }
      if (!Dispatch(Delivery{std::move(message), std::move(envelope)}, stop)) break;
    }
    // Stopped in the middle of a batch: the rest is released at once (not left to the
    // ack wait), e.g. to another replica.
    for (std::unique_ptr<stage::Delivered>& message : messages) {
      if (message) Nak(*message, std::chrono::milliseconds{0});
    }
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
    Nak(*d.message, std::chrono::milliseconds{0});
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
        for (Delivery& d : rest) Nak(*d.message, std::chrono::milliseconds{0});
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

void StageRunner::HandleBatch(Lane& lane, std::vector<Delivery>& batch, std::stop_token stop) {
  std::vector<stage::Delivered*> published;
  for (Delivery& d : batch) {
    const DeliveryInfo info{d.message->delivery_count(), d.message->stream_sequence()};
    // Checked here, just before the stage acts, against the binding of now: a message
    // fetched before the loss and still queued is dropped too.
    if (Superseded(d.envelope, info.stream_sequence)) {
      Ack(*d.message);
      continue;
    }
    Outcome outcome = Outcome::Nak();
    try {
      outcome = stage_(d.envelope, info, stop);
    } catch (const std::exception& e) {
      logger_.Error("error handling event", {{"error", e.what()}, {"streamSequence", info.stream_sequence}});
      if (hooks_.on_internal_error) hooks_.on_internal_error(d.envelope, e);
    }
    stage::Delivered& message = *d.message;
    switch (outcome.kind) {
      case Outcome::Kind::kAck:
        Ack(message);
        break;
      case Outcome::Kind::kTerm:
        Term(message);
        break;
      case Outcome::Kind::kNak:
        Nak(message, NakDelay(info.delivery_count, outcome.retry_after));
        break;
      case Outcome::Kind::kPublish:
        if (!lane.publisher) {
          if (!new_publisher_) throw std::logic_error("StageRunner: a stage published without a publisher factory");
          lane.publisher = new_publisher_();
        }
        lane.publisher->Publish(outcome.subject, outcome.data);
        published.push_back(&message);
        break;
    }
  }
  if (published.empty()) return;
  // Acked only once JetStream stored what they produced: nothing is lost in between.
  const bool stored = lane.publisher->Commit(stop);
  for (stage::Delivered* m : published) {
    if (stored) {
      Ack(*m);
    } else {
      Nak(*m, std::chrono::milliseconds{0});
    }
  }
}

}  // namespace ro::kubesync

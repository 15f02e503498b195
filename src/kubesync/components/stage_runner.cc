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

void NakNow(stage::Delivered& message) {
  Settle(message, [](stage::Delivered& m) { m.Nak(std::chrono::milliseconds{0}); });
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

  // A fetch failure is a NATS restart or a lost consumer: retry quickly first, then at
  // most every 10 s.
  common::Backoff backoff(std::chrono::milliseconds{100}, std::chrono::seconds{10});
  std::unique_ptr<stage::Consumer> consumer;
  while (!stop.stop_requested()) {
    std::vector<std::unique_ptr<stage::Delivered>> messages;
    try {
      if (!consumer) {
        consumer = subscribe_();
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
    for (std::unique_ptr<stage::Delivered>& message : messages) {
      Envelope envelope;
      try {
        envelope = Decode(message->data());
      } catch (const DecodeError& e) {
        if (hooks_.on_decode_failure) hooks_.on_decode_failure(message->stream_sequence(), e);
        Settle(*message, [](stage::Delivered& m) { m.Term(); });
        continue;
      }
      if (!Dispatch(Delivery{std::move(message), std::move(envelope)}, stop)) break;
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
    NakNow(*d.message);
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
        for (Delivery& d : rest) NakNow(*d.message);
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

void StageRunner::HandleBatch(Lane& lane, std::vector<Delivery>& batch, std::stop_token stop) {
  std::vector<stage::Delivered*> published;
  for (Delivery& d : batch) {
    const DeliveryInfo info{d.message->delivery_count(), d.message->stream_sequence()};
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
        Settle(message, [](stage::Delivered& m) { m.Ack(); });
        break;
      case Outcome::Kind::kTerm:
        Settle(message, [](stage::Delivered& m) { m.Term(); });
        break;
      case Outcome::Kind::kNak:
        Settle(message, [&](stage::Delivered& m) { m.Nak(NakDelay(info.delivery_count, outcome.retry_after)); });
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
      Settle(*m, [](stage::Delivered& d) { d.Ack(); });
    } else {
      NakNow(*m);
    }
  }
}

}  // namespace ro::kubesync

#include "laned_consumer.h"

#include <functional>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "log_fields.h"
#include "ro/kubesync/component.h"

namespace ro::kubesync {

LanedConsumer::LanedConsumer(Subscribe subscribe, BatchHandler handler, DecodeFailureHandler on_decode_failure,
                             ro::log::Logger logger, LanedConsumerOptions options)
    : subscribe_(std::move(subscribe)),
      handler_(std::move(handler)),
      on_decode_failure_(std::move(on_decode_failure)),
      logger_(std::move(logger)),
      options_(options) {
  if (options_.lanes == 0 || options_.fetch_batch < 1 || options_.max_batch == 0 || options_.lane_capacity == 0) {
    throw std::invalid_argument("LanedConsumerOptions: lanes, fetch_batch, max_batch and lane_capacity must be >= 1");
  }
}

LanedConsumer::~LanedConsumer() = default;

std::size_t LanedConsumer::LaneOf(const Envelope& envelope, std::size_t lanes) {
  std::string key = envelope.gvr.ToString();
  key += '/';
  key += fields::Namespace(envelope.object);
  key += '/';
  key += fields::Name(envelope.object);
  return std::hash<std::string>{}(key) % lanes;
}

void LanedConsumer::Run(std::stop_token stop) {
  lanes_.clear();
  for (std::size_t i = 0; i < options_.lanes; ++i) lanes_.push_back(std::make_unique<Lane>());
  for (std::size_t i = 0; i < options_.lanes; ++i) {
    lanes_[i]->thread = std::jthread([this, i, stop] { LaneMain(i, stop); });
  }
  std::jthread in_progress;  // stopped and joined when Run returns
  if (options_.in_progress && options_.in_progress_interval > std::chrono::milliseconds{0}) {
    in_progress = std::jthread([this](std::stop_token s) { InProgressMain(s); });
  }

  // A fetch failure is a NATS restart or a lost consumer: retry quickly first, then at
  // most every 10 s.
  Backoff backoff(std::chrono::milliseconds{100}, std::chrono::seconds{10});
  std::unique_ptr<PullSubscription> subscription;
  std::uint64_t bound_epoch = 0;  // the connection_epoch the subscription was bound in
  while (!stop.stop_requested()) {
    std::vector<Message> messages;
    try {
      if (subscription && options_.connection_epoch && options_.connection_epoch() != bound_epoch) {
        logger_.Info("binding the consumer again after a reconnect");
        subscription.reset();
      }
      if (!subscription) {
        if (options_.connection_epoch) bound_epoch = options_.connection_epoch();
        subscription = subscribe_();
        bound_ = true;
      }
      messages = subscription->Fetch(options_.fetch_batch, options_.fetch_timeout);
      backoff.Reset();
    } catch (const std::exception& e) {
      const auto* nats_error = dynamic_cast<const NatsError*>(&e);
      if (nats_error == nullptr || !nats_error->retryable()) subscription.reset();  // rebind next time
      const auto wait = backoff.Next();
      logger_.Warn("error fetching events", {{"error", e.what()}, {"retryInMs", wait.count()}});
      if (!SleepFor(wait, stop)) break;
      continue;
    }
    for (Message& message : messages) Hold(message);
    for (Message& message : messages) {
      Envelope envelope;
      try {
        envelope = Decode(message.data());
      } catch (const DecodeError& e) {
        Release(message.reply_subject());
        on_decode_failure_(message, e);
        try {
          message.Term();
        } catch (const NatsError&) {
          // The server redelivers it after ack_wait and it is terminated then.
        }
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

bool LanedConsumer::Dispatch(Delivery d, std::stop_token stop) {
  Lane& lane = *lanes_[LaneOf(d.envelope, options_.lanes)];
  std::unique_lock lock(lane.mu);
  lane.cv.wait(lock, stop, [&] { return lane.queue.size() < options_.lane_capacity; });
  if (stop.stop_requested()) {
    lock.unlock();
    Release(d.message.reply_subject());
    try {
      d.message.Nak();
    } catch (const NatsError&) {
      // Redelivered after ack_wait instead.
    }
    return false;
  }
  lane.queue.push_back(std::move(d));
  lane.cv.notify_all();
  return true;
}

void LanedConsumer::LaneMain(std::size_t index, std::stop_token stop) {
  Lane& lane = *lanes_[index];
  std::vector<Delivery> batch;
  while (true) {
    {
      std::unique_lock lock(lane.mu);
      lane.cv.wait(lock, [&] { return !lane.queue.empty() || lane.draining; });
      // Stop requested: hand nothing more to the handler, release what is queued.
      if (lane.draining || stop.stop_requested()) {
        std::deque<Delivery> rest = std::move(lane.queue);
        lane.queue.clear();
        lock.unlock();
        for (Delivery& d : rest) {
          Release(d.message.reply_subject());
          try {
            d.message.Nak();
          } catch (const NatsError&) {
            // Redelivered after ack_wait instead.
          }
        }
        if (lane.draining) return;
        continue;
      }
      while (!lane.queue.empty() && batch.size() < options_.max_batch) {
        batch.push_back(std::move(lane.queue.front()));
        lane.queue.pop_front();
      }
      lane.cv.notify_all();  // room for the fetcher
    }
    std::vector<std::string> replies;  // the handler may do anything with the messages
    if (options_.in_progress) {
      for (const Delivery& d : batch) replies.emplace_back(d.message.reply_subject());
    }
    handler_(index, batch, stop);
    for (const std::string& reply : replies) Release(reply);
    batch.clear();
  }
}

void LanedConsumer::Hold(const Message& message) {
  if (!options_.in_progress) return;
  std::lock_guard lock(held_mu_);
  held_.emplace(std::string(message.reply_subject()), std::chrono::steady_clock::now());
}

void LanedConsumer::Release(std::string_view reply_subject) {
  if (!options_.in_progress) return;
  std::lock_guard lock(held_mu_);
  const auto it = held_.find(reply_subject);
  if (it != held_.end()) held_.erase(it);
}

void LanedConsumer::InProgressMain(std::stop_token stop) {
  while (SleepFor(options_.in_progress_interval, stop)) {
    std::vector<std::string> due;
    {
      std::lock_guard lock(held_mu_);
      const auto cutoff = std::chrono::steady_clock::now() - options_.in_progress_interval / 2;
      for (const auto& [reply, since] : held_) {
        if (since <= cutoff) due.push_back(reply);
      }
    }
    for (const std::string& reply : due) {
      try {
        options_.in_progress(reply);
      } catch (const std::exception&) {
        // Disconnected: the next round tries again, or the message comes back after the
        // ack wait, which the rules make harmless.
      }
    }
  }
}

}  // namespace ro::kubesync

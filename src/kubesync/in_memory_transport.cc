#include "ro/kubesync/in_memory_transport.h"

#include <utility>

#include "ro/kubesync/jetstream.h"  // ConsumerConfig

namespace ro::kubesync {

class InMemoryTransport::DeliveredImpl final : public stage::Delivered {
 public:
  DeliveredImpl(InMemoryTransport& transport, std::uint64_t sequence, std::string data, std::uint64_t deliveries)
      : transport_(transport), sequence_(sequence), data_(std::move(data)), deliveries_(deliveries) {}
  ~DeliveredImpl() override {
    if (!settled_) Settle(Settlement::Kind::kNak, std::chrono::milliseconds{0}, /*record=*/false);
  }

  std::string_view data() const override { return data_; }
  std::uint64_t delivery_count() const override { return deliveries_; }
  std::uint64_t stream_sequence() const override { return sequence_; }
  void Ack() override { Settle(Settlement::Kind::kAck, std::chrono::milliseconds{0}, true); }
  void Nak(std::chrono::milliseconds delay) override { Settle(Settlement::Kind::kNak, delay, true); }
  void Term() override { Settle(Settlement::Kind::kTerm, std::chrono::milliseconds{0}, true); }
  void InProgress() override {
    std::lock_guard lock(transport_.mu_);
    ++transport_.heartbeats_[sequence_];
    if (settled_) ++transport_.heartbeats_after_settlement_;
  }

 private:
  void Settle(Settlement::Kind kind, std::chrono::milliseconds delay, bool record) {
    if (settled_) return;  // as JetStream: a second settlement changes nothing
    settled_ = true;
    std::lock_guard lock(transport_.mu_);
    const auto it = transport_.stored_.find(sequence_);
    if (it == transport_.stored_.end()) return;
    if (record) {
      transport_.settlements_[it->second.subject].push_back(Settlement{kind, sequence_, deliveries_, delay});
    }
    transport_.SettleLocked(sequence_, kind, delay);
  }

  InMemoryTransport& transport_;
  const std::uint64_t sequence_;
  const std::string data_;
  const std::uint64_t deliveries_;
  bool settled_ = false;
};

class InMemoryTransport::ConsumerImpl final : public stage::Consumer {
 public:
  ConsumerImpl(InMemoryTransport& transport, std::string subject, std::int64_t stream_created)
      : transport_(transport), subject_(std::move(subject)), stream_created_(stream_created) {}
  std::int64_t stream_created() const override { return stream_created_; }

  std::vector<std::unique_ptr<stage::Delivered>> Fetch(int max, std::chrono::milliseconds timeout) override {
    std::vector<std::unique_ptr<stage::Delivered>> out;
    std::unique_lock lock(transport_.mu_);
    const auto ready = [&] {
      const auto now = transport_.clock_.SteadyNow();
      for (auto& [sequence, stored] : transport_.stored_) {
        if (static_cast<int>(out.size()) >= max) break;
        if (stored.subject != subject_ || stored.delivered || stored.due > now) continue;
        stored.delivered = true;
        ++stored.deliveries;
        out.push_back(std::make_unique<DeliveredImpl>(transport_, sequence, stored.data, stored.deliveries));
      }
      return !out.empty();
    };
    transport_.cv_.wait_for(lock, timeout, ready);
    return out;
  }

 private:
  InMemoryTransport& transport_;
  const std::string subject_;
  const std::int64_t stream_created_;
};

class InMemoryTransport::PublisherImpl final : public stage::Publisher {
 public:
  explicit PublisherImpl(InMemoryTransport& transport) : transport_(transport) {}

  void Publish(std::string_view subject, std::string_view data) override {
    pending_.emplace_back(std::string(subject), std::string(data));
  }

  bool Commit(std::stop_token /*stop*/) override {
    std::vector<std::pair<std::string, std::string>> batch = std::move(pending_);
    pending_.clear();
    std::lock_guard lock(transport_.mu_);
    if (transport_.fail_commits_ > 0) {
      --transport_.fail_commits_;
      return false;
    }
    for (auto& [subject, data] : batch) {
      transport_.StoreLocked(subject, data);
      transport_.committed_[subject].push_back(std::move(data));
    }
    transport_.cv_.notify_all();
    return true;
  }

 private:
  InMemoryTransport& transport_;
  std::vector<std::pair<std::string, std::string>> pending_;
};

InMemoryTransport::InMemoryTransport(kube::Clock& clock) : clock_(clock) {}
InMemoryTransport::~InMemoryTransport() = default;

std::uint64_t InMemoryTransport::Inject(std::string_view subject, std::string_view data) {
  std::lock_guard lock(mu_);
  const std::uint64_t sequence = StoreLocked(subject, data);
  cv_.notify_all();
  return sequence;
}

std::uint64_t InMemoryTransport::StoreLocked(std::string_view subject, std::string_view data) {
  const std::uint64_t sequence = next_sequence_++;
  stored_.emplace(sequence, Stored{sequence, std::string(subject), std::string(data)});
  return sequence;
}

void InMemoryTransport::SettleLocked(std::uint64_t sequence, Settlement::Kind kind, std::chrono::milliseconds delay) {
  const auto it = stored_.find(sequence);
  if (it == stored_.end()) return;
  if (kind == Settlement::Kind::kNak) {
    it->second.delivered = false;
    it->second.due = clock_.SteadyNow() + delay;
  } else {
    stored_.erase(it);
  }
  cv_.notify_all();
}

std::vector<InMemoryTransport::Settlement> InMemoryTransport::Settlements(std::string_view subject) const {
  std::lock_guard lock(mu_);
  const auto it = settlements_.find(subject);
  return it == settlements_.end() ? std::vector<Settlement>{} : it->second;
}

std::vector<std::string> InMemoryTransport::Pending(std::string_view subject) const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [sequence, stored] : stored_) {
    if (stored.subject == subject) out.push_back(stored.data);
  }
  return out;
}

std::vector<std::string> InMemoryTransport::Committed(std::string_view subject) const {
  std::lock_guard lock(mu_);
  const auto it = committed_.find(subject);
  return it == committed_.end() ? std::vector<std::string>{} : it->second;
}

void InMemoryTransport::FailCommits(int n) {
  std::lock_guard lock(mu_);
  fail_commits_ = n;
}

void InMemoryTransport::SetStreamCreated(std::int64_t unix_nanos) {
  std::lock_guard lock(mu_);
  stream_created_ = unix_nanos;
}

std::unique_ptr<stage::Consumer> InMemoryTransport::Subscribe(const ConsumerConfig& consumer) {
  std::lock_guard lock(mu_);
  return std::make_unique<ConsumerImpl>(*this, consumer.filter_subject, stream_created_);
}

std::unique_ptr<stage::Publisher> InMemoryTransport::NewPublisher() { return std::make_unique<PublisherImpl>(*this); }

}  // namespace ro::kubesync

namespace ro::kubesync {

std::uint64_t InMemoryTransport::Heartbeats(std::uint64_t stream_sequence) const {
  std::lock_guard lock(mu_);
  const auto it = heartbeats_.find(stream_sequence);
  return it == heartbeats_.end() ? 0 : it->second;
}

std::uint64_t InMemoryTransport::HeartbeatsAfterSettlement() const {
  std::lock_guard lock(mu_);
  return heartbeats_after_settlement_;
}

}  // namespace ro::kubesync

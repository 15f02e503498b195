// A stage::Transport in memory, for unit tests and benches of the stage runtime, the
// processor and the synchronizer (ro/kubesync/stage.h). It keeps JetStream's semantics
// that the stages rely on: a message published on a subject is delivered to the consumer
// filtering that subject, at least once; Nak(delay) redelivers it after `delay` on the
// injected clock with delivery_count + 1; Term drops it; Ack removes it. There is no
// ack wait (an unsettled, destroyed message is redelivered at once); InProgress() calls are
// counted (Heartbeats).
//
// Thread-safe. Fault injection: FailCommits(n) makes the next n Commit() calls fail as a
// stopped commit would (the runtime NAKs the inputs).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "ro/kube/clock.h"
#include "ro/kubesync/stage.h"

namespace ro::kubesync {

class InMemoryTransport final : public stage::Transport {
 public:
  // `clock` times Nak delays (a kube::FakeClock in tests) and must outlive the transport.
  explicit InMemoryTransport(kube::Clock& clock = kube::DefaultClock());
  ~InMemoryTransport() override;

  // Stores one message on `subject`, as a producer outside the stage would (the events
  // listener). Returns its stream sequence.
  std::uint64_t Inject(std::string_view subject, std::string_view data);

  // How each delivery of a subject's messages was settled, in settlement order.
  struct Settlement {
    enum class Kind { kAck, kNak, kTerm } kind;
    std::uint64_t stream_sequence;
    std::uint64_t delivery_count;
    std::chrono::milliseconds delay{0};  // kNak
  };
  std::vector<Settlement> Settlements(std::string_view subject) const;
  // The payloads stored on `subject` and not yet acked or terminated, in stream order.
  std::vector<std::string> Pending(std::string_view subject) const;
  // Messages published on `subject` through NewPublisher() publishers and committed, in
  // commit order (whether or not consumed since).
  std::vector<std::string> Committed(std::string_view subject) const;
  // The next `n` Commit() calls return false without storing.
  void FailCommits(int n);
  // How many times Delivered::InProgress() was called for the message of
  // `stream_sequence` (all its deliveries), and how many of all calls came after the
  // delivery had been settled (a runtime bug: JetStream would ignore them).
  std::uint64_t Heartbeats(std::uint64_t stream_sequence) const;
  std::uint64_t HeartbeatsAfterSettlement() const;

  // The stream incarnation (stage::Consumer::stream_created) of the consumers subscribed
  // from now on (0 at first: unknown), as if the stream had been created again.
  void SetStreamCreated(std::int64_t unix_nanos);

  // stage::Transport. Subscribe binds to consumer.filter_subject.
  std::unique_ptr<stage::Consumer> Subscribe(const ConsumerConfig& consumer) override;
  std::unique_ptr<stage::Publisher> NewPublisher() override;

 private:
  struct Stored {
    std::uint64_t sequence;
    std::string subject;
    std::string data;
    std::uint64_t deliveries = 0;
    kube::Clock::SteadyTime due{};  // deliverable from then on
    bool delivered = false;         // handed out, not settled yet
  };
  class ConsumerImpl;
  class DeliveredImpl;
  class PublisherImpl;

  std::uint64_t StoreLocked(std::string_view subject, std::string_view data);
  void SettleLocked(std::uint64_t sequence, Settlement::Kind kind, std::chrono::milliseconds delay);

  kube::Clock& clock_;
  mutable std::mutex mu_;
  std::condition_variable_any cv_;  // a message stored or released
  std::uint64_t next_sequence_ = 1;
  std::map<std::uint64_t, Stored> stored_;                        // guarded by mu_
  std::map<std::string, std::vector<Settlement>, std::less<>> settlements_;  // guarded by mu_
  std::map<std::string, std::vector<std::string>, std::less<>> committed_;   // guarded by mu_
  int fail_commits_ = 0;                                          // guarded by mu_
  std::int64_t stream_created_ = 0;                               // guarded by mu_
  std::map<std::uint64_t, std::uint64_t> heartbeats_;             // guarded by mu_
  std::uint64_t heartbeats_after_settlement_ = 0;                 // guarded by mu_
};

}  // namespace ro::kubesync

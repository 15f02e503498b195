// The Kubesync transport against real servers from the harness: JetStream (streams,
// durable pull consumers, acked async publishing, redelivery, a server restart), Redis
// state and stats, and the metrics exporter served over HTTP and fetched with libcurl.
#include <curl/curl.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nats/nats.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../../src/kubesync/components/pipeline_io.h"
#include "ro/common/http_server.h"
#include "ro/kube/clock.h"
#include "ro/kubesync/envelope.h"
#include "ro/kubesync/jetstream.h"
#include "ro/kubesync/metrics_exporter.h"
#include "ro/kubesync/pipeline_security.h"
#include "ro/kubesync/redis_state.h"
#include "ro/kubesync/stats.h"
#include "ro/testenv/testenv.h"

namespace ro::kubesync {
namespace {

namespace te = ro::testenv;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;

// Deadline for effects that normally take milliseconds (a redelivery after a 1 s ack
// wait, a reconnect); generous for two busy cores.
constexpr auto kEventually = 30s;

std::chrono::steady_clock::time_point In(std::chrono::milliseconds d) { return std::chrono::steady_clock::now() + d; }

struct HttpResult {
  long status = 0;
  std::string body;
};

size_t AppendBody(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// GET (or HEAD) with libcurl: a real client we did not write.
HttpResult HttpGet(const std::string& url, bool head = false) {
  HttpResult result;
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &AppendBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &result.body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
  if (head) curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  if (curl_easy_perform(curl) == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &result.status);
  curl_easy_cleanup(curl);
  return result;
}

// A nats-server that can stop and start again on the same ports and JetStream store
// directory. te::NatsServer cannot restart (it owns a fresh temp dir per instance), so
// this composes the harness's own TempDir, PortLease and Process with the same command
// line te::NatsServer uses.
class RestartableNatsServer {
 public:
  RestartableNatsServer() : dir_("nats-restart") { Start(); }

  void Start() {
    te::ProcessOptions options;
    options.name = "nats-server";
    options.argv = {"nats-server", "-a", "127.0.0.1", "-p", std::to_string(port_.port()), "-m",
                    std::to_string(monitor_.port()), "-js", "-sd", (dir_.path() / "jetstream").string()};
    options.log_path = dir_.path() / "nats-server.log";
    process_ = std::make_unique<te::Process>(std::move(options));
    const std::string health = "http://127.0.0.1:" + std::to_string(monitor_.port()) + "/healthz?js-enabled-only=true";
    process_->WaitUntilReady([&] { return HttpGet(health).status == 200; }, 30s, "JetStream healthz");
  }
  void Stop() { process_.reset(); }  // SIGTERM, SIGKILL after a grace period, reaped
  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_.port()); }

 private:
  te::TempDir dir_;
  te::PortLease port_;
  te::PortLease monitor_;
  std::unique_ptr<te::Process> process_;
};

// ---- JetStream ----

class JetStreamTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    OpenNatsLibrary();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    server_ = std::make_unique<te::NatsServer>();
    nats_ = NatsConnection::Connect(server_->url(), "kubesync-transport-test");
  }
  static void TearDownTestSuite() {
    nats_.reset();
    server_.reset();
  }

  // A fresh stream + consumer per test: PipelineNames of LiveSynchronization "it/<test>".
  PipelineNames NewPipeline(std::chrono::milliseconds ack_wait = 30s) {
    PipelineNames names("it", ::testing::UnitTest::GetInstance()->current_test_info()->name());
    nats_->EnsureStream(StreamConfig{.name = names.stream(), .subjects = names.stream_subjects()});
    nats_->EnsureConsumer(ConsumerConfig{.stream = names.stream(),
                                         .durable = "processor",
                                         .filter_subject = names.events_subject(),
                                         .ack_wait = ack_wait});
    return names;
  }

  static std::unique_ptr<te::NatsServer> server_;
  static std::unique_ptr<NatsConnection> nats_;
};
std::unique_ptr<te::NatsServer> JetStreamTest::server_;
std::unique_ptr<NatsConnection> JetStreamTest::nats_;

TEST_F(JetStreamTest, StreamAndConsumerCreationIsIdempotentAndUpdatesLimits) {
  PipelineNames names("it", "idempotent");
  StreamConfig stream{.name = names.stream(), .subjects = names.stream_subjects()};
  ConsumerConfig consumer{.stream = names.stream(), .durable = "processor", .filter_subject = names.events_subject()};
  for (int i = 0; i < 2; ++i) {
    nats_->EnsureStream(stream);
    nats_->EnsureConsumer(consumer);
  }
  // A changed limit is applied to the existing stream and consumer.
  stream.max_age = 3600s;
  nats_->EnsureStream(stream);
  consumer.ack_wait = 5s;
  consumer.max_ack_pending = 10;
  consumer.max_deliver = 5;
  consumer.backoff = {1s, 2s};
  nats_->EnsureConsumer(consumer);
  nats_->EnsureConsumer(consumer);

  EXPECT_EQ(nats_->GetStreamState(names.stream()).consumers, 1);
  EXPECT_EQ(nats_->GetConsumerState(names.stream(), "processor").num_pending, 0u);
  // A second consumer on the other subject is fine in a work-queue stream.
  nats_->EnsureConsumer({.stream = names.stream(), .durable = "synchronizer", .filter_subject = names.apply_subject()});
  EXPECT_EQ(nats_->GetStreamState(names.stream()).consumers, 2);

  EXPECT_TRUE(nats_->DeleteStream(names.stream()));
  EXPECT_FALSE(nats_->DeleteStream(names.stream()));
  try {
    nats_->GetStreamState(names.stream());
    FAIL() << "stream still exists";
  } catch (const NatsError& e) {
    EXPECT_EQ(e.js_error_code(), 10059) << e.what();
    EXPECT_FALSE(e.retryable());
  }
}

TEST_F(JetStreamTest, PullSubscribeToAMissingConsumerFailsWithItsName) {
  PipelineNames names = NewPipeline();
  try {
    nats_->PullSubscribe(names.stream(), "nobody");
    FAIL() << "bound to a missing consumer";
  } catch (const NatsError& e) {
    EXPECT_THAT(e.what(), HasSubstr("nobody"));
  }
}

TEST_F(JetStreamTest, TenThousandAsyncPublishesAreAllAckedThenFetchedInOrder) {
  PipelineNames names = NewPipeline();
  constexpr int kCount = 10000;
  auto publisher = nats_->NewPublisher({.max_in_flight = 512});
  for (int i = 0; i < kCount; ++i) publisher->PublishAsync(names.events_subject(), "event-" + std::to_string(i));
  EXPECT_EQ(publisher->Flush(In(60s)), std::uint64_t{kCount});
  EXPECT_EQ(publisher->in_flight(), 0u);
  EXPECT_EQ(nats_->GetStreamState(names.stream()).messages, std::uint64_t{kCount});

  auto sub = nats_->PullSubscribe(names.stream(), "processor");
  int next = 0;
  std::uint64_t last_sequence = 0;
  while (next < kCount) {
    auto batch = sub->Fetch(500, 5s);
    ASSERT_FALSE(batch.empty()) << "stalled after " << next << " messages";
    for (auto& msg : batch) {
      ASSERT_EQ(msg.data(), "event-" + std::to_string(next)) << "out of order";
      EXPECT_EQ(msg.subject(), names.events_subject());
      EXPECT_EQ(msg.delivery_count(), 1u);
      EXPECT_GT(msg.stream_sequence(), last_sequence);
      last_sequence = msg.stream_sequence();
      msg.Ack();
      ++next;
    }
  }
  // Work-queue retention: acked messages leave the stream.
  te::WaitFor([&] { return nats_->GetStreamState(names.stream()).messages == 0; }, kEventually,
              "acked messages removed from the stream");
}

// A fetch returns what is stored at once, and while it waits, with the first message
// that arrives: a lone change must not wait out the fetch timeout for a full batch (lag).
TEST_F(JetStreamTest, AFetchReturnsWithoutWaitingForAFullBatch) {
  PipelineNames names = NewPipeline();
  auto publisher = nats_->NewPublisher();
  auto sub = nats_->PullSubscribe(names.stream(), "processor");
  for (int round = 0; round < 4; ++round) {
    std::atomic<bool> fetching{false};
    std::jthread publish([&] {
      if (round % 2 == 1) te::WaitFor([&] { return fetching.load(); }, 10s, "the fetch to start");
      publisher->Publish(names.events_subject(), "change-" + std::to_string(round));
    });
    if (round % 2 == 0) publish.join();  // stored before the fetch
    const auto start = std::chrono::steady_clock::now();
    fetching = true;
    std::vector<Message> batch = sub->Fetch(4, 10s);
    const auto took = std::chrono::steady_clock::now() - start;
    ASSERT_EQ(batch.size(), 1u) << "round " << round;
    EXPECT_EQ(batch[0].data(), "change-" + std::to_string(round));
    EXPECT_LT(took, 3s) << "round " << round << ": the fetch waited for a full batch";
    batch[0].AckSync();
  }
}

TEST_F(JetStreamTest, AckedMessagesAreRemovedFromTheWorkQueueStream) {
  PipelineNames names = NewPipeline();
  auto publisher = nats_->NewPublisher();
  for (int i = 0; i < 5; ++i) publisher->PublishAsync(names.events_subject(), "payload-" + std::to_string(i));
  publisher->Flush(In(10s));
  ASSERT_EQ(nats_->GetStreamState(names.stream()).messages, 5u);

  auto sub = nats_->PullSubscribe(names.stream(), "processor");
  auto batch = sub->Fetch(5, 5s);
  ASSERT_EQ(batch.size(), 5u);
  for (int i = 0; i < 3; ++i) batch[static_cast<std::size_t>(i)].AckSync();
  EXPECT_EQ(nats_->GetStreamState(names.stream()).messages, 2u);  // AckSync: already removed
  for (std::size_t i = 3; i < 5; ++i) batch[i].AckSync();
  EXPECT_EQ(nats_->GetStreamState(names.stream()).messages, 0u);
}

TEST_F(JetStreamTest, UnackedMessageIsRedeliveredAfterAckWait) {
  PipelineNames names = NewPipeline(1s);
  auto publisher = nats_->NewPublisher();
  publisher->Publish(names.events_subject(), "forgotten");
  auto sub = nats_->PullSubscribe(names.stream(), "processor");
  std::uint64_t sequence = 0;
  {
    auto first = sub->Fetch(1, 5s);
    ASSERT_EQ(first.size(), 1u);
    sequence = first[0].stream_sequence();
    // Destroyed unsettled: as if the component crashed mid-way.
  }
  auto again = sub->Fetch(1, 10s);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].stream_sequence(), sequence);
  EXPECT_EQ(again[0].data(), "forgotten");
  EXPECT_EQ(again[0].delivery_count(), 2u);
  again[0].AckSync();
}

TEST_F(JetStreamTest, InProgressPostponesRedelivery) {
  // The ack wait is 8 times the extension period, so only a machine stalled for well
  // over a second between two extensions could see a redelivery (the longest gap is
  // reported when it happens).
  constexpr auto kAckWait = 2s;
  PipelineNames names = NewPipeline(kAckWait);
  nats_->NewPublisher()->Publish(names.events_subject(), "slow work");
  auto sub = nats_->PullSubscribe(names.stream(), "processor");
  auto batch = sub->Fetch(1, 5s);
  ASSERT_EQ(batch.size(), 1u);
  // Keep extending for 2 ack waits; no redelivery may happen meanwhile.
  const auto until = In(2 * kAckWait);
  auto last_extension = std::chrono::steady_clock::now();
  std::chrono::steady_clock::duration longest_gap{};
  while (std::chrono::steady_clock::now() < until) {
    batch[0].InProgress();
    const auto now = std::chrono::steady_clock::now();
    longest_gap = std::max(longest_gap, now - last_extension);
    last_extension = now;
    EXPECT_TRUE(sub->Fetch(1, 250ms).empty())
        << "redelivered; longest gap between extensions: "
        << std::chrono::duration_cast<std::chrono::milliseconds>(longest_gap).count() << " ms";
  }
  batch[0].AckSync();
  EXPECT_EQ(nats_->GetConsumerState(names.stream(), "processor").num_redelivered, 0);
}

TEST_F(JetStreamTest, NakWithDelayRedeliversTheMessage) {
  PipelineNames names = NewPipeline();  // 30 s ack wait: only the NAK can bring it back
  nats_->NewPublisher()->Publish(names.events_subject(), "transient failure");
  auto sub = nats_->PullSubscribe(names.stream(), "processor");
  auto first = sub->Fetch(1, 5s);
  ASSERT_EQ(first.size(), 1u);
  first[0].Nak(300ms);
  auto again = sub->Fetch(1, 10s);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].data(), "transient failure");
  EXPECT_EQ(again[0].delivery_count(), 2u);
  again[0].Ack();
}

TEST_F(JetStreamTest, TermedMessageIsNeverRedeliveredAndLeavesTheStream) {
  PipelineNames names = NewPipeline(1s);
  nats_->NewPublisher()->Publish(names.events_subject(), "permanent failure");
  auto sub = nats_->PullSubscribe(names.stream(), "processor");
  auto first = sub->Fetch(1, 5s);
  ASSERT_EQ(first.size(), 1u);
  first[0].Term();
  // Two ack waits later nothing came back.
  EXPECT_TRUE(sub->Fetch(1, 2500ms).empty());
  EXPECT_EQ(nats_->GetConsumerState(names.stream(), "processor").num_ack_pending, 0);
  te::WaitFor([&] { return nats_->GetStreamState(names.stream()).messages == 0; }, kEventually,
              "terminated message removed from the work-queue stream");
}

TEST_F(JetStreamTest, HeadersAndEnvelopesTravelIntact) {
  PipelineNames names = NewPipeline();
  Envelope event;
  event.type = EventType::kDelete;
  event.gvr = kube::GroupVersionResource{"apps", "v1", "deployments"};
  event.observed_at = std::chrono::system_clock::now();
  event.object = nlohmann::json::parse(R"({"metadata":{"name":"web","namespace":"shop"}})");
  auto publisher = nats_->NewPublisher();
  publisher->PublishAsync(names.events_subject(), Encode(event));
  publisher->Flush(In(10s));
  auto sub = nats_->PullSubscribe(names.stream(), "processor");
  auto batch = sub->Fetch(1, 5s);
  ASSERT_EQ(batch.size(), 1u);
  Envelope got = Decode(batch[0].data());
  EXPECT_EQ(got.type, EventType::kDelete);
  EXPECT_EQ(got.object, event.object);
  EXPECT_EQ(got.observed_at, event.observed_at);
  EXPECT_FALSE(batch[0].header("Nats-Msg-Id").has_value());
  batch[0].Ack();
}

// A batch a server refuses for its size (here a stream whose max_msg_size is below the
// batch; a nats-server whose max_payload is below kMaxBatchBytes answers the same way)
// is published again as its events one by one; only an event too large on its own is
// dropped (and reported), and nothing else is lost.
TEST_F(JetStreamTest, ABatchRefusedForItsSizeIsPublishedAgainAsItsEventsOneByOne) {
  PipelineNames names("it", "batchsplit");
  nats_->EnsureStream({.name = names.stream(), .subjects = names.stream_subjects(), .max_msg_size = 16 * 1024});
  nats_->EnsureConsumer(
      ConsumerConfig{.stream = names.stream(), .durable = "processor", .filter_subject = names.events_subject()});
  auto event = [](const std::string& name, std::size_t bytes) {
    Envelope e;
    e.gvr = kube::GroupVersionResource{"", "v1", "configmaps"};
    e.observed_at = std::chrono::system_clock::now();
    e.object = {{"metadata", {{"name", name}, {"namespace", "shop"}}}, {"data", {{"v", std::string(bytes, 'x')}}}};
    return Encode(e);
  };
  BatchBuilder batch;
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(batch.Add(event("cm-" + std::to_string(i), 3000)));
  const std::string refused = batch.Take();
  ASSERT_GT(refused.size(), 16u * 1024);

  class NullSink final : public StatsSink {
   public:
    void Write(std::span<const HashWrite>) override {}
  } sink;
  StatsRecorder stats(sink, kube::DefaultClock());
  DurablePublisher publisher(*nats_, ro::log::Logger(), stats, "eventslistener");
  publisher.Publish(names.events_subject(), refused);
  publisher.Publish(names.events_subject(), event("too-large", 20 * 1024));  // alone: dropped
  ASSERT_TRUE(publisher.Commit(std::stop_token{}));

  EXPECT_EQ(nats_->GetStreamState(names.stream()).messages, 10u);
  auto sub = nats_->PullSubscribe(names.stream(), "processor");
  std::vector<std::string> received;
  while (received.size() < 10) {
    auto messages = sub->Fetch(10, 5s);
    ASSERT_FALSE(messages.empty()) << "only " << received.size() << " of the batch's events were stored";
    for (Message& m : messages) {
      received.push_back(Decode(m.data()).object["metadata"]["name"]);  // each a single event
      m.Ack();
    }
  }
  std::vector<std::string> expected;
  for (int i = 0; i < 10; ++i) expected.push_back("cm-" + std::to_string(i));
  EXPECT_EQ(received, expected);  // in the batch's order
}

TEST_F(JetStreamTest, PublishToASubjectWithoutStreamIsReportedByFlush) {
  auto publisher = nats_->NewPublisher({.ack_timeout = 2s});
  publisher->PublishAsync("nowhere.events", "lost");
  try {
    publisher->Flush(In(10s));
    FAIL() << "a publish without a stream was acked";
  } catch (const PublishError& e) {
    ASSERT_EQ(e.failures().size(), 1u);
    EXPECT_EQ(e.failures()[0].subject, "nowhere.events");
    EXPECT_EQ(e.failures()[0].data, "lost");
    EXPECT_EQ(e.acked(), 0u);
  }
  // The next epoch starts clean.
  EXPECT_EQ(publisher->Flush(In(1s)), 0u);
}

TEST_F(JetStreamTest, FullStreamWithDiscardNewRejectsPublishes) {
  PipelineNames names("it", "full");
  nats_->EnsureStream({.name = names.stream(), .subjects = names.stream_subjects(), .max_bytes = 4096});
  auto publisher = nats_->NewPublisher();
  const std::string payload(1024, 'x');
  for (int i = 0; i < 10; ++i) publisher->PublishAsync(names.events_subject(), payload);
  try {
    publisher->Flush(In(10s));
    FAIL() << "a 4 KiB stream took 10 KiB";
  } catch (const PublishError& e) {
    EXPECT_GT(e.failures().size(), 0u);
    EXPECT_GT(e.acked(), 0u);
    EXPECT_EQ(e.failures()[0].js_error_code, 10077) << e.failures()[0].error;
    EXPECT_THAT(e.failures()[0].error, HasSubstr("maximum bytes exceeded"));
  }
  nats_->DeleteStream(names.stream());
}

TEST_F(JetStreamTest, CoreControlMessagesReachSubscribersAndAreNotStored) {
  PipelineNames names = NewPipeline();
  std::mutex mu;
  std::vector<std::string> received;
  auto sub = nats_->Subscribe(names.control_subject(), [&](std::string_view subject, std::string_view data) {
    std::lock_guard lock(mu);
    received.push_back(std::string(subject) + " " + std::string(data));
  });
  nats_->FlushCore(5s);  // the subscription is registered at the server
  nats_->PublishCore(names.control_subject(), "reconcile-now");
  te::WaitFor(
      [&] {
        std::lock_guard lock(mu);
        return !received.empty();
      },
      kEventually, "control message delivered");
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(received, std::vector<std::string>{names.control_subject() + " reconcile-now"});
  }
  sub.reset();  // unsubscribes; no callback runs after this
  EXPECT_EQ(nats_->GetStreamState(names.stream()).messages, 0u);
}

TEST_F(JetStreamTest, ObjectsMayBeDestroyedInAnyOrder) {
  auto connection = NatsConnection::Connect(server_->url(), "destroy-order");
  PipelineNames names("it", "destroy-order");
  connection->EnsureStream({.name = names.stream(), .subjects = names.stream_subjects()});
  connection->EnsureConsumer({.stream = names.stream(), .durable = "processor", .filter_subject = names.events_subject()});
  auto publisher = connection->NewPublisher();
  publisher->Publish(names.events_subject(), "m");
  auto sub = connection->PullSubscribe(names.stream(), "processor");
  auto batch = sub->Fetch(1, 5s);
  ASSERT_EQ(batch.size(), 1u);
  connection.reset();  // the connection object first...
  sub.reset();         // ...then the subscription...
  batch[0].AckSync();  // ...and a message still settles.
  publisher->PublishAsync(names.events_subject(), "after");
  EXPECT_EQ(publisher->Flush(In(10s)), 1u);
  publisher.reset();
}

// ---- NATS restart ----

// Flushes; republishes whatever failed (as a component restarting from its resume point
// would) until every publish is acked or the deadline passes.
void FlushUntilAllAcked(Publisher& publisher) {
  auto deadline = In(60s);
  while (true) {
    try {
      publisher.Flush(In(10s));
      return;
    } catch (const PublishError& e) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << e.what();
      for (const auto& failure : e.failures()) publisher.PublishAsync(failure.subject, failure.data);
    }
  }
}

void PublishBatch(Publisher& publisher, const std::string& subject, const std::string& prefix, int count) {
  for (int i = 0; i < count; ++i) publisher.PublishAsync(subject, prefix + "-" + std::to_string(i));
}

TEST_F(JetStreamTest, AKeyValueMirrorIsKnownOnceLoadedAndFollowsEveryWrite) {
  const std::string bucket = "KS_it_mirror";
  std::shared_ptr<KeyValueStore> kv = nats_->EnsureKeyValue({.bucket = bucket, .ttl = std::chrono::seconds(0)});
  for (int i = 0; i < 500; ++i) kv->Put("before/" + std::to_string(i), "v" + std::to_string(i));

  KeyValueMirror mirror(kv, 0ms);
  // Known only with every value of the start in: then a missing key is absent for sure.
  te::WaitFor([&] { return mirror.Find("before/0").known; }, kEventually, "the mirror loaded");
  EXPECT_EQ(mirror.Find("before/499").value, "v499");
  const KeyValueMirror::Lookup missing = mirror.Find("never");
  EXPECT_TRUE(missing.known);
  EXPECT_FALSE(missing.value);

  kv->Put("after", "1");
  te::WaitFor([&] { return mirror.Find("after").value == std::optional<std::string>("1"); }, kEventually,
              "a put reaches the mirror");
  kv->Put("after", "2");
  te::WaitFor([&] { return mirror.Find("after").value == std::optional<std::string>("2"); }, kEventually,
              "an overwrite reaches the mirror");
  ASSERT_TRUE(kv->Update("before/7", "changed", kv->GetEntry("before/7")->revision));
  te::WaitFor([&] { return mirror.Find("before/7").value == std::optional<std::string>("changed"); }, kEventually,
              "a compare-and-set reaches the mirror");
  EXPECT_TRUE(nats_->DeleteKeyValue(bucket));
}

// Whether the stream `stream` allows direct gets, as nats-server reports its configuration
// (/jsz); nullopt when it has no such stream.
std::optional<bool> AllowsDirectGets(const te::NatsServer& server, const std::string& stream) {
  const HttpResult answer =
      HttpGet("http://127.0.0.1:" + std::to_string(server.monitor_port()) + "/jsz?streams=true&config=true");
  const nlohmann::json jsz = nlohmann::json::parse(answer.body, nullptr, false);
  if (!jsz.is_object()) return std::nullopt;
  for (const nlohmann::json& account : jsz.value("account_details", nlohmann::json::array())) {
    for (const nlohmann::json& detail : account.value("stream_detail", nlohmann::json::array())) {
      if (detail.value("name", "") == stream) return detail["config"].value("allow_direct", false);
    }
  }
  return std::nullopt;
}

// A follower of a replicated bucket may answer a direct get with an older value: the
// tombstone reads must be answered by the leader. A bucket created by cnats' own defaults
// (direct gets on), then ensured, has them off, and reads and compare-and-sets go on.
TEST_F(JetStreamTest, EnsuredKeyValueBucketsAreReadThroughTheirStreamsLeader) {
  const std::string bucket = "KS_it_leader_reads";
  {
    // Another client that creates the bucket as cnats does by default.
    natsConnection* raw_nc = nullptr;
    ASSERT_EQ(natsConnection_ConnectTo(&raw_nc, server_->url().c_str()), NATS_OK) << nats_GetLastError(nullptr);
    const std::unique_ptr<natsConnection, decltype(&natsConnection_Destroy)> nc(raw_nc, &natsConnection_Destroy);
    jsCtx* raw_js = nullptr;
    ASSERT_EQ(natsConnection_JetStream(&raw_js, nc.get(), nullptr), NATS_OK);
    const std::unique_ptr<jsCtx, decltype(&jsCtx_Destroy)> js(raw_js, &jsCtx_Destroy);
    kvConfig config;
    kvConfig_Init(&config);
    config.Bucket = bucket.c_str();
    kvStore* raw_kv = nullptr;
    ASSERT_EQ(js_CreateKeyValue(&raw_kv, js.get(), &config), NATS_OK) << nats_GetLastError(nullptr);
    const std::unique_ptr<kvStore, decltype(&kvStore_Destroy)> kv(raw_kv, &kvStore_Destroy);
    ASSERT_EQ(kvStore_PutString(nullptr, kv.get(), "before", "1"), NATS_OK);
  }
  EXPECT_EQ(AllowsDirectGets(*server_, "KV_" + bucket), std::optional<bool>(true));

  std::shared_ptr<KeyValueStore> kv = nats_->EnsureKeyValue({.bucket = bucket, .ttl = std::chrono::seconds(0)});
  EXPECT_EQ(AllowsDirectGets(*server_, "KV_" + bucket), std::optional<bool>(false));
  EXPECT_EQ(kv->Get("before"), std::optional<std::string>("1"));
  ASSERT_TRUE(kv->Update("before", "2", kv->GetEntry("before")->revision));
  EXPECT_EQ(kv->Get("before"), std::optional<std::string>("2"));
  EXPECT_FALSE(kv->Get("never"));

  const std::string fresh = "KS_it_leader_reads_new";
  std::shared_ptr<KeyValueStore> created = nats_->EnsureKeyValue({.bucket = fresh, .ttl = std::chrono::seconds(0)});
  EXPECT_EQ(AllowsDirectGets(*server_, "KV_" + fresh), std::optional<bool>(false));
  created->Put("k", "v");
  EXPECT_EQ(created->Get("k"), std::optional<std::string>("v"));
  EXPECT_TRUE(nats_->DeleteKeyValue(bucket));
  EXPECT_TRUE(nats_->DeleteKeyValue(fresh));
}

// Replicas ensure the tombstone bucket at the same moment (two synchronizers starting,
// or binding again after NATS lost its store). A client that bound while another's
// creation still allowed direct gets would send its reads where nobody answers once
// they are off: every read times out until it binds again. Each must read.
TEST_F(JetStreamTest, ClientsEnsuringAKeyValueBucketAtTheSameMomentAllReadIt) {
  constexpr int kClients = 6;
  NatsOptions options;
  options.request_timeout = 1500ms;  // a read that nobody answers fails within this
  std::vector<std::unique_ptr<NatsConnection>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(NatsConnection::Connect(server_->url(), "ensure-race-" + std::to_string(i), options));
  }
  for (int round = 0; round < 8; ++round) {
    const std::string bucket = "KS_it_ensure_race_" + std::to_string(round);
    std::vector<std::shared_ptr<KeyValueStore>> stores(kClients);
    std::vector<std::string> errors(kClients);
    {
      std::atomic<int> ready{0};
      std::vector<std::jthread> threads;
      for (int i = 0; i < kClients; ++i) {
        threads.emplace_back([&, i] {
          ++ready;
          while (ready.load() < kClients) std::this_thread::yield();
          try {
            stores[i] = clients[i]->EnsureKeyValue({.bucket = bucket, .ttl = std::chrono::seconds(0)});
          } catch (const std::exception& e) {
            errors[i] = e.what();
          }
        });
      }
    }
    stores[0]->Put("k", "v");
    for (int i = 0; i < kClients; ++i) {
      ASSERT_EQ(errors[i], "") << "round " << round << ", client " << i;
      try {
        EXPECT_EQ(stores[i]->Get("k"), std::optional<std::string>("v")) << "round " << round << ", client " << i;
        EXPECT_EQ(stores[i]->Get("absent"), std::nullopt) << "round " << round << ", client " << i;
      } catch (const std::exception& e) {
        ADD_FAILURE() << "round " << round << ", client " << i << ": " << e.what();
      }
    }
    EXPECT_EQ(AllowsDirectGets(*server_, "KV_" + bucket), std::optional<bool>(false));
    EXPECT_TRUE(nats_->DeleteKeyValue(bucket));
  }
}

// WaitCurrent is what the synchronizer's check after a write relies on: a write another
// client made (and had acknowledged) before the call is in the copy once it returns true.
TEST_F(JetStreamTest, AKeyValueMirrorThatWaitsUntilCurrentHoldsEveryEarlierWriteOfAnotherClient) {
  const std::string bucket = "KS_it_mirror_current";
  std::shared_ptr<KeyValueStore> kv = nats_->EnsureKeyValue({.bucket = bucket, .ttl = std::chrono::seconds(0)});
  auto other = NatsConnection::Connect(server_->url(), "mirror-current-writer");
  std::shared_ptr<KeyValueStore> writer = other->EnsureKeyValue({.bucket = bucket, .ttl = std::chrono::seconds(0)});
  KeyValueMirror mirror(kv, 0ms);
  ASSERT_TRUE(mirror.WaitCurrent(30s)) << "an idle, reachable bucket";

  // No polling between the write and the lookup: WaitCurrent alone makes it visible.
  for (int i = 0; i < 200; ++i) {
    const std::string key = "k/" + std::to_string(i % 20);
    const std::string value = "v" + std::to_string(i);
    writer->Put(key, value);
    ASSERT_TRUE(mirror.WaitCurrent(10s)) << i;
    ASSERT_EQ(mirror.Find(key).value, std::optional<std::string>(value)) << i;
  }
  // Callers waiting at the same time share rounds; each still sees its own earlier write.
  std::atomic<int> wrong{0};
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 50; ++i) {
          const std::string key = "t" + std::to_string(t);
          const std::string value = std::to_string(i);
          writer->Put(key, value);
          if (!mirror.WaitCurrent(10s) || mirror.Find(key).value != std::optional<std::string>(value)) ++wrong;
        }
      });
    }
  }
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_TRUE(nats_->DeleteKeyValue(bucket));
}

// The bucket's last message can be gone (its TTL) while the stream still reports its
// sequence: a copy started after that is current all the same, not waiting for it forever.
TEST_F(JetStreamTest, AKeyValueMirrorStartedAfterItsLastValueExpiredIsCurrent) {
  const std::string bucket = "KS_it_mirror_expired";
  std::shared_ptr<KeyValueStore> kv = nats_->EnsureKeyValue({.bucket = bucket, .ttl = std::chrono::seconds(1)});
  kv->Put("gone", "soon");
  te::WaitFor([&] { return !kv->Get("gone"); }, kEventually, "the value expires on the server");
  KeyValueMirror mirror(kv, 1000ms);
  EXPECT_TRUE(mirror.WaitCurrent(10s));
  EXPECT_FALSE(mirror.Find("gone").value);
  kv->Put("next", "1");
  EXPECT_TRUE(mirror.WaitCurrent(10s));
  EXPECT_EQ(mirror.Find("next").value, std::optional<std::string>("1"));
  EXPECT_TRUE(nats_->DeleteKeyValue(bucket));
}

TEST(NatsRestart, AKeyValueMirrorIsUnknownWhileTheServerIsDownAndLoadsAgain) {
  OpenNatsLibrary();
  RestartableNatsServer server;
  auto nats = NatsConnection::Connect(server.url(), "mirror-restart-test", NatsOptions{.reconnect_wait = 200ms});
  std::shared_ptr<KeyValueStore> kv = nats->EnsureKeyValue({.bucket = "KS_it_mirror_restart", .ttl = std::chrono::seconds(0)});
  kv->Put("a", "1");
  KeyValueMirror mirror(kv, 0ms);
  te::WaitFor([&] { return mirror.Find("a").value == std::optional<std::string>("1"); }, kEventually,
              "the mirror loaded");

  EXPECT_TRUE(mirror.WaitCurrent(10s));
  server.Stop();
  te::WaitFor([&] { return !mirror.Find("a").known; }, kEventually,
              "the mirror stops claiming to know while the server is gone");
  // Cannot be established: false within the timeout (the caller reads the server).
  const auto waited_from = std::chrono::steady_clock::now();
  EXPECT_FALSE(mirror.WaitCurrent(500ms));
  EXPECT_LT(std::chrono::steady_clock::now() - waited_from, 5s);
  server.Start();  // same store
  te::WaitFor([&] { return nats->connected(); }, kEventually, "client reconnects");
  te::WaitFor(
      [&] {
        try {
          kv->Put("b", "2");
          return true;
        } catch (const NatsError&) {
          return false;  // JetStream still settling
        }
      },
      kEventually, "a put after the restart");
  te::WaitFor([&] { return mirror.Find("b").value == std::optional<std::string>("2"); }, 60s,
              "the mirror loads again and follows the bucket");
  EXPECT_EQ(mirror.Find("a").value, "1");
  EXPECT_TRUE(mirror.WaitCurrent(10s));
}

// The publish window is bounded in bytes as well as in messages: with acks held back (the
// server down), publishes stop once their payloads fill max_in_flight_bytes, and go on
// when the acks come. A payload larger than the budget still goes, alone.
TEST(NatsRestart, PublishesWaitOnceTheirUnackedPayloadsFillTheByteBudget) {
  OpenNatsLibrary();
  RestartableNatsServer server;
  auto nats = NatsConnection::Connect(server.url(), "byte-budget-test", NatsOptions{.reconnect_wait = 200ms});
  PipelineNames names("it", "bytebudget");
  nats->EnsureStream({.name = names.stream(), .subjects = names.stream_subjects()});
  const std::string payload(1000, 'x');
  auto publisher = nats->NewPublisher({.max_in_flight = 1000, .max_in_flight_bytes = 2500, .ack_timeout = 60s});
  publisher->PublishAsync(names.events_subject(), std::string(5000, 'y'));  // over the budget: alone
  publisher->Flush(In(30s));

  server.Stop();
  te::WaitFor([&] { return !nats->connected(); }, kEventually, "client notices the server is gone");
  std::atomic<int> returned{0};
  std::jthread publishing([&] {
    for (int i = 0; i < 3; ++i) {
      publisher->PublishAsync(names.events_subject(), payload);
      ++returned;
    }
  });
  te::WaitFor([&] { return returned.load() == 2; }, kEventually, "two publishes within the budget");
  const auto window_end = std::chrono::steady_clock::now() + 500ms;
  te::WaitFor([&] { return returned.load() != 2 || std::chrono::steady_clock::now() >= window_end; }, 5s,
              "the third publish to wait", 10ms);
  EXPECT_EQ(returned.load(), 2) << "a third 1000-byte publish went out with 2000 bytes unacked and a 2500-byte budget";

  server.Start();  // same port and store: the buffered publishes go out, their acks come back
  te::WaitFor([&] { return returned.load() == 3; }, 60s, "the third publish once the acks came");
  publishing.join();
  EXPECT_EQ(publisher->Flush(In(30s)), 3u);
}

TEST(NatsRestart, PublisherAndConsumerSurviveAServerRestart) {
  OpenNatsLibrary();
  RestartableNatsServer server;
  auto nats = NatsConnection::Connect(server.url(), "restart-test", NatsOptions{.reconnect_wait = 200ms});
  PipelineNames names("it", "restart");
  nats->EnsureStream({.name = names.stream(), .subjects = names.stream_subjects()});
  nats->EnsureConsumer({.stream = names.stream(), .durable = "processor", .filter_subject = names.events_subject()});
  auto publisher = nats->NewPublisher({.ack_timeout = 2s});
  auto sub = nats->PullSubscribe(names.stream(), "processor");

  PublishBatch(*publisher, names.events_subject(), "before", 100);
  FlushUntilAllAcked(*publisher);

  server.Stop();
  te::WaitFor([&] { return !nats->connected(); }, kEventually, "client notices the server is gone");
  // While the server is down: publishes are buffered by the client, a fetch finds
  // nothing or fails retryably, nothing crashes.
  PublishBatch(*publisher, names.events_subject(), "during", 50);
  try {
    EXPECT_TRUE(sub->Fetch(1, 200ms).empty());
  } catch (const NatsError& e) {
    EXPECT_TRUE(e.retryable()) << e.what();
  }
  // No ack can arrive: each publish fails after its 2 s ack timeout, well before the
  // flush deadline, and the caller gets the payloads back to republish.
  std::vector<PublishFailure> unacked;
  try {
    publisher->Flush(In(20s));
    ADD_FAILURE() << "publishes acked while the server was down";
  } catch (const PublishError& e) {
    unacked = e.failures();
    EXPECT_TRUE(e.retryable()) << e.what();  // ack timeouts
  }
  EXPECT_EQ(unacked.size(), 50u);
  server.Start();  // same port, same JetStream store
  te::WaitFor([&] { return nats->connected(); }, kEventually, "client reconnects");
  for (const auto& failure : unacked) publisher->PublishAsync(failure.subject, failure.data);
  FlushUntilAllAcked(*publisher);
  PublishBatch(*publisher, names.events_subject(), "after", 100);
  FlushUntilAllAcked(*publisher);

  // The same subscription fetches everything stored before and after the restart
  // (file storage kept it); duplicates from republishing are allowed.
  std::set<std::string> seen;
  auto deadline = In(60s);
  while (seen.size() < 250 && std::chrono::steady_clock::now() < deadline) {
    try {
      for (auto& msg : sub->Fetch(100, 2s)) {
        seen.insert(std::string(msg.data()));
        msg.Ack();
      }
    } catch (const NatsError& e) {
      ASSERT_TRUE(e.retryable()) << e.what();  // JetStream still settling: try again
    }
  }
  EXPECT_EQ(seen.size(), 250u);
  EXPECT_TRUE(seen.contains("before-0"));
  EXPECT_TRUE(seen.contains("during-49"));
  EXPECT_TRUE(seen.contains("after-99"));
}

// Over a slow network a fetch gives up before the server's answer arrives; the answer
// comes later and waits on the client for the next fetch. The cnats 3.4 fetch (Debian
// bookworm's) then wrote past its message array when the next fetch found between half
// and all of its batch already waiting (a heap-buffer-overflow the synchronizer died of
// under NATS latency). Every fetch here asks for 1-4 messages, some with a timeout far
// shorter than the round trip: none may return more than it asked for, and every
// message arrives exactly once.
TEST(NatsLateAnswers, FetchesThatGiveUpBeforeTheirAnswerNeitherOverflowNorLoseIt) {
  OpenNatsLibrary();
  te::NatsServer server;
  te::FaultProxy proxy("127.0.0.1", server.port());
  auto direct = NatsConnection::Connect(server.url(), "late-answers-publisher");
  PipelineNames names("it", "late-answers");
  direct->EnsureStream({.name = names.stream(), .subjects = names.stream_subjects()});
  direct->EnsureConsumer({.stream = names.stream(), .durable = "processor", .filter_subject = names.events_subject()});
  auto publisher = direct->NewPublisher();
  constexpr int kMessages = 200;
  PublishBatch(*publisher, names.events_subject(), "m", kMessages);
  FlushUntilAllAcked(*publisher);

  auto nats = NatsConnection::Connect("nats://127.0.0.1:" + std::to_string(proxy.port()), "late-answers-consumer");
  auto sub = nats->PullSubscribe(names.stream(), "processor");
  proxy.SetLatency(60ms);  // a round trip takes >= 120 ms
  std::set<std::string> seen;
  int fetches = 0;
  const auto deadline = In(120s);
  while (seen.size() < static_cast<std::size_t>(kMessages) && std::chrono::steady_clock::now() < deadline) {
    const int batch = 1 + fetches % 4;
    const auto timeout = fetches % 3 == 0 ? 400ms : 20ms;
    std::vector<Message> got = sub->Fetch(batch, timeout);
    ++fetches;
    ASSERT_LE(got.size(), static_cast<std::size_t>(batch)) << "fetch " << fetches;
    for (Message& message : got) {
      EXPECT_TRUE(seen.insert(std::string(message.data())).second) << "delivered twice: " << message.data();
      message.Ack();
    }
  }
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kMessages)) << "after " << fetches << " fetches";
}

TEST(NatsConnect, UnreachableServerFailsWithARetryableError) {
  OpenNatsLibrary();
  te::PortLease unused;  // reserved, nobody listens
  try {
    NatsConnection::Connect("nats://127.0.0.1:" + std::to_string(unused.port()), "nobody-home",
                            NatsOptions{.connect_timeout = 1s});
    FAIL() << "connected to a closed port";
  } catch (const NatsError& e) {
    EXPECT_TRUE(e.retryable()) << e.what();
    EXPECT_THAT(e.what(), HasSubstr(std::to_string(unused.port())));
  }
}

// ---- Redis ----

class RedisTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = std::make_unique<te::RedisServer>(); }
  static void TearDownTestSuite() { server_.reset(); }
  static std::unique_ptr<te::RedisServer> server_;
};
std::unique_ptr<te::RedisServer> RedisTest::server_;

TEST_F(RedisTest, ResumeVersionRoundTripsPerGvr) {
  RedisState redis(server_->address(), "ks:it.resume");
  redis.Ping();
  kube::GroupVersionResource deployments{"apps", "v1", "deployments"};
  kube::GroupVersionResource configmaps{"", "v1", "configmaps"};
  EXPECT_EQ(redis.GetResumeVersion(deployments), std::nullopt);
  redis.SetResumeVersion(deployments, "61949");
  redis.SetResumeVersion(configmaps, "12");
  redis.SetResumeVersion(deployments, "61950");
  EXPECT_EQ(redis.GetResumeVersion(deployments), "61950");
  EXPECT_EQ(redis.GetResumeVersion(configmaps), "12");
  EXPECT_EQ(redis.Get("rv:apps/v1/deployments"), "61950");  // the documented key
}

TEST_F(RedisTest, ValuesHashesAndDeleteAllStayUnderThePrefix) {
  RedisState mine(server_->address(), "ks:it.mine");
  RedisState other(server_->address(), "ks:it.mine2");  // shares a textual prefix
  mine.Set("a", "1");
  mine.Set("nested:b", std::string("\0binary", 7));
  other.Set("a", "keep");
  EXPECT_EQ(mine.Get("nested:b"), std::string("\0binary", 7));
  std::vector<HashWrite> writes{{HashWrite::Op::kIncrBy, "h", "n", "5"},
                                {HashWrite::Op::kIncrBy, "h", "n", "-2"},
                                {HashWrite::Op::kIncrByFloat, "h", "f", "0.25"},
                                {HashWrite::Op::kSet, "h", "s", "text"}};
  mine.WriteHashes(writes);
  EXPECT_EQ(mine.HGetAll("h"), (std::map<std::string, std::string>{{"n", "3"}, {"f", "0.25"}, {"s", "text"}}));
  EXPECT_TRUE(mine.HGetAll("absent").empty());
  EXPECT_TRUE(mine.Delete("a"));
  EXPECT_FALSE(mine.Delete("a"));
  EXPECT_EQ(mine.Get("a"), std::nullopt);

  EXPECT_EQ(mine.DeleteAll(), 2u);  // nested:b and h
  EXPECT_EQ(mine.Get("nested:b"), std::nullopt);
  EXPECT_EQ(other.Get("a"), "keep");
}

TEST_F(RedisTest, ErrorReplyIsNotRetryable) {
  RedisState redis(server_->address(), "ks:it.errors");
  redis.Set("plain", "x");
  try {
    redis.HGetAll("plain");  // WRONGTYPE
    FAIL() << "HGETALL of a string succeeded";
  } catch (const RedisError& e) {
    EXPECT_FALSE(e.retryable());
    EXPECT_THAT(e.what(), HasSubstr("WRONGTYPE"));
  }
  redis.Ping();  // the connection is still usable
}

TEST(RedisUnavailable, FailsFastWithRetryableErrorsAndBacksOff) {
  te::PortLease unused;  // reserved, nobody listens
  kube::FakeClock clock;
  RedisState redis("127.0.0.1:" + std::to_string(unused.port()), "ks:it.down", RedisOptions{}, clock);
  try {
    redis.Ping();
    FAIL() << "PING to a closed port succeeded";
  } catch (const RedisError& e) {
    EXPECT_TRUE(e.retryable());
    EXPECT_THAT(e.what(), HasSubstr("connect"));
  }
  // Within the backoff no connect is attempted at all.
  try {
    redis.Get("x");
    FAIL();
  } catch (const RedisError& e) {
    EXPECT_TRUE(e.retryable());
    EXPECT_THAT(e.what(), HasSubstr("next connect attempt in"));
  }
  clock.Advance(RedisOptions{}.initial_backoff);
  try {
    redis.Get("x");
    FAIL();
  } catch (const RedisError& e) {
    EXPECT_THAT(e.what(), HasSubstr("connect to"));  // a real attempt again
  }
}

// ---- Redis over TLS (docs/security.md, "TLS") ----

// A redis-server with the certificate of a pipeline's credentials, as the runners start
// it, and RedisState verifying it against the pipeline's CA.
class RedisTlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    credentials_ = std::make_unique<PipelineCredentials>(GenerateCredentials(
        {"pre-nats"}, {"pre-redis", "pre-redis.dr.svc"}, std::chrono::system_clock::now()));
    dir_ = std::make_unique<te::TempDir>("redis-tls");
    const auto write = [](const std::string& name, const std::string& content) {
      std::ofstream(dir_->path() / name, std::ios::binary) << content;
      return (dir_->path() / name).string();
    };
    te::RedisServerOptions options;
    options.tls = te::RedisServerOptions::Tls{write("redis.crt", credentials_->redis_cert_pem),
                                              write("redis.key", credentials_->redis_key_pem),
                                              write("ca.crt", credentials_->ca_pem)};
    server_ = std::make_unique<te::RedisServer>(options);
  }
  static void TearDownTestSuite() {
    server_.reset();
    dir_.reset();
    credentials_.reset();
  }

  static RedisOptions Verified(std::string name = "pre-redis") {
    RedisOptions options;
    options.ca_pem = credentials_->ca_pem;
    options.tls_server_name = std::move(name);
    return options;
  }

  // What a call through `options` throws ("" when it succeeds); the error must be
  // retryable (a refused server is like an unreachable one).
  static std::string ErrorOf(const RedisOptions& options) {
    RedisState redis(server_->tls_address(), "ks:it.tls", options);
    try {
      redis.Ping();
    } catch (const RedisError& e) {
      EXPECT_TRUE(e.retryable()) << e.what();
      return e.what();
    }
    return "";
  }

  static std::unique_ptr<PipelineCredentials> credentials_;
  static std::unique_ptr<te::TempDir> dir_;
  static std::unique_ptr<te::RedisServer> server_;
};
std::unique_ptr<PipelineCredentials> RedisTlsTest::credentials_;
std::unique_ptr<te::TempDir> RedisTlsTest::dir_;
std::unique_ptr<te::RedisServer> RedisTlsTest::server_;

TEST_F(RedisTlsTest, EveryCallWorksOverVerifiedTls) {
  RedisState redis(server_->tls_address(), "ks:it.tls", Verified());
  redis.Ping();
  // A value larger than one TLS record (16 KiB) and than one read, both ways.
  std::string big(300 * 1024, 'x');
  for (std::size_t i = 0; i < big.size(); i += 7) big[i] = static_cast<char>('a' + i % 26);
  redis.Set("big", big);
  EXPECT_EQ(redis.Get("big"), big);
  std::vector<HashWrite> writes;
  for (int i = 0; i < 2000; ++i) writes.push_back({HashWrite::Op::kIncrBy, "h", "f" + std::to_string(i % 10), "1"});
  redis.WriteHashes(writes);  // one pipeline of 2,000 commands
  EXPECT_EQ(redis.HGetAll("h").at("f3"), "200");
  EXPECT_EQ(redis.DeleteAll(), 2u);
  // What went over the TLS port is what the plain port sees: the same server.
  RedisState plain(server_->address(), "ks:it.tls");
  EXPECT_EQ(plain.Get("big"), std::nullopt);
  redis.Set("k", "v");
  EXPECT_EQ(plain.Get("k"), "v");
}

TEST_F(RedisTlsTest, TheClientRefusesAServerItCannotVerify) {
  EXPECT_THAT(ErrorOf(Verified("pre-nats")), HasSubstr("certificate verify failed"));  // another name
  EXPECT_THAT(ErrorOf(Verified("127.0.0.1")), Not(HasSubstr("verify failed")));       // the IP SAN is valid
  RedisOptions other_ca = Verified();
  other_ca.ca_pem = GenerateCredentials({"pre-nats"}, {"pre-redis"}, std::chrono::system_clock::now()).ca_pem;
  EXPECT_THAT(ErrorOf(other_ca), HasSubstr("certificate verify failed"));  // another pipeline's CA
  RedisOptions no_ca = Verified();
  no_ca.ca_pem = "not a certificate";
  EXPECT_THAT(ErrorOf(no_ca), HasSubstr("no PEM certificate"));
  // A plain-text client on the TLS port gets no answer: the server drops it.
  EXPECT_THAT(ErrorOf(RedisOptions{}), HasSubstr("redis"));
  EXPECT_FALSE(ErrorOf(RedisOptions{}).empty());
}

TEST_F(RedisTlsTest, ARestartedServerIsReconnectedOverTls) {
  RedisState redis(server_->tls_address(), "ks:it.tls-restart", Verified());
  redis.Set("k", "1");
  server_->Stop();
  server_->Start();  // data is gone (not persistent), the connection too
  // An idempotent call finds the connection dead and retries once on a new one.
  EXPECT_EQ(redis.Get("k"), std::nullopt);
  redis.Set("k", "2");
  EXPECT_EQ(redis.Get("k"), "2");
}

// ---- stats and exporter ----

TEST_F(RedisTest, StatsFlushesAreVisibleWithHgetallAndReadStats) {
  RedisState redis(server_->address(), "ks:it.stats");
  RedisStatsSink sink(redis);
  StatsRecorder stats(sink, kube::DefaultClock(), StatsOptions{100ms});
  for (int i = 0; i < 25; ++i) stats.RecordEvent("synchronizer", "apps/v1/deployments", "upsert");
  stats.RecordError("synchronizer", "v1/configmaps", "Invalid");
  stats.ObserveLag("apps/v1/deployments", 40ms);
  stats.ObserveLag("apps/v1/deployments", 3s);
  stats.SetObjectsInSync("apps/v1/deployments", 25);
  stats.SetLastResync("apps/v1/deployments", std::chrono::system_clock::time_point(1700000000s));
  stats.RecordBucketOperation("upload", "success");

  te::WaitFor([&] { return redis.HGetAll("stats:events")["synchronizer|apps/v1/deployments|upsert"] == "25"; },
              kEventually, "the background flush reaches Redis");
  te::WaitFor([&] { return !redis.HGetAll("stats:bucket").empty(); }, kEventually, "every delta flushed");
  EXPECT_EQ(redis.HGetAll("stats:objects")["apps/v1/deployments"], "25");

  StatsSnapshot s = ReadStats(redis);
  EXPECT_EQ((s.events[{"synchronizer", "apps/v1/deployments", "upsert"}]), 25u);
  EXPECT_EQ((s.errors[{"synchronizer", "v1/configmaps", "Invalid"}]), 1u);
  EXPECT_EQ(s.lag["apps/v1/deployments"].count(), 2u);
  EXPECT_EQ(s.CurrentLagSeconds("apps/v1/deployments"), 3.0);
  EXPECT_EQ(s.ObjectsInSync(), 25);
  EXPECT_EQ(s.LastResync(), std::chrono::system_clock::time_point(1700000000s));
  EXPECT_EQ((s.bucket_operations[{"upload", "success"}]), 1u);
}

// One sample line of the text exposition format 0.0.4:
//   name{label="value",...} number
struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

bool IsNameChar(char c, bool first, bool colon_ok) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || (colon_ok && c == ':') ||
         (!first && std::isdigit(static_cast<unsigned char>(c)));
}

// Parses `line` strictly; nullopt on any syntax error.
std::optional<Sample> ParseSample(std::string_view line) {
  Sample sample;
  std::size_t i = 0;
  auto name = [&](bool colon_ok) {
    std::string out;
    while (i < line.size() && IsNameChar(line[i], out.empty(), colon_ok)) out.push_back(line[i++]);
    return out;
  };
  sample.name = name(true);
  if (sample.name.empty()) return std::nullopt;
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (i < line.size() && line[i] != '}') {
      std::string label = name(false);
      if (label.empty() || i + 1 >= line.size() || line[i] != '=' || line[i + 1] != '"') return std::nullopt;
      i += 2;
      std::string value;
      for (; i < line.size() && line[i] != '"'; ++i) {
        if (line[i] == '\\') {
          if (++i >= line.size()) return std::nullopt;
          if (line[i] == 'n') {
            value.push_back('\n');
          } else if (line[i] == '\\' || line[i] == '"') {
            value.push_back(line[i]);
          } else {
            return std::nullopt;
          }
        } else {
          value.push_back(line[i]);
        }
      }
      if (i >= line.size()) return std::nullopt;
      ++i;  // closing quote
      if (!sample.labels.emplace(label, value).second) return std::nullopt;
      if (i < line.size() && line[i] == ',') ++i;
    }
    if (i >= line.size()) return std::nullopt;
    ++i;  // '}'
  }
  if (i >= line.size() || line[i] != ' ') return std::nullopt;
  std::string number(line.substr(i + 1));
  if (number == "+Inf") {
    sample.value = std::numeric_limits<double>::infinity();
  } else {
    char* end = nullptr;
    sample.value = std::strtod(number.c_str(), &end);
    if (number.empty() || end != number.c_str() + number.size()) return std::nullopt;
  }
  return sample;
}

// Every line is a HELP/TYPE comment or a sample; histogram buckets are cumulative and
// the +Inf bucket equals _count.
void ExpectValidExposition(const std::string& text) {
  std::istringstream lines(text);
  int samples = 0;
  std::map<std::string, double> previous_bucket;  // by series (labels without le)
  std::map<std::string, double> inf_bucket;
  std::map<std::string, double> counts;
  auto series = [](const Sample& s) {
    std::string key;
    for (const auto& [k, v] : s.labels) {
      if (k != "le") key += k + "=" + v + ",";
    }
    return key;
  };
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) continue;
    auto sample = ParseSample(line);
    ASSERT_TRUE(sample.has_value()) << "not a sample line: " << line;
    ++samples;
    if (sample->name.ends_with("_bucket")) {
      ASSERT_TRUE(sample->labels.contains("le")) << line;
      std::string key = series(*sample);
      EXPECT_GE(sample->value, previous_bucket[key]) << "not cumulative: " << line;
      previous_bucket[key] = sample->value;
      if (sample->labels["le"] == "+Inf") inf_bucket[key] = sample->value;
    } else if (sample->name.ends_with("_count")) {
      counts[series(*sample)] = sample->value;
    }
  }
  EXPECT_GT(samples, 0);
  EXPECT_EQ(inf_bucket, counts);
}

TEST_F(RedisTest, ExporterTextServedOverHttpParsesLineByLine) {
  RedisState redis(server_->address(), "ks:it.exporter");
  {
    RedisStatsSink sink(redis);
    StatsRecorder stats(sink, kube::DefaultClock());
    stats.RecordEvent("processor", "apps/v1/deployments", "upsert");
    stats.RecordError("synchronizer", "v1/configmaps", "Invalid");
    stats.ObserveLag("apps/v1/deployments", 120ms);
    stats.SetObjectsInSync("v1/configmaps", 4);
    stats.SetLastResync("v1/configmaps", std::chrono::system_clock::now());
    stats.RecordBucketOperation("delete", "error");
  }  // the destructor flushed

  common::HttpServer http({.address = "127.0.0.1:0"});
  ASSERT_NE(http.port(), 0);
  std::atomic<int> scrapes{0};
  http.Handle("/metrics", [&](const common::HttpRequest&) {
    ++scrapes;
    std::vector<LiveSyncStats> stats{{"dr-config", "pre", ReadStats(redis)}};
    return common::HttpResponse{200, std::string(kPrometheusContentType), RenderMetrics(stats)};
  });
  http.Handle("/healthz", [](const common::HttpRequest&) { return common::HttpResponse{200, "text/plain", "ok"}; });
  http.Handle("/fails", [](const common::HttpRequest&) -> common::HttpResponse {
    throw std::runtime_error("handler broke");
  });
  const std::string base = "http://127.0.0.1:" + std::to_string(http.port());

  HttpResult metrics = HttpGet(base + "/metrics");
  ASSERT_EQ(metrics.status, 200);
  ExpectValidExposition(metrics.body);
  EXPECT_THAT(metrics.body, HasSubstr(R"(kubesync_objects_in_sync{livesynchronization="pre",namespace="dr-config",group="",version="v1",resource="configmaps"} 4)"));
  EXPECT_THAT(metrics.body, HasSubstr(R"(kubesync_replication_lag_seconds_bucket{livesynchronization="pre",namespace="dr-config",group="apps",version="v1",resource="deployments",object_namespace="",le="0.25"} 1)"));
  EXPECT_EQ(scrapes.load(), 1);

  EXPECT_EQ(HttpGet(base + "/healthz").body, "ok");
  EXPECT_EQ(HttpGet(base + "/healthz?verbose=1").status, 200);
  EXPECT_EQ(HttpGet(base + "/healthz", /*head=*/true).status, 200);
  EXPECT_EQ(HttpGet(base + "/healthz/extra").status, 404);
  EXPECT_EQ(HttpGet(base + "/nothing").status, 404);
  HttpResult failed = HttpGet(base + "/fails");
  EXPECT_EQ(failed.status, 500);
  EXPECT_THAT(failed.body, HasSubstr("handler broke"));

  // Handlers can be replaced while serving.
  http.Handle("/healthz", [](const common::HttpRequest&) { return common::HttpResponse{503, "text/plain", "no"}; });
  EXPECT_EQ(HttpGet(base + "/healthz").status, 503);
}

TEST(HttpServer, SecondServerOnATakenPortFailsWithTheAddress) {
  common::HttpServer first({.address = "127.0.0.1:0"});
  const std::string taken = "127.0.0.1:" + std::to_string(first.port());
  try {
    common::HttpServer second({.address = taken});
    FAIL() << "two servers bound " << taken;
  } catch (const common::HttpServerError& e) {
    EXPECT_THAT(e.what(), HasSubstr(taken));
  }
  EXPECT_THROW(common::HttpServer({.address = "no-port"}), std::invalid_argument);
}

}  // namespace
}  // namespace ro::kubesync

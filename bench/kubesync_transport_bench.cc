// Throughput of the Kubesync transport against a real nats-server (JetStream, file
// storage) started by the harness, plus the per-event CPU cost of the envelope codec
// and of stats recording. Prints figures; asserts nothing.
//
//   kubesync_transport_bench [messages=100000] [payload_bytes=1024]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "ro/kube/clock.h"
#include "ro/kubesync/envelope.h"
#include "ro/kubesync/jetstream.h"
#include "ro/kubesync/stats.h"
#include "ro/testenv/testenv.h"

namespace {

using namespace std::chrono_literals;
using ro::kubesync::PipelineNames;
using Steady = std::chrono::steady_clock;

double Seconds(Steady::duration d) { return std::chrono::duration<double>(d).count(); }

void Report(const char* what, int messages, std::size_t payload, Steady::duration took) {
  double s = Seconds(took);
  std::printf("%-58s %8d msgs in %6.2f s = %9.0f msgs/s, %7.1f MiB/s\n", what, messages, s, messages / s,
              static_cast<double>(messages) * static_cast<double>(payload) / s / (1024.0 * 1024.0));
}

// Publishes `messages` payloads asynchronously, flushing every `flush_every` (the events
// listener's cadence: a resume point per batch) and once at the end.
void BenchPublish(ro::kubesync::NatsConnection& nats, const PipelineNames& names, int messages, std::size_t payload,
                  std::size_t max_in_flight, int flush_every) {
  auto publisher = nats.NewPublisher({.max_in_flight = max_in_flight});
  const std::string data(payload, 'x');
  auto start = Steady::now();
  std::uint64_t acked = 0;
  for (int i = 0; i < messages; ++i) {
    publisher->PublishAsync(names.events_subject(), data);
    if (flush_every > 0 && (i + 1) % flush_every == 0) acked += publisher->Flush(Steady::now() + 60s);
  }
  acked += publisher->Flush(Steady::now() + 60s);
  auto took = Steady::now() - start;
  char what[128];
  std::snprintf(what, sizeof(what), "publish async+acked (in flight %zu, flush every %d)", max_in_flight, flush_every);
  Report(what, static_cast<int>(acked), payload, took);
}

void BenchFetchAck(ro::kubesync::NatsConnection& nats, const PipelineNames& names, int messages, std::size_t payload,
                   int batch) {
  auto sub = nats.PullSubscribe(names.stream(), "processor");
  auto start = Steady::now();
  int received = 0;
  while (received < messages) {
    auto msgs = sub->Fetch(batch, 5s);
    if (msgs.empty()) break;
    for (auto& msg : msgs) msg.Ack();
    received += static_cast<int>(msgs.size());
  }
  auto took = Steady::now() - start;
  char what[128];
  std::snprintf(what, sizeof(what), "fetch + ack (batch %d)", batch);
  Report(what, received, payload, took);
}

void BenchCodec(int iterations) {
  ro::kubesync::Envelope e;
  e.gvr = {"apps", "v1", "deployments"};
  e.observed_at = std::chrono::system_clock::now();
  // A typical Deployment of ~1.5 KiB once serialized.
  e.object = nlohmann::json::parse(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web",
    "namespace":"shop","uid":"5eb6d1d1-b694-4679-a482-d453bcd5317f","resourceVersion":"61949","generation":3,
    "labels":{"app":"web","tier":"frontend","team":"payments"},"annotations":{"deployment.kubernetes.io/revision":"3"}},
    "spec":{"replicas":3,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},
    "spec":{"containers":[{"name":"web","image":"registry.example.com/shop/web:1.24.3","ports":[{"containerPort":8080}],
    "env":[{"name":"MODE","value":"production"},{"name":"LOG_LEVEL","value":"info"}],
    "resources":{"requests":{"cpu":"100m","memory":"128Mi"},"limits":{"cpu":"500m","memory":"256Mi"}},
    "readinessProbe":{"httpGet":{"path":"/healthz","port":8080},"periodSeconds":10}}]}}},
    "status":{"replicas":3,"readyReplicas":3,"availableReplicas":3}})");
  std::string encoded = ro::kubesync::Encode(e);
  auto start = Steady::now();
  std::size_t sink = 0;
  for (int i = 0; i < iterations; ++i) sink += ro::kubesync::Encode(e).size();
  auto encode = Steady::now() - start;
  start = Steady::now();
  for (int i = 0; i < iterations; ++i) sink += ro::kubesync::Decode(encoded).object.size();
  auto decode = Steady::now() - start;
  std::printf("envelope (%zu bytes): encode %.2f us, decode %.2f us per event (checksum %zu)\n", encoded.size(),
              Seconds(encode) * 1e6 / iterations, Seconds(decode) * 1e6 / iterations, sink);
}

class NullSink : public ro::kubesync::StatsSink {
 public:
  void Write(std::span<const ro::kubesync::HashWrite>) override {}
};

void BenchStats(int iterations) {
  NullSink sink;
  ro::kubesync::StatsRecorder stats(sink, ro::kube::DefaultClock());
  auto start = Steady::now();
  for (int i = 0; i < iterations; ++i) {
    stats.RecordEvent("synchronizer", "apps/v1/deployments", "upsert");
    stats.ObserveLag("apps/v1/deployments", std::chrono::milliseconds(i % 50));
  }
  auto took = Steady::now() - start;
  std::printf("stats: RecordEvent + ObserveLag %.0f ns per event\n", Seconds(took) * 1e9 / iterations);
}

}  // namespace

int main(int argc, char** argv) {
  const int messages = argc > 1 ? std::atoi(argv[1]) : 100000;
  const std::size_t payload = argc > 2 ? static_cast<std::size_t>(std::atoi(argv[2])) : 1024;
  try {
    BenchCodec(20000);
    BenchStats(1000000);

    ro::kubesync::OpenNatsLibrary();
    ro::testenv::NatsServer server;
    auto nats = ro::kubesync::NatsConnection::Connect(server.url(), "kubesync-transport-bench");
    struct Case {
      std::size_t max_in_flight;
      int flush_every;
      int fetch_batch;
    };
    const std::vector<Case> cases{{256, 0, 100}, {1024, 0, 500}, {4096, 0, 500}, {1024, 1000, 500}};
    int n = 0;
    for (const auto& c : cases) {
      PipelineNames names("bench", "case" + std::to_string(n++));
      nats->EnsureStream({.name = names.stream(), .subjects = names.stream_subjects(), .max_bytes = std::int64_t{4} << 30});
      nats->EnsureConsumer({.stream = names.stream(), .durable = "processor", .filter_subject = names.events_subject(),
                            .max_ack_pending = 10000});
      BenchPublish(*nats, names, messages, payload, c.max_in_flight, c.flush_every);
      BenchFetchAck(*nats, names, messages, payload, c.fetch_batch);
      nats->DeleteStream(names.stream());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench failed: %s\n", e.what());
    return 1;
  }
  return 0;
}

#include "ro/kubesync/component.h"

#include <curl/curl.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include <nlohmann/json.hpp>

#include "log_fields.h"
#include "metrics_exporter_component.h"
#include "ro/common/http_server.h"
#include "ro/common/log.h"
#include "ro/common/strings.h"
#include "ro/kube/client.h"
#include "ro/kube/clock.h"
#include "ro/kube/config.h"
#include "ro/kubesync/events_listener.h"
#include "ro/kubesync/pipeline_context.h"
#include "ro/kubesync/pipeline_security.h"
#include "ro/kubesync/pipeline_wire.h"
#include "ro/kubesync/processor.h"
#include "ro/kubesync/reconciler.h"
#include "ro/kubesync/retry.h"
#include "ro/kubesync/runner/pipeline_plan.h"
#include "ro/kubesync/run_component.h"
#include "ro/kubesync/redis_state.h"
#include "ro/kubesync/stats.h"
#include "ro/kubesync/synchronizer.h"
#include "ro/plugins/kubernetes/config_error.h"
#include "ro/plugins/s3_client.h"

namespace ro::kubesync {
namespace {

using nlohmann::json;
namespace k8s = plugins::kubernetes;

k8s::ComponentKind KindOf(ComponentId id) {
  switch (id) {
    case ComponentId::kEventsListener: return k8s::ComponentKind::kEventsListener;
    case ComponentId::kProcessor: return k8s::ComponentKind::kProcessor;
    case ComponentId::kSynchronizer: return k8s::ComponentKind::kSynchronizer;
    case ComponentId::kReconciler: return k8s::ComponentKind::kReconciler;
    case ComponentId::kMetricsExporter: return k8s::ComponentKind::kMetricsExporter;
  }
  return k8s::ComponentKind::kEventsListener;
}

// "<process id>-<pod>": $POD_NAME in a pod, else hostname-pid.
std::string ConsumerIdFor(ComponentId id) {
  std::string instance;
  if (const char* pod = std::getenv("POD_NAME"); pod != nullptr && *pod != '\0') {
    instance = pod;
  } else {
    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    instance = std::string(host) + "-" + std::to_string(getpid());
  }
  return std::string(ProcessId(id)) + "-" + instance;
}

// Waits for SIGTERM / SIGINT (blocked in every thread) and requests the stop.
class SignalWatcher {
 public:
  explicit SignalWatcher(std::stop_source& stop_source)
      : thread_([&stop_source](std::stop_token stop) {
          sigset_t set;
          sigemptyset(&set);
          sigaddset(&set, SIGTERM);
          sigaddset(&set, SIGINT);
          // Wake up regularly to notice our own shutdown.
          const timespec poll{0, 200'000'000};
          while (!stop.stop_requested()) {
            const int sig = sigtimedwait(&set, nullptr, &poll);
            if (sig == SIGTERM || sig == SIGINT) {
              ro::log::Logger().Info("stopping", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
              stop_source.request_stop();
              return;
            }
          }
        }) {}

 private:
  std::jthread thread_;
};

// The /healthz, /readyz (and /metrics) server(s); "0" disables an address.
struct ProbeServers {
  std::unique_ptr<common::HttpServer> health;
  std::unique_ptr<common::HttpServer> metrics;  // nullptr when disabled or shared
  common::HttpServer* metrics_server() { return metrics ? metrics.get() : health.get(); }
};

std::unique_ptr<common::HttpServer> Serve(const std::string& address) {
  if (address.empty() || address == "0") return nullptr;
  common::HttpServerOptions options;
  options.address = address;
  options.threads = 2;  // probes and one scraper
  return std::make_unique<common::HttpServer>(options);
}

std::unique_ptr<kube::DynamicClient> ClientFor(const ClusterRef& cluster, bool unlimited) {
  // The file holds a KubernetesCluster's Secret, written by the component runner.
  kube::RestConfig config = kube::LoadKubeconfigFile(cluster.kubeconfig_path, "", kube::KubeconfigOrigin::kSecret);
  // The synchronizer's load is bounded by its lanes (concurrentTasks requests in flight)
  // and the apiserver's own priority and fairness (429 -> NAK with backoff); a client
  // token bucket on top would only cap replication at an arbitrary rate.
  if (unlimited) config.qps = 0;
  return std::make_unique<kube::DynamicClient>(std::move(config));
}

}  // namespace

std::string_view ProcessId(ComponentId id) {
  switch (id) {
    case ComponentId::kEventsListener: return "eventslistener";
    case ComponentId::kProcessor: return "processor";
    case ComponentId::kSynchronizer: return "synchronizer";
    case ComponentId::kReconciler: return "reconciler";
    case ComponentId::kMetricsExporter: return "metricsexporter";
  }
  return "unknown";
}

std::string_view SubcommandName(ComponentId id) {
  switch (id) {
    case ComponentId::kEventsListener: return "events-listener";
    case ComponentId::kProcessor: return "processor";
    case ComponentId::kSynchronizer: return "synchronizer";
    case ComponentId::kReconciler: return "reconciler";
    case ComponentId::kMetricsExporter: return "metrics-exporter";
  }
  return "unknown";
}

PipelineContext::PipelineContext(KubesyncConfig file, ComponentId component, std::string consumer_id)
    : file_(std::move(file)),
      config_(k8s::ParseLiveSyncConfig(file_.spec_config ? *file_.spec_config : json::object())),
      names_(file_.live_synchronization.ns, file_.live_synchronization.name),
      stamp_(k8s::MakeStampInfo(file_.live_synchronization.ns, file_.live_synchronization.name,
                                file_.source_cluster.identity.ns.empty() ? file_.live_synchronization.ns
                                                                         : file_.source_cluster.identity.ns,
                                config_.source_name)),
      component_(component),
      consumer_id_(std::move(consumer_id)) {
  if (config_.bucket_name && !file_.bucket) {
    throw KubesyncConfigError("bucket", "spec.config.bucketName is \"" + *config_.bucket_name +
                                            "\" but the file describes no bucket");
  }
}

int PipelineContext::concurrent_tasks() const {
  return std::max(1, config_.components.Get(KindOf(component_)).concurrent_tasks);
}

json PipelineContext::SourceClusterField() const { return fields::Identity(file_.source_cluster.identity); }
json PipelineContext::DestinationClusterField() const { return fields::Identity(file_.destination_cluster.identity); }
json PipelineContext::BucketField() const {
  return file_.bucket ? fields::Identity(file_.bucket->identity) : json(nullptr);
}

bool SleepFor(std::chrono::nanoseconds d, std::stop_token stop) { return kube::DefaultClock().SleepFor(d, std::move(stop)); }

bool RetryUntilStopped(std::stop_token stop, common::Backoff& backoff, const std::function<void()>& attempt,
                       const std::function<void(const std::exception&, std::chrono::milliseconds)>& on_error) {
  while (!stop.stop_requested()) {
    try {
      attempt();
      backoff.Reset();
      return true;
    } catch (const std::exception& e) {
      const auto wait = backoff.Next();
      on_error(e, wait);
      if (!SleepFor(wait, stop)) return false;
    }
  }
  return false;
}

StreamConfig PipelineStreamConfig(const PipelineNames& names, int replicas) {
  StreamConfig config;
  config.name = names.stream();
  config.subjects = names.stream_subjects();
  config.replicas = replicas;
  return config;
}

ConsumerConfig ProcessorConsumerConfig(const PipelineNames& names) {
  ConsumerConfig config;
  config.stream = names.stream();
  config.durable = "processor";
  config.filter_subject = names.events_subject();
  config.ack_wait = kConsumerAckWait;
  return config;
}

ConsumerConfig SynchronizerConsumerConfig(const PipelineNames& names) {
  ConsumerConfig config;
  config.stream = names.stream();
  config.durable = "synchronizer";
  config.filter_subject = names.apply_subject();
  config.ack_wait = kConsumerAckWait;
  return config;
}

KeyValueConfig TombstoneBucketConfig(const PipelineNames& names, int replicas) {
  KeyValueConfig config;
  config.bucket = names.tombstone_bucket();
  config.ttl = 2 * PipelineStreamConfig(names, replicas).max_age;
  config.replicas = replicas;
  return config;
}

void EnsurePipeline(NatsConnection& nats, const PipelineNames& names, int replicas) {
  nats.EnsureStream(PipelineStreamConfig(names, replicas));
  nats.EnsureConsumer(ProcessorConsumerConfig(names));
  nats.EnsureConsumer(SynchronizerConsumerConfig(names));
}

bool WaitForConfig(const std::string& path, std::string_view expected, std::chrono::milliseconds timeout,
                   std::chrono::milliseconds poll) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool logged = false;
  while (true) {
    std::string found;
    // Missing or half-written: read again.
    if (const std::optional<std::string> text = common::ReadWholeFile(path)) {
      const nlohmann::json document = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
      if (document.is_object()) found = document.value(std::string(runner::kConfigHashField), "");
    }
    if (found == expected) return true;
    if (!logged) {
      ro::log::Logger().Info("waiting for the current configuration",
                             {{"config", path}, {"configHash", found}, {"expectedConfigHash", std::string(expected)}});
      logged = true;
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(poll);
  }
}

int RunComponent(const ComponentFlags& flags) {
  // Every thread started from here on inherits the mask: only SignalWatcher sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);  // a peer closing a socket is an error return, not death

  const std::string process_id(ProcessId(flags.component));
  const std::string consumer_id = ConsumerIdFor(flags.component);
  const bool has_consumer = flags.component == ComponentId::kProcessor || flags.component == ComponentId::kSynchronizer;
  ro::log::LogOptions log_options;
  log_options.process_id = process_id;
  if (has_consumer) log_options.process_fields = {{"consumerID", consumer_id}};
  try {
    log_options.level = flags.log_level.empty() ? "info" : flags.log_level;
    ro::log::Setup(log_options);
  } catch (const std::exception& e) {
    std::cerr << "kubesync: " << e.what() << "\n";
    return 1;
  }

  // A pod of the deployments runner knows which configuration it was made for; its
  // mounted Secret may still be the previous one (the kubelet's copy): wait for the
  // current one rather than run with the previous filters and transformations.
  if (const char* expected = std::getenv(std::string(runner::kConfigHashEnv).c_str()); expected != nullptr && *expected) {
    if (!WaitForConfig(flags.config_path, expected, std::chrono::minutes{10})) {
      ro::log::Logger().Error("the mounted configuration is not the pod's",
                              {{"config", flags.config_path}, {"expectedConfigHash", expected}});
      return 1;
    }
  }

  std::unique_ptr<PipelineContext> context;
  try {
    context = std::make_unique<PipelineContext>(LoadKubesyncConfig(flags.config_path), flags.component, consumer_id);
    if (flags.log_level.empty()) {
      log_options.level = std::string(k8s::LogLevelName(context->config().components.Get(KindOf(flags.component)).log_level));
      ro::log::Setup(log_options);
    }
  } catch (const k8s::ConfigError& e) {
    ro::log::Logger().Error("invalid configuration", {{"reason", e.reason()}, {"error", e.what()}});
    std::cerr << "kubesync: invalid spec.config: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    ro::log::Logger().Error("invalid configuration", {{"error", e.what()}});
    std::cerr << "kubesync: " << e.what() << "\n";
    return 1;
  }

  curl_global_init(CURL_GLOBAL_DEFAULT);
  std::stop_source stop_source;
  const std::stop_token stop = stop_source.get_token();
  SignalWatcher signals(stop_source);

  std::atomic<const Component*> running{nullptr};  // what /readyz asks
  ProbeServers servers;
  try {
    servers.health = Serve(flags.health_probe_bind_address);
    if (flags.metrics_bind_address != flags.health_probe_bind_address || !servers.health) {
      servers.metrics = Serve(flags.metrics_bind_address);
    }
  } catch (const std::exception& e) {
    ro::log::Logger().Error("error starting the HTTP server", {{"error", e.what()}});
    return 1;
  }
  if (servers.health) {
    servers.health->Handle("/healthz", [](const common::HttpRequest&) { return common::HttpResponse{200, "text/plain", "ok\n"}; });
    servers.health->Handle("/readyz", [&running](const common::HttpRequest&) {
      const Component* component = running.load();
      return component != nullptr && component->Ready() ? common::HttpResponse{200, "text/plain", "ok\n"}
                                                        : common::HttpResponse{503, "text/plain", "not ready\n"};
    });
  }

  const ro::log::Logger logger;
  // The effective settings of spec.config.components.<component>, as this pod runs them.
  logger.Info("starting", {{"liveSynchronization", context->names().id()},
                           {"config", flags.config_path},
                           {"concurrentTasks", context->concurrent_tasks()}});

  // The pipeline's credentials (docs/security.md); none is an explicit opt-out.
  ClientSecurity security;
  if (const std::optional<SecurityRef>& ref = context->file().security) {
    try {
      security = LoadClientSecurity(RoleOf(flags.component), ref->credentials_dir, ref->nats_server_name,
                                    ref->redis_server_name);
    } catch (const std::exception& e) {
      logger.Error("invalid configuration", {{"error", e.what()}});
      std::cerr << "kubesync: " << e.what() << "\n";
      return 1;
    }
  } else {
    logger.Warn("pipeline security is off: NATS and Redis are used without credentials or TLS",
                {{"config", flags.config_path}});
  }
  RedisState redis(context->file().redis_addr, context->names().redis_prefix(), WithSecurity(RedisOptions{}, security));
  std::unique_ptr<Component> component;
  std::unique_ptr<NatsConnection> nats;
  std::unique_ptr<StatsRecorder> stats;
  RedisStatsSink stats_sink(redis);
  std::unique_ptr<kube::DynamicClient> source;
  std::unique_ptr<kube::DynamicClient> destination;
  std::unique_ptr<plugins::S3Client> bucket;
  try {
    if (flags.component == ComponentId::kMetricsExporter) {
      common::HttpServer* server = servers.metrics_server();
      if (server == nullptr) throw std::invalid_argument("the metrics exporter needs --metrics-bind-address");
      component = std::make_unique<MetricsExporterComponent>(*context, redis, *server);
    } else {
      OpenNatsLibrary();
      common::Backoff backoff(std::chrono::milliseconds{200}, kMaxRetryDelay);
      const bool connected = RetryUntilStopped(
          stop, backoff,
          [&] {
            nats = NatsConnection::Connect(context->file().nats_url, consumer_id, WithSecurity(NatsOptions{}, security));
            EnsurePipeline(*nats, context->names(), context->file().nats_replicas);
          },
          [&](const std::exception& e, std::chrono::milliseconds wait) {
            logger.Error("error connecting to NATS", {{"error", e.what()}, {"retryInMs", wait.count()}});
          });
      if (!connected) return 0;  // stopped while waiting for NATS
      stats = std::make_unique<StatsRecorder>(stats_sink, kube::DefaultClock());
      switch (flags.component) {
        case ComponentId::kEventsListener:
          source = ClientFor(context->file().source_cluster, /*unlimited=*/false);
          destination = ClientFor(context->file().destination_cluster, /*unlimited=*/false);
          component = std::make_unique<EventsListener>(*context, *source, destination.get(), *nats, redis, *stats);
          break;
        case ComponentId::kProcessor:
          source = ClientFor(context->file().source_cluster, /*unlimited=*/false);
          if (context->file().bucket && context->config().bucket_name) {
            bucket = std::make_unique<plugins::S3Client>(BucketS3Config(*context->file().bucket));
          }
          component = std::make_unique<Processor>(*context, *source, *nats, *stats, bucket.get());
          break;
        case ComponentId::kSynchronizer:
          destination = ClientFor(context->file().destination_cluster, /*unlimited=*/true);
          component = std::make_unique<Synchronizer>(*context, *destination, *nats, *stats);
          break;
        case ComponentId::kReconciler:
          source = ClientFor(context->file().source_cluster, /*unlimited=*/false);
          destination = ClientFor(context->file().destination_cluster, /*unlimited=*/false);
          component = std::make_unique<Reconciler>(*context, *source, *destination, *nats, *stats);
          break;
        case ComponentId::kMetricsExporter:
          break;
      }
    }
  } catch (const std::exception& e) {
    logger.Error("invalid configuration", {{"error", e.what()}});
    std::cerr << "kubesync: " << e.what() << "\n";
    return 1;
  }

  running = component.get();
  component->Run(stop);
  running = nullptr;
  logger.Info("stopped");
  servers = ProbeServers{};  // no handler runs past this point
  component.reset();
  stats.reset();  // flushes the last statistics
  if (nats) {
    try {
      // A round trip: the server has processed every ack sent before it.
      nats->FlushCore(std::chrono::seconds{2});
    } catch (const NatsError& e) {
      logger.Warn("error flushing acknowledgements", {{"error", e.what()}});
    }
  }
  nats.reset();
  // cnats closes connections on its own threads and reports it through callbacks that
  // log: wait for them before the logger and the process go away.
  if (flags.component != ComponentId::kMetricsExporter) CloseNatsLibrary();
  stop_source.request_stop();
  return 0;
}

}  // namespace ro::kubesync

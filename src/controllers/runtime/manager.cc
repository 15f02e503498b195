#include "ro/runtime/manager.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <random>
#include <thread>
#include <utility>

#include <nlohmann/json.hpp>
#include <prometheus/registry.h>

#include "ro/common/http_server.h"
#include "ro/common/log.h"
#include "ro/common/time.h"
#include "ro/kube/client.h"
#include "ro/kube/config.h"
#include "ro/kube/event_recorder.h"
#include "ro/kube/leader_election.h"
#include "ro/kube/transport.h"
#include "ro/runtime/informer_cache.h"
#include "ro/runtime/metrics.h"

namespace ro::runtime {

using nlohmann::json;

namespace {

// How often a manager still waiting for its informers says so in the log.
constexpr std::chrono::seconds kSyncLogInterval{30};
// Longest wait for queued Events to reach the apiserver at shutdown: enough for a
// handful of POSTs, short against the graceful shutdown budget.
constexpr std::chrono::milliseconds kEventFlushTimeout{3000};
// Probes and one scraper: a few concurrent requests at most.
constexpr int kHttpThreads = 2;

std::unique_ptr<common::HttpServer> StartHttpServer(const std::string& address) {
  common::HttpServerOptions options;
  options.address = address;
  options.threads = kHttpThreads;
  return std::make_unique<common::HttpServer>(std::move(options));
}

common::HttpResponse TextResponse(int status, std::string body) {
  common::HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

std::string Hostname() {
  std::array<char, 256> name{};  // HOST_NAME_MAX is 64 on Linux; 256 is POSIX's limit
  if (gethostname(name.data(), name.size() - 1) != 0) return "unknown";
  return name.data();
}

std::string EnvOr(const char* name, std::string fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

// "<host>_<16 hex digits>": unique per process even for two instances on one host,
// the shape client-go and controller-runtime use.
std::string LeaderIdentity() {
  std::random_device random;
  std::uniform_int_distribution<uint64_t> digits;
  static constexpr char kHex[] = "0123456789abcdef";
  uint64_t value = digits(random);
  std::string suffix;
  for (int i = 0; i < 16; ++i, value >>= 4) suffix.push_back(kHex[value & 0xf]);
  return EnvOr("POD_NAME", Hostname()) + "_" + suffix;
}

}  // namespace

Manager::Manager(ManagerOptions options, kube::Clock& clock)
    : options_(std::move(options)), clock_(clock) {
  options_.Validate();
  const log::Logger log;
  license_ = LoadLicenseFile(options_.license_file, clock_.Now());
  if (license_.state == LicenseInfo::State::kValid) {
    json fields = {{"license", {{"file", options_.license_file},
                                {"sha256", license_.fingerprint}}}};
    if (!license_.licensee.empty()) fields["license"]["licensee"] = license_.licensee;
    if (license_.expires_at) {
      fields["license"]["expiresAt"] = common::FormatRfc3339(*license_.expires_at);
    }
    log.Info("license loaded", fields);
  } else {
    json fields = {{"license", {{"file", options_.license_file},
                                {"state", ToString(license_.state)},
                                {"reason", license_.summary}}}};
    if (!license_.fingerprint.empty()) fields["license"]["sha256"] = license_.fingerprint;
    log.Error("license not usable; running unlicensed", fields);
  }

  registry_ = std::make_unique<prometheus::Registry>();
  metrics_ = std::make_unique<ControllerMetrics>(*registry_);
  kube::RestConfig rest = kube::LoadDefaultConfig(options_.kubeconfig);
  std::string host = rest.server;  // rest_client_requests_total's host: "host:port"
  if (const std::size_t scheme = host.find("://"); scheme != std::string::npos) host.erase(0, scheme + 3);
  std::shared_ptr<kube::Transport> transport =
      WithRequestMetrics(kube::NewCurlTransport(rest), *metrics_, std::move(host));
  client_ = std::make_unique<kube::DynamicClient>(std::move(rest), std::move(transport));
  kube::EventRecorderOptions recorder_options;
  recorder_options.component = options_.binary_name;
  recorder_options.host = EnvOr("POD_NAME", Hostname());
  recorder_ = std::make_unique<kube::EventRecorder>(kube::NewEventSink(*client_),
                                                    std::move(recorder_options), clock_);
  InformerCacheOptions cache_options;
  cache_options.ns = options_.ns;
  cache_ = std::make_unique<InformerCache>(*client_, std::move(cache_options), clock_);
  log.Info("manager created", {{"server", client_->config().server},
                               {"namespace", options_.ns.empty() ? "(all)" : options_.ns},
                               {"leaderElect", options_.leader_elect}});
}

Manager::~Manager() {
  // Informer handlers point into the controllers: stop them before anything goes.
  cache_->Stop();
}

Controller& Manager::NewController(const std::string& name,
                                   std::unique_ptr<Reconciler> reconciler) {
  ControllerOptions controller_options;
  controller_options.name = name;
  controller_options.max_concurrent_reconciles = options_.max_concurrent_reconciles;
  controllers_.push_back(std::make_unique<Controller>(std::move(controller_options),
                                                      std::move(reconciler), *cache_,
                                                      *metrics_, clock_));
  return *controllers_.back();
}

bool Manager::Ready(std::string* detail) const {
  bool ready = true;
  std::string text;
  if (cache_->HasSynced()) {
    text += "[+]informers ok\n";
  } else {
    ready = false;
    const std::string unsynced = cache_->Unsynced();
    text += "[-]informers: not synced yet" + (unsynced.empty() ? "" : ": " + unsynced) + "\n";
  }
  if (options_.leader_elect) {
    if (leading_) {
      text += "[+]leader-election ok: leading\n";
    } else if (campaigning_) {
      text += "[+]leader-election ok: waiting for the Lease\n";
    } else {
      ready = false;
      text += "[-]leader-election: not campaigning\n";
    }
  }
  // Informational: the license is reported, never enforced.
  text += std::string(license_.state == LicenseInfo::State::kValid ? "[+]" : "[!]") +
          "license " + std::string(ToString(license_.state)) +
          (license_.state == LicenseInfo::State::kValid ? "" : ": " + license_.summary) + "\n";
  text += ready ? "readyz check passed\n" : "readyz check failed\n";
  if (detail != nullptr) *detail = std::move(text);
  return ready;
}

void Manager::RunControllers(std::stop_token stop) {
  const log::Logger log;
  while (!cache_->WaitForSync(stop, kSyncLogInterval)) {
    if (stop.stop_requested()) return;
    log.Warn("waiting for informers to sync", {{"unsynced", cache_->Unsynced()}});
  }
  std::vector<std::jthread> threads;
  threads.reserve(controllers_.size());
  for (const auto& controller : controllers_) {
    threads.emplace_back([c = controller.get(), stop] { c->Run(stop); });
  }
}  // joins: every controller returns once `stop` is requested

int Manager::RunWithLeaderElection(std::stop_token stop) {
  // A Lease request must fail before renew_deadline, or one hung request could outlast
  // it; half the deadline leaves room for one retry.
  kube::RestConfig lease_config = client_->config();
  lease_config.timeout = std::min(lease_config.timeout, options_.renew_deadline / 2);
  lease_config.max_retries = 1;
  kube::DynamicClient lease_client(std::move(lease_config));

  kube::LeaderElectionConfig config;
  config.identity = LeaderIdentity();
  config.lease_duration = options_.lease_duration;
  config.renew_deadline = options_.renew_deadline;
  config.retry_period = options_.retry_period;
  config.release_on_cancel = true;
  config.on_started_leading = [this](std::stop_token leading) {
    leading_ = true;
    log::Logger().Info("leading: starting controllers");
    RunControllers(leading);
  };
  config.on_stopped_leading = [this] { leading_ = false; };
  kube::LeaderElector elector(kube::NewLeaseLock(lease_client, options_.leader_election_namespace,
                                                 options_.leader_election_id),
                              std::move(config), clock_);
  campaigning_ = true;
  elector.Run(stop);
  campaigning_ = false;
  if (!stop.stop_requested()) {
    log::Logger().Error("leader election lost; exiting so that the pod restarts",
                        {{"lease", options_.leader_election_namespace + "/" +
                                       options_.leader_election_id}});
    return 1;
  }
  return 0;
}

int Manager::Run(std::stop_token stop) {
  const log::Logger log;
  std::unique_ptr<common::HttpServer> health;
  std::unique_ptr<common::HttpServer> metrics;
  if (options_.health_probe_bind_address != "0") {
    health = StartHttpServer(options_.health_probe_bind_address);
    health->Handle("/healthz", [](const common::HttpRequest&) { return TextResponse(200, "ok\n"); });
    health->Handle("/readyz", [this](const common::HttpRequest&) {
      std::string detail;
      const bool ready = Ready(&detail);
      return TextResponse(ready ? 200 : 503, std::move(detail));
    });
  }
  if (options_.metrics_bind_address != "0") {
    metrics = StartHttpServer(options_.metrics_bind_address);
    metrics->Handle("/metrics", [this](const common::HttpRequest&) {
      metrics_->RefreshQueueDepths();
      common::HttpResponse response = TextResponse(200, SerializeMetrics(*registry_));
      response.content_type = "text/plain; version=0.0.4; charset=utf-8";
      return response;
    });
  }
  log.Info("starting", {{"healthProbeAddress", options_.health_probe_bind_address},
                        {"metricsAddress", options_.metrics_bind_address},
                        {"controllers", controllers_.size()}});
  cache_->Start();

  int exit_code = 0;
  if (options_.leader_elect) {
    exit_code = RunWithLeaderElection(stop);
  } else {
    RunControllers(stop);
  }

  log.Info("shutting down");
  cache_->Stop();
  recorder_->WaitForIdle(kEventFlushTimeout);
  log.Info("stopped", {{"exitCode", exit_code}});
  return exit_code;
}

}  // namespace ro::runtime

#include "ro/testsupport/kubesync_process.h"

#include <curl/curl.h>
#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <future>
#include <sstream>
#include <stdexcept>
#include <utility>

namespace ro::testsupport {
namespace te = ro::testenv;
using nlohmann::json;

namespace {

std::size_t AppendBody(char* data, std::size_t size, std::size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

kubesync::ClusterRef ClusterRefFor(const te::KubeCluster& cluster, const std::string& name, const std::string& ns) {
  kubesync::ClusterRef ref;
  ref.identity.name = name;
  ref.identity.ns = ns;
  ref.identity.uid = "uid-" + name;
  ref.identity.resource_version = "1";
  ref.kubeconfig_path = cluster.kubeconfig_path().string();
  return ref;
}

}  // namespace

kubesync::KubesyncConfig MakeKubesyncConfig(const std::string& ls_namespace, const std::string& ls_name,
                                            const json& spec_config, const te::KubeCluster& source,
                                            const te::KubeCluster& destination, const std::string& nats_url,
                                            const std::string& redis_addr, const te::S3Server* s3,
                                            const std::string& bucket_name) {
  kubesync::KubesyncConfig config;
  config.live_synchronization.ns = ls_namespace;
  config.live_synchronization.name = ls_name;
  config.live_synchronization.uid = "uid-" + ls_name;
  config.spec_config = std::make_shared<const json>(spec_config);
  config.source_cluster = ClusterRefFor(source, spec_config.value("sourceName", "source"), ls_namespace);
  config.destination_cluster = ClusterRefFor(destination, spec_config.value("destinationName", "destination"), ls_namespace);
  if (s3 != nullptr) {
    kubesync::BucketRef bucket;
    bucket.identity.name = spec_config.value("bucketName", "bucket");
    bucket.identity.ns = ls_namespace;
    bucket.identity.uid = "uid-bucket";
    bucket.identity.resource_version = "1";
    bucket.provider = "generic";
    bucket.endpoint = s3->endpoint();
    bucket.use_ssl = false;
    bucket.region = s3->region();
    bucket.bucket_name = bucket_name;
    bucket.access_key_id = s3->access_key();
    bucket.secret_access_key = s3->secret_key();
    config.bucket = std::move(bucket);
  }
  config.nats_url = nats_url;
  config.redis_addr = redis_addr;
  return config;
}

void WriteKubesyncConfig(const std::filesystem::path& path, const kubesync::KubesyncConfig& config) {
  {
    std::ofstream out(path, std::ios::trunc);
    if (!out) throw te::TestEnvError("cannot write " + path.string());
    out << kubesync::ToJson(config).dump(2) << "\n";
  }
  chmod(path.c_str(), 0600);
}

HttpAnswer HttpGet(std::uint16_t port, const std::string& path) {
  HttpAnswer answer;
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + path;
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &AppendBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer.body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  if (curl_easy_perform(curl) == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &answer.status);
  curl_easy_cleanup(curl);
  return answer;
}

KubesyncProcess::KubesyncProcess(std::string subcommand, std::filesystem::path config,
                                 std::filesystem::path log_path, std::string log_level)
    : subcommand_(std::move(subcommand)),
      config_(std::move(config)),
      log_path_(std::move(log_path)),
      log_level_(std::move(log_level)) {}

KubesyncProcess::~KubesyncProcess() = default;

void KubesyncProcess::Start(std::chrono::milliseconds ready_timeout) {
  te::ProcessOptions options;
  options.name = "kubesync-" + subcommand_;
  options.argv = {(te::BinDir() / "kubesync").string(),
                  subcommand_,
                  "--config",
                  config_.string(),
                  "--health-probe-bind-address",
                  "127.0.0.1:" + std::to_string(health_port()),
                  "--metrics-bind-address",
                  "127.0.0.1:" + std::to_string(metrics_port()),
                  "--log-level",
                  log_level_};
  options.log_path = log_path_;
  // A graceful stop finishes in-flight work and the HTTP server needs ~2 s to close.
  options.stop_timeout = std::chrono::seconds{20};
  process_ = std::make_unique<te::Process>(std::move(options));
  process_->WaitUntilReady([&] { return HttpGet(health_port(), "/readyz").status == 200; }, ready_timeout,
                           "/readyz");
}

std::string KubesyncProcess::Stop() {
  if (!process_) return "";
  process_->Stop();
  last_exit_ = process_->ExitDescription();
  process_.reset();
  return last_exit_.value_or("");
}

void KubesyncProcess::Kill() {
  if (!process_) return;
  ::kill(process_->pid(), SIGKILL);
  process_->Stop();  // reaps
  process_.reset();
}

bool KubesyncProcess::Running() const { return process_ && process_->Running(); }

pid_t KubesyncProcess::pid() const { return process_ ? process_->pid() : -1; }

std::vector<json> KubesyncProcess::LogLines() const {
  std::vector<json> lines;
  std::ifstream in(log_path_);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    json parsed = json::parse(line, nullptr, /*allow_exceptions=*/false);
    lines.push_back(parsed.is_discarded() ? json{{"unparsed", line}} : std::move(parsed));
  }
  return lines;
}

std::optional<long> KubesyncProcess::PeakRssKb() const {
  if (!Running()) return std::nullopt;
  std::ifstream status("/proc/" + std::to_string(pid()) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return std::nullopt;
}

KubesyncPipeline::KubesyncPipeline(const std::filesystem::path& config, const std::filesystem::path& dir,
                                   std::vector<std::string> subcommands, std::string log_level) {
  for (std::string& name : subcommands) {
    const std::string sub = name.substr(0, name.find('#'));
    auto process = std::make_unique<KubesyncProcess>(sub, config, dir / (name + ".log"), log_level);
    processes_.emplace(std::move(name), std::move(process));
  }
}

void KubesyncPipeline::StartAll() {
  std::vector<std::future<void>> starts;
  for (auto& [name, process] : processes_) {
    starts.push_back(std::async(std::launch::async, [&process = *process] { process.Start(); }));
  }
  for (auto& start : starts) start.get();
}

std::string KubesyncProcess::LogTail(std::size_t lines) const {
  return testenv::TailOfFile(log_path_, lines);  // the file outlives the process
}

std::vector<std::string> KubesyncPipeline::StopAll() {
  std::vector<std::future<std::pair<std::string, std::string>>> stops;
  for (auto& [name, process] : processes_) {
    stops.push_back(std::async(std::launch::async, [&name = name, &process = *process] {
      return std::make_pair(name, process.Stop());
    }));
  }
  std::vector<std::string> bad;
  for (auto& stop : stops) {
    auto [name, exit] = stop.get();
    if (!exit.empty() && exit != "exit status 0") {
      bad.push_back(name + ": " + exit + "\n" + processes_.at(name)->LogTail(30));
    }
  }
  return bad;
}

KubesyncProcess& KubesyncPipeline::operator[](std::string_view subcommand) {
  const auto it = processes_.find(subcommand);
  if (it == processes_.end()) throw std::out_of_range("no component " + std::string(subcommand));
  return *it->second;
}

}  // namespace ro::testsupport

#include "ro/testenv/prometheus_server.h"

#include <curl/curl.h>

#include "net.h"
#include "ro/testenv/errors.h"

namespace ro::testenv {
using namespace std::chrono_literals;

namespace {
constexpr auto kRequestTimeout = 5s;

std::string UrlEncode(const std::string& text) {
  std::unique_ptr<char, decltype(&curl_free)> encoded(curl_easy_escape(nullptr, text.c_str(), static_cast<int>(text.size())),
                                                      curl_free);
  if (!encoded) throw TestEnvError("cannot URL-encode a Prometheus query");
  return encoded.get();
}
}  // namespace

PrometheusServer::PrometheusServer(PrometheusServerOptions options) : options_(std::move(options)), dir_("prometheus") {
  nlohmann::json config = options_.config;
  if (!options_.rules.is_null()) {
    WriteFile(dir_.path() / "rules.yml", options_.rules.dump(2));
    config["rule_files"] = nlohmann::json::array({(dir_.path() / "rules.yml").string()});
  }
  WriteFile(dir_.path() / "prometheus.yml", config.dump(2));
  ProcessOptions process;
  process.name = "prometheus";
  process.argv = {FindExecutable("prometheus", "run scripts/setup.sh (Debian package prometheus)").string(),
                  "--config.file=" + (dir_.path() / "prometheus.yml").string(),
                  "--storage.tsdb.path=" + (dir_.path() / "data").string(),
                  "--web.listen-address=127.0.0.1:" + std::to_string(port_.port())};
  process.log_path = dir_.path() / "prometheus.log";
  process_ = std::make_unique<Process>(std::move(process));
  const std::string ready = "http://127.0.0.1:" + std::to_string(port_.port()) + "/-/ready";
  process_->WaitUntilReady(
      [&] { return internal::HttpCall(internal::HttpRequest::Get(ready, 2s)).status == 200; },
      options_.start_timeout, "GET /-/ready = 200");
}

PrometheusServer::~PrometheusServer() {
  if (process_) process_->Stop();
}

nlohmann::json PrometheusServer::Get(const std::string& path_and_query) const {
  const internal::HttpResponse response = internal::HttpCall(
      internal::HttpRequest::Get("http://127.0.0.1:" + std::to_string(port_.port()) + path_and_query, kRequestTimeout));
  const nlohmann::json body = nlohmann::json::parse(response.body, nullptr, false);
  if (response.status != 200 || !body.is_object() || body.value("status", "") != "success") {
    throw TestEnvError("prometheus GET " + path_and_query + ": HTTP " + std::to_string(response.status) + " " +
                       response.body);
  }
  return body["data"];
}

nlohmann::json PrometheusServer::Query(const std::string& promql) const {
  return Get("/api/v1/query?query=" + UrlEncode(promql));
}

nlohmann::json PrometheusServer::Alerts() const { return Get("/api/v1/alerts")["alerts"]; }

}  // namespace ro::testenv

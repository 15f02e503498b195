// A Prometheus server (Debian package prometheus, 2.42) on 127.0.0.1 with the caller's
// scrape and rule configuration, its TSDB in a temporary directory, stopped by PID on
// destruction. For tests that check what a real Prometheus scrapes and which alerts fire.
// Not in testenv.h (it brings nlohmann/json): include it where needed.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "ro/testenv/paths.h"
#include "ro/testenv/ports.h"
#include "ro/testenv/process.h"

namespace ro::testenv {

struct PrometheusServerOptions {
  // prometheus.yml without rule_files (JSON is YAML), e.g.
  //   {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
  //    "scrape_configs": [{"job_name": "x", "static_configs": [{"targets": ["127.0.0.1:9090"]}]}]}
  nlohmann::json config = nlohmann::json::object();
  // Rule groups ({"groups": [...]}, the rules-file format); null = no rules.
  nlohmann::json rules = nullptr;
  // Deadline for GET /-/ready = 200.
  std::chrono::milliseconds start_timeout{60000};
};

// `prometheus --config.file=<dir>/prometheus.yml --storage.tsdb.path=<dir>/data
// --web.listen-address=127.0.0.1:<port>`, ready when /-/ready answers 200. Not
// thread-safe; not movable.
class PrometheusServer {
 public:
  // Writes the files, starts and waits until ready. Throws TestEnvError (command line +
  // log tail).
  explicit PrometheusServer(PrometheusServerOptions options);
  ~PrometheusServer();
  PrometheusServer(const PrometheusServer&) = delete;
  PrometheusServer& operator=(const PrometheusServer&) = delete;

  std::uint16_t port() const { return port_.port(); }
  const Process& process() const { return *process_; }

  // GET /api/v1/query?query=<promql> (instant query, now): the response's "data"
  // ({"resultType": ..., "result": [...]}). Throws TestEnvError when Prometheus does not
  // answer 200 with status "success" (the error text included).
  nlohmann::json Query(const std::string& promql) const;
  // GET /api/v1/alerts: the "alerts" array (each with labels, state "pending"|"firing").
  nlohmann::json Alerts() const;

 private:
  nlohmann::json Get(const std::string& path_and_query) const;

  PrometheusServerOptions options_;
  TempDir dir_;
  PortLease port_;
  std::unique_ptr<Process> process_;
};

}  // namespace ro::testenv

// kube_client_bench: figures for the hand-written Kubernetes client against a real
// kube-apiserver 1.20 + etcd from tests/testenv (printed, never asserted).
//
//   1. list + decode N ConfigMaps (default 10,000) with ListAll (500 per page) and with
//      one unpaged List: objects/s including JSON decoding into nlohmann::json;
//   2. create throughput with 1, 4, 16 and 32 concurrent workers through DynamicClient
//      (rate limit off), and in the same run through the leanest raw libcurl client
//      written here (one keep-alive easy handle per thread, body prebuilt, response
//      not parsed) — the gap is the client's own overhead.
//
// Usage: kube_client_bench [--list-objects=N] [--create-objects=N] [--repeat=R]
#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "ro/kube/client.h"
#include "ro/kube/config.h"
#include "ro/kube/errors.h"
#include "ro/kube/transport.h"
#include "ro/testenv/testenv.h"

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using ro::kube::DynamicClient;
using ro::kube::GroupVersionResource;

const GroupVersionResource kConfigMaps{"", "v1", "configmaps"};
const GroupVersionResource kNamespaces{"", "v1", "namespaces"};

struct Options {
  int list_objects = 10'000;
  int create_objects = 2'000;  // per (client, N) run
  int repeat = 3;              // list measurements; the best is printed with the median
};

Options ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](const char* prefix) -> const char* {
      return arg.rfind(prefix, 0) == 0 ? arg.c_str() + std::strlen(prefix) : nullptr;
    };
    if (const char* v = value("--list-objects=")) {
      o.list_objects = std::atoi(v);
    } else if (const char* v2 = value("--create-objects=")) {
      o.create_objects = std::atoi(v2);
    } else if (const char* v3 = value("--repeat=")) {
      o.repeat = std::max(1, std::atoi(v3));
    } else {
      throw std::invalid_argument("unknown argument " + arg);
    }
  }
  return o;
}

// A ConfigMap like a small application setting: ~300 bytes of JSON.
json ConfigMap(const std::string& name) {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"labels", {{"app", "bench"}, {"tier", "backend"}}}}},
          {"data",
           {{"log-level", "info"},
            {"endpoint", "https://service.internal.example:8443/api"},
            {"timeout", "30s"},
            {"feature-flags", "alpha=false,beta=true,gamma=true"}}}};
}

void CreateNamespace(DynamicClient& client, const std::string& name) {
  client.Create(kNamespaces, "",
                {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name}}}});
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Runs `count` creates spread over `workers` threads; `create(worker, i)` does one.
// Returns the wall time. Aborts on the first failure (a benchmark of errors is useless).
Clock::duration RunWorkers(int workers, int count,
                           const std::function<void(int worker, int index)>& create) {
  std::atomic<int> next{0};
  std::atomic<bool> failed{false};
  std::string failure;
  std::mutex failure_mu;
  const auto start = Clock::now();
  {
    std::vector<std::jthread> threads;
    for (int w = 0; w < workers; ++w) {
      threads.emplace_back([&, w] {
        for (int i = next++; i < count && !failed; i = next++) {
          try {
            create(w, i);
          } catch (const std::exception& e) {
            std::lock_guard lock(failure_mu);
            failure = e.what();
            failed = true;
          }
        }
      });
    }
  }
  const auto elapsed = Clock::now() - start;
  if (failed) throw std::runtime_error("create failed: " + failure);
  return elapsed;
}

// The leanest libcurl client for comparison: one keep-alive easy handle per worker,
// the same TLS and token, the body serialized once per object, the response discarded.
class RawCurlCreator {
 public:
  RawCurlCreator(const ro::kube::RestConfig& config, int workers) : config_(config) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    for (int w = 0; w < workers; ++w) {
      CURL* e = curl_easy_init();
      curl_blob ca{const_cast<char*>(config_.ca_pem.data()), config_.ca_pem.size(),
                   CURL_BLOB_NOCOPY};
      curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &ca);
      curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
      curl_easy_setopt(e, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
      curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &Discard);
      handles_.push_back(e);
    }
    headers_ = curl_slist_append(headers_, "Content-Type: application/json");
    headers_ = curl_slist_append(headers_, "Accept: application/json");
    headers_ = curl_slist_append(headers_, "Expect:");
    headers_ = curl_slist_append(headers_,
                                 ("Authorization: Bearer " + config_.bearer_token).c_str());
  }
  ~RawCurlCreator() {
    for (CURL* e : handles_) curl_easy_cleanup(e);
    curl_slist_free_all(headers_);
  }
  RawCurlCreator(const RawCurlCreator&) = delete;
  RawCurlCreator& operator=(const RawCurlCreator&) = delete;

  void Create(int worker, const std::string& ns, const std::string& body) {
    CURL* e = handles_[static_cast<size_t>(worker)];
    const std::string url = config_.server + "/api/v1/namespaces/" + ns + "/configmaps";
    curl_easy_setopt(e, CURLOPT_URL, url.c_str());
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers_);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body.data());
    const CURLcode rc = curl_easy_perform(e);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK || status != 201) {
      throw std::runtime_error(std::string("raw create: ") + curl_easy_strerror(rc) +
                               " HTTP " + std::to_string(status));
    }
  }

 private:
  static size_t Discard(char*, size_t size, size_t count, void*) { return size * count; }

  const ro::kube::RestConfig& config_;
  std::vector<CURL*> handles_;
  curl_slist* headers_ = nullptr;
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Options options = ParseArgs(argc, argv);
    std::printf("kube_client_bench: starting etcd + kube-apiserver 1.20 ...\n");
    ro::testenv::KubeClusterOptions cluster_options;
    cluster_options.name = "kubeclient-bench";
    ro::testenv::KubeCluster cluster(cluster_options);
    ro::kube::RestConfig config = ro::kube::LoadKubeconfigFile(cluster.kubeconfig_path().string());
    config.qps = 0;  // measure the client, not its rate limiter
    DynamicClient client(config);
    std::printf("cluster ready in %lld ms (%s)\n\n",
                static_cast<long long>(cluster.timings().total.count()),
                client.ServerVersion().c_str());

    // --- 1. list + decode ---------------------------------------------------------------
    const std::string list_ns = "bench-list";
    CreateNamespace(client, list_ns);
    const auto fill = RunWorkers(32, options.list_objects, [&](int, int i) {
      client.Create(kConfigMaps, list_ns, ConfigMap("cm-" + std::to_string(i)));
    });
    std::printf("filled %d ConfigMaps in %.2f s\n", options.list_objects, Seconds(fill));

    std::vector<double> paged_rates, unpaged_rates;
    size_t listed = 0;
    for (int r = 0; r < options.repeat; ++r) {
      ro::kube::ListOptions paged;
      paged.limit = 500;
      auto start = Clock::now();
      listed = client.ListAll(kConfigMaps, list_ns, paged).items.size();
      paged_rates.push_back(static_cast<double>(listed) / Seconds(Clock::now() - start));
      start = Clock::now();
      const size_t unpaged = client.List(kConfigMaps, list_ns).items.size();
      unpaged_rates.push_back(static_cast<double>(unpaged) / Seconds(Clock::now() - start));
    }
    // Where the unpaged List's time goes: the HTTP exchange alone, then JSON decoding.
    std::vector<double> fetch_ms, parse_ms;
    size_t body_bytes = 0;
    for (int r = 0; r < options.repeat; ++r) {
      ro::kube::HttpRequest request;
      request.path = DynamicClient::Path(kConfigMaps, list_ns);
      auto start = Clock::now();
      const ro::kube::HttpResponse response = client.transport().Do(request);
      fetch_ms.push_back(Seconds(Clock::now() - start) * 1e3);
      body_bytes = response.body.size();
      start = Clock::now();
      const json parsed = json::parse(response.body);
      parse_ms.push_back(Seconds(Clock::now() - start) * 1e3);
    }
    std::printf("\nlist + decode %zu ConfigMaps (%d runs)\n", listed, options.repeat);
    std::printf("  %-28s %12s %12s\n", "", "best obj/s", "median obj/s");
    std::printf("  %-28s %12.0f %12.0f\n", "ListAll, 500 per page",
                *std::max_element(paged_rates.begin(), paged_rates.end()), Median(paged_rates));
    std::printf("  %-28s %12.0f %12.0f\n", "List, one unpaged request",
                *std::max_element(unpaged_rates.begin(), unpaged_rates.end()),
                Median(unpaged_rates));
    std::printf("  unpaged body %.1f MB: HTTP exchange %.0f ms, json::parse %.0f ms (medians)\n",
                static_cast<double>(body_bytes) / 1e6, Median(fetch_ms), Median(parse_ms));

    // --- 2. create throughput ------------------------------------------------------------
    std::printf("\ncreate %d ConfigMaps per run (objects/s; DynamicClient parses every "
                "response, raw libcurl discards it)\n",
                options.create_objects);
    std::printf("  %8s %16s %16s %10s\n", "workers", "DynamicClient", "raw libcurl", "ratio");
    for (int workers : {1, 4, 16, 32}) {
      const std::string dyn_ns = "bench-dyn-" + std::to_string(workers);
      const std::string raw_ns = "bench-raw-" + std::to_string(workers);
      CreateNamespace(client, dyn_ns);
      CreateNamespace(client, raw_ns);
      const auto dyn = RunWorkers(workers, options.create_objects, [&](int, int i) {
        client.Create(kConfigMaps, dyn_ns, ConfigMap("cm-" + std::to_string(i)));
      });
      RawCurlCreator raw_client(config, workers);
      const auto raw = RunWorkers(workers, options.create_objects, [&](int w, int i) {
        raw_client.Create(w, raw_ns, ConfigMap("cm-" + std::to_string(i)).dump());
      });
      const double dyn_rate = options.create_objects / Seconds(dyn);
      const double raw_rate = options.create_objects / Seconds(raw);
      std::printf("  %8d %16.0f %16.0f %9.2fx\n", workers, dyn_rate, raw_rate,
                  dyn_rate / raw_rate);
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kube_client_bench: %s\n", e.what());
    return 1;
  }
}

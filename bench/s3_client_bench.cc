// S3Client throughput against a real s3rver on 127.0.0.1 (tests/testenv): small-object
// PUT and GET from one and from several threads (the pipeline uploads from several
// threads through one client), and a 1000-key ListObjectsV2 page. Figures include
// s3rver's own cost (Node, file system), so they bound the client from below.
#include <benchmark/benchmark.h>
#include <curl/curl.h>
#include <stdlib.h>

#include <atomic>
#include <memory>
#include <string>

#include "ro/plugins/s3_client.h"
#include "ro/testenv/s3_server.h"

namespace {

using ro::plugins::S3Client;

// Set in main() before any benchmark runs; read-only afterwards.
S3Client* g_client = nullptr;

// A Kubernetes object as the pipeline stores it is typically a few KiB of JSON.
constexpr std::size_t kObjectBytes = 4 * 1024;

void BM_PutObject(benchmark::State& state) {
  const std::string body(kObjectBytes, 'x');
  static std::atomic<int> counter{0};
  for (auto _ : state) {
    g_client->PutObject("put/" + std::to_string(counter++), body, "application/json");
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(kObjectBytes));
}
BENCHMARK(BM_PutObject)->Threads(1)->Threads(4)->Threads(8)->UseRealTime();

void BM_GetObject(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(g_client->GetObject("get/fixed"));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_GetObject)->Threads(1)->Threads(4)->UseRealTime();

void BM_ListThousandKeys(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(g_client->ListObjects("list/"));
  state.SetItemsProcessed(state.iterations() * 1000);
}
BENCHMARK(BM_ListThousandKeys)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  // s3rver's ListObjectsV2 continuation tokens need Node's legacy OpenSSL provider.
  ::setenv("NODE_OPTIONS", "--openssl-legacy-provider", /*overwrite=*/0);
  {
    ro::testenv::S3Server server;
    auto client = std::make_unique<S3Client>(ro::plugins::GenericBucketConfig(
        server.endpoint(), /*use_ssl=*/false, "bench",
        {server.access_key(), server.secret_key()}));
    client->CreateBucket();
    client->PutObject("get/fixed", std::string(kObjectBytes, 'g'), "application/json");
    for (int i = 0; i < 1000; ++i) client->PutObject("list/" + std::to_string(i), "v", "text/plain");
    g_client = client.get();
    benchmark::RunSpecifiedBenchmarks();
    g_client = nullptr;
  }
  benchmark::Shutdown();
  curl_global_cleanup();
  return 0;
}

// Self-test of testenv::FaultProxy: every fault it offers, through the real servers'
// own clients (ro::kube's DynamicClient for kube-apiserver, hiredis for Redis, cnats for
// NATS). The proxy sits in front of real servers; nothing here is a mock.
#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "ro/kube/client.h"
#include "ro/kube/config.h"
#include "ro/kube/errors.h"
#include "ro/testenv/testenv.h"

namespace {
namespace te = ro::testenv;
namespace kube = ro::kube;
using json = nlohmann::json;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

// Deadline of every poll: generous for 2 busy cores, never a measured time.
constexpr auto kEventually = 30s;

const kube::GroupVersionResource kConfigMaps{"", "v1", "configmaps"};
const kube::GroupVersionResource kNamespaces{"", "v1", "namespaces"};

json ConfigMap(const std::string& name) {
  return {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", name}}}, {"data", {{"k", "v"}}}};
}

// ---- HTTPS mode in front of kube-apiserver --------------------------------------------

class FaultProxyKubeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    try {
      te::KubeClusterOptions options;
      options.name = "faults";
      cluster_ = std::make_unique<te::KubeCluster>(options);
      proxy_ = te::FaultProxy::ForCluster(*cluster_);
    } catch (const std::exception& e) {
      setup_error_ = e.what();
    }
  }
  static void TearDownTestSuite() {
    proxy_.reset();
    cluster_.reset();
  }
  void SetUp() override {
    ASSERT_TRUE(setup_error_.empty()) << setup_error_;
    proxy_->Clear();
  }

  // A client through the proxy; `max_retries` of the transport (0: every fault shows).
  static std::unique_ptr<kube::DynamicClient> Client(int max_retries) {
    kube::RestConfig config = kube::LoadKubeconfigFile(proxy_->kubeconfig_path().string());
    config.max_retries = max_retries;
    config.timeout = 20s;
    return std::make_unique<kube::DynamicClient>(config);
  }

  // A fresh namespace (created through the proxy, no faults set).
  static std::string MakeNamespace(const std::string& name) {
    auto client = Client(0);
    client->Create(kNamespaces, "", {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name}}}});
    return name;
  }

  static std::unique_ptr<te::KubeCluster> cluster_;
  static std::unique_ptr<te::FaultProxy> proxy_;
  static std::string setup_error_;
};

std::unique_ptr<te::KubeCluster> FaultProxyKubeTest::cluster_;
std::unique_ptr<te::FaultProxy> FaultProxyKubeTest::proxy_;
std::string FaultProxyKubeTest::setup_error_;

// Runs DynamicClient::Watch on its own thread and records events and how it ended.
class WatchRun {
 public:
  WatchRun(kube::DynamicClient& client, std::string ns, std::string resource_version)
      : thread_([this, &client, ns = std::move(ns), rv = std::move(resource_version)](std::stop_token stop) {
          kube::WatchOptions options;
          options.resource_version = rv;
          try {
            client.Watch(
                kConfigMaps, ns, options,
                [this](kube::WatchEvent&& e) {
                  std::lock_guard lock(mu_);
                  if (e.type == kube::WatchEventType::kAdded) added_.insert(e.object["metadata"]["name"].get<std::string>());
                },
                stop);
          } catch (...) {
            std::lock_guard lock(mu_);
            error_ = std::current_exception();
          }
          done_ = true;
        }) {}

  bool Added(const std::string& name) const {
    std::lock_guard lock(mu_);
    return added_.contains(name);
  }
  bool done() const { return done_; }
  std::exception_ptr error() const {
    std::lock_guard lock(mu_);
    return error_;
  }

 private:
  mutable std::mutex mu_;
  std::set<std::string> added_;
  std::exception_ptr error_;
  std::atomic<bool> done_{false};
  std::jthread thread_;  // last: joined (after a stop request) before the fields go
};

TEST_F(FaultProxyKubeTest, ListCreateAndWatchGoThroughTheProxy) {
  auto client = Client(0);
  EXPECT_EQ(client->config().server, proxy_->url());
  EXPECT_EQ(client->ServerVersion().rfind("v1.20", 0), 0u);
  const std::string ns = MakeNamespace("fp-basic");
  client->Create(kConfigMaps, ns, ConfigMap("first"));
  kube::ObjectList list = client->List(kConfigMaps, ns);
  ASSERT_EQ(list.items.size(), 1u);
  EXPECT_EQ(list.items[0]["metadata"]["name"], "first");

  WatchRun watch(*client, ns, list.resource_version);
  auto other = Client(0);
  other->Create(kConfigMaps, ns, ConfigMap("second"));
  te::WaitFor([&] { return watch.Added("second"); }, kEventually, "the watch through the proxy to stream ADDED second");
  EXPECT_FALSE(watch.done());
  EXPECT_GE(proxy_->requests_forwarded(), 5u);
}

TEST_F(FaultProxyKubeTest, FailRuleAnswersWithStatusUntilCleared) {
  auto client = Client(0);
  const std::string ns = MakeNamespace("fp-fail");
  client->Create(kConfigMaps, ns, ConfigMap("target"));

  te::HttpFaultRule rule;
  rule.method = "GET";
  rule.path_regex = "^/api/v1/namespaces/" + ns + R"(/configmaps/target(\?|$))";
  rule.status = 503;
  te::FaultRuleId id = proxy_->FailRequests(rule);
  try {
    client->Get(kConfigMaps, ns, "target");
    ADD_FAILURE() << "GET through a 503 rule succeeded";
  } catch (const kube::ApiError& e) {
    EXPECT_EQ(e.http_code(), 503);
    EXPECT_EQ(e.reason(), kube::StatusReason::kServiceUnavailable);
    EXPECT_THAT(e.status_message(), HasSubstr("fault injected"));
  }
  EXPECT_EQ(proxy_->MatchCount(id), 1);
  // Other paths and other methods pass.
  EXPECT_EQ(client->List(kConfigMaps, ns).items.size(), 1u);
  client->Patch(kConfigMaps, ns, "target", kube::PatchType::kMergePatch, R"({"data":{"k":"w"}})");
  EXPECT_EQ(proxy_->MatchCount(id), 1);

  // The transport retries 5xx on GET (1 + max_retries attempts): an unlimited rule
  // answers every attempt.
  auto retrying = Client(2);
  EXPECT_THROW(retrying->Get(kConfigMaps, ns, "target"), kube::ApiError);
  EXPECT_EQ(proxy_->MatchCount(id), 1 + 3);

  proxy_->Clear();
  EXPECT_EQ(client->Get(kConfigMaps, ns, "target")["data"]["k"], "w");
  EXPECT_EQ(proxy_->MatchCount(id), 4) << "counters stay readable after Clear()";

  // A count-limited rule: the transport's retries get through once it is used up.
  rule.status = 500;
  rule.count = 2;
  te::FaultRuleId limited = proxy_->FailRequests(rule);
  EXPECT_EQ(retrying->Get(kConfigMaps, ns, "target")["metadata"]["name"], "target");
  EXPECT_EQ(proxy_->MatchCount(limited), 2);
}

TEST_F(FaultProxyKubeTest, TooManyRequestsCarriesRetryAfter) {
  auto client = Client(0);
  const std::string ns = MakeNamespace("fp-429");
  te::HttpFaultRule rule;
  rule.path_regex = "^/api/v1/namespaces/" + ns + "/configmaps";
  rule.status = 429;
  rule.retry_after_seconds = 7;
  te::FaultRuleId id = proxy_->FailRequests(rule);
  try {
    client->List(kConfigMaps, ns);
    ADD_FAILURE() << "LIST through a 429 rule succeeded";
  } catch (const kube::ApiError& e) {
    EXPECT_EQ(e.http_code(), 429);
    EXPECT_EQ(e.reason(), kube::StatusReason::kTooManyRequests);
    EXPECT_EQ(e.retry_after(), 7s);
  }
  EXPECT_EQ(proxy_->MatchCount(id), 1);
}

TEST_F(FaultProxyKubeTest, ResetRuleGivesTransportErrorAndClearRestoresService) {
  auto client = Client(0);
  const std::string ns = MakeNamespace("fp-reset");
  te::HttpFaultRule rule;
  rule.method = "POST";
  rule.path_regex = "/namespaces/" + ns + "/configmaps";
  te::FaultRuleId id = proxy_->ResetRequests(rule);
  EXPECT_THROW(client->Create(kConfigMaps, ns, ConfigMap("never")), kube::TransportError);
  EXPECT_EQ(proxy_->MatchCount(id), 1);
  EXPECT_TRUE(client->List(kConfigMaps, ns).items.empty()) << "the request never reached the apiserver";
  proxy_->Clear();
  client->Create(kConfigMaps, ns, ConfigMap("now"));
  EXPECT_EQ(client->List(kConfigMaps, ns).items.size(), 1u);
}

std::size_t ReadFromString(char* buf, std::size_t size, std::size_t count, void* user) {
  auto* s = static_cast<std::string*>(user);
  std::size_t n = std::min(size * count, s->size());
  std::memcpy(buf, s->data(), n);
  s->erase(0, n);
  return n;
}

std::size_t AppendToString(char* data, std::size_t size, std::size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

TEST_F(FaultProxyKubeTest, ChunkedRequestBodiesAreRejectedClearly) {
  // DynamicClient never sends chunked bodies; libcurl does for a POST of unknown size.
  std::string body = ConfigMap("chunked").dump();
  std::string answer;
  std::string url = proxy_->url() + "/api/v1/namespaces/default/configmaps";
  std::string auth = "Authorization: Bearer " + cluster_->admin_token();
  std::string ca = cluster_->ca_path().string();
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  CURL* c = curl.get();
  curl_slist* headers = curl_slist_append(nullptr, "Transfer-Encoding: chunked");
  headers = curl_slist_append(headers, "Content-Type: application/json");
  headers = curl_slist_append(headers, auth.c_str());
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_READFUNCTION, &ReadFromString);
  curl_easy_setopt(c, CURLOPT_READDATA, &body);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &AppendToString);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &answer);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_CAINFO, ca.c_str());
  curl_easy_setopt(c, CURLOPT_PROXY, "");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
  CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(headers);
  ASSERT_EQ(rc, CURLE_OK) << curl_easy_strerror(rc);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  EXPECT_EQ(status, 501);
  json parsed = json::parse(answer);
  EXPECT_EQ(parsed["kind"], "Status");
  EXPECT_THAT(parsed["message"].get<std::string>(), HasSubstr("chunked"));
}

TEST_F(FaultProxyKubeTest, ResetConnectionsBreaksAWatch) {
  auto client = Client(0);
  const std::string ns = MakeNamespace("fp-resetwatch");
  WatchRun watch(*client, ns, client->List(kConfigMaps, ns).resource_version);
  auto other = Client(0);
  other->Create(kConfigMaps, ns, ConfigMap("seen"));
  te::WaitFor([&] { return watch.Added("seen"); }, kEventually, "the watch to stream ADDED seen");
  proxy_->ResetConnections();
  te::WaitFor([&] { return watch.done(); }, kEventually, "the watch to end after ResetConnections");
  ASSERT_TRUE(watch.error());
  EXPECT_THROW(std::rethrow_exception(watch.error()), kube::TransportError);
  EXPECT_EQ(other->Get(kConfigMaps, ns, "seen")["metadata"]["name"], "seen") << "new connections work";
}

TEST_F(FaultProxyKubeTest, LatencyAndBlackholeDelayRequests) {
  auto client = Client(0);
  const std::string ns = MakeNamespace("fp-slow");
  // Lower bounds only: the proxy holds the data at least this long.
  proxy_->SetLatency(200ms);
  auto start = Clock::now();
  client->List(kConfigMaps, ns);
  EXPECT_GE(Clock::now() - start, 400ms) << "request and response each held 200 ms";
  proxy_->SetLatency(0ms);

  proxy_->Blackhole(1500ms);
  start = Clock::now();
  client->List(kConfigMaps, ns);  // stalls, then traffic flows again
  EXPECT_GE(Clock::now() - start, 1000ms);
}

// ---- TCP mode in front of redis-server and nats-server ---------------------------------

class FaultProxyTcpTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    try {
      redis_ = std::make_unique<te::RedisServer>();
      nats_ = std::make_unique<te::NatsServer>();
    } catch (const std::exception& e) {
      setup_error_ = e.what();
    }
  }
  static void TearDownTestSuite() {
    nats_.reset();
    redis_.reset();
    nats_Close();
  }
  void SetUp() override { ASSERT_TRUE(setup_error_.empty()) << setup_error_; }

  static std::unique_ptr<te::RedisServer> redis_;
  static std::unique_ptr<te::NatsServer> nats_;
  static std::string setup_error_;
};

std::unique_ptr<te::RedisServer> FaultProxyTcpTest::redis_;
std::unique_ptr<te::NatsServer> FaultProxyTcpTest::nats_;
std::string FaultProxyTcpTest::setup_error_;

struct RedisDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
using Redis = std::unique_ptr<redisContext, RedisDeleter>;

Redis RedisConnect(std::uint16_t port) {
  timeval timeout{5, 0};
  return Redis(redisConnectWithTimeout("127.0.0.1", port, timeout));
}

// "PONG", or the error of the context.
std::string Ping(redisContext* c) {
  auto* reply = static_cast<redisReply*>(redisCommand(c, "PING"));
  if (reply == nullptr) return std::string("error: ") + c->errstr;
  std::string out(reply->str, reply->len);
  freeReplyObject(reply);
  return out;
}

TEST_F(FaultProxyTcpTest, RedisThroughProxyAndResetConnections) {
  te::FaultProxy proxy("127.0.0.1", redis_->port());
  Redis c = RedisConnect(proxy.port());
  ASSERT_TRUE(c && c->err == 0) << (c ? c->errstr : "no context");
  EXPECT_EQ(Ping(c.get()), "PONG");
  proxy.ResetConnections();
  EXPECT_THAT(Ping(c.get()), HasSubstr("error"));
  Redis again = RedisConnect(proxy.port());
  ASSERT_TRUE(again && again->err == 0);
  EXPECT_EQ(Ping(again.get()), "PONG");
  EXPECT_EQ(proxy.connections_accepted(), 2u);
}

// A raw TCP connection to 127.0.0.1:port (blocking), or -1.
int RawConnect(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Whatever arrives on `fd` within `wait` ("" when nothing).
std::string ReadFor(int fd, std::chrono::milliseconds wait) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(wait.count())) <= 0) return "";
  char buf[256];
  ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
}

TEST_F(FaultProxyTcpTest, BlackholeStallsThenTrafficFlowsAgain) {
  te::FaultProxy proxy("127.0.0.1", redis_->port());
  int fd = RawConnect(proxy.port());
  ASSERT_GE(fd, 0);
  std::string answer;
  ASSERT_EQ(::send(fd, "PING\r\n", 6, MSG_NOSIGNAL), 6);
  te::WaitFor([&] { return (answer += ReadFor(fd, 100ms)).find("\r\n") != std::string::npos; }, kEventually, "PONG");
  EXPECT_EQ(answer, "+PONG\r\n");

  proxy.Blackhole(10s);
  ASSERT_EQ(::send(fd, "PING\r\n", 6, MSG_NOSIGNAL), 6);
  EXPECT_EQ(ReadFor(fd, 500ms), "") << "no byte flows during the blackhole";
  int second = RawConnect(proxy.port());  // accepted, and stalled as well
  ASSERT_GE(second, 0);
  ASSERT_EQ(::send(second, "PING\r\n", 6, MSG_NOSIGNAL), 6);
  te::WaitFor([&] { return proxy.connections_accepted() == 2; }, kEventually, "the second connection to be accepted");
  EXPECT_EQ(ReadFor(second, 200ms), "");

  proxy.Blackhole(0ms);  // ends it now; the held PINGs are delivered
  answer.clear();
  te::WaitFor([&] { return (answer += ReadFor(fd, 100ms)).find("\r\n") != std::string::npos; }, kEventually,
              "the held PING to be answered after the blackhole");
  EXPECT_EQ(answer, "+PONG\r\n");
  answer.clear();
  te::WaitFor([&] { return (answer += ReadFor(second, 100ms)).find("\r\n") != std::string::npos; }, kEventually,
              "the stalled connection to be answered after the blackhole");
  EXPECT_EQ(answer, "+PONG\r\n");
  ::close(second);
  ::close(fd);
}

TEST_F(FaultProxyTcpTest, LatencyDelaysBothDirections) {
  te::FaultProxy proxy("127.0.0.1", redis_->port());
  Redis c = RedisConnect(proxy.port());
  ASSERT_TRUE(c && c->err == 0);
  proxy.SetLatency(150ms);
  auto start = Clock::now();
  EXPECT_EQ(Ping(c.get()), "PONG");
  EXPECT_GE(Clock::now() - start, 300ms);  // a lower bound: the proxy held each way
  proxy.Clear();
  EXPECT_EQ(Ping(c.get()), "PONG");
}

TEST_F(FaultProxyTcpTest, NatsReconnectsAfterResetConnections) {
  te::FaultProxy proxy("127.0.0.1", nats_->port());
  std::atomic<int> reconnects{0};
  natsOptions* opts = nullptr;
  ASSERT_EQ(natsOptions_Create(&opts), NATS_OK);
  std::string url = "nats://" + proxy.address();
  natsOptions_SetURL(opts, url.c_str());
  natsOptions_SetMaxReconnect(opts, -1);
  natsOptions_SetReconnectWait(opts, 100);
  natsOptions_SetReconnectedCB(
      opts, [](natsConnection*, void* closure) { ++*static_cast<std::atomic<int>*>(closure); }, &reconnects);
  natsConnection* nc = nullptr;
  ASSERT_EQ(natsConnection_Connect(&nc, opts), NATS_OK) << nats_GetLastError(nullptr);
  natsSubscription* sub = nullptr;
  ASSERT_EQ(natsConnection_SubscribeSync(&sub, nc, "faultproxy.test"), NATS_OK);
  auto round_trip = [&](const char* payload) {
    if (natsConnection_PublishString(nc, "faultproxy.test", payload) != NATS_OK) return std::string("publish failed");
    natsMsg* msg = nullptr;
    if (natsSubscription_NextMsg(&msg, sub, 10000) != NATS_OK) return std::string("no message");
    std::string data(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
    natsMsg_Destroy(msg);
    return data;
  };
  EXPECT_EQ(round_trip("before"), "before");

  proxy.ResetConnections();
  te::WaitFor([&] { return reconnects.load() >= 1; }, kEventually, "cnats to reconnect through the proxy");
  EXPECT_EQ(round_trip("after"), "after");
  EXPECT_GE(proxy.connections_accepted(), 2u);

  natsSubscription_Destroy(sub);
  natsConnection_Destroy(nc);
  natsOptions_Destroy(opts);
}

}  // namespace

// Self-test of the test-server harness (tests/testenv): every server kind answers a real
// round trip through its own client, start-up failures fail fast with the server's log,
// and no process outlives the harness objects.
#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include <nats/nats.h>
#include <signal.h>
#include <zookeeper/zookeeper.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ro/testenv/testenv.h"

namespace {
namespace fs = std::filesystem;
namespace te = ro::testenv;
using namespace std::chrono_literals;
using ::testing::HasSubstr;

// Deadline for asynchronous effects: garbage collection and namespace deletion take
// 1-5 s after the controller manager's informers synced; 60 s tolerates 2 busy cores.
constexpr auto kEventually = 60s;

// True when no process with this PID exists any more (killed and reaped).
bool ProcessGone(pid_t pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }

std::string ConfigMapYaml(const std::string& name, const std::string& value) {
  return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\n  namespace: default\ndata:\n  value: " +
         value + "\n";
}

void PrintTiming(const std::string& what, std::chrono::milliseconds took) {
  std::cout << "[timing] " << what << ": " << took.count() << " ms\n";
}

// ---- Kubernetes: two independent clusters, the second with kube-controller-manager ----

class KubeClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    try {
      te::KubeClusterOptions first;
      first.name = "first";
      first_ = std::make_unique<te::KubeCluster>(first);
      te::KubeClusterOptions second;
      second.name = "second";
      second.with_controller_manager = true;
      second.users = {{"alice", {"devs"}}};
      second_ = std::make_unique<te::KubeCluster>(second);
      for (auto* c : {first_.get(), second_.get()}) {
        const auto& t = c->timings();
        PrintTiming("cluster " + c->name() + " total", t.total);
        PrintTiming("cluster " + c->name() + " etcd", t.etcd);
        PrintTiming("cluster " + c->name() + " certs", t.certs);
        PrintTiming("cluster " + c->name() + " kube-apiserver", t.apiserver);
        PrintTiming("cluster " + c->name() + " kube-controller-manager", t.controller_manager);
      }
    } catch (const std::exception& e) {
      setup_error_ = e.what();
    }
  }

  static void TearDownTestSuite() {
    std::vector<pid_t> pids;
    for (auto* c : {first_.get(), second_.get()}) {
      if (c != nullptr && c->apiserver().process() != nullptr) pids.push_back(c->apiserver().process()->pid());
    }
    first_.reset();
    second_.reset();
    for (pid_t pid : pids) EXPECT_TRUE(ProcessGone(pid)) << "kube-apiserver " << pid << " survived its cluster";
  }

  void SetUp() override {
    if (!setup_error_.empty()) GTEST_FAIL() << setup_error_;
  }

  static std::unique_ptr<te::KubeCluster> first_;
  static std::unique_ptr<te::KubeCluster> second_;
  static std::string setup_error_;
};
std::unique_ptr<te::KubeCluster> KubeClusterTest::first_;
std::unique_ptr<te::KubeCluster> KubeClusterTest::second_;
std::string KubeClusterTest::setup_error_;

TEST_F(KubeClusterTest, EachClusterStoresAndServesItsOwnConfigMap) {
  first_->Kubectl({"apply", "-f", "-"}, ConfigMapYaml("greeting", "from-first"));
  second_->Kubectl({"apply", "-f", "-"}, ConfigMapYaml("greeting", "from-second"));

  EXPECT_EQ(first_->Kubectl({"get", "configmap", "greeting", "-o", "jsonpath={.data.value}"}), "from-first");
  EXPECT_EQ(second_->Kubectl({"get", "configmap", "greeting", "-o", "jsonpath={.data.value}"}), "from-second");
  EXPECT_NE(first_->server_url(), second_->server_url());
}

TEST_F(KubeClusterTest, KubeconfigVerifiesTheServerWithTheClusterCa) {
  std::string kubeconfig = te::ReadFile(first_->kubeconfig_path());
  EXPECT_THAT(kubeconfig, HasSubstr("certificate-authority-data: "));
  EXPECT_THAT(kubeconfig, ::testing::Not(HasSubstr("insecure-skip-tls-verify")));
  EXPECT_THAT(first_->ca_pem(), HasSubstr("BEGIN CERTIFICATE"));
  // The other cluster's CA must not verify this server: each cluster has its own CA.
  fs::path crossed = first_->dir() / "crossed.kubeconfig";
  second_->WriteKubeconfig(crossed, second_->admin_token());
  std::string config = te::ReadFile(crossed);
  auto at = config.find(second_->server_url());
  config.replace(at, second_->server_url().size(), first_->server_url());
  te::WriteFile(crossed, config);
  te::RunOptions options;
  options.check = false;
  auto result = te::RunCommand({"kubectl", "--kubeconfig=" + crossed.string(), "get", "ns"}, options);
  EXPECT_NE(result.exit_code, 0);
  EXPECT_THAT(result.err, HasSubstr("certificate"));
}

TEST_F(KubeClusterTest, ControllerManagerGarbageCollectsDependentOfDeletedOwner) {
  second_->Kubectl({"apply", "-f", "-"}, ConfigMapYaml("gc-owner", "owner"));
  std::string uid = second_->Kubectl({"get", "configmap", "gc-owner", "-o", "jsonpath={.metadata.uid}"});
  ASSERT_FALSE(uid.empty());
  second_->Kubectl({"apply", "-f", "-"},
                   "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: gc-dependent\n  namespace: default\n"
                   "  ownerReferences:\n  - apiVersion: v1\n    kind: ConfigMap\n    name: gc-owner\n    uid: " +
                       uid + "\ndata:\n  value: dependent\n");

  second_->Kubectl({"delete", "configmap", "gc-owner", "--wait=false"});

  te::WaitFor(
      [] {
        return second_->Kubectl({"get", "configmap", "gc-dependent", "--ignore-not-found", "-o", "name"}).empty();
      },
      kEventually, "the garbage collector to delete configmap gc-dependent");
}

TEST_F(KubeClusterTest, ControllerManagerCompletesNamespaceDeletion) {
  second_->Kubectl({"create", "namespace", "doomed"});
  second_->Kubectl({"create", "configmap", "inside", "-n", "doomed", "--from-literal=a=b"});

  second_->Kubectl({"delete", "namespace", "doomed", "--wait=false"});

  te::WaitFor([] { return second_->Kubectl({"get", "namespace", "doomed", "--ignore-not-found", "-o", "name"}).empty(); },
              kEventually, "namespace doomed to be deleted");
}

TEST_F(KubeClusterTest, ExtraUserIsAuthenticatedByTokenAndAuthorizedByRbac) {
  te::RunOptions no_check;
  no_check.check = false;
  std::vector<std::string> as_alice = {"kubectl", "--kubeconfig=" + second_->KubeconfigFor("alice").string(), "get",
                                       "configmaps", "-n", "default", "-o", "name"};
  auto denied = te::RunCommand(as_alice, no_check);
  EXPECT_NE(denied.exit_code, 0);
  EXPECT_THAT(denied.err, HasSubstr("User \"alice\" cannot list resource \"configmaps\""));

  second_->Kubectl({"create", "role", "configmap-reader", "-n", "default", "--verb=get,list", "--resource=configmaps"});
  second_->Kubectl({"create", "rolebinding", "devs-read", "-n", "default", "--role=configmap-reader", "--group=devs"});

  te::WaitFor([&] { return te::RunCommand(as_alice, no_check).exit_code == 0; }, kEventually,
              "RBAC to let group devs list configmaps");
}

TEST_F(KubeClusterTest, WritesThroughExtraApiserverAreSeenByRestartedApiserverAfterCompaction) {
  pid_t old_pid = first_->apiserver().process()->pid();
  std::uint16_t old_port = first_->apiserver().port();
  first_->StopApiserver();
  EXPECT_FALSE(first_->apiserver().running());
  EXPECT_TRUE(ProcessGone(old_pid));

  te::Apiserver& extra = first_->StartExtraApiserver();
  EXPECT_NE(extra.port(), old_port);
  te::RunCommand({"kubectl", "--kubeconfig=" + extra.kubeconfig_path().string(), "create", "configmap",
                  "written-while-down", "-n", "default", "--from-literal=value=yes"});
  std::int64_t compacted = first_->CompactEtcd();
  EXPECT_GT(compacted, 0);

  first_->StartApiserver();
  EXPECT_EQ(first_->apiserver().port(), old_port);
  EXPECT_EQ(first_->Kubectl({"get", "configmap", "written-while-down", "-o", "jsonpath={.data.value}"}), "yes");
  PrintTiming("kube-apiserver restart", first_->apiserver().startup_time());
  PrintTiming("extra kube-apiserver start", extra.startup_time());

  pid_t extra_pid = extra.process()->pid();
  extra.Stop();
  EXPECT_TRUE(ProcessGone(extra_pid));
}

// ---- NATS JetStream ---------------------------------------------------------------------

TEST(NatsServerTest, JetStreamStreamStoresAndReturnsAMessage) {
  te::NatsServer nats;
  PrintTiming("nats-server", nats.startup_time());
  natsConnection* nc = nullptr;
  ASSERT_EQ(natsConnection_ConnectTo(&nc, nats.url().c_str()), NATS_OK) << nats_GetLastError(nullptr);
  jsCtx* js = nullptr;
  ASSERT_EQ(natsConnection_JetStream(&js, nc, nullptr), NATS_OK);
  jsStreamConfig config;
  jsStreamConfig_Init(&config);
  config.Name = "SELFTEST";
  const char* subjects[] = {"selftest.>"};
  config.Subjects = subjects;
  config.SubjectsLen = 1;
  jsStreamInfo* info = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  ASSERT_EQ(js_AddStream(&info, js, &config, nullptr, &jerr), NATS_OK) << "jetstream error " << jerr;
  jsStreamInfo_Destroy(info);

  jsPubAck* ack = nullptr;
  ASSERT_EQ(js_Publish(&ack, js, "selftest.one", "hello", 5, nullptr, &jerr), NATS_OK);
  std::uint64_t seq = ack->Sequence;
  jsPubAck_Destroy(ack);
  natsMsg* msg = nullptr;
  ASSERT_EQ(js_GetMsg(&msg, js, "SELFTEST", seq, nullptr, &jerr), NATS_OK);
  EXPECT_EQ(std::string(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg))), "hello");
  EXPECT_STREQ(natsMsg_GetSubject(msg), "selftest.one");
  natsMsg_Destroy(msg);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  nats_Close();
}

// ---- Redis ------------------------------------------------------------------------------

TEST(RedisServerTest, SetKeyIsReadBack) {
  te::RedisServer redis;
  PrintTiming("redis-server", redis.startup_time());
  redisContext* c = redisConnect(redis.host().c_str(), redis.port());
  ASSERT_TRUE(c != nullptr && c->err == 0) << (c ? c->errstr : "no context");
  auto* set = static_cast<redisReply*>(redisCommand(c, "SET %s %s", "selftest", "value-1"));
  ASSERT_NE(set, nullptr);
  EXPECT_EQ(set->type, REDIS_REPLY_STATUS);
  freeReplyObject(set);
  auto* get = static_cast<redisReply*>(redisCommand(c, "GET %s", "selftest"));
  ASSERT_NE(get, nullptr);
  ASSERT_EQ(get->type, REDIS_REPLY_STRING);
  EXPECT_EQ(std::string(get->str, get->len), "value-1");
  freeReplyObject(get);
  redisFree(c);
}

// ---- ZooKeeper --------------------------------------------------------------------------

TEST(ZooKeeperServerTest, CreatedZnodeIsReadBack) {
  te::ZooKeeperServer zk;
  PrintTiming("zookeeper", zk.startup_time());
  zoo_set_debug_level(ZOO_LOG_LEVEL_WARN);
  // Session timeout asked of the server (ms); the test lasts well under it.
  constexpr int kSessionTimeoutMs = 10000;
  zhandle_t* zh = zookeeper_init(zk.connect_string().c_str(), nullptr, kSessionTimeoutMs, nullptr, nullptr, 0);
  ASSERT_NE(zh, nullptr);
  std::unique_ptr<zhandle_t, int (*)(zhandle_t*)> closer(zh, &zookeeper_close);
  te::WaitFor([zh] { return zoo_state(zh) == ZOO_CONNECTED_STATE; }, 30s, "the ZooKeeper session to connect");

  char created[256];
  ASSERT_EQ(zoo_create(zh, "/ro-selftest", "payload", 7, &ZOO_OPEN_ACL_UNSAFE, 0, created, sizeof created), ZOK);
  EXPECT_STREQ(created, "/ro-selftest");
  char buffer[64];
  int length = sizeof buffer;
  Stat stat;
  ASSERT_EQ(zoo_get(zh, "/ro-selftest", 0, buffer, &length, &stat), ZOK);
  EXPECT_EQ(std::string(buffer, static_cast<std::size_t>(length)), "payload");
}

// ---- S3 (s3rver) ------------------------------------------------------------------------

size_t AppendTo(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

// One SigV4-signed request with libcurl; returns (HTTP status, body).
std::pair<long, std::string> S3Request(const te::S3Server& s3, const std::string& method, const std::string& path,
                                       const std::string& body) {
  CURL* curl = curl_easy_init();
  std::string response;
  std::string url = "http://" + s3.endpoint() + path;
  std::string userpwd = s3.access_key() + ":" + s3.secret_key();
  // s3rver requires x-amz-content-sha256, which CURLOPT_AWS_SIGV4 does not add.
  curl_slist* headers = curl_slist_append(nullptr, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, "aws:amz:us-east-1:s3");
  curl_easy_setopt(curl, CURLOPT_USERPWD, userpwd.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &AppendTo);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response);
  if (method == "PUT") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) return {0, curl_easy_strerror(rc)};
  return {status, response};
}

TEST(S3ServerTest, PutObjectIsListed) {
  te::S3Server s3;
  PrintTiming("s3rver", s3.startup_time());
  s3.CreateBucket("selftest-bucket");
  s3.CreateBucket("selftest-bucket");  // idempotent

  auto [put_status, put_body] = S3Request(s3, "PUT", "/selftest-bucket/dir/object.txt", "object body");
  ASSERT_EQ(put_status, 200) << put_body;
  auto [list_status, list_body] = S3Request(s3, "GET", "/selftest-bucket?list-type=2", "");
  ASSERT_EQ(list_status, 200) << list_body;
  EXPECT_THAT(list_body, HasSubstr("<Key>dir/object.txt</Key>"));
  auto [get_status, get_body] = S3Request(s3, "GET", "/selftest-bucket/dir/object.txt", "");
  EXPECT_EQ(get_status, 200);
  EXPECT_EQ(get_body, "object body");
}

// ---- Failures and clean-up --------------------------------------------------------------

TEST(ProcessTest, MissingBinaryFailsAtOnceNamingTheCommand) {
  te::TempDir dir("selftest");
  te::ProcessOptions options;
  options.name = "no-such-server";
  options.argv = {"/nonexistent/ro-no-such-server", "--flag"};
  options.log_path = dir.path() / "log";
  try {
    te::Process process(options);
    FAIL() << "a missing binary must not start";
  } catch (const te::TestEnvError& e) {
    EXPECT_THAT(e.what(), HasSubstr("no-such-server could not be started"));
    EXPECT_THAT(e.what(), HasSubstr("/nonexistent/ro-no-such-server --flag"));
    EXPECT_THAT(e.what(), HasSubstr("No such file or directory"));
  }
}

TEST(ProcessTest, ServerThatExitsDuringStartFailsFastWithItsLogTail) {
  te::TempDir dir("selftest");
  te::ProcessOptions options;
  options.name = "broken-server";
  options.argv = {"/bin/sh", "-c", "echo 'fatal: bad config marker-1234' >&2; exit 3"};
  options.log_path = dir.path() / "log";
  te::Process process(options);
  auto start = std::chrono::steady_clock::now();
  try {
    process.WaitUntilReady([] { return false; }, 60s, "a probe that never succeeds");
    FAIL() << "an exited server must not be reported ready";
  } catch (const te::TestEnvError& e) {
    EXPECT_THAT(e.what(), HasSubstr("broken-server exited (exit status 3) before it was ready"));
    EXPECT_THAT(e.what(), HasSubstr("fatal: bad config marker-1234"));
    EXPECT_THAT(e.what(), HasSubstr("/bin/sh -c"));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s) << "must fail fast, not wait for the deadline";
}

TEST(ProcessTest, ServerThatNeverGetsReadyFailsAtTheDeadline) {
  te::TempDir dir("selftest");
  te::ProcessOptions options;
  options.name = "silent-server";
  options.argv = {"/bin/sh", "-c", "echo started; exec sleep 600"};
  options.log_path = dir.path() / "log";
  te::Process process(options);
  try {
    process.WaitUntilReady([] { return false; }, 200ms, "a probe that never succeeds");
    FAIL() << "must time out";
  } catch (const te::TestEnvError& e) {
    EXPECT_THAT(e.what(), HasSubstr("silent-server was not ready after 200 ms"));
    EXPECT_THAT(e.what(), HasSubstr("started"));
  }
  pid_t pid = process.pid();
  process.Stop();
  EXPECT_TRUE(ProcessGone(pid));
}

TEST(ProcessTest, MissingKubeBinariesFailWithSetupHint) {
  te::TempDir empty("selftest");
  std::string saved = te::EnvOr("RO_KUBE_BIN", "");
  ::setenv("RO_KUBE_BIN", empty.path().c_str(), 1);
  try {
    te::KubeCluster cluster;
    ADD_FAILURE() << "a cluster without kube-apiserver must not start";
  } catch (const te::TestEnvError& e) {
    EXPECT_THAT(e.what(), HasSubstr("kube-apiserver not found"));
    EXPECT_THAT(e.what(), HasSubstr("scripts/setup.sh"));
  }
  if (saved.empty()) {
    ::unsetenv("RO_KUBE_BIN");
  } else {
    ::setenv("RO_KUBE_BIN", saved.c_str(), 1);
  }
}

TEST(WaitForTest, TimeoutNamesWhatWasAwaited) {
  try {
    te::WaitFor([] { return false; }, 50ms, "the moon to turn blue", 10ms);
    FAIL() << "must time out";
  } catch (const te::WaitTimeout& e) {
    EXPECT_THAT(e.what(), HasSubstr("timed out after 50 ms waiting for the moon to turn blue"));
  }
}

TEST(CleanupTest, NoServerProcessOrPidFileRemainsAfterDestruction) {
  te::TempDir pid_dir("selftest-pids");
  std::string saved = te::EnvOr("RO_TESTENV_PIDDIR", "");
  ::setenv("RO_TESTENV_PIDDIR", pid_dir.path().c_str(), 1);
  std::vector<pid_t> pids;
  std::vector<fs::path> dirs;
  {
    te::NatsServer nats;
    te::RedisServer redis;
    te::ZooKeeperServer zk;
    te::S3Server s3;
    for (const te::Process* p : {&nats.process(), &redis.process(), &zk.process(), &s3.process()}) {
      pids.push_back(p->pid());
      dirs.push_back(p->log_path().parent_path());
      EXPECT_TRUE(fs::exists(pid_dir.path() / std::to_string(p->pid()))) << p->name() << " has no PID file";
    }
  }
  for (pid_t pid : pids) EXPECT_TRUE(ProcessGone(pid)) << "process " << pid << " survived";
  EXPECT_TRUE(fs::is_empty(pid_dir.path())) << "PID files left in " << pid_dir.path();
  if (te::EnvOr("RO_TESTENV_KEEP", "") != "1") {
    for (const auto& d : dirs) EXPECT_FALSE(fs::exists(d)) << d << " was not removed";
  }
  if (saved.empty()) {
    ::unsetenv("RO_TESTENV_PIDDIR");
  } else {
    ::setenv("RO_TESTENV_PIDDIR", saved.c_str(), 1);
  }
}

}  // namespace

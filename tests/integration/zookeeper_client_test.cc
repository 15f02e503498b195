// ZooKeeperClient against a real ZooKeeper 3.8 (tests/testenv), shared by every test of
// this binary. Each test works under its own root node.
#include "ro/plugins/zookeeper_client.h"
#include "ro/plugins/zookeeper_admin.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "ro/common/log.h"
#include "ro/testenv/ports.h"
#include "ro/testenv/wait.h"
#include "ro/testenv/zookeeper_server.h"

namespace ro::plugins {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Code = ZooKeeperError::Code;

class ZooKeeperClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new testenv::ZooKeeperServer(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  void SetUp() override {
    client_ = NewClient();
    root_ = std::string("/") + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    client_->DeleteRecursive(root_);
    client_->Create(root_, "");
  }

  static std::unique_ptr<ZooKeeperClient> NewClient() {
    ZooKeeperOptions options;
    options.servers = {server_->connect_string()};
    options.connect_timeout = std::chrono::milliseconds(20'000);
    return std::make_unique<ZooKeeperClient>(options);
  }

  static ZooKeeperError ErrorOf(const std::function<void()>& call) {
    try {
      call();
    } catch (const ZooKeeperError& e) {
      return e;
    }
    ADD_FAILURE() << "no ZooKeeperError thrown";
    return ZooKeeperError(Code::kOther, 0, "", "none");
  }

  static testenv::ZooKeeperServer* server_;
  std::unique_ptr<ZooKeeperClient> client_;
  std::string root_;
};

testenv::ZooKeeperServer* ZooKeeperClientTest::server_ = nullptr;

TEST_F(ZooKeeperClientTest, ConnectEstablishesASession) {
  EXPECT_NE(client_->session_id(), 0);
}

TEST_F(ZooKeeperClientTest, CreateGetSetChildrenAndDeleteATree) {
  client_->Create(root_ + "/b", "bee");
  client_->Create(root_ + "/a", "ay");
  EXPECT_THAT(client_->Children(root_), ElementsAre("a", "b"));

  const std::optional<ZooKeeperNode> a = client_->Get(root_ + "/a");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->data, "ay");
  EXPECT_EQ(a->stat.version, 0);
  EXPECT_EQ(a->stat.data_length, 2);
  EXPECT_EQ(a->stat.ephemeral_owner, 0);

  const ZooKeeperStat after = client_->Set(root_ + "/a", "ay2", a->stat.version);
  EXPECT_EQ(after.version, 1);
  EXPECT_EQ(client_->Get(root_ + "/a")->data, "ay2");
  EXPECT_EQ(client_->Exists(root_)->num_children, 2);

  client_->Delete(root_ + "/a", 1);
  EXPECT_EQ(client_->Exists(root_ + "/a"), std::nullopt);
  EXPECT_THAT(client_->Children(root_), ElementsAre("b"));
}

TEST_F(ZooKeeperClientTest, MissingNodesAreNulloptForLookupsAndNoNodeOtherwise) {
  const std::string missing = root_ + "/missing";
  EXPECT_EQ(client_->Exists(missing), std::nullopt);
  EXPECT_EQ(client_->Get(missing), std::nullopt);
  EXPECT_EQ(ErrorOf([&] { client_->Children(missing); }).code(), Code::kNoNode);
  EXPECT_EQ(ErrorOf([&] { client_->Delete(missing); }).code(), Code::kNoNode);
  EXPECT_EQ(ErrorOf([&] { client_->Set(missing, "x"); }).code(), Code::kNoNode);
  EXPECT_EQ(ErrorOf([&] { client_->Create(missing + "/child", "x"); }).code(), Code::kNoNode);
}

TEST_F(ZooKeeperClientTest, CreateParentsBuildsTheWholePath) {
  client_->Create(root_ + "/x/y/z", "leaf", {.create_parents = true});
  EXPECT_EQ(client_->Get(root_ + "/x/y/z")->data, "leaf");
  EXPECT_EQ(client_->Get(root_ + "/x/y")->data, "");
  // Existing ancestors are fine.
  client_->Create(root_ + "/x/y/w", "", {.create_parents = true});
  EXPECT_THAT(client_->Children(root_ + "/x/y"), ElementsAre("w", "z"));
}

TEST_F(ZooKeeperClientTest, CreatingAnExistingNodeIsNodeExists) {
  client_->Create(root_ + "/n", "1");
  const ZooKeeperError e = ErrorOf([&] { client_->Create(root_ + "/n", "2"); });
  EXPECT_EQ(e.code(), Code::kNodeExists);
  EXPECT_EQ(e.zoo_code(), -110);  // ZNODEEXISTS
  EXPECT_EQ(e.path(), root_ + "/n");
}

TEST_F(ZooKeeperClientTest, AStaleVersionIsBadVersionNamingThePath) {
  client_->Create(root_ + "/v", "0");
  client_->Set(root_ + "/v", "1");  // version 1 now
  const ZooKeeperError set_error = ErrorOf([&] { client_->Set(root_ + "/v", "2", 0); });
  EXPECT_EQ(set_error.code(), Code::kBadVersion);
  EXPECT_EQ(set_error.zoo_code(), -103);  // ZBADVERSION
  EXPECT_EQ(set_error.path(), root_ + "/v");
  EXPECT_THAT(set_error.what(), HasSubstr(root_ + "/v"));
  EXPECT_FALSE(set_error.retryable());
  EXPECT_EQ(ErrorOf([&] { client_->Delete(root_ + "/v", 0); }).code(), Code::kBadVersion);
  EXPECT_EQ(client_->Get(root_ + "/v")->data, "1");
}

TEST_F(ZooKeeperClientTest, DeletingANodeWithChildrenIsNotEmpty) {
  client_->Create(root_ + "/p/c", "", {.create_parents = true});
  EXPECT_EQ(ErrorOf([&] { client_->Delete(root_ + "/p"); }).code(), Code::kNotEmpty);
}

TEST_F(ZooKeeperClientTest, DeleteRecursiveRemovesTheSubtreeAndToleratesMissingPaths) {
  for (const char* leaf : {"/d/1/a", "/d/1/b", "/d/2", "/d/3/x/y"}) {
    client_->Create(root_ + leaf, "v", {.create_parents = true});
  }
  client_->DeleteRecursive(root_ + "/d");
  EXPECT_EQ(client_->Exists(root_ + "/d"), std::nullopt);
  EXPECT_NO_THROW(client_->DeleteRecursive(root_ + "/d"));
  EXPECT_EQ(ErrorOf([&] { client_->DeleteRecursive("/"); }).code(), Code::kBadArguments);
}

TEST_F(ZooKeeperClientTest, GetReturnsDataLargerThanTheFirstBuffer) {
  std::string big(300 * 1024, '\0');  // 300 KiB, below the server's 1 MiB jute.maxbuffer
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 % 251);
  client_->Create(root_ + "/big", big);
  const std::optional<ZooKeeperNode> node = client_->Get(root_ + "/big");
  ASSERT_TRUE(node.has_value());
  EXPECT_EQ(node->data.size(), big.size());
  EXPECT_EQ(node->data, big);
}

TEST_F(ZooKeeperClientTest, EmptyDataIsEmpty) {
  client_->Create(root_ + "/e", "");
  EXPECT_EQ(client_->Get(root_ + "/e")->data, "");
  EXPECT_EQ(client_->Get(root_ + "/e")->stat.data_length, 0);
}

TEST_F(ZooKeeperClientTest, SequentialNodesGetACounterSuffix) {
  const std::string first = client_->Create(root_ + "/seq-", "", {.sequential = true});
  const std::string second = client_->Create(root_ + "/seq-", "", {.sequential = true});
  EXPECT_EQ(first, root_ + "/seq-0000000000");
  EXPECT_EQ(second, root_ + "/seq-0000000001");
}

TEST_F(ZooKeeperClientTest, EphemeralNodesDisappearWithTheirSession) {
  auto owner = NewClient();
  owner->Create(root_ + "/lock", "me", {.ephemeral = true});
  EXPECT_EQ(client_->Exists(root_ + "/lock")->ephemeral_owner, owner->session_id());
  EXPECT_EQ(ErrorOf([&] { owner->Create(root_ + "/lock/child", ""); }).code(),
            Code::kNoChildrenForEphemerals);
  owner.reset();  // closes the session
  testenv::WaitFor([&] { return !client_->Exists(root_ + "/lock").has_value(); },
                   std::chrono::milliseconds(20'000), "the ephemeral node to go away");
}

TEST_F(ZooKeeperClientTest, ConcurrentCallsOnOneClientAllSucceed) {
  constexpr int kThreads = 4;
  constexpr int kNodesPerThread = 50;
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([this, t] {
        for (int i = 0; i < kNodesPerThread; ++i) {
          const std::string path = root_ + "/t" + std::to_string(t) + "-" + std::to_string(i);
          client_->Create(path, std::to_string(i));
          client_->Set(path, "updated");
        }
      });
    }
  }
  EXPECT_EQ(client_->Children(root_).size(), static_cast<std::size_t>(kThreads * kNodesPerThread));
}

// zk_num_alive_connections of `mntr`.
int AliveConnections(const testenv::ZooKeeperServer& server) {
  const std::string mntr = server.FourLetterWord("mntr");
  const std::string key = "zk_num_alive_connections\t";
  const std::size_t at = mntr.find(key);
  return at == std::string::npos ? -1 : std::stoi(mntr.substr(at + key.size()));
}

TEST_F(ZooKeeperClientTest, ReadManyOverFourSessionsKeepsTheOrderAndReportsAFailure) {
  const int before = AliveConnections(*server_);
  ZooKeeperOptions options;
  options.servers = {server_->connect_string()};
  options.connect_timeout = std::chrono::milliseconds(20'000);
  options.read_sessions = 4;
  ZooKeeperClient reader(options);
  EXPECT_EQ(AliveConnections(*server_), before + 4);

  // 2,000 paths, every tenth one missing: four slices of 500.
  std::vector<std::string> paths;
  std::vector<ZooKeeperOp> ops;
  for (int i = 0; i < 2000; ++i) {
    paths.push_back(root_ + "/n" + std::to_string(i));
    if (i % 10 != 0) ops.push_back({ZooKeeperOp::Kind::kCreate, paths.back(), std::to_string(i), {}, false});
    if (ops.size() == 500) {
      client_->Multi(ops);
      ops.clear();
    }
  }
  client_->Multi(ops);
  const std::vector<ZooKeeperRead> reads = reader.ReadMany(paths, /*with_children=*/true);
  ASSERT_EQ(reads.size(), paths.size());
  for (int i = 0; i < 2000; ++i) {
    ASSERT_EQ(reads[i].exists, i % 10 != 0) << paths[i];
    if (reads[i].exists) {
      ASSERT_EQ(reads[i].data, std::to_string(i)) << paths[i];
      EXPECT_EQ(reads[i].acl, OpenAcl());
    }
  }

  // A node of the last slice nobody but "other" may read.
  client_->SetAcl(paths[1999], {{zk_perm::kAll, "digest", DigestAclId({"other", "pw"})}});
  const ZooKeeperError e = ErrorOf([&] { reader.ReadMany(paths, false); });
  EXPECT_EQ(e.code(), Code::kNoAuth);
  EXPECT_EQ(e.path(), paths[1999]);
}

TEST_F(ZooKeeperClientTest, UnreachableServersFailWithinTheConnectTimeout) {
  const testenv::PortLease unused_a;  // reserved, nothing listens
  const testenv::PortLease unused_b;
  ZooKeeperOptions options;
  options.servers = {"127.0.0.1:" + std::to_string(unused_a.port()),
                     "127.0.0.1:" + std::to_string(unused_b.port())};
  options.connect_timeout = std::chrono::milliseconds(1'500);
  const auto start = std::chrono::steady_clock::now();
  const ZooKeeperError e = ErrorOf([&] { ZooKeeperClient client(options); });
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(e.code(), Code::kUnreachable);
  EXPECT_TRUE(e.retryable());
  EXPECT_THAT(e.what(), HasSubstr(options.servers[0] + "," + options.servers[1]));
  // It gives up at the deadline instead of retrying forever (generous bound: the
  // library's close joins its threads).
  EXPECT_LT(elapsed, std::chrono::seconds(10));
}

TEST_F(ZooKeeperClientTest, TheFourLetterWordSrvrReportsTheVersion) {
  const ZooKeeperServerInfo info =
      QueryServerInfo({"tcp", "127.0.0.1", std::to_string(server_->port())}, std::chrono::seconds(5));
  EXPECT_THAT(info.version, ::testing::StartsWith("3.8"));
  EXPECT_EQ(info.mode, "standalone");
  const testenv::PortLease unused;
  EXPECT_EQ(ErrorOf([&] {
              QueryServerInfo({"tcp", "127.0.0.1", std::to_string(unused.port())},
                              std::chrono::seconds(2));
            }).code(),
            Code::kUnreachable);
}

TEST_F(ZooKeeperClientTest, NoServersIsBadArguments) {
  EXPECT_EQ(ErrorOf([] { ZooKeeperClient client(ZooKeeperOptions{}); }).code(),
            Code::kBadArguments);
}

TEST_F(ZooKeeperClientTest, LibraryLogLinesGoToTheJsonLog) {
  const auto previous = spdlog::default_logger();
  const std::filesystem::path path = std::filesystem::temp_directory_path() /
                                     ("ro_zk_log_" + std::to_string(::getpid()) + ".log");
  log::LogOptions options;
  options.process_id = "zookeeper-test";
  options.level = "debug";
  options.output = path.string();
  log::Setup(options);
  NewClient().reset();  // connect and close: the library logs both
  spdlog::set_default_logger(previous);

  std::ifstream in(path);
  int library_lines = 0;
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json parsed = nlohmann::json::parse(line);
    EXPECT_EQ(parsed["process"]["id"], "zookeeper-test");
    if (parsed.value("library", "") == "libzookeeper") ++library_lines;
  }
  std::filesystem::remove(path);
  EXPECT_GT(library_lines, 0);
}

}  // namespace
}  // namespace ro::plugins

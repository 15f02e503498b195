// zookeeper-to-zookeeper-nodes between two real ZooKeeper 3.8 servers (tests/testenv):
// a 10,000-znode tree copied exactly, a second run that writes nothing, propagation of
// source changes, exclusions, ACLs, ephemeral and sequential nodes, and failures that
// lose nothing. Each test works under its own root path on both servers.
#include "ro/plugins/zookeeper/nodes_sync.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <tuple>

#include "ro/testenv/ports.h"
#include "ro/testenv/zookeeper_server.h"

namespace ro::plugins::zookeeper {
namespace {

using ::testing::HasSubstr;
using Code = ZooKeeperError::Code;

const ZooKeeperDigest kSyncUser{"sync", "s3cret"};
const ZooKeeperAcl kSyncAll{zk_perm::kAll, "digest", DigestAclId(kSyncUser)};

// What a node is, as plain synchronous calls see it (independent of ReadMany).
struct Seen {
  std::string data;
  std::vector<ZooKeeperAcl> acl;
  bool ephemeral = false;
  bool operator==(const Seen&) const = default;
};

std::string Describe(const Seen& s) {
  std::string out = "data(" + std::to_string(s.data.size()) + " bytes) acl[";
  for (const ZooKeeperAcl& a : s.acl) out += a.scheme + ":" + a.id + ":" + std::to_string(a.perms) + " ";
  return out + "] ephemeral=" + (s.ephemeral ? "yes" : "no");
}

// Every node under `root` (included), one synchronous call at a time.
std::map<std::string, Seen> Dump(ZooKeeperClient& client, const std::string& root) {
  std::map<std::string, Seen> out;
  std::vector<std::string> pending{root};
  while (!pending.empty()) {
    const std::string path = pending.back();
    pending.pop_back();
    const std::optional<ZooKeeperNode> node = client.Get(path);
    if (!node) continue;
    std::vector<ZooKeeperAcl> acl = client.GetAcl(path);
    std::sort(acl.begin(), acl.end(), [](const ZooKeeperAcl& a, const ZooKeeperAcl& b) {
      return std::tie(a.scheme, a.id, a.perms) < std::tie(b.scheme, b.id, b.perms);
    });
    out[path] = Seen{node->data, std::move(acl), node->stat.ephemeral_owner != 0};
    for (const std::string& child : client.Children(path)) pending.push_back(path + "/" + child);
  }
  return out;
}

// Creates `ops` with as few transactions as the server allows.
void Build(ZooKeeperClient& client, std::vector<ZooKeeperOp> ops) {
  for (const auto& t : SplitIntoTransactions(std::move(ops), kDefaultJuteMaxBuffer, 1000)) {
    client.Multi(t);
  }
}

ZooKeeperOp CreateOp(std::string path, std::string data, std::vector<ZooKeeperAcl> acl = {}) {
  ZooKeeperOp op;
  op.path = std::move(path);
  op.data = std::move(data);
  op.acl = std::move(acl);
  return op;
}

class ZooKeeperNodesSyncTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    source_server_ = new testenv::ZooKeeperServer();
    destination_server_ = new testenv::ZooKeeperServer();
  }
  static void TearDownTestSuite() {
    delete source_server_;
    delete destination_server_;
    source_server_ = destination_server_ = nullptr;
  }

  void SetUp() override {
    root_ = std::string("/") + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    source_ = Connect(*source_server_, kSyncUser);
    destination_ = Connect(*destination_server_, kSyncUser);
    source_->DeleteRecursive(root_);
    destination_->DeleteRecursive(root_);
    source_->Create(root_, "root");
    config_.source_name = "zookeeper-1";
    config_.destination_name = "zookeeper-2";
    config_.root_path = root_;
    config_.create_root_path = true;
  }

  static std::unique_ptr<ZooKeeperClient> Connect(const testenv::ZooKeeperServer& server,
                                                  std::optional<ZooKeeperDigest> digest) {
    ZooKeeperOptions options;
    options.servers = {server.connect_string()};
    options.connect_timeout = std::chrono::milliseconds(20'000);
    options.digest = std::move(digest);
    options.read_sessions = kReadSessions;  // as the Synchronization controller connects
    return std::make_unique<ZooKeeperClient>(options);
  }

  NodesSyncResult Sync() { return SyncNodes(*source_, *destination_, config_, kSyncAll); }

  // Node by node: the destination equals the source, except that nothing is ephemeral.
  void ExpectSameTree() {
    std::map<std::string, Seen> want = Dump(*source_, root_);
    for (auto& [path, seen] : want) seen.ephemeral = false;
    const std::map<std::string, Seen> got = Dump(*destination_, root_);
    EXPECT_EQ(got.size(), want.size());
    int reported = 0;
    for (const auto& [path, seen] : want) {
      const auto it = got.find(path);
      if (it == got.end()) {
        if (reported++ < 5) ADD_FAILURE() << path << " missing in the destination";
      } else if (!(it->second == seen)) {
        if (reported++ < 5) {
          ADD_FAILURE() << path << ": destination " << Describe(it->second) << ", source "
                        << Describe(seen);
        }
      }
    }
    for (const auto& [path, seen] : got) {
      if (!want.contains(path) && reported++ < 5) ADD_FAILURE() << path << " only in the destination";
    }
  }

  static testenv::ZooKeeperServer* source_server_;
  static testenv::ZooKeeperServer* destination_server_;
  std::unique_ptr<ZooKeeperClient> source_;
  std::unique_ptr<ZooKeeperClient> destination_;
  std::string root_;
  NodesSyncConfig config_;
};

testenv::ZooKeeperServer* ZooKeeperNodesSyncTest::source_server_ = nullptr;
testenv::ZooKeeperServer* ZooKeeperNodesSyncTest::destination_server_ = nullptr;

TEST_F(ZooKeeperNodesSyncTest, CopiesATenThousandNodeTreeExactlyAndASecondRunWritesNothing) {
  // 10 x 10 x 100 nested nodes with binary, text and empty data.
  std::vector<ZooKeeperOp> ops;
  for (int a = 0; a < 10; ++a) {
    const std::string pa = root_ + "/a" + std::to_string(a);
    ops.push_back(CreateOp(pa, ""));
    for (int b = 0; b < 10; ++b) {
      const std::string pb = pa + "/b" + std::to_string(b);
      ops.push_back(CreateOp(pb, "level-b"));
      for (int c = 0; c < 100; ++c) {
        std::string data;
        if (c % 3 == 1) {
          for (int k = 0; k < 64; ++k) data.push_back(static_cast<char>((a * 31 + b * 7 + c + k) & 0xff));
        } else if (c % 3 == 2) {
          data = std::string(1024, static_cast<char>('a' + c % 26));
        }
        ops.push_back(CreateOp(pb + "/n" + std::to_string(c), std::move(data)));
      }
    }
  }
  ops.push_back(CreateOp(root_ + "/big", std::string(900 * 1024, '\x7f')));
  // ACLs: a read-only parent with a child only our digest user may touch.
  ops.push_back(CreateOp(root_ + "/acl", "guarded"));
  ops.push_back(CreateOp(root_ + "/acl/mine", "secret", {kSyncAll}));
  ops.push_back(CreateOp(root_ + "/seq", ""));
  Build(*source_, std::move(ops));
  source_->SetAcl(root_ + "/acl", {{zk_perm::kRead, "world", "anyone"}, kSyncAll});
  source_->SetAcl(root_ + "/a0", {{zk_perm::kRead | zk_perm::kCreate, "world", "anyone"}});
  ZooKeeperCreateOptions sequential;
  sequential.sequential = true;
  const std::string seq1 = source_->Create(root_ + "/seq/job-", "1", sequential);
  const std::string seq2 = source_->Create(root_ + "/seq/job-", "2", sequential);
  ZooKeeperCreateOptions ephemeral;
  ephemeral.ephemeral = true;
  source_->Create(root_ + "/seq/lock", "held", ephemeral);

  auto started = std::chrono::steady_clock::now();
  const NodesSyncResult first = Sync();
  std::cout << "first run: " << first.duration.count() << " ms, "
            << first.counts.transactions << " transactions; wall "
            << std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - started).count() << " ms\n";
  EXPECT_EQ(first.counts.created, 10'000 + 100 + 10 + 1 + 1 + 2 + 1 + 3);  // + root
  EXPECT_EQ(first.counts.deleted, 0);
  EXPECT_GE(first.counts.bytes, 900 * 1024);
  EXPECT_GT(first.counts.transactions, 2);  // the 900 KiB node needed one of its own
  ExpectSameTree();
  EXPECT_EQ(destination_->Get(seq1)->data, "1");
  EXPECT_EQ(destination_->Get(seq2)->data, "2");
  EXPECT_EQ(destination_->Get(root_ + "/seq/lock")->stat.ephemeral_owner, 0);

  const NodesSyncResult second = Sync();
  std::cout << "second run: " << second.duration.count() << " ms\n";
  EXPECT_EQ(second.counts.writes, 0);
  EXPECT_EQ(second.counts.transactions, 0);
  EXPECT_EQ(second.counts.created + second.counts.updated + second.counts.deleted, 0);
  EXPECT_EQ(second.counts.unchanged, first.counts.created);
}

TEST_F(ZooKeeperNodesSyncTest, SourceUpdatesCreatesAndDeletesPropagate) {
  Build(*source_, {CreateOp(root_ + "/keep", "v1"), CreateOp(root_ + "/drop", ""),
                   CreateOp(root_ + "/drop/child", "x"), CreateOp(root_ + "/acl", "")});
  Sync();
  source_->Set(root_ + "/keep", "v2");
  source_->DeleteRecursive(root_ + "/drop");
  source_->Create(root_ + "/new", std::string("\0bin\0", 5));
  source_->SetAcl(root_ + "/acl", {kSyncAll});

  const NodesSyncResult result = Sync();
  EXPECT_EQ(result.counts.created, 1);
  EXPECT_EQ(result.counts.updated, 2);  // data of /keep, ACL of /acl
  EXPECT_EQ(result.counts.deleted, 2);
  EXPECT_EQ(result.counts.unchanged, 1);  // the root
  ExpectSameTree();
}

TEST_F(ZooKeeperNodesSyncTest, ExcludedPathsAreUntouchedOnBothSides) {
  Build(*source_, {CreateOp(root_ + "/app", "a"), CreateOp(root_ + "/app/cache", "src"),
                   CreateOp(root_ + "/app/cache/x", "src")});
  destination_->Create(root_ + "/app/cache/only-here", "dst", {.create_parents = true});
  destination_->Set(root_ + "/app/cache", "dst");
  config_.exclude_path_regexp = "/cache$";

  const NodesSyncResult result = Sync();
  EXPECT_EQ(result.counts.skipped, 1);
  EXPECT_EQ(destination_->Get(root_ + "/app/cache")->data, "dst");
  EXPECT_TRUE(destination_->Exists(root_ + "/app/cache/only-here"));
  EXPECT_FALSE(destination_->Exists(root_ + "/app/cache/x"));
  EXPECT_EQ(destination_->Get(root_ + "/app")->data, "a");
  EXPECT_EQ(source_->Get(root_ + "/app/cache")->data, "src");
}

TEST_F(ZooKeeperNodesSyncTest, IgnoreEphemeralLeavesEphemeralNodesAlone) {
  ZooKeeperCreateOptions ephemeral;
  ephemeral.ephemeral = true;
  source_->Create(root_ + "/lock", "src", ephemeral);
  config_.ignore_ephemeral = true;
  const NodesSyncResult result = Sync();
  EXPECT_EQ(result.counts.skipped, 1);
  EXPECT_FALSE(destination_->Exists(root_ + "/lock"));
}

TEST_F(ZooKeeperNodesSyncTest, AMissingDestinationRootIsAnErrorWithoutCreateRootPath) {
  config_.root_path = root_;
  config_.create_root_path = false;
  try {
    Sync();
    FAIL() << "no error";
  } catch (const NodesSyncError& e) {
    EXPECT_THAT(e.what(), HasSubstr("createRootPath"));
  }
  EXPECT_FALSE(destination_->Exists(root_));
  // Nested roots get their ancestors with createRootPath.
  source_->Create(root_ + "/deep/er", "x", {.create_parents = true});
  config_.root_path = root_ + "/deep/er";
  config_.create_root_path = true;
  Sync();
  EXPECT_EQ(destination_->Get(root_ + "/deep/er")->data, "x");
}

TEST_F(ZooKeeperNodesSyncTest, ASourceThatCannotBeReadWhollyOverwritesAndDeletesNothing) {
  Build(*source_, {CreateOp(root_ + "/open", "1"), CreateOp(root_ + "/gone", "g"),
                   CreateOp(root_ + "/deep", ""), CreateOp(root_ + "/deep/guarded", "2", {kSyncAll})});
  Sync();
  source_->Set(root_ + "/open", "changed");
  source_->Delete(root_ + "/gone");
  source_->Create(root_ + "/new", "n");
  source_->Delete(root_ + "/deep/guarded");
  source_->Create(root_ + "/deep/guarded", "3", {}, {kSyncAll});

  source_ = Connect(*source_server_, ZooKeeperDigest{"sync", "wrong"});
  try {
    Sync();
    FAIL() << "no error";
  } catch (const ZooKeeperError& e) {
    EXPECT_EQ(e.code(), Code::kNoAuth);
    EXPECT_EQ(e.path(), root_ + "/deep/guarded");
  }
  // The depth above the unreadable node was read: its creates went out (a next run would
  // make them too), but nothing that existed was overwritten or deleted.
  EXPECT_EQ(destination_->Get(root_ + "/open")->data, "1");
  EXPECT_TRUE(destination_->Exists(root_ + "/gone"));
  EXPECT_EQ(destination_->Get(root_ + "/deep/guarded")->data, "2");
  EXPECT_EQ(destination_->Get(root_ + "/new")->data, "n");
}

TEST_F(ZooKeeperNodesSyncTest, AWronglyAuthenticatedDestinationKeepsWhatWasCopied) {
  Build(*source_, {CreateOp(root_ + "/a", "1"), CreateOp(root_ + "/z", "1")});
  Sync();
  // Another writer made /z read-only for everybody but itself on the destination.
  destination_->SetAcl(root_ + "/z", {{zk_perm::kRead, "world", "anyone"},
                                      {zk_perm::kAll, "digest", DigestAclId({"other", "pw"})}});
  source_->Set(root_ + "/z", "2");
  source_->Create(root_ + "/b", "new");

  destination_ = Connect(*destination_server_, ZooKeeperDigest{"sync", "wrong"});
  try {
    Sync();
    FAIL() << "no error";
  } catch (const ZooKeeperError& e) {
    EXPECT_EQ(e.code(), Code::kNoAuth);
  }
  EXPECT_EQ(destination_->Get(root_ + "/a")->data, "1");
  EXPECT_TRUE(destination_->Exists(root_ + "/b"));  // the creates went first and stay
}

TEST_F(ZooKeeperNodesSyncTest, AnUnreachableDatabaseIsUnreachable) {
  const testenv::PortLease unused;
  ZooKeeperOptions options;
  options.servers = {"127.0.0.1:" + std::to_string(unused.port())};
  options.connect_timeout = std::chrono::milliseconds(1'000);
  try {
    ZooKeeperClient client(options);
    FAIL() << "connected";
  } catch (const ZooKeeperError& e) {
    EXPECT_EQ(e.code(), Code::kUnreachable);
    EXPECT_THAT(e.what(), HasSubstr(options.servers[0]));
  }
}

}  // namespace
}  // namespace ro::plugins::zookeeper

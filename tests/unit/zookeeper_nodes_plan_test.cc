// zookeeper-to-zookeeper-nodes decisions without a server: config, exclusion, the plan of
// writes between two trees, transaction cutting.
#include "ro/plugins/zookeeper/nodes_plan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "ro/plugins/kubernetes/config_error.h"

namespace ro::plugins::zookeeper {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using json = nlohmann::json;
using Kind = ZooKeeperOp::Kind;

std::vector<std::string> Paths(const std::vector<ZooKeeperOp>& ops) {
  std::vector<std::string> out;
  for (const ZooKeeperOp& op : ops) out.push_back(op.path);
  return out;
}

std::string ConfigErrorOf(const json& config) {
  try {
    ParseNodesSyncConfig(config);
  } catch (const kubernetes::ConfigError& e) {
    return e.what();
  }
  return "";
}

// A whole run's plan of two complete trees, as SyncNodes makes it level by level: each
// node's children counted as the tree reader does, then the writes and the deletes.
NodesPlan PlanNodes(ZnodeTree source, const ZnodeTree& destination, const PathFilter& filter,
                    const PlanOptions& options) {
  for (auto& [path, node] : source) {
    const std::string prefix = path + "/";
    for (auto it = source.upper_bound(prefix); it != source.end() && it->first.starts_with(prefix);
         ++it) {
      if (it->first.find('/', prefix.size()) == std::string::npos) ++node.children;
    }
  }
  NodesPlan plan = PlanWrites(source, destination, filter, options);
  NodesPlan deletes = PlanDeletes(source, destination, filter, options);
  plan.deletes = std::move(deletes.deletes);
  plan.counts.deleted = deletes.counts.deleted;
  plan.counts.skipped += deletes.counts.skipped;
  return plan;
}

const std::vector<ZooKeeperAcl> kOpen = OpenAcl();
const std::vector<ZooKeeperAcl> kReadOnly = {{zk_perm::kRead, "world", "anyone"}};

TEST(ZooKeeperNodesConfig, ParsesTheManualSampleWithCreateRoutePath) {
  const NodesSyncConfig c = ParseNodesSyncConfig(json::parse(R"({
    "sourceName": "zookeeper-source", "destinationName": "zookeeper-destination",
    "rootPath": "/test", "createRoutePath": true})"));
  EXPECT_EQ(c.source_name, "zookeeper-source");
  EXPECT_EQ(c.destination_name, "zookeeper-destination");
  EXPECT_EQ(c.root_path, "/test");
  EXPECT_TRUE(c.create_root_path);
  EXPECT_FALSE(c.ignore_ephemeral);
  EXPECT_EQ(c.jute_max_buffer, kDefaultJuteMaxBuffer);
}

TEST(ZooKeeperNodesConfig, CreateRootPathAndItsAliasMustAgree) {
  const json base = {{"sourceName", "a"}, {"destinationName", "b"}, {"rootPath", "/"}};
  json agree = base;
  agree["createRootPath"] = true;
  agree["createRoutePath"] = true;
  EXPECT_TRUE(ParseNodesSyncConfig(agree).create_root_path);
  json disagree = base;
  disagree["createRootPath"] = true;
  disagree["createRoutePath"] = false;
  EXPECT_THAT(ConfigErrorOf(disagree), HasSubstr("createRoutePath"));
}

TEST(ZooKeeperNodesConfig, ListsEveryProblem) {
  const std::string message = ConfigErrorOf(json::parse(
      R"({"rootPath": "test/", "excludePathRegexp": "*.test", "juteMaxBuffer": 10})"));
  EXPECT_THAT(message, HasSubstr("sourceName"));
  EXPECT_THAT(message, HasSubstr("rootPath: must be an absolute path"));
  EXPECT_THAT(message, HasSubstr("and 2 more"));  // excludePathRegexp, juteMaxBuffer
  EXPECT_THAT(ConfigErrorOf(json::parse(R"({"sourceName": "a", "destinationName": "b",
      "rootPath": "/a/../b"})")), HasSubstr(". or .."));
  EXPECT_THAT(ConfigErrorOf(json::parse(R"({"sourceName": "a", "destinationName": "b",
      "rootPath": "/a", "excludePathRegexp": "(unclosed"})")), HasSubstr("not a valid RE2"));
}

TEST(ZooKeeperPathFilter, ExcludesMatchesTheirSubtreesAndZooKeepersOwnNodes) {
  const PathFilter filter("^/app/secret");
  EXPECT_TRUE(filter.Excluded("/app/secret"));
  EXPECT_TRUE(filter.Excluded("/app/secret/key"));
  EXPECT_TRUE(filter.Excluded("/app/secrets"));  // partial match: anchor with $ to stop
  EXPECT_FALSE(filter.Excluded("/app"));
  EXPECT_FALSE(filter.Excluded("/other/app/secret"));
  EXPECT_TRUE(filter.Excluded("/zookeeper"));
  EXPECT_TRUE(filter.Excluded("/zookeeper/quota"));
  EXPECT_FALSE(filter.Excluded("/zookeeperish"));
  EXPECT_FALSE(PathFilter("").Excluded("/a/b"));
}

TEST(ZooKeeperNodesPlan, CreatesUpdatesAndDeletesInASafeOrder) {
  const ZnodeTree source = {{"/r", {"root", kOpen}},
                            {"/r/a", {"new", kOpen}},
                            {"/r/a/x", {"", kOpen}},
                            {"/r/a-b", {"", kOpen}},
                            {"/r/same", {"s", kOpen}},
                            {"/r/changed", {"v2", kOpen}}};
  const ZnodeTree destination = {{"/r", {"root", kOpen}},
                                 {"/r/same", {"s", kOpen}},
                                 {"/r/changed", {"v1", kOpen}},
                                 {"/r/gone", {"", kOpen}},
                                 {"/r/gone/child", {"", kOpen}}};
  const NodesPlan plan = PlanNodes(source, destination, PathFilter(""), {});
  EXPECT_THAT(Paths(plan.creates), ElementsAre("/r/a", "/r/a-b", "/r/a/x"));
  EXPECT_THAT(Paths(plan.updates), ElementsAre("/r/changed"));
  EXPECT_EQ(plan.updates[0].data, "v2");
  EXPECT_THAT(Paths(plan.deletes), ElementsAre("/r/gone/child", "/r/gone"));
  EXPECT_TRUE(plan.acls.empty());
  NodesCounts expected;
  expected.created = 3;
  expected.updated = 1;
  expected.deleted = 2;
  expected.unchanged = 2;
  expected.bytes = 5;  // "new" + "v2"
  EXPECT_EQ(plan.counts, expected);
}

TEST(ZooKeeperNodesPlan, EqualTreesNeedNoWrite) {
  const ZnodeTree tree = {{"/r", {"", kOpen}}, {"/r/seq-0000000007", {std::string("\0\1", 2), kReadOnly}}};
  const NodesPlan plan = PlanNodes(tree, tree, PathFilter(""), {});
  EXPECT_TRUE(plan.creates.empty() && plan.updates.empty() && plan.deletes.empty() &&
              plan.acls.empty());
  EXPECT_EQ(plan.counts.unchanged, 2);
}

TEST(ZooKeeperNodesPlan, EphemeralNodesBecomePersistentOrAreIgnored) {
  const ZnodeTree source = {{"/r", {"", kOpen}}, {"/r/lock", {"me", kOpen, true}}};
  const ZnodeTree destination = {{"/r", {"", kOpen}}, {"/r/theirs", {"", kOpen, true}}};
  const NodesPlan copied = PlanNodes(source, destination, PathFilter(""), {});
  ASSERT_THAT(Paths(copied.creates), ElementsAre("/r/lock"));
  EXPECT_FALSE(copied.creates[0].ephemeral);
  EXPECT_THAT(Paths(copied.deletes), ElementsAre("/r/theirs"));

  PlanOptions ignore;
  ignore.ignore_ephemeral = true;
  const NodesPlan ignored = PlanNodes(source, destination, PathFilter(""), ignore);
  EXPECT_TRUE(ignored.creates.empty());
  EXPECT_TRUE(ignored.deletes.empty());  // a destination ephemeral whose parent stays
  EXPECT_EQ(ignored.counts.skipped, 2);
}

TEST(ZooKeeperNodesPlan, ExcludedPathsAreNeitherCopiedNorDeleted) {
  const ZnodeTree source = {{"/r", {"", kOpen}}, {"/r/skip", {"src", kOpen}},
                            {"/r/skip/deep", {"", kOpen}}};
  const ZnodeTree destination = {{"/r", {"", kOpen}}, {"/r/skip", {"dst", kOpen}},
                                 {"/r/skip/only-here", {"", kOpen}}};
  const NodesPlan plan = PlanNodes(source, destination, PathFilter("/skip$"), {});
  EXPECT_TRUE(plan.creates.empty() && plan.updates.empty() && plan.deletes.empty());
  EXPECT_EQ(plan.counts.skipped, 2);
}

TEST(ZooKeeperNodesPlan, CopiesAclsAndOpensCreatedParentsUntilTheEnd) {
  const std::vector<ZooKeeperAcl> someone = {{zk_perm::kAll, "digest", "other:hash="}};
  const ZnodeTree source = {{"/r", {"", kOpen}},
                            {"/r/locked", {"", kReadOnly}},
                            {"/r/locked/child", {"", someone}},
                            {"/r/acl-changed", {"", someone}}};
  const ZnodeTree destination = {{"/r", {"", kOpen}}, {"/r/acl-changed", {"", kOpen}}};
  PlanOptions options;
  options.own_identity = {zk_perm::kAll, "digest", "sync:abc="};
  const NodesPlan plan = PlanNodes(source, destination, PathFilter(""), options);
  ASSERT_THAT(Paths(plan.creates), ElementsAre("/r/locked", "/r/locked/child"));
  EXPECT_THAT(plan.creates[0].acl,
              ElementsAre(kReadOnly[0], ZooKeeperAcl{zk_perm::kAll, "digest", "sync:abc="}));
  EXPECT_EQ(plan.creates[1].acl, someone);  // a leaf gets its ACL at once
  ASSERT_EQ(plan.acls.size(), 2u);
  EXPECT_EQ(plan.acls[0].first, "/r/acl-changed");
  EXPECT_EQ(plan.acls[0].second, someone);
  EXPECT_EQ(plan.acls[1].first, "/r/locked");
  EXPECT_EQ(plan.acls[1].second, kReadOnly);
  EXPECT_EQ(plan.counts.updated, 1);
  EXPECT_EQ(plan.counts.unchanged, 1);
}

TEST(ZooKeeperNodesPlan, AclOrderDoesNotMatter) {
  const std::vector<ZooKeeperAcl> ab = {{1, "world", "anyone"}, {31, "digest", "u:x"}};
  const std::vector<ZooKeeperAcl> ba = {ab[1], ab[0]};
  const NodesPlan plan = PlanNodes({{"/r", {"", ab}}}, {{"/r", {"", ba}}}, PathFilter(""), {});
  EXPECT_TRUE(plan.acls.empty());
}

// A session without ADMIN on a node reads its digest ids as "user:x" (ZOOKEEPER-1392): the
// same users with the same permissions are the same ACL (no write it could not make).
TEST(ZooKeeperNodesPlan, ARedactedDigestReadMatchesTheSameUser) {
  const std::vector<ZooKeeperAcl> source = {{31, "digest", "admin:D/InIHSb7yEEbrWz8b9l71RjZJU="}, {1, "world", "anyone"}};
  const std::vector<ZooKeeperAcl> redacted = {{1, "world", "anyone"}, {31, "digest", "admin:x"}};
  EXPECT_TRUE(SameAcl(redacted, source));
  EXPECT_FALSE(SameAcl({{31, "digest", "other:x"}, {1, "world", "anyone"}}, source));
  EXPECT_FALSE(SameAcl({{1, "digest", "admin:x"}, {1, "world", "anyone"}}, source));
  EXPECT_FALSE(SameAcl(source, {{31, "digest", "admin:other="}, {1, "world", "anyone"}})) << "not redacted: ids differ";
  const NodesPlan plan = PlanNodes({{"/r", {"", source}}}, {{"/r", {"", redacted}}}, PathFilter(""), {});
  EXPECT_TRUE(plan.acls.empty());
}

TEST(ZooKeeperTransactions, AreBoundedByBytesAndCount) {
  std::vector<ZooKeeperOp> ops;
  for (int i = 0; i < 5; ++i) {
    ops.push_back({Kind::kCreate, "/r/n" + std::to_string(i), std::string(100, 'x'), {}, false});
  }
  EXPECT_EQ(SplitIntoTransactions(ops, kDefaultJuteMaxBuffer, 2).size(), 3u);
  EXPECT_EQ(SplitIntoTransactions(ops, kDefaultJuteMaxBuffer, 1000).size(), 1u);

  // Two 600 KiB nodes never share a transaction; a 900 KiB node fits in one on its own.
  std::vector<ZooKeeperOp> big = {
      {Kind::kCreate, "/r/a", std::string(600 * 1024, 'a'), {}, false},
      {Kind::kSet, "/r/b", std::string(600 * 1024, 'b'), {}, false},
      {Kind::kCreate, "/r/c", std::string(900 * 1024, 'c'), {}, false},
      {Kind::kDelete, "/r/d", "", {}, false}};
  const auto transactions = SplitIntoTransactions(big, kDefaultJuteMaxBuffer, 1000);
  ASSERT_EQ(transactions.size(), 3u);
  EXPECT_THAT(Paths(transactions[2]), ElementsAre("/r/c", "/r/d"));
  for (const auto& t : transactions) {
    std::size_t bytes = 0;
    for (const ZooKeeperOp& op : t) bytes += EncodedSize(op);
    EXPECT_LT(bytes, kDefaultJuteMaxBuffer);
  }
  // Alone even when larger than any transaction may be: the server names the problem.
  EXPECT_EQ(SplitIntoTransactions(big, 64 * 1024, 1000).size(), 4u);
}

TEST(ZooKeeperDigest, AclIdIsUserAndBase64Sha1) {
  // The value ZooKeeper's DigestAuthenticationProvider.generateDigest("super:test") gives.
  EXPECT_EQ(DigestAclId({"super", "test"}), "super:D/InIHSb7yEEbrWz8b9l71RjZJU=");
}

}  // namespace
}  // namespace ro::plugins::zookeeper

// zookeeper-to-zookeeper-nodes against two real ZooKeeper servers (tests/testenv): copies
// a 10,000-znode tree (1 KiB average data) with the plugin, then the same tree with a
// naive copy (one synchronous call per read and per write, as a zkcopy-style script
// does), and runs the plugin a second time over the unchanged tree. Prints nodes/s of both
// copies and the no-op run's seconds and writes (which must be 0).
//
//   zookeeper_nodes_bench [nodes]      (default 10000)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "ro/plugins/zookeeper/nodes_sync.h"
#include "ro/testenv/zookeeper_server.h"

namespace {

using ro::plugins::ZooKeeperClient;
using ro::plugins::ZooKeeperOp;
using ro::plugins::ZooKeeperOptions;
using ro::plugins::zookeeper::NodesSyncConfig;
using ro::plugins::zookeeper::NodesSyncResult;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

ZooKeeperOptions OptionsFor(const ro::testenv::ZooKeeperServer& server) {
  ZooKeeperOptions options;
  options.servers = {server.connect_string()};
  options.connect_timeout = std::chrono::seconds(20);
  return options;
}

// /bench/gNN/nNNNN: 100 groups, data 0..2047 bytes (1 KiB on average).
std::vector<ZooKeeperOp> TreeOps(const std::string& root, int nodes) {
  std::vector<ZooKeeperOp> ops;
  ops.push_back({ZooKeeperOp::Kind::kCreate, root, "", {}, false});
  const int groups = 100;
  for (int g = 0; g < groups; ++g) {
    ops.push_back({ZooKeeperOp::Kind::kCreate, root + "/g" + std::to_string(g), "", {}, false});
  }
  for (int i = 0; i < nodes - groups - 1; ++i) {
    std::string data(static_cast<std::size_t>((i * 7919) % 2048), static_cast<char>(i & 0xff));
    ops.push_back({ZooKeeperOp::Kind::kCreate,
                   root + "/g" + std::to_string(i % groups) + "/n" + std::to_string(i),
                   std::move(data), {}, false});
  }
  return ops;
}

// One synchronous round trip per call: Get, GetAcl and Children on the source, Create on
// the destination, depth first.
long NaiveCopy(ZooKeeperClient& source, ZooKeeperClient& destination, const std::string& path) {
  const auto node = source.Get(path);
  if (!node) return 0;
  destination.Create(path, node->data, {}, source.GetAcl(path));
  long copied = 1;
  for (const std::string& child : source.Children(path)) {
    copied += NaiveCopy(source, destination, path + "/" + child);
  }
  return copied;
}

}  // namespace

int main(int argc, char** argv) {
  const int nodes = argc > 1 ? std::atoi(argv[1]) : 10000;
  ro::testenv::ZooKeeperServer source_server;
  ro::testenv::ZooKeeperServer destination_server;
  ZooKeeperClient source(OptionsFor(source_server));
  ZooKeeperClient destination(OptionsFor(destination_server));

  std::size_t data_bytes = 0;
  std::vector<ZooKeeperOp> ops = TreeOps("/bench", nodes);
  for (const ZooKeeperOp& op : ops) data_bytes += op.data.size();
  for (const auto& t : ro::plugins::zookeeper::SplitIntoTransactions(
           std::move(ops), ro::plugins::zookeeper::kDefaultJuteMaxBuffer, 1000)) {
    source.Multi(t);
  }
  std::printf("tree: %d znodes, %.0f bytes of data on average\n", nodes,
              static_cast<double>(data_bytes) / nodes);

  NodesSyncConfig config;
  config.source_name = "source";
  config.destination_name = "destination";
  config.root_path = "/bench";
  config.create_root_path = true;
  const NodesSyncResult first = ro::plugins::zookeeper::SyncNodes(source, destination, config);
  const double first_s = std::chrono::duration<double>(first.duration).count();
  std::printf("plugin copy:    %.2f s, %.0f nodes/s (%lld created, %lld transactions)\n", first_s,
              static_cast<double>(first.counts.created) / first_s,
              static_cast<long long>(first.counts.created),
              static_cast<long long>(first.counts.transactions));

  const NodesSyncResult second = ro::plugins::zookeeper::SyncNodes(source, destination, config);
  std::printf("plugin no-op:   %.2f s, %lld writes, %lld unchanged\n",
              std::chrono::duration<double>(second.duration).count(),
              static_cast<long long>(second.counts.writes),
              static_cast<long long>(second.counts.unchanged));

  destination.DeleteRecursive("/bench");
  const auto started = Clock::now();
  const long copied = NaiveCopy(source, destination, "/bench");
  const double naive_s = Seconds(Clock::now() - started);
  std::printf("naive copy:     %.2f s, %.0f nodes/s (%ld created, one call per node)\n", naive_s,
              static_cast<double>(copied) / naive_s, copied);
  return second.counts.writes == 0 ? 0 : 1;
}

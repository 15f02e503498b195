// zookeeper-to-zookeeper-nodes against two real ZooKeeper servers (tests/testenv, JVMs
// with the Debian package's defaults): copies a 10,000-znode tree (1 KiB average data)
// into an empty destination with the plugin and runs it a second time over the unchanged
// tree, `rounds` times; then copies the tree with a naive copy (one synchronous call per
// read and per write, as a zkcopy-style script does). Prints every round (with the CPU
// seconds of this process and of each server), the median nodes/s and no-op seconds of
// the rounds after the first (the first warms the servers' JIT, as a running ensemble
// is), and the naive copy's nodes/s. Exits 1 when a no-op run wrote anything.
//
//   zookeeper_nodes_bench [nodes] [rounds]      (defaults 10000, 5)
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "ro/plugins/zookeeper/nodes_sync.h"
#include "ro/testenv/process.h"
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
  options.read_sessions = ro::plugins::zookeeper::kReadSessions;  // as the controller runs it
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

double CpuSeconds(pid_t pid) {
  return std::chrono::duration<double>(ro::testenv::CpuTime(pid).value_or(std::chrono::microseconds(0)))
      .count();
}

// CPU seconds (user + system) of three processes, for a per-phase difference.
struct Cpu {
  double client = 0, source = 0, destination = 0;
  Cpu operator-(const Cpu& o) const {
    return {client - o.client, source - o.source, destination - o.destination};
  }
};

struct Round {
  double copy_s = 0;
  Cpu copy_cpu;
  double noop_s = 0;
  long long noop_writes = 0;
  long long transactions = 0;
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  const int nodes = argc > 1 ? std::atoi(argv[1]) : 10000;
  const int rounds = argc > 2 ? std::max(2, std::atoi(argv[2])) : 5;
  // The servers' JVMs as Debian's zookeeper package runs them (the JVM's defaults, full
  // JIT), not the quick-start flags of the tests.
  ro::testenv::ZooKeeperServerOptions server_options;
  server_options.quick_start_jvm = false;
  ro::testenv::ZooKeeperServer source_server(server_options);
  ro::testenv::ZooKeeperServer destination_server(server_options);
  ZooKeeperClient source(OptionsFor(source_server));
  ZooKeeperClient destination(OptionsFor(destination_server));
  const auto cpu = [&] {
    return Cpu{CpuSeconds(getpid()), CpuSeconds(source_server.process().pid()),
               CpuSeconds(destination_server.process().pid())};
  };

  std::size_t data_bytes = 0;
  std::vector<ZooKeeperOp> ops = TreeOps("/bench", nodes);
  for (const ZooKeeperOp& op : ops) data_bytes += op.data.size();
  for (const auto& t : ro::plugins::zookeeper::SplitIntoTransactions(
           std::move(ops), ro::plugins::zookeeper::kDefaultJuteMaxBuffer, 1000)) {
    source.Multi(t);
  }
  std::printf("tree: %d znodes, %.0f bytes of data on average; %d rounds of copy + no-op\n",
              nodes, static_cast<double>(data_bytes) / nodes, rounds);

  NodesSyncConfig config;
  config.source_name = "source";
  config.destination_name = "destination";
  config.root_path = "/bench";
  config.create_root_path = true;
  std::vector<Round> results;
  bool writes_on_noop = false;
  for (int r = 0; r < rounds; ++r) {
    destination.DeleteRecursive("/bench");
    Round round;
    const Cpu before = cpu();
    const NodesSyncResult copy = ro::plugins::zookeeper::SyncNodes(source, destination, config);
    round.copy_cpu = cpu() - before;
    round.copy_s = std::chrono::duration<double>(copy.duration).count();
    round.transactions = copy.counts.transactions;
    const NodesSyncResult noop = ro::plugins::zookeeper::SyncNodes(source, destination, config);
    round.noop_s = std::chrono::duration<double>(noop.duration).count();
    round.noop_writes = noop.counts.writes;
    writes_on_noop = writes_on_noop || noop.counts.writes != 0 || copy.counts.created != nodes;
    std::printf(
        "round %d%s: copy %.2f s = %.0f nodes/s (%lld created, %lld transactions; CPU s: "
        "client %.2f, source server %.2f, destination server %.2f), no-op %.2f s, %lld writes\n",
        r + 1, r == 0 ? " (servers cold)" : "", round.copy_s,
        static_cast<double>(copy.counts.created) / round.copy_s,
        static_cast<long long>(copy.counts.created), round.transactions, round.copy_cpu.client,
        round.copy_cpu.source, round.copy_cpu.destination, round.noop_s, round.noop_writes);
    results.push_back(round);
  }
  std::vector<double> copy_rates, noop_seconds;
  for (std::size_t r = 1; r < results.size(); ++r) {
    copy_rates.push_back(nodes / results[r].copy_s);
    noop_seconds.push_back(results[r].noop_s);
  }

  destination.DeleteRecursive("/bench");
  const auto started = Clock::now();
  const long copied = NaiveCopy(source, destination, "/bench");
  const double naive_s = Seconds(Clock::now() - started);

  std::printf("plugin copy:    %.0f nodes/s (median of rounds 2-%d, warm servers; cold round 1: "
              "%.0f nodes/s)\n",
              Median(copy_rates), rounds, nodes / results[0].copy_s);
  std::printf("plugin no-op:   %.2f s (median of rounds 2-%d), writes %s\n", Median(noop_seconds),
              rounds, writes_on_noop ? "NOT 0" : "0 in every round");
  std::printf("naive copy:     %.0f nodes/s (%.2f s, %ld created, one call per read and write)\n",
              static_cast<double>(copied) / naive_s, naive_s, copied);
  return writes_on_noop ? 1 : 0;
}

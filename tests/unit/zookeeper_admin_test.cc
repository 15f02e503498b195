// The srvr report (four-letter word and AdminServer JSON) and what the Database
// controller makes of an admin endpoint.
#include "ro/plugins/zookeeper_admin.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "database/database_controller.h"

namespace ro::plugins {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;

TEST(ZooKeeperSrvr, TheFourLetterWordGivesVersionAndMode) {
  const ZooKeeperServerInfo info = ParseSrvrText(
      "Zookeeper version: 3.8.0-5a02a05eddb59aee6ac762f7ea82e92a68eb9c0f, built on 2022-02-25 08:49 UTC\n"
      "Latency min/avg/max: 0/0.0/0\nReceived: 3\nSent: 2\nConnections: 1\nOutstanding: 0\n"
      "Zxid: 0x0\nMode: standalone\nNode count: 5\n");
  EXPECT_EQ(info.version, "3.8.0-5a02a05eddb59aee6ac762f7ea82e92a68eb9c0f");
  EXPECT_EQ(info.mode, "standalone");
  EXPECT_THROW(ParseSrvrText("srvr is not executed because it is not in the whitelist.\n"),
               ZooKeeperError);
}

TEST(ZooKeeperSrvr, TheAdminServerGivesVersionAndState) {
  const ZooKeeperServerInfo info = ParseSrvrJson(
      R"({"version": "3.9.1-abc, built on 2023-10-05 20:34 UTC", "read_only": false,
          "server_stats": {"server_state": "leader"}, "command": "srvr", "error": null})");
  EXPECT_EQ(info.version, "3.9.1-abc");
  EXPECT_EQ(info.mode, "leader");
  EXPECT_THROW(ParseSrvrJson("<html>404</html>"), ZooKeeperError);
}

TEST(ZooKeeperSrvr, AnUnknownProtocolIsBadArguments) {
  try {
    QueryServerInfo({"ftp", "127.0.0.1", "2181"}, std::chrono::milliseconds(100));
    FAIL() << "no error";
  } catch (const ZooKeeperError& e) {
    EXPECT_EQ(e.code(), ZooKeeperError::Code::kBadArguments);
  }
}

json ZkWithAdmin(const json& admin) {
  return {{"metadata", {{"name", "zk"}}},
          {"spec", {{"zookeeper", {{"client", {{"servers", {"127.0.0.1:2181"}}}}, {"admin", admin}}}}}};
}

TEST(DatabaseAdminObserveTest, TheAdminEndpointGivesTheVersionOrAReason) {
  using controllers::DatabaseOptions;
  using controllers::ObserveDatabase;
  const auto connected = [](const std::vector<std::string>&) {};
  const auto version = [](const std::string& protocol, const std::string& host, const std::string& port) {
    EXPECT_EQ(protocol + "://" + host + ":" + port, "tcp://127.0.0.1:2181");
    return std::string("3.8.0");
  };
  const json admin = {{"protocol", "tcp"}, {"host", "127.0.0.1"}, {"port", "2181"}};
  const runtime::Observation ok = ObserveDatabase(ZkWithAdmin(admin), connected, DatabaseOptions{}, version);
  EXPECT_EQ(ok.reason, "Connected");
  EXPECT_EQ(ok.fields.at("serverVersion"), "3.8.0");

  const runtime::Observation down = ObserveDatabase(
      ZkWithAdmin(admin), connected, DatabaseOptions{},
      [](const std::string&, const std::string&, const std::string&) -> std::string {
        throw ZooKeeperError(ZooKeeperError::Code::kUnreachable, 0, "", "ZooKeeper srvr: timed out");
      });
  EXPECT_EQ(down.reason, "AdminUnreachable");
  EXPECT_THAT(down.message, HasSubstr("tcp://127.0.0.1:2181"));

  const runtime::Observation incomplete =
      ObserveDatabase(ZkWithAdmin({{"protocol", "http"}}), connected, DatabaseOptions{}, version);
  EXPECT_EQ(incomplete.reason, "InvalidSpec");
}

}  // namespace
}  // namespace ro::plugins

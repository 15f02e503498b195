#include "ro/testenv/zookeeper_server.h"

#include "net.h"

namespace ro::testenv {
using namespace std::chrono_literals;

namespace {

// Every four-letter-word probe gets at most this long: a probe that arrives while the
// database loads can otherwise hang for good.
constexpr auto kProbeTimeout = 2s;

// Debian's zookeeper package layout.
constexpr const char* kClassPath =
    "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar";

// log4j 1.2: everything to stdout, which Process sends to zookeeper.log.
constexpr const char* kLog4jProperties =
    "log4j.rootLogger=INFO, CONSOLE\n"
    "log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender\n"
    "log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout\n"
    "log4j.appender.CONSOLE.layout.ConversionPattern=%d{ISO8601} [myid:%X{myid}] - %-5p [%t:%C{1}@%L] - %m%n\n";

}  // namespace

ZooKeeperServer::ZooKeeperServer(ZooKeeperServerOptions options) : dir_("zookeeper") {
  auto start = std::chrono::steady_clock::now();
  auto conf = dir_.path() / "conf";
  auto data = dir_.path() / "data";
  std::filesystem::create_directories(conf);
  std::filesystem::create_directories(data);
  WriteFile(conf / "zoo.cfg",
            "tickTime=2000\n"
            "dataDir=" + data.string() + "\n"
            "clientPort=" + std::to_string(port_.port()) + "\n"
            "clientPortAddress=127.0.0.1\n"
            // The AdminServer is an HTTP server on 8080 by default: off.
            "admin.enableServer=false\n"
            "4lw.commands.whitelist=ruok,srvr,stat,mntr\n"
            // Test data need not survive a power cut: no fsync per transaction.
            "forceSync=no\n"
            // Pre-allocate transaction logs in 1 MiB steps instead of 64 MiB.
            "preAllocSize=1024\n");
  WriteFile(conf / "log4j.properties", kLog4jProperties);
  ProcessOptions process;
  process.name = "zookeeper";
  process.argv = {"java"};
  if (options.quick_start_jvm) {
    // A small heap and the serial collector: a test server, on 2 shared cores.
    process.argv.insert(process.argv.end(),
                        {"-Xms32m", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"});
  }  // else the JVM's defaults, as Debian's zookeeper package runs the server
  process.argv.insert(process.argv.end(),
                      {"-Dzookeeper.jmx.log4j.disable=true", "-cp", conf.string() + ":" + kClassPath,
                       "org.apache.zookeeper.server.ZooKeeperServerMain",
                       (conf / "zoo.cfg").string()});
  process.log_path = dir_.path() / "zookeeper.log";
  process_ = std::make_unique<Process>(std::move(process));
  process_->WaitUntilReady(
      [&] { return FourLetterWord("srvr").find("Mode: standalone") != std::string::npos; },
      options.start_timeout, "srvr reports Mode: standalone");
  startup_time_ = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
}

ZooKeeperServer::~ZooKeeperServer() { Stop(); }

std::string ZooKeeperServer::connect_string() const { return "127.0.0.1:" + std::to_string(port_.port()); }

std::string ZooKeeperServer::FourLetterWord(const std::string& word) const {
  return internal::TcpExchange(port_.port(), word, kProbeTimeout);
}

void ZooKeeperServer::Stop() {
  if (process_) process_->Stop();
}

}  // namespace ro::testenv

// The JSON log line shape of manual 6.2.4, for lines written through ro::log::Logger and
// through plain spdlog calls. Each test logs to its own temporary file and parses it.
#include "ro/common/log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "ro/common/time.h"

namespace ro::log {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;
using ::testing::ElementsAre;

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    previous_ = spdlog::default_logger();
    path_ = std::filesystem::temp_directory_path() /
            ("ro_log_test_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".log");
    std::filesystem::remove(path_);
  }
  void TearDown() override {
    spdlog::set_default_logger(previous_);
    std::filesystem::remove(path_);
  }

  void SetupLog(std::string level = "debug",
                std::vector<std::pair<std::string, std::string>> process_fields = {}) {
    LogOptions options;
    options.process_id = "eventslistener";
    options.level = std::move(level);
    options.process_fields = std::move(process_fields);
    options.output = path_.string();
    ro::log::Setup(options);
  }

  std::vector<std::string> RawLines() const {
    std::ifstream in(path_);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }

  // Every line parsed, keeping key order.
  std::vector<ordered_json> Lines() const {
    std::vector<ordered_json> out;
    for (const std::string& line : RawLines()) out.push_back(ordered_json::parse(line));
    return out;
  }

  static std::vector<std::string> Keys(const ordered_json& object) {
    std::vector<std::string> keys;
    for (const auto& item : object.items()) keys.push_back(item.key());
    return keys;
  }

  std::shared_ptr<spdlog::logger> previous_;
  std::filesystem::path path_;
};

TEST_F(LogTest, LineHasTheManualsFieldsInOrder) {
  SetupLog();
  Logger().Info("object read from cluster",
                json{{"sourceCluster", {{"name", "source"}, {"namespace", "dr-config"}}},
                     {"event", {{"type", "update"}}}});
  const std::vector<ordered_json> lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(Keys(lines[0]),
              ElementsAre("level", "timestamp", "msg", "process", "event", "sourceCluster"));
  EXPECT_EQ(lines[0]["level"], "info");
  EXPECT_EQ(lines[0]["msg"], "object read from cluster");
  EXPECT_EQ(lines[0]["process"], ordered_json({{"id", "eventslistener"}}));
  EXPECT_EQ(lines[0]["event"]["type"], "update");
  EXPECT_EQ(lines[0]["sourceCluster"]["namespace"], "dr-config");
}

TEST_F(LogTest, TimestampIsRfc3339UtcWithNineFractionalDigits) {
  SetupLog();
  const auto before = std::chrono::system_clock::now();
  Logger().Info("x");
  const auto after = std::chrono::system_clock::now();
  const std::string timestamp = Lines().at(0)["timestamp"];
  EXPECT_EQ(timestamp.size(), 30u);
  EXPECT_TRUE(std::regex_match(
      timestamp, std::regex(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z)")))
      << timestamp;
  const auto t = common::ParseRfc3339(timestamp);
  EXPECT_LE(before, t);
  EXPECT_LE(t, after);
}

TEST_F(LogTest, ProcessCarriesExtraFieldsAfterId) {
  SetupLog("info", {{"consumerID", "event-processor-n74"}});
  Logger().Info("object uploaded in bucket");
  const ordered_json process = Lines().at(0)["process"];
  EXPECT_THAT(Keys(process), ElementsAre("id", "consumerID"));
  EXPECT_EQ(process["consumerID"], "event-processor-n74");
}

TEST_F(LogTest, EscapesQuotesNewlinesAndControlCharactersInMsg) {
  SetupLog();
  const std::string msg = "say \"hi\"\nnext\tline\\ \x01 end";
  Logger().Info(msg);
  spdlog::info("plain {}", "with \"quotes\"\nand newline");
  const std::vector<std::string> raw = RawLines();
  ASSERT_EQ(raw.size(), 2u);  // the embedded newlines did not split lines
  EXPECT_EQ(ordered_json::parse(raw[0])["msg"], msg);
  EXPECT_EQ(ordered_json::parse(raw[1])["msg"], "plain with \"quotes\"\nand newline");
}

TEST_F(LogTest, InvalidUtf8InMsgOrFieldsStillGivesValidJson) {
  SetupLog();
  Logger().Info("bad \xff byte", json{{"object", std::string("na\xc3me")}});
  const ordered_json line = Lines().at(0);
  EXPECT_EQ(line["msg"], "bad \xef\xbf\xbd byte");  // U+FFFD
  EXPECT_TRUE(line["object"].is_string());
}

TEST_F(LogTest, PlainSpdlogMessagesHaveTheSameShape) {
  SetupLog();
  spdlog::info("watch closed, reconnecting in {} ms", 800);
  Logger().Info("watch closed, reconnecting in 800 ms");
  const std::vector<ordered_json> lines = Lines();
  ASSERT_EQ(lines.size(), 2u);
  for (const ordered_json& line : lines) {
    EXPECT_THAT(Keys(line), ElementsAre("level", "timestamp", "msg", "process"));
    EXPECT_EQ(line["msg"], "watch closed, reconnecting in 800 ms");
    EXPECT_EQ(line["process"]["id"], "eventslistener");
  }
}

TEST_F(LogTest, LoggerMessagesAreNotFormatStrings) {
  SetupLog();
  Logger().Info("literal {} braces {:d}");
  EXPECT_EQ(Lines().at(0)["msg"], "literal {} braces {:d}");
}

TEST_F(LogTest, SpdlogLevelsFoldIntoTheManualsFour) {
  SetupLog("debug");
  spdlog::trace("dropped: below debug");
  spdlog::debug("d");
  spdlog::warn("w");
  spdlog::error("e");
  spdlog::critical("c");
  std::vector<std::string> levels;
  for (const ordered_json& line : Lines()) levels.push_back(line["level"]);
  EXPECT_THAT(levels, ElementsAre("debug", "warn", "error", "error"));
}

TEST_F(LogTest, LinesBelowTheLevelAreDropped) {
  SetupLog("warn");
  const Logger logger;
  EXPECT_FALSE(logger.Enabled(Level::kInfo));
  EXPECT_TRUE(logger.Enabled(Level::kWarn));
  logger.Debug("no");
  logger.Info("no", json{{"a", 1}});
  spdlog::info("no");
  logger.Warn("yes 1");
  logger.Error("yes 2");
  std::vector<std::string> msgs;
  for (const ordered_json& line : Lines()) msgs.push_back(line["msg"]);
  EXPECT_THAT(msgs, ElementsAre("yes 1", "yes 2"));
}

TEST_F(LogTest, BaseFieldsMergeWithCallFieldsAndCallFieldsWin) {
  SetupLog();
  const Logger base(json{{"controller", "bucket"}, {"object", "dr-config/a"}});
  const Logger derived = base.WithFields(json{{"bucket", {{"name", "bucket-dev"}}}});
  derived.Info("reconciled");
  derived.Error("failed", json{{"error", "boom"}, {"object", "dr-config/b"}});
  base.Info("base only");
  const std::vector<ordered_json> lines = Lines();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_THAT(Keys(lines[0]), ElementsAre("level", "timestamp", "msg", "process", "bucket",
                                          "controller", "object"));
  EXPECT_EQ(lines[1]["error"], "boom");
  EXPECT_EQ(lines[1]["object"], "dr-config/b");
  EXPECT_EQ(lines[1]["controller"], "bucket");
  EXPECT_FALSE(lines[2].contains("bucket"));
}

// Call fields interleaved with the base fields (no key in common): the line holds exactly
// the members of the merged object, in its key order, with the same escaping, as when
// the two objects are merged and serialised (the text is written without copying them).
TEST_F(LogTest, CallFieldsBetweenBaseFieldsKeepTheMergedObjectsTextAndOrder) {
  SetupLog();
  const json base_fields = {{"b", 1}, {"d", {{"x", "y"}, {"list", {1, "two", nullptr}}}}, {"f", "tab\there"}};
  const json call_fields = {{"a", "\"quoted\""}, {"c", json::array({1, 2})}, {"e", "bad \xff byte"},
                            {"g", {{"nested", {{"deep", true}}}}}, {"\u00e9t\u00e9", 2.5}};
  Logger(base_fields).Info("merged", call_fields);
  json merged = base_fields;
  merged.update(call_fields);
  const std::string expected = merged.dump(-1, ' ', false, json::error_handler_t::replace);
  const std::vector<std::string> raw = RawLines();
  ASSERT_EQ(raw.size(), 1u);
  const std::string tail = "," + expected.substr(1);  // the members, then the line's closing brace
  ASSERT_GE(raw[0].size(), tail.size());
  EXPECT_EQ(raw[0].substr(raw[0].size() - tail.size()), tail) << raw[0];
  EXPECT_THAT(Keys(Lines().at(0)),
              ElementsAre("level", "timestamp", "msg", "process", "a", "b", "c", "d", "e", "f", "g", "\u00e9t\u00e9"));
}

TEST_F(LogTest, ReservedKeysInFieldsAreMovedAside) {
  SetupLog();
  Logger().Info("real", json{{"msg", "fake"}, {"level", "debug"}, {"process", 1}});
  const ordered_json line = Lines().at(0);
  EXPECT_EQ(line["msg"], "real");
  EXPECT_EQ(line["level"], "info");
  EXPECT_EQ(line["fields.msg"], "fake");
  EXPECT_EQ(line["fields.level"], "debug");
  EXPECT_EQ(line["fields.process"], 1);
}

TEST_F(LogTest, NonObjectFieldsAreWrittenUnderFields) {
  SetupLog();
  Logger().Info("x", json::array({1, 2}));
  EXPECT_EQ(Lines().at(0)["fields"], ordered_json::array({1, 2}));
}

TEST_F(LogTest, ConcurrentThreadsWriteWholeLinesOnly) {
  SetupLog();
  constexpr int kThreads = 8;
  constexpr int kLinesPerThread = 400;
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([t] {
        const Logger logger(json{{"thread", t}});
        for (int i = 0; i < kLinesPerThread; ++i) {
          if (i % 2 == 0) {
            logger.Info(std::string(100, 'a' + static_cast<char>(t)), json{{"i", i}});
          } else {
            spdlog::info("thread {} line {}", t, i);
          }
        }
      });
    }
  }
  std::map<int, int> per_thread;
  int plain = 0;
  for (const std::string& raw : RawLines()) {
    const ordered_json line = ordered_json::parse(raw);  // throws on a torn line
    if (line.contains("thread")) {
      ++per_thread[line["thread"].get<int>()];
    } else {
      ++plain;
    }
  }
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(per_thread[t], kLinesPerThread / 2) << t;
  EXPECT_EQ(plain, kThreads * kLinesPerThread / 2);
}

TEST(LogLevelTest, ParsesExactlyTheFourNames) {
  EXPECT_EQ(ParseLevel("debug"), Level::kDebug);
  EXPECT_EQ(ParseLevel("info"), Level::kInfo);
  EXPECT_EQ(ParseLevel("warn"), Level::kWarn);
  EXPECT_EQ(ParseLevel("error"), Level::kError);
  for (const char* bad : {"", "INFO", "warning", "trace", "fatal"}) {
    EXPECT_THROW(ParseLevel(bad), std::invalid_argument) << bad;
  }
  EXPECT_EQ(ToString(Level::kWarn), "warn");
}

TEST(LogSetupTest, RejectsBadOptionsWithoutTouchingTheDefaultLogger) {
  const auto before = spdlog::default_logger();
  LogOptions options;
  options.process_id = "";
  EXPECT_THROW(ro::log::Setup(options), std::invalid_argument);
  options.process_id = "x";
  options.level = "verbose";
  EXPECT_THROW(ro::log::Setup(options), std::invalid_argument);
  options.level = "info";
  options.process_fields = {{"id", "other"}};
  EXPECT_THROW(ro::log::Setup(options), std::invalid_argument);
  options.process_fields.clear();
  options.output = "/dev/null/log.txt";  // a file cannot be a directory
  EXPECT_THROW(ro::log::Setup(options), std::runtime_error);
  EXPECT_EQ(spdlog::default_logger(), before);
}

TEST(LoggerTest, RejectsNonObjectBaseFields) {
  EXPECT_THROW(Logger(json("text")), std::invalid_argument);
  EXPECT_NO_THROW(Logger(json(nullptr)));
}

}  // namespace
}  // namespace ro::log

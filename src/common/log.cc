#include "ro/common/log.h"

#include <climits>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/formatter.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "ro/common/time.h"

namespace ro::log {
namespace {

// Logger passes its pre-serialized fields to the formatter inside the spdlog payload,
// as "<msg> {<members>}" (readable even under a plain pattern formatter), and marks
// such records by setting source_loc.filename to this array's address, with
// source_loc.line = the length of <msg>. The formatter compares the pointer, never the
// text, so no plain spdlog message can be mistaken for one.
constexpr char kStructuredMarker[] = "ro::log::Logger";

constexpr std::string_view kReservedKeys[] = {"level", "timestamp", "msg", "process"};

spdlog::level::level_enum ToSpdlog(Level level) {
  switch (level) {
    case Level::kDebug: return spdlog::level::debug;
    case Level::kInfo: return spdlog::level::info;
    case Level::kWarn: return spdlog::level::warn;
    case Level::kError: return spdlog::level::err;
  }
  return spdlog::level::info;
}

// spdlog has six levels, the manual four: trace folds into debug, critical into error.
std::string_view JsonLevel(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug: return "debug";
    case spdlog::level::info: return "info";
    case spdlog::level::warn: return "warn";
    default: return "error";
  }
}

// JSON text without escaping surprises: invalid UTF-8 becomes U+FFFD instead of throwing.
std::string Dump(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// The object's members as they appear between its braces: `"a":1,"b":2` ("" if empty).
std::string Members(const nlohmann::json& object) {
  if (object.empty()) return {};
  const std::string text = Dump(object);
  return text.substr(1, text.size() - 2);
}

// Caller fields as an object, with reserved keys moved aside (see the header).
nlohmann::json Normalize(const nlohmann::json& fields) {
  if (fields.is_null()) return nlohmann::json::object();
  if (!fields.is_object()) return nlohmann::json{{"fields", fields}};
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [key, value] : fields.items()) {
    bool reserved = false;
    for (const std::string_view r : kReservedKeys) reserved = reserved || key == r;
    out[reserved ? "fields." + key : key] = value;
  }
  return out;
}

// Formats every record of the default logger as one JSON line (see the header).
class JsonFormatter final : public spdlog::formatter {
 public:
  explicit JsonFormatter(std::string process_json) : process_json_(std::move(process_json)) {}

  void format(const spdlog::details::log_msg& record, spdlog::memory_buf_t& dest) override {
    std::string_view msg(record.payload.data(), record.payload.size());
    std::string_view fields;
    if (record.source.filename == kStructuredMarker) {
      const auto msg_size = static_cast<std::size_t>(record.source.line);
      // " {" + members + "}" follows the message when there are fields.
      if (msg.size() > msg_size + 3) fields = msg.substr(msg_size + 2, msg.size() - msg_size - 3);
      msg = msg.substr(0, msg_size);
    }
    Append(dest, R"({"level":")");
    Append(dest, JsonLevel(record.level));
    Append(dest, R"(","timestamp":")");
    Append(dest, common::FormatRfc3339Nano(record.time));
    Append(dest, R"(","msg":)");
    Append(dest, Dump(nlohmann::json(std::string(msg))));
    Append(dest, R"(,"process":)");
    Append(dest, process_json_);
    if (!fields.empty()) {
      dest.push_back(',');
      Append(dest, fields);
    }
    Append(dest, "}\n");
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>(process_json_);
  }

 private:
  static void Append(spdlog::memory_buf_t& dest, std::string_view text) {
    dest.append(text.data(), text.data() + text.size());
  }

  const std::string process_json_;  // {"id":"...",...}
};

}  // namespace

Level ParseLevel(std::string_view text) {
  if (text == "debug") return Level::kDebug;
  if (text == "info") return Level::kInfo;
  if (text == "warn") return Level::kWarn;
  if (text == "error") return Level::kError;
  throw std::invalid_argument("invalid log level \"" + std::string(text) +
                              "\": want debug, info, warn or error");
}

std::string_view ToString(Level level) { return JsonLevel(ToSpdlog(level)); }

void Setup(const LogOptions& options) {
  if (options.process_id.empty()) {
    throw std::invalid_argument("log options: process id must not be empty");
  }
  const Level level = ParseLevel(options.level);
  nlohmann::ordered_json process = {{"id", options.process_id}};
  for (const auto& [key, value] : options.process_fields) {
    if (key == "id") throw std::invalid_argument("log options: process field \"id\" is reserved");
    process[key] = value;
  }

  spdlog::sink_ptr sink;
  if (options.output.empty()) {
    sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
  } else {
    try {
      sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(options.output,
                                                                 /*truncate=*/false);
    } catch (const spdlog::spdlog_ex& e) {
      throw std::runtime_error("cannot open log file \"" + options.output + "\": " + e.what());
    }
  }
  // The default logger's name is "" in spdlog; keeping it lets spdlog::get("") work.
  auto logger = std::make_shared<spdlog::logger>("", std::move(sink));
  logger->set_formatter(std::make_unique<JsonFormatter>(
      process.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)));
  logger->set_level(ToSpdlog(level));
  logger->flush_on(spdlog::level::trace);  // every line: a crash must not lose the last ones
  spdlog::set_default_logger(std::move(logger));
}

namespace {

// spdlog's default logger. spdlog's registry is a function-local static inside the
// shared library, which is not built with ThreadSanitizer: two threads logging first at
// the same time are correctly synchronised by its guard, but TSan cannot see the guard's
// fast path and reports a race. Touching the registry first inside a static of our own
// (instrumented) code makes its construction visibly happen before every use.
spdlog::logger* DefaultLogger() {
  static spdlog::logger* const first = spdlog::default_logger_raw();
  (void)first;
  return spdlog::default_logger_raw();
}

}  // namespace

struct Logger::Base {
  nlohmann::json fields = nlohmann::json::object();
  std::string members;  // Members(fields), computed once
  // Each field's `"key":value` text, in the fields' (sorted) order.
  std::vector<std::pair<std::string, std::string>> member_texts;
};

namespace {

// One object member as Dump writes it: `"key":value`.
std::string MemberText(const std::string& key, const nlohmann::json& value) {
  std::string text = Dump(nlohmann::json(key));
  text += ':';
  text += Dump(value);
  return text;
}

// Members(Normalize(fields) merged over base.fields), written without copying either:
// the same text, because both are key-sorted maps and the merge keeps that order. Only
// when no call field is reserved or already a base field (nullopt: take the long way).
std::optional<std::string> MergedMembers(const std::vector<std::pair<std::string, std::string>>& base,
                                         const nlohmann::json& base_fields, const nlohmann::json& fields) {
  if (!fields.is_object()) return std::nullopt;
  for (const auto& [key, value] : fields.items()) {
    for (const std::string_view r : kReservedKeys) {
      if (key == r) return std::nullopt;
    }
    if (base_fields.contains(key)) return std::nullopt;
  }
  std::string out;
  auto next_base = base.begin();
  const auto append = [&out](std::string_view text) {
    if (!out.empty()) out += ',';
    out += text;
  };
  for (auto it = fields.begin(); it != fields.end(); ++it) {
    for (; next_base != base.end() && next_base->first < it.key(); ++next_base) append(next_base->second);
    append(MemberText(it.key(), it.value()));
  }
  for (; next_base != base.end(); ++next_base) append(next_base->second);
  return out;
}

}  // namespace

Logger::Logger() : base_(std::make_shared<const Base>()) {}

Logger::Logger(const nlohmann::json& base_fields) {
  if (!base_fields.is_null() && !base_fields.is_object()) {
    throw std::invalid_argument("log base fields must be a JSON object, got " + Dump(base_fields));
  }
  Base base;
  base.fields = Normalize(base_fields);
  base.members = Members(base.fields);
  for (auto it = base.fields.begin(); it != base.fields.end(); ++it) {
    base.member_texts.emplace_back(it.key(), MemberText(it.key(), it.value()));
  }
  base_ = std::make_shared<const Base>(std::move(base));
}

Logger Logger::WithFields(const nlohmann::json& fields) const {
  nlohmann::json merged = base_->fields;
  merged.update(Normalize(fields));
  return Logger(merged);
}

bool Logger::Enabled(Level level) const {
  const spdlog::logger* logger = DefaultLogger();
  return logger != nullptr && logger->should_log(ToSpdlog(level));
}

void Logger::Log(Level level, std::string_view msg) const {
  Log(level, msg, nlohmann::json());
}

void Logger::Log(Level level, std::string_view msg, const nlohmann::json& fields) const {
  spdlog::logger* logger = DefaultLogger();
  const spdlog::level::level_enum spd_level = ToSpdlog(level);
  if (logger == nullptr || !logger->should_log(spd_level)) return;

  // The message length travels in source_loc.line (an int).
  if (msg.size() > static_cast<std::size_t>(INT_MAX)) msg = msg.substr(0, INT_MAX);
  std::string members;
  if (fields.is_null() || (fields.is_object() && fields.empty())) {
    members = base_->members;
  } else if (std::optional<std::string> fast = MergedMembers(base_->member_texts, base_->fields, fields)) {
    members = std::move(*fast);
  } else {
    nlohmann::json merged = base_->fields;
    merged.update(Normalize(fields));
    members = Members(merged);
  }
  std::string payload(msg);
  if (!members.empty()) {
    payload.reserve(msg.size() + members.size() + 3);
    payload += " {";
    payload += members;
    payload += '}';
  }
  logger->log(spdlog::source_loc{kStructuredMarker, static_cast<int>(msg.size()), ""},
              spd_level, spdlog::string_view_t(payload.data(), payload.size()));
}

void Logger::Debug(std::string_view msg) const { Log(Level::kDebug, msg); }
void Logger::Debug(std::string_view msg, const nlohmann::json& fields) const {
  Log(Level::kDebug, msg, fields);
}
void Logger::Info(std::string_view msg) const { Log(Level::kInfo, msg); }
void Logger::Info(std::string_view msg, const nlohmann::json& fields) const {
  Log(Level::kInfo, msg, fields);
}
void Logger::Warn(std::string_view msg) const { Log(Level::kWarn, msg); }
void Logger::Warn(std::string_view msg, const nlohmann::json& fields) const {
  Log(Level::kWarn, msg, fields);
}
void Logger::Error(std::string_view msg) const { Log(Level::kError, msg); }
void Logger::Error(std::string_view msg, const nlohmann::json& fields) const {
  Log(Level::kError, msg, fields);
}

}  // namespace ro::log

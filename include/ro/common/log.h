// Structured JSON logging in the shape of the manual's section 6.2.4 ("Understanding
// logging"): every line of every binary is one JSON object,
//
//   {"level":"info","timestamp":"2023-11-28T18:05:26.904276629Z","msg":"object read
//    from cluster","process":{"id":"eventslistener"},"sourceCluster":{...},...}
//
// with the keys in this order: level ("debug" | "info" | "warn" | "error"), timestamp
// (RFC 3339, UTC, always 9 fractional digits), msg, process ({"id": <component>, plus
// the optional extra process fields}), then the caller's structured fields (event,
// sourceObject, oldSourceObject, sourceCluster, destinationObject, destinationCluster,
// bucket, bucketObject, lastUpdate, error, controller, object, ...) in key order.
//
// Built on spdlog: Setup() installs a JSON formatter on spdlog's default logger, so code
// that only knows spdlog (src/kube: `spdlog::info("watch closed, reconnecting in {} ms",
// ms)`) produces exactly the same shape, with no structured fields.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace ro::log {

enum class Level { kDebug, kInfo, kWarn, kError };

// "debug", "info", "warn", "error" (exactly; lower case). Throws std::invalid_argument
// naming the accepted values for anything else.
Level ParseLevel(std::string_view text);
// The JSON spelling of `level`: "debug", "info", "warn", "error".
std::string_view ToString(Level level);

struct LogOptions {
  // process.id of every line: the component name ("eventslistener", "processor",
  // "bucket-controller", ...). Required.
  std::string process_id;
  // Lines below this level are dropped. "debug", "info", "warn" or "error".
  std::string level = "info";
  // Extra members of `process`, written after "id" in this order, e.g.
  // {{"consumerID", "event-processor-n74"}}.
  std::vector<std::pair<std::string, std::string>> process_fields;
  // Where lines go. Empty: standard output (a container's stdout is what `kubectl logs`
  // shows; the manual pipes it into jq). Otherwise a file path, appended to and flushed
  // after every line (tests read it back).
  std::string output;
};

// Installs the JSON logger as spdlog's default logger (process-wide). Call once from
// main() before starting threads; tests may call it again to redirect output. Every
// line is flushed as it is written and lines from concurrent threads never interleave.
// Throws std::invalid_argument for an empty process_id or a bad level, and
// std::runtime_error when the output file cannot be opened.
void Setup(const LogOptions& options);

// A handle that writes lines with fixed base fields (e.g. {"controller": "bucket"}) plus
// per-call fields, through spdlog's default logger (so Setup() decides format, level
// and destination).
//
// Cheap to copy (shares its immutable base fields); thread-safe. Calls below the
// current level return before any formatting. Keys "level", "timestamp", "msg" and
// "process" are reserved: a field with one of those names is written as
// "fields.<name>" instead. A non-object `fields` value is written under "fields".
class Logger {
 public:
  // No base fields.
  Logger();
  // `base_fields` must be a JSON object (or null for none); throws std::invalid_argument
  // otherwise.
  explicit Logger(const nlohmann::json& base_fields);

  // A copy whose base fields are these merged with `fields` (later values win).
  Logger WithFields(const nlohmann::json& fields) const;

  void Debug(std::string_view msg) const;
  void Debug(std::string_view msg, const nlohmann::json& fields) const;
  void Info(std::string_view msg) const;
  void Info(std::string_view msg, const nlohmann::json& fields) const;
  void Warn(std::string_view msg) const;
  void Warn(std::string_view msg, const nlohmann::json& fields) const;
  void Error(std::string_view msg) const;
  void Error(std::string_view msg, const nlohmann::json& fields) const;

  void Log(Level level, std::string_view msg) const;
  void Log(Level level, std::string_view msg, const nlohmann::json& fields) const;

  // True when a line at `level` would be written now.
  bool Enabled(Level level) const;

 private:
  struct Base;  // the base fields and their pre-serialized form
  std::shared_ptr<const Base> base_;
};

}  // namespace ro::log

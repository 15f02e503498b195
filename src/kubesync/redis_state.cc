#include "ro/kubesync/redis_state.h"

#include "ro/common/backoff.h"

#include <hiredis/hiredis.h>

#include "redis_stream.h"

#include <algorithm>
#include <charconv>
#include <mutex>
#include <utility>
#include <vector>

namespace ro::kubesync {
namespace {

using std::chrono::milliseconds;

// Keys fetched per SCAN call and removed per UNLINK: big enough to take few round trips,
// small enough that one command stays well under a millisecond of server time.
constexpr int kScanBatch = 500;

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

struct ReaderDeleter {
  void operator()(redisReader* r) const { redisReaderFree(r); }
};
using Reader = std::unique_ptr<redisReader, ReaderDeleter>;

using Command = std::vector<std::string>;

// Appends `command` in the Redis protocol (RESP) to `out`.
void AppendCommand(const Command& command, std::string& out) {
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  argv.reserve(command.size());
  lengths.reserve(command.size());
  for (const auto& arg : command) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  char* formatted = nullptr;
  const int n = redisFormatCommandArgv(&formatted, static_cast<int>(argv.size()), argv.data(), lengths.data());
  if (n < 0 || formatted == nullptr) throw std::bad_alloc();
  out.append(formatted, static_cast<std::size_t>(n));
  redisFreeCommand(formatted);
}

std::string ReplyText(const redisReply& reply) { return std::string(reply.str, reply.len); }

// Escapes the glob metacharacters of Redis' MATCH pattern.
std::string GlobEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

}  // namespace

RedisError::RedisError(const std::string& message, bool retryable)
    : std::runtime_error(message), retryable_(retryable) {}

// The connection (a RedisStream plus hiredis' reply reader) and the reconnect policy.
// Thread-safe (mu_ serialises everything).
class RedisState::Connection {
 public:
  Connection(std::string host, int port, RedisOptions options, kube::Clock& clock)
      : host_(std::move(host)), port_(port), options_(std::move(options)), clock_(clock),
        backoff_(options_.initial_backoff, options_.max_backoff, /*jitter=*/0) {}

  std::string Address() const { return host_ + ":" + std::to_string(port_); }

  // One command. An idempotent command is retried once when the connection turned out
  // to be dead (e.g. Redis restarted since the previous call).
  Reply Run(const Command& command, bool idempotent) {
    std::lock_guard lock(mu_);
    for (int attempt = 0;; ++attempt) {
      const bool was_connected = stream_ != nullptr;
      EnsureConnectedLocked();
      Reply reply;
      try {
        std::string request;
        AppendCommand(command, request);
        stream_->WriteAll(request);
        reply = ReadReplyLocked();
      } catch (const RedisStreamError& e) {
        DropLocked(e.what());
        if (idempotent && was_connected && attempt == 0) continue;
        throw RedisError("redis " + command.front() + " at " + Address() + ": " + last_error_, true);
      }
      if (reply->type == REDIS_REPLY_ERROR) {
        throw RedisError("redis " + command.front() + " at " + Address() + ": " + ReplyText(*reply), false);
      }
      return reply;
    }
  }

  // Every command in one round trip. Throws the first error reply (after reading all
  // replies, so the connection stays in sync) or a retryable error on I/O failure.
  void Pipeline(const std::vector<Command>& commands) {
    if (commands.empty()) return;
    std::lock_guard lock(mu_);
    EnsureConnectedLocked();
    std::string first_error;
    try {
      std::string request;
      for (const auto& command : commands) AppendCommand(command, request);
      stream_->WriteAll(request);
      for (std::size_t i = 0; i < commands.size(); ++i) {
        Reply reply = ReadReplyLocked();
        if (reply->type == REDIS_REPLY_ERROR && first_error.empty()) {
          first_error = commands[i].front() + " " + (commands[i].size() > 1 ? commands[i][1] : "") + ": " +
                        ReplyText(*reply);
        }
      }
    } catch (const RedisStreamError& e) {
      DropLocked(e.what());
      throw RedisError("redis pipeline at " + Address() + ": " + last_error_, true);
    }
    if (!first_error.empty()) throw RedisError("redis pipeline at " + Address() + ": " + first_error, false);
  }

 private:
  // The next whole reply, reading from the stream as needed. A malformed reply is a
  // RedisStreamError (the stream is out of step: the caller drops the connection).
  // REQUIRES: mu_ held, connected.
  Reply ReadReplyLocked() {
    for (;;) {
      void* raw = nullptr;
      if (redisReaderGetReply(reader_.get(), &raw) != REDIS_OK) {
        throw RedisStreamError(std::string("protocol error: ") + reader_->errstr);
      }
      if (raw != nullptr) return Reply(static_cast<redisReply*>(raw));
      char buffer[16384];
      const std::size_t n = stream_->ReadSome(buffer, sizeof buffer);
      if (redisReaderFeed(reader_.get(), buffer, n) != REDIS_OK) {
        throw RedisStreamError(std::string("protocol error: ") + reader_->errstr);
      }
    }
  }

  // REQUIRES: mu_ held.
  void EnsureConnectedLocked() {
    if (stream_) return;
    auto now = clock_.SteadyNow();
    if (now < next_attempt_) {
      auto wait = std::chrono::duration_cast<milliseconds>(next_attempt_ - now);
      throw RedisError("redis at " + Address() + " unavailable (" + last_error_ + "); next connect attempt in " +
                           std::to_string(wait.count()) + " ms",
                       true);
    }
    try {
      stream_ = RedisStream::Connect(host_, port_,
                                     RedisStreamOptions{options_.connect_timeout, options_.command_timeout,
                                                        options_.ca_pem, options_.tls_server_name});
      reader_.reset(redisReaderCreate());
      if (!reader_) throw std::bad_alloc();
    } catch (const RedisStreamError& e) {
      stream_.reset();
      last_error_ = e.what();
      next_attempt_ = now + backoff_.Next();
      throw RedisError("redis connect to " + Address() + ": " + last_error_, true);
    }
    if (!options_.user.empty()) {
      std::string refusal;
      try {
        std::string request;
        AppendCommand({"AUTH", options_.user, options_.password}, request);
        stream_->WriteAll(request);
        Reply reply = ReadReplyLocked();
        if (reply->type == REDIS_REPLY_ERROR) refusal = ReplyText(*reply);
      } catch (const RedisStreamError& e) {
        refusal = e.what();
      }
      if (!refusal.empty()) {
        // Never the password: only the user and the server's answer.
        stream_.reset();
        last_error_ = "AUTH as " + options_.user + " refused: " + refusal;
        next_attempt_ = now + backoff_.Next();
        throw RedisError("redis at " + Address() + ": " + last_error_, true);
      }
    }
    backoff_.Reset();
  }

  // Forgets a broken connection; the next call reconnects at once (the server may well
  // be back already). REQUIRES: mu_ held.
  void DropLocked(const std::string& error) {
    last_error_ = error;
    stream_.reset();
    reader_.reset();
    next_attempt_ = {};
  }

  // Constant after construction.
  const std::string host_;
  const int port_;
  const RedisOptions options_;
  kube::Clock& clock_;

  // Guarded by mu_.
  std::mutex mu_;
  std::unique_ptr<RedisStream> stream_;
  Reader reader_;
  kube::Clock::SteadyTime next_attempt_{};
  common::Backoff backoff_;
  std::string last_error_;
};

RedisState::RedisState(std::string_view address, std::string key_prefix, RedisOptions options, kube::Clock& clock)
    : prefix_(std::move(key_prefix)) {
  if (prefix_.empty() || prefix_.find_first_of("*?[]\\") != std::string::npos) {
    throw std::invalid_argument("redis key prefix \"" + prefix_ + "\" must be non-empty and free of glob characters");
  }
  auto colon = address.rfind(':');
  int port = 0;
  if (colon == std::string_view::npos || colon == 0) {
    throw std::invalid_argument("redis address \"" + std::string(address) + "\" is not host:port");
  }
  auto port_text = address.substr(colon + 1);
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port < 1 || port > 65535) {
    throw std::invalid_argument("redis address \"" + std::string(address) + "\" has no valid port");
  }
  connection_ = std::make_unique<Connection>(std::string(address.substr(0, colon)), port, std::move(options), clock);
}

RedisState::~RedisState() = default;

std::string RedisState::Key(std::string_view relative) const {
  std::string key;
  key.reserve(prefix_.size() + 1 + relative.size());
  key += prefix_;
  key += ':';
  key += relative;
  return key;
}

void RedisState::Ping() { connection_->Run({"PING"}, true); }

std::optional<std::string> RedisState::GetResumeVersion(const kube::GroupVersionResource& gvr) {
  return Get("rv:" + gvr.ToString());
}

void RedisState::SetResumeVersion(const kube::GroupVersionResource& gvr, std::string_view resource_version) {
  Set("rv:" + gvr.ToString(), resource_version);
}

std::optional<std::string> RedisState::Get(std::string_view key) {
  Reply reply = connection_->Run({"GET", Key(key)}, true);
  if (reply->type == REDIS_REPLY_NIL) return std::nullopt;
  return ReplyText(*reply);
}

void RedisState::Set(std::string_view key, std::string_view value) {
  connection_->Run({"SET", Key(key), std::string(value)}, true);
}

bool RedisState::Delete(std::string_view key) {
  // DEL is idempotent: a retried DEL of an already deleted key reports 0, which is what
  // the caller sees anyway.
  Reply reply = connection_->Run({"DEL", Key(key)}, true);
  return reply->type == REDIS_REPLY_INTEGER && reply->integer > 0;
}

void RedisState::WriteHashes(std::span<const HashWrite> writes) {
  std::vector<Command> commands;
  commands.reserve(writes.size());
  for (const auto& write : writes) {
    const char* verb = write.op == HashWrite::Op::kIncrBy        ? "HINCRBY"
                       : write.op == HashWrite::Op::kIncrByFloat ? "HINCRBYFLOAT"
                                                                 : "HSET";
    commands.push_back({verb, Key(write.key), write.field, write.value});
  }
  connection_->Pipeline(commands);
}

std::map<std::string, std::string> RedisState::HGetAll(std::string_view key) {
  Reply reply = connection_->Run({"HGETALL", Key(key)}, true);
  std::map<std::string, std::string> out;
  if (reply->type != REDIS_REPLY_ARRAY) return out;
  for (std::size_t i = 0; i + 1 < reply->elements; i += 2) {
    out.emplace(ReplyText(*reply->element[i]), ReplyText(*reply->element[i + 1]));
  }
  return out;
}

std::size_t RedisState::DeleteAll() {
  const std::string pattern = GlobEscape(prefix_) + ":*";
  std::string cursor = "0";
  std::size_t removed = 0;
  do {
    Reply reply = connection_->Run({"SCAN", cursor, "MATCH", pattern, "COUNT", std::to_string(kScanBatch)}, true);
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
      throw RedisError("redis SCAN: unexpected reply shape", false);
    }
    cursor = ReplyText(*reply->element[0]);
    const redisReply& keys = *reply->element[1];
    if (keys.elements > 0) {
      Command unlink{"UNLINK"};
      for (std::size_t i = 0; i < keys.elements; ++i) unlink.push_back(ReplyText(*keys.element[i]));
      Reply deleted = connection_->Run(unlink, true);
      if (deleted->type == REDIS_REPLY_INTEGER) removed += static_cast<std::size_t>(deleted->integer);
    }
  } while (cursor != "0");
  return removed;
}

}  // namespace ro::kubesync

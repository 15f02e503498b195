// The byte stream under RedisState: one TCP connection to a Redis server, optionally TLS
// (docs/security.md, "TLS"). Debian 12's hiredis (0.14) has no TLS, so RedisState keeps
// hiredis for the protocol (redisFormatCommandArgv, redisReader) and does its I/O here:
// a non-blocking socket waited on with poll(2) against a deadline, and, with TLS, OpenSSL
// over memory BIOs (TLS 1.2 or later, the server's certificate verified against the
// given CA and name; send(2) with MSG_NOSIGNAL, so a closed peer is an error, not
// SIGPIPE). Private to ro_kubesync.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace ro::kubesync {

// The connection failed, timed out, was closed, or TLS refused the peer. The text names
// the cause (e.g. "certificate verify failed: ..."); the stream is unusable afterwards.
class RedisStreamError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct RedisStreamOptions {
  // TCP connect plus TLS handshake.
  std::chrono::milliseconds connect_timeout{2000};
  // One WriteAll or ReadSome.
  std::chrono::milliseconds io_timeout{2000};
  // PEM certificates to verify the server against; empty = plain TCP.
  std::string ca_pem;
  // The name the server's certificate must carry (DNS SAN, or IP SAN for an address).
  // Required with ca_pem.
  std::string server_name;
};

class RedisStream {
 public:
  // Connects to host:port (every address getaddrinfo returns, in order) and, with
  // options.ca_pem, completes the TLS handshake. Throws RedisStreamError.
  static std::unique_ptr<RedisStream> Connect(const std::string& host, int port, const RedisStreamOptions& options);
  ~RedisStream();
  RedisStream(const RedisStream&) = delete;
  RedisStream& operator=(const RedisStream&) = delete;

  bool tls() const;
  // Sends every byte. Throws RedisStreamError.
  void WriteAll(std::string_view data);
  // Waits for and returns at least one byte (at most `size`) into `buffer`. Throws
  // RedisStreamError, also when the server closed the connection.
  std::size_t ReadSome(char* buffer, std::size_t size);

 private:
  struct Impl;
  explicit RedisStream(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ro::kubesync

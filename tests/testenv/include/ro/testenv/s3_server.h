// An S3-compatible server (npm s3rver 3.7.1 on Node) on 127.0.0.1, data in a fresh temp
// dir, stopped by PID on destruction.
//
// s3rver accepts only access key "S3RVER" / secret "S3RVER", does not verify SigV4
// signatures, and requires the x-amz-content-sha256 header (UNSIGNED-PAYLOAD or the
// body's SHA-256), which libcurl's CURLOPT_AWS_SIGV4 does not add by itself.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "ro/testenv/paths.h"
#include "ro/testenv/ports.h"
#include "ro/testenv/process.h"

namespace ro::testenv {

struct S3ServerOptions {
  // Deadline for GET / to answer 200 (typically 0.5 s: a Node start).
  std::chrono::milliseconds start_timeout{60000};
};

// `node .../s3rver/bin/s3rver.js -d DIR -a 127.0.0.1 -p P --silent`. The script is
// $RO_CACHE/npm/node_modules/s3rver/bin/s3rver.js (scripts/setup.sh installs it).
// Not thread-safe; not movable.
class S3Server {
 public:
  // Starts and waits until ready. Throws TestEnvError (command line + log tail).
  explicit S3Server(S3ServerOptions options = {});
  ~S3Server();
  S3Server(const S3Server&) = delete;
  S3Server& operator=(const S3Server&) = delete;

  // "127.0.0.1:<port>" (host:port, no scheme; the server speaks plain HTTP, path-style).
  std::string endpoint() const;
  std::uint16_t port() const { return port_.port(); }
  std::string access_key() const { return "S3RVER"; }
  std::string secret_key() const { return "S3RVER"; }
  // The region SigV4 requests are signed for.
  std::string region() const { return "us-east-1"; }
  std::chrono::milliseconds startup_time() const { return startup_time_; }
  const Process& process() const { return *process_; }
  // Creates bucket `name` (PUT /<name>, SigV4). An existing bucket is fine.
  // Throws TestEnvError on any other failure (HTTP status and body in the message).
  void CreateBucket(std::string_view name) const;
  // Stops the server now. Idempotent.
  void Stop();

 private:
  TempDir dir_;
  PortLease port_;
  std::chrono::milliseconds startup_time_{0};
  std::unique_ptr<Process> process_;
};

}  // namespace ro::testenv

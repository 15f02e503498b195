// Internal: the small network probes the harness needs (HTTP via libcurl, raw TCP for
// Redis PING and ZooKeeper four-letter words) and the readiness loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>


namespace ro::testenv::internal {

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;
  std::string ca_pem;     // non-empty: verify the server against this CA (HTTPS)
  std::string aws_sigv4;  // non-empty: CURLOPT_AWS_SIGV4 provider string
  std::string userpwd;    // "access:secret" for SigV4
  std::chrono::milliseconds timeout{2000};

  // A plain GET of `url` with `timeout`.
  static HttpRequest Get(std::string url, std::chrono::milliseconds timeout) {
    HttpRequest r;
    r.url = std::move(url);
    r.timeout = timeout;
    return r;
  }
};

struct HttpResponse {
  long status = 0;
  std::string body;
};

// Performs one request. Throws TestEnvError when there is no HTTP answer (connect
// refused, TLS failure, timeout); any HTTP status is returned.
HttpResponse HttpCall(const HttpRequest& request);

// Connects to 127.0.0.1:port, sends `request`, and reads until the peer closes, `until`
// appears in the answer, or `timeout` passes. Returns what was read. Throws
// TestEnvError when the connection fails or nothing complete arrives in time.
std::string TcpExchange(std::uint16_t port, std::string_view request,
                        std::chrono::milliseconds timeout, std::string_view until = {});

// Random lowercase hex string of `bytes` random bytes (tokens).
std::string RandomHex(std::size_t bytes);

}  // namespace ro::testenv::internal

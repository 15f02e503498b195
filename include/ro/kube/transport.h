// HTTP transport to one apiserver, behind a narrow interface so client logic can be
// unit-tested without a server. The real implementation is libcurl:
// connection reuse (a pool of keep-alive handles sharing DNS and TLS sessions),
// TLS verification on by default, per-request timeouts, client-side rate limiting
// (token bucket, RestConfig::qps/burst), and retries with exponential backoff for
// 429 (honouring Retry-After), 5xx and connection errors on idempotent verbs.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>

#include "ro/kube/config.h"

namespace ro::kube {

struct HttpRequest {
  std::string method = "GET";  // GET, POST, PUT, PATCH, DELETE
  std::string path;            // absolute path with query: "/api/v1/namespaces/x/pods?limit=500"
  std::string body;
  std::string content_type;    // default application/json when body is set
  std::string accept = "application/json";
  // 0: RestConfig::timeout. Streams (watches) take no total timeout.
  std::chrono::milliseconds timeout{0};
  // Stream() only: fail with TransportError kTimeout when no byte arrives for this long
  // (a dead server that never closes the connection). Whole seconds; 0: no limit (TCP
  // keep-alive probes still notice a vanished peer).
  std::chrono::seconds stream_idle_timeout{0};
};

struct HttpResponse {
  long status = 0;            // HTTP status code
  std::string body;
  std::string content_type;
  std::chrono::seconds retry_after{0};  // parsed Retry-After header, 0 when absent
};

// Thread-safe: any number of threads may call Do() and Stream() at once.
class Transport {
 public:
  virtual ~Transport() = default;

  // One request/response. Returns any HTTP status (the caller maps >= 400 to ApiError)
  // after the transport's own retries. Throws TransportError when no answer arrives.
  virtual HttpResponse Do(const HttpRequest& request) = 0;

  // Long-lived streaming GET (watches). `on_status` is called once with the HTTP status
  // before any body; for status >= 400 the whole error body is then delivered to
  // `on_data` and the call returns. For 2xx, `on_data` receives body bytes as they
  // arrive, in arbitrary chunks. Returns when the server ends the stream, or soon after
  // `stop` is requested (within ~100 ms). Throws TransportError on connection errors.
  virtual void Stream(const HttpRequest& request,
                      const std::function<void(long status)>& on_status,
                      const std::function<void(std::string_view chunk)>& on_data,
                      std::stop_token stop) = 0;
};

// libcurl transport for `config`. Throws ConfigError for unusable TLS material.
std::unique_ptr<Transport> NewCurlTransport(const RestConfig& config);

}  // namespace ro::kube

// A tiny embedded HTTP/1.1 server (Debian's cpp-httplib) for /metrics, /healthz and
// /readyz of every binary, and over TLS (OpenSSL) for the audit admission webhook. Handlers are registered for exact
// paths and return a whole response; there is no routing or streaming. A request body is
// read whole, up to HttpServerOptions::max_body_bytes.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <atomic>
#include <thread>

struct ssl_st;
namespace httplib {
class Server;
}  // namespace httplib

namespace ro::common {

// The server could not start (port in use, address not local, no TLS context).
class HttpServerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct HttpRequest {
  std::string method;  // "GET", "HEAD", ...
  std::string path;    // URL-decoded and normalised ("/metrics"), without the query
  std::string query;   // after '?', not decoded; "" when absent
  std::string body;    // the whole body (at most HttpServerOptions::max_body_bytes)
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// Called concurrently from the server's worker threads: must be thread-safe. An
// exception becomes a 500 response with the exception text (and a log line).
using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpServerOptions {
  // "host:port": ":8080" = every IPv4 interface, "127.0.0.1:0" = loopback, ephemeral
  // port (see HttpServer::port()).
  std::string address = ":8080";
  // Worker threads = concurrent requests. Probes and a scraper need few.
  int threads = 4;
  // A request (headers and handler) taking longer is cut.
  int request_timeout_ms = 10000;
  // Request bodies larger than this are answered 413 without calling the handler; 0
  // (probes, scrapes): any body is refused.
  std::size_t max_body_bytes = 0;
  // HTTPS only (TLS 1.2 or newer) when both are set: the server's certificate (PEM, its
  // chain after it) and private key (PEM). HttpServer::SetCertificate replaces them.
  std::string tls_cert_pem{};
  std::string tls_key_pem{};
};

// Serves from construction to destruction. Unknown paths answer 404, HEAD is answered
// like GET without a body, a body over max_body_bytes 413. Connections are closed after
// each response (no keep-alive, so an idle client never pins a worker thread).
// Thread-safety: Handle() may be called at any time from any thread, also while serving.
class HttpServer {
 public:
  // Binds and starts the workers. Throws HttpServerError (e.g. address in use) or
  // std::invalid_argument for a malformed address.
  explicit HttpServer(HttpServerOptions options);
  // Stops accepting, waits for requests in progress to finish.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Registers (or replaces) the handler of exactly `path` ("/metrics").
  void Handle(std::string path, HttpHandler handler);

  // TLS servers: the certificate and key of every handshake from now on (a rotation
  // without a restart; connections open already keep theirs). Throws
  // std::invalid_argument when they cannot be parsed or do not match, and
  // std::logic_error on a server started without TLS.
  void SetCertificate(std::string_view cert_pem, std::string_view key_pem);

  // The bound port (the real one when the options asked for port 0).
  std::uint16_t port() const { return port_; }

 private:
  struct TlsIdentity;
  // SSL_CTX_set_cert_cb's callback: the identity of now for one handshake.
  static int OnCertificate(ssl_st* ssl, void* self);
  HttpResponse Dispatch(const HttpRequest& request) const;

  // Guarded by mu_.
  mutable std::shared_mutex mu_;
  std::map<std::string, HttpHandler, std::less<>> handlers_;

  // The TLS identity of new handshakes; null without TLS. Guarded by tls_mu_.
  mutable std::mutex tls_mu_;
  std::shared_ptr<const TlsIdentity> tls_;

  // Constant after construction.
  std::uint16_t port_ = 0;
  std::unique_ptr<httplib::Server> server_;  // httplib::SSLServer with TLS
  std::atomic<bool> listener_done_{false};   // the accept loop has returned
  std::thread listener_;                     // runs the accept loop; joined by the destructor
};

}  // namespace ro::common

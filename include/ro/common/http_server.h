// A tiny embedded HTTP/1.1 server (civetweb) for /metrics, /healthz and /readyz of every
// binary. Handlers are registered for exact paths and return a whole response; there is
// no routing, streaming, TLS or request body handling (probes and scrapes need none).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <string_view>

struct mg_context;
struct mg_connection;

namespace ro::common {

// The server could not start (bad address, port in use). what() holds civetweb's text.
class HttpServerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct HttpRequest {
  std::string method;  // "GET", "HEAD", ...
  std::string path;    // URL-decoded and normalised ("/metrics"), without the query
  std::string query;   // after '?', not decoded; "" when absent
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
};

// Serves from construction to destruction. Unknown paths answer 404, HEAD is answered
// like GET without a body. Connections are closed after each response (no keep-alive,
// so an idle client never pins a worker thread).
// Thread-safety: Handle() may be called at any time from any thread, also while serving.
class HttpServer {
 public:
  // Binds and starts the workers. Throws HttpServerError (e.g. address in use) or
  // std::invalid_argument for a malformed address.
  explicit HttpServer(HttpServerOptions options);
  // Stops accepting, waits for requests in progress to finish. Takes up to ~2 s:
  // civetweb's accept loop notices the stop at its next 2 s poll timeout.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Registers (or replaces) the handler of exactly `path` ("/metrics").
  void Handle(std::string path, HttpHandler handler);

  // The bound port (the real one when the options asked for port 0).
  std::uint16_t port() const { return port_; }

 private:
  static int OnRequest(mg_connection* conn, void* self);
  HttpResponse Dispatch(const HttpRequest& request) const;

  // Guarded by mu_.
  mutable std::shared_mutex mu_;
  std::map<std::string, HttpHandler, std::less<>> handlers_;

  // Constant after construction.
  std::uint16_t port_ = 0;
  mg_context* context_ = nullptr;  // owned; mg_stop in the destructor
};

}  // namespace ro::common

#include "ro/common/http_server.h"

#include <civetweb.h>

#include <charconv>
#include <exception>
#include <mutex>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "ro/common/log.h"

namespace ro::common {
namespace {

ro::log::Logger ServerLogger() { return ro::log::Logger(nlohmann::json{{"component", "http-server"}}); }

// civetweb's process-wide initialisation must run once before the first server and is
// not thread-safe itself; call_once makes concurrent first servers safe. The library is
// never de-initialised (the process exit frees it).
void InitCivetwebOnce() {
  static std::once_flag once;
  std::call_once(once, [] { mg_init_library(0); });
}

// ":8080" -> "8080" (civetweb's spelling of "every interface"); "host:port" unchanged.
std::string ListeningPorts(std::string_view address) {
  auto colon = address.rfind(':');
  if (colon == std::string_view::npos) {
    throw std::invalid_argument("HTTP server address \"" + std::string(address) + "\" is not host:port");
  }
  auto port_text = address.substr(colon + 1);
  int port = -1;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port < 0 || port > 65535) {
    throw std::invalid_argument("HTTP server address \"" + std::string(address) + "\" has no valid port");
  }
  return colon == 0 ? std::string(port_text) : std::string(address);
}

int OnLog(const mg_connection*, const char* message) {
  ServerLogger().Debug("civetweb", {{"detail", message}});
  return 1;  // handled: civetweb prints nothing itself
}

void Send(mg_connection* conn, const HttpResponse& response, bool head) {
  mg_response_header_start(conn, response.status);
  mg_response_header_add(conn, "Content-Type", response.content_type.c_str(), -1);
  std::string length = std::to_string(response.body.size());
  mg_response_header_add(conn, "Content-Length", length.c_str(), -1);
  mg_response_header_add(conn, "Cache-Control", "no-store", -1);
  mg_response_header_send(conn);
  if (!head && !response.body.empty()) mg_write(conn, response.body.data(), response.body.size());
}

}  // namespace

HttpServer::HttpServer(HttpServerOptions options) {
  if (options.threads < 1) throw std::invalid_argument("HttpServerOptions.threads must be >= 1");
  InitCivetwebOnce();
  std::string ports = ListeningPorts(options.address);
  std::string threads = std::to_string(options.threads);
  std::string timeout = std::to_string(options.request_timeout_ms);
  const char* config[] = {"listening_ports",    ports.c_str(),   "num_threads", threads.c_str(),
                          "request_timeout_ms", timeout.c_str(), "enable_keep_alive", "no",
                          nullptr};
  mg_callbacks callbacks{};
  callbacks.log_message = OnLog;
  mg_init_data init{};
  init.callbacks = &callbacks;
  init.user_data = this;
  init.configuration_options = config;
  char error_text[256] = {};
  mg_error_data error{};
  error.text = error_text;
  error.text_buffer_size = sizeof(error_text);
  context_ = mg_start2(&init, &error);
  if (context_ == nullptr) {
    throw HttpServerError("HTTP server on \"" + options.address + "\" did not start: " +
                          (error_text[0] != '\0' ? std::string(error_text) : "unknown error"));
  }
  mg_server_port bound[1] = {};
  if (mg_get_server_ports(context_, 1, bound) < 1) {
    mg_stop(context_);
    throw HttpServerError("HTTP server on \"" + options.address + "\" has no listening port");
  }
  port_ = static_cast<std::uint16_t>(bound[0].port);
  // "/" matches every path; Dispatch() does the exact matching.
  mg_set_request_handler(context_, "/", &HttpServer::OnRequest, this);
}

HttpServer::~HttpServer() { mg_stop(context_); }

void HttpServer::Handle(std::string path, HttpHandler handler) {
  std::unique_lock lock(mu_);
  handlers_.insert_or_assign(std::move(path), std::move(handler));
}

HttpResponse HttpServer::Dispatch(const HttpRequest& request) const {
  HttpHandler handler;
  {
    std::shared_lock lock(mu_);
    auto it = handlers_.find(request.path);
    if (it == handlers_.end()) return HttpResponse{404, "text/plain; charset=utf-8", "404 page not found\n"};
    handler = it->second;  // a copy: Handle() may replace the entry while this runs
  }
  try {
    return handler(request);
  } catch (const std::exception& e) {
    ServerLogger().Error("HTTP handler failed", {{"path", request.path}, {"error", e.what()}});
    return HttpResponse{500, "text/plain; charset=utf-8", std::string(e.what()) + "\n"};
  }
}

int HttpServer::OnRequest(mg_connection* conn, void* self) {
  const mg_request_info* info = mg_get_request_info(conn);
  HttpRequest request;
  request.method = info->request_method != nullptr ? info->request_method : "";
  request.path = info->local_uri != nullptr ? info->local_uri : "";
  request.query = info->query_string != nullptr ? info->query_string : "";
  HttpResponse response = static_cast<const HttpServer*>(self)->Dispatch(request);
  Send(conn, response, request.method == "HEAD");
  return response.status;
}

}  // namespace ro::common

#include "ro/common/http_server.h"

#include <httplib.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <sys/socket.h>

#include <charconv>
#include <chrono>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "ro/common/log.h"

namespace ro::common {
namespace {

ro::log::Logger ServerLogger() { return ro::log::Logger(nlohmann::json{{"component", "http-server"}}); }

struct Address {
  std::string host;  // "0.0.0.0" for ":port"
  int port = 0;
};

// ":8080" -> every IPv4 interface; "host:port" as given.
Address ParseAddress(std::string_view address) {
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
  return Address{colon == 0 ? std::string("0.0.0.0") : std::string(address.substr(0, colon)), port};
}

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;

}  // namespace

// One certificate chain and key, parsed once, shared by the handshakes that use it.
struct HttpServer::TlsIdentity {
  std::unique_ptr<X509, Deleter<X509, X509_free>> cert;
  std::vector<std::unique_ptr<X509, Deleter<X509, X509_free>>> chain;
  std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>> key;

  static std::shared_ptr<const TlsIdentity> Parse(std::string_view cert_pem, std::string_view key_pem) {
    auto identity = std::make_shared<TlsIdentity>();
    BioPtr certs(BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())));
    identity->cert.reset(certs ? PEM_read_bio_X509(certs.get(), nullptr, nullptr, nullptr) : nullptr);
    if (!identity->cert) throw std::invalid_argument("TLS certificate: no PEM certificate could be read");
    while (X509* next = PEM_read_bio_X509(certs.get(), nullptr, nullptr, nullptr)) identity->chain.emplace_back(next);
    BioPtr key(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
    identity->key.reset(key ? PEM_read_bio_PrivateKey(key.get(), nullptr, nullptr, nullptr) : nullptr);
    if (!identity->key) throw std::invalid_argument("TLS certificate: no PEM private key could be read");
    if (X509_check_private_key(identity->cert.get(), identity->key.get()) != 1) {
      throw std::invalid_argument("TLS certificate: the private key does not match the certificate");
    }
    return identity;
  }
};

HttpServer::HttpServer(HttpServerOptions options) {
  if (options.threads < 1) throw std::invalid_argument("HttpServerOptions.threads must be >= 1");
  if (options.request_timeout_ms < 1) throw std::invalid_argument("HttpServerOptions.request_timeout_ms must be >= 1");
  const Address address = ParseAddress(options.address);
  const bool tls = !options.tls_cert_pem.empty() || !options.tls_key_pem.empty();
  if (tls) {
    tls_ = TlsIdentity::Parse(options.tls_cert_pem, options.tls_key_pem);
    // Every handshake asks OnCertificate for the identity of now (SetCertificate).
    server_ = std::make_unique<httplib::SSLServer>([this](SSL_CTX& ctx) {
      if (SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION) != 1) return false;
      SSL_CTX_set_cert_cb(&ctx, &HttpServer::OnCertificate, this);
      return true;
    });
  } else {
    server_ = std::make_unique<httplib::Server>();
  }
  if (!server_->is_valid()) throw HttpServerError("HTTP server on \"" + options.address + "\": no TLS context");

  const int threads = options.threads;
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<std::size_t>(threads)); };
  // One request per connection: an idle client never pins a worker thread.
  server_->set_keep_alive_max_count(1);
  const time_t seconds = options.request_timeout_ms / 1000;
  const time_t micros = (options.request_timeout_ms % 1000) * 1000;
  server_->set_read_timeout(seconds, micros);
  server_->set_write_timeout(seconds, micros);
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, with which a second server on
  // a taken port would silently share it instead of failing.
  server_->set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  // Larger bodies are answered 413 before the handler runs.
  server_->set_payload_max_length(options.max_body_bytes);
  const auto route = [this](const httplib::Request& in, httplib::Response& out) {
    HttpRequest request;
    request.method = in.method;
    request.path = in.path;
    if (const auto q = in.target.find('?'); q != std::string::npos) request.query = in.target.substr(q + 1);
    request.body = in.body;
    const HttpResponse response = Dispatch(request);
    out.status = response.status;
    out.set_header("Cache-Control", "no-store");
    out.set_content(response.body, response.content_type.c_str());
  };
  // Every path and method reaches Dispatch (HEAD is answered like GET without a body).
  server_->Get(".*", route);
  server_->Post(".*", route);
  server_->Put(".*", route);
  server_->Patch(".*", route);
  server_->Delete(".*", route);
  server_->Options(".*", route);

  if (address.port == 0) {
    const int bound = server_->bind_to_any_port(address.host);
    if (bound < 0) throw HttpServerError("HTTP server on \"" + options.address + "\" did not start: cannot bind");
    port_ = static_cast<std::uint16_t>(bound);
  } else {
    if (!server_->bind_to_port(address.host, address.port)) {
      throw HttpServerError("HTTP server on \"" + options.address +
                            "\" did not start: cannot bind (address in use or not local)");
    }
    port_ = static_cast<std::uint16_t>(address.port);
  }
  listener_ = std::thread([this] {
    if (!server_->listen_after_bind()) ServerLogger().Error("HTTP server stopped listening", {{"port", port_}});
    listener_done_ = true;
  });
  // httplib's stop() does nothing until the listening thread has marked the server
  // running: a server destroyed right after construction would otherwise leave that
  // thread in accept() and the destructor's join waiting forever.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
  while (!server_->is_running() && !listener_done_ && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds{1});
  }
}

HttpServer::~HttpServer() {
  server_->stop();
  if (listener_.joinable()) listener_.join();
}

int HttpServer::OnCertificate(ssl_st* ssl, void* self) {
  std::shared_ptr<const TlsIdentity> identity;
  {
    auto* server = static_cast<HttpServer*>(self);
    std::lock_guard lock(server->tls_mu_);
    identity = server->tls_;
  }
  if (!identity || SSL_use_certificate(ssl, identity->cert.get()) != 1 ||
      SSL_use_PrivateKey(ssl, identity->key.get()) != 1) {
    return 0;
  }
  for (const auto& extra : identity->chain) {
    if (SSL_add1_chain_cert(ssl, extra.get()) != 1) return 0;
  }
  return 1;
}

void HttpServer::SetCertificate(std::string_view cert_pem, std::string_view key_pem) {
  std::shared_ptr<const TlsIdentity> identity = TlsIdentity::Parse(cert_pem, key_pem);
  std::lock_guard lock(tls_mu_);
  if (!tls_) throw std::logic_error("HttpServer::SetCertificate on a server without TLS");
  tls_ = std::move(identity);
}

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

}  // namespace ro::common

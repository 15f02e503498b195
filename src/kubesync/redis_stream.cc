#include "redis_stream.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace ro::kubesync {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct SslCtxDeleter {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslDeleter {
  void operator()(SSL* s) const { SSL_free(s); }
};
struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};

std::string Errno(int err) { return std::strerror(err); }

// The newest OpenSSL error on this thread's queue ("" when none), queue cleared.
std::string OpenSslError() {
  std::string text;
  unsigned long code = 0;
  while ((code = ERR_get_error()) != 0) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof buffer);
    text = buffer;
  }
  return text;
}

// Waits until `fd` is ready for `events` or the deadline passes. Throws on timeout.
void Wait(int fd, short events, Clock::time_point deadline, std::string_view what) {
  for (;;) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) throw RedisStreamError(std::string(what) + " timed out");
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(left));
    if (n > 0) return;  // readable, writable, or an error the next call reports
    if (n < 0 && errno != EINTR) throw RedisStreamError(std::string(what) + ": poll: " + Errno(errno));
  }
}

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// A connected non-blocking TCP socket to host:port, tried address by address.
Fd ConnectTcp(const std::string& host, int port, Clock::time_point deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
    throw RedisStreamError("resolve " + host + ": " + ::gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addresses(found, &::freeaddrinfo);
  std::string last_error = "no address";
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    Fd fd(::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol));
    if (fd.get() < 0) {
      last_error = "socket: " + Errno(errno);
      continue;
    }
    if (::connect(fd.get(), a->ai_addr, a->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        last_error = Errno(errno);
        continue;
      }
      try {
        Wait(fd.get(), POLLOUT, deadline, "connect");
      } catch (const RedisStreamError& e) {
        last_error = e.what();
        continue;
      }
      int error = 0;
      socklen_t length = sizeof error;
      ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &length);
      if (error != 0) {
        last_error = Errno(error);
        continue;
      }
    }
    const int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::setsockopt(fd.get(), SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    return fd;
  }
  throw RedisStreamError("connect: " + last_error);
}

bool IsIpAddress(const std::string& name) {
  unsigned char buffer[sizeof(in6_addr)];
  return ::inet_pton(AF_INET, name.c_str(), buffer) == 1 || ::inet_pton(AF_INET6, name.c_str(), buffer) == 1;
}

std::unique_ptr<SSL_CTX, SslCtxDeleter> ClientContext(const std::string& ca_pem) {
  std::unique_ptr<SSL_CTX, SslCtxDeleter> ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) throw RedisStreamError("TLS: " + OpenSslError());
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new_mem_buf(ca_pem.data(), static_cast<int>(ca_pem.size())));
  X509_STORE* store = SSL_CTX_get_cert_store(ctx.get());
  int loaded = 0;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    if (X509_STORE_add_cert(store, cert) == 1) ++loaded;
    X509_free(cert);
  }
  ERR_clear_error();  // the end of the PEM text reads as an error
  if (loaded == 0) throw RedisStreamError("TLS: the CA holds no PEM certificate");
  return ctx;
}

}  // namespace

struct RedisStream::Impl {
  Fd fd;
  milliseconds io_timeout{};
  std::unique_ptr<SSL_CTX, SslCtxDeleter> ctx;
  std::unique_ptr<SSL, SslDeleter> ssl;
  BIO* network_in = nullptr;   // owned by ssl: bytes from the socket for OpenSSL
  BIO* network_out = nullptr;  // owned by ssl: bytes OpenSSL wants sent

  void SendRaw(const char* data, std::size_t size, Clock::time_point deadline) {
    while (size > 0) {
      const ssize_t n = ::send(fd.get(), data, size, MSG_NOSIGNAL);
      if (n > 0) {
        data += n;
        size -= static_cast<std::size_t>(n);
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        Wait(fd.get(), POLLOUT, deadline, "write");
      } else if (n < 0 && errno != EINTR) {
        throw RedisStreamError("write: " + Errno(errno));
      }
    }
  }

  std::size_t RecvRaw(char* buffer, std::size_t size, Clock::time_point deadline) {
    for (;;) {
      const ssize_t n = ::recv(fd.get(), buffer, size, 0);
      if (n > 0) return static_cast<std::size_t>(n);
      if (n == 0) throw RedisStreamError("connection closed by the server");
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        Wait(fd.get(), POLLIN, deadline, "read");
      } else if (errno != EINTR) {
        throw RedisStreamError("read: " + Errno(errno));
      }
    }
  }

  // Sends whatever OpenSSL has queued for the network.
  void FlushTls(Clock::time_point deadline) {
    char buffer[16384];
    while (BIO_ctrl_pending(network_out) > 0) {
      const int n = BIO_read(network_out, buffer, sizeof buffer);
      if (n <= 0) break;
      SendRaw(buffer, static_cast<std::size_t>(n), deadline);
    }
  }

  // Runs `op` (SSL_connect / SSL_write / SSL_read) until it succeeds, feeding it bytes
  // from the socket when it wants them. Returns op's positive result.
  template <typename Op>
  int DriveTls(Op op, Clock::time_point deadline, std::string_view what) {
    for (;;) {
      ERR_clear_error();
      const int result = op();
      const int error = result > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl.get(), result);
      FlushTls(deadline);
      if (result > 0) return result;
      if (error == SSL_ERROR_WANT_READ) {
        char buffer[16384];
        const std::size_t n = RecvRaw(buffer, sizeof buffer, deadline);
        BIO_write(network_in, buffer, static_cast<int>(n));
        continue;
      }
      if (error == SSL_ERROR_WANT_WRITE) continue;  // memory BIOs: flushed above
      if (error == SSL_ERROR_ZERO_RETURN) throw RedisStreamError("connection closed by the server (TLS)");
      std::string detail = OpenSslError();
      const long verify = SSL_get_verify_result(ssl.get());
      if (verify != X509_V_OK) detail += std::string(detail.empty() ? "" : ": ") + X509_verify_cert_error_string(verify);
      throw RedisStreamError("TLS " + std::string(what) + ": " + (detail.empty() ? "failed" : detail));
    }
  }
};

RedisStream::RedisStream(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RedisStream::~RedisStream() = default;

std::unique_ptr<RedisStream> RedisStream::Connect(const std::string& host, int port, const RedisStreamOptions& options) {
  const Clock::time_point deadline = Clock::now() + options.connect_timeout;
  auto impl = std::make_unique<Impl>();
  impl->io_timeout = options.io_timeout;
  impl->fd = ConnectTcp(host, port, deadline);
  if (!options.ca_pem.empty()) {
    if (options.server_name.empty()) throw RedisStreamError("TLS: no server name to verify");
    impl->ctx = ClientContext(options.ca_pem);
    impl->ssl.reset(SSL_new(impl->ctx.get()));
    if (!impl->ssl) throw RedisStreamError("TLS: " + OpenSslError());
    impl->network_in = BIO_new(BIO_s_mem());
    impl->network_out = BIO_new(BIO_s_mem());
    if (impl->network_in == nullptr || impl->network_out == nullptr) {
      BIO_free(impl->network_in);
      BIO_free(impl->network_out);
      throw RedisStreamError("TLS: " + OpenSslError());
    }
    SSL_set_bio(impl->ssl.get(), impl->network_in, impl->network_out);
    const bool ip = IsIpAddress(options.server_name);
    if (!ip) {  // SNI; SSL_set_tlsext_host_name without its C cast
      SSL_ctrl(impl->ssl.get(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
               const_cast<char*>(options.server_name.c_str()));
    }
    X509_VERIFY_PARAM* param = SSL_get0_param(impl->ssl.get());
    const int named = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, options.server_name.c_str())
                         : X509_VERIFY_PARAM_set1_host(param, options.server_name.c_str(), 0);
    if (named != 1) throw RedisStreamError("TLS: cannot expect the name " + options.server_name);
    SSL_set_connect_state(impl->ssl.get());
    Impl& self = *impl;
    self.DriveTls([&] { return SSL_do_handshake(self.ssl.get()); }, deadline, "handshake");
  }
  return std::unique_ptr<RedisStream>(new RedisStream(std::move(impl)));
}

bool RedisStream::tls() const { return impl_->ssl != nullptr; }

void RedisStream::WriteAll(std::string_view data) {
  const Clock::time_point deadline = Clock::now() + impl_->io_timeout;
  if (!impl_->ssl) {
    impl_->SendRaw(data.data(), data.size(), deadline);
    return;
  }
  while (!data.empty()) {
    const int n = impl_->DriveTls(
        [&] { return SSL_write(impl_->ssl.get(), data.data(), static_cast<int>(std::min<std::size_t>(data.size(), 1 << 20))); },
        deadline, "write");
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

std::size_t RedisStream::ReadSome(char* buffer, std::size_t size) {
  const Clock::time_point deadline = Clock::now() + impl_->io_timeout;
  if (!impl_->ssl) return impl_->RecvRaw(buffer, size, deadline);
  const int n = impl_->DriveTls(
      [&] { return SSL_read(impl_->ssl.get(), buffer, static_cast<int>(std::min<std::size_t>(size, 1 << 20))); },
      deadline, "read");
  return static_cast<std::size_t>(n);
}

}  // namespace ro::kubesync

#include "ro/testenv/fault_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <re2/re2.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <nlohmann/json.hpp>
#include <string_view>
#include <utility>

#include "ro/testenv/errors.h"
#include "ro/testenv/kube_cluster.h"

namespace ro::testenv {
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// How often every loop of the proxy looks at stop, reset and blackhole (ms): bounds how
// long ResetConnections() and the destructor wait.
constexpr int kPollMs = 20;
// Bytes queued per direction before the proxy stops reading that side (back-pressure).
constexpr std::size_t kMaxQueued = std::size_t{1} << 20;
// Largest request head and body the HTTPS mode reads.
constexpr std::size_t kMaxHeadBytes = std::size_t{1} << 20;
constexpr std::size_t kMaxBodyBytes = std::size_t{64} << 20;
// A client must finish its TLS handshake and send its whole request within this.
constexpr auto kRequestTimeout = 60s;
// Connecting to the upstream (TCP + TLS handshake).
constexpr auto kConnectTimeout = 15s;
// Upper bound for ResetConnections() to see every connection closed.
constexpr auto kResetTimeout = 10s;
constexpr std::size_t kReadChunk = 16384;

std::string OpenSslError() {
  unsigned long e = ERR_get_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

std::int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

std::string Base64(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()), static_cast<int>(data.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return std::string(s);
}

}  // namespace

namespace internal {

// What a connection thread needs to know about the proxy's state on every round.
struct ProxyControl {
  std::stop_token stop;
  const std::atomic<bool>* reset;
  const std::atomic<std::int64_t>* latency_ms;
  const std::atomic<std::int64_t>* blackhole_until_ns;

  bool Aborted() const { return stop.stop_requested() || reset->load(); }
  bool Blackholed() const { return NowNs() < blackhole_until_ns->load(); }
  std::chrono::milliseconds Latency() const { return std::chrono::milliseconds(latency_ms->load()); }
};

}  // namespace internal

namespace {
using Control = internal::ProxyControl;

enum class Io { kOk, kWouldBlock, kEof, kError };

// One non-blocking socket, optionally with TLS on top. Owns the fd and the SSL.
class Endpoint {
 public:
  explicit Endpoint(int fd) : fd_(fd) {}
  ~Endpoint() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
  }
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;

  int fd() const { return fd_; }
  // Takes ownership of `ssl` and binds it to the socket.
  void AttachSsl(SSL* ssl) {
    ssl_ = ssl;
    SSL_set_fd(ssl_, fd_);
  }
  SSL* ssl() const { return ssl_; }
  // The last TLS operation needs the socket writable before it can progress.
  bool wants_write() const { return want_write_; }
  void BeginRound() { want_write_ = false; }
  bool HasBuffered() const { return ssl_ != nullptr && SSL_pending(ssl_) > 0; }

  Io Handshake() {
    ERR_clear_error();
    errno = 0;  // SSL_ERROR_SYSCALL with errno 0 means EOF
    int r = SSL_do_handshake(ssl_);
    return r == 1 ? Io::kOk : SslStatus(r);
  }

  Io Read(char* buf, std::size_t cap, std::size_t* n) {
    *n = 0;
    if (ssl_ == nullptr) {
      ssize_t r = ::recv(fd_, buf, cap, 0);
      if (r > 0) *n = static_cast<std::size_t>(r);
      return r > 0 ? Io::kOk : r == 0 ? Io::kEof : SocketStatus();
    }
    ERR_clear_error();
    errno = 0;  // SSL_ERROR_SYSCALL with errno 0 means EOF
    int r = SSL_read(ssl_, buf, static_cast<int>(cap));
    if (r > 0) *n = static_cast<std::size_t>(r);
    return r > 0 ? Io::kOk : SslStatus(r);
  }

  Io Write(const char* data, std::size_t len, std::size_t* n) {
    *n = 0;
    if (ssl_ == nullptr) {
      ssize_t r = ::send(fd_, data, len, MSG_NOSIGNAL);
      if (r >= 0) *n = static_cast<std::size_t>(r);
      return r >= 0 ? Io::kOk : SocketStatus();
    }
    ERR_clear_error();
    errno = 0;  // SSL_ERROR_SYSCALL with errno 0 means EOF
    int r = SSL_write(ssl_, data, static_cast<int>(len));
    if (r > 0) *n = static_cast<std::size_t>(r);
    if (r > 0) return Io::kOk;
    Io io = SslStatus(r);
    return io == Io::kEof ? Io::kError : io;
  }

  // No more data will be sent: FIN (TCP) or close_notify (TLS, best effort).
  void ShutdownWrite() {
    if (ssl_ != nullptr) {
      ERR_clear_error();
      SSL_shutdown(ssl_);
    } else {
      ::shutdown(fd_, SHUT_WR);
    }
  }

  // The close in the destructor sends a RST instead of a FIN.
  void Abort() {
    linger l{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }

  // Waits up to one poll interval for `events` (POLLOUT added when TLS wants it).
  // Returns false when the connection must give up: aborted or past `deadline`.
  bool Await(const Control& control, short events, Clock::time_point deadline) const {
    pollfd p{fd_, static_cast<short>(events | (want_write_ ? POLLOUT : 0)), 0};
    ::poll(&p, 1, control.Blackholed() ? kPollMs : (HasBuffered() ? 0 : kPollMs));
    return !control.Aborted() && Clock::now() < deadline;
  }

 private:
  static Io SocketStatus() {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return Io::kWouldBlock;
    return Io::kError;
  }
  Io SslStatus(int r) {
    switch (SSL_get_error(ssl_, r)) {
      case SSL_ERROR_WANT_READ:
        return Io::kWouldBlock;
      case SSL_ERROR_WANT_WRITE:
        want_write_ = true;
        return Io::kWouldBlock;
      case SSL_ERROR_ZERO_RETURN:
        return Io::kEof;
      case SSL_ERROR_SYSCALL:
        return errno == 0 ? Io::kEof : Io::kError;
      default:
        return Io::kError;
    }
  }

  int fd_ = -1;
  SSL* ssl_ = nullptr;
  bool want_write_ = false;
};

// Writes all of `data`, stalling during a blackhole. False when aborted, timed out or
// the peer is gone.
bool WriteAll(Endpoint& e, std::string_view data, const Control& control, Clock::time_point deadline) {
  while (!data.empty()) {
    if (!control.Blackholed()) {
      e.BeginRound();
      std::size_t n = 0;
      Io io = e.Write(data.data(), data.size(), &n);
      if (io == Io::kOk) {
        data.remove_prefix(n);
        continue;
      }
      if (io != Io::kWouldBlock) return false;
    }
    if (!e.Await(control, POLLOUT, deadline)) return false;
  }
  return true;
}

// Completes a TLS handshake, stalling during a blackhole.
bool Handshake(Endpoint& e, const Control& control, Clock::time_point deadline) {
  for (;;) {
    if (!control.Blackholed()) {
      e.BeginRound();
      Io io = e.Handshake();
      if (io == Io::kOk) return true;
      if (io != Io::kWouldBlock) return false;
    }
    if (!e.Await(control, POLLIN, deadline)) return false;
  }
}

// Non-blocking TCP connection to host:port (IPv4), or -1 (aborted, refused, timeout).
int ConnectTcp(const std::string& host, std::uint16_t port, const Control& control) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0 || found == nullptr) return -1;
  sockaddr_in addr{};
  std::memcpy(&addr, found->ai_addr, sizeof addr);
  ::freeaddrinfo(found);
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return fd;
  if (errno != EINPROGRESS) {
    ::close(fd);
    return -1;
  }
  auto deadline = Clock::now() + kConnectTimeout;
  for (;;) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, kPollMs) > 0) {
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err == 0) return fd;
      ::close(fd);
      return -1;
    }
    if (control.Aborted() || Clock::now() >= deadline) {
      ::close(fd);
      return -1;
    }
  }
}

enum class PipeEnd { kDone, kFailed };

// Pipes bytes between `a` and `b` in both directions, `initial` first from a to b,
// applying latency and blackhole. kDone when both directions ended with EOF (or, with
// `until_b_done`, when everything b sent reached a), kFailed on abort, an I/O error, or
// (with `until_b_done`) EOF from a.
PipeEnd Pipe(Endpoint& a, Endpoint& b, std::string initial, bool until_b_done, const Control& control) {
  struct Chunk {
    Clock::time_point due;
    std::string data;
    std::size_t offset = 0;
  };
  struct Direction {
    Endpoint& src;
    Endpoint& dst;
    std::deque<Chunk> queue;
    std::size_t queued = 0;
    bool eof = false;   // src sent EOF
    bool done = false;  // EOF passed on to dst
  };
  Direction a_to_b{a, b, {}, 0, false, false};
  Direction b_to_a{b, a, {}, 0, false, false};
  if (!initial.empty()) {
    a_to_b.queued = initial.size();
    a_to_b.queue.push_back({Clock::now() + control.Latency(), std::move(initial), 0});
  }
  char buf[kReadChunk];
  for (;;) {
    if (control.Aborted()) return PipeEnd::kFailed;
    bool hole = control.Blackholed();
    a.BeginRound();
    b.BeginRound();
    if (!hole) {
      for (Direction* d : {&a_to_b, &b_to_a}) {
        while (!d->eof && d->queued < kMaxQueued) {
          std::size_t n = 0;
          Io io = d->src.Read(buf, sizeof buf, &n);
          if (io == Io::kOk) {
            d->queue.push_back({Clock::now() + control.Latency(), std::string(buf, n), 0});
            d->queued += n;
          } else if (io == Io::kEof) {
            d->eof = true;
          } else if (io == Io::kWouldBlock) {
            break;
          } else {
            return PipeEnd::kFailed;
          }
        }
        auto now = Clock::now();
        while (!d->queue.empty() && d->queue.front().due <= now) {
          Chunk& c = d->queue.front();
          std::size_t n = 0;
          Io io = d->dst.Write(c.data.data() + c.offset, c.data.size() - c.offset, &n);
          if (io == Io::kWouldBlock) break;
          if (io != Io::kOk) return PipeEnd::kFailed;
          c.offset += n;
          d->queued -= n;
          if (c.offset == c.data.size()) d->queue.pop_front();
        }
        if (d->eof && d->queue.empty() && !d->done) {
          d->dst.ShutdownWrite();
          d->done = true;
        }
      }
    }
    if ((a_to_b.done && b_to_a.done) || (until_b_done && b_to_a.done)) return PipeEnd::kDone;
    // HTTP clients do not half-close: EOF from a means it went away (a stopped watch).
    if (until_b_done && a_to_b.eof) return PipeEnd::kFailed;

    // Wait for something to do: readable input, writable output for due data, the next
    // chunk falling due, or the next look at stop/reset/blackhole.
    int timeout = kPollMs;
    pollfd p[2] = {{a.fd(), 0, 0}, {b.fd(), 0, 0}};
    if (!hole) {
      auto now = Clock::now();
      for (Direction* d : {&a_to_b, &b_to_a}) {
        pollfd& src = d == &a_to_b ? p[0] : p[1];
        pollfd& dst = d == &a_to_b ? p[1] : p[0];
        if (!d->eof && d->queued < kMaxQueued) {
          src.events |= POLLIN;
          if (d->src.HasBuffered()) timeout = 0;
        }
        if (!d->queue.empty()) {
          auto due = d->queue.front().due;
          if (due <= now) {
            dst.events |= POLLOUT;
          } else {
            auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(due - now).count() + 1;
            timeout = std::min(timeout, static_cast<int>(wait));
          }
        }
      }
      if (a.wants_write()) p[0].events |= POLLOUT;
      if (b.wants_write()) p[1].events |= POLLOUT;
    }
    ::poll(p, 2, timeout);
  }
}

const char* ReasonPhrase(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Error";
  }
}

// metav1.StatusReason the apiserver uses for `status` ("" = StatusReasonUnknown).
const char* StatusReason(int status) {
  switch (status) {
    case 400: return "BadRequest";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "NotFound";
    case 409: return "Conflict";
    case 410: return "Expired";
    case 429: return "TooManyRequests";
    case 500: return "InternalError";
    case 503: return "ServiceUnavailable";
    case 504: return "Timeout";
    default: return "";
  }
}

// A whole HTTP/1.1 answer with a metav1.Status body, as the apiserver writes it.
std::string StatusResponse(int status, const std::string& message, std::optional<int> retry_after) {
  nlohmann::json body = {{"kind", "Status"},   {"apiVersion", "v1"},         {"metadata", nlohmann::json::object()},
                         {"status", "Failure"}, {"message", message},         {"reason", StatusReason(status)},
                         {"code", status}};
  if (retry_after) body["details"] = {{"retryAfterSeconds", *retry_after}};
  std::string text = body.dump();
  std::string head = "HTTP/1.1 " + std::to_string(status) + " " + ReasonPhrase(status) +
                     "\r\nContent-Type: application/json\r\nCache-Control: no-cache, private\r\nContent-Length: " +
                     std::to_string(text.size()) + "\r\nConnection: close\r\n";
  if (retry_after) head += "Retry-After: " + std::to_string(*retry_after) + "\r\n";
  return head + "\r\n" + text;
}

struct SslCtxDeleter {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using SslCtx = std::unique_ptr<SSL_CTX, SslCtxDeleter>;

SslCtx NewContext(const SSL_METHOD* method) {
  SslCtx ctx(SSL_CTX_new(method));
  if (!ctx) throw TestEnvError("fault proxy: SSL_CTX_new: " + OpenSslError());
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
  SSL_CTX_set_options(ctx.get(), SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
  return ctx;
}

// Writes to a socket whose peer is gone raise SIGPIPE (OpenSSL writes with write(2)):
// blocked in the connection threads, so the write fails with EPIPE instead.
void BlockSigpipe() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

}  // namespace

// ---- private types ---------------------------------------------------------------------

struct FaultProxy::Connection {
  std::atomic<bool> reset{false};
  std::atomic<bool> done{false};
  std::jthread thread;
};

struct FaultProxy::Rule {
  FaultRuleId id = 0;
  RuleAction action = RuleAction::kFail;
  HttpFaultRule spec;
  std::unique_ptr<RE2> regex;  // null: any target
  int remaining = -1;          // -1: unlimited
};

struct FaultProxy::Tls {
  SslCtx server;  // towards clients: the upstream's serving certificate
  SslCtx client;  // towards the upstream: verifies its CA
  fs::path ca_path;
};

// ---- construction ----------------------------------------------------------------------

FaultProxy::FaultProxy(std::string upstream_host, std::uint16_t upstream_port)
    : upstream_host_(std::move(upstream_host)), upstream_port_(upstream_port) {
  Listen();
  acceptor_ = std::jthread([this](std::stop_token stop) { AcceptLoop(std::move(stop)); });
}

FaultProxy::FaultProxy(HttpsUpstream upstream) : upstream_host_(upstream.host), upstream_port_(upstream.port) {
  auto tls = std::make_unique<Tls>();
  tls->ca_path = upstream.ca_path;
  tls->server = NewContext(TLS_server_method());
  if (SSL_CTX_use_certificate_chain_file(tls->server.get(), upstream.serving_cert_path.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(tls->server.get(), upstream.serving_key_path.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(tls->server.get()) != 1) {
    throw TestEnvError("fault proxy: cannot load serving certificate " + upstream.serving_cert_path.string() +
                       " / key " + upstream.serving_key_path.string() + ": " + OpenSslError());
  }
  tls->client = NewContext(TLS_client_method());
  if (SSL_CTX_load_verify_locations(tls->client.get(), upstream.ca_path.c_str(), nullptr) != 1) {
    throw TestEnvError("fault proxy: cannot load CA " + upstream.ca_path.string() + ": " + OpenSslError());
  }
  SSL_CTX_set_verify(tls->client.get(), SSL_VERIFY_PEER, nullptr);
  tls_ = std::move(tls);

  if (!upstream.bearer_token.empty()) {
    dir_.emplace("faultproxy-" + upstream.name);
    kubeconfig_path_ = dir_->path() / "kubeconfig";
    const std::string& cluster = upstream.name;
    std::string context = "admin@" + cluster;
    WriteFile(kubeconfig_path_,
              "apiVersion: v1\n"
              "kind: Config\n"
              "clusters:\n"
              "- name: " + cluster + "\n"
              "  cluster:\n"
              "    server: " + url() + "\n"
              "    certificate-authority-data: " + Base64(ReadFile(upstream.ca_path)) + "\n"
              "users:\n"
              "- name: admin\n"
              "  user:\n"
              "    token: " + upstream.bearer_token + "\n"
              "contexts:\n"
              "- name: " + context + "\n"
              "  context:\n"
              "    cluster: " + cluster + "\n"
              "    user: admin\n"
              "current-context: " + context + "\n",
              0600);
  }
  Listen();
  acceptor_ = std::jthread([this](std::stop_token stop) { AcceptLoop(std::move(stop)); });
}

std::unique_ptr<FaultProxy> FaultProxy::ForCluster(const KubeCluster& cluster) {
  std::string server = cluster.server_url();  // https://127.0.0.1:<port>
  HttpsUpstream upstream;
  upstream.host = "127.0.0.1";
  upstream.port = static_cast<std::uint16_t>(std::stoi(server.substr(server.rfind(':') + 1)));
  upstream.ca_path = cluster.ca_path();
  upstream.serving_cert_path = cluster.dir() / "serving.crt";
  upstream.serving_key_path = cluster.dir() / "serving.key";
  upstream.bearer_token = cluster.admin_token();
  upstream.name = cluster.name() + "-proxy";
  return std::make_unique<FaultProxy>(std::move(upstream));
}

void FaultProxy::Listen() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw TestEnvError(std::string("fault proxy: socket: ") + std::strerror(errno));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port_.port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 128) != 0) {
    int err = errno;
    ::close(fd);
    throw TestEnvError("fault proxy: cannot listen on " + address() + ": " + std::strerror(err));
  }
  listen_fd_ = fd;
}

FaultProxy::~FaultProxy() {
  acceptor_.request_stop();
  if (acceptor_.joinable()) acceptor_.join();
  std::list<std::shared_ptr<Connection>> connections;
  {
    std::lock_guard lock(mu_);
    connections.swap(connections_);
  }
  for (auto& c : connections) c->thread.request_stop();
  for (auto& c : connections) {
    if (c->thread.joinable()) c->thread.join();
  }
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

std::string FaultProxy::address() const { return "127.0.0.1:" + std::to_string(port_.port()); }

std::string FaultProxy::url() const { return "https://" + address(); }

const fs::path& FaultProxy::kubeconfig_path() const {
  if (kubeconfig_path_.empty()) {
    throw TestEnvError("fault proxy on " + address() + " has no kubeconfig (HTTPS mode with a bearer token only)");
  }
  return kubeconfig_path_;
}

// ---- faults ----------------------------------------------------------------------------

void FaultProxy::ResetConnections() {
  std::vector<std::shared_ptr<Connection>> targets;  // destroyed after the lock is released
  std::unique_lock lock(mu_);
  for (auto& c : connections_) {
    if (c->done) continue;
    c->reset = true;
    targets.push_back(c);
  }
  connection_closed_.wait_for(lock, kResetTimeout, [&] {
    return std::all_of(targets.begin(), targets.end(), [](const auto& c) { return c->done.load(); });
  });
}

void FaultProxy::SetLatency(std::chrono::milliseconds latency) { latency_ms_ = std::max<std::int64_t>(0, latency.count()); }

void FaultProxy::Blackhole(std::chrono::milliseconds duration) {
  blackhole_until_ns_ = NowNs() + std::chrono::duration_cast<std::chrono::nanoseconds>(duration).count();
}

FaultRuleId FaultProxy::FailRequests(const HttpFaultRule& rule) { return AddRule(rule, RuleAction::kFail); }

FaultRuleId FaultProxy::ResetRequests(const HttpFaultRule& rule) { return AddRule(rule, RuleAction::kReset); }

FaultRuleId FaultProxy::AddRule(const HttpFaultRule& rule, RuleAction action) {
  if (!tls_) throw TestEnvError("fault proxy on " + address() + ": HTTP rules need HTTPS mode");
  auto r = std::make_unique<Rule>();
  r->action = action;
  r->spec = rule;
  r->remaining = rule.count < 0 ? -1 : rule.count;
  if (!rule.path_regex.empty()) {
    r->regex = std::make_unique<RE2>(rule.path_regex, RE2::Quiet);
    if (!r->regex->ok()) {
      throw TestEnvError("fault proxy: invalid path_regex \"" + rule.path_regex + "\": " + r->regex->error());
    }
  }
  std::lock_guard lock(mu_);
  r->id = next_rule_id_++;
  match_counts_[r->id] = 0;
  rules_.push_back(std::move(r));
  return rules_.back()->id;
}

int FaultProxy::MatchCount(FaultRuleId id) const {
  std::lock_guard lock(mu_);
  auto it = match_counts_.find(id);
  return it == match_counts_.end() ? 0 : it->second;
}

void FaultProxy::Clear() {
  latency_ms_ = 0;
  blackhole_until_ns_ = 0;
  std::lock_guard lock(mu_);
  rules_.clear();
}

std::optional<std::pair<FaultProxy::RuleAction, HttpFaultRule>> FaultProxy::Match(const std::string& method,
                                                                                 const std::string& target) {
  std::lock_guard lock(mu_);
  for (auto& r : rules_) {
    if (r->remaining == 0) continue;
    if (!r->spec.method.empty() && r->spec.method != method) continue;
    if (r->regex && !RE2::PartialMatch(target, *r->regex)) continue;
    if (r->remaining > 0) --r->remaining;
    ++match_counts_[r->id];
    return std::make_pair(r->action, r->spec);
  }
  return std::nullopt;
}

// ---- connections -----------------------------------------------------------------------

void FaultProxy::AcceptLoop(std::stop_token stop) {
  while (!stop.stop_requested()) {
    pollfd p{listen_fd_, POLLIN, 0};
    ::poll(&p, 1, kPollMs);
    // Join the threads of finished connections (outside the lock: joining waits).
    std::list<std::shared_ptr<Connection>> finished;
    {
      std::lock_guard lock(mu_);
      for (auto it = connections_.begin(); it != connections_.end();) {
        auto next = std::next(it);
        if ((*it)->done) finished.splice(finished.end(), connections_, it);
        it = next;
      }
    }
    finished.clear();
    for (;;) {
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) break;
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      ++accepted_;
      auto conn = std::make_shared<Connection>();
      Connection& c = *conn;
      std::lock_guard lock(mu_);
      connections_.push_back(std::move(conn));
      c.thread = std::jthread([this, &c, fd](std::stop_token conn_stop) {
        BlockSigpipe();
        Control control{std::move(conn_stop), &c.reset, &latency_ms_, &blackhole_until_ns_};
        try {
          if (tls_) {
            ServeHttps(control, fd);
          } else {
            ServeTcp(control, fd);
          }
        } catch (const std::exception&) {
          // std::bad_alloc and the like: the connection is closed (fds are owned).
        }
        {
          std::lock_guard done_lock(mu_);
          c.done = true;
        }
        connection_closed_.notify_all();
      });
    }
  }
}

void FaultProxy::ServeTcp(const Control& control, int client_fd) {
  Endpoint client(client_fd);
  int upstream_fd = ConnectTcp(upstream_host_, upstream_port_, control);
  if (upstream_fd < 0) {
    client.Abort();
    return;
  }
  Endpoint upstream(upstream_fd);
  if (Pipe(client, upstream, {}, /*until_b_done=*/false, control) != PipeEnd::kDone) {
    client.Abort();
    upstream.Abort();
  }
}

void FaultProxy::ServeHttps(const Control& control, int client_fd) {
  Endpoint client(client_fd);
  auto deadline = Clock::now() + kRequestTimeout;
  SSL* server_ssl = SSL_new(tls_->server.get());
  if (server_ssl == nullptr) return;
  client.AttachSsl(server_ssl);
  SSL_set_accept_state(server_ssl);
  if (!Handshake(client, control, deadline)) {
    client.Abort();
    return;
  }

  // The request head, then its Content-Length body.
  std::string in;
  char buf[kReadChunk];
  auto read_more = [&]() -> bool {
    for (;;) {
      if (!control.Blackholed()) {
        client.BeginRound();
        std::size_t n = 0;
        Io io = client.Read(buf, sizeof buf, &n);
        if (io == Io::kOk) {
          in.append(buf, n);
          return true;
        }
        if (io != Io::kWouldBlock) return false;
      }
      if (!client.Await(control, POLLIN, deadline)) return false;
    }
  };
  std::size_t head_end;
  while ((head_end = in.find("\r\n\r\n")) == std::string::npos) {
    if (in.size() > kMaxHeadBytes || !read_more()) {
      client.Abort();
      return;
    }
  }
  std::string_view head(in.data(), head_end);
  std::size_t line_end = head.find("\r\n");
  std::string_view request_line = head.substr(0, line_end);
  std::size_t sp1 = request_line.find(' ');
  std::size_t sp2 = request_line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1) {
    WriteAll(client, StatusResponse(400, "fault proxy: malformed request line", std::nullopt), control, deadline);
    return;
  }
  std::string method(request_line.substr(0, sp1));
  std::string target(request_line.substr(sp1 + 1, sp2 - sp1 - 1));

  std::string forwarded_head = method + " " + target + " HTTP/1.1\r\n";
  std::size_t content_length = 0;
  bool chunked = false;
  bool expect_continue = false;
  std::size_t pos = line_end == std::string_view::npos ? head.size() : line_end + 2;
  while (pos < head.size()) {
    std::size_t end = head.find("\r\n", pos);
    if (end == std::string_view::npos) end = head.size();
    std::string_view line = head.substr(pos, end - pos);
    pos = end + 2;
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string name = Lower(Trim(line.substr(0, colon)));
    std::string value = Trim(line.substr(colon + 1));
    if (name == "content-length") {
      content_length = static_cast<std::size_t>(std::strtoull(value.c_str(), nullptr, 10));
    } else if (name == "transfer-encoding") {
      chunked = Lower(value) != "identity";
    } else if (name == "expect") {
      expect_continue = Lower(value) == "100-continue";
      continue;  // answered here, not forwarded
    }
    // Hop-by-hop headers are the proxy's business: one request per connection.
    if (name == "connection" || name == "keep-alive" || name == "proxy-connection" || name == "upgrade" ||
        name == "te") {
      continue;
    }
    forwarded_head.append(line).append("\r\n");
  }
  forwarded_head += "Connection: close\r\n\r\n";

  if (chunked) {
    WriteAll(client,
             StatusResponse(501,
                            "the test fault proxy does not support chunked request bodies "
                            "(Transfer-Encoding: chunked); send a Content-Length body",
                            std::nullopt),
             control, deadline);
    client.ShutdownWrite();
    return;
  }
  if (content_length > kMaxBodyBytes) {
    WriteAll(client, StatusResponse(413, "fault proxy: request body too large", std::nullopt), control, deadline);
    client.ShutdownWrite();
    return;
  }
  std::size_t have = in.size() - (head_end + 4);
  if (expect_continue && have < content_length &&
      !WriteAll(client, "HTTP/1.1 100 Continue\r\n\r\n", control, deadline)) {
    client.Abort();
    return;
  }
  while (in.size() - (head_end + 4) < content_length) {
    if (!read_more()) {
      client.Abort();
      return;
    }
  }
  std::string body = in.substr(head_end + 4, content_length);

  if (auto rule = Match(method, target)) {
    if (rule->first == RuleAction::kReset) {
      client.Abort();
      return;
    }
    const HttpFaultRule& spec = rule->second;
    std::string message = "fault injected by the test proxy: " + method + " " + target + " answered " +
                          std::to_string(spec.status);
    if (WriteAll(client, StatusResponse(spec.status, message, spec.retry_after_seconds), control, deadline)) {
      client.ShutdownWrite();
    } else {
      client.Abort();
    }
    return;
  }

  // Forward to the real server over its own verified TLS connection.
  int upstream_fd = ConnectTcp(upstream_host_, upstream_port_, control);
  if (upstream_fd < 0) {
    client.Abort();  // as a refused connection would look to the client
    return;
  }
  Endpoint upstream(upstream_fd);
  SSL* client_ssl = SSL_new(tls_->client.get());
  if (client_ssl == nullptr) {
    client.Abort();
    return;
  }
  upstream.AttachSsl(client_ssl);
  SSL_set_connect_state(client_ssl);
  in_addr ip{};
  if (::inet_pton(AF_INET, upstream_host_.c_str(), &ip) == 1) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(client_ssl), upstream_host_.c_str());
  } else {
    SSL_set1_host(client_ssl, upstream_host_.c_str());
  }
  if (!Handshake(upstream, control, Clock::now() + kConnectTimeout)) {
    client.Abort();
    upstream.Abort();
    return;
  }
  ++forwarded_;
  if (Pipe(client, upstream, forwarded_head + body, /*until_b_done=*/true, control) != PipeEnd::kDone) {
    client.Abort();
    upstream.Abort();
  }
}

}  // namespace ro::testenv

// The libcurl Transport. One CurlTransport per apiserver:
//   - a pool of easy handles, each keeping its keep-alive connection between requests;
//   - one CURLSH sharing the DNS cache and TLS sessions between them (cheap resumption
//     when a handle opens a new connection);
//   - HTTP/1.1 on purpose: every pooled handle owns its connection, so N threads get N
//     parallel connections with no HTTP/2 stream-limit or head-of-line coupling, and a
//     long watch never shares a connection with short requests.
// Streams (watches) run the handle in a private multi handle so that a stop request
// wakes the poll at once (curl_multi_wakeup) instead of waiting for curl's ~1 s
// progress-callback cadence.
#include <curl/curl.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "bearer_token.h"
#include "pem.h"
#include "retry_policy.h"
#include <nlohmann/json.hpp>

#include "ro/common/log.h"
#include "ro/common/strings.h"
#include "ro/kube/errors.h"
#include "ro/kube/transport.h"
#include "token_bucket.h"

namespace ro::kube {
namespace {

using Clock = std::chrono::steady_clock;

// libcurl's receive buffer per handle (bytes). 128 KiB instead of the default 16 KiB
// cuts the number of write callbacks 8x on large lists; a watch still gets each chunk
// as soon as recv() returns it.
constexpr long kReceiveBufferBytes = 128 * 1024;
// TCP keep-alive: first probe after 30 s idle, then every 10 s, so a watch on a
// vanished peer fails in about a minute and a half even without an idle timeout.
constexpr long kKeepAliveIdleSeconds = 30;
constexpr long kKeepAliveIntervalSeconds = 10;
// Idle easy handles kept for reuse; more concurrent requests than this still work, the
// extra handles are just closed when released.
constexpr size_t kMaxIdleHandles = 64;
// Content-Length up to this is reserved up front (one allocation for the body); a
// larger (or lying) header just lets the body grow as it arrives.
constexpr long long kMaxBodyReserveBytes = 64LL * 1024 * 1024;
// Upper bound of one curl_multi_poll in Stream(); a stop request wakes it earlier.
constexpr int kStreamPollMs = 1000;

void EnsureCurlGlobalInit() {
  // curl_global_init is process-wide and not thread-safe itself; call_once makes the
  // first transport do it exactly once. It is never undone: other libraries in the
  // process may use libcurl too.
  static std::once_flag once;
  std::call_once(once, [] {
    const CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) {
      throw TransportError(TransportError::Kind::kOther,
                           std::string("curl_global_init: ") + curl_easy_strerror(rc));
    }
  });
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// Retry-After is delta-seconds or an HTTP-date (RFC 9110 section 10.2.3).
std::chrono::seconds ParseRetryAfter(std::string_view value) {
  const std::string text(value);
  char* end = nullptr;
  errno = 0;
  const long long secs = std::strtoll(text.c_str(), &end, 10);
  if (end != text.c_str() && *end == '\0' && errno == 0) {
    return std::chrono::seconds{secs > 0 ? secs : 0};
  }
  const time_t when = curl_getdate(text.c_str(), nullptr);
  if (when < 0) return std::chrono::seconds{0};
  const time_t now = std::time(nullptr);
  return std::chrono::seconds{when > now ? when - now : 0};
}

TransportError::Kind KindOf(CURLcode rc) {
  switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
      return TransportError::Kind::kConnect;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
      return TransportError::Kind::kTls;
    case CURLE_OPERATION_TIMEDOUT:
      return TransportError::Kind::kTimeout;
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2_STREAM:
      return TransportError::Kind::kBrokenStream;
    default:
      return TransportError::Kind::kOther;
  }
}

// ---------------------------------------------------------------------------------------
// RAII pieces.

struct SlistFree {
  void operator()(curl_slist* list) const noexcept { curl_slist_free_all(list); }
};
using HeaderList = std::unique_ptr<curl_slist, SlistFree>;

void Append(HeaderList& list, const char* header) {
  curl_slist* grown = curl_slist_append(list.get(), header);
  if (grown == nullptr) throw std::bad_alloc();
  (void)list.release();
  list.reset(grown);
}

// The CURLSH with one mutex per kind of shared data, as libcurl requires for threads.
class CurlShare {
 public:
  CurlShare() : share_(curl_share_init()) {
    if (share_ == nullptr) throw std::bad_alloc();
    curl_share_setopt(share_, CURLSHOPT_LOCKFUNC, &CurlShare::Lock);
    curl_share_setopt(share_, CURLSHOPT_UNLOCKFUNC, &CurlShare::Unlock);
    curl_share_setopt(share_, CURLSHOPT_USERDATA, this);
    curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  }
  ~CurlShare() { curl_share_cleanup(share_); }
  CurlShare(const CurlShare&) = delete;
  CurlShare& operator=(const CurlShare&) = delete;

  CURLSH* get() const noexcept { return share_; }

 private:
  static void Lock(CURL*, curl_lock_data data, curl_lock_access, void* self) {
    static_cast<CurlShare*>(self)->mutexes_[Index(data)].lock();
  }
  static void Unlock(CURL*, curl_lock_data data, void* self) {
    static_cast<CurlShare*>(self)->mutexes_[Index(data)].unlock();
  }
  static size_t Index(curl_lock_data data) {
    const auto i = static_cast<size_t>(data);
    return i < CURL_LOCK_DATA_LAST ? i : 0;
  }

  CURLSH* share_;
  std::array<std::mutex, CURL_LOCK_DATA_LAST> mutexes_;
};

// One easy handle with its error buffer (which must live as long as the handle).
struct EasyHandle {
  CURL* easy = nullptr;
  std::array<char, CURL_ERROR_SIZE> error{};

  EasyHandle() : easy(curl_easy_init()) {
    if (easy == nullptr) throw std::bad_alloc();
  }
  ~EasyHandle() { curl_easy_cleanup(easy); }
  EasyHandle(const EasyHandle&) = delete;
  EasyHandle& operator=(const EasyHandle&) = delete;
};

struct MultiFree {
  void operator()(CURLM* multi) const noexcept { curl_multi_cleanup(multi); }
};
using MultiHandle = std::unique_ptr<CURLM, MultiFree>;

// ---------------------------------------------------------------------------------------
// Per-request state the curl callbacks write into. Callbacks never throw through C:
// they park the exception here and abort the transfer.
struct Exchange {
  // Filled for Do().
  HttpResponse* response = nullptr;
  // Set for Stream().
  const std::function<void(long)>* on_status = nullptr;
  const std::function<void(std::string_view)>* on_data = nullptr;
  long status = 0;
  bool headers_done = false;
  std::exception_ptr error;

  void BeginResponse(long code) {
    status = code;
    if (response != nullptr) {
      response->status = code;
      response->retry_after = std::chrono::seconds{0};
      response->content_type.clear();
      response->body.clear();
    }
  }
};

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  const std::string_view line(data, size * count);
  try {
    if (line.rfind("HTTP/", 0) == 0) {
      // Status line of a (possibly interim 1xx) response: "HTTP/1.1 200 OK".
      const auto space = line.find(' ');
      const long code = space == std::string_view::npos
                            ? 0
                            : std::strtol(std::string(line.substr(space + 1, 3)).c_str(),
                                          nullptr, 10);
      ex->BeginResponse(code);
      return line.size();
    }
    if (common::TrimSpace(line).empty()) {
      // End of a header block; interim 1xx blocks are followed by the real one.
      if (ex->status >= 200 && !ex->headers_done) {
        ex->headers_done = true;
        if (ex->on_status != nullptr) (*ex->on_status)(ex->status);
      }
      return line.size();
    }
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || ex->response == nullptr) return line.size();
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = common::TrimSpace(line.substr(colon + 1));
    if (EqualsIgnoreCase(name, "Content-Type")) {
      ex->response->content_type.assign(value);
    } else if (EqualsIgnoreCase(name, "Retry-After")) {
      ex->response->retry_after = ParseRetryAfter(value);
    } else if (EqualsIgnoreCase(name, "Content-Length")) {
      const long long length = std::strtoll(std::string(value).c_str(), nullptr, 10);
      if (length > 0 && length <= kMaxBodyReserveBytes) {
        ex->response->body.reserve(static_cast<size_t>(length));
      }
    }
    return line.size();
  } catch (...) {
    ex->error = std::current_exception();
    return 0;
  }
}

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  const size_t n = size * count;
  try {
    ex->response->body.append(data, n);
    return n;
  } catch (...) {
    ex->error = std::current_exception();
    return 0;
  }
}

size_t OnStreamData(char* data, size_t size, size_t count, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  const size_t n = size * count;
  try {
    (*ex->on_data)(std::string_view(data, n));
    return n;
  } catch (...) {
    ex->error = std::current_exception();
    return 0;
  }
}

// ---------------------------------------------------------------------------------------

// Thread-safe; see the file comment.
class CurlTransport final : public Transport {
 public:
  explicit CurlTransport(const RestConfig& config)
      : config_(Validated(config)),
        token_(config_.bearer_token, config_.bearer_token_file),
        limiter_(config_.qps, config_.burst, Clock::now()) {}

  ~CurlTransport() override = default;

  HttpResponse Do(const HttpRequest& request) override {
    const int attempts =
        internal::IsIdempotentMethod(request.method) ? 1 + std::max(0, config_.max_retries) : 1;
    for (int attempt = 0;; ++attempt) {
      const bool last = attempt + 1 >= attempts;
      limiter_.Acquire();
      std::chrono::milliseconds delay{0};
      try {
        HttpResponse response = PerformOnce(request);
        if (last || !internal::IsRetryableStatus(response.status)) return response;
        delay = internal::DelayAfterStatus(attempt, response.retry_after);
        ro::log::Logger().Debug("retrying request", {{"component", "kube-transport"},
                                                     {"method", request.method},
                                                     {"path", request.path},
                                                     {"status", response.status},
                                                     {"retry", attempt + 1},
                                                     {"retryInMs", delay.count()}});
      } catch (const TransportError& e) {
        if (last || !internal::IsRetryableTransportError(e.kind())) throw;
        delay = internal::Backoff(attempt);
        ro::log::Logger().Debug("retrying request", {{"component", "kube-transport"},
                                                     {"method", request.method},
                                                     {"path", request.path},
                                                     {"error", e.what()},
                                                     {"retry", attempt + 1},
                                                     {"retryInMs", delay.count()}});
      }
      std::this_thread::sleep_for(delay);
    }
  }

  void Stream(const HttpRequest& request, const std::function<void(long)>& on_status,
              const std::function<void(std::string_view)>& on_data,
              std::stop_token stop) override {
    limiter_.Acquire();  // one token to open; the stream itself is not limited
    Lease handle = AcquireHandle();
    Exchange ex;
    ex.on_status = &on_status;
    ex.on_data = &on_data;
    HeaderList headers = Prepare(*handle, request, ex, /*stream=*/true);

    MultiHandle multi(curl_multi_init());
    if (!multi) throw std::bad_alloc();
    CURLMcode mc = curl_multi_add_handle(multi.get(), handle->easy);
    if (mc != CURLM_OK) throw MultiError("curl_multi_add_handle", mc, request);
    // Declared after `multi`, so it is deregistered before the multi handle goes away.
    std::stop_callback wake(stop, [m = multi.get()] { curl_multi_wakeup(m); });

    std::optional<CURLcode> result;
    while (!stop.stop_requested()) {
      int running = 0;
      mc = curl_multi_perform(multi.get(), &running);
      if (mc != CURLM_OK) break;
      if (ex.error) break;
      if (running == 0) {
        int queued = 0;
        while (CURLMsg* msg = curl_multi_info_read(multi.get(), &queued)) {
          if (msg->msg == CURLMSG_DONE) result = msg->data.result;
        }
        break;
      }
      mc = curl_multi_poll(multi.get(), nullptr, 0, kStreamPollMs, nullptr);
      if (mc != CURLM_OK) break;
    }
    curl_multi_remove_handle(multi.get(), handle->easy);
    Detach(*handle);

    if (ex.error) std::rethrow_exception(ex.error);
    if (stop.stop_requested()) return;
    if (mc != CURLM_OK) throw MultiError("curl_multi", mc, request);
    const CURLcode rc = result.value_or(CURLE_OK);
    if (rc != CURLE_OK) throw Failure(rc, *handle, request);
  }

 private:
  struct HandleReturner {
    CurlTransport* owner;
    void operator()(EasyHandle* handle) const noexcept { owner->ReleaseHandle(handle); }
  };
  using Lease = std::unique_ptr<EasyHandle, HandleReturner>;

  static RestConfig Validated(const RestConfig& config) {
    EnsureCurlGlobalInit();
    if (config.server.rfind("https://", 0) != 0 && config.server.rfind("http://", 0) != 0) {
      throw ConfigError("server", "must start with https:// or http://, got \"" +
                                      config.server + "\"");
    }
    if (!config.ca_pem.empty()) internal::CheckCertificatesPem(config.ca_pem, "ca_pem");
    if (config.client_cert_pem.empty() != config.client_key_pem.empty()) {
      throw ConfigError(config.client_key_pem.empty() ? "client_key_pem" : "client_cert_pem",
                        "client certificate and key go together");
    }
    if (!config.client_cert_pem.empty()) {
      internal::CheckClientKeyPair(config.client_cert_pem, config.client_key_pem,
                                   "client_cert_pem", "client_key_pem");
    }
    RestConfig copy = config;
    while (copy.server.size() > 1 && copy.server.back() == '/') copy.server.pop_back();
    return copy;
  }

  Lease AcquireHandle() {
    {
      std::lock_guard lock(pool_mu_);
      if (!idle_.empty()) {
        std::unique_ptr<EasyHandle> handle = std::move(idle_.back());
        idle_.pop_back();
        return Lease(handle.release(), HandleReturner{this});
      }
    }
    auto handle = std::make_unique<EasyHandle>();
    ConfigureOnce(*handle);
    return Lease(handle.release(), HandleReturner{this});
  }

  void ReleaseHandle(EasyHandle* raw) noexcept {
    std::unique_ptr<EasyHandle> handle(raw);
    std::lock_guard lock(pool_mu_);
    if (idle_.size() < kMaxIdleHandles) {
      try {
        idle_.push_back(std::move(handle));
      } catch (...) {  // out of memory: just close the handle
      }
    }
  }

  // Options that never change for a handle: set once when it is created.
  void ConfigureOnce(EasyHandle& h) const {
    CURL* e = h.easy;
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, h.error.data());
    curl_easy_setopt(e, CURLOPT_SHARE, share_.get());
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM for DNS timeouts
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, kKeepAliveIdleSeconds);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, kKeepAliveIntervalSeconds);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, kReceiveBufferBytes);
    curl_easy_setopt(e, CURLOPT_USERAGENT, config_.user_agent.c_str());
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(config_.timeout.count()));
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &OnHeader);
    if (config_.insecure_skip_tls_verify) {
      curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    } else {
      curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
      curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    }
    if (!config_.ca_pem.empty()) {
      // Trust exactly this bundle (as client-go does), not the system store as well.
      curl_easy_setopt(e, CURLOPT_CAINFO, nullptr);
      curl_easy_setopt(e, CURLOPT_CAPATH, nullptr);
      curl_blob ca{const_cast<char*>(config_.ca_pem.data()), config_.ca_pem.size(),
                   CURL_BLOB_NOCOPY};
      curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &ca);
    }
    if (!config_.client_cert_pem.empty()) {
      curl_blob cert{const_cast<char*>(config_.client_cert_pem.data()),
                     config_.client_cert_pem.size(), CURL_BLOB_NOCOPY};
      curl_blob key{const_cast<char*>(config_.client_key_pem.data()),
                    config_.client_key_pem.size(), CURL_BLOB_NOCOPY};
      curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
      curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &cert);
      curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
      curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &key);
    }
  }

  // Options of one request. The returned header list must outlive the transfer.
  HeaderList Prepare(EasyHandle& h, const HttpRequest& request, Exchange& ex, bool stream) {
    CURL* e = h.easy;
    h.error[0] = '\0';
    std::string url;
    url.reserve(config_.server.size() + request.path.size());
    url.append(config_.server).append(request.path);
    curl_easy_setopt(e, CURLOPT_URL, url.c_str());  // libcurl copies the string

    if (request.method == "GET") {
      curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
      curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, nullptr);
    } else {
      if (request.body.empty() && request.method != "POST") {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);  // no request body
      } else {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                         static_cast<curl_off_t>(request.body.size()));
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, request.body.data());
      }
      curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    }

    HeaderList headers;
    std::string line;
    line.reserve(64);
    line.assign("Accept: ").append(request.accept);
    Append(headers, line.c_str());
    if (!request.body.empty()) {
      line.assign("Content-Type: ")
          .append(request.content_type.empty() ? "application/json" : request.content_type);
      Append(headers, line.c_str());
    }
    // No "Expect: 100-continue" round trip before large bodies: the apiserver reads
    // every body anyway.
    Append(headers, "Expect:");
    if (const std::string auth = token_.Header(); !auth.empty()) Append(headers, auth.c_str());
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers.get());

    curl_easy_setopt(e, CURLOPT_HEADERDATA, &ex);
    if (stream) {
      curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &OnStreamData);
      curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 0L);
      const long idle = static_cast<long>(request.stream_idle_timeout.count());
      curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, idle > 0 ? 1L : 0L);
      curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, idle > 0 ? idle : 0L);
    } else {
      curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &OnBody);
      const auto timeout = request.timeout.count() > 0 ? request.timeout : config_.timeout;
      curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
      curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 0L);
      curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, 0L);
    }
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &ex);
    return headers;
  }

  // Clears pointers into request-owned memory before the handle goes back to the pool.
  static void Detach(EasyHandle& h) {
    curl_easy_setopt(h.easy, CURLOPT_HTTPHEADER, nullptr);
    curl_easy_setopt(h.easy, CURLOPT_POSTFIELDS, nullptr);
    curl_easy_setopt(h.easy, CURLOPT_HEADERDATA, nullptr);
    curl_easy_setopt(h.easy, CURLOPT_WRITEDATA, nullptr);
  }

  HttpResponse PerformOnce(const HttpRequest& request) {
    Lease handle = AcquireHandle();
    HttpResponse response;
    Exchange ex;
    ex.response = &response;
    const HeaderList headers = Prepare(*handle, request, ex, /*stream=*/false);
    const CURLcode rc = curl_easy_perform(handle->easy);
    Detach(*handle);
    if (ex.error) std::rethrow_exception(ex.error);
    if (rc != CURLE_OK) throw Failure(rc, *handle, request);
    long status = 0;
    curl_easy_getinfo(handle->easy, CURLINFO_RESPONSE_CODE, &status);
    response.status = status;
    return response;
  }

  TransportError Failure(CURLcode rc, const EasyHandle& h, const HttpRequest& request) const {
    const char* detail = h.error[0] != '\0' ? h.error.data() : curl_easy_strerror(rc);
    return TransportError(KindOf(rc), request.method + " " + config_.server + request.path +
                                          ": " + detail);
  }

  TransportError MultiError(const char* what, CURLMcode mc, const HttpRequest& request) const {
    return TransportError(TransportError::Kind::kOther,
                          request.method + " " + config_.server + request.path + ": " + what +
                              ": " + curl_multi_strerror(mc));
  }

  // Constant after construction.
  const RestConfig config_;
  const CurlShare share_;
  internal::BearerToken token_;     // thread-safe itself
  internal::TokenBucket limiter_;   // thread-safe itself

  std::mutex pool_mu_;
  std::vector<std::unique_ptr<EasyHandle>> idle_;  // guarded by pool_mu_
};

}  // namespace

std::unique_ptr<Transport> NewCurlTransport(const RestConfig& config) {
  return std::make_unique<CurlTransport>(config);
}

}  // namespace ro::kube

// A fault-injecting proxy in front of a real server, for tests of how clients survive
// broken networks and failing apiservers. It runs inside the test process (threads, no
// child process), listens on 127.0.0.1 on a port the harness leases (PortLease), and
// forwards to a real upstream server on 127.0.0.1 - never a mock.
//
// Two modes:
//   - TCP (nats-server, redis-server, ZooKeeper, ...): bytes are piped unchanged in both
//     directions; each accepted client connection gets its own upstream connection.
//   - HTTPS (kube-apiserver): TLS is terminated with the cluster's own serving
//     certificate (valid for 127.0.0.1, so clients keep verifying against the cluster's
//     CA); each HTTP/1.1 request is read (headers + Content-Length body), matched
//     against the HTTP fault rules, and, unless a rule answers it, forwarded to the
//     apiserver over a new TLS connection (verified against the cluster's CA). The
//     response is piped back byte by byte as it arrives, so watches (long-lived chunked
//     responses) stream through. Framing: the proxy forces `Connection: close`
//     (the apiserver then answers with `Connection: close` too), so every client
//     connection carries exactly one request, and the response ends at upstream EOF.
//     Chunked request bodies (Transfer-Encoding: chunked) are not supported: such a
//     request is answered 501 with a metav1.Status saying so. `Expect: 100-continue` is
//     answered by the proxy itself. HTTP/2 is never negotiated (no ALPN).
//
// Faults (both modes; all thread-safe, effective immediately, also while traffic flows):
//   - ResetConnections(): every open connection (client side and upstream side) is
//     closed abruptly with a TCP RST (SO_LINGER 0); new connections are unaffected.
//   - SetLatency(d): every piece of data is held `d` before it is forwarded, in both
//     directions (a request/response round trip takes at least 2*d more).
//   - Blackhole(d): for `d`, no byte is read or forwarded in either direction on any
//     connection; new connections are still accepted (the TCP handshake with the proxy
//     completes) and stall too (in HTTPS mode, before the TLS handshake). When `d` has
//     passed, traffic FLOWS AGAIN: connections are not reset, data held during the
//     blackhole is delivered (unless the peers gave up and closed in the meantime).
//   - HTTPS mode only: FailRequests(rule) answers matching requests with an error status
//     and a metav1.Status body as the apiserver writes it; ResetRequests(rule) closes
//     the client connection (RST) without answering. Rules are checked in the order
//     they were added; the first one that matches (and has matches left) applies.
//   - Clear(): removes latency, blackhole and every rule (match counters stay readable).
//
// Nothing outlives the proxy: the destructor stops the acceptor and every connection
// thread and closes every socket (open connections are reset).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ro/testenv/paths.h"
#include "ro/testenv/ports.h"

namespace ro::testenv {

class KubeCluster;
namespace internal {
struct ProxyControl;  // what a connection thread checks each round (fault_proxy.cc)
}  // namespace internal

// The upstream of a proxy in HTTPS mode (see FaultProxy::ForCluster for a KubeCluster).
struct HttpsUpstream {
  // Where the real server listens (plain host name or IPv4 address; the certificate
  // is verified for this name/IP).
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  // PEM file of the CA that signed the upstream's certificate (verification is on).
  std::filesystem::path ca_path;
  // PEM certificate and key the proxy serves to its clients (the upstream's own serving
  // pair, so clients trust the proxy with the same CA). Must be valid for 127.0.0.1.
  std::filesystem::path serving_cert_path;
  std::filesystem::path serving_key_path;
  // Written into the proxy's kubeconfig (user "admin"); empty: no kubeconfig.
  std::string bearer_token;
  // Cluster name in the kubeconfig and label of the proxy's temp dir.
  std::string name = "proxy";
};

// An HTTP fault: which requests it matches and how it answers them.
struct HttpFaultRule {
  // Request method to match exactly ("GET", "POST", ...); empty: any method.
  std::string method;
  // RE2 regular expression searched (partial match, not anchored: use ^ and $) in the
  // request target as the client sent it, path plus query, e.g.
  // R"(^/api/v1/namespaces/ns1/configmaps(\?|$))" or "watch=true". Empty: any target.
  std::string path_regex;
  // HTTP status of the answer (FailRequests only), e.g. 500, 503, 429. The Status
  // reason follows the apiserver: 500 InternalError, 503 ServiceUnavailable,
  // 429 TooManyRequests, 504 Timeout, 409 Conflict, 404 NotFound, 410 Expired,
  // 403 Forbidden, 401 Unauthorized, 400 BadRequest; other codes: reason "" (Unknown).
  int status = 503;
  // Whole seconds sent as the Retry-After header and details.retryAfterSeconds
  // (FailRequests only; as the apiserver does for 429). nullopt: neither is sent.
  std::optional<int> retry_after_seconds;
  // How many requests the rule applies to; -1: every matching request until Clear().
  // A rule that has used up its count lets requests pass (or the next rule apply).
  int count = -1;
};

// Handle of an added rule, for FaultProxy::MatchCount.
using FaultRuleId = int;

// The proxy: one listening socket, an acceptor thread and one thread per open
// connection. Thread-safety: every member function may be called from any thread at
// any time (except concurrently with destruction). Not copyable or movable.
class FaultProxy {
 public:
  // TCP mode: forwards every connection to upstream_host:upstream_port (IPv4 address
  // or name). Listening when the constructor returns. Throws TestEnvError when it cannot
  // listen. An upstream that refuses a connection gets that client connection reset.
  FaultProxy(std::string upstream_host, std::uint16_t upstream_port);
  // HTTPS mode. Loads the certificates and, when upstream.bearer_token is set, writes
  // kubeconfig_path(). Throws TestEnvError for unreadable/invalid certificate files or
  // when it cannot listen.
  explicit FaultProxy(HttpsUpstream upstream);
  // HTTPS mode in front of `cluster`'s main apiserver: its CA, its serving certificate
  // and key (from the cluster's temp dir) and its admin token. The cluster must outlive
  // the proxy. Throws TestEnvError as the constructor does.
  static std::unique_ptr<FaultProxy> ForCluster(const KubeCluster& cluster);
  // Stops every thread and closes every socket (open connections are reset).
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  std::uint16_t port() const { return port_.port(); }
  // "127.0.0.1:<port>" (TCP mode: give it to the client instead of the server's address).
  std::string address() const;
  // "https://127.0.0.1:<port>" (HTTPS mode).
  std::string url() const;
  // HTTPS mode with a bearer token: an admin kubeconfig whose server is the proxy (same
  // CA data and token as the cluster's admin kubeconfig). Throws TestEnvError otherwise.
  const std::filesystem::path& kubeconfig_path() const;

  // Resets every open connection (both sides, RST) and returns once all of them are
  // closed (at most ~100 ms after the call on a busy machine).
  void ResetConnections();
  // Delay added to all forwarded data, in both directions; 0 removes it. Applies to data
  // read from now on.
  void SetLatency(std::chrono::milliseconds latency);
  // Stalls all traffic for `duration` from now (see the file comment); traffic flows
  // again afterwards. A second call replaces the end time.
  void Blackhole(std::chrono::milliseconds duration);
  // HTTPS mode: answers matching requests with rule.status and a metav1.Status JSON
  // body, `Connection: close`. Returns the rule's id. Throws TestEnvError in TCP mode
  // or for an invalid regular expression.
  FaultRuleId FailRequests(const HttpFaultRule& rule);
  // HTTPS mode: closes the connection of matching requests with a RST, without any
  // answer (rule.status and retry_after_seconds are ignored). Returns the rule's id.
  // Throws TestEnvError in TCP mode or for an invalid regular expression.
  FaultRuleId ResetRequests(const HttpFaultRule& rule);
  // How many requests rule `id` has answered or reset so far (also after Clear());
  // 0 for an unknown id.
  int MatchCount(FaultRuleId id) const;
  // Removes latency, blackhole and all rules. Open connections are left alone.
  void Clear();

  // Connections accepted so far (both modes).
  std::uint64_t connections_accepted() const { return accepted_.load(); }
  // HTTPS mode: requests forwarded to the upstream so far (not those a rule handled).
  std::uint64_t requests_forwarded() const { return forwarded_.load(); }

 private:
  struct Connection;
  struct Rule;
  struct Tls;
  enum class RuleAction { kFail, kReset };

  void Listen();
  FaultRuleId AddRule(const HttpFaultRule& rule, RuleAction action);
  void AcceptLoop(std::stop_token stop);
  void ServeTcp(const internal::ProxyControl& control, int client_fd);
  void ServeHttps(const internal::ProxyControl& control, int client_fd);
  // The rule that applies to this request (its count consumed), or nullopt.
  std::optional<std::pair<RuleAction, HttpFaultRule>> Match(const std::string& method,
                                                            const std::string& target);

  // Constant after construction.
  std::string upstream_host_;
  std::uint16_t upstream_port_ = 0;
  std::unique_ptr<Tls> tls_;  // null in TCP mode
  std::optional<TempDir> dir_;
  std::filesystem::path kubeconfig_path_;
  PortLease port_;
  int listen_fd_ = -1;

  // Read by the connection threads without locking.
  std::atomic<std::int64_t> latency_ms_{0};
  std::atomic<std::int64_t> blackhole_until_ns_{0};  // steady_clock, since epoch
  std::atomic<std::uint64_t> accepted_{0};
  std::atomic<std::uint64_t> forwarded_{0};

  // Guarded by mu_.
  mutable std::mutex mu_;
  std::condition_variable connection_closed_;  // a Connection finished
  std::vector<std::unique_ptr<Rule>> rules_;
  std::map<FaultRuleId, int> match_counts_;  // every rule ever added -> its matches
  FaultRuleId next_rule_id_ = 1;
  std::list<std::shared_ptr<Connection>> connections_;

  std::jthread acceptor_;  // last: started when everything above exists
};

}  // namespace ro::testenv

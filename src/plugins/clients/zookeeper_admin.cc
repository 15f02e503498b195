#include "ro/plugins/zookeeper_admin.h"

#include <curl/curl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>

#include "ro/common/strings.h"

namespace ro::plugins {
namespace {

// A srvr answer is a few hundred bytes; anything far larger is not one.
constexpr std::size_t kMaxAnswer = 64 * 1024;

[[noreturn]] void Fail(ZooKeeperError::Code code, const std::string& message) {
  throw ZooKeeperError(code, 0, "", "ZooKeeper srvr: " + message);
}

// The version without ", built on ...".
std::string VersionOnly(std::string_view version) {
  return std::string(common::TrimSpace(version.substr(0, version.find(','))));
}

struct FdCloser {
  void operator()(const int* fd) const {
    ::close(*fd);
    delete fd;
  }
};

std::string FourLetterWord(const ZooKeeperAdminEndpoint& endpoint, std::chrono::milliseconds timeout) {
  const std::string where = endpoint.host + ":" + endpoint.port;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(endpoint.host.c_str(), endpoint.port.c_str(), &hints, &found) != 0 || found == nullptr) {
    Fail(ZooKeeperError::Code::kUnreachable, "cannot resolve " + where);
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> addresses(found, &freeaddrinfo);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const auto remaining_ms = [&] {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    return static_cast<int>(std::max<std::int64_t>(left.count(), 0));
  };
  const int raw = ::socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (raw < 0) Fail(ZooKeeperError::Code::kUnreachable, std::string("socket: ") + std::strerror(errno));
  std::unique_ptr<int, FdCloser> fd(new int(raw));
  if (::connect(raw, found->ai_addr, found->ai_addrlen) != 0 && errno != EINPROGRESS) {
    Fail(ZooKeeperError::Code::kUnreachable, "connect " + where + ": " + std::strerror(errno));
  }
  pollfd p{raw, POLLOUT, 0};
  if (::poll(&p, 1, remaining_ms()) <= 0) Fail(ZooKeeperError::Code::kUnreachable, "connect " + where + ": timed out");
  int error = 0;
  socklen_t length = sizeof(error);
  ::getsockopt(raw, SOL_SOCKET, SO_ERROR, &error, &length);
  if (error != 0) Fail(ZooKeeperError::Code::kUnreachable, "connect " + where + ": " + std::strerror(error));
  if (::send(raw, "srvr", 4, MSG_NOSIGNAL) != 4) {
    Fail(ZooKeeperError::Code::kUnreachable, "send to " + where + ": " + std::strerror(errno));
  }
  std::string answer;
  char buffer[4096];
  while (answer.size() < kMaxAnswer) {
    pollfd in{raw, POLLIN, 0};
    if (::poll(&in, 1, remaining_ms()) <= 0) Fail(ZooKeeperError::Code::kUnreachable, where + " did not answer in time");
    const ssize_t n = ::recv(raw, buffer, sizeof(buffer), 0);
    if (n == 0) break;  // the server closes after the answer
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      Fail(ZooKeeperError::Code::kUnreachable, "read from " + where + ": " + std::strerror(errno));
    }
    answer.append(buffer, static_cast<std::size_t>(n));
  }
  return answer;
}

std::size_t Collect(char* data, std::size_t size, std::size_t count, void* out) {
  auto* body = static_cast<std::string*>(out);
  if (body->size() + size * count > kMaxAnswer) return 0;  // aborts the transfer
  body->append(data, size * count);
  return size * count;
}

std::string AdminServerGet(const ZooKeeperAdminEndpoint& endpoint, std::chrono::milliseconds timeout) {
  const std::string url = endpoint.protocol + "://" + endpoint.host + ":" + endpoint.port + "/commands/srvr";
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) Fail(ZooKeeperError::Code::kOther, "curl_easy_init failed");
  std::string body;
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, &Collect);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &body);
  const CURLcode rc = curl_easy_perform(curl.get());
  if (rc != CURLE_OK) Fail(ZooKeeperError::Code::kUnreachable, "GET " + url + ": " + curl_easy_strerror(rc));
  long status = 0;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) Fail(ZooKeeperError::Code::kOther, "GET " + url + ": HTTP " + std::to_string(status));
  return body;
}

}  // namespace

ZooKeeperServerInfo ParseSrvrText(std::string_view text) {
  ZooKeeperServerInfo info;
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t end = std::min(text.find('\n', start), text.size());
    const std::string_view line = text.substr(start, end - start);
    if (line.starts_with("Zookeeper version:")) info.version = VersionOnly(line.substr(18));
    if (line.starts_with("Mode:")) info.mode = std::string(common::TrimSpace(line.substr(5)));
    start = end + 1;
  }
  if (info.version.empty()) {
    Fail(ZooKeeperError::Code::kOther, "the answer has no version line: \"" +
                                           std::string(common::TrimSpace(text.substr(0, 200))) + "\"");
  }
  return info;
}

ZooKeeperServerInfo ParseSrvrJson(std::string_view body) {
  const nlohmann::json doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || !doc.contains("version") || !doc["version"].is_string()) {
    Fail(ZooKeeperError::Code::kOther, "the AdminServer's answer has no version: \"" +
                                           std::string(common::TrimSpace(body.substr(0, 200))) + "\"");
  }
  ZooKeeperServerInfo info;
  info.version = VersionOnly(doc["version"].get<std::string>());
  const nlohmann::json stats = doc.value("server_stats", nlohmann::json::object());
  if (stats.is_object()) info.mode = stats.value("server_state", "");
  return info;
}

ZooKeeperServerInfo QueryServerInfo(const ZooKeeperAdminEndpoint& endpoint,
                                    std::chrono::milliseconds timeout) {
  if (endpoint.protocol == "tcp") return ParseSrvrText(FourLetterWord(endpoint, timeout));
  if (endpoint.protocol == "http" || endpoint.protocol == "https") {
    return ParseSrvrJson(AdminServerGet(endpoint, timeout));
  }
  throw ZooKeeperError(ZooKeeperError::Code::kBadArguments, 0, "",
                       "ZooKeeper srvr: protocol \"" + endpoint.protocol +
                           "\" is not http, https or tcp");
}

}  // namespace ro::plugins

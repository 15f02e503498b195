#include "bearer_token.h"

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include <nlohmann/json.hpp>

#include "ro/common/log.h"
#include "ro/common/strings.h"
#include "ro/kube/errors.h"

namespace ro::kube::internal {
namespace {

constexpr const char* kPrefix = "Authorization: Bearer ";

}  // namespace

BearerToken::BearerToken(std::string token, std::string file,
                         std::function<Clock::time_point()> now)
    : file_(std::move(file)), now_(std::move(now)) {
  if (file_.empty()) {
    if (!token.empty()) header_ = kPrefix + token;
    return;
  }
  std::lock_guard lock(mu_);
  std::string error;
  if (!RereadLocked(&error)) throw ConfigError("bearer_token_file", error);
}

std::string BearerToken::Header() {
  std::lock_guard lock(mu_);
  if (!file_.empty() && now_() - last_read_ >= kRereadInterval) {
    std::string error;
    if (!RereadLocked(&error)) {
      last_read_ = now_();  // try again after another interval, not on every request
      ro::log::Logger().Warn("keeping the previous bearer token", {{"component", "kube-transport"}, {"error", error}});
    }
  }
  return header_;
}

bool BearerToken::RereadLocked(std::string* error) {
  std::ifstream in(file_, std::ios::binary);
  if (!in) {
    *error = "cannot read \"" + file_ + "\": " + std::strerror(errno);
    return false;
  }
  std::ostringstream text;
  text << in.rdbuf();
  const std::string_view token = common::TrimSpace(text.view());
  if (token.empty()) {
    *error = "\"" + file_ + "\" is empty";
    return false;
  }
  header_.assign(kPrefix).append(token);
  last_read_ = now_();
  return true;
}

}  // namespace ro::kube::internal

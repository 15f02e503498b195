#include "ro/runtime/license.h"

#include <array>
#include <fstream>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "ro/common/digest.h"
#include "ro/common/time.h"

namespace ro::runtime {

namespace {

bool IsBlank(std::string_view text) {
  return text.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

}  // namespace

std::string_view ToString(LicenseInfo::State state) {
  switch (state) {
    case LicenseInfo::State::kValid: return "valid";
    case LicenseInfo::State::kMissing: return "missing";
    case LicenseInfo::State::kEmpty: return "empty";
    case LicenseInfo::State::kExpired: return "expired";
    case LicenseInfo::State::kInvalid: return "invalid";
  }
  return "invalid";
}

LicenseInfo InspectLicense(std::string_view text, std::chrono::system_clock::time_point now) {
  LicenseInfo info;
  info.fingerprint = common::Sha256Hex(text);
  if (IsBlank(text)) {
    info.state = LicenseInfo::State::kEmpty;
    info.summary = "the license file is empty";
    return info;
  }
  info.state = LicenseInfo::State::kValid;
  info.summary = "valid";
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception&) {
    return info;  // an opaque key that happens not to be YAML
  }
  if (!root.IsMap()) return info;  // an opaque key (a scalar)
  try {
    if (const YAML::Node licensee = root["licensee"]; licensee && licensee.IsScalar()) {
      info.licensee = licensee.as<std::string>();
    }
    if (const YAML::Node expires = root["expiresAt"]; expires && expires.IsScalar()) {
      info.expires_at = common::ParseRfc3339(expires.as<std::string>());
    }
  } catch (const common::TimeError& e) {
    info.state = LicenseInfo::State::kInvalid;
    info.summary = std::string("expiresAt: ") + e.what();
    return info;
  } catch (const YAML::Exception& e) {
    info.state = LicenseInfo::State::kInvalid;
    info.summary = std::string("malformed license: ") + e.what();
    return info;
  }
  if (info.expires_at && *info.expires_at <= now) {
    info.state = LicenseInfo::State::kExpired;
    info.summary = "expired at " + common::FormatRfc3339(*info.expires_at);
  }
  return info;
}

LicenseInfo LoadLicenseFile(const std::string& path, std::chrono::system_clock::time_point now) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    LicenseInfo info;
    info.state = LicenseInfo::State::kMissing;
    info.summary = "license file " + path + " cannot be read";
    return info;
  }
  std::ostringstream content;
  content << in.rdbuf();
  return InspectLicense(content.str(), now);
}

}  // namespace ro::runtime

// The license key every controller reads at start-up from the license Secret mounted as
// a file (deploy/operator: /etc/resiliency-operator/license/license; manual 3 and 4.1:
// a new key takes effect after `rollout restart`).
//
// The key is opaque to us. When the text is a YAML or JSON mapping, its optional
// `licensee` (string) and `expiresAt` (RFC 3339) fields are reported too. A missing,
// empty or expired license is reported (log line at error level, /readyz detail) but
// never stops a controller.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace ro::runtime {

struct LicenseInfo {
  enum class State { kValid, kMissing, kEmpty, kExpired, kInvalid };
  State state = State::kMissing;
  // Hex SHA-256 of the file's bytes ("" when missing): identifies which key is loaded
  // without printing it.
  std::string fingerprint;
  std::string licensee;                                        // "" when absent
  std::optional<std::chrono::system_clock::time_point> expires_at;
  // One line for logs and /readyz: "valid", "file ... not found", "expired at ...".
  std::string summary;
};

// "valid", "missing", "empty", "expired", "invalid".
std::string_view ToString(LicenseInfo::State state);

// Inspects license text read from a file (pure). kInvalid when the text is a mapping
// whose expiresAt is not RFC 3339.
LicenseInfo InspectLicense(std::string_view text, std::chrono::system_clock::time_point now);

// Reads `path` and inspects it; kMissing when it cannot be read. Never throws.
LicenseInfo LoadLicenseFile(const std::string& path, std::chrono::system_clock::time_point now);

}  // namespace ro::runtime

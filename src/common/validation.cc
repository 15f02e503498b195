#include "ro/common/validation.h"

#include <algorithm>
#include <cstddef>

namespace ro::common {
namespace {

constexpr std::size_t kMaxLabelLength = 63;       // validation.DNS1123LabelMaxLength
constexpr std::size_t kMaxSubdomainLength = 253;  // validation.DNS1123SubdomainMaxLength

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// [a-z0-9]([-a-z0-9]*[a-z0-9])?
bool IsLabelPart(std::string_view s) {
  if (s.empty() || !IsLowerAlnum(s.front()) || !IsLowerAlnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return IsLowerAlnum(c) || c == '-'; });
}

}  // namespace

bool IsDns1123Label(std::string_view s) { return s.size() <= kMaxLabelLength && IsLabelPart(s); }

bool IsDns1123Subdomain(std::string_view s) {
  if (s.empty() || s.size() > kMaxSubdomainLength) return false;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = s.find('.', start);
    const std::string_view part =
        s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (!IsLabelPart(part)) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

}  // namespace ro::common

#include "ro/plugins/kubernetes/resource_version.h"

#include <algorithm>
#include <string>

namespace ro::plugins::kubernetes {
namespace {

std::string_view WithoutLeadingZeros(std::string_view rv) {
  const std::size_t first = rv.find_first_not_of('0');
  return first == std::string_view::npos ? std::string_view("0") : rv.substr(first);
}

void Require(std::string_view rv) {
  if (!IsValidResourceVersion(rv)) {
    throw ResourceVersionError("resourceVersion \"" + std::string(rv) +
                               "\" is not an unsigned decimal integer");
  }
}

}  // namespace

bool IsValidResourceVersion(std::string_view rv) noexcept {
  return !rv.empty() && std::all_of(rv.begin(), rv.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::strong_ordering CompareResourceVersions(std::string_view a, std::string_view b) {
  Require(a);
  Require(b);
  a = WithoutLeadingZeros(a);
  b = WithoutLeadingZeros(b);
  // Without leading zeros, a longer number is larger; equal lengths compare as text.
  if (a.size() != b.size()) return a.size() <=> b.size();
  const int c = a.compare(b);
  return c < 0 ? std::strong_ordering::less
               : (c > 0 ? std::strong_ordering::greater : std::strong_ordering::equal);
}

}  // namespace ro::plugins::kubernetes

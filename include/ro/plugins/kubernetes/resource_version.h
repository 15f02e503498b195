// Ordering of resourceVersions of one cluster (docs/kubesync.md "Ordering"). Kubernetes
// calls resourceVersions opaque, but every apiserver backed by etcd uses the etcd
// revision: a decimal unsigned integer that grows with every write. Kubesync relies on
// that to apply an event only when it is newer than what the destination records.
#pragma once

#include <compare>
#include <stdexcept>
#include <string_view>

namespace ro::plugins::kubernetes {

// A resourceVersion is not a decimal unsigned integer ("", "abc", "-1", "12a").
// Rule: such a value is never ordered; the caller decides (the synchronizer treats an
// unreadable recorded version as "older than any event", see synchronizer_decision.h).
class ResourceVersionError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// True when `rv` is a non-empty string of ASCII digits.
bool IsValidResourceVersion(std::string_view rv) noexcept;

// Compares two resourceVersions as unsigned integers of any length (leading zeros
// ignored, no overflow). Throws ResourceVersionError naming the invalid value.
std::strong_ordering CompareResourceVersions(std::string_view a, std::string_view b);

}  // namespace ro::plugins::kubernetes

// String and file helpers every layer needs (the one copy of each).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ro::common {

// `s` without leading and trailing white space (std::isspace in the C locale: space, \t,
// \n, \v, \f, \r), as Go's strings.TrimSpace. The view points into `s`.
std::string_view TrimSpace(std::string_view s);

// The parts of `text` between `separator`s, empty ones included ("a,,b" -> "a", "", "b";
// "" -> one empty part), as Go's strings.Split. The views point into `text`.
std::vector<std::string_view> Split(std::string_view text, char separator);

// The whole content of the file at `path` (bytes, unchanged); nullopt with `error` (when
// non-null) set to the reason (strerror, or "read error") when it cannot be read.
std::optional<std::string> ReadWholeFile(const std::string& path, std::string* error = nullptr);

}  // namespace ro::common

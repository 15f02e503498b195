// Standard base64 (RFC 4648 section 4: alphabet A-Z a-z 0-9 + /, "=" padding), the form
// of Secret data, kubeconfig *-data fields, caBundle and AdmissionReview patches.
#pragma once

#include <string>
#include <string_view>

namespace ro::common {

// Padded, without line breaks.
std::string EncodeBase64(std::string_view data);

// Whitespace (spaces, tabs, line breaks) is skipped, as Go's decoder in client-go's
// kubeconfig loader does. Throws std::invalid_argument on any other character outside
// the alphabet, misplaced padding or a truncated final group.
std::string DecodeBase64(std::string_view text);

}  // namespace ro::common

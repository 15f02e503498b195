// Name validation as Kubernetes does it (k8s.io/apimachinery/pkg/util/validation,
// validation.go, RFC 1123 section 2.1). Used wherever a manifest names an object, a
// resource, an API group or a label key's prefix.
#pragma once

#include <string_view>

namespace ro::common {

// IsDNS1123Label: 1..63 characters of [a-z0-9-], alphanumeric at both ends
// (namespace names, plural resource names, API versions).
bool IsDns1123Label(std::string_view s);

// IsDNS1123Subdomain: 1..253 characters, dot-separated parts each matching
// [a-z0-9]([-a-z0-9]*[a-z0-9])? (most object names, API groups, label-key prefixes).
// As in apimachinery, a part is not limited to 63 characters.
bool IsDns1123Subdomain(std::string_view s);

}  // namespace ro::common

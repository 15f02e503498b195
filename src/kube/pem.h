// Private to ro_kube: checks that TLS material parses before it reaches libcurl, so a
// bad kubeconfig fails at load time with the field named instead of at the first
// connection with an opaque TLS error.
#pragma once

#include <string>
#include <string_view>

namespace ro::kube::internal {

// Throws ConfigError(field, ...) unless `pem` holds at least one X.509 certificate.
void CheckCertificatesPem(std::string_view pem, const std::string& field);

// Throws ConfigError unless `cert_pem` is a certificate, `key_pem` a private key, and the
// key belongs to the certificate. `cert_field`/`key_field` name them in the error.
void CheckClientKeyPair(std::string_view cert_pem, std::string_view key_pem,
                        const std::string& cert_field, const std::string& key_field);

}  // namespace ro::kube::internal

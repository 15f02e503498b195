// X.509 certificates for the TLS the operator serves (the audit webhook) or gives its
// pipelines (NATS, Redis): one small CA per purpose, P-256 keys, SHA-256 signatures,
// extensions as RFC 5280 and the CA/Browser profile expect of a server certificate
// (basicConstraints, keyUsage, extendedKeyUsage serverAuth and clientAuth,
// subjectAltName). OpenSSL.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace ro::common {

// One issued server certificate and its private key (PEM, PKCS#8).
struct IssuedServer {
  std::string cert_pem;
  std::string key_pem;
};

struct IssuedCertificates {
  std::string ca_pem;                // the CA certificate
  std::string ca_key_pem;            // its key: keep it only to issue again (IssueServerCertificate)
  std::vector<IssuedServer> servers;  // in the order of the request
  std::chrono::system_clock::time_point not_after{};  // of the CA and every server certificate
};

// A new CA named `ca_name` and, for each entry of `servers` (may be none), a server certificate for
// those DNS names (the first is also the subject CN) and IP 127.0.0.1, all valid from
// now - 1 h (clock skew; or - `validity` when shorter) to now + `validity` (whole
// seconds). A caller that drops ca_key_pem makes sure nothing more can be issued under
// that CA (the pipelines' CAs); one that keeps it can renew the server certificate
// without changing what its clients trust.
// Throws std::invalid_argument (a server without names) and
// std::runtime_error (OpenSSL failed).
IssuedCertificates IssueServerCertificates(std::string_view ca_name,
                                           const std::vector<std::vector<std::string>>& servers,
                                           std::chrono::system_clock::time_point now, std::chrono::seconds validity);

// A server certificate for `dns_names` (the first is the CN; IP 127.0.0.1 added) signed
// by the CA of `ca_pem` / `ca_key_pem`, valid like IssueServerCertificates' but never
// beyond the CA's notAfter. Throws std::invalid_argument (no names, unreadable CA or a
// key that does not match it) and std::runtime_error (OpenSSL failed).
IssuedServer IssueServerCertificate(std::string_view ca_pem, std::string_view ca_key_pem,
                                    const std::vector<std::string>& dns_names,
                                    std::chrono::system_clock::time_point now, std::chrono::seconds validity);

// The notAfter of the first certificate in `pem`. Throws std::invalid_argument when
// `pem` holds no parsable certificate.
std::chrono::system_clock::time_point CertificateNotAfter(std::string_view pem);

// The certificates of a PEM bundle (in order, each re-encoded as PEM) whose notAfter is
// after `now`; what cannot be parsed is left out.
std::vector<std::string> CertificatesValidAt(std::string_view pem_bundle, std::chrono::system_clock::time_point now);

// True when the first certificate of `pem` is valid for DNS name `host` (its
// subjectAltName, wildcards as RFC 6125 6.4.3 allows them). False when unparsable.
bool CertificateNamesHost(std::string_view pem, std::string_view host);

// True when `pem` needs replacing at `now`: unparsable, or less than a third of its
// validity (notBefore .. notAfter) left. The one renewal rule of the operator's
// certificates.
bool CertificateDueForRenewal(std::string_view pem, std::chrono::system_clock::time_point now);

}  // namespace ro::common

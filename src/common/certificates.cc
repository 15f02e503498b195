#include "ro/common/certificates.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <ctime>
#include <memory>
#include <stdexcept>

namespace ro::common {
namespace {

using Clock = std::chrono::system_clock;

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using CertPtr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;

[[noreturn]] void OpenSslFailed(const char* what) {
  throw std::runtime_error(std::string("certificates: OpenSSL failed to ") + what);
}

void Check(int ok, const char* what) {
  if (ok != 1) OpenSslFailed(what);
}

KeyPtr NewKey() {
  KeyPtr key(EVP_EC_gen("P-256"));
  if (!key) OpenSslFailed("generate a P-256 key");
  return key;
}

void AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) OpenSslFailed("build a certificate extension");
  const int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  Check(ok, "add a certificate extension");
}

CertPtr NewCertificate(const std::string& common_name, EVP_PKEY* key, Clock::time_point not_before,
                       Clock::time_point not_after) {
  CertPtr cert(X509_new());
  if (!cert) OpenSslFailed("allocate a certificate");
  Check(X509_set_version(cert.get(), 2), "set the certificate version");
  // A random 127-bit serial (RFC 5280 4.1.2.2: positive, at most 20 octets).
  unsigned char serial[16];
  Check(RAND_bytes(serial, sizeof serial), "draw a serial number");
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  if (bn == nullptr || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get())) == nullptr) {
    BN_free(bn);
    OpenSslFailed("set the serial number");
  }
  BN_free(bn);
  const auto seconds = [](Clock::time_point t) {
    return static_cast<time_t>(std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count());
  };
  if (ASN1_TIME_set(X509_getm_notBefore(cert.get()), seconds(not_before)) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert.get()), seconds(not_after)) == nullptr) {
    OpenSslFailed("set the validity");
  }
  X509_NAME* name = X509_get_subject_name(cert.get());
  Check(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0),
        "set the subject");
  Check(X509_set_pubkey(cert.get(), key), "set the public key");
  return cert;
}

std::string Pem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) OpenSslFailed("write a certificate");
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

std::string Pem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    OpenSslFailed("write a private key");
  }
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

CertPtr ParseCertificate(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  CertPtr cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!cert) throw std::invalid_argument("no PEM certificate could be read");
  return cert;
}

Clock::time_point TimeOf(const ASN1_TIME* time) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(time, &tm) != 1) throw std::invalid_argument("the certificate's validity cannot be read");
  return Clock::from_time_t(timegm(&tm));
}

IssuedServer IssueLeaf(X509* ca, EVP_PKEY* ca_key, const std::vector<std::string>& dns_names,
                       Clock::time_point not_before, Clock::time_point not_after) {
  KeyPtr server_key = NewKey();
  CertPtr server = NewCertificate(dns_names.front(), server_key.get(), not_before, not_after);
  X509_set_issuer_name(server.get(), X509_get_subject_name(ca));
  std::string san;
  for (const std::string& name : dns_names) san += "DNS:" + name + ",";
  san += "IP:127.0.0.1";
  AddExtension(server.get(), ca, NID_subject_alt_name, san);
  AddExtension(server.get(), ca, NID_basic_constraints, "critical,CA:FALSE");
  AddExtension(server.get(), ca, NID_key_usage, "critical,digitalSignature");
  // clientAuth too: a nats-server of a JetStream cluster presents the same certificate
  // when it dials its routes (mutual TLS between the members).
  AddExtension(server.get(), ca, NID_ext_key_usage, "serverAuth,clientAuth");
  AddExtension(server.get(), ca, NID_authority_key_identifier, "keyid:always");
  if (X509_sign(server.get(), ca_key, EVP_sha256()) == 0) OpenSslFailed("sign a server certificate");
  return IssuedServer{Pem(server.get()), Pem(server_key.get())};
}

}  // namespace

IssuedCertificates IssueServerCertificates(std::string_view ca_name,
                                           const std::vector<std::vector<std::string>>& servers, Clock::time_point now,
                                           std::chrono::seconds validity) {
  for (const auto& names : servers) {
    if (names.empty()) throw std::invalid_argument("IssueServerCertificates: a server without a DNS name");
  }
  IssuedCertificates out;
  // Backdated for clock skew: an hour, or the validity itself when shorter (tests).
  const std::chrono::seconds backdate = std::min<std::chrono::seconds>(std::chrono::hours{1}, validity);
  const auto not_before = std::chrono::time_point_cast<std::chrono::seconds>(now - backdate);
  out.not_after = std::chrono::time_point_cast<std::chrono::seconds>(now + validity);

  KeyPtr ca_key = NewKey();
  CertPtr ca = NewCertificate(std::string(ca_name), ca_key.get(), not_before, out.not_after);
  X509_set_issuer_name(ca.get(), X509_get_subject_name(ca.get()));
  AddExtension(ca.get(), ca.get(), NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
  AddExtension(ca.get(), ca.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
  AddExtension(ca.get(), ca.get(), NID_subject_key_identifier, "hash");
  if (X509_sign(ca.get(), ca_key.get(), EVP_sha256()) == 0) OpenSslFailed("sign the CA certificate");

  for (const auto& dns_names : servers) {
    out.servers.push_back(IssueLeaf(ca.get(), ca_key.get(), dns_names, not_before, out.not_after));
  }
  out.ca_pem = Pem(ca.get());
  out.ca_key_pem = Pem(ca_key.get());
  return out;
}

IssuedServer IssueServerCertificate(std::string_view ca_pem, std::string_view ca_key_pem,
                                    const std::vector<std::string>& dns_names, Clock::time_point now,
                                    std::chrono::seconds validity) {
  if (dns_names.empty()) throw std::invalid_argument("IssueServerCertificate: no DNS name");
  const CertPtr ca = ParseCertificate(ca_pem);
  BioPtr bio(BIO_new_mem_buf(ca_key_pem.data(), static_cast<int>(ca_key_pem.size())));
  const KeyPtr ca_key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!ca_key) throw std::invalid_argument("IssueServerCertificate: the CA key cannot be read");
  if (X509_check_private_key(ca.get(), ca_key.get()) != 1) {
    throw std::invalid_argument("IssueServerCertificate: the CA key does not match the CA certificate");
  }
  const std::chrono::seconds backdate = std::min<std::chrono::seconds>(std::chrono::hours{1}, validity);
  const auto not_before = std::chrono::time_point_cast<std::chrono::seconds>(now - backdate);
  const auto not_after = std::min(std::chrono::time_point_cast<std::chrono::seconds>(now + validity),
                                  std::chrono::time_point_cast<std::chrono::seconds>(TimeOf(X509_get0_notAfter(ca.get()))));
  return IssueLeaf(ca.get(), ca_key.get(), dns_names, not_before, not_after);
}

Clock::time_point CertificateNotAfter(std::string_view pem) {
  const CertPtr cert = ParseCertificate(pem);
  return TimeOf(X509_get0_notAfter(cert.get()));
}

std::vector<std::string> CertificatesValidAt(std::string_view pem_bundle, Clock::time_point now) {
  std::vector<std::string> out;
  BioPtr bio(BIO_new_mem_buf(pem_bundle.data(), static_cast<int>(pem_bundle.size())));
  if (!bio) return out;
  while (true) {
    const CertPtr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) break;
    if (TimeOf(X509_get0_notAfter(cert.get())) > now) out.push_back(Pem(cert.get()));
  }
  return out;
}

bool CertificateNamesHost(std::string_view pem, std::string_view host) {
  try {
    const CertPtr cert = ParseCertificate(pem);
    return X509_check_host(cert.get(), host.data(), host.size(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, nullptr) == 1;
  } catch (const std::invalid_argument&) {
    return false;
  }
}

bool CertificateDueForRenewal(std::string_view pem, Clock::time_point now) {
  try {
    const CertPtr cert = ParseCertificate(pem);
    const Clock::time_point not_before = TimeOf(X509_get0_notBefore(cert.get()));
    const Clock::time_point not_after = TimeOf(X509_get0_notAfter(cert.get()));
    return now >= not_after - (not_after - not_before) / 3;
  } catch (const std::invalid_argument&) {
    return true;
  }
}

}  // namespace ro::common

#include "pem.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <climits>
#include <memory>

#include "ro/kube/errors.h"

namespace ro::kube::internal {
namespace {

struct BioFree {
  void operator()(BIO* b) const noexcept { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const noexcept { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

// Never prompt on the terminal for a passphrase (OpenSSL's default callback would):
// encrypted keys are refused.
int NoPassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*userdata*/) { return 0; }

BioPtr MemoryBio(std::string_view data, const std::string& field) {
  if (data.size() > static_cast<size_t>(INT_MAX)) throw ConfigError(field, "too large");
  BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  if (!bio) throw ConfigError(field, "out of memory reading PEM");
  return bio;
}

X509Ptr ReadCertificate(std::string_view pem, const std::string& field) {
  BioPtr bio = MemoryBio(pem, field);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr));
  ERR_clear_error();  // OpenSSL's queue is per thread; do not leak entries to curl.
  if (!cert) throw ConfigError(field, "no PEM certificate found");
  return cert;
}

}  // namespace

void CheckCertificatesPem(std::string_view pem, const std::string& field) {
  ReadCertificate(pem, field);
}

void CheckClientKeyPair(std::string_view cert_pem, std::string_view key_pem,
                        const std::string& cert_field, const std::string& key_field) {
  X509Ptr cert = ReadCertificate(cert_pem, cert_field);
  BioPtr bio = MemoryBio(key_pem, key_field);
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  ERR_clear_error();
  if (!key) throw ConfigError(key_field, "no unencrypted PEM private key found");
  const bool matches = X509_check_private_key(cert.get(), key.get()) == 1;
  ERR_clear_error();
  if (!matches) throw ConfigError(key_field, "private key does not match " + cert_field);
}

}  // namespace ro::kube::internal

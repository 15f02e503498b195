#include "ro/plugins/bucket_encryption.h"

#include <climits>
#include <utility>

#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "ro/common/digest.h"
#include "ro/plugins/s3_client.h"

namespace ro::plugins {
namespace {

using Reason = BucketEncryptionError::Reason;

constexpr std::string_view kMagic("\0ROE", 4);
constexpr unsigned char kVersion = 1;
constexpr unsigned char kAlgorithmAes256Gcm = 1;
constexpr std::string_view kKeyIdDomain = "ro-bucket-key-v1";

struct CtxDeleter {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};
using Ctx = std::unique_ptr<EVP_CIPHER_CTX, CtxDeleter>;

void CheckSizes(std::string_view key, std::string_view nonce, std::size_t data_size) {
  if (key.size() != kAesGcmKeyBytes) {
    throw BucketEncryptionError(Reason::kBadKey, "AES-256-GCM needs a 32-byte key, got " +
                                                     std::to_string(key.size()) + " bytes");
  }
  if (nonce.size() != kAesGcmNonceBytes) {
    throw BucketEncryptionError(Reason::kBadKey, "AES-256-GCM needs a 12-byte nonce, got " +
                                                     std::to_string(nonce.size()) + " bytes");
  }
  if (data_size > static_cast<std::size_t>(INT_MAX)) {
    throw BucketEncryptionError(Reason::kCrypto, "object too large for one AES-GCM call");
  }
}

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

[[noreturn]] void CryptoFailure(const char* step) {
  throw BucketEncryptionError(Reason::kCrypto, std::string("OpenSSL AES-256-GCM: ") + step + " failed");
}

// Starts an AES-256-GCM context with `key`, `nonce` and the associated data.
Ctx Start(bool encrypt, std::string_view key, std::string_view nonce, std::string_view aad) {
  Ctx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) CryptoFailure("EVP_CIPHER_CTX_new");
  const auto init = encrypt ? &EVP_EncryptInit_ex : &EVP_DecryptInit_ex;
  if (init(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1) CryptoFailure("init");
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(nonce.size()),
                          nullptr) != 1) {
    CryptoFailure("set IV length");
  }
  if (init(ctx.get(), nullptr, nullptr, Bytes(key), Bytes(nonce)) != 1) CryptoFailure("set key");
  int ignored = 0;
  if (!aad.empty()) {
    const auto update = encrypt ? &EVP_EncryptUpdate : &EVP_DecryptUpdate;
    if (update(ctx.get(), nullptr, &ignored, Bytes(aad), static_cast<int>(aad.size())) != 1) {
      CryptoFailure("associated data");
    }
  }
  return ctx;
}

std::string HexToBytes(std::string_view hex) {
  const auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    return c - 'a' + 10;  // common::Sha256Hex is lower-case
  };
  std::string out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>((nibble(hex[i]) << 4) | nibble(hex[i + 1]));
  }
  return out;
}

std::string OptionalString(const nlohmann::json& object, const char* name, const std::string& path) {
  const auto it = object.find(name);
  if (it == object.end() || it->is_null()) return "";
  if (!it->is_string()) throw S3ConfigError(path, "must be a string");
  return it->get<std::string>();
}

const nlohmann::json* OptionalObject(const nlohmann::json& object, const char* name,
                                     const std::string& path) {
  const auto it = object.find(name);
  if (it == object.end() || it->is_null()) return nullptr;
  if (!it->is_object()) throw S3ConfigError(path, "must be an object");
  return &*it;
}

}  // namespace

BucketEncryptionError::BucketEncryptionError(Reason reason, const std::string& message)
    : std::runtime_error(message), reason_(reason) {}

const char* BucketEncryptionError::reason_name() const noexcept {
  switch (reason_) {
    case Reason::kKeyMissing: return "EncryptionKeyMissing";
    case Reason::kBadKey: return "EncryptionKeyInvalid";
    case Reason::kTampered: return "EncryptedObjectTampered";
    case Reason::kMalformed: return "EncryptedObjectMalformed";
    case Reason::kCrypto: return "EncryptionFailed";
  }
  return "EncryptionFailed";
}

AesGcmSealed AesGcmSeal(std::string_view key, std::string_view nonce, std::string_view aad,
                        std::string_view plaintext) {
  CheckSizes(key, nonce, plaintext.size());
  Ctx ctx = Start(/*encrypt=*/true, key, nonce, aad);
  AesGcmSealed out;
  out.ciphertext.resize(plaintext.size());
  int written = 0;
  if (!plaintext.empty() &&
      EVP_EncryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.ciphertext.data()), &written,
                        Bytes(plaintext), static_cast<int>(plaintext.size())) != 1) {
    CryptoFailure("encrypt");
  }
  int final_bytes = 0;
  unsigned char scratch[16];
  if (EVP_EncryptFinal_ex(ctx.get(), scratch, &final_bytes) != 1) CryptoFailure("final");
  out.tag.resize(kAesGcmTagBytes);
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kAesGcmTagBytes),
                          out.tag.data()) != 1) {
    CryptoFailure("get tag");
  }
  return out;
}

std::string AesGcmOpen(std::string_view key, std::string_view nonce, std::string_view aad,
                       std::string_view ciphertext, std::string_view tag) {
  CheckSizes(key, nonce, ciphertext.size());
  if (tag.size() != kAesGcmTagBytes) {
    throw BucketEncryptionError(Reason::kTampered, "AES-256-GCM tag must be 16 bytes, got " +
                                                       std::to_string(tag.size()));
  }
  Ctx ctx = Start(/*encrypt=*/false, key, nonce, aad);
  std::string plaintext(ciphertext.size(), '\0');
  int written = 0;
  if (!ciphertext.empty() &&
      EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(plaintext.data()), &written,
                        Bytes(ciphertext), static_cast<int>(ciphertext.size())) != 1) {
    CryptoFailure("decrypt");
  }
  // OpenSSL reads the expected tag from a non-const buffer.
  std::string expected(tag);
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kAesGcmTagBytes),
                          expected.data()) != 1) {
    CryptoFailure("set tag");
  }
  unsigned char scratch[16];
  int final_bytes = 0;
  if (EVP_DecryptFinal_ex(ctx.get(), scratch, &final_bytes) != 1) {
    throw BucketEncryptionError(Reason::kTampered, "AES-256-GCM authentication failed");
  }
  return plaintext;
}

std::string EnvelopeKeyIdHex(std::string_view key) {
  std::string material(kKeyIdDomain);
  material.append(key);
  return common::Sha256Hex(material, 2 * kEnvelopeKeyIdBytes);
}

std::string EnvelopeKeyId(std::string_view key) { return HexToBytes(EnvelopeKeyIdHex(key)); }

bool IsEncryptedEnvelope(std::string_view data) { return data.starts_with(kMagic); }

BucketCipher::BucketCipher(std::string write_key, std::vector<std::string> read_keys)
    : write_key_(std::move(write_key)) {
  read_keys.push_back(write_key_);
  for (std::string& key : read_keys) {
    if (key.size() != kAesGcmKeyBytes) {
      throw BucketEncryptionError(Reason::kBadKey, "a client-side encryption key must be 32 bytes, got " +
                                                       std::to_string(key.size()));
    }
    ring_[EnvelopeKeyId(key)] = std::move(key);
  }
  write_key_id_ = EnvelopeKeyId(write_key_);
  write_key_id_hex_ = EnvelopeKeyIdHex(write_key_);
}

std::string BucketCipher::Seal(std::string_view object_key, std::string_view plaintext) const {
  std::string nonce(kAesGcmNonceBytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(nonce.data()), static_cast<int>(nonce.size())) != 1) {
    throw BucketEncryptionError(Reason::kCrypto, "OpenSSL RAND_bytes failed: no nonce");
  }
  return SealWithNonce(object_key, plaintext, nonce);
}

std::string BucketCipher::SealWithNonce(std::string_view object_key, std::string_view plaintext,
                                        std::string_view nonce) const {
  if (nonce.size() != kAesGcmNonceBytes) {
    throw BucketEncryptionError(Reason::kBadKey, "the nonce must be 12 bytes");
  }
  std::string envelope(kMagic);
  envelope += static_cast<char>(kVersion);
  envelope += static_cast<char>(kAlgorithmAes256Gcm);
  envelope += write_key_id_;
  envelope += nonce;
  std::string aad = envelope;
  aad.append(object_key);
  const AesGcmSealed sealed = AesGcmSeal(write_key_, nonce, aad, plaintext);
  envelope += sealed.ciphertext;
  envelope += sealed.tag;
  return envelope;
}

std::string BucketCipher::Open(std::string_view object_key, std::string_view stored) const {
  if (!IsEncryptedEnvelope(stored)) return std::string(stored);
  const std::string where = "bucket object \"" + std::string(object_key) + "\"";
  if (stored.size() < kEnvelopeHeaderBytes + kAesGcmTagBytes) {
    throw BucketEncryptionError(Reason::kMalformed, where + ": encrypted envelope truncated (" +
                                                        std::to_string(stored.size()) + " bytes)");
  }
  const auto version = static_cast<unsigned char>(stored[4]);
  const auto algorithm = static_cast<unsigned char>(stored[5]);
  if (version != kVersion || algorithm != kAlgorithmAes256Gcm) {
    throw BucketEncryptionError(Reason::kMalformed, where + ": unknown envelope version " +
                                                        std::to_string(version) + " / algorithm " +
                                                        std::to_string(algorithm));
  }
  const std::string key_id(stored.substr(6, kEnvelopeKeyIdBytes));
  const auto key = ring_.find(key_id);
  if (key == ring_.end()) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string hex;
    for (const char c : key_id) {
      hex += kHex[static_cast<unsigned char>(c) >> 4];
      hex += kHex[static_cast<unsigned char>(c) & 0xf];
    }
    throw BucketEncryptionError(Reason::kKeyMissing,
                                where + " is encrypted with key id " + hex +
                                    ", which is not in the Bucket's key Secret");
  }
  const std::string_view header = stored.substr(0, kEnvelopeHeaderBytes);
  const std::string_view nonce = stored.substr(6 + kEnvelopeKeyIdBytes, kAesGcmNonceBytes);
  const std::string_view body =
      stored.substr(kEnvelopeHeaderBytes, stored.size() - kEnvelopeHeaderBytes - kAesGcmTagBytes);
  const std::string_view tag = stored.substr(stored.size() - kAesGcmTagBytes);
  std::string aad(header);
  aad.append(object_key);
  try {
    return AesGcmOpen(key->second, nonce, aad, body, tag);
  } catch (const BucketEncryptionError& e) {
    if (e.reason() != Reason::kTampered) throw;
    throw BucketEncryptionError(Reason::kTampered,
                                where + ": authentication failed (changed, truncated, or "
                                        "copied from another path)");
  }
}

std::string OpenWithoutCipher(std::string_view object_key, std::string_view stored) {
  if (!IsEncryptedEnvelope(stored)) return std::string(stored);
  throw BucketEncryptionError(Reason::kKeyMissing,
                              "bucket object \"" + std::string(object_key) +
                                  "\" is encrypted client-side but the Bucket sets no "
                                  "spec.encryption.clientSide key");
}

BucketEncryptionSpec BucketEncryptionFromSpec(const nlohmann::json& spec) {
  BucketEncryptionSpec out;
  if (!spec.is_object()) return out;
  const nlohmann::json* encryption = OptionalObject(spec, "encryption", "spec.encryption");
  if (encryption == nullptr) return out;
  if (const nlohmann::json* client =
          OptionalObject(*encryption, "clientSide", "spec.encryption.clientSide")) {
    out.client_secret_name = OptionalString(*client, "secretName", "spec.encryption.clientSide.secretName");
    if (out.client_secret_name.empty()) {
      throw S3ConfigError("spec.encryption.clientSide.secretName", "is required");
    }
    const std::string key_name = OptionalString(*client, "keyName", "spec.encryption.clientSide.keyName");
    if (!key_name.empty()) out.client_key_name = key_name;
  }
  if (const nlohmann::json* server =
          OptionalObject(*encryption, "serverSide", "spec.encryption.serverSide")) {
    out.sse_algorithm = OptionalString(*server, "algorithm", "spec.encryption.serverSide.algorithm");
    if (out.sse_algorithm != "AES256" && out.sse_algorithm != "aws:kms") {
      throw S3ConfigError("spec.encryption.serverSide.algorithm",
                          "must be AES256 or aws:kms, got \"" + out.sse_algorithm + "\"");
    }
    out.sse_kms_key_id = OptionalString(*server, "kmsKeyId", "spec.encryption.serverSide.kmsKeyId");
    if (!out.sse_kms_key_id.empty() && out.sse_algorithm != "aws:kms") {
      throw S3ConfigError("spec.encryption.serverSide.kmsKeyId", "is only allowed with algorithm aws:kms");
    }
  }
  return out;
}

std::shared_ptr<const BucketCipher> BucketCipherFromSecret(
    const std::map<std::string, std::string>& values, const std::string& key_name,
    const std::string& secret_ref) {
  const auto write = values.find(key_name);
  if (write == values.end()) {
    throw BucketEncryptionError(Reason::kKeyMissing,
                                secret_ref + " has no key \"" + key_name +
                                    "\" (spec.encryption.clientSide.keyName)");
  }
  if (write->second.size() != kAesGcmKeyBytes) {
    throw BucketEncryptionError(Reason::kBadKey, secret_ref + " key \"" + key_name + "\" must hold 32 bytes, holds " +
                                                     std::to_string(write->second.size()));
  }
  std::vector<std::string> ring;
  for (const auto& [name, value] : values) {
    if (name != key_name && value.size() == kAesGcmKeyBytes) ring.push_back(value);
  }
  return std::make_shared<const BucketCipher>(write->second, std::move(ring));
}

}  // namespace ro::plugins

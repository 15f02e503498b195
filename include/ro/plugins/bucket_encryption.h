// Encryption at rest of the bucket originals (docs/security.md, "Encryption at rest:
// bucket originals"; docs/assets-bucket.md, "Encryption").
//
// Client-side: AES-256-GCM (NIST SP 800-38D) through OpenSSL EVP, with a 32-byte key
// from a Kubernetes Secret the Bucket names (spec.encryption.clientSide). Every object is
// stored as a self-describing envelope, version 1:
//
//   offset  size  field
//   0       4     magic "\0ROE" (a JSON original never starts with a NUL byte)
//   4       1     version = 1
//   5       1     algorithm = 1 (AES-256-GCM)
//   6       8     key id: the first 8 bytes of SHA-256("ro-bucket-key-v1" || key)
//   14      12    nonce, random per object (RAND_bytes)
//   26      n     ciphertext (n = plaintext length)
//   26+n    16    GCM tag
//
// The associated data is the 26 header bytes followed by the object key (its S3 path):
// a changed header byte, a ciphertext copied to another path, a truncated object or a
// flipped bit all fail authentication (BucketEncryptionError kTampered).
// Bytes that do not start with the magic are a plaintext object written before
// encryption was turned on and pass through unchanged.
//
// Server-side (S3 SSE) is configured here too (spec.encryption.serverSide) and sent by
// S3Client::PutObject as signed x-amz-server-side-encryption headers.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace ro::plugins {

// Encrypting or decrypting a bucket object failed, or the key material is unusable.
// Never retryable: the same bytes and keys give the same answer; surface it (condition,
// Event, log) and do not fall back to plaintext. reason_name() is the CamelCase reason
// a condition shows.
//   kKeyMissing  no key (Secret, key name, or a key with the object's key id) to use.
//   kBadKey      the key material is not 32 bytes.
//   kTampered    authentication failed: wrong key of the same id, changed bytes, an
//                object moved to another path, truncation.
//   kMalformed   an envelope too short or with an unknown version/algorithm.
//   kCrypto      OpenSSL itself failed (out of memory, no randomness).
class BucketEncryptionError : public std::runtime_error {
 public:
  enum class Reason { kKeyMissing, kBadKey, kTampered, kMalformed, kCrypto };
  BucketEncryptionError(Reason reason, const std::string& message);
  Reason reason() const noexcept { return reason_; }
  // "EncryptionKeyMissing", "EncryptionKeyInvalid", "EncryptedObjectTampered",
  // "EncryptedObjectMalformed", "EncryptionFailed".
  const char* reason_name() const noexcept;

 private:
  Reason reason_;
};

inline constexpr std::size_t kAesGcmKeyBytes = 32;
inline constexpr std::size_t kAesGcmNonceBytes = 12;
inline constexpr std::size_t kAesGcmTagBytes = 16;
inline constexpr std::size_t kEnvelopeKeyIdBytes = 8;
inline constexpr std::size_t kEnvelopeHeaderBytes = 4 + 1 + 1 + kEnvelopeKeyIdBytes + kAesGcmNonceBytes;

// --- AES-256-GCM primitive (the one place that calls EVP) ---------------------------

struct AesGcmSealed {
  std::string ciphertext;  // same length as the plaintext
  std::string tag;         // 16 bytes
};
// Encrypts with a caller-chosen 12-byte nonce (NIST SP 800-38D, 96-bit IV). A nonce
// must never repeat under one key: BucketCipher draws it at random. Throws
// BucketEncryptionError kBadKey (key not 32 bytes, nonce not 12) or kCrypto.
AesGcmSealed AesGcmSeal(std::string_view key, std::string_view nonce, std::string_view aad,
                        std::string_view plaintext);
// Decrypts and verifies the 16-byte tag. Throws kTampered on an authentication failure,
// kBadKey / kCrypto as above.
std::string AesGcmOpen(std::string_view key, std::string_view nonce, std::string_view aad,
                       std::string_view ciphertext, std::string_view tag);

// The 8-byte key id of `key` (raw bytes; see the envelope above) and its 16-hex-digit
// form for logs and docs.
std::string EnvelopeKeyId(std::string_view key);
std::string EnvelopeKeyIdHex(std::string_view key);

// True when `data` starts with the envelope magic.
bool IsEncryptedEnvelope(std::string_view data);

// The client-side cipher of one Bucket: a write key and a key ring for reading.
// Immutable and thread-safe after construction.
class BucketCipher {
 public:
  // `write_key` encrypts new objects; every key of `read_keys` (write_key included
  // implicitly) decrypts, chosen by the envelope's key id (rotation: old keys stay in
  // the ring). Throws BucketEncryptionError kBadKey when a key is not 32 bytes.
  explicit BucketCipher(std::string write_key, std::vector<std::string> read_keys = {});

  // The envelope of `plaintext` stored at `object_key`, with a fresh random nonce.
  // Throws kCrypto.
  std::string Seal(std::string_view object_key, std::string_view plaintext) const;
  // The same with a given nonce (12 bytes): tests and test vectors only.
  std::string SealWithNonce(std::string_view object_key, std::string_view plaintext,
                            std::string_view nonce) const;
  // The plaintext of what is stored at `object_key`: an envelope is decrypted and
  // verified; anything without the magic is returned unchanged (written before
  // encryption was on). Throws kKeyMissing (no key with the envelope's id), kTampered,
  // kMalformed.
  std::string Open(std::string_view object_key, std::string_view stored) const;

  // Hex key id of the write key.
  const std::string& write_key_id() const noexcept { return write_key_id_hex_; }

 private:
  // Constant after construction.
  std::string write_key_;
  std::string write_key_id_;
  std::string write_key_id_hex_;
  std::map<std::string, std::string> ring_;  // raw key id -> key
};

// What a reader without a cipher does with stored bytes: plaintext passes through, an
// envelope throws kKeyMissing naming `object_key` (never handed on as if it were JSON).
std::string OpenWithoutCipher(std::string_view object_key, std::string_view stored);

// --- The Bucket asset's spec.encryption -----------------------------------------------

// spec.encryption of a Bucket (docs/assets-bucket.md, "Encryption"):
//   encryption:
//     clientSide: {secretName: <Secret in the Bucket's namespace>, keyName: <key; "key">}
//     serverSide: {algorithm: AES256 | aws:kms, kmsKeyId: <only with aws:kms>}
// Both blocks are optional; without them the objects are stored as before.
struct BucketEncryptionSpec {
  std::string client_secret_name;   // empty: client-side encryption off
  std::string client_key_name = "key";
  std::string sse_algorithm;        // "", "AES256" or "aws:kms"
  std::string sse_kms_key_id;       // only with aws:kms; empty: the bucket's default key
  bool client_side() const noexcept { return !client_secret_name.empty(); }
};

// Parses spec.encryption of a Bucket `spec`. Throws S3ConfigError naming the field
// ("spec.encryption.serverSide.algorithm").
BucketEncryptionSpec BucketEncryptionFromSpec(const nlohmann::json& spec);

// The cipher from the decoded values of the key Secret: the value of `key_name` writes,
// every 32-byte value of the Secret reads. Throws BucketEncryptionError kKeyMissing (no
// `key_name`) or kBadKey (`key_name` not 32 bytes), naming `secret_ref` and the key.
std::shared_ptr<const BucketCipher> BucketCipherFromSecret(
    const std::map<std::string, std::string>& values, const std::string& key_name,
    const std::string& secret_ref);

}  // namespace ro::plugins

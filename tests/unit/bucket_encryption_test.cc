// Client-side encryption of the bucket originals (ro/plugins/bucket_encryption.h):
// published AES-256-GCM test vectors through AesGcmSeal/AesGcmOpen (the functions the
// envelope calls), the envelope's round trip, tampering, wrong keys, plaintext
// passthrough, key rotation, and the Bucket spec.encryption mapping. No server involved.
#include <curl/curl.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "ro/plugins/bucket_encryption.h"
#include "ro/plugins/s3_client.h"

namespace ro::plugins {
namespace {

using nlohmann::json;
using Reason = BucketEncryptionError::Reason;

std::string Unhex(std::string_view hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
  }
  return out;
}

std::string Hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const char c : bytes) {
    out += kHex[static_cast<unsigned char>(c) >> 4];
    out += kHex[static_cast<unsigned char>(c) & 0xf];
  }
  return out;
}

// McGrew & Viega, "The Galois/Counter Mode of Operation (GCM)", test cases 13-16
// (AES-256, 96-bit IV), the vectors NIST's GCM validation (SP 800-38D, GCMVS) reuses.
struct Vector {
  const char* name;
  const char* key;
  const char* iv;
  const char* aad;
  const char* plaintext;
  const char* ciphertext;
  const char* tag;
};
constexpr const char* kKey15 = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
constexpr const char* kIv15 = "cafebabefacedbaddecaf888";
const Vector kVectors[] = {
    {"case13", "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
    {"case14", "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "", "00000000000000000000000000000000",
     "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"},
    {"case15", kKey15, kIv15, "",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
     "b094dac5d93471bdec1a502270e3cc6c"},
    {"case16", kKey15, kIv15, "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
};

TEST(AesGcmTest, MatchesPublishedAes256Vectors) {
  for (const Vector& v : kVectors) {
    SCOPED_TRACE(v.name);
    const AesGcmSealed sealed = AesGcmSeal(Unhex(v.key), Unhex(v.iv), Unhex(v.aad), Unhex(v.plaintext));
    EXPECT_EQ(Hex(sealed.ciphertext), v.ciphertext);
    EXPECT_EQ(Hex(sealed.tag), v.tag);
    EXPECT_EQ(AesGcmOpen(Unhex(v.key), Unhex(v.iv), Unhex(v.aad), Unhex(v.ciphertext), Unhex(v.tag)),
              Unhex(v.plaintext));
  }
}

TEST(AesGcmTest, RejectsAChangedTagOrAad) {
  const Vector& v = kVectors[3];
  std::string tag = Unhex(v.tag);
  tag[0] = static_cast<char>(tag[0] ^ 1);
  try {
    AesGcmOpen(Unhex(v.key), Unhex(v.iv), Unhex(v.aad), Unhex(v.ciphertext), tag);
    FAIL() << "a changed tag was accepted";
  } catch (const BucketEncryptionError& e) {
    EXPECT_EQ(e.reason(), Reason::kTampered);
  }
  EXPECT_THROW(AesGcmOpen(Unhex(v.key), Unhex(v.iv), "other aad", Unhex(v.ciphertext), Unhex(v.tag)),
               BucketEncryptionError);
}

TEST(AesGcmTest, RefusesKeysThatAreNot32Bytes) {
  try {
    AesGcmSeal(std::string(16, 'k'), std::string(12, 'n'), "", "x");
    FAIL() << "a 16-byte key was accepted";
  } catch (const BucketEncryptionError& e) {
    EXPECT_EQ(e.reason(), Reason::kBadKey);
  }
}

const std::string kKeyA(32, 'A');
const std::string kKeyB(32, 'B');
constexpr std::string_view kPath = "dr-config/ns/ls/v1-secrets/app.credentials";
constexpr std::string_view kOriginal =
    R"({"apiVersion":"v1","kind":"Secret","data":{"password":"aHVudGVyMg=="}})";

Reason ReasonOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const BucketEncryptionError& e) {
    return e.reason();
  }
  ADD_FAILURE() << "no BucketEncryptionError";
  return Reason::kCrypto;
}

TEST(BucketCipherTest, RoundTripsAndHidesThePlaintext) {
  const BucketCipher cipher(kKeyA);
  const std::string stored = cipher.Seal(kPath, kOriginal);
  EXPECT_TRUE(IsEncryptedEnvelope(stored));
  EXPECT_EQ(stored.size(), kEnvelopeHeaderBytes + kOriginal.size() + kAesGcmTagBytes);
  EXPECT_EQ(stored.find("aHVudGVyMg"), std::string::npos);
  EXPECT_EQ(stored.find("Secret"), std::string::npos);
  EXPECT_EQ(cipher.Open(kPath, stored), kOriginal);
  // A fresh nonce per object: the same original never gives the same bytes.
  EXPECT_NE(cipher.Seal(kPath, kOriginal), stored);
  EXPECT_EQ(cipher.Open(kPath, cipher.Seal(kPath, "")), "");
}

TEST(BucketCipherTest, EnvelopeIsHeaderThenGcmOfThePathBoundPlaintext) {
  const BucketCipher cipher(kKeyA);
  const std::string nonce = Unhex(kIv15);
  const std::string stored = cipher.SealWithNonce(kPath, kOriginal, nonce);
  const std::string header = std::string("\0ROE", 4) + '\x01' + '\x01' + EnvelopeKeyId(kKeyA) + nonce;
  ASSERT_EQ(header.size(), kEnvelopeHeaderBytes);
  const AesGcmSealed sealed = AesGcmSeal(kKeyA, nonce, header + std::string(kPath), kOriginal);
  EXPECT_EQ(Hex(stored), Hex(header + sealed.ciphertext + sealed.tag));
  EXPECT_EQ(EnvelopeKeyIdHex(kKeyA).size(), 16u);
  EXPECT_EQ(Hex(EnvelopeKeyId(kKeyA)), EnvelopeKeyIdHex(kKeyA));
  EXPECT_EQ(cipher.write_key_id(), EnvelopeKeyIdHex(kKeyA));
}

TEST(BucketCipherTest, DetectsEveryKindOfTampering) {
  const BucketCipher cipher(kKeyA);
  const std::string stored = cipher.Seal(kPath, kOriginal);
  std::string bad_tag = stored;
  bad_tag.back() = static_cast<char>(bad_tag.back() ^ 0x80);
  EXPECT_EQ(ReasonOf([&] { cipher.Open(kPath, bad_tag); }), Reason::kTampered);
  std::string bad_body = stored;
  bad_body[kEnvelopeHeaderBytes + 3] = static_cast<char>(bad_body[kEnvelopeHeaderBytes + 3] ^ 1);
  EXPECT_EQ(ReasonOf([&] { cipher.Open(kPath, bad_body); }), Reason::kTampered);
  std::string bad_nonce = stored;
  bad_nonce[20] = static_cast<char>(bad_nonce[20] ^ 1);
  EXPECT_EQ(ReasonOf([&] { cipher.Open(kPath, bad_nonce); }), Reason::kTampered);
  // The same bytes moved to another object's path.
  EXPECT_EQ(ReasonOf([&] { cipher.Open("dr-config/ns/ls/v1-secrets/app.other", stored); }),
            Reason::kTampered);
  // Truncated: a shorter object, and one without even a header and tag.
  EXPECT_EQ(ReasonOf([&] { cipher.Open(kPath, stored.substr(0, stored.size() - 1)); }), Reason::kTampered);
  EXPECT_EQ(ReasonOf([&] { cipher.Open(kPath, stored.substr(0, 30)); }), Reason::kMalformed);
  std::string future = stored;
  future[4] = '\x02';
  EXPECT_EQ(ReasonOf([&] { cipher.Open(kPath, future); }), Reason::kMalformed);
}

TEST(BucketCipherTest, WrongOrMissingKeyIsATypedErrorNeverPlaintext) {
  const std::string stored = BucketCipher(kKeyA).Seal(kPath, kOriginal);
  EXPECT_EQ(ReasonOf([&] { BucketCipher(kKeyB).Open(kPath, stored); }), Reason::kKeyMissing);
  EXPECT_EQ(ReasonOf([&] { OpenWithoutCipher(kPath, stored); }), Reason::kKeyMissing);
  // A different key forged under the right key id still fails authentication.
  std::string forged = BucketCipher(kKeyB).Seal(kPath, kOriginal);
  forged.replace(6, kEnvelopeKeyIdBytes, EnvelopeKeyId(kKeyA));
  EXPECT_EQ(ReasonOf([&] { BucketCipher(kKeyA).Open(kPath, forged); }), Reason::kTampered);
  try {
    BucketCipher(kKeyB).Open(kPath, stored);
  } catch (const BucketEncryptionError& e) {
    EXPECT_STREQ(e.reason_name(), "EncryptionKeyMissing");
    EXPECT_NE(std::string(e.what()).find(EnvelopeKeyIdHex(kKeyA)), std::string::npos) << e.what();
  }
}

TEST(BucketCipherTest, PlaintextWrittenBeforeEncryptionPassesThrough) {
  EXPECT_EQ(BucketCipher(kKeyA).Open(kPath, kOriginal), kOriginal);
  EXPECT_EQ(OpenWithoutCipher(kPath, kOriginal), kOriginal);
  EXPECT_EQ(BucketCipher(kKeyA).Open(kPath, ""), "");
}

TEST(BucketCipherTest, RotatedKeysStayReadableFromTheSecret) {
  const std::string old_object = BucketCipher(kKeyA).Seal(kPath, kOriginal);
  const auto rotated = BucketCipherFromSecret({{"key-2025", kKeyA}, {"key-2026", kKeyB}, {"note", "hello"}},
                                              "key-2026", "Secret ns/bucket-key");
  EXPECT_EQ(rotated->write_key_id(), EnvelopeKeyIdHex(kKeyB));
  EXPECT_EQ(rotated->Open(kPath, old_object), kOriginal);
  EXPECT_EQ(BucketCipher(kKeyB).Open(kPath, rotated->Seal(kPath, kOriginal)), kOriginal);
}

TEST(BucketCipherTest, SecretWithoutAUsableKeyIsRefused) {
  EXPECT_EQ(ReasonOf([] { BucketCipherFromSecret({{"other", kKeyA}}, "key", "Secret ns/k"); }),
            Reason::kKeyMissing);
  EXPECT_EQ(ReasonOf([] { BucketCipherFromSecret({{"key", "short"}}, "key", "Secret ns/k"); }),
            Reason::kBadKey);
  EXPECT_EQ(ReasonOf([] { BucketCipher(std::string(31, 'x')); }), Reason::kBadKey);
}

TEST(BucketEncryptionSpecTest, ReadsClientAndServerSideBlocks) {
  const json spec = json::parse(R"({"generic":{"name":"b","endpoint":"127.0.0.1:9000"},
    "encryption":{"clientSide":{"secretName":"bucket-key","keyName":"k2"},
                  "serverSide":{"algorithm":"aws:kms","kmsKeyId":"arn:aws:kms:eu-west-1:1:key/x"}}})");
  const BucketEncryptionSpec e = BucketEncryptionFromSpec(spec);
  EXPECT_TRUE(e.client_side());
  EXPECT_EQ(e.client_secret_name, "bucket-key");
  EXPECT_EQ(e.client_key_name, "k2");
  EXPECT_EQ(e.sse_algorithm, "aws:kms");
  EXPECT_EQ(e.sse_kms_key_id, "arn:aws:kms:eu-west-1:1:key/x");
  if (curl_version_info(CURLVERSION_NOW)->version_num >= 0x080a00) {
    EXPECT_EQ(S3ConfigFromBucketSpec(spec, {}).sse_kms_key_id, "arn:aws:kms:eu-west-1:1:key/x");
  } else {
    // libcurl < 8.10.0 mis-sorts the key id header in SigV4 (curl PR #14370).
    try {
      S3ConfigFromBucketSpec(spec, {});
      ADD_FAILURE() << "kmsKeyId accepted by a libcurl that cannot sign it";
    } catch (const S3ConfigError& error) {
      EXPECT_EQ(error.field(), "spec.encryption.serverSide.kmsKeyId");
    }
  }
  json without_key_id = spec;
  without_key_id["encryption"]["serverSide"].erase("kmsKeyId");
  const S3Config config = S3ConfigFromBucketSpec(without_key_id, {});
  EXPECT_EQ(config.server_side_encryption, "aws:kms");
  EXPECT_EQ(config.sse_kms_key_id, "");
  EXPECT_EQ(config.cipher, nullptr);  // the key Secret is read by the caller

  EXPECT_EQ(BucketEncryptionFromSpec(json::parse(R"({"encryption":{"clientSide":{"secretName":"s"}}})"))
                .client_key_name,
            "key");
  EXPECT_FALSE(BucketEncryptionFromSpec(json::parse(R"({"generic":{}})")).client_side());
  EXPECT_EQ(S3ConfigFromBucketSpec(json::parse(R"({"awsS3":{"name":"b","region":"eu-west-1"}})"), {})
                .server_side_encryption,
            "");
}

TEST(BucketEncryptionSpecTest, NamesTheBadField) {
  const auto field_of = [](const char* text) {
    try {
      BucketEncryptionFromSpec(json::parse(text));
    } catch (const S3ConfigError& e) {
      return e.field();
    }
    return std::string("no error");
  };
  EXPECT_EQ(field_of(R"({"encryption":{"clientSide":{}}})"), "spec.encryption.clientSide.secretName");
  EXPECT_EQ(field_of(R"({"encryption":{"serverSide":{"algorithm":"DES"}}})"),
            "spec.encryption.serverSide.algorithm");
  EXPECT_EQ(field_of(R"({"encryption":{"serverSide":{"algorithm":"AES256","kmsKeyId":"k"}}})"),
            "spec.encryption.serverSide.kmsKeyId");
  EXPECT_EQ(field_of(R"({"encryption":"yes"})"), "spec.encryption");
}

}  // namespace
}  // namespace ro::plugins

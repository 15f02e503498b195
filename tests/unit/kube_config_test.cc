#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "ro/common/base64.h"
#include "ro/kube/config.h"
#include "ro/kube/errors.h"

namespace ro::kube {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string Base64(std::string_view in) { return ro::common::EncodeBase64(in); }

struct KeyPair {
  std::string cert_pem;
  std::string key_pem;
};

// A fresh self-signed P-256 certificate (fast to generate, valid PEM for the checks).
KeyPair SelfSigned(const char* common_name) {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), X509_free);
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509_sign(cert.get(), key.get(), EVP_sha256());
  auto to_string = [](BIO* bio) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    std::string out(data, static_cast<size_t>(n));
    BIO_free(bio);
    return out;
  };
  BIO* cert_bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(cert_bio, cert.get());
  BIO* key_bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(key_bio, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  return {to_string(cert_bio), to_string(key_bio)};
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "ro-kubeconfig-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  void Write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name, std::ios::binary) << text;
  }

 private:
  fs::path path_;
};

// Expects LoadKubeconfig(yaml) to throw ConfigError with exactly this what().
void ExpectConfigError(const std::string& yaml, const std::string& expected) {
  try {
    LoadKubeconfig(yaml);
    ADD_FAILURE() << "no ConfigError; expected: " << expected;
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), expected);
  }
}

const char* const kMinimal = R"(
apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: c
  cluster:
    server: https://127.0.0.1:6443/
contexts:
- name: dev
  context: {cluster: c, user: admin}
- name: prod
  context: {cluster: c, user: admin, namespace: prod-ns}
users:
- name: admin
  user:
    token: secret-token
)";

TEST(KubeConfig, LoadsServerTokenAndDefaultNamespace) {
  const RestConfig config = LoadKubeconfig(kMinimal);
  EXPECT_EQ(config.server, "https://127.0.0.1:6443");  // trailing slash dropped
  EXPECT_EQ(config.bearer_token, "secret-token");
  EXPECT_EQ(config.default_namespace, "default");
  EXPECT_FALSE(config.insecure_skip_tls_verify);
  EXPECT_TRUE(config.ca_pem.empty());
}

TEST(KubeConfig, ExplicitContextWinsOverCurrentContextAndSetsNamespace) {
  const RestConfig config = LoadKubeconfig(kMinimal, "prod");
  EXPECT_EQ(config.default_namespace, "prod-ns");
}

TEST(KubeConfig, MissingCurrentContextIsNamed) {
  ExpectConfigError("clusters: []\n", "current-context: not set");
}

TEST(KubeConfig, UnknownCurrentContextIsNamed) {
  ExpectConfigError("current-context: x\ncontexts: []\n",
                    "current-context: context \"x\" not found");
  try {
    LoadKubeconfig(kMinimal, "nope");
    ADD_FAILURE();
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.field(), "context");
  }
}

TEST(KubeConfig, ContextNamingUnknownClusterOrUserIsNamed) {
  ExpectConfigError(R"(
current-context: dev
contexts: [{name: dev, context: {cluster: x, user: u}}]
)",
                    "contexts[dev].context.cluster: cluster \"x\" not found");
  ExpectConfigError(R"(
current-context: dev
clusters: [{name: c, cluster: {server: "https://h"}}]
contexts: [{name: dev, context: {cluster: c, user: ghost}}]
)",
                    "contexts[dev].context.user: user \"ghost\" not found");
}

TEST(KubeConfig, ClusterWithoutServerIsNamed) {
  ExpectConfigError(R"(
current-context: dev
clusters: [{name: c, cluster: {insecure-skip-tls-verify: true}}]
contexts: [{name: dev, context: {cluster: c}}]
)",
                    "clusters[c].cluster.server: required");
}

TEST(KubeConfig, ServerMustBeAnHttpUrl) {
  ExpectConfigError(R"(
current-context: dev
clusters: [{name: c, cluster: {server: "127.0.0.1:6443"}}]
contexts: [{name: dev, context: {cluster: c}}]
)",
                    "clusters[c].cluster.server: must start with https:// or http://");
}

// Found by fuzz/kubeconfig_fuzz.cc: "https://" passed the scheme check and lost its
// "//" with the trailing slashes, leaving the server "https:".
TEST(KubeConfig, ServerWithoutHostIsNamed) {
  for (const char* server : {"https://", "http:///", "https:////"}) {
    ExpectConfigError(R"(
current-context: dev
clusters: [{name: c, cluster: {server: ")" + std::string(server) + R"("}}]
contexts: [{name: dev, context: {cluster: c}}]
)",
                      "clusters[c].cluster.server: must name a host, as in https://host:port");
  }
}

TEST(KubeConfig, BadBase64IsNamed) {
  ExpectConfigError(R"(
current-context: dev
clusters: [{name: c, cluster: {server: "https://h"}}]
contexts: [{name: dev, context: {cluster: c, user: admin}}]
users: [{name: admin, user: {client-certificate-data: "not*base64!", client-key-data: "AAAA"}}]
)",
                    "users[admin].user.client-certificate-data: not valid base64");
  ExpectConfigError(R"(
current-context: dev
clusters: [{name: c, cluster: {server: "https://h", certificate-authority-data: "QUJD="}}]
contexts: [{name: dev, context: {cluster: c}}]
)",
                    "clusters[c].cluster.certificate-authority-data: not valid base64");
}

TEST(KubeConfig, CertificateAuthorityDataMustBePem) {
  ExpectConfigError(R"(
current-context: dev
clusters: [{name: c, cluster: {server: "https://h", certificate-authority-data: ")" +
                        Base64("hello") + R"("}}]
contexts: [{name: dev, context: {cluster: c}}]
)",
                    "clusters[c].cluster.certificate-authority-data: no PEM certificate found");
}

TEST(KubeConfig, DecodesPemDataFieldsIncludingWrappedBase64) {
  const KeyPair ca = SelfSigned("ca");
  const KeyPair client = SelfSigned("admin");
  std::string wrapped_ca = Base64(ca.cert_pem);
  wrapped_ca.insert(40, "\n  ");  // YAML folded / wrapped base64, as some tools write
  const std::string yaml = R"(
current-context: dev
clusters: [{name: c, cluster: {server: "https://h", certificate-authority-data: ")" +
                           wrapped_ca + R"("}}]
contexts: [{name: dev, context: {cluster: c, user: admin}}]
users:
- name: admin
  user:
    client-certificate-data: )" + Base64(client.cert_pem) + R"(
    client-key-data: )" + Base64(client.key_pem) + "\n";
  const RestConfig config = LoadKubeconfig(yaml);
  EXPECT_EQ(config.ca_pem, ca.cert_pem);
  EXPECT_EQ(config.client_cert_pem, client.cert_pem);
  EXPECT_EQ(config.client_key_pem, client.key_pem);
}

TEST(KubeConfig, ClientCertificateWithoutKeyIsNamed) {
  const KeyPair client = SelfSigned("admin");
  ExpectConfigError(R"(
current-context: dev
clusters: [{name: c, cluster: {server: "https://h"}}]
contexts: [{name: dev, context: {cluster: c, user: admin}}]
users: [{name: admin, user: {client-certificate-data: ")" +
                        Base64(client.cert_pem) + R"("}}]
)",
                    "users[admin].user.client-key-data: required with "
                    "users[admin].user.client-certificate-data");
}

TEST(KubeConfig, KeyOfAnotherCertificateIsRejected) {
  const KeyPair a = SelfSigned("a");
  const KeyPair b = SelfSigned("b");
  ExpectConfigError(R"(
current-context: dev
clusters: [{name: c, cluster: {server: "https://h"}}]
contexts: [{name: dev, context: {cluster: c, user: admin}}]
users: [{name: admin, user: {client-certificate-data: ")" +
                        Base64(a.cert_pem) + R"(", client-key-data: ")" + Base64(b.key_pem) +
                        R"("}}]
)",
                    "users[admin].user.client-key-data: private key does not match "
                    "users[admin].user.client-certificate-data");
}

TEST(KubeConfig, RelativePathsResolveAgainstTheKubeconfigDirectory) {
  TempDir dir;
  const KeyPair ca = SelfSigned("ca");
  const KeyPair client = SelfSigned("admin");
  fs::create_directories(dir.path() / "pki");
  dir.Write("pki/ca.crt", ca.cert_pem);
  dir.Write("pki/admin.crt", client.cert_pem);
  dir.Write("pki/admin.key", client.key_pem);
  dir.Write("token", "file-token\n");
  dir.Write("config", R"(
current-context: dev
clusters: [{name: c, cluster: {server: "https://h", certificate-authority: pki/ca.crt}}]
contexts: [{name: dev, context: {cluster: c, user: admin, namespace: team}}]
users:
- name: admin
  user: {client-certificate: pki/admin.crt, client-key: pki/admin.key, tokenFile: token}
)");
  const RestConfig config = LoadKubeconfigFile((dir.path() / "config").string());
  EXPECT_EQ(config.ca_pem, ca.cert_pem);
  EXPECT_EQ(config.client_cert_pem, client.cert_pem);
  EXPECT_EQ(config.client_key_pem, client.key_pem);
  EXPECT_EQ(config.bearer_token_file, (dir.path() / "token").string());
  EXPECT_EQ(config.default_namespace, "team");
}

TEST(KubeConfig, UnreadableCertificateFileIsNamed) {
  TempDir dir;
  dir.Write("config", R"(
current-context: dev
clusters: [{name: c, cluster: {server: "https://h", certificate-authority: missing.crt}}]
contexts: [{name: dev, context: {cluster: c}}]
)");
  try {
    LoadKubeconfigFile((dir.path() / "config").string());
    ADD_FAILURE();
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.field(), "clusters[c].cluster.certificate-authority");
    EXPECT_THAT(e.what(), HasSubstr("missing.crt"));
  }
}

TEST(KubeConfig, UnreadableTokenFileIsNamed) {
  ExpectConfigError(R"(
current-context: dev
clusters: [{name: c, cluster: {server: "https://h"}}]
contexts: [{name: dev, context: {cluster: c, user: u}}]
users: [{name: u, user: {tokenFile: /nonexistent/token}}]
)",
                    "users[u].user.tokenFile: cannot read \"/nonexistent/token\": No such "
                    "file or directory");
}

TEST(KubeConfig, MissingKubeconfigFileIsNamed) {
  try {
    LoadKubeconfigFile("/nonexistent/kubeconfig");
    ADD_FAILURE();
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.field(), "file");
  }
}

TEST(KubeConfig, InsecureSkipTlsVerifyIsABoolean) {
  const std::string base = R"(
current-context: dev
contexts: [{name: dev, context: {cluster: c}}]
clusters: [{name: c, cluster: {server: "https://h", insecure-skip-tls-verify: )";
  EXPECT_TRUE(LoadKubeconfig(base + "true}}]\n").insecure_skip_tls_verify);
  ExpectConfigError(base + "maybe}}]\n",
                    "clusters[c].cluster.insecure-skip-tls-verify: must be true or false");
}

TEST(KubeConfig, InvalidYamlAndWrongShapesAreNamed) {
  try {
    LoadKubeconfig("clusters: [unclosed\n");
    ADD_FAILURE();
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.field(), "kubeconfig");
  }
  ExpectConfigError("- a\n- b\n", "kubeconfig: must be a YAML mapping");
  ExpectConfigError("current-context: dev\ncontexts: {dev: x}\n", "contexts: must be a list");
  ExpectConfigError("current-context: dev\ncontexts: [{context: {}}]\n",
                    "contexts[0].name: required");
  ExpectConfigError(R"(
current-context: dev
clusters: [{name: c, cluster: {server: [a, b]}}]
contexts: [{name: dev, context: {cluster: c}}]
)",
                    "clusters[c].cluster.server: must be a string");
}

// client-go's loader refuses a file whose clusters, contexts or users repeat a name
// (clientcmd/api/v1 conversion: "duplicate name ... in list"), whether or not the
// selected context uses the repeated entry.
TEST(KubeConfig, DuplicateClusterContextOrUserNamesAreRefused) {
  ExpectConfigError(R"(
current-context: dev
clusters:
- {name: c, cluster: {server: "https://a"}}
- {name: c, cluster: {server: "https://b"}}
contexts: [{name: dev, context: {cluster: c}}]
)",
                    "clusters[1].name: duplicate name \"c\" (also clusters[0]): each of the "
                    "clusters must have its own name");
  ExpectConfigError(R"(
current-context: dev
clusters: [{name: c, cluster: {server: "https://a"}}]
contexts:
- {name: dev, context: {cluster: c}}
- {name: other, context: {cluster: c}}
- {name: dev, context: {cluster: c, namespace: x}}
)",
                    "contexts[2].name: duplicate name \"dev\" (also contexts[0]): each of the "
                    "contexts must have its own name");
  // The repeated user is not the one the context uses: still refused.
  try {
    LoadKubeconfig(R"(
current-context: dev
clusters: [{name: c, cluster: {server: "https://a"}}]
contexts: [{name: dev, context: {cluster: c, user: admin}}]
users:
- {name: admin, user: {token: t}}
- {name: ci, user: {token: t1}}
- {name: ci, user: {token: t2}}
)");
    ADD_FAILURE() << "no ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.field(), "users[2].name");
    EXPECT_THAT(e.what(), HasSubstr("duplicate name \"ci\""));
  }
  // The same name in different lists is fine (the usual kind-style file).
  const RestConfig config = LoadKubeconfig(R"(
current-context: x
clusters: [{name: x, cluster: {server: "https://a"}}]
contexts: [{name: x, context: {cluster: x, user: x}}]
users: [{name: x, user: {token: t}}]
)");
  EXPECT_EQ(config.bearer_token, "t");
}

TEST(KubeConfig, UnsupportedAuthIsRejectedNotIgnored) {
  ExpectConfigError(R"(
current-context: dev
clusters: [{name: c, cluster: {server: "https://h"}}]
contexts: [{name: dev, context: {cluster: c, user: u}}]
users: [{name: u, user: {exec: {command: aws}}}]
)",
                    "users[u].user.exec: not supported by this client (use token, tokenFile "
                    "or a client certificate)");
}

TEST(KubeConfig, TextFromASecretNeedsNoBaseDirectory) {
  const KeyPair ca = SelfSigned("ca");
  const std::string secret_value = R"(
apiVersion: v1
kind: Config
current-context: remote
clusters: [{name: r, cluster: {server: "https://remote:6443", certificate-authority-data: ")" +
                                   Base64(ca.cert_pem) + R"("}}]
contexts: [{name: remote, context: {cluster: r, user: sa, namespace: ops}}]
users: [{name: sa, user: {token: abc}}]
)";
  const RestConfig config = LoadKubeconfig(secret_value, "", "", KubeconfigOrigin::kSecret);
  EXPECT_EQ(config.server, "https://remote:6443");
  EXPECT_EQ(config.ca_pem, ca.cert_pem);
  EXPECT_EQ(config.bearer_token, "abc");
  EXPECT_EQ(config.default_namespace, "ops");
}

// A Secret's author must not make the operator read its own files (its service-account
// token, to a server the author controls; /dev/zero) by naming them: every path field is
// refused, named, whether or not the file exists.
TEST(KubeConfig, ASecretsKubeconfigNamesNoFileOfTheOperator) {
  TempDir dir;
  const KeyPair ca = SelfSigned("ca");
  const KeyPair client = SelfSigned("admin");
  dir.Write("ca.crt", ca.cert_pem);
  dir.Write("admin.crt", client.cert_pem);
  dir.Write("admin.key", client.key_pem);
  dir.Write("token", "operator-token\n");
  const std::string d = dir.path().string() + "/";
  const std::string base = "current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n";
  const struct {
    std::string cluster, user, field;
  } cases[] = {
      {"{server: \"https://evil\", certificate-authority: " + d + "ca.crt}", "{token: t}",
       "clusters[c].cluster.certificate-authority"},
      {"{server: \"https://evil\"}", "{tokenFile: " + d + "token}", "users[u].user.tokenFile"},
      {"{server: \"https://evil\"}", "{tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token}",
       "users[u].user.tokenFile"},
      {"{server: \"https://evil\"}", "{client-certificate: " + d + "admin.crt, client-key: " + d + "admin.key}",
       "users[u].user.client-certificate"},
      {"{server: \"https://evil\"}", "{client-key: /dev/zero, token: t}", "users[u].user.client-key"},
  };
  for (const auto& c : cases) {
    const std::string yaml = base + "clusters: [{name: c, cluster: " + c.cluster + "}]\nusers: [{name: u, user: " +
                             c.user + "}]\n";
    SCOPED_TRACE(yaml);
    try {
      LoadKubeconfig(yaml, "", "", KubeconfigOrigin::kSecret);
      ADD_FAILURE() << "accepted";
    } catch (const ConfigError& e) {
      EXPECT_EQ(std::string(e.what()).rfind(c.field + ": a file path is not accepted in a kubeconfig from a Secret", 0),
                0u)
          << e.what();
    }
  }
  // The operator's own file may name files (RelativePathsResolveAgainstTheKubeconfigDirectory).
  dir.Write("own", base + "clusters: [{name: c, cluster: {server: \"https://h\"}}]\n"
                          "users: [{name: u, user: {tokenFile: " + d + "token}}]\n");
  EXPECT_EQ(LoadKubeconfigFile((dir.path() / "own").string()).bearer_token_file, d + "token");
  // The runner's copy of a Secret in a component's file is held to the same rule.
  dir.Write("from-secret", base + "clusters: [{name: c, cluster: {server: \"https://h\"}}]\n"
                                  "users: [{name: u, user: {tokenFile: " + d + "token}}]\n");
  EXPECT_THROW(LoadKubeconfigFile((dir.path() / "from-secret").string(), "", KubeconfigOrigin::kSecret), ConfigError);
}

TEST(KubeConfig, InClusterReadsServiceAccountFiles) {
  TempDir dir;
  const KeyPair ca = SelfSigned("ca");
  dir.Write("token", "sa-token");
  dir.Write("ca.crt", ca.cert_pem);
  dir.Write("namespace", "operators\n");
  const RestConfig config = InClusterConfigFrom("10.96.0.1", "443", dir.path().string());
  EXPECT_EQ(config.server, "https://10.96.0.1:443");
  EXPECT_EQ(config.bearer_token_file, (dir.path() / "token").string());
  EXPECT_EQ(config.ca_pem, ca.cert_pem);
  EXPECT_EQ(config.default_namespace, "operators");
  EXPECT_EQ(InClusterConfigFrom("fd00::1", "443", dir.path().string()).server,
            "https://[fd00::1]:443");
}

TEST(KubeConfig, InClusterOutsideAPodFails) {
  TempDir dir;
  EXPECT_THROW(InClusterConfigFrom("", "443", dir.path().string()), ConfigError);
  try {
    InClusterConfigFrom("10.96.0.1", "443", dir.path().string());  // no token file
    ADD_FAILURE();
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.field(), (dir.path() / "token").string());
  }
}

}  // namespace
}  // namespace ro::kube

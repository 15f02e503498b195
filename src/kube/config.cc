#include "ro/kube/config.h"

#include <yaml-cpp/yaml.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <map>
#include <optional>
#include <sstream>
#include <utility>

#include "pem.h"
#include "ro/common/base64.h"
#include "ro/common/strings.h"
#include "ro/kube/errors.h"

namespace ro::kube {
namespace {

namespace fs = std::filesystem;

// Where every pod's service-account credentials are mounted
// (https://kubernetes.io/docs/tasks/run-application/access-api-from-pod/).
constexpr const char* kServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";

std::string ReadFileOrThrow(const std::string& path, const std::string& field) {
  std::string error;
  std::optional<std::string> text = common::ReadWholeFile(path, &error);
  if (!text) throw ConfigError(field, "cannot read \"" + path + "\": " + error);
  return std::move(*text);
}

// A view of one kubeconfig mapping that knows its own field path for error messages.
class Section {
 public:
  Section(YAML::Node node, std::string path) : node_(std::move(node)), path_(std::move(path)) {}

  const std::string& path() const { return path_; }
  std::string Field(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }
  bool Has(const char* key) const {
    const YAML::Node child = node_[key];
    return child.IsDefined() && !child.IsNull();
  }

  // A scalar as a string; "" when absent or null.
  std::string String(const char* key) const {
    const YAML::Node child = node_[key];
    if (!child.IsDefined() || child.IsNull()) return {};
    if (!child.IsScalar()) throw ConfigError(Field(key), "must be a string");
    return child.Scalar();
  }

  bool Bool(const char* key) const {
    const YAML::Node child = node_[key];
    if (!child.IsDefined() || child.IsNull()) return false;
    bool value = false;
    if (!child.IsScalar() || !YAML::convert<bool>::decode(child, value)) {
      throw ConfigError(Field(key), "must be true or false");
    }
    return value;
  }

  // The mapping under `key`; throws when absent or not a mapping.
  Section Map(const char* key) const {
    const YAML::Node child = node_[key];
    if (!child.IsDefined() || child.IsNull()) throw ConfigError(Field(key), "required");
    if (!child.IsMap()) throw ConfigError(Field(key), "must be a mapping");
    return Section(child, Field(key));
  }

  // Refuses a list (clusters, users, contexts) that names two entries alike, as
  // client-go's loader does for one file ("duplicate name ... in list"): which entry was
  // meant is unknowable. Field: the second entry's name, "clusters[1].name".
  void RequireUniqueNames(const char* list_key) const {
    const YAML::Node list = node_[list_key];
    if (!list.IsDefined() || list.IsNull()) return;
    if (!list.IsSequence()) throw ConfigError(list_key, "must be a list");
    std::map<std::string, size_t, std::less<>> first_index;
    for (size_t i = 0; i < list.size(); ++i) {
      const YAML::Node entry = list[i];
      const std::string index_path = std::string(list_key) + "[" + std::to_string(i) + "]";
      if (!entry.IsMap()) throw ConfigError(index_path, "must be a mapping");
      const YAML::Node entry_name = entry["name"];
      if (!entry_name.IsDefined() || !entry_name.IsScalar()) {
        throw ConfigError(index_path + ".name", "required");
      }
      const auto [it, inserted] = first_index.emplace(entry_name.Scalar(), i);
      if (!inserted) {
        throw ConfigError(index_path + ".name",
                          "duplicate name \"" + it->first + "\" (also " + list_key + "[" +
                              std::to_string(it->second) + "]): each of the " + list_key +
                              " must have its own name");
      }
    }
  }

  // The entry named `name` in the list `list_key` (clusters, users, contexts), as the
  // section under its `inner_key` (cluster, user, context). Names are unique (see
  // RequireUniqueNames). nullopt when there is no such entry.
  std::optional<Section> Named(const char* list_key, std::string_view name,
                               const char* inner_key) const {
    const YAML::Node list = node_[list_key];
    if (!list.IsDefined() || list.IsNull()) return std::nullopt;
    if (!list.IsSequence()) throw ConfigError(list_key, "must be a list");
    for (size_t i = 0; i < list.size(); ++i) {
      const YAML::Node entry = list[i];
      const std::string index_path = std::string(list_key) + "[" + std::to_string(i) + "]";
      if (!entry.IsMap()) throw ConfigError(index_path, "must be a mapping");
      const YAML::Node entry_name = entry["name"];
      if (!entry_name.IsDefined() || !entry_name.IsScalar()) {
        throw ConfigError(index_path + ".name", "required");
      }
      if (entry_name.Scalar() != name) continue;
      const std::string entry_path =
          std::string(list_key) + "[" + std::string(name) + "]." + inner_key;
      const YAML::Node inner = entry[inner_key];
      if (!inner.IsDefined() || inner.IsNull()) throw ConfigError(entry_path, "required");
      if (!inner.IsMap()) throw ConfigError(entry_path, "must be a mapping");
      return Section(inner, entry_path);
    }
    return std::nullopt;
  }

 private:
  YAML::Node node_;
  std::string path_;
};

std::string ResolvePath(const std::string& path, std::string_view base_dir) {
  if (base_dir.empty() || fs::path(path).is_absolute()) return path;
  return (fs::path(base_dir) / path).string();
}

// `<key>-data` (base64 in the kubeconfig) wins over `<key>` (a file path), as in kubectl.
std::string LoadPemField(const Section& section, const char* key, const char* data_key,
                         std::string_view base_dir) {
  if (section.Has(data_key)) {
    std::string decoded;
    try {
      decoded = common::DecodeBase64(section.String(data_key));
    } catch (const std::invalid_argument&) {
      throw ConfigError(section.Field(data_key), "not valid base64");
    }
    if (decoded.empty()) throw ConfigError(section.Field(data_key), "empty");
    return decoded;
  }
  if (section.Has(key)) {
    return ReadFileOrThrow(ResolvePath(section.String(key), base_dir), section.Field(key));
  }
  return {};
}

// A kSecret kubeconfig names no file of ours (KubeconfigOrigin).
void RefuseFilePaths(const Section& section, std::initializer_list<const char*> keys, KubeconfigOrigin origin) {
  if (origin != KubeconfigOrigin::kSecret) return;
  for (const char* key : keys) {
    if (section.Has(key)) {
      throw ConfigError(section.Field(key),
                        "a file path is not accepted in a kubeconfig from a Secret (it would name a file of the "
                        "operator's own); embed the content instead (certificate-authority-data, "
                        "client-certificate-data, client-key-data, token)");
    }
  }
}

void LoadCluster(const Section& cluster, std::string_view base_dir, KubeconfigOrigin origin, RestConfig* config) {
  RefuseFilePaths(cluster, {"certificate-authority"}, origin);
  std::string server = cluster.String("server");
  if (server.empty()) throw ConfigError(cluster.Field("server"), "required");
  if (server.rfind("https://", 0) != 0 && server.rfind("http://", 0) != 0) {
    throw ConfigError(cluster.Field("server"), "must start with https:// or http://");
  }
  // Trailing slashes go, the scheme's "//" stays: "https://" alone names no host.
  const std::size_t host_start = server.find("://") + 3;
  while (server.size() > host_start && server.back() == '/') server.pop_back();
  if (server.size() == host_start) {
    throw ConfigError(cluster.Field("server"), "must name a host, as in https://host:port");
  }
  config->server = std::move(server);
  for (const char* unsupported : {"proxy-url", "tls-server-name"}) {
    if (cluster.Has(unsupported)) {
      throw ConfigError(cluster.Field(unsupported), "not supported by this client");
    }
  }
  config->insecure_skip_tls_verify = cluster.Bool("insecure-skip-tls-verify");
  config->ca_pem = LoadPemField(cluster, "certificate-authority",
                                "certificate-authority-data", base_dir);
  if (!config->ca_pem.empty()) {
    internal::CheckCertificatesPem(config->ca_pem,
                                   cluster.Field(cluster.Has("certificate-authority-data")
                                                     ? "certificate-authority-data"
                                                     : "certificate-authority"));
  }
}

void LoadUser(const Section& user, std::string_view base_dir, KubeconfigOrigin origin, RestConfig* config) {
  RefuseFilePaths(user, {"client-certificate", "client-key", "tokenFile"}, origin);
  for (const char* unsupported : {"exec", "auth-provider", "username", "password"}) {
    if (user.Has(unsupported)) {
      throw ConfigError(user.Field(unsupported),
                        "not supported by this client (use token, tokenFile or a client "
                        "certificate)");
    }
  }
  config->client_cert_pem =
      LoadPemField(user, "client-certificate", "client-certificate-data", base_dir);
  config->client_key_pem = LoadPemField(user, "client-key", "client-key-data", base_dir);
  const std::string cert_field = user.Field(
      user.Has("client-certificate-data") ? "client-certificate-data" : "client-certificate");
  const std::string key_field =
      user.Field(user.Has("client-key-data") ? "client-key-data" : "client-key");
  if (config->client_cert_pem.empty() != config->client_key_pem.empty()) {
    if (config->client_cert_pem.empty()) {
      throw ConfigError(user.Field("client-certificate-data"), "required with " + key_field);
    }
    throw ConfigError(user.Field("client-key-data"), "required with " + cert_field);
  }
  if (!config->client_cert_pem.empty()) {
    internal::CheckClientKeyPair(config->client_cert_pem, config->client_key_pem, cert_field,
                                 key_field);
  }
  config->bearer_token = user.String("token");
  if (user.Has("tokenFile")) {
    config->bearer_token_file = ResolvePath(user.String("tokenFile"), base_dir);
    // Fail at load time rather than at the first request; the transport re-reads it.
    ReadFileOrThrow(config->bearer_token_file, user.Field("tokenFile"));
  }
}

}  // namespace

RestConfig LoadKubeconfig(std::string_view yaml_text, std::string_view context, std::string_view base_dir,
                          KubeconfigOrigin origin) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    throw ConfigError("kubeconfig", "invalid YAML: " + e.msg + " at line " +
                                        std::to_string(e.mark.line + 1));
  }
  if (!root.IsMap()) throw ConfigError("kubeconfig", "must be a YAML mapping");
  const Section top(root, "");
  for (const char* list_key : {"clusters", "contexts", "users"}) top.RequireUniqueNames(list_key);

  std::string context_name(context);
  const char* context_field = "context";
  if (context_name.empty()) {
    context_name = top.String("current-context");
    context_field = "current-context";
    if (context_name.empty()) throw ConfigError(context_field, "not set");
  }
  std::optional<Section> ctx = top.Named("contexts", context_name, "context");
  if (!ctx) {
    throw ConfigError(context_field, "context \"" + context_name + "\" not found");
  }

  RestConfig config;
  const std::string cluster_name = ctx->String("cluster");
  if (cluster_name.empty()) throw ConfigError(ctx->Field("cluster"), "required");
  std::optional<Section> cluster = top.Named("clusters", cluster_name, "cluster");
  if (!cluster) {
    throw ConfigError(ctx->Field("cluster"), "cluster \"" + cluster_name + "\" not found");
  }
  LoadCluster(*cluster, base_dir, origin, &config);

  // A context without a user is anonymous access.
  const std::string user_name = ctx->String("user");
  if (!user_name.empty()) {
    std::optional<Section> user = top.Named("users", user_name, "user");
    if (!user) throw ConfigError(ctx->Field("user"), "user \"" + user_name + "\" not found");
    LoadUser(*user, base_dir, origin, &config);
  }

  const std::string ns = ctx->String("namespace");
  if (!ns.empty()) config.default_namespace = ns;
  return config;
}

RestConfig LoadKubeconfigFile(const std::string& path, std::string_view context, KubeconfigOrigin origin) {
  const std::string text = ReadFileOrThrow(path, "file");
  std::error_code ec;
  fs::path absolute = fs::absolute(path, ec);
  const std::string base_dir = (ec ? fs::path(path) : absolute).parent_path().string();
  return LoadKubeconfig(text, context, base_dir, origin);
}

RestConfig InClusterConfigFrom(std::string_view host, std::string_view port,
                               const std::string& service_account_dir) {
  if (host.empty()) throw ConfigError("KUBERNETES_SERVICE_HOST", "not set: not in a pod");
  if (port.empty()) throw ConfigError("KUBERNETES_SERVICE_PORT", "not set: not in a pod");
  RestConfig config;
  const bool ipv6 = host.find(':') != std::string_view::npos;
  config.server = "https://";
  config.server.append(ipv6 ? "[" : "").append(host).append(ipv6 ? "]" : "");
  config.server.append(":").append(port);
  const fs::path dir(service_account_dir);
  config.bearer_token_file = (dir / "token").string();
  ReadFileOrThrow(config.bearer_token_file, config.bearer_token_file);
  const std::string ca_path = (dir / "ca.crt").string();
  config.ca_pem = ReadFileOrThrow(ca_path, ca_path);
  internal::CheckCertificatesPem(config.ca_pem, ca_path);
  std::string error;
  if (std::optional<std::string> ns = common::ReadWholeFile((dir / "namespace").string(), &error)) {
    while (!ns->empty() && (ns->back() == '\n' || ns->back() == ' ')) ns->pop_back();
    if (!ns->empty()) config.default_namespace = std::move(*ns);
  }
  return config;
}

RestConfig InClusterConfig() {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  return InClusterConfigFrom(host != nullptr ? host : "", port != nullptr ? port : "",
                             kServiceAccountDir);
}

RestConfig LoadDefaultConfig(const std::string& kubeconfig_path) {
  if (!kubeconfig_path.empty()) return LoadKubeconfigFile(kubeconfig_path);
  if (const char* env = std::getenv("KUBECONFIG"); env != nullptr && *env != '\0') {
    // A colon-separated list. client-go merges every file; this client reads the first.
    std::string_view list(env);
    std::string first(list.substr(0, list.find(':')));
    if (!first.empty()) return LoadKubeconfigFile(first);
  }
  if (const char* host = std::getenv("KUBERNETES_SERVICE_HOST"); host != nullptr && *host) {
    return InClusterConfig();
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    const fs::path path = fs::path(home) / ".kube" / "config";
    std::error_code ec;
    if (fs::exists(path, ec)) return LoadKubeconfigFile(path.string());
  }
  throw ConfigError("kubeconfig",
                    "no configuration found: pass a kubeconfig path, set KUBECONFIG, run in "
                    "a pod, or create ~/.kube/config");
}

}  // namespace ro::kube

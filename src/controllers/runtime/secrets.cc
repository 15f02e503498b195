#include "ro/runtime/secrets.h"

#include <memory>
#include <stdexcept>

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include "ro/common/base64.h"
#include "ro/kube/client.h"
#include "ro/kube/errors.h"
#include "ro/kube/store.h"

namespace ro::runtime {

using nlohmann::json;

const kube::GroupVersionResource& SecretsGvr() {
  static const kube::GroupVersionResource gvr{"", "v1", "secrets"};
  return gvr;
}

std::optional<json> GetSecret(kube::DynamicClient& client, std::string_view ns,
                              std::string_view name) {
  try {
    return client.Get(SecretsGvr(), ns, name);
  } catch (const kube::ApiError& e) {
    if (kube::IsNotFound(e)) return std::nullopt;
    throw;
  }
}

std::optional<std::string> SecretValue(const json& secret, std::string_view key) {
  const std::string k(key);
  const json& empty = json::object();
  const json& data = secret.contains("data") ? secret["data"] : empty;
  if (data.is_object() && data.contains(k) && data[k].is_string()) {
    try {
      return common::DecodeBase64(data[k].get<std::string>());
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument("data." + k + ": " + e.what());
    }
  }
  const json& string_data = secret.contains("stringData") ? secret["stringData"] : empty;
  if (string_data.is_object() && string_data.contains(k) && string_data[k].is_string()) {
    return string_data[k].get<std::string>();
  }
  return std::nullopt;
}

MapFunc MapSecretToReferrers(const kube::Store& referrers, SecretNamesFunc names) {
  return [&referrers, names = std::move(names)](const json& secret) {
    std::vector<Request> requests;
    const json& metadata = secret.at("metadata");
    const std::string ns = metadata.value("namespace", "");
    const std::string name = metadata.value("name", "");
    for (const kube::ObjectPtr& object : referrers.ListByNamespace(ns)) {
      for (const std::string& referenced : names(*object)) {
        if (!referenced.empty() && referenced == name) {
          requests.push_back(
              Request{kube::ObjectKey{ns, object->at("metadata").value("name", "")}});
          break;
        }
      }
    }
    return requests;
  };
}

}  // namespace ro::runtime

// Secrets as controllers use them: read one Secret when reconciling (never from a
// cluster-wide cache, see informer_cache.h), decode a key, and map a changed Secret to
// the objects of its namespace that reference it.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ro/runtime/controller.h"

namespace ro::kube {
class DynamicClient;
class Store;
}  // namespace ro::kube

namespace ro::runtime {

// core/v1 secrets.
const kube::GroupVersionResource& SecretsGvr();

// GET Secret `ns`/`name`; nullopt when it does not exist (404). Throws ApiError for
// other statuses (Forbidden: the controller's RBAC is wrong) / TransportError.
std::optional<nlohmann::json> GetSecret(kube::DynamicClient& client, std::string_view ns,
                                        std::string_view name);

// The decoded value of `key`: data[key] (base64, RFC 4648) or, for objects not yet
// normalised by the apiserver, stringData[key]. nullopt when the key is absent. Throws
// std::invalid_argument when data[key] is not valid base64.
std::optional<std::string> SecretValue(const nlohmann::json& secret, std::string_view key);

// The Secret names an object references (e.g. {spec.secretName}); empty entries ignored.
using SecretNamesFunc = std::function<std::vector<std::string>(const nlohmann::json& object)>;

// A MapFunc for Watches(Secrets): a Secret maps to every object in `referrers` (an
// informer store of the primary kind) of the Secret's namespace whose `names` include
// the Secret's name. `referrers` must outlive the returned function.
MapFunc MapSecretToReferrers(const kube::Store& referrers, SecretNamesFunc names);

}  // namespace ro::runtime

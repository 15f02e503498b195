// "Is the object in the cluster already what we want?" for controllers that write whole
// objects (the deployments runner): the apiserver adds defaults (a container's
// terminationMessagePath, a port's protocol, a Service's clusterIP) and rewrites
// resource quantities into canonical form ("0.5" -> "500m", "1024Mi" -> "1Gi"), so
// equality is the wrong test: the desired object must be *contained* in the actual one.
// Comparing this way writes only on real differences and never loops on defaults.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <optional>
#include <string_view>

namespace ro::kubesync::runner {

// A Kubernetes resource quantity (k8s.io/apimachinery resource.Quantity: a decimal
// number with an optional exponent or suffix n, u, m, k, M, G, T, P, E, Ki, Mi, Gi, Ti,
// Pi, Ei) as its value, e.g. "500m" -> 0.5, "1Gi" -> 1073741824. nullopt when `text` is
// not a quantity. Long double keeps every quantity a Pod spec uses exact enough to
// compare (18 significant digits).
std::optional<long double> ParseQuantity(std::string_view text);

// True when every field of `desired` has the same value in `actual`:
//   - objects: each key of desired is in actual with a contained value (extra keys of
//     actual, i.e. server defaults, are fine);
//   - arrays: same length, element i of desired contained in element i of actual;
//   - scalars: equal; numbers compare by value (1 == 1.0); under a "limits" or
//     "requests" object, two quantities compare by ParseQuantity value ("0.5" == "500m",
//     1 == "1").
bool IsSemanticSubset(const nlohmann::json& desired, const nlohmann::json& actual);

}  // namespace ro::kubesync::runner

#include "ro/common/pod_security.h"

#include <nlohmann/json.hpp>

namespace ro::common {

nlohmann::json RestrictedPodSecurityContext() {
  return {{"runAsNonRoot", true},
          {"runAsUser", kNonRootId},
          {"runAsGroup", kNonRootId},
          {"fsGroup", kNonRootId},
          {"seccompProfile", {{"type", "RuntimeDefault"}}}};
}

nlohmann::json RestrictedContainerSecurityContext() {
  return {{"allowPrivilegeEscalation", false},
          {"readOnlyRootFilesystem", true},
          {"runAsNonRoot", true},
          {"capabilities", {{"drop", nlohmann::json::array({"ALL"})}}},
          {"seccompProfile", {{"type", "RuntimeDefault"}}}};
}

}  // namespace ro::common

// The security settings of every pod the operator starts for its own code (the Kubesync
// components, a Synchronization's Job): Kubernetes' "restricted" Pod Security Standard
// (https://kubernetes.io/docs/concepts/security/pod-security-standards/) with the
// image's non-root user, as deploy/operator runs the controllers. The one copy of these
// settings.
#pragma once

#include <nlohmann/json_fwd.hpp>

namespace ro::common {

// The "nonroot" UID/GID of the operator image and of deploy/operator.
inline constexpr int kNonRootId = 65532;
// defaultMode of a Secret volume: readable by the pod's user and fsGroup, nobody else.
inline constexpr int kSecretVolumeMode = 0440;

// PodSecurityContext: runAsNonRoot, runAsUser/runAsGroup/fsGroup kNonRootId (fsGroup so
// that a Secret volume of mode 0440 is readable), seccomp RuntimeDefault.
nlohmann::json RestrictedPodSecurityContext();
// SecurityContext of a container: no privilege escalation, read-only root filesystem,
// runAsNonRoot, every capability dropped, seccomp RuntimeDefault.
nlohmann::json RestrictedContainerSecurityContext();

}  // namespace ro::common

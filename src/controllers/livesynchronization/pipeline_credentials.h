// The per-pipeline credentials of a LiveSynchronization (docs/security.md): kept in the
// Secret "<ls>-kubesync-credentials" of its namespace, owned by it (garbage-collected
// with it), generated when missing or unreadable and renewed before the certificates
// expire. Deleting the Secret rotates everything: the next reconcile generates a new set
// and the servers and components restart with it.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "ro/kube/clock.h"
#include "ro/kube/gvr.h"
#include "ro/kubesync/pipeline_security.h"

namespace ro::kube {
class DynamicClient;
}  // namespace ro::kube

namespace ro::controllers::livesync {

// "<ls>-kubesync-credentials".
std::string CredentialsSecretName(std::string_view ls_name);

// The Secret exists but another owner controls it (a user's object of the same name).
class CredentialsConflict : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thread-safe (stateless apart from the client and clock).
class PipelineCredentialStore {
 public:
  // Certificates are valid `validity` and renewed when less than `renew_before` is left.
  PipelineCredentialStore(kube::DynamicClient& client, kube::Clock& clock,
                          std::chrono::hours validity = std::chrono::hours{24 * 365},
                          std::chrono::hours renew_before = std::chrono::hours{24 * 30});

  // The credentials of `live_sync` (a LiveSynchronization object): read from its Secret,
  // or generated and stored (created, or replaced when unreadable or due for renewal).
  // Throws CredentialsConflict, kube::ApiError / TransportError (retry).
  kubesync::PipelineCredentials Ensure(const nlohmann::json& live_sync);

  // Read only: nullopt when the Secret is absent or unreadable. Throws kube errors other
  // than NotFound.
  std::optional<kubesync::PipelineCredentials> Get(const kube::ObjectKey& live_sync);

 private:
  kube::DynamicClient& client_;
  kube::Clock& clock_;
  const std::chrono::hours validity_;
  const std::chrono::hours renew_before_;
};

}  // namespace ro::controllers::livesync

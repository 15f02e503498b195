#include "livesynchronization/pipeline_credentials.h"

#include <map>
#include <utility>

#include <nlohmann/json.hpp>

#include "ro/common/base64.h"
#include "ro/common/certificates.h"
#include "ro/common/log.h"
#include "ro/common/object_meta.h"
#include "ro/kube/client.h"
#include "ro/kube/errors.h"
#include "ro/kubesync/runner/pipeline_plan.h"
#include "ro/plugins/kubernetes/control_metadata.h"
#include "ro/runtime/secrets.h"

namespace ro::controllers::livesync {

namespace {

using nlohmann::json;

std::optional<kubesync::PipelineCredentials> Parse(const json& secret, std::string* problem) {
  std::map<std::string, std::string> data;
  try {
    for (const auto& [key, value] : common::Member(secret, "data").items()) {
      if (value.is_string()) data[key] = common::DecodeBase64(value.get<std::string>());
    }
    return kubesync::CredentialsFromSecretData(data);
  } catch (const std::exception& e) {
    *problem = e.what();
    return std::nullopt;
  }
}

bool ControlledBy(const json& object, const std::string& ls_name) {
  for (const json& ref : common::Member(common::Member(object, "metadata"), "ownerReferences")) {
    if (ref.value("controller", false) && ref.value("kind", "") == "LiveSynchronization" &&
        ref.value("name", "") == ls_name) {
      return true;
    }
  }
  return false;
}

}  // namespace

std::string CredentialsSecretName(std::string_view ls_name) { return std::string(ls_name) + "-kubesync-credentials"; }

PipelineCredentialStore::PipelineCredentialStore(kube::DynamicClient& client, kube::Clock& clock,
                                                 std::chrono::hours validity, std::chrono::hours renew_before)
    : client_(client), clock_(clock), validity_(validity), renew_before_(renew_before) {}

kubesync::PipelineCredentials PipelineCredentialStore::Ensure(const json& live_sync) {
  const json& metadata = live_sync.at("metadata");
  const std::string ns = common::StringMember(metadata, "namespace");
  const std::string ls_name = common::StringMember(metadata, "name");
  const std::string name = CredentialsSecretName(ls_name);
  const log::Logger log(json{{"liveSynchronization", ns + "/" + ls_name}});
  std::optional<json> stored = runtime::GetSecret(client_, ns, name);
  std::string why = "none yet";
  if (stored) {
    if (!ControlledBy(*stored, ls_name)) {
      throw CredentialsConflict("Secret " + ns + "/" + name +
                                " exists and is not controlled by this LiveSynchronization; delete or rename it");
    }
    std::string problem;
    if (std::optional<kubesync::PipelineCredentials> current = Parse(*stored, &problem)) {
      if (!common::CertificateNamesHost(current->nats_cert_pem, kubesync::runner::NatsMemberHost({ns, ls_name}, 0))) {
        // Issued before NATS clusters: its members could not verify each other's routes.
        why = "the NATS certificate does not name the NATS cluster members";
      } else if (current->not_after - clock_.Now() > renew_before_) {
        return *current;
      } else {
        why = "the certificates expire soon";
      }
    } else {
      why = "unreadable (" + problem + ")";
    }
  }
  kubesync::PipelineCredentials fresh =
      kubesync::GenerateCredentials(kubesync::runner::ServerDnsNames({ns, ls_name}, kubesync::runner::PipelinePart::kNats),
                                    kubesync::runner::ServerDnsNames({ns, ls_name}, kubesync::runner::PipelinePart::kRedis),
                                    clock_.Now(), validity_);
  json string_data = json::object();
  for (const auto& [key, value] : kubesync::CredentialsSecretData(fresh)) string_data[key] = value;
  json secret = {{"apiVersion", "v1"},
                 {"kind", "Secret"},
                 {"metadata",
                  {{"name", name},
                   {"namespace", ns},
                   {"labels",
                    {{"app.kubernetes.io/name", "kubesync"},
                     {"app.kubernetes.io/instance", plugins::kubernetes::ManagedById(ns, ls_name)},
                     {"app.kubernetes.io/component", "credentials"},
                     {"app.kubernetes.io/part-of", "resiliency-operator"},
                     {"app.kubernetes.io/managed-by", "livesynchronization-controller"}}},
                   {"ownerReferences",
                    json::array({common::ControllerReference("automation.astronetes.io/v1alpha1", "LiveSynchronization",
                                                             ls_name, common::StringMember(metadata, "uid"))})}}},
                 {"type", "Opaque"},
                 {"stringData", std::move(string_data)}};
  if (stored) {
    secret["metadata"]["resourceVersion"] = stored->at("metadata").at("resourceVersion");
    secret["data"] = json::object();  // stringData replaces every key
    client_.Update(runtime::SecretsGvr(), ns, secret);
  } else {
    client_.Create(runtime::SecretsGvr(), ns, secret);
  }
  // Names the Secret and why; never a value.
  log.Info("pipeline credentials generated", {{"secret", name}, {"reason", why}});
  return fresh;
}

std::optional<kubesync::PipelineCredentials> PipelineCredentialStore::Get(const kube::ObjectKey& live_sync) {
  const std::optional<json> stored = runtime::GetSecret(client_, live_sync.ns, CredentialsSecretName(live_sync.name));
  if (!stored) return std::nullopt;
  std::string problem;
  return Parse(*stored, &problem);
}

}  // namespace ro::controllers::livesync

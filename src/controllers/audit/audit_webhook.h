// The audit admission webhook (manual 2.3; docs/audit.md): a mutating webhook the
// apiserver calls for every create and update of the operator's kinds. It stamps
//   audit.astronetes.io/last-update-time       RFC 3339, nanoseconds, UTC
//   audit.astronetes.io/last-update-user-uid   the request's userInfo.uid
//   audit.astronetes.io/last-update-username   the request's userInfo.username
// when a create, or an update that changes .spec (for kinds without one: any top-level
// field but metadata and status), labels or annotations, is admitted; status writes
// (the /status subresource is not registered) and the operator's own writes are not
// recorded. The annotations are the webhook's alone: an update that drops or edits them
// gets the previous values back.
//
// The binary also keeps its serving certificate (CertificateReconciler): a CA and a
// certificate for the webhook Service in a Secret, renewed when a third of the validity
// is left, the CA bundle patched into the MutatingWebhookConfiguration (the previous CA
// kept in the bundle until it expires, so a rotation never breaks a call); or, with
// --cert-dir, certificates from files another tool (cert-manager) keeps.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ro::runtime {
class FlagSet;
class Manager;
}  // namespace ro::runtime

namespace ro::controllers {

struct AuditPolicy {
  // Usernames whose writes are never recorded: the operator's own service accounts
  // ("system:serviceaccount:<namespace>:<name>").
  std::vector<std::string> ignored_usernames;
};

// True when going from `old_object` to `object` changes what the audit records: .spec
// (for kinds without one: every top-level member but apiVersion, kind, metadata and
// status), metadata.labels, or metadata.annotations other than the audit ones.
bool AuditedChange(const nlohmann::json& old_object, const nlohmann::json& object);

// The answer (admission.k8s.io/v1 AdmissionReview with `response`) to `review`: always
// allowed; with a JSON Patch (RFC 6902, base64) that sets the three annotations at `now`
// for a recorded CREATE or UPDATE, or puts back the previous values of audit annotations
// an unrecorded UPDATE removed or changed; no patch otherwise (DELETE, CONNECT, nothing
// to change). Throws std::invalid_argument when `review` has no request.uid or its
// object is not a JSON object.
nlohmann::json ReviewAudit(const nlohmann::json& review, std::chrono::system_clock::time_point now,
                           const AuditPolicy& policy);

struct AuditWebhookOptions {
  // Where the HTTPS server listens (the Service's targetPort).
  std::string bind_address = ":9443";
  // The webhook Service and the namespace of the Service and the Secret (the pod's: the
  // binary's main() takes $POD_NAMESPACE as the default).
  std::string service_name = "resiliency-operator-audit-webhook";
  std::string service_namespace = "resiliency-operator";
  // The Secret (type kubernetes.io/tls, plus ca.crt) holding the serving certificate.
  std::string secret_name = "resiliency-operator-audit-webhook-tls";
  // The MutatingWebhookConfiguration whose webhooks get the CA bundle.
  std::string configuration_name = "resiliency-operator-audit";
  // Validity of each issued certificate; renewed with a third of it left.
  std::chrono::milliseconds certificate_validity{std::chrono::hours{24 * 365}};
  // Non-empty: tls.crt and tls.key are read from this directory (cert-manager), re-read
  // every minute; no Secret is written and the CA bundle is left to whoever issued them.
  std::string cert_dir;
  // Comma-separated AuditPolicy::ignored_usernames.
  std::string ignored_usernames;
};

// Registers --webhook-bind-address, --webhook-service-name, --webhook-namespace,
// --webhook-secret-name, --webhook-configuration-name, --certificate-validity,
// --cert-dir and --ignore-usernames.
void AddAuditWebhookFlags(runtime::FlagSet& flags, AuditWebhookOptions* options);

// The certificate controller (For MutatingWebhookConfigurations, acting on the one
// named in `options`) and the HTTPS server on /mutate, started once a certificate is
// loaded. Throws std::invalid_argument for invalid options.
void SetupAuditWebhook(runtime::Manager& manager, const AuditWebhookOptions& options);

}  // namespace ro::controllers

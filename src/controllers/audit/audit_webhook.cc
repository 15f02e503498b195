#include "audit/audit_webhook.h"

#include <algorithm>
#include <array>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "ro/common/audit_annotations.h"
#include "ro/common/base64.h"
#include "ro/common/certificates.h"
#include "ro/common/http_server.h"
#include "ro/common/log.h"
#include "ro/common/object_meta.h"
#include "ro/common/strings.h"
#include "ro/common/time.h"
#include "ro/kube/client.h"
#include "ro/kube/errors.h"
#include "ro/runtime/controller.h"
#include "ro/runtime/manager.h"
#include "ro/runtime/options.h"
#include "ro/runtime/secrets.h"

namespace ro::controllers {
namespace {

using nlohmann::json;
using Clock = std::chrono::system_clock;

constexpr std::array<std::string_view, 3> kAuditKeys = {common::kAuditLastUpdateTimeAnnotation,
                                                        common::kAuditLastUpdateUserUidAnnotation,
                                                        common::kAuditLastUpdateUsernameAnnotation};

json WithoutAuditAnnotations(const json& annotations) {
  json out = json::object();
  for (const auto& [key, value] : annotations.items()) {
    if (!std::string_view(key).starts_with(common::kAuditAnnotationPrefix)) out[key] = value;
  }
  return out;
}

// The JSON Patch that makes the audit annotations of `object` exactly `want` (a key
// absent from `want` is removed when present).
json PatchAuditAnnotations(const json& object, const std::map<std::string_view, std::string>& want) {
  json patch = json::array();
  const json& metadata = common::Metadata(object);
  const auto annotations = metadata.find("annotations");
  if (annotations == metadata.end() || !annotations->is_object()) {
    if (want.empty()) return patch;
    json all = json::object();
    for (const auto& [key, value] : want) all[std::string(key)] = value;
    patch.push_back({{"op", "add"}, {"path", "/metadata/annotations"}, {"value", std::move(all)}});
    return patch;
  }
  for (std::string_view key : kAuditKeys) {
    // RFC 6901 escaping ("/" -> "~1") by nlohmann's JSON pointer.
    const std::string path = (json::json_pointer("/metadata/annotations") / std::string(key)).to_string();
    const auto current = annotations->find(std::string(key));
    const auto wanted = want.find(key);
    if (wanted != want.end()) {
      if (current == annotations->end() || !current->is_string() || current->get_ref<const std::string&>() != wanted->second) {
        patch.push_back({{"op", "add"}, {"path", path}, {"value", wanted->second}});
      }
    } else if (current != annotations->end()) {
      patch.push_back({{"op", "remove"}, {"path", path}});
    }
  }
  return patch;
}

std::vector<std::string> SplitUsernames(std::string_view text) {
  std::vector<std::string> out;
  for (std::string_view item : common::Split(text, ',')) {
    if (const std::string_view name = common::TrimSpace(item); !name.empty()) out.emplace_back(name);
  }
  return out;
}

const kube::GroupVersionResource& MutatingWebhookConfigurationsGvr() {
  static const kube::GroupVersionResource gvr{"admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations"};
  return gvr;
}

// Keeps the serving certificate and serves /mutate (see the header).
class CertificateReconciler final : public runtime::Reconciler {
 public:
  CertificateReconciler(kube::DynamicClient& client, kube::Clock& clock, AuditWebhookOptions options)
      : client_(client), clock_(clock), options_(std::move(options)) {
    policy_.ignored_usernames = SplitUsernames(options_.ignored_usernames);
  }

  runtime::Result Reconcile(const runtime::Request& request, std::stop_token) override {
    if (request.key.name != options_.configuration_name) return {};
    const ro::log::Logger logger(json{{"controller", "audit-webhook-certificate"}});
    if (!options_.cert_dir.empty()) return ReconcileFromFiles(logger);

    const std::optional<json> configuration =
        client_.GetIfExists(MutatingWebhookConfigurationsGvr(), "", options_.configuration_name);
    if (!configuration) return {};  // deleted (the operator's uninstall): nothing to serve for
    const Clock::time_point now = clock_.Now();
    std::optional<json> secret = runtime::GetSecret(client_, options_.service_namespace, options_.secret_name);
    const auto value = [&](std::string_view key) {
      return secret ? runtime::SecretValue(*secret, key) : std::nullopt;
    };
    std::optional<std::string> bundle = value("ca.crt");
    std::optional<std::string> ca_key = value("ca.key");
    std::optional<std::string> cert = value("tls.crt");
    std::optional<std::string> key = value("tls.key");
    const auto leaf_validity = std::chrono::duration_cast<std::chrono::seconds>(options_.certificate_validity);
    bool changed = false;

    // The CA lives ten times longer than the serving certificates it signs. With a third
    // of its life left a new one goes first into the bundle, and only the next serving
    // certificate is signed by it: by then the apiserver trusts it, and the previous CA
    // stays in the bundle until it expires, so no rotation ever fails a call.
    std::vector<std::string> cas = bundle ? common::CertificatesValidAt(*bundle, now) : std::vector<std::string>{};
    if (cas.empty() || !ca_key || common::CertificateDueForRenewal(cas.front(), now)) {
      common::IssuedCertificates issued =
          common::IssueServerCertificates("resiliency-operator audit webhook CA", {}, now, 10 * leaf_validity);
      cas.insert(cas.begin(), issued.ca_pem);
      ca_key = std::move(issued.ca_key_pem);
      changed = true;
    }
    std::string new_bundle;
    for (const std::string& ca : cas) new_bundle += ca;
    if (!cert || !key || common::CertificateDueForRenewal(*cert, now)) {
      const std::string& ns = options_.service_namespace;
      const std::string& svc = options_.service_name;
      common::IssuedServer issued = common::IssueServerCertificate(
          cas.front(), *ca_key, {svc + "." + ns + ".svc", svc, svc + "." + ns, svc + "." + ns + ".svc.cluster.local"},
          now, leaf_validity);
      cert = std::move(issued.cert_pem);
      key = std::move(issued.key_pem);
      changed = true;
    }
    if (changed || new_bundle != bundle) {
      // Owned by the configuration: deleting the operator's manifest deletes the Secret
      // too (garbage collection), so an uninstall leaves no certificate behind.
      const json owner = json::array({{{"apiVersion", "admissionregistration.k8s.io/v1"},
                                       {"kind", "MutatingWebhookConfiguration"},
                                       {"name", options_.configuration_name},
                                       {"uid", common::Uid(*configuration)}}});
      json data = {{"tls.crt", common::EncodeBase64(*cert)},
                   {"tls.key", common::EncodeBase64(*key)},
                   {"ca.crt", common::EncodeBase64(new_bundle)},
                   {"ca.key", common::EncodeBase64(*ca_key)}};
      try {
        if (secret) {
          (*secret)["data"] = std::move(data);
          (*secret)["metadata"]["ownerReferences"] = owner;
          client_.Update(runtime::SecretsGvr(), options_.service_namespace, *secret);
        } else {
          client_.Create(runtime::SecretsGvr(), options_.service_namespace,
                         {{"apiVersion", "v1"},
                          {"kind", "Secret"},
                          {"type", "kubernetes.io/tls"},
                          {"metadata",
                           {{"name", options_.secret_name},
                            {"namespace", options_.service_namespace},
                            {"ownerReferences", owner},
                            {"labels", {{"app.kubernetes.io/name", "resiliency-operator"},
                                        {"app.kubernetes.io/component", "audit-webhook"}}}}},
                          {"data", std::move(data)}});
        }
      } catch (const std::exception& e) {
        // Another replica wrote it first: read what it wrote.
        if (kube::IsConflict(e) || kube::IsAlreadyExists(e)) return runtime::Result::Requeue();
        throw;
      }
      logger.Info("serving certificate issued",
                  {{"secret", options_.service_namespace + "/" + options_.secret_name},
                   {"notAfter", common::FormatRfc3339(common::CertificateNotAfter(*cert))},
                   {"caCertificates", cas.size()}});
      bundle = std::move(new_bundle);
    }
    Serve(*cert, *key, logger);
    PatchCaBundle(*configuration, *bundle, logger);
    // Look again when the certificate is due (at least every hour: a Secret deleted by
    // hand comes back then, or at once through an update of the configuration).
    const Clock::time_point not_after = common::CertificateNotAfter(*cert);
    const auto window = std::chrono::duration_cast<Clock::duration>(
        options_.certificate_validity + std::min<std::chrono::milliseconds>(options_.certificate_validity, std::chrono::hours{1}));
    const auto due_in = std::chrono::duration_cast<std::chrono::milliseconds>(not_after - window / 3 - now);
    return runtime::Result::RequeueAfter(std::clamp<std::chrono::milliseconds>(
        due_in + std::chrono::milliseconds{500}, std::chrono::milliseconds{500}, std::chrono::hours{1}));
  }

 private:
  runtime::Result ReconcileFromFiles(const ro::log::Logger& logger) {
    const std::filesystem::path dir(options_.cert_dir);
    const std::optional<std::string> cert = common::ReadWholeFile((dir / "tls.crt").string());
    const std::optional<std::string> key = common::ReadWholeFile((dir / "tls.key").string());
    if (!cert || !key) {
      throw std::runtime_error("no tls.crt and tls.key in " + options_.cert_dir + " (yet)");
    }
    Serve(*cert, *key, logger);
    return runtime::Result::RequeueAfter(std::chrono::minutes{1});
  }

  // Starts the server with this certificate, or hands it to the running one.
  void Serve(const std::string& cert, const std::string& key, const ro::log::Logger& logger) {
    std::lock_guard lock(mu_);
    if (server_) {
      if (cert != serving_cert_) {
        server_->SetCertificate(cert, key);
        logger.Info("serving certificate loaded", {{"notAfter", common::FormatRfc3339(common::CertificateNotAfter(cert))}});
      }
      serving_cert_ = cert;
      return;
    }
    common::HttpServerOptions server_options;
    server_options.address = options_.bind_address;
    server_options.threads = 8;
    server_options.max_body_bytes = 8 << 20;  // an AdmissionReview holds two objects of up to 3 MiB
    server_options.tls_cert_pem = cert;
    server_options.tls_key_pem = key;
    server_ = std::make_unique<common::HttpServer>(server_options);
    server_->Handle("/mutate", [this](const common::HttpRequest& request) { return Mutate(request); });
    serving_cert_ = cert;
    logger.Info("audit webhook serving", {{"address", options_.bind_address}, {"port", server_->port()}});
  }

  common::HttpResponse Mutate(const common::HttpRequest& request) const {
    if (request.method != "POST") return {405, "text/plain; charset=utf-8", "POST an AdmissionReview\n"};
    json review;
    try {
      review = json::parse(request.body);
      json answer = ReviewAudit(review, clock_.Now(), policy_);
      return {200, "application/json", answer.dump()};
    } catch (const std::exception& e) {
      ro::log::Logger().Warn("invalid admission review", {{"error", e.what()}});
      return {400, "text/plain; charset=utf-8", std::string("invalid AdmissionReview: ") + e.what() + "\n"};
    }
  }

  void PatchCaBundle(const json& configuration, const std::string& bundle, const ro::log::Logger& logger) {
    const std::string encoded = common::EncodeBase64(bundle);
    // The resourceVersion test makes a concurrent edit fail the patch (409: retried).
    json patch = json::array(
        {{{"op", "test"}, {"path", "/metadata/resourceVersion"}, {"value", common::ResourceVersion(configuration)}}});
    const json& webhooks = common::Member(configuration, "webhooks");
    if (!webhooks.is_array()) return;
    for (std::size_t i = 0; i < webhooks.size(); ++i) {
      const json& client_config = common::Member(webhooks[i], "clientConfig");
      if (common::StringMember(client_config, "caBundle") == encoded) continue;
      patch.push_back({{"op", "add"}, {"path", "/webhooks/" + std::to_string(i) + "/clientConfig/caBundle"}, {"value", encoded}});
    }
    if (patch.size() == 1) return;
    client_.Patch(MutatingWebhookConfigurationsGvr(), "", options_.configuration_name, kube::PatchType::kJsonPatch,
                  patch.dump());
    logger.Info("CA bundle patched", {{"mutatingWebhookConfiguration", options_.configuration_name},
                                       {"webhooks", patch.size() - 1}});
  }

  kube::DynamicClient& client_;
  kube::Clock& clock_;
  const AuditWebhookOptions options_;
  AuditPolicy policy_;  // constant after construction

  std::mutex mu_;                              // guards the two below
  std::unique_ptr<common::HttpServer> server_;  // started by the first reconcile
  std::string serving_cert_;
};

}  // namespace

bool AuditedChange(const json& old_object, const json& object) {
  if (common::Labels(old_object) != common::Labels(object)) return true;
  if (WithoutAuditAnnotations(common::Annotations(old_object)) != WithoutAuditAnnotations(common::Annotations(object))) {
    return true;
  }
  if (object.contains("spec") || old_object.contains("spec")) {
    return common::Member(old_object, "spec") != common::Member(object, "spec");
  }
  static const std::set<std::string, std::less<>> kNotContent = {"apiVersion", "kind", "metadata", "status"};
  std::set<std::string, std::less<>> keys;
  for (const json* side : {&old_object, &object}) {
    if (!side->is_object()) continue;
    for (const auto& [key, value] : side->items()) {
      if (kNotContent.count(key) == 0) keys.insert(key);
    }
  }
  for (const std::string& key : keys) {
    if (common::Member(old_object, key) != common::Member(object, key)) return true;
  }
  return false;
}

json ReviewAudit(const json& review, Clock::time_point now, const AuditPolicy& policy) {
  const json& request = common::Member(review, "request");
  const std::string& uid = common::StringMember(request, "uid");
  if (uid.empty()) throw std::invalid_argument("the AdmissionReview has no request.uid");
  json response = {{"uid", uid}, {"allowed", true}};
  const std::string& operation = common::StringMember(request, "operation");
  if (operation == "CREATE" || operation == "UPDATE") {
    const json& object = common::Member(request, "object");
    if (!object.is_object()) throw std::invalid_argument("request.object is not a JSON object");
    const json& old_object = common::Member(request, "oldObject");
    const json& user = common::Member(request, "userInfo");
    const std::string& username = common::StringMember(user, "username");
    const bool ignored = std::find(policy.ignored_usernames.begin(), policy.ignored_usernames.end(), username) !=
                         policy.ignored_usernames.end();
    std::optional<std::map<std::string_view, std::string>> want;
    if (!ignored && (operation == "CREATE" || AuditedChange(old_object, object))) {
      want = std::map<std::string_view, std::string>{
          {common::kAuditLastUpdateTimeAnnotation, common::FormatRfc3339Nano(now)},
          {common::kAuditLastUpdateUserUidAnnotation, common::StringMember(user, "uid")},
          {common::kAuditLastUpdateUsernameAnnotation, username}};
    } else if (operation == "UPDATE") {
      // Not recorded: the previous record stays exactly as it was.
      want.emplace();
      const json& previous = common::Annotations(old_object);
      for (std::string_view key : kAuditKeys) {
        const std::string& value = common::StringMember(previous, key);
        if (previous.contains(std::string(key))) (*want)[key] = value;
      }
    }
    if (want) {
      const json patch = PatchAuditAnnotations(object, *want);
      if (!patch.empty()) {
        response["patchType"] = "JSONPatch";
        response["patch"] = common::EncodeBase64(patch.dump());
      }
    }
  }
  return {{"apiVersion", "admission.k8s.io/v1"}, {"kind", "AdmissionReview"}, {"response", std::move(response)}};
}

void AddAuditWebhookFlags(runtime::FlagSet& flags, AuditWebhookOptions* options) {
  flags.AddString("--webhook-bind-address", &options->bind_address, "Where the HTTPS admission server listens.");
  flags.AddString("--webhook-service-name", &options->service_name,
                  "The webhook's Service (the name in the serving certificate).");
  flags.AddString("--webhook-namespace", &options->service_namespace,
                  "Namespace of the webhook's Service and certificate Secret (the pod's).");
  flags.AddString("--webhook-secret-name", &options->secret_name, "Secret holding the serving certificate.");
  flags.AddString("--webhook-configuration-name", &options->configuration_name,
                  "MutatingWebhookConfiguration whose webhooks get the CA bundle.");
  flags.AddDuration("--certificate-validity", &options->certificate_validity,
                    "Validity of each serving certificate issued; renewed with a third left.");
  flags.AddString("--cert-dir", &options->cert_dir,
                  "Read tls.crt and tls.key from this directory (cert-manager) instead of issuing them.");
  flags.AddString("--ignore-usernames", &options->ignored_usernames,
                  "Comma-separated usernames whose writes are not recorded (the operator's service accounts).");
}

void SetupAuditWebhook(runtime::Manager& manager, const AuditWebhookOptions& options) {
  if (options.certificate_validity < std::chrono::seconds{3}) {
    throw std::invalid_argument("--certificate-validity must be at least 3s");
  }
  if (options.configuration_name.empty() || (options.cert_dir.empty() && options.secret_name.empty())) {
    throw std::invalid_argument("--webhook-configuration-name and --webhook-secret-name must not be empty");
  }
  runtime::ObjectType type{MutatingWebhookConfigurationsGvr(), "MutatingWebhookConfiguration"};
  manager
      .NewController("audit-webhook-certificate",
                     std::make_unique<CertificateReconciler>(manager.client(), manager.clock(), options))
      .For(type);
}

}  // namespace ro::controllers

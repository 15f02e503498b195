// audit-webhook: the mutating admission webhook that writes the audit annotations of
// manual 2.3 on the operator's objects, and keeps its own serving certificate
// (docs/audit.md).
#include <cstdlib>

#include "audit/audit_webhook.h"
#include "ro/runtime/manager.h"

int main(int argc, char** argv) {
  ro::controllers::AuditWebhookOptions options;
  // The pod's namespace (the Deployment's downward API) is the default of --webhook-namespace.
  if (const char* ns = std::getenv("POD_NAMESPACE"); ns != nullptr && *ns != '\0') options.service_namespace = ns;
  return ro::runtime::RunControllerMain(
      argc, argv,
      {.binary_name = "audit-webhook",
       .add_flags =
           [&options](ro::runtime::FlagSet& flags) {
             ro::controllers::AddAuditWebhookFlags(flags, &options);
           },
       .setup = [&options](ro::runtime::Manager& manager) {
         ro::controllers::SetupAuditWebhook(manager, options);
       }});
}

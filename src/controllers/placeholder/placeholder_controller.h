// The controller of a kind whose behaviour is not implemented in this build: it watches
// the kind and reports, honestly, Ready=False with reason NotImplemented and a message
// naming the feature that brings the real controller. It does nothing else: no fake
// synchronization, no fake runs.
//
// Each kind's real controller replaces its placeholder by changing one line in its
// main_<kind>.cc.
#pragma once

#include <string>

#include "ro/runtime/controller.h"

namespace ro::runtime {
class Manager;
}  // namespace ro::runtime

namespace ro::controllers {

// The condition reason every placeholder reports.
inline constexpr const char* kReasonNotImplemented = "NotImplemented";

struct PlaceholderKind {
  runtime::ObjectType type;
  // Short controller name ("synchronization"): metric label, log field.
  std::string controller;
  // The Ready message: what is missing and which feature brings it.
  std::string message;
};

// The kind without a controller yet (automation.astronetes.io/v1alpha1).
PlaceholderKind SynchronizationPlanPlaceholder();

// Registers the placeholder controller of `kind` on `manager`.
void SetupPlaceholderController(runtime::Manager& manager, const PlaceholderKind& kind);

}  // namespace ro::controllers

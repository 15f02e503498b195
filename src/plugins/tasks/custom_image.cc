#include "ro/plugins/tasks/custom_image.h"

#include <stdexcept>
#include <utility>

#include <nlohmann/json.hpp>

#include "ro/common/digest.h"

#include "ro/common/object_meta.h"

namespace ro::plugins::tasks {

namespace {

using nlohmann::json;

// Longest name of a Pod, ServiceAccount or ClusterRoleBinding: a DNS subdomain
// (Kubernetes object names, RFC 1123).
constexpr std::size_t kMaxObjectName = 253;
// Characters of the TaskRun uid in generated names: 32 random bits keep two runs of
// the same TaskRun name (deleted and created again) apart.
constexpr std::size_t kUidPrefix = 8;
// Hex digits of the hash suffix of a shortened name (40 bits).
constexpr std::size_t kHashDigits = 10;

json RunLabels(const json& taskrun) {
  return {{"app.kubernetes.io/managed-by", "resiliency-operator"},
          {std::string(kTaskRunUidKey), common::Uid(taskrun)}};
}

json RunAnnotations(const json& taskrun, std::string_view task_name) {
  return {{std::string(kTaskRunAnnotation), common::Namespace(taskrun) + "/" + common::Name(taskrun)},
          {std::string(kTaskAnnotation), std::string(task_name)}};
}

json RunMetadata(const json& taskrun, std::string_view task_name, const std::string& name,
                 bool namespaced) {
  json metadata = {{"name", name},
                   {"labels", RunLabels(taskrun)},
                   {"annotations", RunAnnotations(taskrun, task_name)}};
  if (namespaced) {
    metadata["namespace"] = common::Namespace(taskrun);
    metadata["ownerReferences"] = json::array({TaskRunOwnerReference(taskrun)});
  }
  return metadata;
}

// "container task exited with code 1 (Error): message" from a terminated state.
std::string Terminated(const std::string& container, const json& terminated) {
  std::string text = "container " + container + " exited with code " +
                     std::to_string(terminated.value("exitCode", 0));
  if (const std::string reason = common::StringMember(terminated, "reason"); !reason.empty()) {
    text += " (" + reason + ")";
  }
  if (const std::string message = common::StringMember(terminated, "message"); !message.empty()) {
    text += ": " + message;
  }
  return text;
}

// What the containers' states say: the first terminated or waiting state with a reason.
std::string ContainerDetail(const json& status) {
  const json statuses = status.value("containerStatuses", json::array());
  if (!statuses.is_array()) return "";
  for (const json& s : statuses) {
    if (!s.is_object()) continue;
    const std::string name = common::StringMember(s, "name");
    const json state = s.value("state", json::object());
    if (!state.is_object()) continue;
    if (state.contains("terminated") && state["terminated"].is_object()) {
      return Terminated(name, state["terminated"]);
    }
    if (state.contains("waiting") && state["waiting"].is_object()) {
      const std::string reason = common::StringMember(state["waiting"], "reason");
      if (reason.empty()) continue;
      std::string text = "container " + name + " waiting: " + reason;
      if (const std::string message = common::StringMember(state["waiting"], "message"); !message.empty()) {
        text += ": " + message;
      }
      return text;
    }
  }
  return "";
}

}  // namespace

std::string BoundedName(std::string_view base, std::size_t max_length) {
  if (max_length <= kHashDigits + 1) throw std::invalid_argument("BoundedName: max_length too small");
  if (base.size() <= max_length) return std::string(base);
  std::string out(base.substr(0, max_length - kHashDigits - 1));
  // A cut must not leave a '-' or '.' before our '-' (names end alphanumeric at each
  // label); trimming keeps the result a valid DNS subdomain when `base` was one.
  while (!out.empty() && (out.back() == '-' || out.back() == '.')) out.pop_back();
  out += '-';
  out += common::Sha256Hex(base, kHashDigits);
  return out;
}

std::string RunObjectName(const json& taskrun) {
  return BoundedName(common::Name(taskrun) + "-" + common::Uid(taskrun).substr(0, kUidPrefix), kMaxObjectName);
}

std::string RunClusterRoleBindingName(const json& taskrun) {
  return BoundedName("taskrun-" + common::Namespace(taskrun) + "-" + common::Name(taskrun) + "-" +
                         common::Uid(taskrun).substr(0, kUidPrefix),
                     kMaxObjectName);
}

json TaskRunOwnerReference(const json& taskrun) {
  return common::ControllerReference(taskrun.value("apiVersion", "automation.astronetes.io/v1alpha1"),
                                     taskrun.value("kind", "TaskRun"), common::Name(taskrun), common::Uid(taskrun));
}

bool IsOwnedBy(const json& object, std::string_view uid) {
  if (!object.is_object() || !object.contains("metadata")) return false;
  const json owners = object["metadata"].value("ownerReferences", json::array());
  if (!owners.is_array()) return false;
  for (const json& owner : owners) {
    if (owner.is_object() && common::StringMember(owner, "uid") == uid) return true;
  }
  return false;
}

json RenderPod(const json& taskrun, std::string_view task_name, const CustomImageConfig& config,
               RestartPolicy restart_policy) {
  const bool with_role = config.cluster_role.has_value();
  json container = {
      {"name", std::string(kTaskContainerName)},
      {"image", config.image},
      {"command", config.command},
      {"securityContext",
       {{"allowPrivilegeEscalation", false},
        {"privileged", false},
        {"capabilities", {{"drop", json::array({"ALL"})}}},
        {"seccompProfile", {{"type", "RuntimeDefault"}}}}}};
  json spec = {{"restartPolicy", std::string(ToString(restart_policy))},
               {"containers", json::array({std::move(container)})},
               {"enableServiceLinks", false},
               // Without a clusterRole the Pod has no business with the API: no token.
               {"automountServiceAccountToken", with_role}};
  if (with_role) spec["serviceAccountName"] = RunObjectName(taskrun);
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", RunMetadata(taskrun, task_name, RunObjectName(taskrun), true)},
          {"spec", std::move(spec)}};
}

json RenderServiceAccount(const json& taskrun, std::string_view task_name) {
  return {{"apiVersion", "v1"},
          {"kind", "ServiceAccount"},
          {"metadata", RunMetadata(taskrun, task_name, RunObjectName(taskrun), true)}};
}

json RenderClusterRoleBinding(const json& taskrun, std::string_view task_name,
                              const CustomImageConfig& config) {
  if (!config.cluster_role) {
    throw std::invalid_argument("RenderClusterRoleBinding: the Task sets no clusterRole");
  }
  return {{"apiVersion", "rbac.authorization.k8s.io/v1"},
          {"kind", "ClusterRoleBinding"},
          {"metadata", RunMetadata(taskrun, task_name, RunClusterRoleBindingName(taskrun), false)},
          {"roleRef",
           {{"apiGroup", "rbac.authorization.k8s.io"},
            {"kind", "ClusterRole"},
            {"name", *config.cluster_role}}},
          {"subjects", json::array({{{"kind", "ServiceAccount"},
                                     {"name", RunObjectName(taskrun)},
                                     {"namespace", common::Namespace(taskrun)}}})}};
}

PodOutcome ReadPodOutcome(const json& pod) {
  PodOutcome outcome;
  const json status = pod.is_object() ? pod.value("status", json::object()) : json::object();
  if (!status.is_object()) return outcome;
  const std::string phase = common::StringMember(status, "phase");
  const std::string detail = ContainerDetail(status);
  std::string pod_message = common::StringMember(status, "reason");
  if (const std::string message = common::StringMember(status, "message"); !message.empty()) {
    pod_message += pod_message.empty() ? message : ": " + message;
  }
  if (phase == "Succeeded") {
    outcome.state = PodOutcome::State::kSucceeded;
    outcome.message = detail;
  } else if (phase == "Failed") {
    outcome.state = PodOutcome::State::kFailed;
    outcome.message = !detail.empty() ? detail : pod_message;
  } else {
    outcome.message = (phase.empty() ? std::string("Pending") : phase);
    if (!detail.empty()) {
      outcome.message += ": " + detail;
    } else if (!pod_message.empty()) {
      outcome.message += ": " + pod_message;
    }
  }
  return outcome;
}

}  // namespace ro::plugins::tasks

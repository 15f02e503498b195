// Which TaskRun a run is, and the metadata it leaves on the objects it creates or
// changes (docs/automation.md "What a run leaves behind"), so `kubectl get -l` and
// `kubectl describe` tell which run touched an object.
#pragma once

#include <string>
#include <string_view>

namespace ro::plugins::tasks {

// The TaskRun's uid: a label on the objects a custom-image run creates (Pod,
// ServiceAccount, ClusterRoleBinding), an annotation on the objects a
// kubernetes-objects-transformation run changed (its idempotency marker). A uid is a
// valid label value, unlike names longer than 63 characters.
inline constexpr std::string_view kTaskRunUidKey = "automation.astronetes.io/taskrun-uid";
// Annotation "<namespace>/<name>" of the TaskRun, on the same objects.
inline constexpr std::string_view kTaskRunAnnotation = "automation.astronetes.io/taskrun";
// Annotation with the Task's name, on the objects a custom-image run creates.
inline constexpr std::string_view kTaskAnnotation = "automation.astronetes.io/task";

// Which TaskRun is running.
struct RunIdentity {
  std::string ns;
  std::string name;
  std::string uid;
};

}  // namespace ro::plugins::tasks

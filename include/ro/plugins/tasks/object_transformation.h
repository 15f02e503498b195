// The kubernetes-objects-transformation plugin (manual 8.2 "Understanding the TaskRun",
// 6.2.2 "RecoveryProcess", 6.2.3; docs/automation.md): one pass over the destination
// cluster that, for every resources[] entry, lists the objects of its GVR, keeps those
// its filter selects and changes each one:
//
//   fromOriginal: the object's original is read from the bucket at BucketObjectPath
//                 (ro/plugins/kubernetes/bucket_object.h) and restored (RestoreFromOriginal)
//   patch:        the operations are applied (after the restore, when both are set)
//   stamp:        the run's annotations are added (kTaskRunUidKey, kTaskRunAnnotation)
//
// and writes it back with an Update preconditioned on the resourceVersion it read
// (Conflict: read again and redo). One object failing does not stop the others.
//
// Idempotent: an object already carrying this run's uid annotation counts as changed
// and is not written again, so a pass repeated after a controller restart (the TaskRun
// still Running) finishes the work without applying a patch twice.
//
// Order (docs/automation.md "Order"): with config.order Dependencies the entries run in
// the stages of ro/plugins/kubernetes/apply_order.h; after an entry of CRDs the pass waits
// until every CRD it wrote is Established, and before it writes a mutating or validating
// webhook configuration, until every Service its webhooks call has a ready endpoint
// (that object fails when one has none by endpoints_timeout). An Ingress whose backend
// Services have no ready endpoint is written without waiting, with a warning (log line,
// and the dry-run report's note).
//
// Dry run (TransformerOptions::dry_run, TaskRun spec.dryRun): every Update is sent with
// dryRun=All, so the destination validates and admits it and answers with the object it
// would store, and nothing changes; the report's `planned` lists, per selected object, the
// RFC 6902 patch from the object as it is to that answer (ChangeBetween).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "ro/common/log.h"
#include "ro/kube/clock.h"
#include "ro/plugins/tasks/run_metadata.h"
#include "ro/plugins/tasks/task_spec.h"

namespace ro::kube {
class DynamicClient;
}  // namespace ro::kube

namespace ro::plugins::tasks {

// True when `object` carries the annotation kTaskRunUidKey == uid.
bool ChangedByRun(const nlohmann::json& object, std::string_view uid);

// The change a write makes to an object, as an RFC 6902 JSON Patch (array) from `before`
// to `after` (nlohmann::json::diff), leaving out what every write changes or what the
// write does not decide: metadata.resourceVersion, generation, managedFields,
// creationTimestamp, uid, selfLink, status, and the run annotations kTaskRunUidKey and
// kTaskRunAnnotation (an annotations map left empty by their removal counts as absent).
// [] when the write changes nothing else. Pure.
nlohmann::json ChangeBetween(const nlohmann::json& before, const nlohmann::json& after);

// The destination object `current` with the source's state from `original` (the bucket
// body, BucketObjectBody): every top-level field of the original except apiVersion,
// kind, metadata and status is merged into `current` as an RFC 7386 merge patch (objects
// merge recursively, anything else, lists included, is replaced by the original's value),
// so fields only the destination has (an allocated spec.clusterIP) stay. metadata stays
// the destination's (uid, resourceVersion, ownerReferences, ...) with the original's
// labels and annotations laid over it, except the kubesync.astronetes.io/ control label
// and annotations, which keep the destination's values. `current` is untouched.
nlohmann::json RestoreFromOriginal(const nlohmann::json& current, const nlohmann::json& original);

// The object a run writes for `current`: RestoreFromOriginal (when `original` is given),
// then resource.patch, then the run's annotations. Throws kubernetes::TransformError
// when the patch cannot apply.
nlohmann::json TransformObject(const nlohmann::json& current, const TransformationResource& resource,
                               const nlohmann::json* original, const RunIdentity& run);

// One object that could not be changed.
struct ObjectFailure {
  std::string object;  // "apps/v1/deployments dr/web"
  std::string error;
};

// The Services the webhooks of a Mutating/ValidatingWebhookConfiguration call
// (webhooks[].clientConfig.service {namespace, name}), each once, in order; webhooks
// called by URL name none. Pure.
std::vector<kube::ObjectKey> WebhookServices(const nlohmann::json& configuration);

// The Services an Ingress routes to (networking.k8s.io/v1 spec.defaultBackend and
// spec.rules[].http.paths[].backend .service.name; v1beta1 .serviceName), in the
// Ingress's namespace, each once, in order; resource backends name none. Pure.
std::vector<kube::ObjectKey> IngressServices(const nlohmann::json& ingress);

// `patch` (a ChangeBetween result) fit for a status, a log line or a terminal: for core
// v1 Secrets every value under /data and /stringData, and the
// kubectl.kubernetes.io/last-applied-configuration annotation (which holds them too), is
// replaced by "(redacted)", whether an operation targets them or carries them inside a
// larger value (a whole object to create). Other resources' patches are returned as
// they are. Pure.
nlohmann::json RedactSecretValues(const kube::GroupVersionResource& gvr, nlohmann::json patch);

// What a dry run says a real run would do with one selected object.
enum class PlannedAction {
  kCreate,     // (restore) the object would be created; `patch` replaces the empty document
  kPatch,      // the object would change as `patch` says
  kUnchanged,  // only the run's annotations would be added
  kSkip,       // deleted by someone else meanwhile
  kFail,       // `message` says why a real run would fail on it
};

// "Create", "Patch", "Unchanged", "Skip", "Fail" (TaskRun status.dryRunReport.objects[].action).
std::string_view ToString(PlannedAction action);

struct PlannedChange {
  std::string resource;  // gvr.ToString(): "apps/v1/deployments"
  std::string ns;        // "" for cluster-scoped objects
  std::string name;
  PlannedAction action = PlannedAction::kPatch;
  std::string patch = "[]";  // ChangeBetween as JSON text; "[]" unless kPatch
  std::string message;       // kFail, kSkip: why; kPatch, kUnchanged: a remark or ""
};

// What a pass did with one resources[] entry.
struct ResourceReport {
  std::size_t index = 0;  // position in spec.config.resources
  kube::GroupVersionResource gvr;
  // The entry's objects were listed (false: its label selector matches nothing, or it
  // is one of the resource_errors).
  bool listed = false;
  int64_t objects = 0;   // objects the list returned (the selector applied by the apiserver)
  int64_t selected = 0;  // of those, the ones the whole filter selected
  int64_t patched = 0;   // of those, changed (or found already changed by this run)
  // With a namespaceSelector: how many of the cluster's namespaces it selects.
  std::optional<int64_t> namespaces_selected;
};

// What a pass did.
struct TransformationReport {
  int64_t patched = 0;  // objects changed (or found already changed by this run)
  int64_t failed = 0;   // selected objects that could not be changed
  int64_t gone = 0;     // selected objects deleted by someone else during the pass
  int64_t skipped = 0;  // (restore) objects left as they were because they exist
  // The word Summary uses for `patched`: "patched", or "restored" for a restore.
  std::string verb = "patched";
  // The first TransformerOptions::max_reported_failures failures.
  std::vector<ObjectFailure> failures;
  // resources[] entries that could not be processed at all ("resources[1] (v1/foos): not
  // served by the destination").
  std::vector<std::string> resource_errors;
  // Per resources[] entry the pass reached, in processing order (CheckRecovery,
  // recovery_check.h).
  std::vector<ResourceReport> resources;
  // Dry run only: what a real run would do, in the order it would do it; the first
  // entries up to TransformerOptions::max_planned_bytes of patches and messages, the
  // rest counted in planned_omitted.
  bool dry_run = false;
  std::vector<PlannedChange> planned;
  int64_t planned_omitted = 0;
  std::size_t planned_bytes = 0;  // the size of `planned` as max_planned_bytes counts it

  bool Succeeded() const { return failed == 0 && resource_errors.empty(); }
  // One line for TaskRun.status.message: "3 objects patched, 1 failed: apps/v1/deployments
  // a/b: <error>; ..." ("Dry run: 3 objects would be patched (2 changed, 1 unchanged),
  // 1 would fail: ..." for a dry run).
  std::string Summary() const;
};

// Adds `change` to report->planned while the planned patches and messages stay within
// `max_bytes`; past that, counts it in report->planned_omitted.
void AddPlannedChange(TransformationReport* report, PlannedChange change, std::size_t max_bytes);

// Waits until each CustomResourceDefinition of `names` in `client`'s cluster has the
// condition Established True, polling every `poll` until `timeout` in all. Returns one
// message per CRD that is not ("CustomResourceDefinition x is not Established: ...").
std::vector<std::string> WaitEstablished(kube::DynamicClient& client, const std::vector<std::string>& names,
                                         kube::Clock& clock, std::chrono::milliseconds timeout,
                                         std::chrono::milliseconds poll, std::stop_token stop);


// Reads the bucket object at `key`: its bytes, or nullopt when it does not exist.
// Throws S3Error (ro/plugins/s3_client.h).
using OriginalReader = std::function<std::optional<std::string>(const std::string& key)>;

struct TransformerOptions {
  // Attempts per object for Conflict (re-read first), 429, 5xx and transport errors.
  int max_attempts = 5;
  // Wait before the second attempt, doubling up to max_backoff: 200 ms .. 3.2 s covers
  // a few seconds of apiserver or bucket trouble without holding the worker for long.
  std::chrono::milliseconds initial_backoff{200};
  std::chrono::milliseconds max_backoff{5'000};
  // Failures listed in the report (and so in status.message); the rest are counted.
  std::size_t max_reported_failures = 5;
  // Page size of the lists (500 is client-go's pager default).
  int64_t list_page_size = 500;
  // Field manager of the writes (managedFields).
  std::string field_manager = "resiliency-operator-taskrun";
  // Send every write with dryRun=All and fill TransformationReport::planned.
  bool dry_run = false;
  // Dry run: bytes of patches and messages kept in TransformationReport::planned (the
  // TaskRun holds them; etcd takes at most 1.5 MiB per object).
  std::size_t max_planned_bytes = 256 * 1024;
  // After writing CRDs: how long to wait for each to be Established, polling every
  // established_poll.
  std::chrono::milliseconds established_timeout{std::chrono::seconds{60}};
  std::chrono::milliseconds established_poll{std::chrono::milliseconds{250}};
  // Before a webhook configuration is written: how long to wait for its Services to have
  // a ready endpoint (the workloads the same run scaled up are starting), polling every
  // endpoints_poll.
  std::chrono::milliseconds endpoints_timeout{std::chrono::seconds{120}};
  std::chrono::milliseconds endpoints_poll{std::chrono::milliseconds{500}};
};

// An asset as log lines name it (manual 6.2.4 sourceCluster/bucket fields:
// {name, namespace, resourceVersion, uid}). An empty name means "absent".
struct AssetIdentity {
  std::string name;
  std::string ns;
  std::string uid;
  std::string resource_version;
};

// Where the pass acts and what it may read. The references must outlive the transformer.
struct TransformationTarget {
  kube::DynamicClient* destination = nullptr;  // required
  // Log field destinationCluster: the KubernetesCluster; empty for the cluster the
  // operator runs in.
  AssetIdentity destination_cluster;
  // Required when the config UsesOriginals().
  OriginalReader read_original;
  // Log field bucket: the Bucket of read_original.
  AssetIdentity bucket;
};

// Runs one pass. Not thread-safe (one pass at a time); cheap to construct.
class ObjectTransformer {
 public:
  // Throws std::invalid_argument when target.destination is null, or when the config
  // UsesOriginals() without read_original or config.live_synchronization.
  ObjectTransformer(TransformationConfig config, RunIdentity run, TransformationTarget target,
                    log::Logger log, kube::Clock& clock = kube::DefaultClock(),
                    TransformerOptions options = {});

  // Processes every resources[] entry in order. Returns early (with what was done so
  // far) when `stop` is requested. Throws kube::ApiError / TransportError when the
  // destination's namespaces cannot be listed (needed by a namespaceSelector), and when
  // discovery or a list fails with a retryable error (transport, 429, 5xx: the
  // destination is unavailable, repeat the pass later); other list failures (Forbidden,
  // a resource the destination does not serve) are resource_errors, and per-object
  // failures are failures, in the report.
  TransformationReport Run(std::stop_token stop);

 private:
  void RunResource(const TransformationResource& resource, const nlohmann::json& namespaces,
                   TransformationReport* report, std::stop_token stop);
  // What happened to one selected object.
  struct ObjectResult {
    enum class Kind { kChanged, kGone, kFailed };
    Kind kind = Kind::kChanged;
    std::string error;  // kFailed only
    // Dry run, kChanged: ChangeBetween the object and the destination's dry-run answer.
    std::string patch = "[]";
    // Real run, kChanged: the name of the object written (for the Established wait).
    std::string name;
  };
  // Dry run: adds `object`'s entry to report->planned (`note`: a remark on a write that
  // would happen, e.g. a webhook Service without endpoints yet).
  void Plan(TransformationReport* report, const kube::GroupVersionResource& gvr,
            const nlohmann::json& object, const ObjectResult& result, const std::string& note) const;
  // Changes one object. An object deleted meanwhile is kGone: neither changed nor failed.
  ObjectResult ChangeObject(const TransformationResource& resource, nlohmann::json current,
                            std::stop_token stop);
  // The original of `object`, parsed; nullopt when the bucket has none. Throws S3Error
  // / nlohmann::json::parse_error.
  std::optional<nlohmann::json> ReadOriginal(const TransformationResource& resource,
                                             const nlohmann::json& object);
  void Fail(TransformationReport* report, std::string object, std::string error) const;
  // "" when every Service `configuration`'s webhooks call has a ready endpoint (Endpoints
  // with an address), else why not. Waits up to endpoints_timeout unless `wait` is false.
  std::string WaitForWebhookServices(const nlohmann::json& configuration, bool wait,
                                     std::stop_token stop);
  // "" when `service` has a ready endpoint in the destination now, else why not ("no
  // Endpoints", "no ready endpoint", or the error reading them).
  std::string EndpointProblem(const kube::ObjectKey& service) const;
  // "" when every Service `ingress` routes to has a ready endpoint now, else which do not.
  std::string UnreadyIngressBackends(const nlohmann::json& ingress) const;

  // Constant after construction.
  const TransformationConfig config_;
  const RunIdentity run_;
  const TransformationTarget target_;
  const log::Logger log_;
  kube::Clock& clock_;
  const TransformerOptions options_;
};

}  // namespace ro::plugins::tasks

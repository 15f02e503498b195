// The one dynamic client: every verb for any GroupVersionResource, on unstructured
// objects (nlohmann::json). There is no class per kind.
// Paths follow the Kubernetes API conventions:
//   core:  /api/v1[/namespaces/{ns}]/{resource}[/{name}[/{subresource}]]
//   other: /apis/{group}/{version}[/namespaces/{ns}]/{resource}[/{name}[/{subresource}]]
// `ns` empty means cluster-scoped, or all namespaces for List/Watch of a namespaced
// resource.
//
// Errors: HTTP >= 400 throws ApiError with the parsed metav1.Status (reason, message,
// causes, retry-after); no answer, or a 2xx answer that is not JSON, throws
// TransportError. See ro/kube/errors.h.
// Thread-safe: share one DynamicClient across threads.
#pragma once

// The one public header that needs the full nlohmann::json: WatchEvent holds an object
// by value, which an incomplete (forward-declared) type cannot be.
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "ro/kube/config.h"
#include "ro/kube/gvr.h"

namespace ro::kube {

class Discovery;
class Transport;

struct ListOptions {
  std::string label_selector;  // string form, e.g. "app=web,tier notin (db)"
  std::string field_selector;  // e.g. "metadata.name=foo"
  int64_t limit = 0;           // page size; 0: server default (everything)
  std::string continue_token;
  // "" reads the latest state (quorum read); "0" lets the server answer from its watch
  // cache. Other values: exact/not-older-than per resource_version_match.
  std::string resource_version;
  std::string resource_version_match;  // "", "Exact", "NotOlderThan"
  // Ask for the objects' metadata only: each item is a PartialObjectMetadata
  // (apiVersion meta.k8s.io/v1, metadata only; Accept
  // "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1", what client-go's
  // metadata client sends), so the server encodes and the client decodes a fraction of
  // the bytes. A server that cannot answer so sends whole objects (the Accept header
  // lists plain JSON second).
  bool metadata_only = false;
};

struct ObjectList {
  std::vector<nlohmann::json> items;  // each item carries apiVersion and kind
  std::string resource_version;       // the list's metadata.resourceVersion
  std::string continue_token;         // empty on the last page
  std::optional<int64_t> remaining_item_count;
};

enum class PatchType {
  kJsonPatch,            // application/json-patch+json (RFC 6902)
  kMergePatch,           // application/merge-patch+json (RFC 7386)
  kStrategicMergePatch,  // application/strategic-merge-patch+json (built-in kinds only)
};

struct WriteOptions {
  bool dry_run = false;       // dryRun=All
  std::string field_manager;  // fieldManager=...
  // Ask for the written object's metadata only in the answer of Create, Update,
  // UpdateStatus and Patch: a PartialObjectMetadata (apiVersion meta.k8s.io/v1, kind
  // PartialObjectMetadata, the stored object's metadata), the Accept header of
  // ListOptions::metadata_only. The server writes the whole object either way; this only
  // spares it encoding, and the client decoding, the rest (spec, data, status) of an
  // object whose answer the caller reads only for its uid, resourceVersion, labels and
  // annotations. A server that cannot answer so sends the whole object.
  bool metadata_only = false;
};

struct DeleteOptions {
  // "Orphan", "Background" or "Foreground"; empty: the resource's default.
  std::string propagation_policy;
  std::optional<int64_t> grace_period_seconds;
  // Preconditions: the delete fails with kConflict when they do not hold.
  std::string precondition_uid;
  std::string precondition_resource_version;
};

struct WatchOptions {
  // Start after this resourceVersion (from a list or the last event). "" = "start at the
  // most recent", "0" = "any", per the API's semantics.
  std::string resource_version;
  std::string label_selector;
  std::string field_selector;
  bool allow_bookmarks = true;
  // Server-side timeout of the watch (s); the server then closes the stream cleanly.
  // client-go uses a random 5-10 min; 0 lets the server pick. When set, a stream that
  // stays silent for timeout_seconds + 30 s is declared dead (TransportError kTimeout).
  int64_t timeout_seconds = 0;
  // Events carry PartialObjectMetadata (ListOptions::metadata_only; Accept
  // "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1").
  bool metadata_only = false;
  // Called, when set, after the events of one read from the stream were all delivered
  // (they arrived together). A consumer that buffers per event (group commit) makes
  // them durable here: one commit per burst instead of one per event, and none waiting
  // while the stream is idle.
  std::function<void()> on_batch_end;
};

enum class WatchEventType { kAdded, kModified, kDeleted, kBookmark };

struct WatchEvent {
  WatchEventType type;
  nlohmann::json object;  // full object; for bookmarks only metadata.resourceVersion
};

class DynamicClient {
 public:
  // Builds the libcurl transport from `config`. Throws ConfigError.
  explicit DynamicClient(RestConfig config);
  // Uses the given transport (tests, or sharing one transport).
  DynamicClient(RestConfig config, std::shared_ptr<Transport> transport);
  ~DynamicClient();
  DynamicClient(const DynamicClient&) = delete;
  DynamicClient& operator=(const DynamicClient&) = delete;

  const RestConfig& config() const noexcept { return config_; }
  Transport& transport() noexcept { return *transport_; }
  Discovery& discovery() noexcept { return *discovery_; }

  nlohmann::json Get(const GroupVersionResource& gvr, std::string_view ns,
                     std::string_view name, std::string_view subresource = "");
  // Get, with nullopt for NotFound (the object does not exist); every other error throws
  // as from Get.
  std::optional<nlohmann::json> GetIfExists(const GroupVersionResource& gvr, std::string_view ns,
                                            std::string_view name);
  // One page. Use ListAll to follow continue tokens.
  ObjectList List(const GroupVersionResource& gvr, std::string_view ns,
                  const ListOptions& options = {});
  // Every page (options.limit is the page size; 500 when 0). The returned
  // resource_version is that of the first page, which is consistent for the whole list.
  // A 410 in the middle (continue token expired by etcd compaction) falls back once to
  // one unpaged list at the requested resourceVersion, as client-go's pager does.
  ObjectList ListAll(const GroupVersionResource& gvr, std::string_view ns,
                     ListOptions options = {});

  // Create/Update/UpdateStatus: `ns` empty means the object's metadata.namespace
  // (empty again for cluster-scoped objects). Update and UpdateStatus throw
  // std::invalid_argument when the object has no metadata.name.
  nlohmann::json Create(const GroupVersionResource& gvr, std::string_view ns,
                        const nlohmann::json& object, const WriteOptions& options = {});
  // PUT of the whole object; metadata.resourceVersion, when set, is the optimistic
  // concurrency precondition (kConflict when stale).
  nlohmann::json Update(const GroupVersionResource& gvr, std::string_view ns,
                        const nlohmann::json& object, const WriteOptions& options = {});
  // PUT to the status subresource.
  nlohmann::json UpdateStatus(const GroupVersionResource& gvr, std::string_view ns,
                              const nlohmann::json& object, const WriteOptions& options = {});
  nlohmann::json Patch(const GroupVersionResource& gvr, std::string_view ns,
                       std::string_view name, PatchType type, std::string_view patch,
                       std::string_view subresource = "", const WriteOptions& options = {});
  // Returns normally when the object was deleted or its deletion started (finalizers).
  void Delete(const GroupVersionResource& gvr, std::string_view ns, std::string_view name,
              const DeleteOptions& options = {});

  // Opens a watch and delivers events in arrival order, decoding each one as soon as its
  // line arrives. Blocks until the server closes the stream (returns normally: resume
  // from the last seen resourceVersion), or `stop` is requested (returns normally).
  // A watch ERROR event or HTTP error throws ApiError (kGone: relist), a broken
  // connection throws TransportError. `on_event` runs on the calling thread.
  void Watch(const GroupVersionResource& gvr, std::string_view ns,
             const WatchOptions& options,
             const std::function<void(WatchEvent&&)>& on_event, std::stop_token stop);

  // GET /version -> gitVersion, e.g. "v1.20.2".
  std::string ServerVersion();
  // GET of an arbitrary path (e.g. "/readyz"), parsed as JSON when it is JSON,
  // else returned as a JSON string. Throws ApiError for >= 400.
  nlohmann::json RawGet(std::string_view path);

  // The URL path of a resource collection or object (no query).
  static std::string Path(const GroupVersionResource& gvr, std::string_view ns,
                          std::string_view name = "", std::string_view subresource = "");

 private:
  RestConfig config_;
  std::shared_ptr<Transport> transport_;
  std::unique_ptr<Discovery> discovery_;
};

}  // namespace ro::kube

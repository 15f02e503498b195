#include "ro/kube/client.h"

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <utility>

#include "client_codec.h"
#include "ro/kube/discovery.h"
#include "ro/kube/errors.h"
#include "ro/kube/pager.h"
#include "ro/kube/transport.h"

namespace ro::kube {
namespace {

// A watch with a server-side timeout must see the server close it by then; this much
// extra silence (s) means the server or the path to it is dead.
constexpr int64_t kWatchIdleMarginSeconds = 30;

// ListOptions::metadata_only / WatchOptions::metadata_only / WriteOptions::metadata_only:
// PartialObjectMetadata first, whole objects from a server that cannot (client-go's
// metadata client does the same).
constexpr const char* kPartialObjectMetadataListAccept =
    "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";
constexpr const char* kPartialObjectMetadataAccept =
    "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json";

HttpResponse Checked(HttpResponse response) {
  if (response.status >= 400) {
    throw ApiErrorFromResponse(static_cast<int>(response.status), response.body,
                               response.retry_after);
  }
  return response;
}

std::string Describe(const HttpRequest& request) { return request.method + " " + request.path; }

nlohmann::json DoJson(Transport& transport, const HttpRequest& request) {
  const HttpResponse response = Checked(transport.Do(request));
  return internal::ParseJsonBody(response.body, Describe(request));
}

const nlohmann::json* MetadataField(const nlohmann::json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return nullptr;
  auto field = meta->find(key);
  if (field == meta->end() || !field->is_string()) return nullptr;
  return &*field;
}

// The namespace to write to: the argument, else the object's own metadata.namespace.
std::string TargetNamespace(std::string_view ns, const nlohmann::json& object) {
  if (!ns.empty()) return std::string(ns);
  const nlohmann::json* field = MetadataField(object, "namespace");
  return field != nullptr ? field->get<std::string>() : std::string();
}

std::string RequiredName(const nlohmann::json& object, const char* verb) {
  const nlohmann::json* field = MetadataField(object, "name");
  if (field == nullptr || field->get_ref<const std::string&>().empty()) {
    throw std::invalid_argument(std::string(verb) + ": object has no metadata.name");
  }
  return field->get<std::string>();
}

void AppendSegment(std::string* path, std::string_view segment) {
  path->push_back('/');
  internal::AppendEscaped(path, segment);
}

}  // namespace

DynamicClient::DynamicClient(RestConfig config)
    : DynamicClient(config, std::shared_ptr<Transport>(NewCurlTransport(config))) {}

DynamicClient::DynamicClient(RestConfig config, std::shared_ptr<Transport> transport)
    : config_(std::move(config)),
      transport_(std::move(transport)),
      discovery_(std::make_unique<Discovery>(*transport_)) {}

DynamicClient::~DynamicClient() = default;

std::string DynamicClient::Path(const GroupVersionResource& gvr, std::string_view ns,
                                std::string_view name, std::string_view subresource) {
  std::string path;
  path.reserve(32 + gvr.group.size() + ns.size() + gvr.resource.size() + name.size() +
               subresource.size());
  if (gvr.group.empty()) {
    path.append("/api");
  } else {
    path.append("/apis");
    AppendSegment(&path, gvr.group);
  }
  AppendSegment(&path, gvr.version);
  if (!ns.empty()) {
    path.append("/namespaces");
    AppendSegment(&path, ns);
  }
  AppendSegment(&path, gvr.resource);
  if (!name.empty()) AppendSegment(&path, name);
  if (!subresource.empty()) AppendSegment(&path, subresource);
  return path;
}

nlohmann::json DynamicClient::Get(const GroupVersionResource& gvr, std::string_view ns,
                                  std::string_view name, std::string_view subresource) {
  HttpRequest request;
  request.path = Path(gvr, ns, name, subresource);
  return DoJson(*transport_, request);
}

std::optional<nlohmann::json> DynamicClient::GetIfExists(const GroupVersionResource& gvr, std::string_view ns,
                                                         std::string_view name) {
  try {
    return Get(gvr, ns, name);
  } catch (const ApiError& e) {
    if (e.reason() == StatusReason::kNotFound) return std::nullopt;
    throw;
  }
}

ObjectList DynamicClient::List(const GroupVersionResource& gvr, std::string_view ns,
                               const ListOptions& options) {
  HttpRequest request;
  request.path = internal::ListUrl(Path(gvr, ns), options);
  if (options.metadata_only) request.accept = kPartialObjectMetadataListAccept;
  const HttpResponse response = Checked(transport_->Do(request));
  return internal::DecodeObjectList(response.body, Describe(request));
}

ObjectList DynamicClient::ListAll(const GroupVersionResource& gvr, std::string_view ns,
                                  ListOptions options) {
  if (options.limit <= 0) options.limit = kDefaultListPageSize;
  ListOptions page = options;
  ObjectList all;
  bool first = true;
  while (true) {
    ObjectList part;
    try {
      part = List(gvr, ns, page);
    } catch (const ApiError& e) {
      if (e.reason() != StatusReason::kGone || page.continue_token.empty()) throw;
      // The continue token expired (etcd compacted past the list's resourceVersion)
      // while we paged: fall back to one unpaged list at the requested
      // resourceVersion, as client-go's pager does.
      ListOptions full = options;
      full.limit = 0;
      full.continue_token.clear();
      return List(gvr, ns, full);
    }
    if (first) {
      all.resource_version = std::move(part.resource_version);
      all.items = std::move(part.items);
      if (part.remaining_item_count) {
        all.items.reserve(all.items.size() + static_cast<size_t>(*part.remaining_item_count));
      }
      first = false;
    } else {
      for (auto& item : part.items) all.items.push_back(std::move(item));
    }
    if (part.continue_token.empty()) break;
    // The continue token pins the snapshot; the API rejects resourceVersion beside it.
    page.continue_token = std::move(part.continue_token);
    page.resource_version.clear();
    page.resource_version_match.clear();
  }
  return all;
}

nlohmann::json DynamicClient::Create(const GroupVersionResource& gvr, std::string_view ns,
                                     const nlohmann::json& object,
                                     const WriteOptions& options) {
  HttpRequest request;
  request.method = "POST";
  request.path = internal::WriteUrl(Path(gvr, TargetNamespace(ns, object)), options);
  request.body = object.dump();
  if (options.metadata_only) request.accept = kPartialObjectMetadataAccept;
  return DoJson(*transport_, request);
}

nlohmann::json DynamicClient::Update(const GroupVersionResource& gvr, std::string_view ns,
                                     const nlohmann::json& object,
                                     const WriteOptions& options) {
  HttpRequest request;
  request.method = "PUT";
  request.path = internal::WriteUrl(
      Path(gvr, TargetNamespace(ns, object), RequiredName(object, "Update")), options);
  request.body = object.dump();
  if (options.metadata_only) request.accept = kPartialObjectMetadataAccept;
  return DoJson(*transport_, request);
}

nlohmann::json DynamicClient::UpdateStatus(const GroupVersionResource& gvr, std::string_view ns,
                                           const nlohmann::json& object,
                                           const WriteOptions& options) {
  HttpRequest request;
  request.method = "PUT";
  request.path = internal::WriteUrl(
      Path(gvr, TargetNamespace(ns, object), RequiredName(object, "UpdateStatus"), "status"),
      options);
  request.body = object.dump();
  if (options.metadata_only) request.accept = kPartialObjectMetadataAccept;
  return DoJson(*transport_, request);
}

nlohmann::json DynamicClient::Patch(const GroupVersionResource& gvr, std::string_view ns,
                                    std::string_view name, PatchType type,
                                    std::string_view patch, std::string_view subresource,
                                    const WriteOptions& options) {
  HttpRequest request;
  request.method = "PATCH";
  request.path = internal::WriteUrl(Path(gvr, ns, name, subresource), options);
  request.body.assign(patch);
  request.content_type.assign(internal::PatchContentType(type));
  if (options.metadata_only) request.accept = kPartialObjectMetadataAccept;
  return DoJson(*transport_, request);
}

void DynamicClient::Delete(const GroupVersionResource& gvr, std::string_view ns,
                           std::string_view name, const DeleteOptions& options) {
  HttpRequest request;
  request.method = "DELETE";
  request.path = Path(gvr, ns, name);
  request.body = internal::DeleteOptionsBody(options);
  Checked(transport_->Do(request));
}

void DynamicClient::Watch(const GroupVersionResource& gvr, std::string_view ns,
                          const WatchOptions& options,
                          const std::function<void(WatchEvent&&)>& on_event,
                          std::stop_token stop) {
  HttpRequest request;
  request.path = internal::WatchUrl(Path(gvr, ns), options);
  if (options.metadata_only) request.accept = kPartialObjectMetadataAccept;
  if (options.timeout_seconds > 0) {
    request.stream_idle_timeout =
        std::chrono::seconds{options.timeout_seconds + kWatchIdleMarginSeconds};
  }
  internal::WatchLineDecoder decoder(on_event);
  long status = 0;
  std::string error_body;
  transport_->Stream(
      request, [&status](long code) { status = code; },
      [&](std::string_view chunk) {
        if (status >= 400) {
          error_body.append(chunk);
        } else {
          decoder.Feed(chunk);
          if (options.on_batch_end) options.on_batch_end();
        }
      },
      stop);
  if (status >= 400) throw ApiErrorFromResponse(static_cast<int>(status), error_body);
  if (stop.stop_requested()) return;
  decoder.Finish();
}

std::string DynamicClient::ServerVersion() {
  HttpRequest request;
  request.path = "/version";
  const nlohmann::json doc = DoJson(*transport_, request);
  auto it = doc.find("gitVersion");
  if (it == doc.end() || !it->is_string()) {
    throw TransportError(TransportError::Kind::kOther, "GET /version: no gitVersion");
  }
  return it->get<std::string>();
}

nlohmann::json DynamicClient::RawGet(std::string_view path) {
  HttpRequest request;
  request.path.assign(path);
  request.accept = "application/json, */*";
  HttpResponse response = Checked(transport_->Do(request));
  nlohmann::json doc = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_discarded()) return doc;
  return nlohmann::json(std::move(response.body));
}

}  // namespace ro::kube

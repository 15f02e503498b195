// Private to ro_kube: the pure parts of DynamicClient (URL queries, request bodies,
// response decoding, the watch line decoder), separate so unit tests cover them without
// a server. Conventions: https://kubernetes.io/docs/reference/using-api/api-concepts/
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <functional>
#include <string>
#include <string_view>

#include "ro/kube/client.h"

namespace ro::kube::internal {

// Appends `value` percent-encoded for a URL query value or path segment: everything but
// RFC 3986 unreserved characters (A-Z a-z 0-9 - . _ ~) becomes %XX.
void AppendEscaped(std::string* out, std::string_view value);

// Builds "path?k=v&k2=v2", skipping empty values and escaping every value.
class QueryBuilder {
 public:
  explicit QueryBuilder(std::string path) : url_(std::move(path)) {}
  QueryBuilder& Add(std::string_view key, std::string_view value);
  QueryBuilder& Add(std::string_view key, int64_t value);
  std::string Take() && { return std::move(url_); }

 private:
  std::string url_;
  bool has_query_ = false;
};

// Collection path + the ListOptions query (labelSelector, fieldSelector, limit,
// continue, resourceVersion, resourceVersionMatch).
std::string ListUrl(std::string path, const ListOptions& options);
// Collection path + watch=1, allowWatchBookmarks, resourceVersion, selectors,
// timeoutSeconds.
std::string WatchUrl(std::string path, const WatchOptions& options);
// Object or collection path + dryRun=All / fieldManager.
std::string WriteUrl(std::string path, const WriteOptions& options);
// The metav1.DeleteOptions body, or "" when every option has its default.
std::string DeleteOptionsBody(const DeleteOptions& options);
std::string_view PatchContentType(PatchType type);

// Parses a JSON response body. Throws TransportError(kOther) naming `what` when the
// body is not JSON (a proxy's HTML page, a truncated answer).
nlohmann::json ParseJsonBody(std::string_view body, std::string_view what);

// Decodes a *List response: items get apiVersion and kind (the list's kind minus
// "List") when missing, as built-in lists omit them. Throws like ParseJsonBody.
ObjectList DecodeObjectList(std::string_view body, std::string_view what);

// Splits a watch byte stream on '\n' and hands each complete event to `on_event` as
// soon as its line is complete. ERROR events throw ApiError built from their Status
// (410 -> kGone); an undecodable line throws TransportError(kBrokenStream).
// Not thread-safe (one per watch).
class WatchLineDecoder {
 public:
  explicit WatchLineDecoder(const std::function<void(WatchEvent&&)>& on_event)
      : on_event_(on_event) {}

  void Feed(std::string_view chunk);
  // At a clean end of stream: a leftover partial line means the stream was cut.
  void Finish();

 private:
  void HandleLine(std::string_view line);

  const std::function<void(WatchEvent&&)>& on_event_;
  std::string pending_;  // bytes of an incomplete line
};

}  // namespace ro::kube::internal

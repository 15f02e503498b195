// Paged lists (client-go tools/pager): a collection read page by page, each page handed
// to the caller as it arrives, so a caller that keeps a reduced form of each object
// never holds the whole list.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "ro/kube/client.h"
#include "ro/kube/gvr.h"

namespace ro::kube {

// The page size of paged lists when none is given (client-go's pager default): bounds one
// response while costing one request per 500 objects.
inline constexpr int64_t kDefaultListPageSize = 500;

// Lists `gvr` in `ns` ("" = all namespaces) with `options` (selectors, metadata_only;
// limit is the page size, 500 when <= 0; continue_token is ignored), calling `on_page`
// with each page's items (which it may consume). When the continue token expires (410
// Gone: etcd compacted past the list's snapshot) the list restarts from the beginning,
// once: `on_restart` (may be empty) is called first so the caller can drop what it got.
// Returns the list's resourceVersion (that of its first page). Throws ApiError /
// TransportError, and what `on_page` throws.
std::string ListPages(DynamicClient& client, const GroupVersionResource& gvr, std::string_view ns,
                      ListOptions options, const std::function<void(std::vector<nlohmann::json>&)>& on_page,
                      const std::function<void()>& on_restart);

}  // namespace ro::kube

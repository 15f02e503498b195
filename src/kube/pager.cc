#include "ro/kube/pager.h"

#include <utility>

#include <nlohmann/json.hpp>

#include "ro/kube/errors.h"

namespace ro::kube {

std::string ListPages(DynamicClient& client, const GroupVersionResource& gvr, std::string_view ns,
                      ListOptions options, const std::function<void(std::vector<nlohmann::json>&)>& on_page,
                      const std::function<void()>& on_restart) {
  if (options.limit <= 0) options.limit = kDefaultListPageSize;
  options.continue_token.clear();
  const ListOptions first = options;
  bool restarted = false;
  while (true) {
    ListOptions page_options = first;
    std::string list_rv;
    try {
      do {
        ObjectList page = client.List(gvr, ns, page_options);
        if (list_rv.empty()) list_rv = page.resource_version;
        on_page(page.items);
        // The continue token pins the snapshot; the API rejects resourceVersion beside it.
        page_options.continue_token = std::move(page.continue_token);
        page_options.resource_version.clear();
        page_options.resource_version_match.clear();
      } while (!page_options.continue_token.empty());
      return list_rv;
    } catch (const ApiError& e) {
      if (e.reason() != StatusReason::kGone || page_options.continue_token.empty() || restarted) throw;
      restarted = true;
      if (on_restart) on_restart();
    }
  }
}

}  // namespace ro::kube

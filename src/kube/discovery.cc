#include "ro/kube/discovery.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <unordered_map>

#include "client_codec.h"
#include "ro/common/log.h"
#include "ro/kube/errors.h"
#include "ro/kube/transport.h"

namespace ro::kube {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<std::string> StringArray(const nlohmann::json& obj, const char* key) {
  std::vector<std::string> out;
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_array()) return out;
  out.reserve(it->size());
  for (const auto& v : *it) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

bool Contains(const std::vector<std::string>& list, std::string_view value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

nlohmann::json GetJson(Transport& transport, const std::string& path) {
  HttpRequest request;
  request.path = path;
  HttpResponse response = transport.Do(request);
  if (response.status >= 400) {
    throw ApiErrorFromResponse(static_cast<int>(response.status), response.body,
                               response.retry_after);
  }
  return internal::ParseJsonBody(response.body, "GET " + path);
}

// Appends the resources of one APIResourceList (GET /api/v1, /apis/{group}/{version}).
// "deployments/status" style entries are subresources: recorded on their parent.
void AddResourceList(const nlohmann::json& list, const std::string& group,
                     const std::string& version, std::vector<ApiResource>* out) {
  auto resources = list.find("resources");
  if (resources == list.end() || !resources->is_array()) return;
  const size_t first = out->size();
  std::vector<std::pair<std::string, std::string>> subresources;  // parent, sub
  for (const auto& r : *resources) {
    if (!r.is_object()) continue;
    auto name_it = r.find("name");
    if (name_it == r.end() || !name_it->is_string()) continue;
    const std::string& name = name_it->get_ref<const std::string&>();
    if (const auto slash = name.find('/'); slash != std::string::npos) {
      subresources.emplace_back(name.substr(0, slash), name.substr(slash + 1));
      continue;
    }
    ApiResource res;
    res.gvr = GroupVersionResource{group, version, name};
    if (auto kind = r.find("kind"); kind != r.end() && kind->is_string()) {
      res.kind = kind->get<std::string>();
    }
    if (auto ns = r.find("namespaced"); ns != r.end() && ns->is_boolean()) {
      res.namespaced = ns->get<bool>();
    }
    res.verbs = StringArray(r, "verbs");
    res.short_names = StringArray(r, "shortNames");
    out->push_back(std::move(res));
  }
  for (auto& [parent, sub] : subresources) {
    for (size_t i = first; i < out->size(); ++i) {
      if ((*out)[i].gvr.resource == parent) {
        (*out)[i].subresources.push_back(std::move(sub));
        break;
      }
    }
  }
}

}  // namespace

bool ApiResource::HasVerb(std::string_view verb) const { return Contains(verbs, verb); }

bool ApiResource::HasSubresource(std::string_view sub) const {
  return Contains(subresources, sub);
}

struct Discovery::State {
  std::vector<ApiResource> resources;
  std::unordered_map<GroupVersionResource, size_t> by_gvr;  // index into resources
  Clock::time_point fetched_at;

  const ApiResource* Find(const GroupVersionResource& gvr) const {
    auto it = by_gvr.find(gvr);
    return it == by_gvr.end() ? nullptr : &resources[it->second];
  }
  const ApiResource* FindByKind(std::string_view api_version, std::string_view kind) const {
    std::string group, version;
    SplitApiVersion(api_version, &group, &version);
    for (const auto& r : resources) {
      if (r.kind == kind && r.gvr.version == version && r.gvr.group == group) return &r;
    }
    return nullptr;
  }
};

Discovery::Discovery(Transport& transport, std::chrono::milliseconds min_refresh_interval)
    : transport_(transport), min_refresh_interval_(min_refresh_interval) {}

Discovery::~Discovery() = default;

void Discovery::RefreshLocked() {
  auto next = std::make_unique<State>();
  std::vector<std::pair<std::string, std::string>> group_versions;  // group, version

  const nlohmann::json core = GetJson(transport_, "/api");
  for (const auto& v : StringArray(core, "versions")) group_versions.emplace_back("", v);
  const nlohmann::json groups = GetJson(transport_, "/apis");
  if (auto list = groups.find("groups"); list != groups.end() && list->is_array()) {
    for (const auto& g : *list) {
      if (!g.is_object() || !g.contains("name") || !g["name"].is_string()) continue;
      const std::string name = g["name"].get<std::string>();
      auto versions = g.find("versions");
      if (versions == g.end() || !versions->is_array()) continue;
      for (const auto& v : *versions) {
        if (v.is_object() && v.contains("version") && v["version"].is_string()) {
          group_versions.emplace_back(name, v["version"].get<std::string>());
        }
      }
    }
  }

  for (const auto& [group, version] : group_versions) {
    const std::string path =
        group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
    try {
      AddResourceList(GetJson(transport_, path), group, version, &next->resources);
    } catch (const std::runtime_error& e) {
      // An aggregated API whose backing service is down answers 503; one broken group
      // must not hide every other resource. It is retried at the next refresh.
      if (dynamic_cast<const ApiError*>(&e) == nullptr &&
          dynamic_cast<const TransportError*>(&e) == nullptr) {
        throw;
      }
      ro::log::Logger().Warn("skipping an API group version", {{"component", "kube-discovery"}, {"path", path}, {"error", e.what()}});
    }
  }
  next->by_gvr.reserve(next->resources.size());
  for (size_t i = 0; i < next->resources.size(); ++i) {
    next->by_gvr.emplace(next->resources[i].gvr, i);
  }
  next->fetched_at = Clock::now();
  state_ = std::move(next);
}

std::optional<ApiResource> Discovery::Find(const GroupVersionResource& gvr) {
  std::lock_guard lock(mu_);
  if (!state_) RefreshLocked();
  if (const ApiResource* r = state_->Find(gvr)) return *r;
  if (Clock::now() - state_->fetched_at < min_refresh_interval_) return std::nullopt;
  RefreshLocked();
  if (const ApiResource* r = state_->Find(gvr)) return *r;
  return std::nullopt;
}

std::optional<ApiResource> Discovery::FindByKind(std::string_view api_version,
                                                 std::string_view kind) {
  std::lock_guard lock(mu_);
  if (!state_) RefreshLocked();
  if (const ApiResource* r = state_->FindByKind(api_version, kind)) return *r;
  if (Clock::now() - state_->fetched_at < min_refresh_interval_) return std::nullopt;
  RefreshLocked();
  if (const ApiResource* r = state_->FindByKind(api_version, kind)) return *r;
  return std::nullopt;
}

std::vector<ApiResource> Discovery::All() {
  std::lock_guard lock(mu_);
  if (!state_) RefreshLocked();
  return state_->resources;
}

void Discovery::Invalidate() {
  std::lock_guard lock(mu_);
  state_.reset();
}

}  // namespace ro::kube

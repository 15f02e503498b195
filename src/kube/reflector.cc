#include "ro/kube/reflector.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <utility>

#include "ro/common/log.h"
#include "ro/kube/errors.h"
#include "ro/kube/pager.h"

namespace ro::kube {
namespace {

// The reflector's log lines carry {"reflector": "<gvr> in <namespace>"}.
ro::log::Logger ReflectorLog(const ListerWatcher& lw) {
  return ro::log::Logger(nlohmann::json{{"reflector", lw.Describe()}});
}

class DynamicListerWatcher final : public ListerWatcher {
 public:
  DynamicListerWatcher(DynamicClient& client, GroupVersionResource gvr, std::string ns,
                       std::string label_selector, std::string field_selector)
      : client_(client),
        gvr_(std::move(gvr)),
        ns_(std::move(ns)),
        label_selector_(std::move(label_selector)),
        field_selector_(std::move(field_selector)) {}

  ObjectList List(const ListOptions& options) override {
    ListOptions o = options;
    o.label_selector = label_selector_;
    o.field_selector = field_selector_;
    return client_.ListAll(gvr_, ns_, std::move(o));
  }
  std::string ListPages(const ListOptions& options, const std::function<void(std::vector<nlohmann::json>&)>& on_page,
                        const std::function<void()>& on_restart) override {
    ListOptions o = options;
    o.label_selector = label_selector_;
    o.field_selector = field_selector_;
    return kube::ListPages(client_, gvr_, ns_, std::move(o), on_page, on_restart);
  }

  void Watch(const WatchOptions& options, const std::function<void(WatchEvent&&)>& on_event,
             std::stop_token stop) override {
    WatchOptions o = options;
    o.label_selector = label_selector_;
    o.field_selector = field_selector_;
    client_.Watch(gvr_, ns_, o, on_event, std::move(stop));
  }

  std::string Describe() const override {
    std::string out = gvr_.ToString();
    out += ns_.empty() ? " in all namespaces" : " in " + ns_;
    if (!label_selector_.empty() || !field_selector_.empty()) {
      out += " (" + label_selector_;
      if (!label_selector_.empty() && !field_selector_.empty()) out += ",";
      out += field_selector_ + ")";
    }
    return out;
  }

 private:
  DynamicClient& client_;
  const GroupVersionResource gvr_;
  const std::string ns_;
  const std::string label_selector_;
  const std::string field_selector_;
};

}  // namespace

std::unique_ptr<ListerWatcher> NewListerWatcher(DynamicClient& client, GroupVersionResource gvr,
                                                std::string ns, std::string label_selector,
                                                std::string field_selector) {
  return std::make_unique<DynamicListerWatcher>(client, std::move(gvr), std::move(ns),
                                                std::move(label_selector),
                                                std::move(field_selector));
}

void StripManagedFields(nlohmann::json& object) {
  const auto meta = object.find("metadata");
  if (meta != object.end() && meta->is_object()) meta->erase("managedFields");
}

Reflector::Reflector(ListerWatcher& lw, ReflectorSink& sink, ReflectorOptions options,
                     Clock& clock)
    : lw_(lw), sink_(sink), options_(std::move(options)), clock_(clock),
      rng_(std::random_device{}()),
      backoff_(options_.initial_backoff, options_.max_backoff, options_.backoff_jitter) {}

std::string Reflector::LastSyncResourceVersion() const {
  std::lock_guard lock(mu_);
  return resource_version_;
}

int64_t Reflector::ListCount() const {
  std::lock_guard lock(mu_);
  return list_count_;
}

void Reflector::SetResourceVersion(std::string rv) {
  if (rv.empty()) return;
  std::lock_guard lock(mu_);
  resource_version_ = std::move(rv);
}

ObjectPtr Reflector::Freeze(nlohmann::json&& object) const {
  if (options_.transform) options_.transform(object);
  return std::make_shared<const nlohmann::json>(std::move(object));
}

std::chrono::milliseconds Reflector::NextBackoff() {
  return backoff_.Next();
}

void Reflector::ListAndReplace() {
  ListOptions options;
  options.limit = options_.page_size;
  options.metadata_only = options_.metadata_only;
  // "" asks for a consistent (quorum) read: the list is never older than anything a
  // previous watch delivered, so a relist never moves the cache back in time. client-go
  // starts from "0" (the watch cache) for apiserver load; our object counts are small
  // enough that correctness wins.
  options.resource_version = "";
  std::string resource_version;
  std::size_t count = 0;
  if (sink_.StreamsLists()) {
    sink_.BeginList();
    resource_version = lw_.ListPages(
        options,
        [&](std::vector<nlohmann::json>& items) {
          std::vector<ObjectPtr> page;
          page.reserve(items.size());
          for (nlohmann::json& item : items) page.push_back(Freeze(std::move(item)));
          count += page.size();
          sink_.ListPage(std::move(page));
        },
        [&] {
          count = 0;
          sink_.BeginList();
        });
    sink_.EndList(resource_version);
  } else {
    ObjectList list = lw_.List(options);
    std::vector<ObjectPtr> objects;
    objects.reserve(list.items.size());
    for (nlohmann::json& item : list.items) objects.push_back(Freeze(std::move(item)));
    count = objects.size();
    resource_version = std::move(list.resource_version);
    sink_.Replace(std::move(objects), resource_version);
  }
  ReflectorLog(lw_).Debug("listed", {{"objects", count}, {"resourceVersion", resource_version}});
  SetResourceVersion(resource_version);
  std::lock_guard lock(mu_);
  ++list_count_;
}

std::string ListerWatcher::ListPages(const ListOptions& options,
                                     const std::function<void(std::vector<nlohmann::json>&)>& on_page,
                                     const std::function<void()>& /*on_restart*/) {
  ObjectList list = List(options);
  on_page(list.items);
  return list.resource_version;
}

void Reflector::HandleEvent(WatchEvent&& event) {
  std::string rv = ObjectResourceVersion(event.object);
  switch (event.type) {
    case WatchEventType::kAdded:
      sink_.Add(Freeze(std::move(event.object)));
      break;
    case WatchEventType::kModified:
      sink_.Update(Freeze(std::move(event.object)));
      break;
    case WatchEventType::kDeleted:
      sink_.Delete(Freeze(std::move(event.object)));
      break;
    case WatchEventType::kBookmark:
      break;
  }
  if (!rv.empty()) batch_resource_version_ = std::move(rv);
}

void Reflector::EndBatch() {
  if (batch_resource_version_.empty()) return;
  sink_.Flush();
  SetResourceVersion(std::exchange(batch_resource_version_, {}));
}

void Reflector::Run(std::stop_token stop) {
  // With a resume point the first attempt is a watch from it; a 410 turns it into a list.
  bool need_list = options_.initial_resource_version.empty();
  if (!need_list) SetResourceVersion(options_.initial_resource_version);
  while (!stop.stop_requested()) {
    std::chrono::milliseconds wait{0};
    if (need_list) {
      try {
        ListAndReplace();
        need_list = false;
      } catch (const ApiError& e) {
        wait = std::max<std::chrono::milliseconds>(NextBackoff(), e.retry_after());
        ReflectorLog(lw_).Warn("list failed", {{"error", e.what()}, {"retryInMs", wait.count()}});
      } catch (const std::exception& e) {
        wait = NextBackoff();
        ReflectorLog(lw_).Warn("list failed", {{"error", e.what()}, {"retryInMs", wait.count()}});
      }
    } else {
      wait = WatchOnce(stop, &need_list);
    }
    if (wait.count() > 0 && !clock_.SleepFor(wait, stop)) return;
  }
}

std::chrono::milliseconds Reflector::WatchOnce(std::stop_token stop, bool* need_list) {
  WatchOptions options;
  options.resource_version = LastSyncResourceVersion();
  options.metadata_only = options_.metadata_only;
  options.allow_bookmarks = true;
  if (options_.min_watch_timeout.count() > 0) {
    std::uniform_int_distribution<int64_t> spread(0, options_.min_watch_timeout.count() - 1);
    options.timeout_seconds = options_.min_watch_timeout.count() + spread(rng_);
  }
  options.on_batch_end = [this] { EndBatch(); };
  batch_resource_version_.clear();  // a burst cut by a failure is watched again
  const auto started = clock_.SteadyNow();
  int64_t events = 0;
  const auto healthy = [&] {
    return events > 0 || clock_.SteadyNow() - started >= options_.min_healthy_watch;
  };
  try {
    lw_.Watch(
        options,
        [&](WatchEvent&& event) {
          ++events;
          HandleEvent(std::move(event));
        },
        stop);
    // A lister-watcher that never ends bursts still makes progress here; when stopping,
    // what was not flushed is watched again by the next run.
    if (!stop.stop_requested()) EndBatch();
    if (stop.stop_requested() || healthy()) {
      backoff_.Reset();
      return {};
    }
    const auto wait = NextBackoff();
    ReflectorLog(lw_).Debug("watch closed at once", {{"retryInMs", wait.count()}});
    return wait;
  } catch (const ApiError& e) {
    if (healthy()) backoff_.Reset();
    if (e.reason() == StatusReason::kGone) {
      ReflectorLog(lw_).Info("resourceVersion too old, relisting",
                 {{"resourceVersion", options.resource_version}, {"error", e.status_message()}});
      *need_list = true;
      return healthy() ? std::chrono::milliseconds{0} : NextBackoff();
    }
    const auto wait = std::max<std::chrono::milliseconds>(NextBackoff(), e.retry_after());
    ReflectorLog(lw_).Warn("watch failed", {{"error", e.what()}, {"retryInMs", wait.count()}});
    return wait;
  } catch (const TransportError& e) {
    if (healthy()) backoff_.Reset();
    const auto wait = NextBackoff();
    ReflectorLog(lw_).Warn("watch broken", {{"error", e.what()}, {"retryInMs", wait.count()}});
    return wait;
  } catch (const std::exception& e) {
    // Most likely the sink rejected an event: its content may now be off, so relist.
    const auto wait = NextBackoff();
    ReflectorLog(lw_).Error("applying a watch event failed, relisting", {{"error", e.what()}, {"retryInMs", wait.count()}});
    *need_list = true;
    return wait;
  }
}

}  // namespace ro::kube

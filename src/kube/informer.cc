#include "ro/kube/informer.h"

#include <nlohmann/json.hpp>

#include <utility>

#include "ro/common/log.h"
#include "ro/kube/client.h"
#include "ro/kube/gvr.h"

namespace ro::kube {

// Applies what the reflector learns to the store and queues the notifications, both
// under the informer's mutex.
class SharedInformer::Sink final : public ReflectorSink {
 public:
  explicit Sink(SharedInformer& informer) : inf_(informer) {}

  void Replace(std::vector<ObjectPtr> objects, const std::string& /*resource_version*/) override {
    std::lock_guard lock(inf_.mu_);
    StoreDiff diff = inf_.store_.Replace(std::move(objects));
    for (ObjectPtr& gone : diff.deleted) {
      inf_.Enqueue({Notification::Kind::kDelete, nullptr, std::move(gone), true, 0, nullptr});
    }
    for (auto& [old_object, new_object] : diff.updated) {
      inf_.Enqueue({Notification::Kind::kUpdate, std::move(old_object), std::move(new_object),
                    false, 0, nullptr});
    }
    for (ObjectPtr& added : diff.added) {
      inf_.Enqueue({Notification::Kind::kAdd, nullptr, std::move(added), false, 0, nullptr});
    }
    if (!inf_.listed_) {
      inf_.listed_ = true;
      inf_.sync_mark_ = inf_.enqueued_;
      inf_.cv_.notify_all();
    }
  }

  void Add(ObjectPtr object) override { Upsert(std::move(object)); }
  void Update(ObjectPtr object) override { Upsert(std::move(object)); }

  void Delete(ObjectPtr object) override {
    std::lock_guard lock(inf_.mu_);
    inf_.store_.Delete(ObjectStoreKey(*object));
    inf_.Enqueue({Notification::Kind::kDelete, nullptr, std::move(object), false, 0, nullptr});
  }

 private:
  void Upsert(ObjectPtr object) {
    std::lock_guard lock(inf_.mu_);
    ObjectPtr old_object = inf_.store_.Add(object);
    if (old_object) {
      inf_.Enqueue({Notification::Kind::kUpdate, std::move(old_object), std::move(object), false,
                    0, nullptr});
    } else {
      inf_.Enqueue({Notification::Kind::kAdd, nullptr, std::move(object), false, 0, nullptr});
    }
  }

  SharedInformer& inf_;
};

SharedInformer::SharedInformer(std::unique_ptr<ListerWatcher> lw, InformerOptions options,
                               Clock& clock)
    : lw_(std::move(lw)),
      options_(std::move(options)),
      clock_(clock),
      sink_(std::make_unique<Sink>(*this)),
      reflector_(std::make_unique<Reflector>(*lw_, *sink_, options_.reflector, clock_)) {}

SharedInformer::~SharedInformer() { Stop(); }

void SharedInformer::Enqueue(Notification n) {
  if (!n.target) n.handler_count = handlers_.size();
  queue_.push_back(std::move(n));
  ++enqueued_;
  cv_.notify_all();
}

void SharedInformer::AddEventHandler(ResourceEventHandler handler) {
  auto shared = std::make_shared<ResourceEventHandler>(std::move(handler));
  std::lock_guard lock(mu_);
  if (listed_) {
    for (ObjectPtr& object : store_.List()) {
      Enqueue({Notification::Kind::kAdd, nullptr, std::move(object), false, 0, shared});
    }
  }
  handlers_.push_back(std::move(shared));
}

void SharedInformer::Start() {
  std::lock_guard lock(mu_);
  if (started_ || stopped_) return;
  started_ = true;
  dispatch_thread_ = std::jthread([this](std::stop_token stop) { DispatchLoop(stop); });
  reflector_thread_ = std::jthread([this](std::stop_token stop) { reflector_->Run(stop); });
}

void SharedInformer::Stop() {
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
  }
  reflector_thread_.request_stop();
  dispatch_thread_.request_stop();
  if (reflector_thread_.joinable()) reflector_thread_.join();
  if (dispatch_thread_.joinable()) dispatch_thread_.join();
}

bool SharedInformer::HasSynced() const {
  std::lock_guard lock(mu_);
  return listed_ && dispatched_ >= sync_mark_;
}

bool SharedInformer::WaitForCacheSync(std::stop_token stop, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  const auto deadline = clock_.SteadyNow() + timeout;
  return clock_.WaitUntil(lock, cv_, deadline, std::move(stop),
                          [&] { return listed_ && dispatched_ >= sync_mark_; });
}

std::string SharedInformer::LastSyncResourceVersion() const {
  return reflector_->LastSyncResourceVersion();
}

int64_t SharedInformer::ListCount() const { return reflector_->ListCount(); }

void SharedInformer::EnqueueResyncLocked() {
  for (ObjectPtr& object : store_.List()) {
    ObjectPtr same = object;
    Enqueue({Notification::Kind::kUpdate, std::move(same), std::move(object), false, 0, nullptr});
  }
}

void SharedInformer::DispatchLoop(std::stop_token stop) {
  const auto period = options_.resync_period;
  auto next_resync =
      period.count() > 0 ? clock_.SteadyNow() + period : Clock::SteadyTime::max();
  std::unique_lock lock(mu_);
  while (!stop.stop_requested()) {
    clock_.WaitUntil(lock, cv_, next_resync, stop, [&] { return !queue_.empty(); });
    if (stop.stop_requested()) return;
    if (period.count() > 0 && clock_.SteadyNow() >= next_resync) {
      if (listed_) EnqueueResyncLocked();
      next_resync = clock_.SteadyNow() + period;
    }
    if (queue_.empty()) continue;

    Notification n = std::move(queue_.front());
    queue_.pop_front();
    const auto first = handlers_.begin();
    const std::vector<std::shared_ptr<ResourceEventHandler>> targets =
        n.target ? std::vector<std::shared_ptr<ResourceEventHandler>>{std::move(n.target)}
                 : std::vector<std::shared_ptr<ResourceEventHandler>>(
                       first, first + static_cast<std::ptrdiff_t>(n.handler_count));
    lock.unlock();
    for (const auto& h : targets) {
      try {
        switch (n.kind) {
          case Notification::Kind::kAdd:
            if (h->on_add) h->on_add(n.object);
            break;
          case Notification::Kind::kUpdate:
            if (h->on_update) h->on_update(n.old_object, n.object);
            break;
          case Notification::Kind::kDelete:
            if (h->on_delete) h->on_delete(n.object, n.final_state_unknown);
            break;
        }
      } catch (const std::exception& e) {
        ro::log::Logger().Error("event handler threw", {{"informer", lw_->Describe()}, {"error", e.what()}});
      }
    }
    lock.lock();
    ++dispatched_;
    cv_.notify_all();
  }
}

std::unique_ptr<SharedInformer> NewSharedInformer(DynamicClient& client,
                                                  const GroupVersionResource& gvr,
                                                  std::string ns, InformerOptions options,
                                                  std::string label_selector,
                                                  std::string field_selector, Clock& clock) {
  return std::make_unique<SharedInformer>(
      NewListerWatcher(client, gvr, std::move(ns), std::move(label_selector),
                       std::move(field_selector)),
      std::move(options), clock);
}

}  // namespace ro::kube

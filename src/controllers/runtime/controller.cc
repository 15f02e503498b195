#include "ro/runtime/controller.h"

#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <utility>

#include <nlohmann/json.hpp>

#include "ro/common/log.h"
#include "ro/common/object_meta.h"
#include "ro/kube/informer.h"
#include "ro/kube/workqueue.h"
#include "ro/runtime/informer_cache.h"
#include "ro/runtime/metrics.h"
#include "ro/runtime/worker.h"

namespace ro::runtime {

using nlohmann::json;

bool GenerationChanged(const json& old_object, const json& new_object) {
  return common::Generation(old_object) != common::Generation(new_object);
}

WatchOptions OnGenerationChange() {
  WatchOptions options;
  options.update_predicate = GenerationChanged;
  return options;
}

WatchOptions MetadataOnly() {
  WatchOptions options;
  options.metadata_only = true;
  return options;
}

namespace {

Request RequestFor(const json& object) {
  const json& metadata = object.at("metadata");
  return Request{kube::ObjectKey{metadata.value("namespace", ""), metadata.value("name", "")}};
}

}  // namespace

Controller::Controller(ControllerOptions options, std::unique_ptr<Reconciler> reconciler,
                       InformerCache& cache, ControllerMetrics& metrics, kube::Clock& clock)
    : options_(std::move(options)),
      reconciler_(std::move(reconciler)),
      cache_(cache),
      metrics_(metrics),
      clock_(clock) {
  if (options_.name.empty()) throw std::invalid_argument("controller name must not be empty");
  if (options_.max_concurrent_reconciles < 1) {
    throw std::invalid_argument("controller " + options_.name +
                                ": max_concurrent_reconciles must be >= 1");
  }
  if (!reconciler_) throw std::invalid_argument("controller " + options_.name + ": no reconciler");
  queue_ = std::make_unique<kube::RateLimitingQueue>(kube::NewDefaultControllerRateLimiter(clock_),
                                                     clock_);
  metrics_.RegisterController(options_.name);
  metrics_.TrackQueue(options_.name, *queue_);
}

Controller::~Controller() { queue_->ShutDown(); }

void Controller::AddHandler(const kube::GroupVersionResource& gvr, const WatchOptions& options,
                            std::function<void(const kube::ObjectPtr&)> enqueue) {
  kube::ResourceEventHandler handler;
  handler.on_add = enqueue;
  handler.on_update = [enqueue, predicate = options.update_predicate](
                          const kube::ObjectPtr& old_object, const kube::ObjectPtr& new_object) {
    if (predicate && !predicate(*old_object, *new_object)) return;
    enqueue(new_object);
  };
  handler.on_delete = [enqueue](const kube::ObjectPtr& object, bool /*final_state_unknown*/) {
    enqueue(object);
  };
  cache_.Get(gvr, options.metadata_only).AddEventHandler(std::move(handler));
}

Controller& Controller::For(const ObjectType& type, WatchOptions options) {
  if (primary_) throw std::logic_error("controller " + options_.name + ": For() called twice");
  primary_ = std::make_unique<ObjectType>(type);
  primary_store_ = &cache_.Get(type.gvr, options.metadata_only).store();
  AddHandler(type.gvr, options,
             [this](const kube::ObjectPtr& object) { Enqueue(RequestFor(*object)); });
  return *this;
}

Controller& Controller::Owns(const ObjectType& type, WatchOptions options) {
  if (!primary_) throw std::logic_error("controller " + options_.name + ": Owns() before For()");
  const std::string owner_group = primary_->gvr.group;
  const std::string owner_kind = primary_->kind;
  AddHandler(type.gvr, options, [this, owner_group, owner_kind](const kube::ObjectPtr& object) {
    const json& metadata = object->at("metadata");
    if (!metadata.contains("ownerReferences") || !metadata["ownerReferences"].is_array()) return;
    for (const json& ref : metadata["ownerReferences"]) {
      if (!ref.value("controller", false) || ref.value("kind", "") != owner_kind) continue;
      std::string group;
      std::string version;
      kube::SplitApiVersion(ref.value("apiVersion", ""), &group, &version);
      if (group != owner_group) continue;
      // Owners live in the owned object's namespace (cross-namespace owners are invalid).
      Enqueue(Request{kube::ObjectKey{metadata.value("namespace", ""), ref.value("name", "")}});
    }
  });
  return *this;
}

Controller& Controller::Watches(const kube::GroupVersionResource& gvr, MapFunc map,
                                WatchOptions options) {
  AddHandler(gvr, options, [this, map = std::move(map)](const kube::ObjectPtr& object) {
    for (const Request& request : map(*object)) Enqueue(request);
  });
  return *this;
}

void Controller::Enqueue(const Request& request) { queue_->Add(request.ToString()); }

const kube::Store& Controller::store() const {
  if (primary_store_ == nullptr) {
    throw std::logic_error("controller " + options_.name + ": store() before For()");
  }
  return *primary_store_;
}

void Controller::Run(std::stop_token stop) {
  ReconcileWorker worker(options_.name, *queue_, *reconciler_, metrics_, clock_);
  const log::Logger log(json{{"controller", options_.name}});
  log.Info("starting workers", {{"workers", options_.max_concurrent_reconciles}});
  {
    std::vector<std::jthread> workers;
    workers.reserve(static_cast<std::size_t>(options_.max_concurrent_reconciles));
    for (int i = 0; i < options_.max_concurrent_reconciles; ++i) {
      workers.emplace_back([&worker, stop] { worker.Run(stop); });
    }
    // Wake on stop: shut the queue down so every Get() returns.
    std::mutex mu;
    std::condition_variable_any cv;
    std::unique_lock lock(mu);
    cv.wait(lock, stop, [] { return false; });
    queue_->ShutDownWithDrain();
  }  // joins the workers
  log.Info("workers stopped");
}

}  // namespace ro::runtime

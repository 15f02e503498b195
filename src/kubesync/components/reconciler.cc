#include "ro/kubesync/reconciler.h"

#include <algorithm>
#include <cstdint>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "log_fields.h"
#include "namespace_metadata.h"
#include "pipeline_io.h"
#include "ro/common/log.h"
#include "ro/common/object_meta.h"
#include "ro/kube/errors.h"
#include "ro/kube/pager.h"
#include "ro/plugins/kubernetes/control_metadata.h"
#include "ro/plugins/kubernetes/processor_decision.h"
#include "ro/kubesync/pipeline_wire.h"
#include "ro/kubesync/retry.h"

namespace ro::kubesync {
namespace {

using nlohmann::json;
namespace k8s = plugins::kubernetes;

constexpr std::string_view kComponent = "reconciler";

// Runs fn(0..n-1) on up to `workers` threads.
void ParallelFor(std::size_t n, std::size_t workers, const std::function<void(std::size_t)>& fn) {
  std::atomic<std::size_t> next{0};
  std::vector<std::jthread> threads;
  for (std::size_t w = 0; w < std::min(n, std::max<std::size_t>(workers, 1)); ++w) {
    threads.emplace_back([&] {
      for (std::size_t i = next++; i < n; i = next++) fn(i);
    });
  }
}

std::string KeyOf(const json& object) {
  const std::string_view ns = common::Namespace(object);
  const std::string_view name = common::Name(object);
  return ns.empty() ? std::string(name) : std::string(ns) + "/" + std::string(name);
}

// One GVR's pass state.
struct GvrPass {
  kube::GroupVersionResource gvr;
  std::string gvr_string;
  bool failed = false;
  // apiVersion and kind of the destination objects (the pruning stubs').
  std::string api_version;
  std::string kind;
  // Managed destination objects by key ("<namespace>/<name>" or "<name>"): the source
  // uid and resourceVersion they record (a pruning delete's stub, built only for the
  // objects pruned: a JSON tree per object would cost ~1 KiB each at 100k), whether the
  // source still has the object and whether it still selects it.
  struct Managed {
    std::string source_uid;
    std::string source_resource_version;
    bool found = false;
    bool keep = false;
  };
  std::map<std::string, Managed> managed;

  // The pruning delete stub of `key`'s entry.
  json Stub(const std::string& key, const Managed& entry) const {
    const std::size_t slash = key.find('/');
    const std::string_view ns = slash == std::string::npos ? std::string_view() : std::string_view(key).substr(0, slash);
    const std::string_view name = slash == std::string::npos ? std::string_view(key) : std::string_view(key).substr(slash + 1);
    return k8s::SourceStub(api_version, kind, ns, name, entry.source_uid, entry.source_resource_version);
  }
};

}  // namespace

Reconciler::Reconciler(const PipelineContext& context, kube::DynamicClient& source, kube::DynamicClient& destination,
                       NatsConnection& nats, StatsRecorder& stats, ReconcilerOptions options)
    : context_(context), source_(source), destination_(destination), nats_(nats), stats_(stats), options_(options) {}

Reconciler::~Reconciler() = default;

std::optional<std::size_t> Reconciler::Prune(DurablePublisher& publisher, std::stop_token stop) {
  const ro::log::Logger logger(json{{"sourceCluster", context_.SourceClusterField()},
                                    {"destinationCluster", context_.DestinationClusterField()}});
  const std::vector<kube::GroupVersionResource> gvrs = context_.config().DistinctGvrs();
  std::vector<GvrPass> passes(gvrs.size());
  for (std::size_t i = 0; i < gvrs.size(); ++i) {
    passes[i].gvr = gvrs[i];
    passes[i].gvr_string = gvrs[i].ToString();
  }
  const auto workers = static_cast<std::size_t>(context_.concurrent_tasks());
  const auto list_failed = [&](GvrPass& pass, std::string_view cluster, const std::exception& e) {
    pass.failed = true;
    if (kube::IsNotFound(e)) {
      logger.Info("list objects not found in cluster", {{"resource", pass.gvr_string}, {"cluster", cluster}});
      return;
    }
    logger.Error("error listing objects in cluster",
                 {{"resource", pass.gvr_string}, {"cluster", cluster}, {"error", e.what()}});
    stats_.RecordError(kComponent, pass.gvr_string, "List");
  };

  // 1. Destination first: what this LiveSynchronization manages.
  kube::ListOptions managed_list;
  managed_list.label_selector = std::string(k8s::kManagedByLabel) + "=" + context_.stamp().managed_by;
  ParallelFor(passes.size(), workers, [&](std::size_t i) {
    GvrPass& pass = passes[i];
    logger.Debug("listing objects in cluster", {{"resource", pass.gvr_string}, {"cluster", "destination"}});
    try {
      kube::ListPages(
          destination_, pass.gvr, "", managed_list,
          [&](std::vector<json>& items) {
            for (const json& item : items) {
              std::optional<k8s::ControlStamp> stamp = k8s::ReadStamp(item);
              if (!stamp || stamp->managed_by != context_.stamp().managed_by) continue;
              if (pass.kind.empty()) {
                pass.api_version = common::StringMember(item, "apiVersion");
                pass.kind = common::StringMember(item, "kind");
              }
              GvrPass::Managed& entry = pass.managed[KeyOf(item)];
              entry.source_uid = std::move(stamp->source_uid);
              entry.source_resource_version = std::move(stamp->source_resource_version);
            }
          },
          [&] { pass.managed.clear(); });
      logger.Debug("listed objects in cluster",
                   {{"resource", pass.gvr_string}, {"cluster", "destination"}, {"count", pass.managed.size()}});
    } catch (const std::exception& e) {
      list_failed(pass, "destination", e);
    }
  });
  if (stop.stop_requested()) return std::nullopt;

  // 2. Source namespaces (their labels decide namespaceSelector), read after step 1.
  std::map<std::string, json, std::less<>> namespace_labels;
  try {
    kube::ListPages(
        source_, {"", "v1", "namespaces"}, "", kube::ListOptions{},
        [&](std::vector<json>& items) {
          for (json& item : items) namespace_labels[std::string(common::Name(item))] = common::Labels(item);
        },
        [&] { namespace_labels.clear(); });
  } catch (const std::exception& e) {
    logger.Error("error listing objects in cluster", {{"resource", "v1/namespaces"}, {"error", e.what()}});
    stats_.RecordError(kComponent, "v1/namespaces", "List");
    return std::nullopt;
  }

  // 3. Source objects: keep the managed ones the configuration still selects.
  ParallelFor(passes.size(), workers, [&](std::size_t i) {
    GvrPass& pass = passes[i];
    if (pass.failed || pass.managed.empty()) return;
    try {
      kube::ListPages(
          source_, pass.gvr, "", kube::ListOptions{},
          [&](std::vector<json>& items) {
            for (const json& item : items) {
              const auto managed = pass.managed.find(KeyOf(item));
              if (managed == pass.managed.end()) continue;
              managed->second.found = true;
              const json* labels = nullptr;
              if (const std::string_view ns = common::Namespace(item); !ns.empty()) {
                const auto it = namespace_labels.find(ns);
                if (it != namespace_labels.end()) labels = &it->second;
              }
              managed->second.keep = k8s::SelectRule(context_.config(), pass.gvr, item, labels) != nullptr;
            }
          },
          [&] {
            for (auto& [key, managed] : pass.managed) managed.keep = managed.found = false;
          });
      logger.Debug("listed objects in cluster", {{"resource", pass.gvr_string}, {"cluster", "source"}});
    } catch (const std::exception& e) {
      list_failed(pass, "source", e);
    }
  });
  if (stop.stop_requested()) return std::nullopt;

  // 4. Pruning deletes.
  std::size_t pruned = 0;
  for (GvrPass& pass : passes) {
    if (pass.failed) continue;
    for (auto& [key, managed] : pass.managed) {
      if (managed.keep) continue;
      json stub = pass.Stub(key, managed);
      logger.Info("pruning object from destination",
                  {{"event", fields::Event("delete")},
                   {"sourceObject", fields::ObjectRef(pass.gvr, stub)},
                   {"reason", managed.found ? "no longer selected" : "source absent"}});
      Envelope envelope;
      envelope.type = EventType::kDelete;
      envelope.gvr = pass.gvr;
      envelope.observed_at = std::chrono::system_clock::now();
      envelope.object = std::move(stub);
      envelope.pruned = true;
      // Absent from the source (listed after the destination): that incarnation is gone
      // for good, and its deletion event may still be on its way behind older upserts
      // (a listener catching up): the synchronizer keeps a tombstone so none of them
      // re-creates the copy in between. A "no longer selected" prune keeps none.
      envelope.source_deleted = !managed.found;
      envelope.config_generation = context_.generation();
      publisher.Publish(context_.names().events_subject(), Encode(envelope));
      stats_.RecordEvent(kComponent, pass.gvr_string, "delete", common::Namespace(envelope.object));
      ++pruned;
    }
  }
  if (!publisher.Commit(stop)) return std::nullopt;
  logger.Debug("prune pass finished", {{"pruned", pruned}});
  return pruned;
}

void Reconciler::Run(std::stop_token stop) {
  using Steady = std::chrono::steady_clock;
  std::mutex mu;
  std::condition_variable_any cv;
  // Guarded by mu: when a requested pass is due (Steady::time_point::max(): none).
  Steady::time_point requested_at = Steady::now();  // one pass at start-up

  std::unique_ptr<CoreSubscription> subscription;
  common::Backoff backoff(std::chrono::milliseconds{200}, kMaxRetryDelay);
  if (!RetryUntilStopped(
          stop, backoff,
          [&] {
            subscription = nats_.Subscribe(context_.names().control_subject(), [&](std::string_view, std::string_view data) {
              if (data != kReconcileNow) return;
              std::lock_guard lock(mu);
              // The first request of a burst opens the debounce window; later ones join it.
              if (requested_at == Steady::time_point::max()) requested_at = Steady::now() + options_.debounce;
              cv.notify_all();
            });
          },
          [](const std::exception& e, std::chrono::milliseconds wait) {
            ro::log::Logger().Error("error subscribing to control messages", {{"error", e.what()}, {"retryInMs", wait.count()}});
          })) {
    return;
  }
  ready_ = true;

  DurablePublisher publisher(nats_, ro::log::Logger(), stats_, kComponent);
  const auto period = std::chrono::duration_cast<Steady::duration>(context_.config().replication.resync_period);
  Steady::time_point periodic_at = Steady::now() + period;
  std::uint64_t reconnects = nats_.reconnects();
  while (true) {
    {
      std::unique_lock lock(mu);
      const Steady::time_point seen = requested_at;
      // Wakes at the earlier deadline, or when a request moved it (then recomputed), or
      // to look for a reconnect.
      cv.wait_until(lock, stop, std::min({requested_at, periodic_at, Steady::now() + options_.reconnect_check}),
                    [&] { return requested_at != seen; });
      if (stop.stop_requested()) break;
      const auto now = Steady::now();
      if (const std::uint64_t current = nats_.reconnects(); current != reconnects) {
        reconnects = current;
        ro::log::Logger().Info("nats connection re-established: reconciling (a request may have been missed)");
        if (requested_at == Steady::time_point::max()) requested_at = now + options_.debounce;
      }
      if (now < requested_at && now < periodic_at) continue;
      requested_at = Steady::time_point::max();
    }
    const std::optional<std::size_t> pruned = Prune(publisher, stop);
    if (stop.stop_requested()) break;
    periodic_at = Steady::now() + period;
    if (!pruned) {
      std::lock_guard lock(mu);
      requested_at = std::min(requested_at, Steady::now() + options_.retry_after_failure);
    }
  }
  ready_ = false;
  subscription.reset();  // waits for a callback in progress
}

}  // namespace ro::kubesync

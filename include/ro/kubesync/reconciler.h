// The reconciler (docs/kubesync.md, "Components"; resynchronization document,
// "Substractive reconciliation"): every resyncPeriod, once at start-up, and shortly after
// a "reconcile-now" control message, a prune pass per configured GVR:
//   1. list the destination's objects managed by this LiveSynchronization
//      (label managed-by=<id>), FIRST, so that an object created meanwhile cannot be
//      pruned by mistake;
//   2. list the source's namespaces and objects;
//   3. for each managed destination object whose source object is absent, or present but
//      no longer selected (plugins::kubernetes::SelectRule, the processor's own rule),
//      publish a pruning delete (pruned: true) on ks.<id>.events carrying the
//      destination's recorded source uid/resourceVersion (SourceStubFromStamped).
// The deletes then flow like any other (processor: bucket delete; synchronizer: delete
// with preconditions, never an object re-created with a new uid). A GVR whose lists fail
// is left alone for this pass (pruning from partial data would delete live objects).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <stop_token>

#include "ro/kube/client.h"
#include "ro/kubesync/pipeline_context.h"
#include "ro/kubesync/jetstream.h"
#include "ro/kubesync/retry.h"
#include "ro/kubesync/stats.h"

namespace ro::kubesync {

class DurablePublisher;

struct ReconcilerOptions {
  // "reconcile-now" requests arriving within this window of the first one are served by
  // one pass (a relist sends one request per GVR; a namespace relabel one more).
  std::chrono::milliseconds debounce{1000};
  // Wait before retrying a pass that could not complete (apiserver or NATS down).
  std::chrono::milliseconds retry_after_failure{kMaxRetryDelay};
  // How often the NATS connection is looked at for a reconnect. "reconcile-now" is core
  // NATS (at most once): a request sent while this connection was down is lost, so a
  // reconnect is answered with a pass of its own (a restarted nats-server without its
  // store makes the listener relist and ask for one, possibly before this connection is
  // back).
  std::chrono::milliseconds reconnect_check{1000};
};

// Run() on one thread; Ready() from any thread.
class Reconciler final : public Component {
 public:
  // Every reference must outlive the reconciler.
  Reconciler(const PipelineContext& context, kube::DynamicClient& source, kube::DynamicClient& destination,
             NatsConnection& nats, StatsRecorder& stats, ReconcilerOptions options = {});
  ~Reconciler() override;

  void Run(std::stop_token stop) override;
  // True once subscribed to the control subject.
  bool Ready() const override { return ready_.load(); }

 private:
  // One prune pass (steps above) publishing through `publisher`. Returns the number of
  // pruning deletes stored by JetStream, or nullopt when the pass could not complete
  // (a list of the namespaces failed, or `stop` came first). Per-GVR list failures are
  // logged and counted and leave that GVR alone.
  std::optional<std::size_t> Prune(DurablePublisher& publisher, std::stop_token stop);

  const PipelineContext& context_;
  kube::DynamicClient& source_;
  kube::DynamicClient& destination_;
  NatsConnection& nats_;
  StatsRecorder& stats_;
  const ReconcilerOptions options_;
  std::atomic<bool> ready_{false};
};

}  // namespace ro::kubesync

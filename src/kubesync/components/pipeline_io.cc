#include "pipeline_io.h"

#include <utility>

#include "ro/kube/errors.h"
#include "ro/kubesync/component.h"

namespace ro::kubesync {
namespace {

// How long one Flush waits for the acks of a batch before the stragglers count as
// failed and are republished. Well above a JetStream round trip (< 1 ms on a LAN, a few
// ms under load) and above PublisherOptions::ack_timeout (5 s), so a Flush normally ends
// because every ack arrived or timed out individually.
constexpr std::chrono::seconds kFlushDeadline{10};

}  // namespace

DurablePublisher::DurablePublisher(NatsConnection& nats, ro::log::Logger logger, PublisherOptions options)
    : publisher_(nats.NewPublisher(options)), logger_(std::move(logger)) {}

void DurablePublisher::Publish(std::string_view subject, std::string_view data) {
  ++pending_;
  try {
    publisher_->PublishAsync(subject, data);
  } catch (const NatsError& e) {
    retry_.push_back(PublishFailure{std::string(subject), std::string(data), e.what(), e.status(), e.js_error_code()});
  }
}

bool DurablePublisher::Commit(std::stop_token stop) {
  // Reconnects take about NatsOptions::reconnect_wait (1 s); start below it, cap at the
  // reflector's 30 s.
  Backoff backoff(std::chrono::milliseconds{200}, std::chrono::seconds{30});
  while (true) {
    std::vector<PublishFailure> again;
    for (PublishFailure& failure : retry_) {
      try {
        publisher_->PublishAsync(failure.subject, failure.data);
      } catch (const NatsError& e) {
        failure.error = e.what();
        again.push_back(std::move(failure));
      }
    }
    retry_ = std::move(again);
    std::string error;
    try {
      publisher_->Flush(std::chrono::steady_clock::now() + kFlushDeadline);
    } catch (const PublishError& e) {
      for (const PublishFailure& failure : e.failures()) retry_.push_back(failure);
      error = e.what();
    } catch (const NatsError& e) {
      error = e.what();
    }
    if (retry_.empty() && error.empty()) {
      pending_ = 0;
      return true;
    }
    if (error.empty()) error = retry_.front().error;
    const auto wait = backoff.Next();
    logger_.Error("error publishing event", {{"error", error},
                                            {"unconfirmed", retry_.size()},
                                            {"retryInMs", wait.count()}});
    if (!SleepFor(wait, stop)) {
      retry_.clear();
      pending_ = 0;
      return false;
    }
  }
}

std::string ListPages(kube::DynamicClient& client, const kube::GroupVersionResource& gvr, std::string_view ns,
                      std::string_view label_selector, const std::function<void(std::vector<nlohmann::json>&)>& on_page,
                      const std::function<void()>& on_restart, std::int64_t page_size) {
  bool restarted = false;
  while (true) {
    kube::ListOptions options;
    options.label_selector = std::string(label_selector);
    options.limit = page_size;
    std::string list_rv;
    try {
      do {
        kube::ObjectList page = client.List(gvr, ns, options);
        if (list_rv.empty()) list_rv = page.resource_version;
        on_page(page.items);
        options.continue_token = std::move(page.continue_token);
      } while (!options.continue_token.empty());
      return list_rv;
    } catch (const kube::ApiError& e) {
      // A continue token outlived etcd's compaction window: start over, once.
      if (e.reason() != kube::StatusReason::kGone || options.continue_token.empty() || restarted) throw;
      restarted = true;
      if (on_restart) on_restart();
    }
  }
}

}  // namespace ro::kubesync

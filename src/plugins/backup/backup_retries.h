// The Backup plugins' one retry loop (private to src/plugins/backup/): the one retry
// classification (kube::IsRetryable, S3Error::retryable, ZooKeeperError::retryable) and
// the one backoff (common::Backoff), and the BackupError reasons a failure maps to.
#pragma once

#include <exception>
#include <stop_token>
#include <string>

#include "ro/common/backoff.h"
#include "ro/kube/clock.h"
#include "ro/kube/errors.h"
#include "ro/plugins/backup/kubernetes_backup.h"
#include "ro/plugins/s3_client.h"
#include "ro/plugins/zookeeper_client.h"

namespace ro::plugins::backup::internal {

// Where an operation goes: the reasons of BackupError differ.
enum class Side { kSource, kBucket };

// Calls `op` until it succeeds, retrying what is transient up to options.max_attempts
// times (options: max_attempts, initial_backoff, max_backoff); then throws BackupError
// with `what` and the reason: BucketUnavailable / BucketError (kBucket),
// SourceForbidden (401/403, ZooKeeper NoAuth / AuthFailed), SourceUnavailable /
// SourceError. A BackupError thrown by `op` passes through.
template <typename Op, typename Options>
auto WithRetries(Op op, const Options& options, Side side, const std::string& what, std::stop_token stop)
    -> decltype(op()) {
  common::Backoff backoff(options.initial_backoff, options.max_backoff);
  for (int attempt = 1;; ++attempt) {
    try {
      return op();
    } catch (const BackupError&) {
      throw;
    } catch (const std::exception& e) {
      bool retryable = kube::IsRetryable(e);
      bool forbidden = kube::IsForbidden(e) || kube::IsUnauthorized(e);
      if (const auto* s3 = dynamic_cast<const S3Error*>(&e)) retryable = s3->retryable();
      if (const auto* zk = dynamic_cast<const ZooKeeperError*>(&e)) {
        retryable = zk->retryable();
        forbidden = zk->code() == ZooKeeperError::Code::kNoAuth || zk->code() == ZooKeeperError::Code::kAuthFailed;
      }
      std::string why;
      if (side == Side::kBucket) {
        why = retryable ? "BucketUnavailable" : "BucketError";
      } else if (forbidden) {
        why = "SourceForbidden";
      } else {
        why = retryable ? "SourceUnavailable" : "SourceError";
      }
      if (!retryable || attempt >= options.max_attempts) {
        throw BackupError(why, what + ": " + e.what(), retryable);
      }
      if (!kube::DefaultClock().SleepFor(backoff.Next(), stop)) {
        throw BackupError(why, what + ": interrupted by shutdown", true);
      }
    }
  }
}

}  // namespace ro::plugins::backup::internal

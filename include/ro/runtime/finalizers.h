// Finalizers (metadata.finalizers) on unstructured objects, and their writes with
// optimistic concurrency: the Update carries the resourceVersion the caller read, so a
// concurrent change makes it fail with Conflict instead of overwriting that change.
// https://kubernetes.io/docs/concepts/overview/working-with-objects/finalizers/
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <string_view>

namespace ro::kube {
class DynamicClient;
struct GroupVersionResource;
}  // namespace ro::kube

namespace ro::runtime {

// Pure helpers on an object. Add/Remove return true when they changed `object`.
bool HasFinalizer(const nlohmann::json& object, std::string_view finalizer);
bool AddFinalizer(nlohmann::json& object, std::string_view finalizer);
bool RemoveFinalizer(nlohmann::json& object, std::string_view finalizer);

// What a conditional write did.
enum class WriteOutcome {
  kUnchanged,  // nothing to write: no request was sent
  kWritten,    // the server accepted the write
  kConflict,   // the object changed since it was read (409): re-read and retry
};

// Makes sure `object` (as read from the cache) carries `finalizer`: when it does not,
// Updates a copy with the finalizer added, preconditioned on its resourceVersion.
// Returns kConflict on 409 (the caller requeues). Throws ApiError (other statuses) /
// TransportError.
WriteOutcome EnsureFinalizer(kube::DynamicClient& client, const kube::GroupVersionResource& gvr,
                             const nlohmann::json& object, std::string_view finalizer);

// The reverse of EnsureFinalizer (typically once cleanup for a deleted object is done).
// Removing a finalizer from an object that is already gone (404) counts as kWritten.
WriteOutcome DropFinalizer(kube::DynamicClient& client, const kube::GroupVersionResource& gvr,
                           const nlohmann::json& object, std::string_view finalizer);

}  // namespace ro::runtime

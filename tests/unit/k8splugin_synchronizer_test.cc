// DecideSync: create / update / delete / skip against the destination's current state,
// following docs/kubesync.md "Ordering and exactly-what-we-want semantics".
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>

#include "ro/plugins/kubernetes/synchronizer_decision.h"

namespace ro::plugins::kubernetes {
namespace {

using nlohmann::json;

const StampInfo kStamp = MakeStampInfo("dr-config", "pre", "dr-config", "source");
const StampInfo kOther = MakeStampInfo("dr-config", "other", "dr-config", "source");

json Stamped(const StampInfo& info, const std::string& uid, const std::string& rv,
             const std::string& fingerprint = "") {
  json object = json::parse(R"({"apiVersion": "apps/v1", "kind": "Deployment",
      "metadata": {"name": "web", "namespace": "n"}, "spec": {"replicas": 0}})");
  Stamp(object, info, SourceVersion{uid, rv, fingerprint});
  return object;
}

// A destination object as the metadata cache holds it.
json Current(const StampInfo& info, const std::string& uid, const std::string& rv,
             const std::string& fingerprint = "") {
  json object = Stamped(info, uid, rv, fingerprint);
  object["metadata"]["uid"] = "dest-uid";
  object["metadata"]["resourceVersion"] = "555";
  return object;
}

std::string Reason(EventType type, const json& desired, const json* current) {
  return std::string(DecideSync(type, desired, current, kStamp.managed_by).reason);
}

TEST(DecideSync, UpsertOfAnAbsentObjectCreatesIt) {
  const SyncDecision d = DecideSync(EventType::kUpsert, Stamped(kStamp, "u", "10"), nullptr, kStamp.managed_by);
  EXPECT_EQ(d.action, SyncAction::kCreate);
  EXPECT_EQ(d.reason, "absent");
}

TEST(DecideSync, NewerUpsertUpdatesCarryingTheDestinationResourceVersion) {
  const json current = Current(kStamp, "u", "10");
  const SyncDecision d = DecideSync(EventType::kUpsert, Stamped(kStamp, "u", "11"), &current, kStamp.managed_by);
  EXPECT_EQ(d.action, SyncAction::kUpdate);
  EXPECT_EQ(d.reason, "newer");
  EXPECT_EQ(d.resource_version, "555");
}

TEST(DecideSync, StaleAndDuplicateUpsertsAreSkipped) {
  const json current = Current(kStamp, "u", "10");
  EXPECT_EQ(Reason(EventType::kUpsert, Stamped(kStamp, "u", "9"), &current), "stale");
  EXPECT_EQ(Reason(EventType::kUpsert, Stamped(kStamp, "u", "10"), &current), "duplicate");
  EXPECT_EQ(DecideSync(EventType::kUpsert, Stamped(kStamp, "u", "10"), &current, kStamp.managed_by).action,
            SyncAction::kSkip);
  // Numeric, not textual, order: "9" < "10".
  const json current9 = Current(kStamp, "u", "9");
  EXPECT_EQ(Reason(EventType::kUpsert, Stamped(kStamp, "u", "10"), &current9), "newer");
}

TEST(DecideSync, AChangedTransformationIsReappliedAtTheSameResourceVersion) {
  const json current = Current(kStamp, "u", "10", "aaaaaaaaaaaaaaaa");
  const SyncDecision d =
      DecideSync(EventType::kUpsert, Stamped(kStamp, "u", "10", "bbbbbbbbbbbbbbbb"), &current, kStamp.managed_by);
  EXPECT_EQ(d.action, SyncAction::kUpdate);
  EXPECT_EQ(d.reason, "transformation-changed");
  EXPECT_EQ(d.resource_version, "555");
  // Never regresses to an older source state, whatever the fingerprint.
  EXPECT_EQ(Reason(EventType::kUpsert, Stamped(kStamp, "u", "9", "bbbbbbbbbbbbbbbb"), &current), "stale");
}

TEST(DecideSync, UnmanagedObjectsAreNeverTouched) {
  const json unmanaged = json::parse(R"({"metadata": {"name": "web", "namespace": "n",
                                          "uid": "d", "resourceVersion": "1"}})");
  EXPECT_EQ(Reason(EventType::kUpsert, Stamped(kStamp, "u", "10"), &unmanaged), "unmanaged");
  EXPECT_EQ(Reason(EventType::kDelete, Stamped(kStamp, "u", "10"), &unmanaged), "unmanaged");
  const json others = Current(kOther, "u", "1");
  EXPECT_EQ(Reason(EventType::kUpsert, Stamped(kStamp, "u", "10"), &others), "managed-by-other");
  EXPECT_EQ(Reason(EventType::kDelete, Stamped(kStamp, "u", "10"), &others), "managed-by-other");
}

TEST(DecideSync, AdoptExistingTakesOverOnlyUnmanagedObjectsOnUpserts) {
  json unmanaged = json::parse(R"({"metadata": {"name": "web", "namespace": "n",
                                    "uid": "d", "resourceVersion": "7"}})");
  const SyncDecision adopt =
      DecideSync(EventType::kUpsert, Stamped(kStamp, "u", "10"), &unmanaged, kStamp.managed_by, true);
  EXPECT_EQ(adopt.action, SyncAction::kUpdate);
  EXPECT_EQ(adopt.reason, "adopted");
  EXPECT_EQ(adopt.resource_version, "7");
  // Never a delete of an object we do not manage, nor another LiveSynchronization's object.
  EXPECT_EQ(DecideSync(EventType::kDelete, Stamped(kStamp, "u", "10"), &unmanaged, kStamp.managed_by, true).reason,
            "unmanaged");
  const json others = Current(kOther, "u", "1");
  EXPECT_EQ(DecideSync(EventType::kUpsert, Stamped(kStamp, "u", "10"), &others, kStamp.managed_by, true).reason,
            "managed-by-other");
  // Once adopted it is ours: the usual resourceVersion rules apply.
  const json adopted = Current(kStamp, "u", "10");
  EXPECT_EQ(DecideSync(EventType::kUpsert, Stamped(kStamp, "u", "10"), &adopted, kStamp.managed_by, true).reason,
            "duplicate");
  // Being deleted: wait until it is gone, then create.
  unmanaged["metadata"]["deletionTimestamp"] = "2026-12-06T10:00:00Z";
  EXPECT_EQ(DecideSync(EventType::kUpsert, Stamped(kStamp, "u", "10"), &unmanaged, kStamp.managed_by, true).action,
            SyncAction::kRetryLater);
}

TEST(DecideSync, AnUnreadableRecordedVersionIsRepairedByAnUpdate) {
  json current = Current(kStamp, "u", "not-a-number");
  EXPECT_EQ(Reason(EventType::kUpsert, Stamped(kStamp, "u", "3"), &current), "unrecorded-version");
  current["metadata"]["annotations"].erase("kubesync.astronetes.io/source-resource-version");
  EXPECT_EQ(DecideSync(EventType::kUpsert, Stamped(kStamp, "u", "3"), &current, kStamp.managed_by).action,
            SyncAction::kUpdate);
}

TEST(DecideSync, UpsertOntoATerminatingObjectIsRetriedLater) {
  json current = Current(kStamp, "u", "10");
  current["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z";
  const SyncDecision d = DecideSync(EventType::kUpsert, Stamped(kStamp, "u", "11"), &current, kStamp.managed_by);
  EXPECT_EQ(d.action, SyncAction::kRetryLater);
  EXPECT_EQ(d.reason, "terminating");
}

TEST(DecideSync, DeleteOfTheSameSourceObjectDeletesWithPreconditions) {
  const json current = Current(kStamp, "u", "10");
  const SyncDecision d = DecideSync(EventType::kDelete, Stamped(kStamp, "u", "12"), &current, kStamp.managed_by);
  EXPECT_EQ(d.action, SyncAction::kDelete);
  EXPECT_EQ(d.reason, "source-deleted");
  EXPECT_EQ(d.uid, "dest-uid");
  EXPECT_EQ(d.resource_version, "555");
  // Equal recorded version (a pruning delete carries the recorded one) also deletes.
  EXPECT_EQ(Reason(EventType::kDelete, Stamped(kStamp, "u", "10"), &current), "source-deleted");
}

TEST(DecideSync, DeleteForARecreatedObjectWithANewUidIsSkipped) {
  const json current = Current(kStamp, "new-uid", "20");
  EXPECT_EQ(Reason(EventType::kDelete, Stamped(kStamp, "old-uid", "30"), &current), "uid-mismatch");
}

TEST(DecideSync, DeleteOlderThanTheAppliedStateIsSkipped) {
  const json current = Current(kStamp, "u", "20");
  EXPECT_EQ(Reason(EventType::kDelete, Stamped(kStamp, "u", "15"), &current), "stale");
}

TEST(DecideSync, DeleteOfAnAbsentOrTerminatingObjectIsSkipped) {
  EXPECT_EQ(Reason(EventType::kDelete, Stamped(kStamp, "u", "15"), nullptr), "absent");
  json current = Current(kStamp, "u", "10");
  current["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z";
  EXPECT_EQ(Reason(EventType::kDelete, Stamped(kStamp, "u", "15"), &current), "already-terminating");
}

TEST(DecideSync, DeleteWithAnUnreadableRecordedVersionStillDeletes) {
  const json current = Current(kStamp, "u", "");
  EXPECT_EQ(Reason(EventType::kDelete, Stamped(kStamp, "u", "15"), &current), "source-deleted");
}

TEST(DecideSync, MalformedEventsAreSkipped) {
  const json current = Current(kStamp, "u", "10");
  EXPECT_EQ(Reason(EventType::kUpsert, Stamped(kStamp, "u", "abc"), &current), "invalid-event");
  EXPECT_EQ(Reason(EventType::kUpsert, json::parse(R"({"metadata": {"name": "x"}})"), nullptr), "invalid-event");
  EXPECT_EQ(Reason(EventType::kDelete, Stamped(kStamp, "", "11"), &current), "invalid-event");
}

// docs/kubesync.md "Tombstones": a deletion at source resourceVersion 70 of uid "u".
TEST(TombstoneBlocks, TheDeletedObjectNeverComesBackWhateverItsVersion) {
  const Tombstone t{"u", "70"};
  EXPECT_TRUE(TombstoneBlocks(t, Stamped(kStamp, "u", "60")));  // redelivered older upsert
  EXPECT_TRUE(TombstoneBlocks(t, Stamped(kStamp, "u", "70")));
  // Cannot happen in one cluster, but the uid alone settles it.
  EXPECT_TRUE(TombstoneBlocks(t, Stamped(kStamp, "u", "80")));
}

TEST(TombstoneBlocks, AnOlderIncarnationOfTheSameNameIsBlocked) {
  EXPECT_TRUE(TombstoneBlocks(Tombstone{"u", "70"}, Stamped(kStamp, "u-older", "40")));
}

TEST(TombstoneBlocks, ASourceObjectRecreatedAfterTheDeletionPasses) {
  EXPECT_FALSE(TombstoneBlocks(Tombstone{"u", "70"}, Stamped(kStamp, "u-new", "71")));
  EXPECT_FALSE(TombstoneBlocks(Tombstone{"u", "9"}, Stamped(kStamp, "u-new", "10")));  // numeric, not text order
}

TEST(TombstoneBlocks, AnUnknownDeletionVersionBlocksOnlyTheUid) {
  EXPECT_TRUE(TombstoneBlocks(Tombstone{"u", ""}, Stamped(kStamp, "u", "5")));
  EXPECT_FALSE(TombstoneBlocks(Tombstone{"u", ""}, Stamped(kStamp, "v", "5")));
  EXPECT_FALSE(TombstoneBlocks(Tombstone{"u", "70"}, json::parse(R"({"metadata": {"name": "x"}})")));
}

// Deletions handled out of order (a redelivered one, another replica): the later
// deletion's tombstone stays, since it blocks whatever the earlier one would.
TEST(KeepsTombstone, ALaterDeletionIsNeverReplacedByAnEarlierOne) {
  const Tombstone later{"u-new", "72"};
  const Tombstone earlier{"u-old", "70"};
  EXPECT_TRUE(KeepsTombstone(later, earlier));
  EXPECT_FALSE(KeepsTombstone(earlier, later));
  EXPECT_TRUE(KeepsTombstone(later, later));  // the same deletion again: nothing to write
  EXPECT_TRUE(KeepsTombstone(Tombstone{"u", "100"}, Tombstone{"v", "99"}));  // numeric, not text order
  // What the kept one blocks includes what the earlier one would.
  EXPECT_TRUE(TombstoneBlocks(later, Stamped(kStamp, "u-old", "69")));
  EXPECT_TRUE(TombstoneBlocks(later, Stamped(kStamp, "u-new", "71")));
}

TEST(KeepsTombstone, AnUnreadableVersionIsReplaced) {
  EXPECT_FALSE(KeepsTombstone(Tombstone{"u", ""}, Tombstone{"v", "5"}));
  EXPECT_FALSE(KeepsTombstone(Tombstone{"u", "5"}, Tombstone{"v", ""}));
}

}  // namespace
}  // namespace ro::plugins::kubernetes

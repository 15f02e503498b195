// Control label/annotations, managed-by ids, resourceVersion ordering and bucket paths.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>

#include "ro/kube/label_selector.h"
#include "ro/plugins/kubernetes/bucket_object.h"
#include "ro/plugins/kubernetes/control_metadata.h"
#include "ro/plugins/kubernetes/resource_version.h"

namespace ro::plugins::kubernetes {
namespace {

using nlohmann::json;

TEST(LiveSyncId, JoinsNamespaceAndNameWithSubjectSafeCharacters) {
  EXPECT_EQ(LiveSyncId("dr-config", "pre"), "dr-config.pre");
  EXPECT_EQ(LiveSyncId("dr", "app.v2"), "dr.app_v2");
}

TEST(ManagedById, IsTheIdWhenItIsAValidLabelValue) {
  EXPECT_EQ(ManagedById("dr-config", "pre"), "dr-config.pre");
  EXPECT_EQ(ManagedById("dr", "app.v2"), "dr.app_v2");
}

TEST(ManagedById, LongIdsAreHashedToAStableValidLabelValue) {
  const std::string ns(40, 'n');
  const std::string name = "live-synchronization-with-a-long-name";
  const std::string id = ManagedById(ns, name);
  EXPECT_LE(id.size(), 63u);
  EXPECT_EQ(kube::ValidateLabelValue(id), "");
  EXPECT_EQ(id, ManagedById(ns, name));  // stable
  EXPECT_EQ(id.substr(0, 10), ns.substr(0, 10));
  EXPECT_NE(id, ManagedById(ns, name + "2"));
  // 63 characters exactly still fits unhashed.
  const std::string fits = ManagedById(std::string(31, 'a'), std::string(31, 'b'));
  EXPECT_EQ(fits, std::string(31, 'a') + "." + std::string(31, 'b'));
}

TEST(Stamp, AddsTheManagedByLabelAndControlAnnotations) {
  json object = json::parse(R"({"metadata": {"name": "web", "labels": {"app": "web"}}})");
  const StampInfo info = MakeStampInfo("dr-config", "pre", "dr-config", "source");
  Stamp(object, info, SourceVersion{"uid-1", "936", "0123456789abcdef"});
  EXPECT_EQ(object["metadata"]["labels"], json::parse(R"({"app": "web",
      "kubesync.astronetes.io/managed-by": "dr-config.pre"})"));
  EXPECT_EQ(object["metadata"]["annotations"], json::parse(R"({
      "kubesync.astronetes.io/live-synchronization": "dr-config/pre",
      "kubesync.astronetes.io/source-cluster": "dr-config/source",
      "kubesync.astronetes.io/source-uid": "uid-1",
      "kubesync.astronetes.io/source-resource-version": "936",
      "kubesync.astronetes.io/transformation": "0123456789abcdef"})"));
}

TEST(Stamp, OverwritesAnEarlierStampAndDropsAStaleFingerprint) {
  const StampInfo info = MakeStampInfo("ns", "ls", "ns", "src");
  json object = json::object();
  Stamp(object, info, SourceVersion{"u", "1", "aaaa"});
  Stamp(object, info, SourceVersion{"u", "2", ""});
  const auto stamp = ReadStamp(object);
  ASSERT_TRUE(stamp.has_value());
  EXPECT_EQ(stamp->source_resource_version, "2");
  EXPECT_EQ(stamp->transformation_fingerprint, "");
  EXPECT_FALSE(object["metadata"]["annotations"].contains("kubesync.astronetes.io/transformation"));
}

TEST(ReadStamp, ReadsBackWhatStampWrote) {
  json object = json::parse(R"({"metadata": {"name": "web"}})");
  Stamp(object, MakeStampInfo("dr-config", "pre", "dr-config", "source"), SourceVersion{"u-9", "61949", "ff"});
  const auto stamp = ReadStamp(object);
  ASSERT_TRUE(stamp.has_value());
  EXPECT_EQ(stamp->managed_by, "dr-config.pre");
  EXPECT_EQ(stamp->live_synchronization, "dr-config/pre");
  EXPECT_EQ(stamp->source_cluster, "dr-config/source");
  EXPECT_EQ(stamp->source_uid, "u-9");
  EXPECT_EQ(stamp->source_resource_version, "61949");
  EXPECT_EQ(stamp->transformation_fingerprint, "ff");
}

TEST(ReadStamp, ObjectsWithoutTheManagedByLabelAreNotStamped) {
  EXPECT_FALSE(ReadStamp(json::parse(R"({"metadata": {"name": "x"}})")).has_value());
  EXPECT_FALSE(ReadStamp(json::parse(R"({"metadata": {"labels": {"kubesync.astronetes.io/managed-by": 1}}})"))
                   .has_value());
  EXPECT_FALSE(ReadStamp(json("x")).has_value());
  const auto partial =
      ReadStamp(json::parse(R"({"metadata": {"labels": {"kubesync.astronetes.io/managed-by": "a.b"}}})"));
  ASSERT_TRUE(partial.has_value());
  EXPECT_EQ(partial->source_uid, "");
}

TEST(SourceStubFromStamped, CarriesTheRecordedSourceIdentity) {
  json destination = json::parse(R"({"apiVersion": "apps/v1", "kind": "Deployment",
      "metadata": {"name": "web", "namespace": "n", "uid": "dest-uid", "resourceVersion": "5"},
      "spec": {"replicas": 0}})");
  Stamp(destination, MakeStampInfo("ns", "ls", "ns", "src"), SourceVersion{"src-uid", "77", ""});
  EXPECT_EQ(SourceStubFromStamped(destination), json::parse(R"({"apiVersion": "apps/v1",
      "kind": "Deployment", "metadata": {"name": "web", "namespace": "n", "uid": "src-uid",
      "resourceVersion": "77"}})"));
}

TEST(CompareResourceVersions, ComparesAsUnsignedIntegers) {
  EXPECT_EQ(CompareResourceVersions("9", "10"), std::strong_ordering::less);
  EXPECT_EQ(CompareResourceVersions("100", "99"), std::strong_ordering::greater);
  EXPECT_EQ(CompareResourceVersions("42", "42"), std::strong_ordering::equal);
  EXPECT_EQ(CompareResourceVersions("007", "7"), std::strong_ordering::equal);
  EXPECT_EQ(CompareResourceVersions("0", "000"), std::strong_ordering::equal);
  // Beyond 64 bits.
  EXPECT_EQ(CompareResourceVersions("99999999999999999999999", "99999999999999999999998"),
            std::strong_ordering::greater);
}

TEST(CompareResourceVersions, NonNumericValuesThrow) {
  EXPECT_THROW(CompareResourceVersions("", "1"), ResourceVersionError);
  EXPECT_THROW(CompareResourceVersions("1", "abc"), ResourceVersionError);
  EXPECT_THROW(CompareResourceVersions("-1", "1"), ResourceVersionError);
  EXPECT_THROW(CompareResourceVersions("12a", "1"), ResourceVersionError);
  EXPECT_TRUE(IsValidResourceVersion("0"));
  EXPECT_FALSE(IsValidResourceVersion(" 1"));
}

TEST(BucketObjectPath, FollowsTheManualsLogExample) {
  EXPECT_EQ(BucketObjectPath("dr-config", "pre", {"apps", "v1", "deployments"}, "test-namespace-one",
                             "helloworld"),
            "dr-config/pre/apps-v1-deployments/test-namespace-one.helloworld");
  EXPECT_EQ(BucketObjectPath("dr", "ls", {"", "v1", "configmaps"}, "n", "c"), "dr/ls/v1-configmaps/n.c");
  EXPECT_EQ(BucketObjectPath("dr", "ls", {"rbac.authorization.k8s.io", "v1", "clusterroles"}, "", "admin"),
            "dr/ls/rbac.authorization.k8s.io-v1-clusterroles/admin");
}

TEST(BucketObjectBody, IsTheSanitizedStampedUntransformedSource) {
  const json source = json::parse(R"({"apiVersion": "apps/v1", "kind": "Deployment",
      "metadata": {"name": "helloworld", "namespace": "test-namespace-one", "uid": "7c2a",
                   "resourceVersion": "936", "managedFields": []},
      "spec": {"replicas": 3}, "status": {"replicas": 3}})");
  const json body =
      json::parse(BucketObjectBody({"apps", "v1", "deployments"}, source,
                                   MakeStampInfo("dr-config", "pre", "dr-config", "source")));
  EXPECT_EQ(body["spec"]["replicas"], 3);
  EXPECT_FALSE(body.contains("status"));
  EXPECT_FALSE(body["metadata"].contains("uid"));
  EXPECT_FALSE(body["metadata"].contains("managedFields"));
  const auto stamp = ReadStamp(body);
  ASSERT_TRUE(stamp.has_value());
  EXPECT_EQ(stamp->source_uid, "7c2a");
  EXPECT_EQ(stamp->source_resource_version, "936");
  EXPECT_EQ(stamp->transformation_fingerprint, "");
}

}  // namespace
}  // namespace ro::plugins::kubernetes

#include <gtest/gtest.h>

#include <unordered_set>

#include "ro/kube/gvr.h"

namespace ro::kube {
namespace {

TEST(KubeGvr, CoreGroupFormatsWithoutGroup) {
  const GroupVersionResource gvr{"", "v1", "configmaps"};
  EXPECT_EQ(gvr.GroupVersion(), "v1");
  EXPECT_EQ(gvr.ToString(), "v1/configmaps");
  EXPECT_EQ(gvr.ToDashed(), "v1-configmaps");
}

TEST(KubeGvr, NamedGroupFormatsWithGroup) {
  const GroupVersionResource gvr{"assets.astronetes.io", "v1alpha1", "buckets"};
  EXPECT_EQ(gvr.GroupVersion(), "assets.astronetes.io/v1alpha1");
  EXPECT_EQ(gvr.ToString(), "assets.astronetes.io/v1alpha1/buckets");
  EXPECT_EQ(gvr.ToDashed(), "assets.astronetes.io-v1alpha1-buckets");
}

TEST(KubeGvr, ParseIsTheInverseOfToString) {
  for (const GroupVersionResource& gvr :
       {GroupVersionResource{"", "v1", "pods"}, GroupVersionResource{"apps", "v1", "deployments"},
        GroupVersionResource{"a.b.c", "v2beta1", "things"}}) {
    EXPECT_EQ(GroupVersionResource::Parse(gvr.ToString()), gvr);
  }
}

TEST(KubeGvr, ParseRejectsMalformedText) {
  for (const char* bad : {"", "pods", "/v1/pods", "v1/", "a/b/c/d", "apps//deployments"}) {
    EXPECT_THROW(GroupVersionResource::Parse(bad), std::invalid_argument) << bad;
  }
}

TEST(KubeGvr, SplitApiVersionHandlesCoreAndGroups) {
  std::string group, version;
  SplitApiVersion("apps/v1", &group, &version);
  EXPECT_EQ(group, "apps");
  EXPECT_EQ(version, "v1");
  SplitApiVersion("v1", &group, &version);
  EXPECT_EQ(group, "");
  EXPECT_EQ(version, "v1");
}

TEST(KubeGvr, GroupVersionKindApiVersion) {
  EXPECT_EQ((GroupVersionKind{"apps", "v1", "Deployment"}.GroupVersion()), "apps/v1");
  EXPECT_EQ((GroupVersionKind{"", "v1", "Pod"}.GroupVersion()), "v1");
}

TEST(KubeGvr, ObjectKeyUsesTheCacheKeyFormat) {
  EXPECT_EQ((ObjectKey{"ns", "a"}.ToString()), "ns/a");
  EXPECT_EQ((ObjectKey{"", "node-1"}.ToString()), "node-1");
  EXPECT_EQ(ObjectKey::Parse("ns/a"), (ObjectKey{"ns", "a"}));
  EXPECT_EQ(ObjectKey::Parse("node-1"), (ObjectKey{"", "node-1"}));
}

TEST(KubeGvr, HashesDistinguishFields) {
  std::unordered_set<GroupVersionResource> gvrs{{"", "v1", "a"}, {"", "v1a", ""}, {"v1", "", "a"}};
  EXPECT_EQ(gvrs.size(), 3u);
  std::unordered_set<ObjectKey> keys{{"a", "b"}, {"ab", ""}, {"", "ab"}};
  EXPECT_EQ(keys.size(), 3u);
}

}  // namespace
}  // namespace ro::kube

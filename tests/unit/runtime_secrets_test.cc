// Secret helpers (ro/runtime/secrets.h) and the metadata-only transform used for the
// Secret informers (ro/runtime/informer_cache.h).
#include <gtest/gtest.h>

#include <memory>

#include <nlohmann/json.hpp>

#include "ro/kube/store.h"
#include "ro/runtime/informer_cache.h"
#include "ro/runtime/secrets.h"

namespace ro::runtime {
namespace {

using nlohmann::json;

TEST(SecretsTest, ReadsDataThenStringData) {
  const json secret = {{"data", {{"accessKeyID", "UzNSVkVS"}}},
                       {"stringData", {{"secretAccessKey", "plain"}}}};
  EXPECT_EQ(SecretValue(secret, "accessKeyID"), "S3RVER");
  EXPECT_EQ(SecretValue(secret, "secretAccessKey"), "plain");
  EXPECT_EQ(SecretValue(secret, "kubeconfig.yaml"), std::nullopt);
  EXPECT_EQ(SecretValue(json::object(), "x"), std::nullopt);
  EXPECT_THROW(SecretValue(json{{"data", {{"k", "%%%"}}}}, "k"), std::invalid_argument);
}

json Object(const std::string& ns, const std::string& name, const std::string& secret) {
  return {{"apiVersion", "assets.astronetes.io/v1alpha1"},
          {"kind", "KubernetesCluster"},
          {"metadata", {{"namespace", ns}, {"name", name}, {"resourceVersion", "1"}}},
          {"spec", {{"secretName", secret}}}};
}

TEST(SecretsTest, ASecretMapsToTheObjectsOfItsNamespaceThatNameIt) {
  kube::Store store;
  store.Add(std::make_shared<const json>(Object("ns1", "a", "creds")));
  store.Add(std::make_shared<const json>(Object("ns1", "b", "other")));
  store.Add(std::make_shared<const json>(Object("ns2", "c", "creds")));
  store.Add(std::make_shared<const json>(Object("ns1", "d", "creds")));
  const MapFunc map = MapSecretToReferrers(store, [](const json& object) {
    return std::vector<std::string>{object["spec"].value("secretName", "")};
  });
  const std::vector<Request> requests =
      map(json{{"metadata", {{"namespace", "ns1"}, {"name", "creds"}}}});
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].ToString(), "ns1/a");
  EXPECT_EQ(requests[1].ToString(), "ns1/d");
  EXPECT_TRUE(map(json{{"metadata", {{"namespace", "ns3"}, {"name", "creds"}}}}).empty());
}

TEST(SecretsTest, TheMetadataOnlyTransformDropsTheSecretData) {
  json secret = {{"apiVersion", "v1"},
                 {"kind", "Secret"},
                 {"type", "Opaque"},
                 {"metadata",
                  {{"namespace", "ns1"}, {"name", "creds"}, {"managedFields", json::array()}}},
                 {"data", {{"secretAccessKey", "c2VjcmV0"}}}};
  KeepMetadataOnly(secret);
  EXPECT_EQ(secret, (json{{"apiVersion", "v1"},
                          {"kind", "Secret"},
                          {"metadata", {{"namespace", "ns1"}, {"name", "creds"}}}}));
}

}  // namespace
}  // namespace ro::runtime

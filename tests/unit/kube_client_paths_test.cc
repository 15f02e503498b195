// DynamicClient's pure parts (paths, queries, bodies, list and watch decoding) and its
// logic over a scripted transport (paging, 410 restart, typed errors).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../../src/kube/client_codec.h"
#include "kube_fake_transport.h"
#include "ro/kube/client.h"
#include "ro/kube/errors.h"
#include "ro/kube/pager.h"

namespace ro::kube {
namespace {

using ::testing::HasSubstr;
using testing::FakeTransport;

const GroupVersionResource kConfigMaps{"", "v1", "configmaps"};
const GroupVersionResource kDeployments{"apps", "v1", "deployments"};

TEST(KubeClientPaths, CoreAndGroupPaths) {
  EXPECT_EQ(DynamicClient::Path(kConfigMaps, ""), "/api/v1/configmaps");
  EXPECT_EQ(DynamicClient::Path(kConfigMaps, "ns", "cm"), "/api/v1/namespaces/ns/configmaps/cm");
  EXPECT_EQ(DynamicClient::Path(kDeployments, "ns", "web", "status"),
            "/apis/apps/v1/namespaces/ns/deployments/web/status");
  EXPECT_EQ(DynamicClient::Path({"", "v1", "namespaces"}, "", "team-a"),
            "/api/v1/namespaces/team-a");
}

TEST(KubeClientPaths, QueryValuesArePercentEncoded) {
  ListOptions options;
  options.label_selector = "app=web,tier notin (db, cache)";
  options.field_selector = "metadata.name=a/b";
  options.limit = 500;
  options.continue_token = "eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ==";
  EXPECT_EQ(internal::ListUrl("/api/v1/pods", options),
            "/api/v1/pods?labelSelector=app%3Dweb%2Ctier%20notin%20%28db%2C%20cache%29"
            "&fieldSelector=metadata.name%3Da%2Fb&limit=500"
            "&continue=eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ%3D%3D");
}

TEST(KubeClientPaths, ListQueryCarriesResourceVersionAndMatch) {
  ListOptions options;
  options.resource_version = "0";
  options.resource_version_match = "NotOlderThan";
  EXPECT_EQ(internal::ListUrl("/x", options),
            "/x?resourceVersion=0&resourceVersionMatch=NotOlderThan");
  EXPECT_EQ(internal::ListUrl("/x", ListOptions{}), "/x");
}

TEST(KubeClientPaths, WatchQuery) {
  WatchOptions options;
  options.resource_version = "123";
  options.timeout_seconds = 300;
  options.label_selector = "a in (b)";
  EXPECT_EQ(internal::WatchUrl("/api/v1/configmaps", options),
            "/api/v1/configmaps?watch=1&allowWatchBookmarks=true&resourceVersion=123"
            "&labelSelector=a%20in%20%28b%29&timeoutSeconds=300");
  options.allow_bookmarks = false;
  options.timeout_seconds = 0;
  EXPECT_EQ(internal::WatchUrl("/w", options), "/w?watch=1&resourceVersion=123"
                                               "&labelSelector=a%20in%20%28b%29");
}

TEST(KubeClientPaths, WriteQuery) {
  EXPECT_EQ(internal::WriteUrl("/p", WriteOptions{true, "ro manager"}),
            "/p?dryRun=All&fieldManager=ro%20manager");
  EXPECT_EQ(internal::WriteUrl("/p", WriteOptions{}), "/p");
}

TEST(KubeClientPaths, DeleteOptionsBodyOnlyWhenSomethingIsSet) {
  EXPECT_EQ(internal::DeleteOptionsBody(DeleteOptions{}), "");
  DeleteOptions options;
  options.propagation_policy = "Foreground";
  options.grace_period_seconds = 0;
  options.precondition_uid = "u-1";
  options.precondition_resource_version = "42";
  EXPECT_EQ(nlohmann::json::parse(internal::DeleteOptionsBody(options)),
            nlohmann::json::parse(R"({"apiVersion":"v1","kind":"DeleteOptions",
              "propagationPolicy":"Foreground","gracePeriodSeconds":0,
              "preconditions":{"uid":"u-1","resourceVersion":"42"}})"));
}

TEST(KubeClientPaths, PatchContentTypes) {
  EXPECT_EQ(internal::PatchContentType(PatchType::kJsonPatch), "application/json-patch+json");
  EXPECT_EQ(internal::PatchContentType(PatchType::kMergePatch), "application/merge-patch+json");
  EXPECT_EQ(internal::PatchContentType(PatchType::kStrategicMergePatch),
            "application/strategic-merge-patch+json");
}

TEST(KubeClientPaths, ListItemsGetApiVersionAndKindFromTheList) {
  const ObjectList list = internal::DecodeObjectList(R"({"kind":"ConfigMapList","apiVersion":"v1",
      "metadata":{"resourceVersion":"77","continue":"c1","remainingItemCount":3},
      "items":[{"metadata":{"name":"a"}},
               {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b"}}]})",
                                                     "GET /x");
  ASSERT_EQ(list.items.size(), 2u);
  EXPECT_EQ(list.items[0]["apiVersion"], "v1");
  EXPECT_EQ(list.items[0]["kind"], "ConfigMap");
  EXPECT_EQ(list.items[1]["kind"], "ConfigMap");
  EXPECT_EQ(list.resource_version, "77");
  EXPECT_EQ(list.continue_token, "c1");
  EXPECT_EQ(list.remaining_item_count, 3);
}

TEST(KubeClientPaths, EmptyListHasNullItems) {
  const ObjectList list = internal::DecodeObjectList(
      R"({"kind":"FooList","apiVersion":"x.io/v1","metadata":{"resourceVersion":"5"},"items":null})",
      "GET /x");
  EXPECT_TRUE(list.items.empty());
  EXPECT_EQ(list.resource_version, "5");
  EXPECT_FALSE(list.remaining_item_count.has_value());
}

TEST(KubeClientPaths, NonJsonBodyIsATransportError) {
  EXPECT_THROW(internal::DecodeObjectList("<html>proxy error</html>", "GET /x"),
               TransportError);
}

// --- watch decoding ------------------------------------------------------------------

std::vector<WatchEvent> DecodeChunks(const std::vector<std::string>& chunks) {
  std::vector<WatchEvent> events;
  const std::function<void(WatchEvent&&)> sink = [&](WatchEvent&& e) {
    events.push_back(std::move(e));
  };
  internal::WatchLineDecoder decoder(sink);
  for (const auto& chunk : chunks) decoder.Feed(chunk);
  decoder.Finish();
  return events;
}

const std::string kAdded =
    R"({"type":"ADDED","object":{"kind":"ConfigMap","metadata":{"name":"a","resourceVersion":"10"}}})";
const std::string kBookmark =
    R"({"type":"BOOKMARK","object":{"kind":"ConfigMap","metadata":{"resourceVersion":"12"}}})";
const std::string kDeleted =
    R"({"type":"DELETED","object":{"kind":"ConfigMap","metadata":{"name":"a","resourceVersion":"13"}}})";

TEST(KubeWatchDecoder, EventsSplitAcrossChunksArriveWholeAndInOrder) {
  const std::string stream = kAdded + "\n" + kBookmark + "\n" + kDeleted + "\n";
  // Every split point of the stream into two chunks, plus byte-by-byte.
  for (size_t cut = 0; cut <= stream.size(); cut += 7) {
    const auto events = DecodeChunks({stream.substr(0, cut), stream.substr(cut)});
    ASSERT_EQ(events.size(), 3u) << cut;
    EXPECT_EQ(events[0].type, WatchEventType::kAdded);
    EXPECT_EQ(events[0].object["metadata"]["name"], "a");
    EXPECT_EQ(events[1].type, WatchEventType::kBookmark);
    EXPECT_EQ(events[1].object["metadata"]["resourceVersion"], "12");
    EXPECT_EQ(events[2].type, WatchEventType::kDeleted);
  }
  std::vector<std::string> bytes;
  for (char c : stream) bytes.emplace_back(1, c);
  EXPECT_EQ(DecodeChunks(bytes).size(), 3u);
}

TEST(KubeWatchDecoder, ModifiedAndCrLfLines) {
  const auto events = DecodeChunks(
      {R"({"type":"MODIFIED","object":{"metadata":{"name":"x"}}})" "\r\n\n"});
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, WatchEventType::kModified);
}

TEST(KubeWatchDecoder, ErrorEventThrowsGoneForExpiredResourceVersion) {
  const std::string error =
      R"({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},)"
      R"json("status":"Failure","message":"too old resource version: 1 (4120)",)json"
      R"("reason":"Expired","code":410}})";
  try {
    DecodeChunks({kAdded + "\n" + error + "\n"});
    ADD_FAILURE();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.reason(), StatusReason::kGone);
    EXPECT_EQ(e.http_code(), 410);
    EXPECT_THAT(e.status_message(), HasSubstr("too old resource version"));
  }
}

TEST(KubeWatchDecoder, TruncatedLastLineIsABrokenStream) {
  try {
    DecodeChunks({kAdded + "\n" + kDeleted.substr(0, 20)});
    ADD_FAILURE();
  } catch (const TransportError& e) {
    EXPECT_EQ(e.kind(), TransportError::Kind::kBrokenStream);
  }
}

// --- DynamicClient over a scripted transport ---------------------------------------------

class KubeClientLogic : public ::testing::Test {
 protected:
  static RestConfig Config() {
    RestConfig config;
    config.server = "https://h";
    return config;
  }
  KubeClientLogic() : client_(Config(), transport_) {}
  std::shared_ptr<FakeTransport> transport_ = std::make_shared<FakeTransport>();
  DynamicClient client_;
};

std::string Page(int first, int count, const std::string& rv, const std::string& cont) {
  nlohmann::json page = {{"kind", "ConfigMapList"},
                         {"apiVersion", "v1"},
                         {"metadata", {{"resourceVersion", rv}, {"continue", cont}}},
                         {"items", nlohmann::json::array()}};
  for (int i = first; i < first + count; ++i) {
    page["items"].push_back({{"metadata", {{"name", "cm-" + std::to_string(i)}}}});
  }
  return page.dump();
}

TEST_F(KubeClientLogic, ListAllFollowsContinueTokensAndKeepsTheFirstResourceVersion) {
  transport_->Respond("GET", "/api/v1/namespaces/ns/configmaps?limit=2", 200,
                      Page(0, 2, "100", "t1"));
  transport_->Respond("GET", "/api/v1/namespaces/ns/configmaps?limit=2&continue=t1", 200,
                      Page(2, 2, "101", "t2"));
  transport_->Respond("GET", "/api/v1/namespaces/ns/configmaps?limit=2&continue=t2", 200,
                      Page(4, 1, "102", ""));
  ListOptions options;
  options.limit = 2;
  options.resource_version = "0";  // only on the first page
  const ObjectList all = client_.ListAll(kConfigMaps, "ns", options);
  ASSERT_EQ(all.items.size(), 5u);
  EXPECT_EQ(all.items[4]["metadata"]["name"], "cm-4");
  EXPECT_EQ(all.items[4]["kind"], "ConfigMap");
  EXPECT_EQ(all.resource_version, "100");
  EXPECT_TRUE(all.continue_token.empty());
  ASSERT_EQ(transport_->requests.size(), 3u);
  EXPECT_EQ(transport_->requests[0].path,
            "/api/v1/namespaces/ns/configmaps?limit=2&resourceVersion=0");
}

TEST_F(KubeClientLogic, ListAllRestartsWithAFullListWhenTheContinueTokenExpires) {
  transport_->Respond("GET", "/api/v1/configmaps?limit=500", 200, Page(0, 3, "100", "t1"));
  transport_->Respond("GET", "/api/v1/configmaps?limit=500&continue=t1", 410,
                      R"({"kind":"Status","reason":"Expired","code":410,
                          "message":"The provided continue parameter is too old"})");
  transport_->Respond("GET", "/api/v1/configmaps", 200, Page(0, 6, "200", ""));
  const ObjectList all = client_.ListAll(kConfigMaps, "");
  EXPECT_EQ(all.items.size(), 6u);
  EXPECT_EQ(all.resource_version, "200");
  EXPECT_EQ(transport_->requests.back().path, "/api/v1/configmaps");
}

TEST_F(KubeClientLogic, ListAllDoesNotHideAGoneOnTheFirstPage) {
  transport_->Respond("GET", "/api/v1/configmaps", 410,
                      R"({"kind":"Status","reason":"Expired","code":410,"message":"old"})");
  EXPECT_THROW(client_.ListAll(kConfigMaps, ""), ApiError);
}

// ListPages (ro/kube/pager.h): each page as it arrives; an expired continue token restarts
// the paged list once (on_restart first), a second one or a 410 on the first page throws.
TEST_F(KubeClientLogic, ListPagesHandsOverEachPageAndRestartsOnceWhenTheContinueTokenExpires) {
  const std::string expired = R"({"kind":"Status","reason":"Expired","code":410,"message":"too old"})";
  transport_->Respond("GET", "/api/v1/configmaps?labelSelector=a%3Db&limit=2", 200, Page(0, 2, "100", "t1"));
  transport_->Respond("GET", "/api/v1/configmaps?labelSelector=a%3Db&limit=2&continue=t1", 410, expired);
  transport_->Respond("GET", "/api/v1/configmaps?labelSelector=a%3Db&limit=2", 200, Page(0, 2, "200", "t2"));
  transport_->Respond("GET", "/api/v1/configmaps?labelSelector=a%3Db&limit=2&continue=t2", 200, Page(2, 1, "201", ""));
  ListOptions options;
  options.label_selector = "a=b";
  options.limit = 2;
  std::vector<std::string> seen;
  const std::string rv = ListPages(
      client_, kConfigMaps, "", options,
      [&](std::vector<nlohmann::json>& items) {
        std::string page = "page";
        for (const auto& item : items) page += " " + item["metadata"]["name"].get<std::string>();
        seen.push_back(page);
      },
      [&] { seen.push_back("restart"); });
  EXPECT_EQ(rv, "200");
  EXPECT_EQ(seen, (std::vector<std::string>{"page cm-0 cm-1", "restart", "page cm-0 cm-1", "page cm-2"}));

  transport_->Respond("GET", "/api/v1/configmaps?limit=500", 200, Page(0, 1, "300", "t3"));
  transport_->Respond("GET", "/api/v1/configmaps?limit=500&continue=t3", 410, expired);
  transport_->Respond("GET", "/api/v1/configmaps?limit=500", 200, Page(0, 1, "301", "t4"));
  transport_->Respond("GET", "/api/v1/configmaps?limit=500&continue=t4", 410, expired);
  EXPECT_THROW(ListPages(client_, kConfigMaps, "", ListOptions{}, [](std::vector<nlohmann::json>&) {}, nullptr),
               ApiError);
  transport_->Respond("GET", "/api/v1/configmaps?limit=500", 410, expired);
  EXPECT_THROW(ListPages(client_, kConfigMaps, "", ListOptions{}, [](std::vector<nlohmann::json>&) {}, nullptr),
               ApiError);
}

TEST_F(KubeClientLogic, ErrorsAreTypedFromTheStatusBody) {
  transport_->Respond("GET", "/api/v1/namespaces/ns/configmaps/x", 404,
                      R"({"kind":"Status","reason":"NotFound","code":404,
                          "message":"configmaps \"x\" not found"})");
  try {
    client_.Get(kConfigMaps, "ns", "x");
    ADD_FAILURE();
  } catch (const ApiError& e) {
    EXPECT_TRUE(IsNotFound(e));
    EXPECT_EQ(e.status_message(), "configmaps \"x\" not found");
  }
}

TEST_F(KubeClientLogic, WritesSendTheRightVerbPathBodyAndContentType) {
  const nlohmann::json cm = {{"apiVersion", "v1"},
                             {"kind", "ConfigMap"},
                             {"metadata", {{"name", "a"}, {"namespace", "ns"}}}};
  transport_->Respond("POST", "/api/v1/namespaces/ns/configmaps", 201, cm.dump());
  transport_->Respond("PUT", "/api/v1/namespaces/ns/configmaps/a", 200, cm.dump());
  transport_->Respond("PATCH", "/api/v1/namespaces/ns/configmaps/a", 200, cm.dump());
  transport_->Respond("DELETE", "/api/v1/namespaces/ns/configmaps/a", 200, "{}");
  client_.Create(kConfigMaps, "", cm);  // namespace from the object
  client_.Update(kConfigMaps, "ns", cm, WriteOptions{.dry_run = false, .field_manager = "ro"});
  client_.Patch(kConfigMaps, "ns", "a", PatchType::kMergePatch, R"({"data":{"k":"v"}})");
  DeleteOptions del;
  del.precondition_uid = "u";
  client_.Delete(kConfigMaps, "ns", "a", del);
  const auto& r = transport_->requests;
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0].path, "/api/v1/namespaces/ns/configmaps");
  EXPECT_EQ(nlohmann::json::parse(r[0].body), cm);
  EXPECT_EQ(r[1].path, "/api/v1/namespaces/ns/configmaps/a?fieldManager=ro");
  EXPECT_EQ(r[2].content_type, "application/merge-patch+json");
  EXPECT_EQ(r[2].body, R"({"data":{"k":"v"}})");
  EXPECT_EQ(nlohmann::json::parse(r[3].body)["preconditions"]["uid"], "u");
}

TEST_F(KubeClientLogic, UpdateWithoutANameIsRejectedBeforeSending) {
  EXPECT_THROW(client_.Update(kConfigMaps, "ns", nlohmann::json{{"metadata", nlohmann::json::object()}}),
               std::invalid_argument);
  EXPECT_TRUE(transport_->requests.empty());
}

TEST_F(KubeClientLogic, WatchDeliversEventsAndReturnsOnCleanClose) {
  transport_->StreamChunks(200, {kAdded.substr(0, 30), kAdded.substr(30) + "\n" + kBookmark,
                                 "\n"});
  std::vector<WatchEventType> types;
  WatchOptions options;
  options.resource_version = "9";
  client_.Watch(kConfigMaps, "ns", options, [&](WatchEvent&& e) { types.push_back(e.type); },
                std::stop_token{});
  EXPECT_EQ(types, (std::vector<WatchEventType>{WatchEventType::kAdded,
                                                 WatchEventType::kBookmark}));
  EXPECT_EQ(transport_->requests.at(0).path,
            "/api/v1/namespaces/ns/configmaps?watch=1&allowWatchBookmarks=true"
            "&resourceVersion=9");
}

// The integration test can only allow a bookmark (the server sends them best effort);
// here one always comes, after the changes, as the 1.20 apiserver sends it: the object
// has nothing but the kind and metadata.resourceVersion.
TEST_F(KubeClientLogic, WatchDeliversAddedModifiedDeletedThenABookmarkInOrder) {
  const auto change = [](const char* type, const char* rv, const char* v) {
    return nlohmann::json{{"type", type},
                          {"object",
                           {{"kind", "ConfigMap"},
                            {"metadata", {{"name", "w"}, {"resourceVersion", rv}}},
                            {"data", {{"v", v}}}}}}
        .dump();
  };
  const std::string added = change("ADDED", "20", "1");
  const std::string modified = change("MODIFIED", "21", "2");
  const std::string deleted = change("DELETED", "22", "2");
  const std::string bookmark =
      R"({"type":"BOOKMARK","object":{"kind":"ConfigMap","metadata":{"resourceVersion":"25"}}})";
  transport_->StreamChunks(200, {added + "\n" + modified.substr(0, 17),
                                 modified.substr(17) + "\n", deleted + "\n" + bookmark + "\n"});
  std::vector<WatchEvent> events;
  WatchOptions options;
  options.resource_version = "19";
  options.allow_bookmarks = true;
  options.timeout_seconds = 4;
  client_.Watch(
      kConfigMaps, "ns", options, [&](WatchEvent&& e) { events.push_back(std::move(e)); },
      std::stop_token{});  // returns at the clean end of the stream
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].type, WatchEventType::kAdded);
  EXPECT_EQ(events[0].object["data"]["v"], "1");
  EXPECT_EQ(events[1].type, WatchEventType::kModified);
  EXPECT_EQ(events[1].object["data"]["v"], "2");
  EXPECT_EQ(events[2].type, WatchEventType::kDeleted);
  EXPECT_EQ(events[3].type, WatchEventType::kBookmark);
  EXPECT_EQ(events[3].object["metadata"]["resourceVersion"], "25");
  EXPECT_EQ(transport_->requests.at(0).path,
            "/api/v1/namespaces/ns/configmaps?watch=1&allowWatchBookmarks=true"
            "&resourceVersion=19&timeoutSeconds=4");
}

TEST_F(KubeClientLogic, WatchHttpErrorIsAnApiError) {
  transport_->StreamChunks(403, {R"({"kind":"Status","reason":"Forbidden",)",
                                 R"("code":403,"message":"no"})"});
  try {
    client_.Watch(kConfigMaps, "", {}, [](WatchEvent&&) {}, std::stop_token{});
    ADD_FAILURE();
  } catch (const ApiError& e) {
    EXPECT_TRUE(IsForbidden(e));
  }
}

}  // namespace
}  // namespace ro::kube

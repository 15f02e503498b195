// The audit admission webhook's decisions (src/controllers/audit; manual 2.3), the
// certificates it serves (ro/common/certificates.h) and the HTTPS of the embedded server.
#include "audit/audit_webhook.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <curl/curl.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "ro/common/base64.h"
#include "ro/common/certificates.h"
#include "ro/common/http_server.h"
#include "ro/common/time.h"

namespace ro::controllers {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::system_clock;

const Clock::time_point kNow = common::ParseRfc3339("2024-02-09T14:05:30.675205250Z");

json LiveSync(json spec, json labels = json::object(), json annotations = nullptr) {
  json object = {{"apiVersion", "automation.astronetes.io/v1alpha1"},
                 {"kind", "LiveSynchronization"},
                 {"metadata", {{"name", "pre"}, {"namespace", "dr-config"}, {"labels", std::move(labels)}}},
                 {"spec", std::move(spec)}};
  if (!annotations.is_null()) object["metadata"]["annotations"] = std::move(annotations);
  return object;
}

json Review(const std::string& operation, const json& object, const json& old_object = nullptr,
            const std::string& username = "alice") {
  json request = {{"uid", "705ab4f5-6393-11e8-b7cc-42010a800002"},
                  {"operation", operation},
                  {"userInfo", {{"username", username}, {"uid", username + "-uid"}, {"groups", {"dev"}}}},
                  {"object", object}};
  if (!old_object.is_null()) request["oldObject"] = old_object;
  return {{"apiVersion", "admission.k8s.io/v1"}, {"kind", "AdmissionReview"}, {"request", std::move(request)}};
}

// The object as the apiserver stores it after applying the response's patch.
json Admitted(const json& review, const AuditPolicy& policy = {}) {
  const json answer = ReviewAudit(review, kNow, policy);
  EXPECT_EQ(answer["apiVersion"], "admission.k8s.io/v1");
  EXPECT_EQ(answer["kind"], "AdmissionReview");
  EXPECT_EQ(answer["response"]["uid"], review["request"]["uid"]);
  EXPECT_EQ(answer["response"]["allowed"], true);
  const json& object = review["request"]["object"];
  if (!answer["response"].contains("patch")) return object;
  EXPECT_EQ(answer["response"]["patchType"], "JSONPatch");
  return object.patch(json::parse(common::DecodeBase64(answer["response"]["patch"].get<std::string>())));
}

json AuditOf(const json& object) {
  json out = json::object();
  const json annotations = object["metadata"].value("annotations", json::object());
  for (const auto& [key, value] : annotations.items()) {
    if (key.starts_with("audit.astronetes.io/")) out[key] = value;
  }
  return out;
}

json Record(const std::string& time, const std::string& user) {
  return {{"audit.astronetes.io/last-update-time", time},
          {"audit.astronetes.io/last-update-user-uid", user + "-uid"},
          {"audit.astronetes.io/last-update-username", user}};
}

TEST(AuditWebhook, ACreateIsRecordedWithNanosecondTimeAndTheUser) {
  const json created = Admitted(Review("CREATE", LiveSync({{"suspend", false}})));
  EXPECT_EQ(AuditOf(created), Record("2024-02-09T14:05:30.675205250Z", "alice"));
}

TEST(AuditWebhook, AnUpdateOfSpecLabelsOrAnnotationsIsRecordedForItsUser) {
  const json before = LiveSync({{"suspend", false}}, json::object(), Record("2020-01-01T00:00:00.000000000Z", "alice"));
  for (const json& after : {LiveSync({{"suspend", true}}, json::object(), Record("2020-01-01T00:00:00.000000000Z", "alice")),
                            LiveSync({{"suspend", false}}, {{"tier", "gold"}}, Record("2020-01-01T00:00:00.000000000Z", "alice")),
                            LiveSync({{"suspend", false}}, json::object(),
                                     [] {
                                       json a = Record("2020-01-01T00:00:00.000000000Z", "alice");
                                       a["note"] = "x";
                                       return a;
                                     }())}) {
    EXPECT_EQ(AuditOf(Admitted(Review("UPDATE", after, before, "bob"))), Record("2024-02-09T14:05:30.675205250Z", "bob"))
        << after.dump();
  }
}

TEST(AuditWebhook, AnUpdateChangingNothingAuditedKeepsTheRecord) {
  const json record = Record("2020-01-01T00:00:00.000000000Z", "alice");
  const json before = LiveSync({{"suspend", false}}, json::object(), record);
  json after = before;
  after["metadata"]["finalizers"] = {"automation.astronetes.io/finalizer"};
  after["status"] = {{"phase", "Ready"}};
  const json answer = ReviewAudit(Review("UPDATE", after, before, "bob"), kNow, {});
  EXPECT_FALSE(answer["response"].contains("patch")) << answer.dump();
}

TEST(AuditWebhook, TheRecordIsTheWebhooksAloneAnEditOrRemovalIsPutBack) {
  const json record = Record("2020-01-01T00:00:00.000000000Z", "alice");
  const json before = LiveSync({{"suspend", false}}, json::object(), record);
  json forged = before;
  forged["metadata"]["annotations"]["audit.astronetes.io/last-update-username"] = "mallory";
  EXPECT_EQ(AuditOf(Admitted(Review("UPDATE", forged, before, "mallory"))), record);
  json dropped = before;
  dropped["metadata"].erase("annotations");  // kubectl replace of a file without them
  EXPECT_EQ(AuditOf(Admitted(Review("UPDATE", dropped, before, "bob"))), record);
  // With nothing recorded yet, a forged record is removed.
  const json unrecorded = LiveSync({{"suspend", false}});
  json invented = unrecorded;
  invented["metadata"]["annotations"] = {{"audit.astronetes.io/last-update-username", "mallory"}, {"keep", "me"}};
  const json admitted = Admitted(Review("UPDATE", invented, [&] {
    json b = unrecorded;
    b["metadata"]["annotations"] = {{"keep", "me"}};
    return b;
  }(), "mallory"));
  EXPECT_EQ(admitted["metadata"]["annotations"], json({{"keep", "me"}}));
}

TEST(AuditWebhook, TheOperatorsOwnWritesAreNotRecorded) {
  AuditPolicy policy;
  policy.ignored_usernames = {"system:serviceaccount:resiliency-operator:resiliency-operator"};
  const json record = Record("2020-01-01T00:00:00.000000000Z", "alice");
  const json before = LiveSync({{"suspend", false}}, json::object(), record);
  json after = before;
  after["spec"]["suspend"] = true;
  EXPECT_EQ(AuditOf(Admitted(Review("UPDATE", after, before, policy.ignored_usernames[0]), policy)), record);
}

TEST(AuditWebhook, KindsWithoutSpecCompareTheirContentAndDeletesPassUntouched) {
  const json cm = {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "c"}}}, {"data", {{"k", "1"}}}};
  json changed = cm;
  changed["data"]["k"] = "2";
  EXPECT_TRUE(AuditedChange(cm, changed));
  json touched = cm;
  touched["metadata"]["resourceVersion"] = "7";
  EXPECT_FALSE(AuditedChange(cm, touched));
  const json answer = ReviewAudit(Review("DELETE", cm), kNow, {});
  EXPECT_EQ(answer["response"]["allowed"], true);
  EXPECT_FALSE(answer["response"].contains("patch"));
  EXPECT_THROW(ReviewAudit(json{{"request", {{"operation", "CREATE"}}}}, kNow, {}), std::invalid_argument);
}

TEST(Certificates, AServerCertificateChainsToItsCaAndIsRenewedWithAThirdLeft) {
  const Clock::time_point now = Clock::now();
  const common::IssuedCertificates issued =
      common::IssueServerCertificates("test CA", {{"svc.ns.svc", "svc"}}, now, std::chrono::hours{24 * 30});
  ASSERT_EQ(issued.servers.size(), 1u);
  EXPECT_EQ(std::chrono::time_point_cast<std::chrono::seconds>(common::CertificateNotAfter(issued.servers[0].cert_pem)),
            std::chrono::time_point_cast<std::chrono::seconds>(now + std::chrono::hours{24 * 30}));
  EXPECT_FALSE(common::CertificateDueForRenewal(issued.servers[0].cert_pem, now));
  EXPECT_FALSE(common::CertificateDueForRenewal(issued.servers[0].cert_pem, now + std::chrono::hours{24 * 19}));
  EXPECT_TRUE(common::CertificateDueForRenewal(issued.servers[0].cert_pem, now + std::chrono::hours{24 * 21}));
  EXPECT_TRUE(common::CertificateDueForRenewal("not a certificate", now));
  EXPECT_THROW(common::IssueServerCertificates("test CA", {{}}, now, std::chrono::hours{1}), std::invalid_argument);
}

size_t Collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// GET https://127.0.0.1:<port>/path, verifying the server against `ca_pem` (written to a
// file for libcurl). Returns the HTTP status, 0 when TLS failed.
long HttpsGet(std::uint16_t port, const std::string& ca_pem, std::string* body) {
  const std::filesystem::path ca = std::filesystem::temp_directory_path() / ("audit-test-ca-" + std::to_string(port) + ".pem");
  std::ofstream(ca) << ca_pem;
  CURL* curl = curl_easy_init();
  const std::string url = "https://127.0.0.1:" + std::to_string(port) + "/ping";
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CAINFO, ca.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
  long status = 0;
  if (curl_easy_perform(curl) == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(curl);
  std::filesystem::remove(ca);
  return status;
}

TEST(HttpServerTls, ServesTheCertificateOfNowAndRotatesWithoutARestart) {
  const Clock::time_point now = Clock::now();
  const auto first = common::IssueServerCertificates("first CA", {{"localhost"}}, now, std::chrono::hours{1});
  const auto second = common::IssueServerCertificates("second CA", {{"localhost"}}, now, std::chrono::hours{1});
  common::HttpServerOptions options;
  options.address = "127.0.0.1:0";
  options.tls_cert_pem = first.servers[0].cert_pem;
  options.tls_key_pem = first.servers[0].key_pem;
  common::HttpServer server(options);
  server.Handle("/ping", [](const common::HttpRequest&) { return common::HttpResponse{200, "text/plain", "pong"}; });
  std::string body;
  EXPECT_EQ(HttpsGet(server.port(), first.ca_pem, &body), 200);
  EXPECT_EQ(body, "pong");
  EXPECT_EQ(HttpsGet(server.port(), second.ca_pem, &body), 0) << "not yet signed by the second CA";
  server.SetCertificate(second.servers[0].cert_pem, second.servers[0].key_pem);
  EXPECT_EQ(HttpsGet(server.port(), second.ca_pem, &body), 200);
  EXPECT_EQ(HttpsGet(server.port(), first.ca_pem, &body), 0);
  EXPECT_THROW(server.SetCertificate(first.servers[0].cert_pem, second.servers[0].key_pem), std::invalid_argument);
}

}  // namespace
}  // namespace ro::controllers

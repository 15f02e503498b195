#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "ro/kube/errors.h"

namespace ro::kube {
namespace {

using std::chrono::seconds;

TEST(KubeErrors, StatusBodyGivesReasonMessageAndCauses) {
  const std::string body = R"({"kind":"Status","apiVersion":"v1","status":"Failure",
    "message":"ConfigMap \"x\" is invalid: data: Invalid value","reason":"Invalid",
    "details":{"name":"x","kind":"ConfigMap","causes":[
      {"reason":"FieldValueInvalid","message":"Invalid value: \"a b\"","field":"data"}]},
    "code":422})";
  const ApiError e = ApiErrorFromResponse(422, body);
  EXPECT_EQ(e.http_code(), 422);
  EXPECT_EQ(e.reason(), StatusReason::kInvalid);
  EXPECT_EQ(e.status_message(), "ConfigMap \"x\" is invalid: data: Invalid value");
  ASSERT_EQ(e.causes().size(), 1u);
  EXPECT_EQ(e.causes()[0].type, "FieldValueInvalid");
  EXPECT_EQ(e.causes()[0].field, "data");
  EXPECT_EQ(std::string(e.what()), "422 Invalid: " + e.status_message());
}

TEST(KubeErrors, RetryAfterSecondsComesFromDetailsUnlessTheHeaderSaysOtherwise) {
  const std::string body = R"({"kind":"Status","reason":"TooManyRequests","code":429,
    "message":"slow down","details":{"retryAfterSeconds":3}})";
  EXPECT_EQ(ApiErrorFromResponse(429, body).retry_after(), seconds{3});
  EXPECT_EQ(ApiErrorFromResponse(429, body, seconds{7}).retry_after(), seconds{7});
  EXPECT_EQ(ApiErrorFromResponse(429, body).reason(), StatusReason::kTooManyRequests);
}

TEST(KubeErrors, NonStatusBodyDerivesReasonFromHttpCode) {
  const ApiError e = ApiErrorFromResponse(503, "service unavailable\n");
  EXPECT_EQ(e.reason(), StatusReason::kServiceUnavailable);
  EXPECT_EQ(e.status_message(), "service unavailable");
  EXPECT_EQ(ApiErrorFromResponse(404, "").reason(), StatusReason::kNotFound);
  EXPECT_EQ(ApiErrorFromResponse(404, "").status_message(), "HTTP 404");
  EXPECT_EQ(ApiErrorFromResponse(418, "teapot").reason(), StatusReason::kUnknown);
}

TEST(KubeErrors, LongNonStatusBodyIsCutInTheMessage) {
  const ApiError e = ApiErrorFromResponse(502, std::string(10'000, 'x'));
  EXPECT_LE(e.status_message().size(), 256u);
}

TEST(KubeErrors, ExpiredAndGoneBothMeanGone) {
  EXPECT_EQ(ParseStatusReason("Expired", 410), StatusReason::kGone);
  EXPECT_EQ(ParseStatusReason("Gone", 410), StatusReason::kGone);
  EXPECT_EQ(ParseStatusReason("", 410), StatusReason::kGone);
}

TEST(KubeErrors, ConflictAndAlreadyExistsShareCode409ButNotReason) {
  EXPECT_EQ(ParseStatusReason("AlreadyExists", 409), StatusReason::kAlreadyExists);
  EXPECT_EQ(ParseStatusReason("Conflict", 409), StatusReason::kConflict);
  EXPECT_EQ(ParseStatusReason("", 409), StatusReason::kConflict);
}

TEST(KubeErrors, UnknownReasonFallsBackToHttpCode) {
  EXPECT_EQ(ParseStatusReason("SomethingNew", 403), StatusReason::kForbidden);
  EXPECT_EQ(ParseStatusReason("SomethingNew", 299), StatusReason::kUnknown);
  EXPECT_EQ(ParseStatusReason("", 504), StatusReason::kServerTimeout);
}

TEST(KubeErrors, ReasonNamesRoundTrip) {
  for (auto reason : {StatusReason::kBadRequest, StatusReason::kNotFound,
                      StatusReason::kAlreadyExists, StatusReason::kConflict,
                      StatusReason::kInvalid, StatusReason::kTimeout,
                      StatusReason::kServerTimeout, StatusReason::kTooManyRequests}) {
    EXPECT_EQ(ParseStatusReason(ToString(reason), 0), reason) << ToString(reason);
  }
  EXPECT_EQ(ToString(StatusReason::kUnknown), "Unknown");
}

TEST(KubeErrors, WatchErrorStatusCodeWinsOverFallback) {
  const auto status = nlohmann::json::parse(R"json({"kind":"Status","status":"Failure",
    "message":"too old resource version: 1 (200)","reason":"Expired","code":410})json");
  const ApiError e = ApiErrorFromStatus(status, 500);
  EXPECT_EQ(e.http_code(), 410);
  EXPECT_EQ(e.reason(), StatusReason::kGone);
  EXPECT_TRUE(IsGone(e));
}

TEST(KubeErrors, MalformedStatusStillGivesAnApiError) {
  const ApiError e = ApiErrorFromStatus(nlohmann::json("oops"), 500);
  EXPECT_EQ(e.http_code(), 500);
  EXPECT_EQ(e.reason(), StatusReason::kInternalError);
}

TEST(KubeErrors, PredicatesMatchOnlyTheirReason) {
  const ApiError not_found(404, StatusReason::kNotFound, "x");
  const ApiError conflict(409, StatusReason::kConflict, "x");
  const std::runtime_error other("x");
  EXPECT_TRUE(IsNotFound(not_found));
  EXPECT_FALSE(IsNotFound(conflict));
  EXPECT_FALSE(IsNotFound(other));
  EXPECT_TRUE(IsConflict(conflict));
  EXPECT_FALSE(IsAlreadyExists(conflict));
  EXPECT_TRUE(IsForbidden(ApiError(403, StatusReason::kForbidden, "x")));
  EXPECT_TRUE(IsUnauthorized(ApiError(401, StatusReason::kUnauthorized, "x")));
}

TEST(KubeErrors, RetryableMeansTransportThrottlingOrServerSide) {
  EXPECT_TRUE(IsRetryable(TransportError(TransportError::Kind::kConnect, "x")));
  EXPECT_TRUE(IsRetryable(ApiError(429, StatusReason::kTooManyRequests, "x")));
  EXPECT_TRUE(IsRetryable(ApiError(500, StatusReason::kInternalError, "x")));
  EXPECT_TRUE(IsRetryable(ApiError(502, StatusReason::kUnknown, "x")));
  EXPECT_TRUE(IsRetryable(ApiError(504, StatusReason::kTimeout, "x")));
  EXPECT_FALSE(IsRetryable(ApiError(409, StatusReason::kConflict, "x")));
  EXPECT_FALSE(IsRetryable(ApiError(422, StatusReason::kInvalid, "x")));
  EXPECT_FALSE(IsRetryable(ConfigError("server", "required")));
}

TEST(KubeErrors, ConfigErrorNamesTheField) {
  const ConfigError e("users[admin].user.token", "must be a string");
  EXPECT_EQ(e.field(), "users[admin].user.token");
  EXPECT_STREQ(e.what(), "users[admin].user.token: must be a string");
}

}  // namespace
}  // namespace ro::kube

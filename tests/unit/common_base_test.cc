// The base layer below kube: the one backoff, the object-metadata accessors and DNS-1123
// validation (cases from k8s.io/apimachinery/pkg/util/validation/validation_test.go).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "ro/common/backoff.h"
#include "ro/common/object_meta.h"
#include "ro/common/validation.h"

namespace ro::common {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

TEST(ExponentialDelay, DoublesFromInitialAndStopsAtMax) {
  EXPECT_EQ(ExponentialDelay(250ms, 0, 30'000ms), 250ms);
  EXPECT_EQ(ExponentialDelay(250ms, 1, 30'000ms), 500ms);
  EXPECT_EQ(ExponentialDelay(250ms, 6, 30'000ms), 16'000ms);
  EXPECT_EQ(ExponentialDelay(250ms, 7, 30'000ms), 30'000ms);
  EXPECT_EQ(ExponentialDelay(250ms, -3, 30'000ms), 250ms);
  EXPECT_EQ(ExponentialDelay(2s, 0, 1s), 1s);  // initial above max is capped too
}

TEST(ExponentialDelay, NeverOverflowsForHugeExponents) {
  constexpr std::chrono::nanoseconds kMax = std::chrono::nanoseconds::max();
  EXPECT_EQ(ExponentialDelay(std::chrono::nanoseconds{5}, 1'000, kMax), kMax);
  EXPECT_EQ(ExponentialDelay(5ms, INT64_MAX, std::chrono::milliseconds{1000s}), 1000s);
}

TEST(Backoff, WithoutJitterFollowsExponentialDelayAndResets) {
  Backoff backoff(100ms, 1s, /*jitter=*/0);
  EXPECT_EQ(backoff.Next(), 100ms);
  EXPECT_EQ(backoff.Next(), 200ms);
  EXPECT_EQ(backoff.Next(), 400ms);
  EXPECT_EQ(backoff.Next(), 800ms);
  EXPECT_EQ(backoff.Next(), 1s);
  EXPECT_EQ(backoff.Next(), 1s);
  EXPECT_EQ(backoff.attempts(), 6);
  backoff.Reset();
  EXPECT_EQ(backoff.Next(), 100ms);
}

TEST(Backoff, JitterStretchesEachDelayByLessThanTheFactor) {
  Backoff backoff(1000ms, 1000ms, /*jitter=*/0.5);
  for (int i = 0; i < 200; ++i) {
    const auto d = backoff.Next();
    EXPECT_GE(d, 1000ms);
    EXPECT_LT(d, 1500ms);
  }
}

TEST(ObjectMeta, ReadsTheFieldsOfAnObject) {
  const json object = {{"kind", "ConfigMap"},
                       {"metadata",
                        {{"name", "cm"},
                         {"namespace", "ns"},
                         {"uid", "u-1"},
                         {"resourceVersion", "42"},
                         {"generation", 7},
                         {"labels", {{"app", "web"}}},
                         {"annotations", {{"a", "b"}}},
                         {"deletionTimestamp", "2024-01-01T00:00:00Z"}}}};
  EXPECT_EQ(Name(object), "cm");
  EXPECT_EQ(Namespace(object), "ns");
  EXPECT_EQ(Uid(object), "u-1");
  EXPECT_EQ(ResourceVersion(object), "42");
  EXPECT_EQ(Generation(object), 7);
  EXPECT_EQ(Label(object, "app"), "web");
  EXPECT_EQ(Annotation(object, "a"), "b");
  EXPECT_EQ(Labels(object), json({{"app", "web"}}));
  EXPECT_EQ(StringMember(object, "kind"), "ConfigMap");
  EXPECT_TRUE(Deleting(object));
}

TEST(ObjectMeta, MissingOrMistypedFieldsReadAsZeroValues) {
  for (const json& object : {json(), json::array(), json("text"), json::object(), json({{"metadata", 3}}),
                             json({{"metadata", {{"name", 1}, {"labels", "x"}, {"deletionTimestamp", nullptr}, {"generation", "3"}}}})}) {
    EXPECT_EQ(Name(object), "") << object;
    EXPECT_EQ(Namespace(object), "") << object;
    EXPECT_TRUE(Labels(object).is_object()) << object;
    EXPECT_TRUE(Labels(object).empty()) << object;
    EXPECT_TRUE(Annotations(object).empty()) << object;
    EXPECT_EQ(Label(object, "app"), "") << object;
    EXPECT_FALSE(Deleting(object)) << object;
    EXPECT_EQ(Generation(object), 0) << object;
    EXPECT_TRUE(Member(object, "spec").is_null()) << object;
    EXPECT_TRUE(Metadata(object).is_object()) << object;
  }
}

TEST(Dns1123, LabelsAsApimachineryValidatesThem) {
  for (const char* good : {"a", "ab", "abc", "a1", "a-1", "a--1--2--b", "0", "01", "012", "1a", "1-a", "1--a--b--2",
                           "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}) {
    EXPECT_TRUE(IsDns1123Label(good)) << good;
  }
  for (const char* bad : {"", "A", "ABC", "aBc", "A1", "A-1", "1-A", "-", "a-", "-a", "1-", "-1", "_", "a_", "_a",
                          "a_b", "1_", "_1", "1_2", ".", "a.", ".a", "a.b", "1.", ".1", "1.2", " ", "a ", " a", "a b",
                          "1 ", " 1", "1 2", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}) {
    EXPECT_FALSE(IsDns1123Label(bad)) << bad;
  }
}

TEST(Dns1123, SubdomainsAsApimachineryValidatesThem) {
  for (const char* good : {"a", "ab", "abc", "a1", "a-1", "a--1--2--b", "0", "01", "012", "1a", "1-a", "1--a--b--2",
                           "a.a", "ab.a", "abc.a", "a1.a", "a-1.a", "a--1--2--b.a", "a.1", "ab.1", "abc.1", "a1.1",
                           "a-1.1", "a--1--2--b.1", "0.a", "01.a", "012.a", "1a.a", "1-a.a", "1--a--b--2",
                           "0.1", "01.1", "012.1", "1a.1", "1-a.1", "1--a--b--2.1", "a.b.c.d.e", "aa.bb.cc.dd.ee",
                           "1.2.3.4.5", "11.22.33.44.55",
                           // a part longer than 63 characters is valid in a subdomain
                           "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.b"}) {
    EXPECT_TRUE(IsDns1123Subdomain(good)) << good;
  }
  for (const char* bad : {"", "A", "ABC", "aBc", "A1", "A-1", "1-A", "-", "a-", "-a", "1-", "-1", "_", "a_", "_a",
                          "a_b", "1_", "_1", "1_2", ".", "a.", ".a", "a..b", "1.", ".1", "1..2", " ", "a ", " a",
                          "a b", "1 ", " 1", "1 2", "A.a", "aB.a", "ab.A", "A1.a", "a1.A", "A.1", "aB.1", "A1.1",
                          "1A.1", "0.A", "01.A", "012.A", "1A.a", "1a.A", "A.B.C.D.E", "AA.BB.CC.DD.EE", "a.B.c.d.e",
                          "aa.bB.cc.dd.ee", "a@b", "a,b", "a_b", "a;b", "a:b", "a%b", "a?b", "a$b"}) {
    EXPECT_FALSE(IsDns1123Subdomain(bad)) << bad;
  }
  EXPECT_TRUE(IsDns1123Subdomain(std::string(253, 'a')));
  EXPECT_FALSE(IsDns1123Subdomain(std::string(254, 'a')));
}

}  // namespace
}  // namespace ro::common

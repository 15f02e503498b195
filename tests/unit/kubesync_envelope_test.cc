#include "ro/kubesync/envelope.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>

namespace ro::kubesync {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using Json = nlohmann::json;

Envelope SampleDeployment() {
  Envelope e;
  e.type = EventType::kUpsert;
  e.resync = true;
  e.gvr = kube::GroupVersionResource{"apps", "v1", "deployments"};
  e.observed_at = std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::nanoseconds(1700000000123456789)));
  e.object = Json::parse(R"({"apiVersion":"apps/v1","kind":"Deployment",
      "metadata":{"name":"web","namespace":"shop","resourceVersion":"61949","labels":{"a":"b\"c"}},
      "spec":{"replicas":3}})");
  return e;
}

// Decode(text) and return the DecodeError's field, or "<no error>".
std::string RejectedField(const std::string& text) {
  try {
    Decode(text);
  } catch (const DecodeError& e) {
    return e.field();
  }
  return "<no error>";
}

TEST(Envelope, EncodeWritesCompactJsonInDocumentedOrder) {
  Envelope e = SampleDeployment();
  e.object = Json::object({{"kind", "ConfigMap"}});
  EXPECT_EQ(Encode(e),
            R"({"v":1,"type":"upsert","resync":true,"gvr":"apps/v1/deployments","observedAt":1700000000123456789,)"
            R"("object":{"kind":"ConfigMap"},"pruned":false,"sourceDeleted":false})");
}

TEST(Envelope, RoundTripPreservesEveryField) {
  Envelope in = SampleDeployment();
  Envelope out = Decode(Encode(in));
  EXPECT_EQ(out.type, EventType::kUpsert);
  EXPECT_TRUE(out.resync);
  EXPECT_FALSE(out.pruned);
  EXPECT_EQ(out.gvr, in.gvr);
  EXPECT_EQ(out.observed_at, in.observed_at);
  EXPECT_EQ(out.object, in.object);
}

TEST(Envelope, RoundTripOfPrunedCoreGroupDelete) {
  Envelope in;
  in.type = EventType::kDelete;
  in.pruned = true;
  in.gvr = kube::GroupVersionResource{"", "v1", "configmaps"};
  in.object = Json::parse(R"({"metadata":{"name":"c","uid":"u-1"}})");
  std::string text = Encode(in);
  EXPECT_THAT(text, HasSubstr(R"("gvr":"v1/configmaps")"));
  EXPECT_THAT(text, HasSubstr(R"("observedAt":0)"));
  Envelope out = Decode(text);
  EXPECT_EQ(out.type, EventType::kDelete);
  EXPECT_TRUE(out.pruned);
  EXPECT_FALSE(out.resync);
  EXPECT_EQ(out.gvr, in.gvr);
  EXPECT_EQ(out.object["metadata"]["uid"], "u-1");
}

TEST(Envelope, RoundTripOfASourceDeletion) {
  Envelope in;
  in.type = EventType::kDelete;
  in.source_deleted = true;
  in.gvr = kube::GroupVersionResource{"apps", "v1", "deployments"};
  in.object = Json::parse(R"({"metadata":{"name":"d"}})");
  const std::string text = Encode(in);
  EXPECT_THAT(text, HasSubstr(R"("sourceDeleted":true)"));
  const Envelope out = Decode(text);
  EXPECT_TRUE(out.source_deleted);
  EXPECT_FALSE(out.pruned);
}

TEST(Envelope, TheSourceNamespaceTravelsWhenKnownAndIsLeftOutOtherwise) {
  Envelope in = SampleDeployment();
  EXPECT_THAT(Encode(in), ::testing::EndsWith(R"("sourceDeleted":false})"));
  EXPECT_TRUE(Decode(Encode(in)).source_namespace.is_null());
  in.source_namespace = Json::parse(R"({"resourceVersion":"812","labels":{"sync":"true"},"annotations":{}})");
  const std::string text = Encode(in);
  EXPECT_THAT(text, HasSubstr(R"(,"namespace":{"annotations":{},"labels":{"sync":"true"},"resourceVersion":"812"}})"));
  EXPECT_EQ(Decode(text).source_namespace, in.source_namespace);
  EXPECT_EQ(RejectedField(R"({"v":1,"type":"upsert","gvr":"v1/pods","observedAt":1,"object":{},"namespace":"shop"})"),
            "namespace");
  EXPECT_TRUE(Decode(R"({"v":1,"type":"upsert","gvr":"v1/pods","observedAt":1,"object":{},"namespace":null})")
                  .source_namespace.is_null());
  in.source_namespace = Json::array();
  EXPECT_THROW(Encode(in), std::invalid_argument);
}

TEST(Envelope, TheConfigGenerationTravelsWhenKnownAndIsLeftOutOtherwise) {
  Envelope in = SampleDeployment();
  EXPECT_THAT(Encode(in), Not(HasSubstr("configGeneration")));
  EXPECT_EQ(Decode(Encode(in)).config_generation, 0);
  in.config_generation = 4;
  in.source_namespace = Json::parse(R"({"labels":{}})");
  const std::string text = Encode(in);
  EXPECT_THAT(text, ::testing::EndsWith(R"(,"namespace":{"labels":{}},"configGeneration":4})"));
  EXPECT_EQ(Decode(text).config_generation, 4);
  EXPECT_EQ(Decode(R"({"v":1,"type":"upsert","gvr":"v1/pods","observedAt":1,"object":{},"configGeneration":)"
                   R"(9223372036854775807})")
                .config_generation,
            INT64_MAX);
  for (const char* bad : {"-1", "1.5", "\"3\"", "null", "9223372036854775808"}) {
    EXPECT_EQ(RejectedField(std::string(R"({"v":1,"type":"upsert","gvr":"v1/pods","observedAt":1,"object":{},)") +
                            R"("configGeneration":)" + bad + "}"),
              "configGeneration")
        << bad;
  }
  in.config_generation = -2;
  EXPECT_THROW(Encode(in), std::invalid_argument);
}

TEST(Envelope, TheStreamIncarnationTravelsWhenKnownAndIsLeftOutOtherwise) {
  Envelope in = SampleDeployment();
  EXPECT_THAT(Encode(in), Not(HasSubstr("streamCreated")));
  EXPECT_EQ(Decode(Encode(in)).stream_created, 0);
  in.config_generation = 4;
  in.stream_created = 1700000000123456789;
  const std::string text = Encode(in);
  EXPECT_THAT(text, ::testing::EndsWith(R"(,"configGeneration":4,"streamCreated":1700000000123456789})"));
  EXPECT_EQ(Decode(text).stream_created, 1700000000123456789);
  for (const char* bad : {"-1", "1.5", "\"3\"", "null", "9223372036854775808"}) {
    EXPECT_EQ(RejectedField(std::string(R"({"v":1,"type":"upsert","gvr":"v1/pods","observedAt":1,"object":{},)") +
                            R"("streamCreated":)" + bad + "}"),
              "streamCreated")
        << bad;
  }
  in.stream_created = -2;
  EXPECT_THROW(Encode(in), std::invalid_argument);
}

TEST(Envelope, DecodeDefaultsMissingFlagsAndIgnoresUnknownMembers) {
  Envelope out = Decode(R"({"v":1,"type":"delete","gvr":"v1/secrets","observedAt":5,"object":{},"future":[1]})");
  EXPECT_EQ(out.type, EventType::kDelete);
  EXPECT_FALSE(out.resync);
  EXPECT_FALSE(out.pruned);
  EXPECT_FALSE(out.source_deleted);
  EXPECT_EQ(out.observed_at.time_since_epoch(), std::chrono::nanoseconds(5));
}

TEST(Envelope, DecodeRejectsUnknownVersion) {
  EXPECT_EQ(RejectedField(R"({"v":2,"type":"upsert","gvr":"v1/pods","observedAt":1,"object":{}})"), "v");
  EXPECT_EQ(RejectedField(R"({"v":"1","type":"upsert","gvr":"v1/pods","observedAt":1,"object":{}})"), "v");
  EXPECT_EQ(RejectedField(R"({"type":"upsert","gvr":"v1/pods","observedAt":1,"object":{}})"), "v");
}

TEST(Envelope, DecodeRejectsMalformedMembersNamingTheField) {
  EXPECT_EQ(RejectedField(R"({"v":1,"type":"update","gvr":"v1/pods","observedAt":1,"object":{}})"), "type");
  EXPECT_EQ(RejectedField(R"({"v":1,"gvr":"v1/pods","observedAt":1,"object":{}})"), "type");
  EXPECT_EQ(RejectedField(R"({"v":1,"type":"upsert","gvr":7,"observedAt":1,"object":{}})"), "gvr");
  EXPECT_EQ(RejectedField(R"({"v":1,"type":"upsert","gvr":"","observedAt":1,"object":{}})"), "gvr");
  EXPECT_EQ(RejectedField(R"({"v":1,"type":"upsert","gvr":"v1/pods","observedAt":1.5,"object":{}})"), "observedAt");
  EXPECT_EQ(RejectedField(R"({"v":1,"type":"upsert","gvr":"v1/pods","observedAt":-1,"object":{}})"), "observedAt");
  EXPECT_EQ(RejectedField(R"({"v":1,"type":"upsert","gvr":"v1/pods","object":{}})"), "observedAt");
  EXPECT_EQ(RejectedField(R"({"v":1,"type":"upsert","gvr":"v1/pods","observedAt":1,"object":[]})"), "object");
  EXPECT_EQ(RejectedField(R"({"v":1,"type":"upsert","gvr":"v1/pods","observedAt":1})"), "object");
  EXPECT_EQ(RejectedField(R"({"v":1,"type":"upsert","gvr":"v1/pods","observedAt":1,"object":{},"resync":1})"),
            "resync");
  EXPECT_EQ(RejectedField(R"({"v":1,"type":"upsert","gvr":"v1/pods","observedAt":1,"object":{},"pruned":"no"})"),
            "pruned");
}

TEST(Envelope, DecodeRejectsNonJsonAndNonObjects) {
  EXPECT_EQ(RejectedField(""), "");
  EXPECT_EQ(RejectedField("{\"v\":1,"), "");
  EXPECT_EQ(RejectedField("[1,2]"), "");
  EXPECT_EQ(RejectedField("\"upsert\""), "");
  try {
    Decode("not json");
    FAIL() << "no DecodeError";
  } catch (const DecodeError& e) {
    EXPECT_THAT(e.what(), HasSubstr("invalid kubesync envelope: not JSON"));
  }
}

// Found by fuzz/envelope_fuzz.cc: nlohmann::json::parse reports a number beyond double's
// range as out_of_range, not parse_error, and it escaped Decode (a consumer thread that
// catches DecodeError only would terminate on such a message).
TEST(Envelope, DecodeRejectsNumbersBeyondDoubleRangeAsNotJson) {
  EXPECT_EQ(RejectedField("1e999"), "");
  EXPECT_EQ(RejectedField(R"({"v":1,"type":"upsert","gvr":"v1/pods","observedAt":1,"object":{"n":-1e999}})"), "");
}

TEST(Envelope, EncodeRejectsNonObjectPayload) {
  Envelope e = SampleDeployment();
  e.object = Json::array();
  EXPECT_THROW(Encode(e), std::invalid_argument);
}

// ---- Batches ----------------------------------------------------------------------------

Envelope NamedConfigMap(const std::string& name, std::int64_t generation = 3) {
  Envelope e;
  e.gvr = kube::GroupVersionResource{"", "v1", "configmaps"};
  e.resync = true;
  e.config_generation = generation;
  e.object = Json{{"kind", "ConfigMap"}, {"metadata", {{"name", name}, {"namespace", "shop"}}}};
  return e;
}

TEST(EnvelopeBatch, OneEventTravelsAsASingleEnvelopeAndSeveralAsOneBatchInOrder) {
  BatchBuilder one;
  ASSERT_TRUE(one.Add(Encode(NamedConfigMap("a"))));
  const std::string single = one.Take();
  EXPECT_EQ(single, Encode(NamedConfigMap("a")));
  EXPECT_TRUE(one.empty());

  BatchBuilder batch;
  for (const char* name : {"a", "b", "c"}) ASSERT_TRUE(batch.Add(Encode(NamedConfigMap(name, 7))));
  EXPECT_EQ(batch.events(), 3u);
  const DecodedMessage decoded = DecodeMessage(batch.Take());
  EXPECT_TRUE(batch.empty());
  EXPECT_TRUE(decoded.invalid.empty());
  ASSERT_EQ(decoded.events.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(decoded.events[i].object["metadata"]["name"], std::string(1, static_cast<char>('a' + i)));
    EXPECT_EQ(decoded.events[i].config_generation, 7);  // each event's own, not the shell's
    EXPECT_EQ(decoded.events[i].gvr, (kube::GroupVersionResource{"", "v1", "configmaps"}));
    EXPECT_TRUE(decoded.events[i].resync);
  }
  // A single envelope through DecodeMessage is one event.
  EXPECT_EQ(DecodeMessage(single).events.size(), 1u);
}

// The rolling-upgrade property: a reader of a release without batches decodes a batch
// with the version-1 rules (unknown members ignored) as one event of the newest
// possible configuration, and its stage runtime leaves it to the upgraded replicas
// (NAK) instead of terminating it as undecodable.
TEST(EnvelopeBatch, AReaderWithoutBatchesTakesABatchForAnEventOfANewerConfiguration) {
  BatchBuilder batch;
  ASSERT_TRUE(batch.Add(Encode(NamedConfigMap("a"))));
  ASSERT_TRUE(batch.Add(Encode(NamedConfigMap("b"))));
  Json shell = Json::parse(batch.Take());
  ASSERT_TRUE(shell.contains("events"));
  shell.erase("events");  // what a version-1 reader's Decode does not look at
  const Envelope seen_by_old_reader = Decode(shell.dump());
  EXPECT_EQ(seen_by_old_reader.config_generation, kBatchGeneration);
  EXPECT_EQ(seen_by_old_reader.config_generation, std::numeric_limits<std::int64_t>::max());
}

TEST(EnvelopeBatch, DecodeRefusesABatchWhereOneEventIsExpected) {
  BatchBuilder batch;
  ASSERT_TRUE(batch.Add(Encode(NamedConfigMap("a"))));
  ASSERT_TRUE(batch.Add(Encode(NamedConfigMap("b"))));
  EXPECT_EQ(RejectedField(batch.Take()), "events");
}

TEST(EnvelopeBatch, ABatchIsClosedBeforeItOutgrowsItsLimitAndAnOversizedEventGoesAlone) {
  const std::string event = Encode(NamedConfigMap("a"));
  BatchBuilder batch(3 * event.size() + 200);
  std::size_t added = 0;
  while (batch.Add(event)) ++added;
  EXPECT_GE(added, 2u);
  EXPECT_EQ(batch.events(), added);  // the refused event was not added
  const std::string message = batch.Take();
  EXPECT_LE(message.size(), 3 * event.size() + 200);
  EXPECT_EQ(DecodeMessage(message).events.size(), added);

  BatchBuilder small(event.size() / 2);
  EXPECT_TRUE(small.Add(event));  // alone: accepted whatever its size
  EXPECT_FALSE(small.Add(event));
  EXPECT_EQ(small.Take(), event);
}

TEST(EnvelopeBatch, AnInvalidMemberIsReportedAloneAndTheOthersAreDecoded) {
  const std::string good = Encode(NamedConfigMap("good"));
  const std::string text = R"({"v":1,"type":"upsert","gvr":"kubesync.astronetes.io/v1/batches","observedAt":0,)"
                           R"("object":{},"configGeneration":9223372036854775807,"events":[)" +
                           good + R"(,{"v":1,"type":"upsert"},7,)" + good + "]}";
  const DecodedMessage decoded = DecodeMessage(text);
  EXPECT_EQ(decoded.events.size(), 2u);
  ASSERT_EQ(decoded.invalid.size(), 2u);
  EXPECT_EQ(decoded.invalid[0].field(), "gvr");
  EXPECT_EQ(decoded.invalid[1].field(), "events");
}

TEST(EnvelopeBatch, AMalformedBatchIsRejectedAsAWhole) {
  auto rejected = [](const std::string& text) {
    try {
      DecodeMessage(text);
    } catch (const DecodeError& e) {
      return e.field();
    }
    return std::string("<no error>");
  };
  const std::string head = R"({"v":1,"type":"upsert","gvr":"v1/x","observedAt":0,"object":{},)";
  // Without the shell's generation an older reader would handle the shell as an event.
  EXPECT_EQ(rejected(head + R"("events":[]})"), "events");
  EXPECT_EQ(rejected(head + R"("configGeneration":3,"events":[]})"), "events");
  EXPECT_EQ(rejected(head + R"("configGeneration":9223372036854775807,"events":{}})"), "events");
  EXPECT_EQ(rejected(R"({"v":2,"configGeneration":9223372036854775807,"events":[]})"), "v");
  // A batch inside a batch is an invalid member, not a second level.
  BatchBuilder inner;
  ASSERT_TRUE(inner.Add(Encode(NamedConfigMap("a"))));
  ASSERT_TRUE(inner.Add(Encode(NamedConfigMap("b"))));
  BatchBuilder outer;
  ASSERT_TRUE(outer.Add(inner.Take()));
  ASSERT_TRUE(outer.Add(Encode(NamedConfigMap("c"))));
  const DecodedMessage decoded = DecodeMessage(outer.Take());
  EXPECT_EQ(decoded.events.size(), 1u);
  ASSERT_EQ(decoded.invalid.size(), 1u);
  EXPECT_EQ(decoded.invalid[0].field(), "events");
}

TEST(PipelineNames, DeriveStreamSubjectsAndPrefixFromTheSanitizedId) {
  PipelineNames names("dr-config", "pre.prod/x");
  EXPECT_EQ(names.id(), "dr-config.pre_prod_x");
  EXPECT_EQ(names.stream(), "KS_dr-config_pre_prod_x");
  EXPECT_EQ(names.events_subject(), "ks.dr-config.pre_prod_x.events");
  EXPECT_EQ(names.apply_subject(), "ks.dr-config.pre_prod_x.apply");
  EXPECT_EQ(names.control_subject(), "ks.dr-config.pre_prod_x.control");
  EXPECT_THAT(names.stream_subjects(),
              ::testing::ElementsAre("ks.dr-config.pre_prod_x.events", "ks.dr-config.pre_prod_x.apply"));
  EXPECT_EQ(names.redis_prefix(), "ks:dr-config.pre_prod_x");
}

}  // namespace
}  // namespace ro::kubesync

// Status conditions (meta.SetStatusCondition semantics), the status writer (write only
// on change, Conflict reported, Events on condition changes) and finalizer helpers.
// The apiserver is a scripted FakeTransport; Events go to an in-memory sink.
#include <gtest/gtest.h>

#include <mutex>
#include <vector>

#include <nlohmann/json.hpp>

#include "kube_fake_transport.h"
#include "ro/kube/client.h"
#include "ro/kube/clock.h"
#include "ro/kube/errors.h"
#include "ro/kube/event_recorder.h"
#include "ro/runtime/conditions.h"
#include "ro/runtime/finalizers.h"
#include "ro/runtime/status.h"

namespace ro::runtime {
namespace {

using nlohmann::json;
using std::chrono::seconds;

const kube::GroupVersionResource kBuckets{"assets.astronetes.io", "v1alpha1", "buckets"};
constexpr const char* kBucketPath = "/apis/assets.astronetes.io/v1alpha1/namespaces/ns1/buckets/b1";

Condition Ready(ConditionStatus status, std::string reason, std::string message = "") {
  Condition c;
  c.type = "Ready";
  c.status = status;
  c.reason = std::move(reason);
  c.message = std::move(message);
  return c;
}

std::chrono::system_clock::time_point At(int64_t unix_seconds) {
  return std::chrono::system_clock::time_point{seconds{unix_seconds}};
}

TEST(ConditionsTest, ANewConditionTransitionsNow) {
  json conditions;
  EXPECT_TRUE(SetStatusCondition(conditions, Ready(ConditionStatus::kFalse, "SecretNotFound"),
                                 At(1'704'067'200)));
  const auto ready = FindStatusCondition(conditions, "Ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, ConditionStatus::kFalse);
  EXPECT_EQ(ready->last_transition_time, "2024-01-01T00:00:00Z");
}

TEST(ConditionsTest, SameStatusKeepsTheTransitionTimeButTakesTheNewReason) {
  json conditions;
  SetStatusCondition(conditions, Ready(ConditionStatus::kFalse, "SecretNotFound"), At(1000));
  EXPECT_TRUE(SetStatusCondition(conditions, Ready(ConditionStatus::kFalse, "Unreachable", "x"),
                                 At(2000)));
  const auto ready = FindStatusCondition(conditions, "Ready");
  EXPECT_EQ(ready->reason, "Unreachable");
  EXPECT_EQ(ready->message, "x");
  EXPECT_EQ(ready->last_transition_time, "1970-01-01T00:16:40Z");  // 1000 s
}

TEST(ConditionsTest, AStatusChangeMovesTheTransitionTime) {
  json conditions;
  SetStatusCondition(conditions, Ready(ConditionStatus::kFalse, "Unreachable"), At(1000));
  SetStatusCondition(conditions, Ready(ConditionStatus::kTrue, "Connected"), At(2000));
  EXPECT_EQ(FindStatusCondition(conditions, "Ready")->last_transition_time,
            "1970-01-01T00:33:20Z");  // 2000 s
}

TEST(ConditionsTest, SettingTheSameConditionAgainChangesNothing) {
  json conditions;
  SetStatusCondition(conditions, Ready(ConditionStatus::kTrue, "Connected", "ok"), At(1000));
  const json before = conditions;
  EXPECT_FALSE(
      SetStatusCondition(conditions, Ready(ConditionStatus::kTrue, "Connected", "ok"), At(5000)));
  EXPECT_EQ(conditions, before);
}

TEST(ConditionsTest, OtherConditionTypesAreLeftAlone) {
  json conditions = json::array({{{"type", "Synced"},
                                  {"status", "True"},
                                  {"reason", "Done"},
                                  {"message", ""},
                                  {"lastTransitionTime", "2020-01-01T00:00:00Z"}}});
  SetStatusCondition(conditions, Ready(ConditionStatus::kTrue, "Connected"), At(1000));
  ASSERT_EQ(conditions.size(), 2u);
  EXPECT_EQ(FindStatusCondition(conditions, "Synced")->reason, "Done");
  EXPECT_TRUE(RemoveStatusCondition(conditions, "Synced"));
  EXPECT_FALSE(RemoveStatusCondition(conditions, "Synced"));
  EXPECT_EQ(conditions.size(), 1u);
}

TEST(ConditionsTest, MalformedConditionsAreRejected) {
  EXPECT_THROW(ParseConditionStatus("true"), std::invalid_argument);
  EXPECT_THROW(ConditionFromJson(json{{"status", "True"}}), std::invalid_argument);
  EXPECT_FALSE(FindStatusCondition(json(), "Ready"));
}

TEST(FinalizersTest, AddAndRemoveAreIdempotent) {
  json object = {{"metadata", {{"name", "b1"}}}};
  EXPECT_FALSE(HasFinalizer(object, "astronetes.io/cleanup"));
  EXPECT_TRUE(AddFinalizer(object, "astronetes.io/cleanup"));
  EXPECT_FALSE(AddFinalizer(object, "astronetes.io/cleanup"));
  EXPECT_TRUE(AddFinalizer(object, "other/keep"));
  EXPECT_TRUE(RemoveFinalizer(object, "astronetes.io/cleanup"));
  EXPECT_FALSE(RemoveFinalizer(object, "astronetes.io/cleanup"));
  EXPECT_EQ(object["metadata"]["finalizers"], json::array({"other/keep"}));
  EXPECT_TRUE(RemoveFinalizer(object, "other/keep"));
  EXPECT_FALSE(object["metadata"].contains("finalizers"));
}

// The Events a RecordingSink received. Thread-safe.
class EventLog {
 public:
  void Add(const json& event) {
    const std::lock_guard lock(mu_);
    events_.push_back(event);
  }
  std::vector<json> Events() const {
    const std::lock_guard lock(mu_);
    return events_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<json> events_;
};

// Stores the Events the recorder sends in an EventLog.
class RecordingSink final : public kube::EventSink {
 public:
  explicit RecordingSink(EventLog& log) : log_(log) {}
  json Create(const std::string& /*ns*/, const json& event) override {
    log_.Add(event);
    return event;
  }
  json Patch(const std::string& /*ns*/, const std::string& /*name*/,
             const json& /*patch*/) override {
    throw kube::ApiError(404, kube::StatusReason::kNotFound, "not found");
  }

 private:
  EventLog& log_;
};

class StatusWriterTest : public ::testing::Test {
 protected:
  StatusWriterTest()
      : transport_(std::make_shared<kube::testing::FakeTransport>()),
        client_(Config(), transport_),
        recorder_(std::make_unique<RecordingSink>(event_log_), RecorderOptions(), clock_),
        writer_(client_, recorder_, log::Logger(json{{"controller", "bucket"}}), clock_) {}

  static kube::RestConfig Config() {
    kube::RestConfig config;
    config.server = "https://127.0.0.1:6443";
    return config;
  }
  static kube::EventRecorderOptions RecorderOptions() {
    kube::EventRecorderOptions options;
    options.component = "bucket-controller";
    return options;
  }
  static json Bucket(json status = nullptr) {
    json object = {{"apiVersion", "assets.astronetes.io/v1alpha1"},
                   {"kind", "Bucket"},
                   {"metadata",
                    {{"namespace", "ns1"},
                     {"name", "b1"},
                     {"uid", "u1"},
                     {"generation", 3},
                     {"resourceVersion", "41"}}}};
    if (!status.is_null()) object["status"] = std::move(status);
    return object;
  }
  std::vector<json> Events() {
    recorder_.WaitForIdle(std::chrono::milliseconds{10'000});
    return event_log_.Events();
  }
  json LastRequestBody() const { return json::parse(transport_->requests.back().body); }

  kube::FakeClock clock_;
  std::shared_ptr<kube::testing::FakeTransport> transport_;
  kube::DynamicClient client_;
  EventLog event_log_;
  kube::EventRecorder recorder_;
  StatusWriter writer_;
};

TEST_F(StatusWriterTest, WritesTheConditionWithResourceVersionAndRecordsAWarningEvent) {
  transport_->Respond("PUT", std::string(kBucketPath) + "/status", 200, Bucket().dump());
  const WriteOutcome outcome =
      writer_.ApplyCondition(kBuckets, Bucket(),
                             Ready(ConditionStatus::kFalse, "SecretNotFound", "no Secret"),
                             {{"provider", "generic"}, {"endpoint", std::nullopt}});
  EXPECT_EQ(outcome, WriteOutcome::kWritten);
  const json body = LastRequestBody();
  EXPECT_EQ(body["metadata"]["resourceVersion"], "41");
  EXPECT_EQ(body["status"]["observedGeneration"], 3);
  EXPECT_EQ(body["status"]["provider"], "generic");
  EXPECT_FALSE(body["status"].contains("endpoint"));
  const json& ready = body["status"]["conditions"][0];
  EXPECT_EQ(ready["reason"], "SecretNotFound");
  EXPECT_EQ(ready["observedGeneration"], 3);
  EXPECT_EQ(ready["lastTransitionTime"], "2024-01-01T00:00:00Z");

  const std::vector<json> events = Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["type"], "Warning");
  EXPECT_EQ(events[0]["reason"], "SecretNotFound");
  EXPECT_EQ(events[0]["message"], "no Secret");
  EXPECT_EQ(events[0]["involvedObject"]["uid"], "u1");
}

TEST_F(StatusWriterTest, AnUnchangedStatusIsNotWrittenAndRecordsNoEvent) {
  json conditions;
  Condition ready = Ready(ConditionStatus::kTrue, "Accessible", "fine");
  ready.observed_generation = 3;
  SetStatusCondition(conditions, ready, At(1000));
  const json status = {{"observedGeneration", 3}, {"conditions", conditions}};
  const WriteOutcome outcome = writer_.ApplyCondition(kBuckets, Bucket(status), ready);
  EXPECT_EQ(outcome, WriteOutcome::kUnchanged);
  EXPECT_TRUE(transport_->requests.empty());
  EXPECT_TRUE(Events().empty());
}

TEST_F(StatusWriterTest, BecomingReadyRecordsANormalEventAndMovesTheTransitionTime) {
  json conditions;
  SetStatusCondition(conditions, Ready(ConditionStatus::kFalse, "Unreachable"), At(1000));
  transport_->Respond("PUT", std::string(kBucketPath) + "/status", 200, Bucket().dump());
  writer_.ApplyCondition(kBuckets, Bucket({{"conditions", conditions}}),
                         Ready(ConditionStatus::kTrue, "Accessible", "fine"));
  EXPECT_EQ(LastRequestBody()["status"]["conditions"][0]["lastTransitionTime"],
            "2024-01-01T00:00:00Z");
  const std::vector<json> events = Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["type"], "Normal");
  EXPECT_EQ(events[0]["reason"], "Accessible");
}

TEST_F(StatusWriterTest, AConflictIsReportedNotThrownAndRecordsNoEvent) {
  transport_->Respond("PUT", std::string(kBucketPath) + "/status", 409,
                      R"({"kind":"Status","reason":"Conflict","code":409,"message":"stale"})");
  EXPECT_EQ(writer_.ApplyCondition(kBuckets, Bucket(), Ready(ConditionStatus::kTrue, "Accessible")),
            WriteOutcome::kConflict);
  EXPECT_TRUE(Events().empty());
}

TEST_F(StatusWriterTest, OtherApiErrorsAreThrown) {
  transport_->Respond("PUT", std::string(kBucketPath) + "/status", 404,
                      R"({"kind":"Status","reason":"NotFound","code":404,"message":"gone"})");
  EXPECT_THROW(
      writer_.ApplyCondition(kBuckets, Bucket(), Ready(ConditionStatus::kTrue, "Accessible")),
      kube::ApiError);
}

TEST_F(StatusWriterTest, EnsureFinalizerUpdatesWithThePreconditionOrReportsConflict) {
  transport_->Respond("PUT", kBucketPath, 200, Bucket().dump());
  EXPECT_EQ(EnsureFinalizer(client_, kBuckets, Bucket(), "astronetes.io/cleanup"),
            WriteOutcome::kWritten);
  EXPECT_EQ(LastRequestBody()["metadata"]["finalizers"], json::array({"astronetes.io/cleanup"}));
  EXPECT_EQ(LastRequestBody()["metadata"]["resourceVersion"], "41");

  json with_finalizer = Bucket();
  AddFinalizer(with_finalizer, "astronetes.io/cleanup");
  const std::size_t requests = transport_->requests.size();
  EXPECT_EQ(EnsureFinalizer(client_, kBuckets, with_finalizer, "astronetes.io/cleanup"),
            WriteOutcome::kUnchanged);
  EXPECT_EQ(transport_->requests.size(), requests);

  transport_->Respond("PUT", kBucketPath, 409,
                      R"({"kind":"Status","reason":"Conflict","code":409,"message":"stale"})");
  EXPECT_EQ(DropFinalizer(client_, kBuckets, with_finalizer, "astronetes.io/cleanup"),
            WriteOutcome::kConflict);
  transport_->Respond("PUT", kBucketPath, 404,
                      R"({"kind":"Status","reason":"NotFound","code":404,"message":"gone"})");
  EXPECT_EQ(DropFinalizer(client_, kBuckets, with_finalizer, "astronetes.io/cleanup"),
            WriteOutcome::kWritten);
}

}  // namespace
}  // namespace ro::runtime

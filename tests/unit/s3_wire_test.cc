// S3 wire format: key encoding, ListObjectsV2 / error XML extraction, and the Bucket
// spec -> client configuration mapping. No server involved.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "ro/common/time.h"
#include "ro/plugins/s3_client.h"

namespace ro::plugins {
namespace {

using nlohmann::json;

// A ListObjectsV2 page as AWS documents it (with namespace, owner and storage class).
constexpr std::string_view kTruncatedPage = R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>bucket-dev</Name>
  <Prefix>dr-config/</Prefix>
  <KeyCount>2</KeyCount>
  <MaxKeys>2</MaxKeys>
  <IsTruncated>true</IsTruncated>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
  <Contents>
    <Key>dr-config/pre/apps-v1-deployments/test-namespace-one.helloworld</Key>
    <LastModified>2009-10-12T17:50:30.000Z</LastModified>
    <ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag>
    <Size>434234</Size>
    <StorageClass>STANDARD</StorageClass>
  </Contents>
  <Contents>
    <Key>dr-config/a &amp; b &lt;c&gt; &#233;&#x4E2D;</Key>
    <LastModified>2009-10-12T17:50:31.5Z</LastModified>
    <ETag>"0123"</ETag>
    <Size>0</Size>
    <Owner><ID>75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a</ID></Owner>
  </Contents>
</ListBucketResult>)";

TEST(EncodeS3KeyTest, KeepsUnreservedCharactersAndSlashes) {
  EXPECT_EQ(EncodeS3Key("dr-config/pre/apps-v1-deployments/ns.name_x~y"),
            "dr-config/pre/apps-v1-deployments/ns.name_x~y");
}

TEST(EncodeS3KeyTest, PercentEncodesEverythingElseInUpperCaseHex) {
  EXPECT_EQ(EncodeS3Key("a b/c+d"), "a%20b/c%2Bd");
  EXPECT_EQ(EncodeS3Key("x=1&y?#%"), "x%3D1%26y%3F%23%25");
  EXPECT_EQ(EncodeS3Key("caf\xc3\xa9"), "caf%C3%A9");  // UTF-8 bytes one by one
  EXPECT_EQ(EncodeS3Key("*:@!'()"), "%2A%3A%40%21%27%28%29");
}

TEST(EncodeS3QueryValueTest, EncodesSlashesToo) {
  EXPECT_EQ(EncodeS3QueryValue("dr-config/pre/"), "dr-config%2Fpre%2F");
  EXPECT_EQ(EncodeS3QueryValue("1ueG/XY+=="), "1ueG%2FXY%2B%3D%3D");
}

TEST(ParseListObjectsV2Test, ExtractsKeysSizesETagsAndTimes) {
  const S3ListPage page = ParseListObjectsV2(kTruncatedPage);
  ASSERT_EQ(page.objects.size(), 2u);
  EXPECT_EQ(page.objects[0].key,
            "dr-config/pre/apps-v1-deployments/test-namespace-one.helloworld");
  EXPECT_EQ(page.objects[0].size, 434234u);
  EXPECT_EQ(page.objects[0].etag, "fba9dede5f27731c9771645a39863328");
  EXPECT_EQ(page.objects[0].last_modified, common::ParseRfc3339("2009-10-12T17:50:30Z"));
  EXPECT_EQ(page.objects[1].size, 0u);
  EXPECT_EQ(page.objects[1].etag, "0123");
  EXPECT_EQ(common::FormatRfc3339Micro(page.objects[1].last_modified),
            "2009-10-12T17:50:31.500000Z");
}

TEST(ParseListObjectsV2Test, DecodesEntitiesAndCharacterReferences) {
  const S3ListPage page = ParseListObjectsV2(kTruncatedPage);
  EXPECT_EQ(page.objects.at(1).key, "dr-config/a & b <c> \xc3\xa9\xe4\xb8\xad");
}

TEST(ParseListObjectsV2Test, ReportsTruncationAndTheContinuationToken) {
  const S3ListPage page = ParseListObjectsV2(kTruncatedPage);
  EXPECT_TRUE(page.is_truncated);
  EXPECT_EQ(page.next_continuation_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
}

TEST(ParseListObjectsV2Test, ReadsAnEmptyLastPage) {
  const S3ListPage page = ParseListObjectsV2(
      "<ListBucketResult><Name>b</Name><Prefix/><KeyCount>0</KeyCount>"
      "<IsTruncated>false</IsTruncated></ListBucketResult>");
  EXPECT_TRUE(page.objects.empty());
  EXPECT_FALSE(page.is_truncated);
  EXPECT_EQ(page.next_continuation_token, "");
}

TEST(ParseListObjectsV2Test, DoesNotConfuseSimilarTagNames) {
  // <KeyCount> must not be read as <Key>, nor <SizeX> as <Size>.
  const S3ListPage page = ParseListObjectsV2(
      "<ListBucketResult><KeyCount>1</KeyCount><Contents><KeyMarker>no</KeyMarker>"
      "<Key>yes</Key><SizeX>9</SizeX><Size>7</Size></Contents>"
      "<IsTruncated>false</IsTruncated></ListBucketResult>");
  ASSERT_EQ(page.objects.size(), 1u);
  EXPECT_EQ(page.objects[0].key, "yes");
  EXPECT_EQ(page.objects[0].size, 7u);
}

TEST(ParseListObjectsV2Test, RejectsBodiesThatAreNotAListing) {
  EXPECT_THROW(ParseListObjectsV2("<Error><Code>NoSuchBucket</Code></Error>"), S3Error);
  EXPECT_THROW(ParseListObjectsV2(""), S3Error);
  EXPECT_THROW(ParseListObjectsV2("<ListBucketResult><Contents><Size>1</Size></Contents>"
                                  "</ListBucketResult>"),
               S3Error);  // no <Key>
  EXPECT_THROW(ParseListObjectsV2("<ListBucketResult><Contents><Key>k</Key><Size>x</Size>"
                                  "</Contents></ListBucketResult>"),
               S3Error);  // bad size
  EXPECT_THROW(ParseListObjectsV2("<ListBucketResult><IsTruncated>true</IsTruncated>"
                                  "</ListBucketResult>"),
               S3Error);  // truncated without a token
}

TEST(ParseS3ErrorBodyTest, ExtractsCodeAndMessage) {
  const S3ErrorBody body = ParseS3ErrorBody(
      R"(<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>InvalidAccessKeyId</Code><Message>The AWS Access Key Id you provided does not exist in our records.</Message><AWSAccessKeyId>WRONG</AWSAccessKeyId><RequestId>1</RequestId></Error>)");
  EXPECT_EQ(body.code, "InvalidAccessKeyId");
  EXPECT_EQ(body.message, "The AWS Access Key Id you provided does not exist in our records.");
}

TEST(ParseS3ErrorBodyTest, IsEmptyForBodiesWithoutAnError) {
  const S3ErrorBody body = ParseS3ErrorBody("");
  EXPECT_EQ(body.code, "");
  EXPECT_EQ(body.message, "");
  EXPECT_EQ(ParseS3ErrorBody("<html>Bad Gateway</html>").code, "");
}

TEST(S3ErrorTest, RetryableOnlyForNoAnswerServerErrorsAndThrottling) {
  EXPECT_TRUE(S3Error(S3Error::Code::kUnreachable, 0, "", "x").retryable());
  EXPECT_TRUE(S3Error(S3Error::Code::kOther, 500, "InternalError", "x").retryable());
  EXPECT_TRUE(S3Error(S3Error::Code::kOther, 503, "SlowDown", "x").retryable());
  EXPECT_FALSE(S3Error(S3Error::Code::kAccessDenied, 403, "AccessDenied", "x").retryable());
  EXPECT_FALSE(S3Error(S3Error::Code::kNoSuchBucket, 404, "NoSuchBucket", "x").retryable());
}

const S3Credentials kCredentials{"AKID", "SECRET"};

TEST(BucketConfigTest, GenericBucketUsesTheEndpointAsGiven) {
  const S3Config config = GenericBucketConfig("127.0.0.1:4569", false, "bucket-dev", kCredentials);
  EXPECT_EQ(config.endpoint, "127.0.0.1:4569");
  EXPECT_FALSE(config.use_ssl);
  EXPECT_EQ(config.region, "us-east-1");
  EXPECT_EQ(config.bucket, "bucket-dev");
  EXPECT_TRUE(config.path_style);
  EXPECT_EQ(config.credentials.access_key_id, "AKID");
}

TEST(BucketConfigTest, GenericBucketSignsForTheRegionOfAnAwsEndpoint) {
  // The manual's AWS example uses a generic bucket with the regional endpoint.
  EXPECT_EQ(GenericBucketConfig("s3.eu-west-1.amazonaws.com", true, "b", kCredentials).region,
            "eu-west-1");
  EXPECT_EQ(GenericBucketConfig("s3-us-west-2.amazonaws.com", true, "b", kCredentials).region,
            "us-west-2");
  EXPECT_EQ(GenericBucketConfig("s3.amazonaws.com", true, "b", kCredentials).region,
            "us-east-1");
  EXPECT_EQ(GenericBucketConfig("storage.googleapis.com", true, "b", kCredentials).region,
            "auto");
}

TEST(BucketConfigTest, GenericBucketRejectsSchemesAndPaths) {
  EXPECT_THROW(GenericBucketConfig("https://s3.amazonaws.com", true, "b", kCredentials),
               S3ConfigError);
  EXPECT_THROW(GenericBucketConfig("minio:9000/path", true, "b", kCredentials), S3ConfigError);
  EXPECT_THROW(GenericBucketConfig("", true, "b", kCredentials), S3ConfigError);
  EXPECT_THROW(GenericBucketConfig("minio:9000", true, "", kCredentials), S3ConfigError);
}

TEST(BucketConfigTest, AwsAndGcpKindsChooseEndpointRegionAndTls) {
  const S3Config aws = AwsS3BucketConfig("eu-central-1", "b", kCredentials);
  EXPECT_EQ(aws.endpoint, "s3.eu-central-1.amazonaws.com");
  EXPECT_EQ(aws.region, "eu-central-1");
  EXPECT_TRUE(aws.use_ssl);
  EXPECT_EQ(AwsS3BucketConfig("cn-north-1", "b", kCredentials).endpoint,
            "s3.cn-north-1.amazonaws.com.cn");
  EXPECT_THROW(AwsS3BucketConfig("EU West", "b", kCredentials), S3ConfigError);

  const S3Config gcs = GcpCloudStorageBucketConfig("b", kCredentials);
  EXPECT_EQ(gcs.endpoint, "storage.googleapis.com");
  EXPECT_EQ(gcs.region, "auto");
  EXPECT_TRUE(gcs.use_ssl);
}

TEST(BucketConfigTest, FromSpecPicksTheOneKindThatIsSet) {
  const S3Config generic = S3ConfigFromBucketSpec(
      json::parse(R"({"generic":{"endpoint":"storage.googleapis.com","name":"gcp-bucket",
                     "useSSL":true,"secretName":"bucket-credentials"}})"),
      kCredentials);
  EXPECT_EQ(generic.endpoint, "storage.googleapis.com");
  EXPECT_TRUE(generic.use_ssl);
  EXPECT_EQ(generic.region, "auto");

  EXPECT_FALSE(S3ConfigFromBucketSpec(
                   json::parse(R"({"generic":{"endpoint":"minio:9000","name":"b"}})"),
                   kCredentials)
                   .use_ssl);  // useSSL omitted: false
  EXPECT_EQ(S3ConfigFromBucketSpec(
                json::parse(R"({"awsS3":{"name":"b","region":"us-west-2","secretName":"s"}})"),
                kCredentials)
                .endpoint,
            "s3.us-west-2.amazonaws.com");
  EXPECT_EQ(S3ConfigFromBucketSpec(json::parse(R"({"gcpCloudStorage":{"name":"b"}})"),
                                   kCredentials)
                .endpoint,
            "storage.googleapis.com");
}

std::string FieldOf(const json& spec) {
  try {
    S3ConfigFromBucketSpec(spec, kCredentials);
  } catch (const S3ConfigError& e) {
    return e.field();
  }
  return "no error";
}

TEST(BucketConfigTest, FromSpecNamesTheOffendingField) {
  EXPECT_EQ(FieldOf(json::object()), "spec");
  EXPECT_EQ(FieldOf(json::parse(R"({"generic":{"name":"b"},"awsS3":{"name":"b"}})")), "spec");
  EXPECT_EQ(FieldOf(json::parse(R"({"generic":{"name":"b"}})")), "spec.generic.endpoint");
  EXPECT_EQ(FieldOf(json::parse(R"({"generic":{"endpoint":"h","name":"b","useSSL":"yes"}})")),
            "spec.generic.useSSL");
  EXPECT_EQ(FieldOf(json::parse(R"({"awsS3":{"name":"b"}})")), "spec.awsS3.region");
  EXPECT_EQ(FieldOf(json::parse(R"({"gcpCloudStorage":{"name":7}})")),
            "spec.gcpCloudStorage.name");
}

}  // namespace
}  // namespace ro::plugins

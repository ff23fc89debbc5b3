#include "cairn/sdk/s3_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cairn/testing/status_matchers.h"
#include "fake_daytona.h"

namespace cairn::sdk {
namespace {

using ::cairn::testing::FakeDaytona;
using ::cairn::testing::IsOk;
using ::cairn::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

StorageAccess accessFor(const FakeDaytona& fake) {
  ObjectStorageApi api(makeApiConnection(fake.apiUrl(), FakeDaytona::kApiKey, "", "", nullptr));
  return api.getPushAccess();
}

// Deterministic bytes that differ from part to part.
std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  std::uint32_t x = 12345;
  for (auto& c : s) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 16);
  }
  return s;
}

// Produces `body` in chunks of `chunk` bytes.
BodyProducer chunked(const std::string& body, std::size_t chunk) {
  return [&body, chunk](const ChunkSink& sink) {
    for (std::size_t i = 0; i < body.size(); i += chunk) {
      CAIRN_RETURN_IF_ERROR(sink(std::string_view(body).substr(i, chunk)));
    }
    return okStatus();
  };
}

TEST(S3ClientTest, Crc32Base64Vector) {
  EXPECT_EQ(crc32Base64("123456789"), "y/Q5Jg==");
  EXPECT_EQ(crc32Base64(""), "AAAAAA==");
}

TEST(S3ClientTest, SmallBodyIsOnePutObject) {
  FakeDaytona fake;
  S3Client s3(accessFor(fake), std::make_shared<HttpClient>());
  std::string key = std::string(FakeDaytona::kOrgId) + "/abc/context.tar";
  std::string body = "hello world";
  ASSERT_OK(s3.upload(key, body.size(), chunked(body, 3)));
  EXPECT_THAT(fake.s3Failures(), IsEmpty());
  EXPECT_EQ(fake.objects()[key], body);
  EXPECT_EQ(s3.lastUpload().parts, 0);
  auto puts = fake.requests("PUT", "/s3/");
  ASSERT_EQ(puts.size(), 1u);
  EXPECT_EQ(puts[0].path, "/s3/daytona-volume-builds/" + key);
  EXPECT_EQ(puts[0].query, "x-id=PutObject");
  EXPECT_EQ(puts[0].headers["x-amz-checksum-crc32"], crc32Base64(body));
  EXPECT_EQ(puts[0].headers["x-amz-sdk-checksum-algorithm"], "CRC32");
  EXPECT_EQ(puts[0].headers["x-amz-security-token"], FakeDaytona::kSessionToken);
  EXPECT_THAT(puts[0].headers["authorization"], HasSubstr("AWS4-HMAC-SHA256 Credential=AKIAFAKE/"));
}

TEST(S3ClientTest, ExactlyOnePartIsStillOnePutObject) {
  FakeDaytona fake;
  S3Client s3(accessFor(fake), std::make_shared<HttpClient>());
  std::string body = pattern(kMultipartPartSize);
  ASSERT_OK(s3.upload("o/exact/context.tar", body.size(), chunked(body, 1 << 20)));
  EXPECT_EQ(s3.lastUpload().parts, 0);
  EXPECT_EQ(fake.objects()["o/exact/context.tar"], body);
  EXPECT_EQ(fake.multipartCompleted(), 0);
}

TEST(S3ClientTest, LargeBodyIsAMultipartUpload) {
  FakeDaytona fake;
  S3Client s3(accessFor(fake), std::make_shared<HttpClient>());
  std::string body = pattern(2 * kMultipartPartSize + 12345);
  // Odd chunk sizes, so parts are cut across chunk boundaries.
  ASSERT_OK(s3.upload("o/big/context.tar", body.size(), chunked(body, 777777)));
  EXPECT_THAT(fake.s3Failures(), IsEmpty());
  EXPECT_EQ(s3.lastUpload().parts, 3);
  EXPECT_EQ(s3.lastUpload().bytes, body.size());
  EXPECT_EQ(fake.multipartCompleted(), 1);
  EXPECT_TRUE(fake.objects()["o/big/context.tar"] == body);
  auto init = fake.requests("POST", "/s3/");
  ASSERT_EQ(init.size(), 2u);  // create + complete
  EXPECT_EQ(init[0].query, "uploads=");
  EXPECT_EQ(init[0].headers["x-amz-checksum-algorithm"], "CRC32");
  EXPECT_THAT(init[1].body, HasSubstr("<ChecksumCRC32>"));
  EXPECT_EQ(fake.requests("PUT", "/s3/").size(), 3u);
}

TEST(S3ClientTest, PrefixExists) {
  FakeDaytona fake;
  fake.putObject("org/h1/context.tar", "x");
  S3Client s3(accessFor(fake), std::make_shared<HttpClient>());
  ASSERT_OK_AND_ASSIGN(bool yes, s3.prefixExists("org/h1/"));
  EXPECT_TRUE(yes);
  ASSERT_OK_AND_ASSIGN(bool no, s3.prefixExists("org/h2/"));
  EXPECT_FALSE(no);
  auto lists = fake.requests("GET", "/s3/");
  ASSERT_EQ(lists.size(), 2u);
  EXPECT_EQ(lists[0].path, "/s3/daytona-volume-builds/");
  EXPECT_EQ(lists[0].query, "list-type=2&max-keys=1&prefix=org%2Fh1%2F");
  EXPECT_THAT(fake.s3Failures(), IsEmpty());
}

TEST(S3ClientTest, WrongSecretIsRejectedWithTheS3ErrorCode) {
  FakeDaytona fake;
  StorageAccess access = accessFor(fake);
  access.secret = "not-the-secret";
  S3Client s3(access, std::make_shared<HttpClient>());
  EXPECT_THAT(s3.putObject("o/k/context.tar", "x"),
              StatusIs(StatusCode::kPermissionDenied, HasSubstr("403 SignatureDoesNotMatch")));
  EXPECT_TRUE(fake.objects().empty());
}

TEST(S3ClientTest, ProducerErrorsAndSizeMismatchesFail) {
  FakeDaytona fake;
  S3Client s3(accessFor(fake), std::make_shared<HttpClient>());
  std::string body = "abc";
  EXPECT_THAT(s3.upload("o/k/context.tar", 10, chunked(body, 1)),
              StatusIs(StatusCode::kInternal, HasSubstr("3 bytes, 10 were announced")));
  std::string big = pattern(kMultipartPartSize + 10);
  EXPECT_THAT(s3.upload("o/m/context.tar", big.size(),
                        [&](const ChunkSink& sink) {
                          CAIRN_RETURN_IF_ERROR(sink(std::string_view(big).substr(0, 6000000)));
                          return notFound("file vanished: src/a.py");
                        }),
              StatusIs(StatusCode::kNotFound, HasSubstr("file vanished")));
  EXPECT_EQ(fake.requests("DELETE", "/s3/").size(), 1u);  // the multipart upload was aborted
  EXPECT_TRUE(fake.objects().empty());
}

TEST(S3ClientTest, ExpiredDeadlineStopsBeforeSending) {
  FakeDaytona fake;
  S3Client s3(accessFor(fake), std::make_shared<HttpClient>());
  Deadline past = Deadline::after(std::chrono::milliseconds(0));
  EXPECT_THAT(s3.putObject("o/k/context.tar", "x", past), StatusIs(StatusCode::kDeadlineExceeded));
  EXPECT_TRUE(fake.requests("PUT", "/s3/").empty());
}

}  // namespace
}  // namespace cairn::sdk

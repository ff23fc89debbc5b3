// SigV4 against AWS's published vectors (the generic aws-sig-v4-test-suite and the S3
// developer guide's "single chunk" examples), plus sign → verify round trips and the ways a
// verifier must say no.
#include "cairn/common/sigv4.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cairn/common/crypto.h"
#include "cairn/common/encoding.h"
#include "cairn/testing/status_matchers.h"

namespace cairn::sigv4 {
namespace {

using ::cairn::testing::StatusIs;
using ::testing::HasSubstr;

const Credentials kSuite{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
const Credentials kS3Doc{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};

SignOptions suiteOptions() {
  SignOptions o;
  o.region = "us-east-1";
  o.service = "service";
  o.add_content_sha256_header = false;
  return o;
}

SystemTime at(std::string_view amz) {
  auto t = parseAmzDate(amz);
  EXPECT_TRUE(t.ok());
  return *t;
}

TEST(SigV4Test, SigningKeyMatchesPublishedDerivation) {
  EXPECT_EQ(hexEncode(signingKey(kSuite.secret_access_key, "20150830", "us-east-1", "iam")),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9");
}

TEST(SigV4Test, SuiteGetVanilla) {
  RequestView req{
      "GET", "/", "", {{"Host", "example.amazonaws.com"}}, std::string(kEmptyPayloadSha256)};
  ASSERT_OK_AND_ASSIGN(auto s, signRequest(req, kSuite, suiteOptions(), at("20150830T123600Z")));
  EXPECT_EQ(s.canonical_request,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
            "host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(s.string_to_sign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
  EXPECT_EQ(s.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            "SignedHeaders=host;x-amz-date, "
            "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
  // The added headers are x-amz-date and Authorization (no session token, no content hash).
  ASSERT_EQ(s.headers.size(), 2u);
  EXPECT_EQ(s.headers[0], Header("x-amz-date", "20150830T123600Z"));
  EXPECT_EQ(s.headers[1].first, "Authorization");
}

TEST(SigV4Test, SuiteQueryOrderKeyCase) {
  RequestView req{"GET",
                  "/",
                  "Param2=value2&Param1=value1",
                  {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}},
                  std::string(kEmptyPayloadSha256)};
  ASSERT_OK_AND_ASSIGN(auto s, signRequest(req, kSuite, suiteOptions(), at("20000101T000000Z")));
  EXPECT_THAT(s.canonical_request, HasSubstr("\nParam1=value1&Param2=value2\n"));
  EXPECT_EQ(s.signature, "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
  // x-amz-date came with the request, so it is not added again.
  EXPECT_EQ(s.headers.size(), 1u);
}

TEST(SigV4Test, SuiteHeaderValueTrim) {
  RequestView req{"GET",
                  "/",
                  "",
                  {{"Host", "example.amazonaws.com"},
                   {"My-Header1", " value1"},
                   {"My-Header2", "\"a   b   c\""},
                   {"X-Amz-Date", "20150830T123600Z"}},
                  std::string(kEmptyPayloadSha256)};
  ASSERT_OK_AND_ASSIGN(auto s, signRequest(req, kSuite, suiteOptions(), at("20150830T123600Z")));
  EXPECT_EQ(s.canonical_request,
            "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\n"
            "x-amz-date:20150830T123600Z\n\nhost;my-header1;my-header2;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(SigV4Test, S3DocGetObjectWithRange) {
  RequestView req{"GET",
                  "/test.txt",
                  "",
                  {{"Host", "examplebucket.s3.amazonaws.com"}, {"Range", "bytes=0-9"}},
                  std::string(kEmptyPayloadSha256)};
  ASSERT_OK_AND_ASSIGN(auto s, signRequest(req, kS3Doc, SignOptions{}, at("20130524T000000Z")));
  EXPECT_EQ(
      s.canonical_request,
      "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
      "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
      "x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n"
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(s.string_to_sign,
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  EXPECT_EQ(s.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(SigV4Test, S3DocPutObject) {
  std::string body = "Welcome to Amazon S3.";
  ASSERT_EQ(sha256Hex(body), "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  RequestView req{"PUT",
                  "/test$file.text",
                  "",
                  {{"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                   {"Host", "examplebucket.s3.amazonaws.com"},
                   {"x-amz-storage-class", "REDUCED_REDUNDANCY"}},
                  sha256Hex(body)};
  ASSERT_OK_AND_ASSIGN(auto s, signRequest(req, kS3Doc, SignOptions{}, at("20130524T000000Z")));
  EXPECT_THAT(s.canonical_request, ::testing::StartsWith("PUT\n/test%24file.text\n"));
  EXPECT_THAT(s.authorization, HasSubstr("SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;"
                                         "x-amz-storage-class,"));
  EXPECT_EQ(s.signature, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST(SigV4Test, S3DocListObjects) {
  RequestView req{"GET",
                  "/",
                  "max-keys=2&prefix=J",
                  {{"Host", "examplebucket.s3.amazonaws.com"}},
                  std::string(kEmptyPayloadSha256)};
  ASSERT_OK_AND_ASSIGN(auto s, signRequest(req, kS3Doc, SignOptions{}, at("20130524T000000Z")));
  EXPECT_EQ(s.signature, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST(SigV4Test, UriEncodingRules) {
  EXPECT_EQ(uriEncode("/a b/c+d.txt", false), "/a%20b/c%2Bd.txt");
  EXPECT_EQ(uriEncode("a/b", true), "a%2Fb");
  EXPECT_EQ(uriEncode("AZaz09-._~", true), "AZaz09-._~");
  EXPECT_EQ(uriEncode("\xc3\xa9", true), "%C3%A9");
  // Canonicalization never double-encodes and never decodes an escaped '/' into a separator.
  EXPECT_EQ(canonicalUri("/b/a%20b"), "/b/a%20b");
  EXPECT_EQ(canonicalUri("/b/a%2fb"), "/b/a%2Fb");
  EXPECT_EQ(canonicalUri("/b/%7Ex"), "/b/~x");
  EXPECT_EQ(canonicalUri("/a//b/../c"), "/a//b/../c");
  EXPECT_EQ(canonicalUri(""), "/");
  EXPECT_EQ(canonicalUri("/bad%zz"), "/bad%25zz");
  // Valueless parameters get '=', '+' stays a plus, '/' in a value is encoded, order is sorted.
  EXPECT_EQ(canonicalQuery("uploads"), "uploads=");
  EXPECT_EQ(canonicalQuery("prefix=org/abc/&list-type=2&max-keys=1"),
            "list-type=2&max-keys=1&prefix=org%2Fabc%2F");
  EXPECT_EQ(canonicalQuery("a=x+y&a=b"), "a=b&a=x%2By");
  EXPECT_EQ(canonicalQuery(""), "");
}

TEST(SigV4Test, AmzDateRoundTripAndBadInput) {
  ASSERT_OK_AND_ASSIGN(SystemTime t, parseAmzDate("20150830T123600Z"));
  EXPECT_EQ(formatAmzDate(t), "20150830T123600Z");
  EXPECT_THAT(parseAmzDate("2015-08-30T12:36:00Z"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(parseAmzDate("20151330T123600Z"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(parseAmzDate(""), StatusIs(StatusCode::kInvalidArgument));
}

TEST(SigV4Test, SignRefusesBadInput) {
  RequestView no_host{"GET", "/", "", {{"x-foo", "1"}}, std::string(kEmptyPayloadSha256)};
  EXPECT_THAT(signRequest(no_host, kS3Doc, {}, at("20130524T000000Z")),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("host")));
  RequestView lower{"get", "/", "", {{"host", "h"}}, std::string(kEmptyPayloadSha256)};
  EXPECT_THAT(signRequest(lower, kS3Doc, {}, at("20130524T000000Z")),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("uppercase")));
  RequestView crlf{
      "GET", "/", "", {{"host", "h"}, {"x-a", "1\r\nx-b: 2"}}, std::string(kEmptyPayloadSha256)};
  EXPECT_THAT(signRequest(crlf, kS3Doc, {}, at("20130524T000000Z")),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("CR or LF")));
  RequestView ok{"GET", "/", "", {{"host", "h"}}, std::string(kEmptyPayloadSha256)};
  EXPECT_THAT(signRequest(ok, Credentials{"", "s", ""}, {}, at("20130524T000000Z")),
              StatusIs(StatusCode::kInvalidArgument));
}

TEST(SigV4Test, ParseAuthorization) {
  ASSERT_OK_AND_ASSIGN(
      auto a,
      parseAuthorization("AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/s3/aws4_request, "
                         "SignedHeaders=host;x-amz-date, Signature=" +
                         std::string(64, 'a')));
  EXPECT_EQ(a.access_key_id, "AK");
  EXPECT_EQ(a.date, "20150830");
  EXPECT_EQ(a.region, "us-east-1");
  EXPECT_EQ(a.service, "s3");
  EXPECT_EQ(a.signed_headers, (std::vector<std::string>{"host", "x-amz-date"}));
  for (const char* bad : {
           "",
           "AWS4-HMAC-SHA256",
           "Bearer abc",
           "AWS4-HMAC-SHA256 Credential=AK/2015/us-east-1/s3/aws4_request, SignedHeaders=host, "
           "Signature=00",
           "AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/s3/aws4_request, SignedHeaders=host",
           "AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/s3/x, SignedHeaders=host, Signature=",
           "AWS4-HMAC-SHA256 garbage",
       }) {
    EXPECT_THAT(parseAuthorization(bad), StatusIs(StatusCode::kInvalidArgument)) << bad;
  }
}

class SigV4VerifyTest : public ::testing::Test {
 protected:
  Credentials creds_{"AKTEST", "secret-one", "token-xyz"};
  SystemTime now_ = std::chrono::system_clock::now();
  SecretLookup lookup_ = [this](std::string_view key) -> Result<std::string> {
    if (key == creds_.access_key_id) return creds_.secret_access_key;
    return notFound("no such key");
  };

  // A request as a server receives it: the client's headers plus the signer's.
  RequestView signedRequest(std::string body, std::string query = "x-id=PutObject") {
    body_ = std::move(body);
    query_ = std::move(query);
    RequestView req{"PUT",
                    "/bucket/org/a%20b/context.tar",
                    query_,
                    {{"Host", "127.0.0.1:9000"}, {"x-amz-checksum-crc32", "AAAAAA=="}},
                    sha256Hex(body_)};
    auto s = signRequest(req, creds_, SignOptions{}, now_);
    EXPECT_TRUE(s.ok()) << s.status();
    for (auto& h : s->headers)
      req.headers.push_back(h);
    req.payload_hash.clear();  // the server takes it from x-amz-content-sha256
    return req;
  }

  std::string body_;
  std::string query_;
};

TEST_F(SigV4VerifyTest, RoundTrip) {
  RequestView req = signedRequest("hello");
  VerifyFailure why = VerifyFailure::kMalformed;
  ASSERT_OK_AND_ASSIGN(auto v, verifyRequest(req, lookup_, {}, now_, &why));
  EXPECT_EQ(why, VerifyFailure::kNone);
  EXPECT_EQ(v.authorization.access_key_id, "AKTEST");
  EXPECT_EQ(v.payload_hash, sha256Hex("hello"));
  EXPECT_EQ(*findHeader(req.headers, "x-amz-security-token"), "token-xyz");
  // The token is among the signed headers, so it cannot be swapped.
  EXPECT_THAT(v.authorization.signed_headers, ::testing::Contains("x-amz-security-token"));
}

TEST_F(SigV4VerifyTest, TamperingIsDetected) {
  struct Case {
    const char* what;
    std::function<void(RequestView&)> mutate;
  };
  std::vector<Case> cases = {
      {"method", [](RequestView& r) { r.method = "POST"; }},
      {"path", [](RequestView& r) { r.path = "/bucket/other/a%20b/context.tar"; }},
      {"query", [](RequestView& r) { r.query = "x-id=GetObject"; }},
      {"signed header",
       [](RequestView& r) {
         for (auto& [k, v] : r.headers)
           if (k == "x-amz-checksum-crc32") v = "BBBBBB==";
       }},
      {"payload hash",
       [](RequestView& r) {
         for (auto& [k, v] : r.headers)
           if (k == "x-amz-content-sha256") v = sha256Hex("other");
       }},
      {"token",
       [](RequestView& r) {
         for (auto& [k, v] : r.headers)
           if (k == "x-amz-security-token") v = "token-abc";
       }},
  };
  for (const Case& c : cases) {
    RequestView req = signedRequest("hello");
    c.mutate(req);
    VerifyFailure why = VerifyFailure::kNone;
    EXPECT_THAT(verifyRequest(req, lookup_, {}, now_, &why),
                StatusIs(StatusCode::kUnauthenticated, HasSubstr("signature does not match")))
        << c.what;
    EXPECT_EQ(why, VerifyFailure::kSignatureMismatch) << c.what;
  }
}

TEST_F(SigV4VerifyTest, UnsignedHeadersMayChange) {
  RequestView req = signedRequest("hello");
  req.headers.emplace_back("User-Agent", "anything");
  EXPECT_OK(verifyRequest(req, lookup_, {}, now_));
}

TEST_F(SigV4VerifyTest, WrongSecretUnknownKeySkewAndMalformed) {
  RequestView req = signedRequest("");
  VerifyFailure why = VerifyFailure::kNone;

  SecretLookup wrong = [](std::string_view) -> Result<std::string> { return std::string("nope"); };
  EXPECT_THAT(verifyRequest(req, wrong, {}, now_, &why), StatusIs(StatusCode::kUnauthenticated));
  EXPECT_EQ(why, VerifyFailure::kSignatureMismatch);

  SecretLookup none = [](std::string_view) -> Result<std::string> { return notFound("gone"); };
  EXPECT_THAT(verifyRequest(req, none, {}, now_, &why),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("AKTEST")));
  EXPECT_EQ(why, VerifyFailure::kUnknownAccessKey);

  EXPECT_OK(verifyRequest(req, lookup_, {}, now_ + std::chrono::minutes(14)));
  EXPECT_THAT(verifyRequest(req, lookup_, {}, now_ + std::chrono::minutes(16), &why),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("too far")));
  EXPECT_EQ(why, VerifyFailure::kRequestTimeTooSkewed);
  EXPECT_THAT(verifyRequest(req, lookup_, {}, now_ - std::chrono::minutes(16), &why),
              StatusIs(StatusCode::kUnauthenticated));

  VerifyOptions other_region;
  other_region.region = "eu-west-1";
  EXPECT_THAT(verifyRequest(req, lookup_, other_region, now_, &why),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("region")));
  EXPECT_EQ(why, VerifyFailure::kMalformed);

  RequestView no_auth = req;
  std::erase_if(no_auth.headers, [](const Header& h) { return h.first == "Authorization"; });
  EXPECT_THAT(verifyRequest(no_auth, lookup_, {}, now_, &why),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("Authorization")));

  RequestView no_date = req;
  std::erase_if(no_date.headers, [](const Header& h) { return h.first == "x-amz-date"; });
  EXPECT_THAT(verifyRequest(no_date, lookup_, {}, now_, &why),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("x-amz-date")));
}

TEST_F(SigV4VerifyTest, SignedHeaderMissingFromRequest) {
  RequestView req = signedRequest("x");
  std::erase_if(req.headers, [](const Header& h) { return h.first == "x-amz-checksum-crc32"; });
  EXPECT_THAT(verifyRequest(req, lookup_, {}, now_),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("x-amz-checksum-crc32")));
}

}  // namespace
}  // namespace cairn::sigv4

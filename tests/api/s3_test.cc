// The S3-compatible endpoint over real HTTP, driven with libcurl and requests signed by
// cairn/common/sigv4.h, over both ObjectStores (blob-backed and filesystem); plus the filesystem
// ObjectStore on its own.
#include "cairn/api/s3.h"

#include <curl/curl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "cairn/api/server.h"
#include "cairn/common/crypto.h"
#include "cairn/common/fs.h"
#include "cairn/common/sigv4.h"
#include "cairn/common/strings.h"
#include "cairn/store/local_blob_store.h"
#include "cairn/testing/fake_clock.h"
#include "cairn/testing/status_matchers.h"

namespace cairn::api {
namespace {

using ::cairn::testing::FakeClock;
using ::cairn::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

struct Reply {
  long status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string header(std::string_view name) const {
    for (auto& [k, v] : headers)
      if (equalsIgnoreCase(k, name)) return v;
    return "";
  }
};

std::size_t onBody(char* p, std::size_t s, std::size_t n, void* ud) {
  static_cast<std::string*>(ud)->append(p, s * n);
  return s * n;
}
std::size_t onHeader(char* p, std::size_t s, std::size_t n, void* ud) {
  std::string line(p, s * n);
  auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string v = std::string(trimSpace(line.substr(colon + 1)));
    static_cast<Reply*>(ud)->headers.emplace_back(line.substr(0, colon), v);
  }
  return s * n;
}

struct CallOptions {
  std::string body;
  sigv4::Headers headers;                   // signed extra headers
  std::optional<std::string> payload_hash;  // default: sha256 of body
  bool sign = true;
};

// The parameter: true = BlobObjectStore over a LocalBlobStore (what `cairn serve` uses),
// false = FsObjectStore.
class S3Test : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, TempDir::create("cairn-s3-test"));
    if (GetParam()) {
      ASSERT_OK_AND_ASSIGN(blobs_, store::LocalBlobStore::open(dir_.path()));
      ASSERT_OK_AND_ASSIGN(auto store,
                           BlobObjectStore::open(dir_.path() / "objects", *blobs_, clock_));
      store_ = std::move(store);
    } else {
      ASSERT_OK_AND_ASSIGN(auto store, openFsObjectStore(dir_.path() / "objects", clock_));
      store_ = std::move(store);
    }
    minter_ = std::make_shared<CredentialMinter>(clock_);
    Router router;
    S3Options o;
    o.clock = &clock_;
    o.max_object_bytes = 16 * 1024 * 1024;
    ASSERT_OK(mountS3(router, o, store_, minter_));
    ASSERT_OK_AND_ASSIGN(server_, Server::start(ServerOptions{}, std::move(router)));
    ASSERT_OK_AND_ASSIGN(creds_, minter_->mint("org1"));
  }

  sigv4::Credentials signing(const S3Credential& c) const {
    return {c.access_key_id, c.secret_access_key, c.session_token};
  }

  // target: path (under /s3) and query, already percent-encoded.
  Reply call(const std::string& method, const std::string& target, CallOptions o = {},
             std::optional<sigv4::Credentials> who = std::nullopt) {
    sigv4::Credentials c = who ? *who : signing(creds_);
    std::string host = "127.0.0.1:" + std::to_string(server_->port());
    std::size_t q = target.find('?');
    std::string path = target.substr(0, q);
    std::string query = q == std::string::npos ? "" : target.substr(q + 1);
    sigv4::Headers headers = o.headers;
    headers.emplace_back("host", host);
    sigv4::RequestView req{method, path, query, headers,
                           o.payload_hash ? *o.payload_hash : sha256Hex(o.body)};
    if (o.sign) {
      auto s = sigv4::signRequest(req, c, sigv4::SignOptions{}, clock_.now());
      EXPECT_TRUE(s.ok()) << s.status();
      for (auto& h : s->headers)
        headers.push_back(h);
    }
    CURL* curl = curl_easy_init();
    curl_slist* list = nullptr;
    for (auto& [k, v] : headers) {
      if (k == "host") continue;
      list = curl_slist_append(list, (k + ": " + v).c_str());
    }
    Reply reply;
    std::string url = "http://" + host + target;
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, onBody);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply.body);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, onHeader);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &reply);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);  // send "..", "." as they are
    if (method == "HEAD") {
      curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    } else if (method != "GET") {
      curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
      if (method == "PUT" || method == "POST") {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, o.body.data());
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(o.body.size()));
      }
    }
    CURLcode rc = curl_easy_perform(curl);
    EXPECT_EQ(rc, CURLE_OK) << curl_easy_strerror(rc);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.status);
    curl_slist_free_all(list);
    curl_easy_cleanup(curl);
    return reply;
  }

  Reply put(const std::string& key, const std::string& body) {
    CallOptions o;
    o.body = body;
    o.headers = {{"x-amz-checksum-crc32", s3Crc32Base64(body)},
                 {"x-amz-sdk-checksum-algorithm", "CRC32"},
                 {"content-type", "application/octet-stream"}};
    return call("PUT", "/s3/daytona-volume-builds/" + key + "?x-id=PutObject", o);
  }

  // Starts at the real time, as the copy this replaced did.
  FakeClock clock_{std::chrono::system_clock::now()};
  TempDir dir_ = *TempDir::create("unused");
  std::unique_ptr<store::LocalBlobStore> blobs_;
  std::shared_ptr<ObjectStore> store_;
  std::shared_ptr<CredentialMinter> minter_;
  std::unique_ptr<Server> server_;
  S3Credential creds_;
};

TEST(S3Crc32Test, SpecVector) {
  EXPECT_EQ(s3Crc32Base64("123456789"), "y/Q5Jg==");
}

TEST_P(S3Test, PutHeadGetListDelete) {
  std::string body = "context bytes\n";
  Reply r = put("org1/abc/context.tar", body);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("ETag"), "\"" + md5Hex(body) + "\"");
  EXPECT_EQ(r.header("x-amz-checksum-crc32"), s3Crc32Base64(body));

  r = call("HEAD", "/s3/daytona-volume-builds/org1/abc/context.tar");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Content-Length"), std::to_string(body.size()));
  EXPECT_EQ(r.header("ETag"), "\"" + md5Hex(body) + "\"");

  CallOptions mode;
  mode.headers = {{"x-amz-checksum-mode", "ENABLED"}};
  r = call("GET", "/s3/daytona-volume-builds/org1/abc/context.tar?x-id=GetObject", mode);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, body);
  EXPECT_EQ(r.header("x-amz-checksum-crc32"), s3Crc32Base64(body));
  EXPECT_EQ(r.header("Content-Type"), "application/octet-stream");

  ASSERT_EQ(put("org1/abd/context.tar", "second").status, 200);
  ASSERT_EQ(put("org1/zzz/x", "third").status, 200);

  // The SDK's existence check.
  r = call("GET", "/s3/daytona-volume-builds/?list-type=2&max-keys=1&prefix=org1%2Fabc%2F");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.body,
              HasSubstr("<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"));
  EXPECT_THAT(r.body, HasSubstr("<Key>org1/abc/context.tar</Key>"));
  EXPECT_THAT(r.body, HasSubstr("<KeyCount>1</KeyCount>"));
  EXPECT_THAT(r.body, HasSubstr("<Size>14</Size>"));
  EXPECT_THAT(r.body, HasSubstr("<IsTruncated>false</IsTruncated>"));

  r = call("GET", "/s3/daytona-volume-builds/?list-type=2&max-keys=1&prefix=org1%2Fnothing%2F");
  ASSERT_EQ(r.status, 200);
  EXPECT_THAT(r.body, HasSubstr("<KeyCount>0</KeyCount>"));
  EXPECT_THAT(r.body, Not(HasSubstr("<Contents>")));

  // Paging with continuation tokens visits every key once, in order.
  std::vector<std::string> keys;
  std::string token;
  for (int page = 0; page < 10; ++page) {
    std::string target = "/s3/daytona-volume-builds?list-type=2&max-keys=2&prefix=org1%2F";
    if (!token.empty()) target += "&continuation-token=" + sigv4::uriEncode(token, true);
    r = call("GET", target);
    ASSERT_EQ(r.status, 200) << r.body;
    std::size_t pos = 0;
    while ((pos = r.body.find("<Key>", pos)) != std::string::npos) {
      std::size_t end = r.body.find("</Key>", pos);
      keys.push_back(r.body.substr(pos + 5, end - pos - 5));
      pos = end;
    }
    std::size_t t = r.body.find("<NextContinuationToken>");
    if (t == std::string::npos) break;
    token = r.body.substr(t + 23, r.body.find("</NextContinuationToken>") - t - 23);
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"org1/abc/context.tar", "org1/abd/context.tar",
                                            "org1/zzz/x"}));

  r = call("DELETE", "/s3/daytona-volume-builds/org1/abc/context.tar");
  EXPECT_EQ(r.status, 204);
  r = call("GET", "/s3/daytona-volume-builds/org1/abc/context.tar");
  EXPECT_EQ(r.status, 404);
  EXPECT_THAT(r.body, HasSubstr("<Code>NoSuchKey</Code>"));
  r = call("HEAD", "/s3/daytona-volume-builds/org1/abc/context.tar");
  EXPECT_EQ(r.status, 404);
}

TEST_P(S3Test, ChecksumsAreVerified) {
  CallOptions o;
  o.body = "payload";
  o.headers = {{"x-amz-checksum-crc32", s3Crc32Base64("other")}};
  Reply r = call("PUT", "/s3/daytona-volume-builds/org1/k", o);
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("<Code>BadDigest</Code>"));

  CallOptions wrong_hash;
  wrong_hash.body = "payload";
  wrong_hash.payload_hash = sha256Hex("something else");
  r = call("PUT", "/s3/daytona-volume-builds/org1/k", wrong_hash);
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("<Code>XAmzContentSHA256Mismatch</Code>"));

  CallOptions streaming;
  streaming.body = "payload";
  streaming.payload_hash = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
  r = call("PUT", "/s3/daytona-volume-builds/org1/k", streaming);
  EXPECT_EQ(r.status, 501);

  CallOptions md5_bad;
  md5_bad.body = "payload";
  md5_bad.headers = {{"content-md5", "AAAAAAAAAAAAAAAAAAAAAA=="}};
  r = call("PUT", "/s3/daytona-volume-builds/org1/k", md5_bad);
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("<Code>BadDigest</Code>"));
  EXPECT_EQ(call("HEAD", "/s3/daytona-volume-builds/org1/k").status, 404);
}

TEST_P(S3Test, AuthFailures) {
  ASSERT_EQ(put("org1/a", "x").status, 200);
  const std::string target = "/s3/daytona-volume-builds/org1/a";

  sigv4::Credentials wrong_secret = signing(creds_);
  wrong_secret.secret_access_key = "not-the-secret";
  Reply r = call("GET", target, {}, wrong_secret);
  EXPECT_EQ(r.status, 403);
  EXPECT_THAT(r.body, HasSubstr("<Code>SignatureDoesNotMatch</Code>"));

  sigv4::Credentials unknown{"AKUNKNOWN", "s", ""};
  r = call("GET", target, {}, unknown);
  EXPECT_EQ(r.status, 403);
  EXPECT_THAT(r.body, HasSubstr("<Code>InvalidAccessKeyId</Code>"));

  sigv4::Credentials no_token = signing(creds_);
  no_token.session_token.clear();
  r = call("GET", target, {}, no_token);
  EXPECT_EQ(r.status, 403);
  EXPECT_THAT(r.body, HasSubstr("<Code>InvalidToken</Code>"));

  CallOptions unsigned_req;
  unsigned_req.sign = false;
  r = call("GET", target, unsigned_req);
  EXPECT_EQ(r.status, 403);
  EXPECT_THAT(r.body, HasSubstr("<Code>AccessDenied</Code>"));

  CallOptions garbage;
  garbage.sign = false;
  garbage.headers = {{"Authorization", "AWS4-HMAC-SHA256 nonsense"}};
  r = call("GET", target, garbage);
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("<Code>AuthorizationHeaderMalformed</Code>"));

  // Another organization's prefix: objects and listings.
  r = put("org2/a", "x");
  EXPECT_EQ(r.status, 403);
  EXPECT_THAT(r.body, HasSubstr("<Code>AccessDenied</Code>"));
  r = call("GET", "/s3/daytona-volume-builds/?list-type=2&prefix=org2%2F");
  EXPECT_EQ(r.status, 403);
  r = call("GET", "/s3/daytona-volume-builds/?list-type=2");
  EXPECT_EQ(r.status, 403);
  ASSERT_OK_AND_ASSIGN(S3Credential other, minter_->mint("org2"));
  r = call("GET", target, {}, signing(other));
  EXPECT_EQ(r.status, 403);
  EXPECT_THAT(r.body, HasSubstr("<Code>AccessDenied</Code>"));
  // "org1" without the slash lists org1's keys only.
  ASSERT_EQ(call("PUT", "/s3/daytona-volume-builds/org2x/a", {}, signing(other)).status, 403);

  r = call("GET", "/s3/no-such-bucket/org1/a");
  EXPECT_EQ(r.status, 404);
  EXPECT_THAT(r.body, HasSubstr("<Code>NoSuchBucket</Code>"));

  // Expired credentials, then a clock far from the request time.
  clock_.advance(std::chrono::hours(2));
  r = call("GET", target);
  EXPECT_EQ(r.status, 403);
  EXPECT_THAT(r.body, HasSubstr("<Code>ExpiredToken</Code>"));
}

TEST_P(S3Test, OversizedBodyIsEntityTooLargeInXml) {
  CallOptions o;
  o.body = std::string(17 * 1024 * 1024, 'x');  // over the 16 MiB limit of this fixture
  Reply r = call("PUT", "/s3/daytona-volume-builds/org1/huge", o);
  EXPECT_EQ(r.status, 413);
  EXPECT_THAT(r.body, HasSubstr("<Code>EntityTooLarge</Code>"));
  EXPECT_EQ(call("HEAD", "/s3/daytona-volume-builds/org1/huge").status, 404);
}

TEST_P(S3Test, RequestTimeTooSkewed) {
  ASSERT_EQ(put("org1/a", "x").status, 200);
  CallOptions old;
  old.headers = {{"x-amz-date", sigv4::formatAmzDate(clock_.now() - std::chrono::minutes(20))}};
  Reply r = call("GET", "/s3/daytona-volume-builds/org1/a", old);
  EXPECT_EQ(r.status, 403);
  EXPECT_THAT(r.body, HasSubstr("<Code>RequestTimeTooSkewed</Code>"));
}

std::string between(const std::string& s, const std::string& a, const std::string& b) {
  auto i = s.find(a);
  if (i == std::string::npos) return "";
  auto j = s.find(b, i + a.size());
  return s.substr(i + a.size(), j - i - a.size());
}

TEST_P(S3Test, MultipartInAnyOrderAndConcurrently) {
  const std::string base = "/s3/daytona-volume-builds/org1/big/context.tar";
  CallOptions create;
  create.headers = {{"x-amz-checksum-algorithm", "CRC32"}};
  Reply r = call("POST", base + "?uploads=", create);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.body, HasSubstr("<InitiateMultipartUploadResult"));
  std::string upload_id = between(r.body, "<UploadId>", "</UploadId>");
  ASSERT_FALSE(upload_id.empty());

  std::vector<std::string> parts = {std::string(5 * 1024 * 1024, 'a'),
                                    std::string(5 * 1024 * 1024, 'b'), std::string(1000, 'c')};
  std::vector<Reply> replies(parts.size());
  std::vector<std::thread> threads;
  for (int i = static_cast<int>(parts.size()) - 1; i >= 0; --i) {
    threads.emplace_back([&, i] {
      CallOptions o;
      o.body = parts[static_cast<std::size_t>(i)];
      o.headers = {{"x-amz-checksum-crc32", s3Crc32Base64(o.body)},
                   {"x-amz-sdk-checksum-algorithm", "CRC32"}};
      replies[static_cast<std::size_t>(i)] = call("PUT",
                                                  base + "?partNumber=" + std::to_string(i + 1) +
                                                      "&uploadId=" + upload_id + "&x-id=UploadPart",
                                                  o);
    });
  }
  for (auto& t : threads)
    t.join();
  std::string xml = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
  for (std::size_t i = 0; i < parts.size(); ++i) {
    ASSERT_EQ(replies[i].status, 200) << replies[i].body;
    EXPECT_EQ(replies[i].header("ETag"), "\"" + md5Hex(parts[i]) + "\"");
    EXPECT_EQ(replies[i].header("x-amz-checksum-crc32"), s3Crc32Base64(parts[i]));
    xml += "<Part><ETag>" + replies[i].header("ETag") + "</ETag><ChecksumCRC32>" +
           replies[i].header("x-amz-checksum-crc32") + "</ChecksumCRC32><PartNumber>" +
           std::to_string(i + 1) + "</PartNumber></Part>";
  }
  xml += "</CompleteMultipartUpload>";

  // Wrong ETag, wrong order, unknown upload: each refused, the upload still usable.
  CallOptions bad;
  bad.body =
      "<CompleteMultipartUpload><Part><ETag>\"00\"</ETag><PartNumber>1</PartNumber></Part>"
      "</CompleteMultipartUpload>";
  r = call("POST", base + "?uploadId=" + upload_id, bad);
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("<Code>InvalidPart</Code>"));
  CallOptions order;
  order.body = "<CompleteMultipartUpload><Part><ETag>" + replies[1].header("ETag") +
               "</ETag><PartNumber>2</PartNumber></Part><Part><ETag>" + replies[0].header("ETag") +
               "</ETag><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>";
  r = call("POST", base + "?uploadId=" + upload_id, order);
  EXPECT_THAT(r.body, HasSubstr("<Code>InvalidPartOrder</Code>"));
  CallOptions good;
  good.body = xml;
  r = call("POST", base + "?uploadId=0123456789abcdef0123456789abcdef", good);
  EXPECT_EQ(r.status, 404);
  EXPECT_THAT(r.body, HasSubstr("<Code>NoSuchUpload</Code>"));
  CallOptions malformed;
  malformed.body = "not xml";
  r = call("POST", base + "?uploadId=" + upload_id, malformed);
  EXPECT_THAT(r.body, HasSubstr("<Code>MalformedXML</Code>"));

  r = call("POST", base + "?uploadId=" + upload_id, good);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.body, HasSubstr("<CompleteMultipartUploadResult"));
  EXPECT_THAT(r.body, HasSubstr("-3&quot;</ETag>"));

  CallOptions mode;
  mode.headers = {{"x-amz-checksum-mode", "ENABLED"}};
  r = call("GET", base, mode);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body, parts[0] + parts[1] + parts[2]);
  EXPECT_EQ(r.header("x-amz-checksum-crc32"), s3Crc32Base64(r.body));
  // The upload is gone once completed.
  r = call("POST", base + "?uploadId=" + upload_id, good);
  EXPECT_EQ(r.status, 404);
}

TEST_P(S3Test, AbortAndBadPartNumbers) {
  const std::string base = "/s3/daytona-volume-builds/org1/m";
  Reply r = call("POST", base + "?uploads");
  std::string id = between(r.body, "<UploadId>", "</UploadId>");
  ASSERT_FALSE(id.empty());
  CallOptions part;
  part.body = "p";
  r = call("PUT", base + "?partNumber=0&uploadId=" + id, part);
  EXPECT_EQ(r.status, 400);
  r = call("PUT", base + "?partNumber=abc&uploadId=" + id, part);
  EXPECT_EQ(r.status, 400);
  r = call("PUT", "/s3/daytona-volume-builds/org1/other?partNumber=1&uploadId=" + id, part);
  EXPECT_EQ(r.status, 404);
  EXPECT_THAT(r.body, HasSubstr("<Code>NoSuchUpload</Code>"));
  r = call("PUT", base + "?partNumber=1&uploadId=..%2F..%2Fetc", part);
  EXPECT_EQ(r.status, 404);
  r = call("DELETE", base + "?uploadId=" + id);
  EXPECT_EQ(r.status, 204);
  r = call("PUT", base + "?partNumber=1&uploadId=" + id, part);
  EXPECT_EQ(r.status, 404);
  EXPECT_THAT(r.body, HasSubstr("<Code>NoSuchUpload</Code>"));
}

TEST_P(S3Test, HostileKeysStayInsideTheStore) {
  S3Credential admin{"AKADMIN", "admin-secret", "", SystemTime{}, ""};
  minter_->add(admin);
  sigv4::Credentials a{admin.access_key_id, admin.secret_access_key, ""};
  for (std::string key : {"..%2F..%2Fescape", "a/../../escape", "./x/./y", "a//b", "%2E%2E/x"}) {
    CallOptions o;
    o.body = "data";
    Reply r = call("PUT", "/s3/daytona-volume-builds/" + key, o, a);
    // Either a clean rejection or a stored object; never a file outside the store.
    EXPECT_TRUE(r.status == 200 || r.status == 400) << key << " " << r.status << r.body;
  }
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "escape"));
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "objects" / "escape"));
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "objects" / "buckets" / "escape"));
  ASSERT_OK_AND_ASSIGN(ListResult all, store_->list("daytona-volume-builds", "", 100, ""));
  std::vector<std::string> keys;
  for (auto& o : all.objects)
    keys.push_back(o.key);
  EXPECT_THAT(keys, ::testing::UnorderedElementsAre("../../escape", "a/../../escape", "./x/./y",
                                                    "a//b", "../x"));
  Reply r = call("GET", "/s3/daytona-volume-builds/..%2F..%2Fescape", {}, a);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "data");
}

INSTANTIATE_TEST_SUITE_P(Stores, S3Test, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& p) {
                           return std::string(p.param ? "Blob" : "Fs");
                         });

class ObjectStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, TempDir::create("cairn-objstore"));
    ASSERT_OK_AND_ASSIGN(store_, openFsObjectStore(dir_.path()));
  }
  TempDir dir_ = *TempDir::create("unused");
  std::unique_ptr<ObjectStore> store_;
};

TEST_F(ObjectStoreTest, NestedKeysAndOrder) {
  for (std::string k : {"a/b", "a/b/c", "a", "b/x", "a-b", "a/b/c/d", "a.b"}) {
    ASSERT_OK(store_->put("bucket", k, "v:" + k, {}).status());
  }
  ASSERT_OK_AND_ASSIGN(ListResult all, store_->list("bucket", "", 100, ""));
  std::vector<std::string> keys;
  for (auto& o : all.objects)
    keys.push_back(o.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"a", "a-b", "a.b", "a/b", "a/b/c", "a/b/c/d", "b/x"}));
  ASSERT_OK_AND_ASSIGN(ListResult pre, store_->list("bucket", "a/b", 100, ""));
  EXPECT_EQ(pre.objects.size(), 3u);
  ASSERT_OK_AND_ASSIGN(ListResult page, store_->list("bucket", "", 2, "a-b"));
  ASSERT_EQ(page.objects.size(), 2u);
  EXPECT_EQ(page.objects[0].key, "a.b");
  EXPECT_TRUE(page.truncated);
  ASSERT_OK_AND_ASSIGN(ObjectReader r, store_->get("bucket", "a/b/c"));
  EXPECT_EQ(r.info.size, 7u);
}

TEST_F(ObjectStoreTest, SurvivesReopenAndLostMetadata) {
  ASSERT_OK(store_->put("bucket", "k/one", "hello", {}).status());
  store_.reset();
  ASSERT_OK_AND_ASSIGN(store_, openFsObjectStore(dir_.path()));
  ASSERT_OK_AND_ASSIGN(ObjectInfo info, store_->head("bucket", "k/one"));
  EXPECT_EQ(info.etag, md5Hex("hello"));
  // A crash between writing metadata and data leaves stale metadata: it is recomputed.
  std::filesystem::path meta = dir_.path() / "buckets/bucket/objects/k.d/one.m";
  ASSERT_TRUE(std::filesystem::exists(meta));
  ASSERT_OK(writeFileDurable(meta, R"({"key":"k/one","size":99,"etag":"stale"})"));
  ASSERT_OK_AND_ASSIGN(info, store_->head("bucket", "k/one"));
  EXPECT_EQ(info.etag, md5Hex("hello"));
  EXPECT_EQ(info.checksum_crc32, s3Crc32Base64("hello"));
}

TEST_F(ObjectStoreTest, BadNames) {
  EXPECT_THAT(store_->put("Bad_Bucket", "k", "", {}), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->put("..", "k", "", {}), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->put("bucket", "", "", {}), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->put("bucket", std::string("a\0b", 3), "", {}),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->put("bucket", std::string(2000, 'k'), "", {}),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->put("bucket", std::string(300, '.'), "", {}),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->head("bucket", "missing"), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(store_->uploadPart("bucket", "k", "../../x", 1, "d"),
              StatusIs(StatusCode::kNotFound));
  EXPECT_OK(store_->remove("bucket", "missing"));
}

TEST(CredentialMinterTest, MintsScopedExpiringCredentials) {
  CredentialMinter m;
  ASSERT_OK_AND_ASSIGN(S3Credential a, m.mint("org-a"));
  ASSERT_OK_AND_ASSIGN(S3Credential b, m.mint("org-a"));
  EXPECT_NE(a.access_key_id, b.access_key_id);
  EXPECT_NE(a.secret_access_key, b.secret_access_key);
  EXPECT_GE(a.session_token.size(), 32u);
  EXPECT_EQ(a.allowed_prefix, "org-a/");
  auto ttl = a.expires_at - std::chrono::system_clock::now();
  EXPECT_GT(ttl, std::chrono::minutes(59));
  EXPECT_LE(ttl, std::chrono::hours(1));
  ASSERT_OK_AND_ASSIGN(S3Credential found, m.lookup(a.access_key_id));
  EXPECT_EQ(found.secret_access_key, a.secret_access_key);
  EXPECT_THAT(m.lookup("nope"), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(m.mint(""), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(m.mint("a/b"), StatusIs(StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace cairn::api

int main(int argc, char** argv) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  ::testing::InitGoogleTest(&argc, argv);
  int rc = RUN_ALL_TESTS();
  curl_global_cleanup();
  return rc;
}

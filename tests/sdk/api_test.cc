#include "cairn/sdk/api.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cairn/sdk/errors.h"
#include "fake_daytona.h"

namespace cairn {
namespace {

using ::cairn::testing::FakeDaytona;
using ::testing::HasSubstr;

std::shared_ptr<const ApiConnection> connectTo(const FakeDaytona& fake,
                                               std::string key = FakeDaytona::kApiKey) {
  return makeApiConnection(fake.apiUrl() + "/", std::move(key), "", "", nullptr);
}

TEST(ApiTest, EncodeUriComponentMatchesJavaScript) {
  EXPECT_EQ(encodeUriComponent("registry.io/ns/img:1.0@sha256:ab"),
            "registry.io%2Fns%2Fimg%3A1.0%40sha256%3Aab");
  EXPECT_EQ(encodeUriComponent("A-z_0.9!~*'()"), "A-z_0.9!~*'()");
  EXPECT_EQ(encodeUriComponent("a b+c%/é"), "a%20b%2Bc%25%2F%C3%A9");
}

TEST(ApiTest, SendsTheClientHeaders) {
  FakeDaytona fake;
  fake.addSnapshot("s");
  SnapshotsApi api(connectTo(fake));
  api.getSnapshot("s");
  auto reqs = fake.requests("GET", "/api/snapshots/s");
  ASSERT_EQ(reqs.size(), 1u);
  auto& h = reqs[0].headers;
  EXPECT_EQ(h["authorization"], "Bearer test-api-key");
  EXPECT_EQ(h["x-daytona-source"], "sdk-cpp");
  EXPECT_EQ(h["x-daytona-sdk-version"], std::string(sdkVersion()));
  EXPECT_EQ(h["user-agent"], "sdk-cpp/" + std::string(sdkVersion()));
  EXPECT_EQ(h.count("x-daytona-organization-id"), 0u);
}

TEST(ApiTest, JwtSendsTheOrganization) {
  auto c = makeApiConnection("http://127.0.0.1:1/api", "", "jwt-token", "org-1", nullptr);
  bool auth = false;
  bool org = false;
  for (const auto& [k, v] : c->headers) {
    if (k == "Authorization") auth = v == "Bearer jwt-token";
    if (k == "X-Daytona-Organization-ID") org = v == "org-1";
  }
  EXPECT_TRUE(auth);
  EXPECT_TRUE(org);
}

TEST(ApiTest, GetEncodesTheNameAsOneSegment) {
  FakeDaytona fake;
  fake.addSnapshot("registry.io/ns/img:1.0");
  SnapshotsApi api(connectTo(fake));
  Snapshot s = api.getSnapshot("registry.io/ns/img:1.0");
  EXPECT_EQ(s.name, "registry.io/ns/img:1.0");
  ASSERT_EQ(fake.requests("GET", "/api/snapshots/").size(), 1u);
  EXPECT_EQ(fake.requests("GET", "/api/snapshots/")[0].path,
            "/api/snapshots/registry.io%2Fns%2Fimg%3A1.0");
}

TEST(ApiTest, ListSendsOnlyTheQueryItWasGiven) {
  FakeDaytona fake;
  for (const char* n : {"a", "b", "c"})
    fake.addSnapshot(n);
  SnapshotsApi api(connectTo(fake));
  PaginatedSnapshots all = api.getAllSnapshots();
  EXPECT_EQ(all.items.size(), 3u);
  EXPECT_EQ(all.total, 3);
  EXPECT_EQ(fake.requests("GET", "/api/snapshots")[0].query, "");
  ListSnapshotsQuery q;
  q.page = 2;
  q.limit = 2;
  PaginatedSnapshots p = api.getAllSnapshots(q);
  ASSERT_EQ(p.items.size(), 1u);
  EXPECT_EQ(p.items[0].name, "c");
  EXPECT_EQ(p.page, 2);
  EXPECT_EQ(p.totalPages, 2);
  EXPECT_EQ(fake.requests("GET", "/api/snapshots")[1].query, "page=2&limit=2");
  q.limit = 500;
  try {
    api.getAllSnapshots(q);
    FAIL();
  } catch (const DaytonaValidationError& e) {
    EXPECT_STREQ(e.what(), "limit must not be greater than 200");
    EXPECT_EQ(e.statusCode(), 400);
  }
}

TEST(ApiTest, RemoveActivateDeactivateAndLogsUrl) {
  FakeDaytona fake;
  std::string id = fake.addSnapshot("s", "inactive")["id"];
  SnapshotsApi api(connectTo(fake));
  EXPECT_EQ(api.activateSnapshot(id).state.str(), "active");
  api.deactivateSnapshot(id);
  EXPECT_EQ(api.getSnapshot(id).state.str(), "inactive");
  EXPECT_EQ(api.getSnapshotBuildLogsUrl(id),
            "http://127.0.0.1:" + std::to_string(fake.port()) + "/logs/" + id);
  api.removeSnapshot(id);
  EXPECT_THROW(api.getSnapshot(id), DaytonaNotFoundError);
  EXPECT_EQ(fake.requests("DELETE", "/api/snapshots/").size(), 1u);
}

TEST(ApiTest, ServerErrorsBecomeTypedExceptions) {
  FakeDaytona fake;
  SnapshotsApi api(connectTo(fake));
  try {
    api.getSnapshot("missing");
    FAIL();
  } catch (const DaytonaNotFoundError& e) {
    EXPECT_STREQ(e.what(), "Snapshot missing not found");
    EXPECT_EQ(e.statusCode(), 404);
  }
  SnapshotsApi bad_key(connectTo(fake, "wrong"));
  EXPECT_THROW(bad_key.getAllSnapshots(), DaytonaAuthenticationError);
  try {
    api.removeSnapshot("not-a-uuid");
    FAIL();
  } catch (const DaytonaValidationError& e) {
    EXPECT_STREQ(e.what(), "Validation failed (uuid is expected)");
  }
  fake.failNext("GET", "/api/snapshots", 200, "this is not json");
  try {
    api.getAllSnapshots();
    FAIL();
  } catch (const DaytonaError& e) {
    EXPECT_THAT(e.what(), HasSubstr("getAllSnapshots: the server's response is not JSON"));
  }
}

TEST(ApiTest, UnreachableServerIsAConnectionError) {
  auto c = makeApiConnection("http://127.0.0.1:1/api", "k", "", "",
                             std::make_shared<sdk::HttpClient>(sdk::RetryPolicy{
                                 2, std::chrono::milliseconds(1), std::chrono::milliseconds(1)}));
  SnapshotsApi api(c);
  try {
    api.getAllSnapshots();
    FAIL();
  } catch (const DaytonaConnectionError& e) {
    EXPECT_THAT(e.what(), HasSubstr("GET http://127.0.0.1:1/api/snapshots"));
    EXPECT_FALSE(e.statusCode().has_value());
  }
}

TEST(ApiTest, PushAccessWithAndWithoutOptionalFields) {
  FakeDaytona fake;
  ObjectStorageApi api(connectTo(fake));
  StorageAccess a = api.getPushAccess();
  EXPECT_EQ(a.accessKey, FakeDaytona::kAccessKey);
  EXPECT_EQ(a.secret, FakeDaytona::kSecret);
  EXPECT_EQ(a.sessionToken, FakeDaytona::kSessionToken);
  EXPECT_EQ(a.storageUrl, fake.storageUrl());
  EXPECT_EQ(a.organizationId, FakeDaytona::kOrgId);
  EXPECT_EQ(a.bucket, "daytona-volume-builds");
  EXPECT_EQ(a.region, "us-east-1");
  fake.setPushAccessMinimal(true);
  StorageAccess m = api.getPushAccess();
  EXPECT_EQ(m.bucket, "daytona-volume-builds");
  EXPECT_EQ(m.region, "us-east-1");
  fake.failNext("GET", "/api/object-storage/push-access", 503,
                R"({"statusCode":503,"message":"Object storage is not configured"})");
  try {
    api.getPushAccess();
    FAIL();
  } catch (const DaytonaServiceUnavailableError& e) {
    EXPECT_STREQ(e.what(), "Object storage is not configured");
  }
}

}  // namespace
}  // namespace cairn

// The Daytona routes over real HTTP: a Server on 127.0.0.1:0 with the SnapshotService on an
// in-memory MetaStore and a fake builder (the engine is tested in build/; here only the wire
// contract matters).
#include "cairn/api/snapshot_routes.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "cairn/api/server.h"
#include "cairn/common/fs.h"
#include "cairn/common/json.h"
#include "cairn/common/time.h"
#include "cairn/meta/api_key.h"
#include "cairn/meta/memory_meta_store.h"
#include "cairn/testing/status_matchers.h"
#include "test_client.h"

namespace cairn::api {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::TestClient;
using testing::TestResponse;

const std::string kDigest = "sha256:" + std::string(64, 'b');

//! Pulls succeed at once; builds write a log line and then wait for release() (bounded).
class GatedBuilder final : public service::SnapshotBuilder {
 public:
  void release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  Result<std::optional<service::BuiltImage>> findBuilt(const std::string& ref) override {
    std::lock_guard lock(mu_);
    auto it = built_.find(ref);
    if (it == built_.end()) return std::optional<service::BuiltImage>();
    return std::optional<service::BuiltImage>(it->second);
  }
  Result<service::BuiltImage> build(const service::SnapshotBuildJob& job,
                                    build::LogSink& log) override {
    log.write("#1 [1/2] FROM alpine:3.19\n");
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(20), [&] { return released_; });
    lock.unlock();
    log.write("#2 [2/2] RUN echo done\n#2 DONE 0.1s\n");
    service::BuiltImage image{kDigest, 1 << 20, {"/bin/sh"}};
    std::lock_guard relock(mu_);
    built_[job.snapshot_ref] = image;
    return image;
  }
  Result<std::string> resolveDigest(const std::string& image_name) override {
    if (image_name.find("missing") != std::string::npos) {
      return notFound("manifest unknown: " + image_name);
    }
    return kDigest;
  }
  Result<service::BuiltImage> pull(const std::string&, const std::string& digest,
                                   const std::string& tag, build::LogSink& log) override {
    log.write("pulled\n");
    service::BuiltImage image{digest, 3u << 20, {"/bin/sh"}};
    std::lock_guard lock(mu_);
    built_[tag] = image;
    return image;
  }
  Status removeImage(const std::string&) override { return okStatus(); }
  Status collectGarbage() override { return okStatus(); }
  Status recover() override { return okStatus(); }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
  std::map<std::string, service::BuiltImage> built_;
};

struct Reply {
  int status = 0;
  std::string body;
  std::string content_type;
  Json json() const {
    Result<Json> j = parseJson(body);
    return j.ok() ? *j : Json();
  }
};

class SnapshotApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(TempDir dir, TempDir::create("cairn-api-snap"));
    dir_.emplace(std::move(dir));
    store_ = std::make_unique<meta::MemoryMetaStore>(RealClock::instance());
    service::ServiceOptions options;
    options.data_dir = dir_->path();
    options.tick_interval = std::chrono::milliseconds(50);
    service_ = std::make_unique<service::SnapshotService>(options, *store_, builder_, nullptr,
                                                          RealClock::instance());
    ASSERT_OK(service_->start());
    key_a_ = makeKey("org-a", "a", meta::allPermissions());
    key_b_ = makeKey("org-b", "b", meta::allPermissions());
    key_read_ = makeKey("org-a", "readonly", {});

    Router router;
    minter_ = std::make_shared<CredentialMinter>();
    ASSERT_OK(mountSnapshotRoutes(router, {*store_, *service_, minter_, RealClock::instance()}));
    ServerOptions server_options;
    server_options.openapi_json = snapshotOpenApiJson();
    ASSERT_OK_AND_ASSIGN(server_, Server::start(server_options, std::move(router)));
  }
  void TearDown() override {
    builder_.release();
    if (server_) server_->stop();
    server_.reset();
    if (service_) service_->stop();
  }

  std::string makeKey(const std::string& org_name, const std::string& key_name,
                      const std::vector<std::string>& permissions) {
    Result<meta::Organization> org = store_->getOrganizationByName(org_name);
    if (!org.ok()) {
      meta::Organization o;
      o.name = org_name;
      org = store_->createOrganization(o);
    }
    EXPECT_TRUE(org.ok()) << org.status().message();
    Result<meta::IssuedApiKey> issued =
        meta::issueApiKey(*store_, org->id, key_name, permissions, std::nullopt);
    EXPECT_TRUE(issued.ok()) << issued.status().message();
    org_ids_[key_name] = org->id;
    return issued->key;
  }

  Reply call(const std::string& method, const std::string& target, const std::string& key,
             const std::string& body = "", const std::string& extra = "") {
    TestClient client(server_->port());
    std::string request = method + " " + target + " HTTP/1.1\r\nHost: cairn.test:8080\r\n";
    if (!key.empty()) request += "Authorization: Bearer " + key + "\r\n";
    if (!body.empty() || method == "POST") {
      request +=
          "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
          "\r\n";
    }
    request += extra + "\r\n" + body;
    std::optional<TestResponse> r = client.roundTrip(request);
    if (!r) return Reply{-1, "", ""};
    return Reply{static_cast<int>(r->result_int()), r->body(),
                 std::string(r->base()[boost::beast::http::field::content_type])};
  }

  Json waitForState(const std::string& name, const std::string& key,
                    const std::vector<std::string>& states) {
    Json last;
    for (int i = 0; i < 400; ++i) {
      Reply r = call("GET", "/api/snapshots/" + name, key);
      last = r.json();
      if (last.is_object() && last.contains("state")) {
        for (const auto& s : states) {
          if (last["state"] == s) return last;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return last;
  }

  void expectError(const Reply& r, int status, const std::string& message) {
    EXPECT_EQ(r.status, status) << r.body;
    Json j = r.json();
    ASSERT_TRUE(j.is_object()) << r.body;
    EXPECT_EQ(j["statusCode"], status);
    EXPECT_EQ(j["message"], message) << r.body;
    EXPECT_TRUE(j.contains("path") && j.contains("timestamp") && j.contains("error")) << r.body;
  }

  std::optional<TempDir> dir_;
  std::unique_ptr<meta::MemoryMetaStore> store_;
  GatedBuilder builder_;
  std::unique_ptr<service::SnapshotService> service_;
  std::shared_ptr<CredentialMinter> minter_;
  std::unique_ptr<Server> server_;
  std::string key_a_, key_b_, key_read_;
  std::map<std::string, std::string> org_ids_;
};

TEST_F(SnapshotApiTest, AuthFailuresAre401WithReason) {
  expectError(call("GET", "/api/snapshots", ""), 401, "Unauthorized");
  expectError(call("GET", "/api/snapshots", "cairn_nonsense"), 401, "Invalid API key");
  expectError(call("GET", "/api/snapshots", std::string("cairn_") + std::string(43, 'A')), 401,
              "Invalid API key");
  ASSERT_OK_AND_ASSIGN(meta::ApiKey record,
                       meta::authenticateApiKey(*store_, key_read_, RealClock::instance().now()));
  ASSERT_OK(store_->revokeApiKey(record.organization_id, record.id).status());
  expectError(call("GET", "/api/snapshots", key_read_), 401, "This API key has been revoked");
}

TEST_F(SnapshotApiTest, CreateGetListDeleteByPercentEncodedName) {
  Reply created =
      call("POST", "/api/snapshots", key_a_,
           R"({"name":"team/python:3.12","imageName":"python:3.12","unknownField":{"x":1}})");
  ASSERT_EQ(created.status, 200) << created.body;
  Json dto = created.json();
  EXPECT_EQ(dto["name"], "team/python:3.12");
  EXPECT_EQ(dto["imageName"], "python:3.12");
  EXPECT_TRUE(dto.contains("mem"));
  EXPECT_TRUE(dto.contains("sourceSandboxId") && dto["sourceSandboxId"].is_null());
  std::string id = dto["id"];

  Json active = waitForState("team%2Fpython%3A3.12", key_a_, {"active", "error"});
  EXPECT_EQ(active["state"], "active") << active.dump();
  EXPECT_EQ(call("GET", "/api/snapshots/" + id, key_a_).json()["name"], "team/python:3.12");

  Reply duplicate = call("POST", "/api/snapshots", key_a_,
                         R"({"name":"team/python:3.12","imageName":"python:3.12"})");
  EXPECT_EQ(duplicate.status, 409) << duplicate.body;
  EXPECT_THAT(duplicate.json()["message"].get<std::string>(), HasSubstr("team/python:3.12"));

  Reply list = call("GET", "/api/snapshots?page=1&limit=10", key_a_);
  ASSERT_EQ(list.status, 200) << list.body;
  EXPECT_EQ(list.json()["total"], 1);
  EXPECT_EQ(list.json()["page"], 1);
  EXPECT_EQ(list.json()["totalPages"], 1);
  EXPECT_EQ(list.json()["items"][0]["id"], id);
  expectError(call("GET", "/api/snapshots?limit=500", key_a_), 400,
              "limit must not be greater than 200");

  expectError(call("DELETE", "/api/snapshots/team%2Fpython%3A3.12", key_a_), 400,
              "Validation failed (uuid is expected)");
  Reply removed = call("DELETE", "/api/snapshots/" + id, key_a_);
  EXPECT_EQ(removed.status, 200) << removed.body;
  expectError(call("GET", "/api/snapshots/team%2Fpython%3A3.12", key_a_), 404,
              "Snapshot team/python:3.12 not found");
  // The name is free again at once.
  EXPECT_EQ(call("POST", "/api/snapshots", key_a_,
                 R"({"name":"team/python:3.12","imageName":"python:3.12"})")
                .status,
            200);
}

TEST_F(SnapshotApiTest, OtherOrganizationSeesNothingAndChangesNothing) {
  Reply created =
      call("POST", "/api/snapshots", key_a_, R"({"name":"mine","imageName":"alpine:3.19"})");
  ASSERT_EQ(created.status, 200) << created.body;
  std::string id = created.json()["id"];
  waitForState("mine", key_a_, {"active"});

  expectError(call("GET", "/api/snapshots/mine", key_b_), 404, "Snapshot mine not found");
  EXPECT_EQ(call("GET", "/api/snapshots/" + id, key_b_).status, 404);
  EXPECT_EQ(call("DELETE", "/api/snapshots/" + id, key_b_).status, 404);
  EXPECT_EQ(call("POST", "/api/snapshots/" + id + "/activate", key_b_).status, 404);
  EXPECT_EQ(call("POST", "/api/snapshots/" + id + "/deactivate", key_b_).status, 404);
  EXPECT_EQ(call("GET", "/api/snapshots/" + id + "/build-logs-url", key_b_).status, 404);
  EXPECT_EQ(call("GET", "/api/snapshots/" + id + "/build-logs", key_b_).status, 404);
  EXPECT_EQ(call("GET", "/api/snapshots/" + id + "/build-logs?follow=true", key_b_).status, 404);
  Reply list_b = call("GET", "/api/snapshots", key_b_);
  EXPECT_EQ(list_b.json()["total"], 0) << list_b.body;
  // The same name in B is its own snapshot.
  EXPECT_EQ(
      call("POST", "/api/snapshots", key_b_, R"({"name":"mine","imageName":"alpine:3.19"})").status,
      200);
  Json still = call("GET", "/api/snapshots/" + id, key_a_).json();
  EXPECT_EQ(still["state"], "active") << still.dump();
}

TEST_F(SnapshotApiTest, MissingPermissionIsAccessDenied) {
  expectError(
      call("POST", "/api/snapshots", key_read_, R"({"name":"x","imageName":"alpine:3.19"})"), 403,
      "Access denied");
  expectError(call("GET", "/api/object-storage/push-access", key_read_), 403, "Access denied");
  // Reading needs no permission.
  EXPECT_EQ(call("GET", "/api/snapshots", key_read_).status, 200);
}

TEST_F(SnapshotApiTest, PushAccessHasSevenFieldsScopedToTheOrganization) {
  Reply r = call("GET", "/api/object-storage/push-access", key_a_);
  ASSERT_EQ(r.status, 200) << r.body;
  Json j = r.json();
  for (const char* field : {"accessKey", "secret", "sessionToken", "storageUrl", "organizationId",
                            "bucket", "region"}) {
    EXPECT_TRUE(j.contains(field) && j[field].is_string() && !j[field].get<std::string>().empty())
        << field << " in " << r.body;
  }
  EXPECT_EQ(j["storageUrl"], "http://cairn.test:8080/s3");
  EXPECT_EQ(j["organizationId"], org_ids_["a"]);
  ASSERT_OK_AND_ASSIGN(S3Credential c, minter_->lookup(j["accessKey"].get<std::string>()));
  EXPECT_EQ(c.allowed_prefix, org_ids_["a"] + "/");
}

TEST_F(SnapshotApiTest, BuildLogsUrlAndFollowStreamUntilTheBuildEnds) {
  Reply created = call(
      "POST", "/api/snapshots", key_a_,
      R"({"name":"built","buildInfo":{"dockerfileContent":"FROM alpine:3.19\nRUN echo done\n"}})");
  ASSERT_EQ(created.status, 200) << created.body;
  std::string id = created.json()["id"];
  Json building = waitForState("built", key_a_, {"building"});
  ASSERT_EQ(building["state"], "building") << building.dump();

  Reply url = call("GET", "/api/snapshots/" + id + "/build-logs-url", key_a_);
  ASSERT_EQ(url.status, 200) << url.body;
  std::string u = url.json()["url"];
  EXPECT_EQ(u, "http://cairn.test:8080/api/snapshots/" + id + "/build-logs");
  EXPECT_EQ(u.find('?'), std::string::npos);

  TestClient follower(server_->port());
  ASSERT_TRUE(
      follower.send("GET /api/snapshots/" + id +
                    "/build-logs?follow=true HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                    key_a_ + "\r\n\r\n"));
  std::string seen;
  for (int i = 0; i < 100 && seen.find("FROM alpine") == std::string::npos; ++i) {
    seen += follower.readSome(std::chrono::milliseconds(100));
  }
  EXPECT_THAT(seen, HasSubstr("200"));
  EXPECT_THAT(seen, HasSubstr("FROM alpine"));
  EXPECT_THAT(seen, Not(HasSubstr("RUN echo done\n#2 DONE")));
  builder_.release();
  std::optional<TestResponse> rest;
  for (int i = 0; i < 200 && seen.find("#2 DONE") == std::string::npos; ++i) {
    seen += follower.readSome(std::chrono::milliseconds(100));
  }
  EXPECT_THAT(seen, HasSubstr("#2 DONE"));
  EXPECT_TRUE(follower.waitClosed(std::chrono::seconds(10)) ||
              seen.find("0\r\n\r\n") != std::string::npos)
      << seen;

  // Afterwards: plain GET returns the whole log; offset resumes.
  Reply whole = call("GET", "/api/snapshots/" + id + "/build-logs", key_a_);
  ASSERT_EQ(whole.status, 200);
  EXPECT_THAT(whole.body, HasSubstr("FROM alpine"));
  EXPECT_THAT(whole.body, HasSubstr("#2 DONE"));
  Reply tail = call("GET", "/api/snapshots/" + id + "/build-logs?offset=5", key_a_);
  EXPECT_EQ(tail.body, whole.body.substr(5));
  expectError(call("GET", "/api/snapshots/" + id + "/build-logs?offset=-1", key_a_), 400,
              "offset must be a non-negative integer");
}

TEST_F(SnapshotApiTest, BadInputIs4xxWithAMessage) {
  expectError(call("POST", "/api/snapshots", key_a_, "{not json"), 400,
              call("POST", "/api/snapshots", key_a_, "{not json").json()["message"]);
  EXPECT_THAT(
      call("POST", "/api/snapshots", key_a_, "{not json").json()["message"].get<std::string>(),
      HasSubstr("not valid JSON"));
  expectError(call("POST", "/api/snapshots", key_a_, "[1,2]"), 400,
              "Request body must be a JSON object");
  Reply wrong_type = call("POST", "/api/snapshots", key_a_, R"({"name":42,"imageName":"alpine"})");
  EXPECT_EQ(wrong_type.status, 400) << wrong_type.body;
  Reply bad_name =
      call("POST", "/api/snapshots", key_a_, R"({"name":"bad name!","imageName":"alpine:3.19"})");
  EXPECT_EQ(bad_name.status, 400) << bad_name.body;
  std::string huge =
      R"({"name":"big","imageName":"alpine:3.19","pad":")" + std::string(2 << 20, 'x') + "\"}";
  Reply too_big = call("POST", "/api/snapshots", key_a_, huge);
  EXPECT_EQ(too_big.status, 413) << too_big.body.substr(0, 200);
  EXPECT_EQ(call("GET", "/api/socket.io/?EIO=4&transport=polling", key_a_).status, 404);
  EXPECT_EQ(call("GET", "/api/snapshots/%ZZ", key_a_).status, 400);
  Reply openapi = call("GET", "/api/openapi.json", "");
  ASSERT_EQ(openapi.status, 200);
  EXPECT_TRUE(openapi.json()["paths"].contains("/api/snapshots/{idOrName}"));
}

}  // namespace
}  // namespace cairn::api

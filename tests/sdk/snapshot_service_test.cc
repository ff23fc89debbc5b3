// SnapshotService and Daytona against the fake server: the request sequence of spec §3.3, log
// streaming, context upload, id resolution (§3.2), errors (§3.4) and the whole-create deadline.
#include "cairn/sdk/snapshot_service.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <mutex>

#include "cairn/common/fs.h"
#include "cairn/image/context.h"
#include "cairn/sdk/daytona.h"
#include "cairn/sdk/errors.h"
#include "cairn/testing/status_matchers.h"
#include "fake_daytona.h"

namespace cairn {
namespace {

using ::cairn::testing::FakeDaytona;
using ::cairn::testing::RecordedRequest;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class SnapshotServiceTest : public ::testing::Test {
 protected:
  SnapshotServiceTest()
      : daytona_({.apiKey = FakeDaytona::kApiKey, .apiUrl = fake_.apiUrl(), .target = "us"},
                 std::make_shared<sdk::HttpClient>(sdk::RetryPolicy{
                     2, std::chrono::milliseconds(5), std::chrono::milliseconds(5)})) {
    daytona_.snapshot.setPollInterval(std::chrono::milliseconds(20));
    daytona_.snapshot.setLogDrainIdle(std::chrono::milliseconds(300));
  }

  // Collects onLogs output (calls may come from the stream thread).
  CreateOptions collecting(double timeout = 0) {
    return {.onLogs =
                [this](std::string_view line) {
                  std::lock_guard lock(mu_);
                  logs_.emplace_back(line);
                },
            .timeout = timeout};
  }
  std::vector<std::string> logs() {
    std::lock_guard lock(mu_);
    return logs_;
  }
  Json postedBody() {
    auto posts = fake_.requests("POST", "/api/snapshots");
    EXPECT_EQ(posts.size(), 1u);
    return posts.empty() ? Json() : Json::parse(posts.back().body);
  }
  std::filesystem::path writeFile(const std::string& name, const std::string& content) {
    auto p = dir_.path() / name;
    std::filesystem::create_directories(p.parent_path());
    EXPECT_OK(writeFileDurable(p, content));
    return p;
  }

  FakeDaytona fake_;
  Daytona daytona_;
  TempDir dir_ = std::move(TempDir::create("sdk-test")).value();
  std::mutex mu_;
  std::vector<std::string> logs_;
};

TEST_F(SnapshotServiceTest, CreateFromImageReference) {
  fake_.setStateScript({"pending", "pulling", "pulling", "active"});
  Snapshot s = daytona_.snapshot.create({.name = "py",
                                         .image = std::string("python:3.12-slim"),
                                         .resources = Resources{.cpu = 2, .memory = 4, .disk = 8},
                                         .entrypoint = {"sleep", "infinity"}},
                                        collecting());
  EXPECT_EQ(s.state.str(), "active");
  EXPECT_EQ(s.cpu, 2);
  EXPECT_EQ(s.mem, 4);
  Json body = postedBody();
  EXPECT_EQ(body, (Json{{"name", "py"},
                        {"imageName", "python:3.12-slim"},
                        {"entrypoint", {"sleep", "infinity"}},
                        {"cpu", 2},
                        {"memory", 4},
                        {"disk", 8},
                        {"regionId", "us"}}));
  EXPECT_THAT(logs(),
              ElementsAre("Creating snapshot py (pending)", "Creating snapshot py (pulling)",
                          "Created snapshot py (active)"));
  // Polled by name; no push access and no log stream for a pulled image.
  EXPECT_EQ(fake_.requests("GET", "/api/snapshots/py").size(), 3u);
  EXPECT_TRUE(fake_.requests("GET", "/api/object-storage").empty());
  EXPECT_TRUE(fake_.requests("GET", "/logs/").empty());
}

TEST_F(SnapshotServiceTest, CreateFromImageStreamsTheBuildLog) {
  fake_.setStateScript({"pending", "building", "building", "active"});
  fake_.setLogChunks({"#1 [1/2] FROM alpine:3.19\n", "#2 caf\xC3", "\xA9 \n", "#2 DONE 0.1s\n"});
  Image image = Image::base("alpine:3.19").runCommands("echo hi");
  Snapshot s = daytona_.snapshot.create({.name = "built",
                                         .image = image,
                                         .resources = Resources{.gpu = 1, .gpuType = "H100"},
                                         .regionId = "eu",
                                         .sandboxClass = "container"},
                                        collecting());
  EXPECT_EQ(s.state.str(), "active");
  Json body = postedBody();
  EXPECT_EQ(body["buildInfo"]["dockerfileContent"], image.dockerfile());
  EXPECT_EQ(body["buildInfo"]["contextHashes"], Json::array());
  EXPECT_EQ(body["regionId"], "eu");
  EXPECT_EQ(body["sandboxClass"], "container");
  EXPECT_EQ(body["gpu"], 1);
  EXPECT_EQ(body["gpuType"], Json::array({"H100"}));
  EXPECT_FALSE(body.contains("cpu"));  // unset resources are not sent
  EXPECT_FALSE(body.contains("imageName"));
  std::vector<std::string> got = logs();
  EXPECT_EQ(got.front(), "Creating snapshot built (pending)");
  EXPECT_THAT(got, Contains("Creating snapshot built (building)"));
  EXPECT_THAT(got, Contains("#1 [1/2] FROM alpine:3.19"));
  // A character split across network chunks is delivered whole, never as a lone lead byte.
  std::string joined;
  for (const auto& line : got) {
    EXPECT_FALSE(line.ends_with("\xC3")) << line;
    joined += line;
  }
  EXPECT_THAT(joined, HasSubstr("#2 caf"));
  EXPECT_THAT(joined, HasSubstr("\xC3\xA9"));
  EXPECT_THAT(got, Contains("#2 DONE 0.1s"));
  EXPECT_EQ(got.back(), "Created snapshot built (active)");
  auto streams = fake_.requests("GET", "/logs/");
  ASSERT_EQ(streams.size(), 1u);
  EXPECT_EQ(streams[0].query, "follow=true");
  EXPECT_EQ(streams[0].headers["authorization"], "Bearer test-api-key");
  EXPECT_TRUE(fake_.requests("GET", "/api/object-storage").empty());
}

TEST_F(SnapshotServiceTest, WithoutOnLogsThereIsNoStream) {
  fake_.setStateScript({"pending", "building", "active"});
  Snapshot s = daytona_.snapshot.create({.name = "quiet", .image = Image::base("alpine:3.19")});
  EXPECT_EQ(s.state.str(), "active");
  EXPECT_TRUE(fake_.requests("GET", "/api/snapshots/" + s.id + "/build-logs-url").empty());
  EXPECT_TRUE(fake_.requests("GET", "/logs/").empty());
}

// A build that goes from pending to active between two polls never shows a state that starts
// the stream (the TS SDK then shows no log); the C++ SDK fetches the log once instead (§0).
TEST_F(SnapshotServiceTest, ABuildThatEndsWithinOnePollStillShowsItsLog) {
  fake_.setStateScript({"pending", "active"});
  fake_.setLogChunks({"#1 [1/1] FROM alpine:3.19\n", "#1 DONE 0.1s\n\n"});
  Snapshot s = daytona_.snapshot.create({.name = "quick", .image = Image::base("alpine:3.19")},
                                        collecting());
  EXPECT_EQ(s.state.str(), "active");
  EXPECT_THAT(logs(), ElementsAre("Creating snapshot quick (pending)",
                                  "#1 [1/1] FROM alpine:3.19\n#1 DONE 0.1s",
                                  "Created snapshot quick (active)"));
  auto fetches = fake_.requests("GET", "/logs/");
  ASSERT_EQ(fetches.size(), 1u);
  EXPECT_EQ(fetches[0].query, "follow=false");
  EXPECT_EQ(fetches[0].headers["authorization"], "Bearer test-api-key");
  EXPECT_EQ(fake_.requests("GET", "/api/snapshots/" + s.id + "/build-logs-url").size(), 1u);
}

TEST_F(SnapshotServiceTest, AFailedBuildThatEndsWithinOnePollShowsItsLogBeforeTheError) {
  fake_.setStateScript({"pending", "error"});
  fake_.setErrorReason("RUN false: exit code 1");
  fake_.setLogChunks({"#2 [2/2] RUN false\n", "ERROR: exit code 1\n"});
  EXPECT_THROW(daytona_.snapshot.create({.name = "quickfail", .image = Image::base("alpine:3.19")},
                                        collecting()),
               DaytonaError);
  EXPECT_THAT(logs(), ElementsAre("Creating snapshot quickfail (pending)",
                                  "#2 [2/2] RUN false\nERROR: exit code 1"));
}

// What stays as in the TS SDK: no log request for a snapshot active in the POST's answer
// (deduplicated: nothing was built), for a pull, or without onLogs.
TEST_F(SnapshotServiceTest, NoLogIsFetchedWhenNothingWasBuiltOrNobodyListens) {
  fake_.setLogChunks({"#1 should not be seen\n"});
  fake_.setStateScript({"active"});
  daytona_.snapshot.create({.name = "dedup", .image = Image::base("alpine:3.19")}, collecting());
  EXPECT_THAT(logs(),
              ElementsAre("Creating snapshot dedup (active)", "Created snapshot dedup (active)"));
  fake_.setStateScript({"pending", "active"});
  daytona_.snapshot.create({.name = "pulled", .image = std::string("alpine:3.19")}, collecting());
  daytona_.snapshot.create({.name = "silent", .image = Image::base("alpine:3.19")});
  EXPECT_TRUE(fake_.requests("GET", "/logs/").empty());
  for (const auto& r : fake_.requests("GET", "/api/snapshots/"))
    EXPECT_FALSE(r.path.ends_with("/build-logs-url")) << r.path;
}

// The fetch is best effort: a log endpoint that cannot be reached leaves the log out and the
// create still succeeds (the TS SDK would not have asked).
TEST_F(SnapshotServiceTest, AnUnreachableLogAfterAQuickBuildIsLeftOut) {
  fake_.setStateScript({"pending", "active"});
  fake_.setLogsUrl("http://127.0.0.1:1/logs");
  Snapshot s = daytona_.snapshot.create({.name = "nolog", .image = Image::base("alpine:3.19")},
                                        collecting());
  EXPECT_EQ(s.state.str(), "active");
  EXPECT_THAT(logs(),
              ElementsAre("Creating snapshot nolog (pending)", "Created snapshot nolog (active)"));
}

TEST_F(SnapshotServiceTest, LogStreamThatStaysOpenIsDrainedAndLeft) {
  fake_.setStateScript({"pending", "building", "active"});
  fake_.setCloseLogsWhenTerminal(false);  // the reference server's behaviour on failures
  fake_.setLogChunks({"step 1\n"});
  Snapshot s =
      daytona_.snapshot.create({.name = "open", .image = Image::base("alpine:3.19")}, collecting());
  EXPECT_EQ(s.state.str(), "active");
  EXPECT_THAT(logs(), Contains("step 1"));
  EXPECT_EQ(logs().back(), "Created snapshot open (active)");
}

TEST_F(SnapshotServiceTest, AnExceptionFromOnLogsReachesTheCaller) {
  fake_.setStateScript({"pending", "building", "building", "active"});
  fake_.setLogChunks({"#1 boom\n"});
  CreateOptions options;
  options.onLogs = [](std::string_view line) {
    if (line.starts_with("#1")) throw std::runtime_error("caller gave up");
  };
  try {
    daytona_.snapshot.create({.name = "thrower", .image = Image::base("alpine:3.19")}, options);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "caller gave up");
  }
}

TEST_F(SnapshotServiceTest, ContextIsUploadedOnceAndSkippedWhenPresent) {
  auto file = writeFile("ctx/app.py", "print('hi')\n");
  fake_.setStateScript({"active"});
  Image image = Image::base("python:3.12-slim").addLocalFile(file.string(), "/app/app.py");
  ASSERT_EQ(image.contextList().size(), 1u);
  ASSERT_OK_AND_ASSIGN(std::string hash, contextHash(image.contextList()[0]));
  ASSERT_OK_AND_ASSIGN(std::string tar, contextArchive(image.contextList()[0]));

  Snapshot s = daytona_.snapshot.create({.name = "ctx1", .image = image});
  EXPECT_EQ(s.state.str(), "active");
  EXPECT_THAT(fake_.s3Failures(), IsEmpty());
  std::string key = std::string(FakeDaytona::kOrgId) + "/" + hash + "/context.tar";
  EXPECT_EQ(fake_.objects()[key], tar);
  EXPECT_EQ(postedBody()["buildInfo"]["contextHashes"], Json::array({hash}));
  EXPECT_EQ(fake_.requests("GET", "/api/object-storage/push-access").size(), 1u);
  EXPECT_EQ(fake_.requests("PUT", "/s3/").size(), 1u);
  EXPECT_EQ(daytona_.snapshot.get("ctx1").buildInfo->contextHashes, std::vector{hash});

  fake_.clearRequests();
  Snapshot again = daytona_.snapshot.create({.name = "ctx2", .image = image});
  EXPECT_EQ(again.state.str(), "active");
  EXPECT_EQ(fake_.requests("GET", "/s3/").size(), 1u);  // ListObjectsV2 found it
  EXPECT_TRUE(fake_.requests("PUT", "/s3/").empty());
  EXPECT_EQ(postedBody()["buildInfo"]["contextHashes"], Json::array({hash}));
}

TEST_F(SnapshotServiceTest, LargeContextGoesMultipart) {
  std::string big(6 * 1024 * 1024 + 100, 'x');
  for (std::size_t i = 0; i < big.size(); i += 4096)
    big[i] = static_cast<char>('a' + i % 26);
  auto file = writeFile("big/blob.bin", big);
  fake_.setStateScript({"active"});
  Image image = Image::base("alpine:3.19").addLocalDir((dir_.path() / "big").string(), "/data");
  daytona_.snapshot.create({.name = "big", .image = image});
  EXPECT_THAT(fake_.s3Failures(), IsEmpty());
  EXPECT_EQ(fake_.multipartCompleted(), 1);
  ASSERT_OK_AND_ASSIGN(std::string tar, contextArchive(image.contextList()[0]));
  ASSERT_OK_AND_ASSIGN(std::string hash, contextHash(image.contextList()[0]));
  EXPECT_TRUE(fake_.objects()[std::string(FakeDaytona::kOrgId) + "/" + hash + "/context.tar"] ==
              tar);
  EXPECT_EQ(fake_.requests("PUT", "/s3/").size(), 2u);        // two parts
  EXPECT_EQ(daytona_.objectStorage.lastStats().uploaded, 0);  // the service has its own
  ObjectStorage storage(
      ObjectStorageApi(makeApiConnection(fake_.apiUrl(), FakeDaytona::kApiKey, "", "", nullptr)));
  EXPECT_EQ(storage.uploadContext(image), std::vector{hash});
  EXPECT_EQ(storage.lastStats().skipped, 1);
  EXPECT_EQ(storage.lastStats().uploaded, 0);
}

TEST_F(SnapshotServiceTest, MissingContextPathIsNotFound) {
  auto file = writeFile("gone.txt", "x");
  Image image = Image::base("alpine:3.19").addLocalFile(file.string(), "/gone.txt");
  std::filesystem::remove(file);
  try {
    daytona_.snapshot.create({.name = "gone", .image = image});
    FAIL();
  } catch (const DaytonaNotFoundError& e) {
    EXPECT_THAT(e.what(), HasSubstr("Path does not exist: "));
  }
  EXPECT_TRUE(fake_.requests("POST", "/api/snapshots").empty());
}

TEST_F(SnapshotServiceTest, EntrypointIsAppendedToAnImage) {
  fake_.setStateScript({"active"});
  Image image = Image::base("alpine:3.19");
  daytona_.snapshot.create({.name = "ep", .image = image, .entrypoint = {"/bin/sh", "-c"}});
  Json body = postedBody();
  EXPECT_FALSE(body.contains("entrypoint"));
  EXPECT_EQ(body["buildInfo"]["dockerfileContent"],
            Image(image).entrypoint({"/bin/sh", "-c"}).dockerfile());
}

TEST_F(SnapshotServiceTest, FailedBuildThrowsWithTheReason) {
  fake_.setStateScript({"pending", "building", "error"});
  fake_.setErrorReason("RUN false: exit code 1");
  try {
    daytona_.snapshot.create({.name = "bad", .image = Image::base("alpine:3.19")}, collecting());
    FAIL();
  } catch (const DaytonaError& e) {
    EXPECT_STREQ(e.what(), "Failed to create snapshot. Name: bad Reason: RUN false: exit code 1");
    EXPECT_FALSE(e.statusCode().has_value());
  }
  EXPECT_THAT(logs(), Contains("Creating snapshot bad (building)"));
}

TEST_F(SnapshotServiceTest, BuildFailedWithoutReasonSaysNull) {
  fake_.setStateScript({"build_failed"});
  fake_.setErrorReason("");
  try {
    daytona_.snapshot.create({.name = "bf", .image = std::string("alpine:3.19")});
    FAIL();
  } catch (const DaytonaError& e) {
    EXPECT_STREQ(e.what(), "Failed to create snapshot. Name: bf Reason: null");
  }
}

TEST_F(SnapshotServiceTest, ServerErrorsKeepTheirClass) {
  fake_.addSnapshot("dup");
  try {
    daytona_.snapshot.create({.name = "dup", .image = std::string("alpine:3.19")});
    FAIL();
  } catch (const DaytonaConflictError& e) {
    EXPECT_STREQ(e.what(), "Snapshot with name \"dup\" already exists for this organization");
    EXPECT_EQ(e.statusCode(), 409);
  }
  fake_.failNext("POST", "/api/snapshots", 403,
                 R"({"statusCode":403,"error":"Forbidden","message":"Access denied"})");
  EXPECT_THROW(daytona_.snapshot.create({.name = "x", .image = std::string("alpine:3.19")}),
               DaytonaAuthorizationError);
  fake_.setEmptyCreateBody(true);
  try {
    daytona_.snapshot.create({.name = "empty", .image = std::string("alpine:3.19")});
    FAIL();
  } catch (const DaytonaError& e) {
    EXPECT_STREQ(e.what(),
                 "Failed to create snapshot. Didn't receive a snapshot from the server API.");
  }
}

TEST_F(SnapshotServiceTest, NotFoundWhilePollingPropagates) {
  fake_.setStateScript({"pending", "building"});
  fake_.failNext("GET", "/api/snapshots/vanish", 404,
                 R"({"statusCode":404,"message":"Snapshot vanish not found"})");
  EXPECT_THROW(daytona_.snapshot.create({.name = "vanish", .image = std::string("a:1")}),
               DaytonaNotFoundError);
}

TEST_F(SnapshotServiceTest, TimeoutBoundsTheWholeCreate) {
  fake_.setStateScript({"pending", "building"});  // never terminal
  try {
    daytona_.snapshot.create({.name = "slow", .image = Image::base("alpine:3.19")},
                             collecting(1.5));
    FAIL();
  } catch (const DaytonaTimeoutError& e) {
    EXPECT_THAT(e.what(), HasSubstr("Failed to create snapshot slow: timed out after 1.5 s"));
  }
  // The server-side build is left alone.
  EXPECT_TRUE(fake_.requests("DELETE", "/api/snapshots").empty());
  ASSERT_TRUE(fake_.snapshotByName("slow").has_value());
  EXPECT_EQ((*fake_.snapshotByName("slow"))["state"], "building");
  EXPECT_THAT(logs(), Contains("Creating snapshot slow (building)"));
}

TEST_F(SnapshotServiceTest, TimeoutAlsoBoundsTheLogDrain) {
  fake_.setStateScript({"pending", "building", "active"});
  fake_.setCloseLogsWhenTerminal(false);
  daytona_.snapshot.setLogDrainIdle(std::chrono::minutes(10));
  try {
    daytona_.snapshot.create({.name = "drain", .image = Image::base("alpine:3.19")},
                             collecting(2.0));
    FAIL();
  } catch (const DaytonaTimeoutError& e) {
    EXPECT_THAT(e.what(), HasSubstr("timed out after 2 s"));
  }
  EXPECT_EQ((*fake_.snapshotByName("drain"))["state"], "active");
}

TEST_F(SnapshotServiceTest, UnreachableLogStreamFailsTheCreate) {
  fake_.setStateScript({"pending", "building", "active"});
  fake_.setLogsUrl("http://127.0.0.1:1/logs");
  EXPECT_THROW(daytona_.snapshot.create({.name = "nolog", .image = Image::base("alpine:3.19")},
                                        collecting()),
               DaytonaConnectionError);
}

TEST_F(SnapshotServiceTest, BadArgumentsAreRejectedLocally) {
  EXPECT_THROW(daytona_.snapshot.create({.name = "", .image = std::string("a:1")}),
               DaytonaInvalidArgumentError);
  EXPECT_THROW(
      daytona_.snapshot.create({.name = "n", .image = std::string("a:1")}, {.timeout = -1}),
      DaytonaInvalidArgumentError);
  EXPECT_TRUE(fake_.requests().empty());
}

TEST_F(SnapshotServiceTest, GetAndList) {
  fake_.addSnapshot("a/b:c@d");
  fake_.addSnapshot("z");
  EXPECT_EQ(daytona_.snapshot.get("a/b:c@d").name, "a/b:c@d");
  EXPECT_EQ(fake_.requests("GET", "/api/snapshots/")[0].path, "/api/snapshots/a%2Fb%3Ac%40d");
  EXPECT_EQ(daytona_.snapshot.list().items.size(), 2u);
  PaginatedSnapshots p = daytona_.snapshot.list(2, 1);
  ASSERT_EQ(p.items.size(), 1u);
  EXPECT_EQ(p.items[0].name, "z");
  EXPECT_EQ(p.totalPages, 2);
  EXPECT_THROW(daytona_.snapshot.get("nope"), DaytonaNotFoundError);
}

TEST_F(SnapshotServiceTest, RemoveResolvesIdsLikeTheTsSdk) {
  Json a = fake_.addSnapshot("by-object");
  Json b = fake_.addSnapshot("by-name");
  Json c = fake_.addSnapshot("by-id");
  // A name that looks like an id: DELETE with it fails (404), then it is looked up by name.
  std::string uuid_name = "11111111-2222-4333-8444-555555555555";
  Json d = fake_.addSnapshot(uuid_name);

  daytona_.snapshot.remove(daytona_.snapshot.get("by-object"));
  daytona_.snapshot.remove("by-name");
  daytona_.snapshot.remove(c["id"].get<std::string>());
  daytona_.snapshot.remove(uuid_name);

  std::vector<std::string> deletes;
  for (const RecordedRequest& r : fake_.requests("DELETE", "/api/snapshots/")) {
    deletes.push_back(r.path.substr(15));
  }
  EXPECT_THAT(deletes, ElementsAre(a["id"], b["id"], c["id"], uuid_name, d["id"]));
  EXPECT_EQ(fake_.requests("GET", "/api/snapshots/by-name").size(), 1u);
  EXPECT_TRUE(fake_.requests("GET", "/api/snapshots/" + c["id"].get<std::string>()).empty());
  EXPECT_TRUE(daytona_.snapshot.list().items.empty());
  EXPECT_THROW(daytona_.snapshot.remove("never-existed"), DaytonaNotFoundError);
}

TEST_F(SnapshotServiceTest, ActivateAndDeactivate) {
  Json s = fake_.addSnapshot("sleepy", "inactive");
  Snapshot active = daytona_.snapshot.activate("sleepy");
  EXPECT_EQ(active.state.str(), "active");
  EXPECT_TRUE(active.lastUsedAt.has_value());
  daytona_.snapshot.deactivate(active);
  EXPECT_EQ(daytona_.snapshot.get("sleepy").state.str(), "inactive");
  EXPECT_EQ(daytona_.snapshot.activate(s["id"].get<std::string>()).state.str(), "active");
  try {
    daytona_.snapshot.activate("sleepy");
    FAIL();
  } catch (const DaytonaValidationError& e) {
    EXPECT_THAT(e.what(), HasSubstr("is already active"));
  }
  EXPECT_EQ(
      fake_.requests("POST", "/api/snapshots/" + s["id"].get<std::string>() + "/activate").size(),
      3u);
}

TEST_F(SnapshotServiceTest, LogsOfAnExistingSnapshot) {
  fake_.addSnapshot("done", "active");
  fake_.setLogChunks({"a\n", "b\n"});
  std::string all;
  daytona_.snapshot.logs("done", true, [&](std::string_view c) { all += c; });
  EXPECT_EQ(all, "a\nb\n");
  std::string rest;
  daytona_.snapshot.logs(
      "done", false, [&](std::string_view c) { rest += c; }, 2);
  EXPECT_EQ(rest, "b\n");
  EXPECT_EQ(fake_.requests("GET", "/logs/").back().query, "follow=false&offset=2");
}

// Environment-variable configuration (spec §3.1).
class DaytonaConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : kVars)
      unsetenv(v);
  }
  void TearDown() override {
    for (const char* v : kVars)
      unsetenv(v);
  }
  static constexpr const char* kVars[] = {"DAYTONA_API_KEY",    "DAYTONA_API_URL",
                                          "DAYTONA_SERVER_URL", "DAYTONA_TARGET",
                                          "DAYTONA_JWT_TOKEN",  "DAYTONA_ORGANIZATION_ID"};
};

TEST_F(DaytonaConfigTest, FromTheEnvironmentWithDefaults) {
  setenv("DAYTONA_API_KEY", "k", 1);
  DaytonaConfig c = resolveDaytonaConfig({});
  EXPECT_EQ(c.apiKey, "k");
  EXPECT_EQ(c.apiUrl, "https://app.daytona.io/api");
  setenv("DAYTONA_SERVER_URL", "http://old", 1);
  EXPECT_EQ(resolveDaytonaConfig({}).apiUrl, "http://old");
  setenv("DAYTONA_API_URL", "http://new", 1);
  setenv("DAYTONA_TARGET", "eu", 1);
  c = resolveDaytonaConfig({});
  EXPECT_EQ(c.apiUrl, "http://new");
  EXPECT_EQ(c.target, "eu");
  c = resolveDaytonaConfig({.apiKey = "explicit", .apiUrl = "http://given"});
  EXPECT_EQ(c.apiKey, "explicit");
  EXPECT_EQ(c.apiUrl, "http://given");
}

TEST_F(DaytonaConfigTest, CredentialsAreRequired) {
  try {
    Daytona d;
    FAIL();
  } catch (const DaytonaError& e) {
    EXPECT_THAT(e.what(), HasSubstr("API key or JWT token is required"));
  }
  setenv("DAYTONA_JWT_TOKEN", "jwt", 1);
  EXPECT_THROW(resolveDaytonaConfig({}), DaytonaError);
  setenv("DAYTONA_ORGANIZATION_ID", "org", 1);
  DaytonaConfig c = resolveDaytonaConfig({});
  EXPECT_EQ(c.jwtToken, "jwt");
  EXPECT_EQ(c.organizationId, "org");
}

}  // namespace
}  // namespace cairn

// The C++ SDK against a real `cairn serve` (the built binary, started by each test on
// 127.0.0.1:0 with a temp data dir): every method that needs no build engine, and every error
// class the server produces. Builds, pulls, uploads and timeouts are in serve_build_e2e_test.cc.
//
// Snapshots here come from image names in an in-process registry that holds no images: the
// server accepts the POST (pending), then fails the pull, so they exist (for list, get, remove,
// conflicts) without needing root or an OCI runtime.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <typeinfo>
#include <vector>

#include "cairn/common/fs.h"
#include "cairn/sdk/daytona.h"
#include "cairn/sdk/errors.h"
#include "cairn/testing/status_matchers.h"
#include "fake_registry.h"
#include "serve_fixture.h"

namespace cairn {
namespace {

using ::cairn::testing::CairnServe;
using ::cairn::testing::LogCollector;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using ::testing::UnorderedElementsAre;

//! What expectThrow caught: the message, the status and the dynamic type of the exception.
struct Caught {
  std::string message;
  std::optional<int> status;
  const std::type_info* type = nullptr;
  const char* what() const { return message.c_str(); }
  std::optional<int> statusCode() const { return status; }
};

//! Runs `fn`, expects it to throw `E` (or a subclass of it) and returns what it caught.
template <typename E, typename Fn>
std::optional<Caught> expectThrow(Fn&& fn) {
  try {
    fn();
  } catch (const E& e) {
    return Caught{e.what(), e.statusCode(), &typeid(e)};
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw another exception type: " << typeid(e).name() << ": " << e.what();
    return std::nullopt;
  }
  ADD_FAILURE() << "did not throw";
  return std::nullopt;
}

class ServeE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(TempDir d, TempDir::create("sdk-serve-e2e"));
    dir_.emplace(std::move(d));
    ASSERT_OK_AND_ASSIGN(serve_,
                         CairnServe::start(dir_->path() / "data", dir_->path() / "serve.log"));
    daytona_ = serve_->client();
  }
  void TearDown() override {
    if (serve_ != nullptr) expectStopsCleanly(*serve_);
  }

  //! An image reference the registry does not have: the pull fails in the server's worker.
  std::string missingImage(const std::string& repo = "missing/image") const {
    return registry_.host() + "/" + repo + ":1";
  }

  //! Creates a snapshot whose pull fails; returns the failure the SDK reported.
  std::string createFailing(const std::string& name) {
    std::string message;
    try {
      daytona_->snapshot.create({.name = name, .image = missingImage()}, {.timeout = 120});
      ADD_FAILURE() << "create of " << name << " succeeded";
    } catch (const DaytonaError& e) {
      message = e.what();
    }
    return message;
  }

  registry::testing::FakeRegistry registry_;
  std::optional<TempDir> dir_;
  std::unique_ptr<CairnServe> serve_;
  std::unique_ptr<Daytona> daytona_;
};

TEST_F(ServeE2eTest, FailedPullThrowsTheBaseErrorWithTheServersReason) {
  LogCollector logs;
  std::string image = missingImage();
  auto e = expectThrow<DaytonaError>(
      [&] { daytona_->snapshot.create({.name = "broken", .image = image}, logs.options(120)); });
  ASSERT_TRUE(e.has_value());
  // §3.3: the base class, no HTTP status, the errorReason of §0.4 after "Reason: ".
  EXPECT_EQ(*e->type, typeid(DaytonaError)) << e->type->name();
  EXPECT_FALSE(e->statusCode().has_value());
  EXPECT_THAT(e->what(), StartsWith("Failed to create snapshot. Name: broken Reason: Failed to "
                                    "resolve image " +
                                    image + ": "));
  ASSERT_FALSE(logs.lines().empty());
  EXPECT_EQ(logs.lines().front(), "Creating snapshot broken (pending)");
  // The snapshot stays, in state error, with the same reason.
  Snapshot s = daytona_->snapshot.get("broken");
  EXPECT_EQ(s.state.str(), "error");
  ASSERT_TRUE(s.errorReason.has_value());
  EXPECT_THAT(std::string(e->what()), HasSubstr(*s.errorReason));
  EXPECT_EQ(s.imageName, image);
}

TEST_F(ServeE2eTest, UnknownNameIsNotFound) {
  auto e = expectThrow<DaytonaNotFoundError>([&] { daytona_->snapshot.get("no-such-snapshot"); });
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->statusCode(), 404);
  EXPECT_STREQ(e->what(), "Snapshot no-such-snapshot not found");
  // Names with '/', ':' and '@' reach the server as one path segment.
  auto odd = expectThrow<DaytonaNotFoundError>(
      [&] { daytona_->snapshot.get("team/py:3.12@sha256:" + std::string(64, 'a')); });
  ASSERT_TRUE(odd.has_value());
  EXPECT_THAT(odd->what(), HasSubstr("team/py:3.12@sha256:"));
  EXPECT_TRUE(expectThrow<DaytonaNotFoundError>([&] { daytona_->snapshot.remove("no-such"); }));
  EXPECT_TRUE(expectThrow<DaytonaNotFoundError>([&] { daytona_->snapshot.activate("no-such"); }));
  EXPECT_TRUE(expectThrow<DaytonaNotFoundError>([&] { daytona_->snapshot.deactivate("no-such"); }));
  // A UUID that is no snapshot's id: tried as an id, then as a name (§3.2), both 404.
  EXPECT_TRUE(expectThrow<DaytonaNotFoundError>(
      [&] { daytona_->snapshot.remove("3f1a2b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b"); }));
}

TEST_F(ServeE2eTest, BadApiKeyIsAuthenticationError) {
  std::unique_ptr<Daytona> wrong = serve_->client("cairn_not-a-real-key");
  auto list = expectThrow<DaytonaAuthenticationError>([&] { wrong->snapshot.list(); });
  ASSERT_TRUE(list.has_value());
  EXPECT_EQ(list->statusCode(), 401);
  EXPECT_STRNE(list->what(), "");
  EXPECT_TRUE(expectThrow<DaytonaAuthenticationError>([&] { wrong->snapshot.get("x"); }));
  // create fails at its first request, before anything exists on the server.
  EXPECT_TRUE(expectThrow<DaytonaAuthenticationError>(
      [&] { wrong->snapshot.create({.name = "never", .image = std::string("busybox:1")}); }));
  EXPECT_TRUE(expectThrow<DaytonaNotFoundError>([&] { daytona_->snapshot.get("never"); }));
}

TEST_F(ServeE2eTest, InvalidRequestsAreValidationErrorsWithTheServersMessage) {
  auto create = [&](CreateSnapshotParams p) {
    return expectThrow<DaytonaValidationError>([&] { daytona_->snapshot.create(std::move(p)); });
  };
  auto bad_name = create({.name = "bad name!", .image = std::string("busybox:1")});
  ASSERT_TRUE(bad_name.has_value());
  EXPECT_EQ(bad_name->statusCode(), 400);
  EXPECT_STREQ(bad_name->what(),
               "Invalid snapshot name format. May contain letters, digits, dots, colons, and "
               "dashes");
  // DaytonaValidationError is a DaytonaBadRequestError (§3.4).
  EXPECT_TRUE(expectThrow<DaytonaBadRequestError>(
      [&] { daytona_->snapshot.create({.name = "<b>", .image = std::string("busybox:1")}); }));

  auto cpu =
      create({.name = "big", .image = std::string("busybox:1"), .resources = Resources{.cpu = 64}});
  ASSERT_TRUE(cpu.has_value());
  EXPECT_THAT(cpu->what(), StartsWith("CPU request 64 exceeds maximum allowed per sandbox (4)."));
  auto memory = create(
      {.name = "big", .image = std::string("busybox:1"), .resources = Resources{.memory = 100}});
  ASSERT_TRUE(memory.has_value());
  EXPECT_THAT(memory->what(), StartsWith("Memory request 100GB exceeds maximum allowed"));
  auto gpu =
      create({.name = "big", .image = std::string("busybox:1"), .resources = Resources{.gpu = 2}});
  ASSERT_TRUE(gpu.has_value());
  EXPECT_EQ(gpu->statusCode(), 400);

  auto no_tag = create({.name = "x", .image = std::string("busybox")});
  ASSERT_TRUE(no_tag.has_value());
  EXPECT_STREQ(no_tag->what(),
               "Image name must include a tag (e.g., ubuntu:22.04) or digest (@sha256:...)");
  auto latest = create({.name = "x", .image = std::string("busybox:latest")});
  ASSERT_TRUE(latest.has_value());
  EXPECT_STREQ(latest->what(), "Images with tag \":latest\" are not allowed");

  auto limit = expectThrow<DaytonaValidationError>([&] { daytona_->snapshot.list(1, 500); });
  ASSERT_TRUE(limit.has_value());
  EXPECT_THAT(limit->what(), HasSubstr("limit must not be greater than 200"));
  auto page = expectThrow<DaytonaValidationError>([&] { daytona_->snapshot.list(0, 10); });
  ASSERT_TRUE(page.has_value());
  EXPECT_THAT(page->what(), HasSubstr("page must not be less than 1"));

  // None of them created anything.
  EXPECT_EQ(daytona_->snapshot.list().total, 0);
}

TEST_F(ServeE2eTest, DuplicateNameIsConflict) {
  std::string first = createFailing("twice");
  EXPECT_THAT(first, HasSubstr("Reason: "));
  auto e = expectThrow<DaytonaConflictError>(
      [&] { daytona_->snapshot.create({.name = "twice", .image = missingImage("other/image")}); });
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->statusCode(), 409);
  EXPECT_STREQ(e->what(), "Snapshot with name \"twice\" already exists for this organization");
  // The first snapshot is untouched.
  EXPECT_EQ(daytona_->snapshot.get("twice").imageName, missingImage());
}

TEST_F(ServeE2eTest, ListPaginatesAndGetFindsByNameAndId) {
  for (const char* name : {"alpha", "beta", "gamma"})
    createFailing(name);
  PaginatedSnapshots all = daytona_->snapshot.list();
  EXPECT_EQ(all.total, 3);
  EXPECT_EQ(all.page, 1);
  EXPECT_EQ(all.totalPages, 1);
  std::vector<std::string> names;
  for (const Snapshot& s : all.items)
    names.push_back(s.name);
  EXPECT_THAT(names, UnorderedElementsAre("alpha", "beta", "gamma"));

  PaginatedSnapshots first = daytona_->snapshot.list(1, 2);
  EXPECT_EQ(first.items.size(), 2u);
  EXPECT_EQ(first.total, 3);
  EXPECT_EQ(first.page, 1);
  EXPECT_EQ(first.totalPages, 2);
  PaginatedSnapshots second = daytona_->snapshot.list(2, 2);
  ASSERT_EQ(second.items.size(), 1u);
  EXPECT_EQ(second.page, 2);
  std::vector<std::string> paged = {first.items[0].name, first.items[1].name, second.items[0].name};
  EXPECT_THAT(paged, UnorderedElementsAre("alpha", "beta", "gamma"));
  EXPECT_TRUE(daytona_->snapshot.list(3, 2).items.empty());

  Snapshot by_name = daytona_->snapshot.get("beta");
  EXPECT_EQ(by_name.name, "beta");
  EXPECT_EQ(by_name.cpu, 1);  // §4 defaults
  EXPECT_EQ(by_name.mem, 1);
  EXPECT_EQ(by_name.disk, 3);
  EXPECT_FALSE(by_name.buildInfo.has_value());
  Snapshot by_id = daytona_->snapshot.get(by_name.id);
  EXPECT_EQ(by_id.name, "beta");
  EXPECT_EQ(by_id.createdAt, by_name.createdAt);

  ListSnapshotsQuery filtered;
  filtered.name = "ET";  // case-insensitive substring
  PaginatedSnapshots beta = daytona_->snapshot.list(filtered);
  ASSERT_EQ(beta.items.size(), 1u);
  EXPECT_EQ(beta.items[0].id, by_name.id);
}

TEST_F(ServeE2eTest, RemoveBySnapshotNameAndIdFreesTheName) {
  for (const char* name : {"one", "two", "three"})
    createFailing(name);
  Snapshot one = daytona_->snapshot.get("one");
  daytona_->snapshot.remove(one);
  daytona_->snapshot.remove("two");
  std::string three_id = daytona_->snapshot.get("three").id;
  daytona_->snapshot.remove(three_id);
  for (const char* name : {"one", "two", "three"}) {
    EXPECT_TRUE(expectThrow<DaytonaNotFoundError>([&] { daytona_->snapshot.get(name); })) << name;
  }
  EXPECT_EQ(daytona_->snapshot.list().total, 0);
  // §0.5: the name is free as soon as remove returns.
  std::string again = createFailing("one");
  EXPECT_THAT(again, StartsWith("Failed to create snapshot. Name: one Reason: "));
  EXPECT_NE(daytona_->snapshot.get("one").id, one.id);
}

TEST_F(ServeE2eTest, ActivateAndDeactivateFollowTheStateRules) {
  createFailing("failed");
  Snapshot s = daytona_->snapshot.get("failed");
  auto e = expectThrow<DaytonaValidationError>([&] { daytona_->snapshot.activate(s); });
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(std::string(e->what()),
            "Snapshot " + s.id + " cannot be activated - it is in error state");
  // Deactivate works from any state and is idempotent; activating right after is refused
  // (the 10-minute cooldown of §1.9; serve_build_e2e_test activates after it).
  daytona_->snapshot.deactivate(s);
  daytona_->snapshot.deactivate("failed");
  EXPECT_EQ(daytona_->snapshot.get("failed").state.str(), "inactive");
  auto cooling =
      expectThrow<DaytonaValidationError>([&] { daytona_->snapshot.activate("failed"); });
  ASSERT_TRUE(cooling.has_value());
  EXPECT_STREQ(cooling->what(),
               "Snapshot deactivation is still in progress. Please try again in a few minutes.");
}

TEST_F(ServeE2eTest, LocalArgumentErrorsNeverReachTheServer) {
  EXPECT_TRUE(expectThrow<DaytonaInvalidArgumentError>(
      [&] { daytona_->snapshot.create({.name = "", .image = std::string("busybox:1")}); }));
  EXPECT_TRUE(expectThrow<DaytonaInvalidArgumentError>([&] {
    daytona_->snapshot.create({.name = "t", .image = std::string("busybox:1")}, {.timeout = -1});
  }));
  // A context source that is gone by the time of create: §2.6 step 1, before push access.
  std::filesystem::path file = dir_->path() / "vanishing.txt";
  ASSERT_OK(writeFileDurable(file, "here for now\n"));
  Image image = Image::base("busybox:1").addLocalFile(file.string(), "/vanishing.txt");
  std::filesystem::remove(file);
  auto missing = expectThrow<DaytonaNotFoundError>(
      [&] { daytona_->snapshot.create({.name = "ctx", .image = image}); });
  ASSERT_TRUE(missing.has_value());
  EXPECT_EQ(std::string(missing->what()), "Path does not exist: " + file.string());
  EXPECT_EQ(daytona_->snapshot.list().total, 0);
}

TEST_F(ServeE2eTest, KeysWithoutThePermissionGetAuthorizationErrors) {
  createFailing("kept");
  auto issue = [&](const std::string& permissions) -> std::string {
    Result<std::string> out = testing::runCairn(
        serve_->dataDir(),
        {"admin", "key", "create", "--org", "default", "--permissions", permissions});
    EXPECT_OK(out.status());
    std::string key = out.ok() ? *out : "";
    while (!key.empty() && key.back() == '\n')
      key.pop_back();
    return key;
  };
  // §1.2: create needs write:snapshots, delete needs delete:snapshots.
  std::unique_ptr<Daytona> writer = serve_->client(issue("write:snapshots"));
  auto remove = expectThrow<DaytonaAuthorizationError>([&] { writer->snapshot.remove("kept"); });
  ASSERT_TRUE(remove.has_value());
  EXPECT_EQ(remove->statusCode(), 403);
  EXPECT_STREQ(remove->what(), "Access denied");
  EXPECT_EQ(writer->snapshot.get("kept").name, "kept");  // reading needs no permission

  std::unique_ptr<Daytona> sandboxes = serve_->client(issue("write:sandboxes"));
  auto create = expectThrow<DaytonaForbiddenError>(
      [&] { sandboxes->snapshot.create({.name = "not-allowed", .image = missingImage()}); });
  ASSERT_TRUE(create.has_value());
  EXPECT_EQ(create->statusCode(), 403);
  EXPECT_TRUE(
      expectThrow<DaytonaAuthorizationError>([&] { sandboxes->snapshot.deactivate("kept"); }));
  EXPECT_EQ(daytona_->snapshot.list().total, 1);
}

TEST_F(ServeE2eTest, AnotherOrganizationSeesNoneOfTheseSnapshots) {
  createFailing("private");
  std::string id = daytona_->snapshot.get("private").id;
  ASSERT_OK(testing::runCairn(serve_->dataDir(), {"admin", "org", "create", "other"}).status());
  Result<std::string> key =
      testing::runCairn(serve_->dataDir(), {"admin", "key", "create", "--org", "other"});
  ASSERT_OK(key.status());
  std::string other_key = *key;
  while (!other_key.empty() && other_key.back() == '\n')
    other_key.pop_back();
  std::unique_ptr<Daytona> other = serve_->client(other_key);
  EXPECT_EQ(other->snapshot.list().total, 0);
  EXPECT_TRUE(expectThrow<DaytonaNotFoundError>([&] { other->snapshot.get("private"); }));
  EXPECT_TRUE(expectThrow<DaytonaNotFoundError>([&] { other->snapshot.get(id); }));
  EXPECT_TRUE(expectThrow<DaytonaNotFoundError>([&] { other->snapshot.remove(id); }));
  // Names are per organization: the other one may use the same name.
  std::string failed;
  try {
    other->snapshot.create({.name = "private", .image = missingImage()}, {.timeout = 120});
  } catch (const DaytonaError& e) {
    failed = e.what();
  }
  EXPECT_THAT(failed, StartsWith("Failed to create snapshot. Name: private Reason: "));
  EXPECT_NE(other->snapshot.get("private").id, id);
  EXPECT_EQ(daytona_->snapshot.get("private").id, id);
}

TEST_F(ServeE2eTest, ConfigurationFromTheEnvironment) {
  // Like the official SDKs: DAYTONA_API_KEY, DAYTONA_API_URL and DAYTONA_TARGET when the config
  // names none (restored at the end; each ctest case is its own process anyway).
  ::setenv("DAYTONA_API_KEY", serve_->apiKey().c_str(), 1);
  ::setenv("DAYTONA_API_URL", serve_->apiUrl().c_str(), 1);
  ::setenv("DAYTONA_TARGET", "eu", 1);
  ::unsetenv("DAYTONA_JWT_TOKEN");
  std::optional<Daytona> from_env;
  from_env.emplace();
  ::unsetenv("DAYTONA_API_KEY");
  ::unsetenv("DAYTONA_API_URL");
  ::unsetenv("DAYTONA_TARGET");
  EXPECT_EQ(from_env->config().apiUrl, serve_->apiUrl());
  EXPECT_EQ(from_env->config().target, "eu");
  from_env->snapshot.setPollInterval(std::chrono::milliseconds(100));
  EXPECT_EQ(from_env->snapshot.list().total, 0);
  // The target becomes the regionId of create; a single-region server ignores it (§3.1) and
  // files the snapshot under its one region.
  std::string message;
  try {
    from_env->snapshot.create({.name = "regional", .image = missingImage()}, {.timeout = 120});
  } catch (const DaytonaError& e) {
    message = e.what();
  }
  EXPECT_THAT(message, StartsWith("Failed to create snapshot. Name: regional Reason: "));
  Snapshot s = daytona_->snapshot.get("regional");
  EXPECT_THAT(s.regionIds, ElementsAre("default"));
}

TEST_F(ServeE2eTest, UnreachableServerIsConnectionError) {
  std::string url = serve_->apiUrl();
  ASSERT_OK(serve_->stop().status());
  serve_.reset();
  Daytona gone({.apiKey = "k", .apiUrl = url},
               std::make_shared<sdk::HttpClient>(sdk::RetryPolicy{2, std::chrono::milliseconds(5),
                                                                  std::chrono::milliseconds(5)}));
  EXPECT_TRUE(expectThrow<DaytonaConnectionError>([&] { gone.snapshot.list(); }));
}

}  // namespace
}  // namespace cairn

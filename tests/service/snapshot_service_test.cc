// The snapshot domain over a real SqliteMetaStore in a TempDir, with a fake engine, a fake
// object store and a fake clock: every message of spec §1.5/§1.9/§4/§6, dedup, deadlines,
// recovery after a crash, isolation between organizations, logs.
#include "cairn/service/snapshot_service.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "cairn/common/fs.h"
#include "cairn/common/uuid.h"
#include "cairn/layer/diff.h"
#include "cairn/meta/api_key.h"
#include "cairn/meta/sqlite_meta_store.h"
#include "cairn/testing/fake_clock.h"
#include "cairn/testing/status_matchers.h"

namespace cairn::service {
namespace {

using ::cairn::testing::FakeClock;
using ::cairn::testing::StatusIs;
using meta::SnapshotState;
using ::testing::HasSubstr;

const std::string kDigest = "sha256:" + std::string(64, 'a');

class FakeBuilder final : public SnapshotBuilder {
 public:
  std::mutex mu;
  std::map<std::string, BuiltImage> built;  // tag → image
  std::function<Result<BuiltImage>(const SnapshotBuildJob&, build::LogSink&)> on_build;
  std::vector<std::string> removed;
  int builds = 0;
  int pulls = 0;
  int gcs = 0;
  int gc_busy = 0;  // how many collectGarbage calls answer Unavailable first
  int recovers = 0;

  //! Runs right after findBuilt() looked (outside `mu`): what another thread could do between
  //! the service's check and its use of the answer.
  std::function<void(const std::string& ref)> after_find;

  Result<std::optional<BuiltImage>> findBuilt(const std::string& ref) override {
    std::optional<BuiltImage> out;
    {
      std::lock_guard lock(mu);
      auto it = built.find(ref);
      if (it != built.end()) out = it->second;
    }
    if (after_find) after_find(ref);
    return out;
  }
  bool has(const std::string& ref) {
    std::lock_guard lock(mu);
    return built.count(ref) > 0;
  }
  Result<BuiltImage> build(const SnapshotBuildJob& job, build::LogSink& log) override {
    {
      std::lock_guard lock(mu);
      ++builds;
    }
    log.write("#1 [1/1] FROM alpine:3.19\n#1 DONE 0.1s\n");
    Result<BuiltImage> r =
        on_build ? on_build(job, log) : Result<BuiltImage>(BuiltImage{kDigest, 1 << 20, {}});
    if (r.ok()) {
      std::lock_guard lock(mu);
      built[job.snapshot_ref] = *r;
    }
    return r;
  }
  Result<std::string> resolveDigest(const std::string& image_name) override {
    if (image_name.find("missing") != std::string::npos) {
      return notFound("manifest unknown: " + image_name);
    }
    return kDigest;
  }
  Result<BuiltImage> pull(const std::string&, const std::string& digest, const std::string& tag,
                          build::LogSink&) override {
    std::lock_guard lock(mu);
    ++pulls;
    BuiltImage image{digest, 3u << 20, {"/bin/sh"}};
    built[tag] = image;
    return image;
  }
  Status removeImage(const std::string& tag) override {
    std::lock_guard lock(mu);
    removed.push_back(tag);
    built.erase(tag);
    return okStatus();
  }
  Status collectGarbage() override {
    if (gc_busy > 0) {
      --gc_busy;
      return unavailable("builds are running");
    }
    ++gcs;
    return okStatus();
  }
  Status recover() override {
    ++recovers;
    return okStatus();
  }
};

class FakeContexts final : public ContextReader {
 public:
  std::map<std::string, std::string> objects;
  Status fetchObject(std::string_view key, const std::filesystem::path& dest) override {
    auto it = objects.find(std::string(key));
    if (it == objects.end()) return notFound("no object " + std::string(key));
    return writeFileDurable(dest, it->second);
  }
};

Caller fullCaller(const std::string& org) {
  return Caller{org,
                {std::string(meta::kPermissionWriteSnapshots),
                 std::string(meta::kPermissionDeleteSnapshots)}};
}

CreateSnapshotRequest pullRequest(std::string name, std::string image = "alpine:3.19") {
  CreateSnapshotRequest r;
  r.name = std::move(name);
  r.image_name = std::move(image);
  return r;
}

CreateSnapshotRequest buildRequest(std::string name, std::string dockerfile,
                                   std::vector<std::string> hashes = {}) {
  CreateSnapshotRequest r;
  r.name = std::move(name);
  r.build_info = BuildInfoRequest{std::move(dockerfile), std::move(hashes)};
  return r;
}

class SnapshotServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(auto dir, TempDir::create("service-test"));
    dir_ = std::make_unique<TempDir>(std::move(dir));
    ASSERT_OK_AND_ASSIGN(store_, meta::SqliteMetaStore::open(dir_->path() / "meta.db", clock_));
    ASSERT_OK_AND_ASSIGN(auto a, store_->createOrganization(meta::Organization{.name = "a"}));
    ASSERT_OK_AND_ASSIGN(auto b, store_->createOrganization(meta::Organization{.name = "b"}));
    org_a_ = a.id;
    org_b_ = b.id;
    options_.data_dir = dir_->path();
    options_.worker_id = "worker-test";
    makeService();
  }

  void makeService() {
    service_.reset();
    service_ = std::make_unique<SnapshotService>(options_, *store_, builder_, &contexts_, clock_);
  }

  meta::Snapshot createOk(const CreateSnapshotRequest& r, const std::string& org = "") {
    auto s = service_->create(fullCaller(org.empty() ? org_a_ : org), r);
    EXPECT_OK(s.status());
    return s.ok() ? *s : meta::Snapshot{};
  }

  SnapshotState stateOf(const std::string& id) {
    auto s = store_->getSnapshot(id);
    EXPECT_OK(s.status());
    return s.ok() ? s->state : SnapshotState::kRemoving;
  }

  FakeClock clock_;
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<meta::SqliteMetaStore> store_;
  FakeBuilder builder_;
  FakeContexts contexts_;
  ServiceOptions options_;
  std::unique_ptr<SnapshotService> service_;
  std::string org_a_, org_b_;
};

// --- create, pull path -------------------------------------------------------------------------

TEST_F(SnapshotServiceTest, PullGoesPendingPullingActiveWithDigestRef) {
  auto s = createOk(pullRequest("snap-1"));
  EXPECT_EQ(s.state, SnapshotState::kPending);
  EXPECT_EQ(s.image_name, "alpine:3.19");
  EXPECT_EQ(s.sandbox_class, "container");
  EXPECT_FALSE(s.entrypoint.has_value());
  ASSERT_OK_AND_ASSIGN(bool ran, service_->runOneJob());
  EXPECT_TRUE(ran);
  ASSERT_OK_AND_ASSIGN(auto done, store_->getSnapshot(s.id));
  EXPECT_EQ(done.state, SnapshotState::kActive);
  EXPECT_EQ(done.ref, "cairn.local/daytona/daytona-" + std::string(64, 'a') + ":daytona");
  EXPECT_EQ(done.size_bytes, 3 << 20);
  EXPECT_EQ(done.entrypoint, (std::vector<std::string>{"/bin/sh"}));
  EXPECT_EQ(done.initial_runner_id, "worker-test");
  EXPECT_TRUE(done.last_used_at.has_value());
  ASSERT_OK_AND_ASSIGN(bool again, service_->runOneJob());
  EXPECT_FALSE(again);
}

TEST_F(SnapshotServiceTest, PullOfUnknownImageFailsWithReason) {
  auto s = createOk(pullRequest("snap-1", "missing/thing:1.0"));
  ASSERT_OK_AND_ASSIGN(bool ran, service_->runOneJob());
  EXPECT_TRUE(ran);
  ASSERT_OK_AND_ASSIGN(auto done, store_->getSnapshot(s.id));
  EXPECT_EQ(done.state, SnapshotState::kError);
  EXPECT_EQ(done.error_reason,
            "Failed to resolve image missing/thing:1.0: manifest unknown: missing/thing:1.0");
}

TEST_F(SnapshotServiceTest, TheSameImagePulledTwiceIsDownloadedOnce) {
  auto a = createOk(pullRequest("a"));
  auto b = createOk(pullRequest("b", "alpine@" + kDigest));
  ASSERT_OK(service_->runOneJob().status());
  ASSERT_OK(service_->runOneJob().status());
  EXPECT_EQ(builder_.pulls, 1);
  ASSERT_OK_AND_ASSIGN(auto sa, store_->getSnapshot(a.id));
  ASSERT_OK_AND_ASSIGN(auto sb, store_->getSnapshot(b.id));
  EXPECT_EQ(sa.state, SnapshotState::kActive);
  EXPECT_EQ(sb.state, SnapshotState::kActive);
  EXPECT_EQ(sa.ref, sb.ref);
  EXPECT_EQ(sa.size_bytes, sb.size_bytes);
  ASSERT_OK_AND_ASSIGN(auto logs, service_->readLogs(fullCaller(org_a_), b.id, 0));
  EXPECT_THAT(logs.bytes, HasSubstr("CACHED"));
}

TEST_F(SnapshotServiceTest, CallerForAnApiKeyCarriesOrganizationAndPermissions) {
  meta::ApiKey key;
  key.organization_id = org_a_;
  key.permissions = {std::string(meta::kPermissionWriteSnapshots)};
  Caller c = callerFor(key);
  EXPECT_EQ(c.organization_id, org_a_);
  EXPECT_OK(service_->create(c, pullRequest("via-key")).status());
  EXPECT_THAT(service_->remove(c, uuidV4()), StatusIs(StatusCode::kPermissionDenied));
}

TEST_F(SnapshotServiceTest, RequestEntrypointIsKeptOnPull) {
  auto r = pullRequest("snap-1");
  r.entrypoint = std::vector<std::string>{"sleep", "10"};
  auto s = createOk(r);
  ASSERT_OK(service_->runOneJob().status());
  ASSERT_OK_AND_ASSIGN(auto done, store_->getSnapshot(s.id));
  EXPECT_EQ(done.entrypoint, (std::vector<std::string>{"sleep", "10"}));
}

// --- create, build path ------------------------------------------------------------------------

TEST_F(SnapshotServiceTest, BuildGoesActiveWithRefSizeAndLogs) {
  auto s = createOk(buildRequest("my-snap", "FROM alpine:3.19\nRUN echo hi\n"));
  EXPECT_EQ(s.state, SnapshotState::kPending);
  EXPECT_EQ(s.entrypoint, (std::vector<std::string>{"sleep", "infinity"}));
  const std::string ref =
      "daytona-69a5124d7f362ef7fdfd04928ceacfd1efc5f509d5c974d8fe48a969b9a88156:daytona";
  EXPECT_EQ(s.ref, "cairn.local/daytona/" + ref);
  ASSERT_TRUE(s.build_info.has_value());
  EXPECT_EQ(s.build_info->snapshot_ref, ref);

  ASSERT_OK_AND_ASSIGN(bool ran, service_->runOneJob({"build"}));
  EXPECT_TRUE(ran);
  ASSERT_OK_AND_ASSIGN(auto done, store_->getSnapshot(s.id));
  EXPECT_EQ(done.state, SnapshotState::kActive);
  EXPECT_EQ(done.size_bytes, 1 << 20);
  EXPECT_EQ(done.error_reason, std::nullopt);

  ASSERT_OK_AND_ASSIGN(auto chunk, service_->readLogs(fullCaller(org_a_), s.id, 0));
  EXPECT_THAT(chunk.bytes, HasSubstr("FROM alpine:3.19"));
  EXPECT_TRUE(chunk.finished);
  ASSERT_OK_AND_ASSIGN(auto tail, service_->readLogs(fullCaller(org_a_), s.id, 5));
  EXPECT_EQ(tail.bytes, chunk.bytes.substr(5));
  EXPECT_EQ(tail.next_offset, chunk.next_offset);
}

TEST_F(SnapshotServiceTest, BuildFailureIsErrorWithStepAndBoundedReason) {
  options_.max_error_reason_bytes = 256;
  makeService();
  builder_.on_build = [](const SnapshotBuildJob&, build::LogSink& log) -> Result<BuiltImage> {
    log.write("#2 [2/2] RUN false\n");
    return invalidArgument("Dockerfile:2: RUN false: exit code 1\n" + std::string(5000, 'x'));
  };
  auto s = createOk(buildRequest("bad", "FROM alpine:3.19\nRUN false\n"));
  ASSERT_OK(service_->runOneJob().status());
  ASSERT_OK_AND_ASSIGN(auto done, store_->getSnapshot(s.id));
  EXPECT_EQ(done.state, SnapshotState::kError);
  ASSERT_TRUE(done.error_reason.has_value());
  EXPECT_THAT(*done.error_reason, HasSubstr("Dockerfile:2: RUN false: exit code 1"));
  EXPECT_LE(done.error_reason->size(), 256u + 8);
  ASSERT_OK_AND_ASSIGN(auto chunk, service_->readLogs(fullCaller(org_a_), s.id, 0));
  EXPECT_THAT(chunk.bytes, HasSubstr("ERROR: Dockerfile:2"));
  EXPECT_TRUE(chunk.finished);
}

TEST_F(SnapshotServiceTest, ContextsAreAssembledWithStructureAndSymlinks) {
  // A context tar as the SDK uploads it: a directory, a file, a symlink.
  ASSERT_OK_AND_ASSIGN(auto src, TempDir::create("ctx"));
  std::filesystem::create_directories(src.path() / "app" / "sub");
  ASSERT_OK(writeFileDurable(src.path() / "app" / "sub" / "hello.txt", "hello"));
  std::filesystem::create_symlink("sub/hello.txt", src.path() / "app" / "link");
  std::string tar;
  layer::StringSink sink(&tar);
  ASSERT_OK(layer::createLayerTar(src.path(), sink).status());
  contexts_.objects[org_a_ + "/ce59da7c62f89381d47e17c745ff7194/context.tar"] = tar;

  bool saw = false;
  builder_.on_build = [&](const SnapshotBuildJob& job, build::LogSink&) -> Result<BuiltImage> {
    auto text = readFile(job.context_dir / "app" / "link");
    EXPECT_OK(text.status());
    EXPECT_TRUE(std::filesystem::is_symlink(job.context_dir / "app" / "link"));
    EXPECT_FALSE(std::filesystem::exists(job.context_dir / "Dockerfile"));
    EXPECT_EQ(job.dockerfile, "FROM alpine:3.19\nCOPY app /app\n");
    saw = text.ok() && *text == "hello";
    return BuiltImage{kDigest, 10, {}};
  };
  auto s = createOk(buildRequest("ctx", "FROM alpine:3.19\nCOPY app /app\n",
                                 {"ce59da7c62f89381d47e17c745ff7194"}));
  ASSERT_OK(service_->runOneJob().status());
  EXPECT_TRUE(saw);
  EXPECT_EQ(stateOf(s.id), SnapshotState::kActive);
  EXPECT_FALSE(std::filesystem::exists(dir_->path() / "work" / "contexts" / s.id));
}

TEST_F(SnapshotServiceTest, MissingContextObjectFailsTheBuildClearly) {
  auto s = createOk(buildRequest("ctx", "FROM alpine:3.19\nCOPY a /a\n", {"0123abcd"}));
  ASSERT_OK(service_->runOneJob().status());
  ASSERT_OK_AND_ASSIGN(auto done, store_->getSnapshot(s.id));
  EXPECT_EQ(done.state, SnapshotState::kError);
  EXPECT_THAT(done.error_reason.value_or(""), HasSubstr("build context 0123abcd: no object"));
  EXPECT_EQ(builder_.builds, 0);
}

TEST_F(SnapshotServiceTest, DedupMakesAnIdenticalDefinitionActiveAtOnce) {
  auto first = createOk(buildRequest("one", "FROM alpine:3.19\nRUN echo hi\n"));
  ASSERT_OK(service_->runOneJob().status());
  clock_.advance(std::chrono::seconds(5));
  // Another organization, same definition: active at once, no build, no log.
  auto second = createOk(buildRequest("two", "FROM alpine:3.19\nRUN echo hi\n"), org_b_);
  EXPECT_EQ(second.state, SnapshotState::kActive);
  EXPECT_EQ(second.size_bytes, 1 << 20);
  EXPECT_EQ(second.last_used_at, clock_.now());
  EXPECT_EQ(second.ref, first.ref);
  EXPECT_EQ(builder_.builds, 1);
  ASSERT_OK_AND_ASSIGN(bool ran, service_->runOneJob());
  EXPECT_FALSE(ran);
  EXPECT_FALSE(std::filesystem::exists(service_->logPath(second.id)));
}

TEST_F(SnapshotServiceTest, DedupOfAnOversizedImageIs400) {
  options_.max_image_size_gb = 0.5;
  makeService();
  std::string ref = buildSnapshotRef("FROM big\n", {});
  builder_.built[ref] = BuiltImage{kDigest, 3ull << 30, {}};
  // Reusable: a snapshot of it (another organization's) is active, so it passed validation.
  meta::Snapshot other;
  other.organization_id = org_b_;
  other.name = "big-elsewhere";
  other.state = SnapshotState::kActive;
  other.ref = "cairn.local/daytona/" + ref;
  ASSERT_OK(store_->createSnapshot(other).status());
  auto r = service_->create(fullCaller(org_a_), buildRequest("big", "FROM big\n"));
  EXPECT_THAT(r.status(), StatusIs(StatusCode::kInvalidArgument,
                                   "Snapshot size (3.00GB) exceeds maximum allowed size of 0.5GB"));
  // The reservation was rolled back.
  ASSERT_OK_AND_ASSIGN(auto usage, store_->countQuotaUsage(org_a_));
  EXPECT_EQ(usage, 0);
}

TEST_F(SnapshotServiceTest, OversizedBuildResultIsError) {
  options_.max_image_size_gb = 1;
  makeService();
  builder_.on_build = [](const SnapshotBuildJob&, build::LogSink&) -> Result<BuiltImage> {
    return BuiltImage{kDigest, (1ull << 30) + (1ull << 29), {}};
  };
  auto s = createOk(buildRequest("big", "FROM alpine:3.19\n"));
  ASSERT_OK(service_->runOneJob().status());
  ASSERT_OK_AND_ASSIGN(auto done, store_->getSnapshot(s.id));
  EXPECT_EQ(done.state, SnapshotState::kError);
  EXPECT_EQ(done.error_reason, "Snapshot size (1.50GB) exceeds maximum allowed size of 1GB");
}

// --- create validation, limits, quotas, names ---------------------------------------------------

TEST_F(SnapshotServiceTest, CreateChecksRunInTheReferenceOrder) {
  auto caller = fullCaller(org_a_);
  auto both = buildRequest("x", "FROM a:1\n");
  both.image_name = "alpine:3.19";
  EXPECT_THAT(service_->create(caller, both).status(),
              StatusIs(StatusCode::kInvalidArgument,
                       "Cannot specify an image name when using a build info entry"));
  CreateSnapshotRequest none;
  none.name = "x";
  EXPECT_THAT(service_->create(caller, none).status(),
              StatusIs(StatusCode::kInvalidArgument,
                       "Must specify an image name when not using a build info entry"));
  EXPECT_THAT(service_->create(caller, pullRequest("bad name!")).status(),
              StatusIs(StatusCode::kInvalidArgument,
                       "Invalid snapshot name format. May contain letters, digits, dots, colons, "
                       "and dashes"));
  EXPECT_THAT(
      service_->create(caller, pullRequest("x", "alpine:latest")).status(),
      StatusIs(StatusCode::kInvalidArgument, "Images with tag \":latest\" are not allowed"));
  auto win = pullRequest("x");
  win.sandbox_class = "windows";
  EXPECT_THAT(service_->create(caller, win).status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("Windows snapshots cannot")));
}

TEST_F(SnapshotServiceTest, PerSandboxLimitsAndOrganizationOverrides) {
  auto r = pullRequest("x");
  r.cpu = 5;
  EXPECT_THAT(service_->create(fullCaller(org_a_), r).status(),
              StatusIs(StatusCode::kInvalidArgument,
                       "CPU request 5 exceeds maximum allowed per sandbox (4).\nNeed higher "
                       "resource limits per-sandbox? Contact us at support@daytona.io and let "
                       "us know about your use case."));
  r.cpu = 2;
  r.memory = 9;
  EXPECT_THAT(service_->create(fullCaller(org_a_), r).status(),
              StatusIs(StatusCode::kInvalidArgument,
                       HasSubstr("Memory request 9GB exceeds maximum allowed per sandbox (8GB).")));
  ASSERT_OK_AND_ASSIGN(auto org, store_->getOrganization(org_a_));
  org.limits.max_memory_gb_per_sandbox = 16;
  ASSERT_OK(store_->updateOrganization(org).status());
  auto s = createOk(r);
  EXPECT_EQ(s.mem, 9);
  EXPECT_EQ(s.cpu, 2);
  EXPECT_EQ(s.disk, 3);
}

TEST_F(SnapshotServiceTest, QuotaCountsLiveSnapshotsAndRollsBackFailedCreates) {
  options_.max_snapshots = 2;
  makeService();
  createOk(pullRequest("one"));
  // A duplicate name fails after reserving: the slot must come back.
  EXPECT_THAT(service_->create(fullCaller(org_a_), pullRequest("one")).status(),
              StatusIs(StatusCode::kAlreadyExists,
                       "Snapshot with name \"one\" already exists for this organization"));
  auto two = createOk(pullRequest("two"));
  EXPECT_THAT(
      service_->create(fullCaller(org_a_), pullRequest("three")).status(),
      StatusIs(StatusCode::kInvalidArgument, "Snapshot quota exceeded. Maximum allowed: 2"));
  // Other organizations have their own quota.
  createOk(pullRequest("three"), org_b_);
  // Deleting frees a slot at once.
  ASSERT_OK(service_->remove(fullCaller(org_a_), two.id));
  createOk(pullRequest("three"));
}

TEST_F(SnapshotServiceTest, ConcurrentCreatesWithOneNameGiveOneSuccessOneConflict) {
  std::atomic<int> ok{0}, conflict{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      auto r = service_->create(fullCaller(org_a_), pullRequest("same"));
      if (r.ok()) {
        ++ok;
      } else if (r.status().code() == StatusCode::kAlreadyExists) {
        ++conflict;
      } else {
        ++other;
      }
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(conflict.load(), 3);
  EXPECT_EQ(other.load(), 0);
}

TEST_F(SnapshotServiceTest, PermissionsAreChecked) {
  Caller reader{org_a_, {}};
  EXPECT_THAT(service_->create(reader, pullRequest("x")).status(),
              StatusIs(StatusCode::kPermissionDenied, "Access denied"));
  auto s = createOk(pullRequest("x"));
  EXPECT_THAT(service_->remove(reader, s.id), StatusIs(StatusCode::kPermissionDenied));
  EXPECT_OK(service_->get(reader, "x").status());
  Caller admin{org_a_, {std::string(meta::kPermissionAdmin)}};
  EXPECT_OK(service_->remove(admin, s.id));
}

// --- get, list, isolation ---------------------------------------------------------------------

TEST_F(SnapshotServiceTest, ForeignSnapshotsAreNotFoundWithTheSameMessage) {
  auto s = createOk(pullRequest("mine"));
  auto other = fullCaller(org_b_);
  EXPECT_THAT(service_->get(other, "mine").status(),
              StatusIs(StatusCode::kNotFound, "Snapshot mine not found"));
  EXPECT_THAT(service_->get(other, s.id).status(),
              StatusIs(StatusCode::kNotFound, "Snapshot " + s.id + " not found"));
  EXPECT_THAT(service_->get(other, "nothing").status(),
              StatusIs(StatusCode::kNotFound, "Snapshot nothing not found"));
  EXPECT_THAT(service_->remove(other, s.id),
              StatusIs(StatusCode::kNotFound, "Snapshot " + s.id + " not found"));
  EXPECT_THAT(service_->activate(other, s.id).status(), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(service_->deactivate(other, s.id), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(service_->readLogs(other, s.id, 0).status(), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(service_->watchLogs(other, s.id, [] {}).status(), StatusIs(StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(auto page, service_->list(other, ListSnapshotsQuery{}));
  EXPECT_EQ(page.total, 0);
  EXPECT_EQ(stateOf(s.id), SnapshotState::kPending);
  ASSERT_OK_AND_ASSIGN(auto own, service_->get(fullCaller(org_a_), "mine"));
  EXPECT_EQ(own.id, s.id);
}

TEST_F(SnapshotServiceTest, ListPagesAndCountsPages) {
  for (int i = 0; i < 5; ++i) {
    createOk(pullRequest("snap-" + std::to_string(i)));
    clock_.advance(std::chrono::seconds(1));
  }
  ListSnapshotsQuery q;
  q.limit = 2;
  q.page = 3;
  q.sort = SnapshotSort::kName;
  q.ascending = true;
  ASSERT_OK_AND_ASSIGN(auto page, service_->list(fullCaller(org_a_), q));
  EXPECT_EQ(page.total, 5);
  EXPECT_EQ(page.total_pages, 3);
  ASSERT_EQ(page.items.size(), 1u);
  EXPECT_EQ(page.items[0].name, "snap-4");
  auto json = toJson(page);
  EXPECT_EQ(json["totalPages"], 3);
  EXPECT_EQ(json["page"], 3);
  EXPECT_EQ(json["items"].size(), 1u);
}

// --- delete -------------------------------------------------------------------------------------

TEST_F(SnapshotServiceTest, DeleteFreesTheNameAtOnceAndCollectsInTheBackground) {
  auto s = createOk(pullRequest("reuse"));
  ASSERT_OK(service_->runOneJob().status());
  EXPECT_TRUE(std::filesystem::exists(service_->logPath(s.id)));
  EXPECT_THAT(service_->remove(fullCaller(org_a_), "reuse"),
              StatusIs(StatusCode::kInvalidArgument, "Validation failed (uuid is expected)"));
  ASSERT_OK(service_->remove(fullCaller(org_a_), s.id));
  EXPECT_THAT(service_->get(fullCaller(org_a_), "reuse").status(),
              StatusIs(StatusCode::kNotFound, "Snapshot reuse not found"));
  ASSERT_OK_AND_ASSIGN(auto by_id, service_->get(fullCaller(org_a_), s.id));
  EXPECT_EQ(by_id.state, SnapshotState::kRemoving);
  auto again = createOk(pullRequest("reuse"));
  EXPECT_NE(again.id, s.id);
  // Idempotent while removal is in progress.
  EXPECT_OK(service_->remove(fullCaller(org_a_), s.id));

  // Background: the row and the log go; the image stays while `again` may use its ref... it is
  // still pending (no ref yet), so the image of `s` is unreferenced and removed.
  ASSERT_OK(service_->runMaintenance());
  EXPECT_THAT(store_->getSnapshot(s.id).status(), StatusIs(StatusCode::kNotFound));
  EXPECT_FALSE(std::filesystem::exists(service_->logPath(s.id)));
  ASSERT_EQ(builder_.removed.size(), 1u);
  EXPECT_EQ(builder_.removed[0], "daytona-" + std::string(64, 'a') + ":daytona");
  EXPECT_EQ(builder_.gcs, 1);
  EXPECT_THAT(service_->remove(fullCaller(org_a_), s.id),
              StatusIs(StatusCode::kNotFound, "Snapshot " + s.id + " not found"));
}

TEST_F(SnapshotServiceTest, DeleteCancelsARunningBuildAndGcWaitsForAnIdleBuilder) {
  bool saw_cancel = false;
  std::string id;
  builder_.gc_busy = 1;
  builder_.on_build = [&](const SnapshotBuildJob& job, build::LogSink&) -> Result<BuiltImage> {
    EXPECT_OK(service_->remove(fullCaller(org_a_), id));
    EXPECT_OK(service_->runMaintenance());  // the ticker: must not remove a row being built
    EXPECT_OK(store_->getSnapshot(id).status());
    saw_cancel = job.cancel != nullptr && job.cancel->cancelled();
    return cairn::cancelled("build cancelled");
  };
  auto s = createOk(buildRequest("doomed", "FROM alpine:3.19\n"));
  id = s.id;
  ASSERT_OK(service_->runOneJob().status());
  EXPECT_TRUE(saw_cancel);
  EXPECT_EQ(stateOf(s.id), SnapshotState::kRemoving);
  ASSERT_OK(service_->runMaintenance());
  EXPECT_THAT(store_->getSnapshot(s.id).status(), StatusIs(StatusCode::kNotFound));
  EXPECT_EQ(builder_.gcs, 0);  // the builder said it was busy: deferred
  ASSERT_OK(service_->runMaintenance());
  EXPECT_EQ(builder_.gcs, 1);
}

TEST_F(SnapshotServiceTest, ImageSharedByAnotherSnapshotIsKept) {
  auto a = createOk(pullRequest("a"));
  auto b = createOk(pullRequest("b"));
  ASSERT_OK(service_->runOneJob().status());
  ASSERT_OK(service_->runOneJob().status());
  ASSERT_OK(service_->remove(fullCaller(org_a_), a.id));
  ASSERT_OK(service_->runMaintenance());
  EXPECT_TRUE(builder_.removed.empty());
  EXPECT_EQ(stateOf(b.id), SnapshotState::kActive);
}

// Create vs. removal: while a create reuses a built image (findBuilt, then the insert), the
// last snapshot using that image is deleted and the maintenance pass collects it. The image
// must stay: the new snapshot is (or becomes) active on it.
TEST_F(SnapshotServiceTest, ACreateReusingAnImageKeepsItWhileItsLastUserIsCollected) {
  const std::string dockerfile = "FROM alpine:3.19\nRUN echo shared\n";
  auto first = createOk(buildRequest("first", dockerfile));
  ASSERT_OK(service_->runOneJob().status());
  ASSERT_EQ(stateOf(first.id), SnapshotState::kActive);
  const std::string tag = first.build_info->snapshot_ref;
  int interleaved = 0;
  builder_.after_find = [&](const std::string& ref) {
    if (ref != tag || interleaved++ > 0) return;
    EXPECT_OK(service_->remove(fullCaller(org_a_), first.id));
    EXPECT_OK(service_->runMaintenance());
  };
  auto second = createOk(buildRequest("second", dockerfile));
  builder_.after_find = nullptr;
  ASSERT_EQ(interleaved, 1);
  EXPECT_TRUE(builder_.has(tag)) << "the image was removed under a create reusing it";
  // Whether the create made it active at once or queued it, it ends active on the image.
  for (int i = 0; i < 3 && stateOf(second.id) != SnapshotState::kActive; ++i)
    ASSERT_OK(service_->runOneJob().status());
  ASSERT_OK(service_->runMaintenance());
  EXPECT_EQ(stateOf(second.id), SnapshotState::kActive);
  EXPECT_TRUE(builder_.has(tag));
  EXPECT_TRUE(builder_.removed.empty());
  EXPECT_EQ(builder_.builds, 1);
  // The deleted one is gone now that the image's new user carries the ref.
  EXPECT_THAT(store_->getSnapshot(first.id).status(), StatusIs(StatusCode::kNotFound));
}

// The same race on the worker path: a pull job finds the image (same digest) already here and
// makes its snapshot active from it, while the deleted snapshot that pulled it is collected.
TEST_F(SnapshotServiceTest, APullJobReusingAnImageKeepsItWhileItsLastUserIsCollected) {
  auto first = createOk(pullRequest("first"));
  ASSERT_OK(service_->runOneJob().status());
  ASSERT_EQ(stateOf(first.id), SnapshotState::kActive);
  const std::string tag = "daytona-" + std::string(64, 'a') + ":daytona";
  ASSERT_OK(service_->remove(fullCaller(org_a_), first.id));
  auto second = createOk(pullRequest("second"));
  int interleaved = 0;
  builder_.after_find = [&](const std::string& ref) {
    if (ref == tag && interleaved++ == 0) {
      EXPECT_OK(service_->runMaintenance());
    }
  };
  ASSERT_OK_AND_ASSIGN(bool ran, service_->runOneJob());
  builder_.after_find = nullptr;
  ASSERT_TRUE(ran);
  ASSERT_EQ(interleaved, 1);
  ASSERT_OK_AND_ASSIGN(auto done, store_->getSnapshot(second.id));
  EXPECT_EQ(done.state, SnapshotState::kActive);
  EXPECT_EQ(done.ref, "cairn.local/daytona/" + tag);
  EXPECT_TRUE(builder_.has(tag)) << "the image was removed under a pull reusing it";
  EXPECT_EQ(builder_.pulls, 1);  // reused, not downloaded again
  ASSERT_OK(service_->runMaintenance());
  EXPECT_THAT(store_->getSnapshot(first.id).status(), StatusIs(StatusCode::kNotFound));
  EXPECT_TRUE(builder_.has(tag));
  EXPECT_TRUE(builder_.removed.empty());
}

// The build job's variant: its snapshot's row carries the ref from create on, so the collector
// already counts it as a user; the job's pin keeps it that way through the validation too.
TEST_F(SnapshotServiceTest, ABuildJobReusingAnImageKeepsItWhileItsLastUserIsCollected) {
  const std::string dockerfile = "FROM alpine:3.19\nRUN echo job\n";
  auto first = createOk(buildRequest("first", dockerfile));
  ASSERT_OK(service_->runOneJob().status());
  const std::string tag = first.build_info->snapshot_ref;
  ASSERT_OK(service_->remove(fullCaller(org_a_), first.id));
  auto second = createOk(buildRequest("second", dockerfile));
  EXPECT_EQ(second.state, SnapshotState::kPending);  // no active snapshot of it any more
  int interleaved = 0;
  builder_.after_find = [&](const std::string& ref) {
    if (ref == tag && interleaved++ == 0) {
      EXPECT_OK(service_->runMaintenance());
    }
  };
  ASSERT_OK_AND_ASSIGN(bool ran, service_->runOneJob());
  builder_.after_find = nullptr;
  ASSERT_TRUE(ran);
  ASSERT_EQ(interleaved, 1);
  EXPECT_EQ(stateOf(second.id), SnapshotState::kActive);
  EXPECT_TRUE(builder_.has(tag));
  EXPECT_EQ(builder_.builds, 1);  // reused, not built again
  // The pass during the job deferred the deleted row (its image was pinned); the next one ends it.
  ASSERT_OK(service_->runMaintenance());
  EXPECT_THAT(store_->getSnapshot(first.id).status(), StatusIs(StatusCode::kNotFound));
  EXPECT_TRUE(builder_.has(tag));
  EXPECT_TRUE(builder_.removed.empty());
}

// Without a race the collector still removes an image nobody uses once the pins are gone.
TEST_F(SnapshotServiceTest, AnImageNobodyUsesIsStillCollectedAfterAReuseEnded) {
  const std::string dockerfile = "FROM alpine:3.19\nRUN echo once\n";
  auto first = createOk(buildRequest("first", dockerfile));
  ASSERT_OK(service_->runOneJob().status());
  auto second = createOk(buildRequest("second", dockerfile));
  ASSERT_EQ(second.state, SnapshotState::kActive);  // dedup from an active snapshot
  ASSERT_OK(service_->remove(fullCaller(org_a_), first.id));
  ASSERT_OK(service_->remove(fullCaller(org_a_), second.id));
  ASSERT_OK(service_->runMaintenance());
  EXPECT_THAT(builder_.removed, ::testing::Contains(first.build_info->snapshot_ref));
  EXPECT_FALSE(builder_.has(first.build_info->snapshot_ref));
  EXPECT_THAT(store_->getSnapshot(second.id).status(), StatusIs(StatusCode::kNotFound));
}

TEST_F(SnapshotServiceTest, GeneralSnapshotsAreVisibleButCannotBeDeleted) {
  meta::Snapshot g;
  g.general = true;
  g.name = "general-base";
  g.image_name = "debian:12";
  g.state = SnapshotState::kActive;
  ASSERT_OK_AND_ASSIGN(auto stored, store_->createSnapshot(g));
  ASSERT_OK_AND_ASSIGN(auto seen, service_->get(fullCaller(org_b_), "general-base"));
  EXPECT_EQ(seen.id, stored.id);
  EXPECT_THAT(service_->remove(fullCaller(org_b_), stored.id),
              StatusIs(StatusCode::kPermissionDenied, "You cannot delete a general snapshot"));
  EXPECT_THAT(service_->deactivate(fullCaller(org_b_), stored.id),
              StatusIs(StatusCode::kPermissionDenied, "Access denied"));
  EXPECT_THAT(service_->activate(fullCaller(org_b_), stored.id).status(),
              StatusIs(StatusCode::kPermissionDenied, "Access denied"));
  EXPECT_EQ(stateOf(stored.id), SnapshotState::kActive);
  auto json = toJson(seen);
  EXPECT_TRUE(json["organizationId"].is_null());
  EXPECT_EQ(json["general"], true);
}

// --- activate / deactivate ----------------------------------------------------------------------

TEST_F(SnapshotServiceTest, ActivateAndDeactivateFollowSection19) {
  auto s = createOk(pullRequest("act"));
  auto caller = fullCaller(org_a_);
  EXPECT_THAT(service_->activate(caller, s.id).status(),
              StatusIs(StatusCode::kInvalidArgument,
                       "Snapshot " + s.id + " cannot be activated - it is in pending state"));
  EXPECT_THAT(service_->activate(caller, "act").status(),
              StatusIs(StatusCode::kInvalidArgument, "Validation failed (uuid is expected)"));
  ASSERT_OK(service_->runOneJob().status());
  EXPECT_THAT(service_->activate(caller, s.id).status(),
              StatusIs(StatusCode::kInvalidArgument, "Snapshot " + s.id + " is already active"));
  ASSERT_OK(service_->deactivate(caller, s.id));
  EXPECT_EQ(stateOf(s.id), SnapshotState::kInactive);
  ASSERT_OK(service_->deactivate(caller, s.id));  // idempotent
  EXPECT_THAT(service_->activate(caller, s.id).status(),
              StatusIs(StatusCode::kInvalidArgument,
                       "Snapshot deactivation is still in progress. Please try again in a few "
                       "minutes."));
  clock_.advance(std::chrono::minutes(11));
  ASSERT_OK_AND_ASSIGN(auto pending, service_->activate(caller, s.id));
  EXPECT_EQ(pending.state, SnapshotState::kPending);
  EXPECT_EQ(pending.last_used_at, clock_.now());
  ASSERT_OK_AND_ASSIGN(bool ran, service_->runOneJob());
  EXPECT_TRUE(ran);
  EXPECT_EQ(stateOf(s.id), SnapshotState::kActive);
}

TEST_F(SnapshotServiceTest, ActivateRechecksTheQuota) {
  options_.max_snapshots = 1;
  makeService();
  auto s = createOk(pullRequest("a"));
  ASSERT_OK(service_->runOneJob().status());
  ASSERT_OK(service_->deactivate(fullCaller(org_a_), s.id));
  createOk(pullRequest("b"));
  clock_.advance(std::chrono::minutes(11));
  EXPECT_THAT(
      service_->activate(fullCaller(org_a_), s.id).status(),
      StatusIs(StatusCode::kInvalidArgument, "Snapshot quota exceeded. Maximum allowed: 1"));
  EXPECT_EQ(stateOf(s.id), SnapshotState::kInactive);
}

TEST_F(SnapshotServiceTest, IdleSnapshotsAreDeactivatedAutomatically) {
  options_.deactivation_timeout = std::chrono::minutes(60);
  makeService();
  auto s = createOk(pullRequest("idle"));
  ASSERT_OK(service_->runOneJob().status());
  clock_.advance(std::chrono::minutes(59));
  ASSERT_OK(service_->runMaintenance());
  EXPECT_EQ(stateOf(s.id), SnapshotState::kActive);
  clock_.advance(std::chrono::minutes(2));
  ASSERT_OK(service_->runMaintenance());
  EXPECT_EQ(stateOf(s.id), SnapshotState::kInactive);
}

// --- deadlines and recovery ---------------------------------------------------------------------

TEST_F(SnapshotServiceTest, PendingPastItsDeadlineBecomesError) {
  auto s = createOk(pullRequest("stuck"));
  clock_.advance(std::chrono::minutes(14));
  ASSERT_OK(service_->runMaintenance());
  EXPECT_EQ(stateOf(s.id), SnapshotState::kPending);
  clock_.advance(std::chrono::minutes(2));
  ASSERT_OK(service_->runMaintenance());
  ASSERT_OK_AND_ASSIGN(auto done, store_->getSnapshot(s.id));
  EXPECT_EQ(done.state, SnapshotState::kError);
  EXPECT_EQ(done.error_reason,
            "Timeout waiting for a build worker: the snapshot stayed pending for more than 15 "
            "minutes");
  // The queued job finds nothing to do.
  ASSERT_OK_AND_ASSIGN(bool ran, service_->runOneJob());
  EXPECT_TRUE(ran);
  EXPECT_EQ(stateOf(s.id), SnapshotState::kError);
}

TEST_F(SnapshotServiceTest, BuildingPastItsDeadlineBecomesErrorAndTheLateResultIsDropped) {
  options_.deadlines.building = std::chrono::minutes(5);
  makeService();
  builder_.on_build = [&](const SnapshotBuildJob&, build::LogSink&) -> Result<BuiltImage> {
    clock_.advance(std::chrono::minutes(6));
    EXPECT_OK(service_->runMaintenance());  // the ticker, while the build runs
    return BuiltImage{kDigest, 1, {}};
  };
  auto s = createOk(buildRequest("slow", "FROM alpine:3.19\n"));
  ASSERT_OK(service_->runOneJob().status());
  ASSERT_OK_AND_ASSIGN(auto done, store_->getSnapshot(s.id));
  EXPECT_EQ(done.state, SnapshotState::kError);
  EXPECT_EQ(done.error_reason,
            "Timeout processing snapshot on initial runner: the build ran for more than 5 "
            "minutes");
}

TEST_F(SnapshotServiceTest, WorkOfADeadProcessIsTakenOver) {
  auto s = createOk(buildRequest("crash", "FROM alpine:3.19\n"));
  // A process claims the job, moves the snapshot to building and dies.
  ASSERT_OK_AND_ASSIGN(auto claimed,
                       store_->claimJob("dead-worker", {"build"}, std::chrono::seconds(30)));
  ASSERT_TRUE(claimed.has_value());
  ASSERT_OK(store_->updateSnapshotState(s.id, SnapshotState::kPending, SnapshotState::kBuilding, {})
                .status());
  ASSERT_OK_AND_ASSIGN(bool ran, service_->runOneJob());
  EXPECT_FALSE(ran);  // still leased
  clock_.advance(std::chrono::seconds(31));
  ASSERT_OK(service_->runMaintenance());
  ASSERT_OK_AND_ASSIGN(ran, service_->runOneJob());
  EXPECT_TRUE(ran);
  EXPECT_EQ(stateOf(s.id), SnapshotState::kActive);
  ASSERT_OK_AND_ASSIGN(auto chunk, service_->readLogs(fullCaller(org_a_), s.id, 0));
  EXPECT_THAT(chunk.bytes, HasSubstr("taken over by worker worker-test"));
}

TEST_F(SnapshotServiceTest, WorkThatKeepsKillingWorkersFailsWithAReason) {
  auto s = createOk(buildRequest("doomed", "FROM alpine:3.19\n"));
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK_AND_ASSIGN(
        auto claimed, store_->claimJob("dead-" + std::to_string(i), {}, std::chrono::seconds(1)));
    ASSERT_TRUE(claimed.has_value()) << i;
    clock_.advance(std::chrono::seconds(2));
    ASSERT_OK(service_->runMaintenance());
  }
  ASSERT_OK_AND_ASSIGN(auto done, store_->getSnapshot(s.id));
  EXPECT_EQ(done.state, SnapshotState::kError);
  EXPECT_THAT(done.error_reason.value_or(""),
              HasSubstr("The worker processing this snapshot stopped"));
}

TEST_F(SnapshotServiceTest, RestartGivesBackJobsOfTheSameWorkerAndRecoversTheBuilder) {
  auto s = createOk(pullRequest("restart"));
  ASSERT_OK_AND_ASSIGN(auto claimed, store_->claimJob("worker-test", {}, std::chrono::minutes(10)));
  ASSERT_TRUE(claimed.has_value());
  options_.tick_interval = std::chrono::milliseconds(5);
  makeService();
  EXPECT_FALSE(serviceRunsOn(options_.data_dir));
  ASSERT_OK(service_->start());
  EXPECT_TRUE(serviceRunsOn(options_.data_dir)) << "its worker lock is held";
  EXPECT_EQ(builder_.recovers, 1);
  // The workers run it at once, without waiting 10 minutes for the lease.
  for (int i = 0; i < 2000 && stateOf(s.id) != SnapshotState::kActive; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  service_->stop();
  EXPECT_EQ(stateOf(s.id), SnapshotState::kActive);
  EXPECT_FALSE(serviceRunsOn(options_.data_dir));
}

TEST_F(SnapshotServiceTest, StopHandsARunningBuildBackForTheNextStart) {
  std::atomic<bool> started{false};
  builder_.on_build = [&](const SnapshotBuildJob& job, build::LogSink&) -> Result<BuiltImage> {
    started = true;
    for (int i = 0; i < 10000 && !(job.cancel && job.cancel->cancelled()); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return cairn::cancelled("build cancelled");
  };
  options_.tick_interval = std::chrono::milliseconds(5);
  makeService();
  auto s = createOk(buildRequest("long", "FROM alpine:3.19\n"));
  ASSERT_OK(service_->start());
  for (int i = 0; i < 10000 && !started; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_TRUE(started.load());
  service_->stop();
  EXPECT_EQ(stateOf(s.id), SnapshotState::kBuilding);
  meta::JobFilter queued;
  queued.states = {meta::JobState::kQueued};
  queued.snapshot_id = s.id;
  ASSERT_OK_AND_ASSIGN(auto jobs, store_->listJobs(queued));
  EXPECT_EQ(jobs.size(), 1u);

  builder_.on_build = nullptr;
  makeService();
  ASSERT_OK_AND_ASSIGN(bool ran, service_->runOneJob());
  EXPECT_TRUE(ran);
  EXPECT_EQ(stateOf(s.id), SnapshotState::kActive);
  ASSERT_OK_AND_ASSIGN(auto logs, service_->readLogs(fullCaller(org_a_), s.id, 0));
  EXPECT_THAT(logs.bytes, HasSubstr("stopping: build handed back"));
  EXPECT_THAT(logs.bytes, HasSubstr("taken over"));
}

// --- logs ---------------------------------------------------------------------------------------

TEST_F(SnapshotServiceTest, WatchersAreNotifiedOfBytesAndOfTheEnd) {
  std::atomic<int> notified{0};
  std::unique_ptr<LogWatch> watch;
  builder_.on_build = [&](const SnapshotBuildJob&, build::LogSink& log) -> Result<BuiltImage> {
    int before = notified.load();
    log.write("#2 more\n");
    EXPECT_GT(notified.load(), before);
    return BuiltImage{kDigest, 1, {}};
  };
  auto s = createOk(buildRequest("logs", "FROM alpine:3.19\n"));
  ASSERT_OK_AND_ASSIGN(auto first, service_->readLogs(fullCaller(org_a_), s.id, 0));
  EXPECT_EQ(first.bytes, "");
  EXPECT_FALSE(first.finished);
  ASSERT_OK_AND_ASSIGN(watch, service_->watchLogs(fullCaller(org_a_), s.id, [&] { ++notified; }));
  ASSERT_OK(service_->runOneJob().status());
  int after_build = notified.load();
  EXPECT_GE(after_build, 3);  // pending→building, two writes, building→active
  ASSERT_OK_AND_ASSIGN(auto all, service_->readLogs(fullCaller(org_a_), s.id, first.next_offset));
  EXPECT_THAT(all.bytes, HasSubstr("#2 more\n"));
  EXPECT_TRUE(all.finished);
  watch.reset();
  ASSERT_OK(service_->deactivate(fullCaller(org_a_), s.id));
  EXPECT_EQ(notified.load(), after_build);  // no calls after the watch is gone
  ASSERT_OK_AND_ASSIGN(auto past, service_->readLogs(fullCaller(org_a_), s.id, 1 << 20));
  EXPECT_EQ(past.bytes, "");
  EXPECT_TRUE(past.finished);
}

TEST_F(SnapshotServiceTest, BuildLogsUrlNeedsBuildInfo) {
  auto s = createOk(pullRequest("pulled"));
  EXPECT_THAT(service_->getForBuildLogs(fullCaller(org_a_), s.id).status(),
              StatusIs(StatusCode::kNotFound, "Snapshot " + s.id + " has no build info"));
  auto b = createOk(buildRequest("built", "FROM alpine:3.19\n"));
  EXPECT_OK(service_->getForBuildLogs(fullCaller(org_a_), b.id).status());
}

// --- DTO ----------------------------------------------------------------------------------------

TEST_F(SnapshotServiceTest, DtoHasEveryFieldInOrderWithNulls) {
  auto s = createOk(buildRequest("my-snap", "FROM alpine:3.19\nRUN echo hi\n"));
  OrderedJson j = toJson(s);
  std::vector<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it)
    keys.push_back(it.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"id",
                                            "organizationId",
                                            "general",
                                            "name",
                                            "imageName",
                                            "state",
                                            "size",
                                            "entrypoint",
                                            "cpu",
                                            "gpu",
                                            "mem",
                                            "disk",
                                            "errorReason",
                                            "createdAt",
                                            "updatedAt",
                                            "lastUsedAt",
                                            "buildInfo",
                                            "regionIds",
                                            "ref",
                                            "sandboxClass",
                                            "sourceSandboxId"}));
  EXPECT_EQ(j["state"], "pending");
  EXPECT_TRUE(j["size"].is_null());
  EXPECT_TRUE(j["errorReason"].is_null());
  EXPECT_TRUE(j["lastUsedAt"].is_null());
  EXPECT_TRUE(j["sourceSandboxId"].is_null());
  EXPECT_EQ(j["createdAt"], "2026-01-15T09:30:00.000Z");
  EXPECT_EQ(j["imageName"], "");
  EXPECT_EQ(j["mem"], 1);
  EXPECT_EQ(j["disk"], 3);
  EXPECT_EQ(j["buildInfo"]["snapshotRef"],
            "daytona-69a5124d7f362ef7fdfd04928ceacfd1efc5f509d5c974d8fe48a969b9a88156:daytona");
  EXPECT_EQ(j["entrypoint"], OrderedJson({"sleep", "infinity"}));
  meta::Snapshot sized = s;
  sized.size_bytes = 3ll << 29;
  sized.gpu_type = "H100";
  EXPECT_DOUBLE_EQ(toJson(sized)["size"].get<double>(), 1.5);
  EXPECT_EQ(toJson(sized)["gpuType"], "H100");
}

}  // namespace
}  // namespace cairn::service

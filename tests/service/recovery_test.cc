// Recovery and entrypoint validation in the service, hermetic: a real SqliteMetaStore in a
// TempDir, a fake engine and a fake clock (leases never expire by themselves here, so every
// takeover below is the lock-file path). The real engine and `cairn serve` are exercised by
// service_entrypoint_test and service_crash_recovery_test.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <ctime>
#include <map>
#include <mutex>
#include <thread>

#include "cairn/common/fs.h"
#include "cairn/meta/api_key.h"
#include "cairn/meta/sqlite_meta_store.h"
#include "cairn/service/snapshot_service.h"
#include "cairn/testing/status_matchers.h"

namespace cairn::service {
namespace {

namespace fs = std::filesystem;
using ::cairn::testing::StatusIs;
using meta::SnapshotState;
using ::testing::HasSubstr;

class FixedClock final : public Clock {
 public:
  SystemTime now() const override { return SystemTime(std::chrono::hours(24 * 365 * 56)); }
  std::chrono::steady_clock::time_point steadyNow() const override {
    return std::chrono::steady_clock::time_point(std::chrono::hours(1));
  }
};

const std::string kDigest = "sha256:" + std::string(64, 'b');

class FakeBuilder final : public SnapshotBuilder {
 public:
  std::mutex mu;
  std::map<std::string, BuiltImage> built;
  std::vector<std::string> removed;
  std::vector<EntrypointCheck> checks;
  std::function<Status(const EntrypointCheck&, build::LogSink&)> on_validate;

  Result<std::optional<BuiltImage>> findBuilt(const std::string& ref) override {
    std::lock_guard lock(mu);
    auto it = built.find(ref);
    if (it == built.end()) return std::optional<BuiltImage>();
    return std::optional<BuiltImage>(it->second);
  }
  Result<BuiltImage> build(const SnapshotBuildJob& job, build::LogSink& log) override {
    log.write("#1 built\n");
    std::lock_guard lock(mu);
    built[job.snapshot_ref] = BuiltImage{kDigest, 1 << 20, {"/image/entrypoint"}};
    return built[job.snapshot_ref];
  }
  Result<std::string> resolveDigest(const std::string&) override { return kDigest; }
  Result<BuiltImage> pull(const std::string&, const std::string& digest, const std::string& tag,
                          build::LogSink&) override {
    std::lock_guard lock(mu);
    built[tag] = BuiltImage{digest, 1 << 20, {}};
    return built[tag];
  }
  Status removeImage(const std::string& tag) override {
    std::lock_guard lock(mu);
    removed.push_back(tag);
    built.erase(tag);
    return okStatus();
  }
  Status collectGarbage() override { return okStatus(); }
  Status recover() override { return okStatus(); }
  Status validateEntrypoint(const EntrypointCheck& check, build::LogSink& log) override {
    {
      std::lock_guard lock(mu);
      checks.push_back(check);
    }
    return on_validate ? on_validate(check, log) : okStatus();
  }
  std::size_t checkCount() {
    std::lock_guard lock(mu);
    return checks.size();
  }
};

class RecoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(auto dir, TempDir::create("service-recovery"));
    dir_ = std::make_unique<TempDir>(std::move(dir));
    ASSERT_OK_AND_ASSIGN(store_, meta::SqliteMetaStore::open(dir_->path() / "meta.db", clock_));
    ASSERT_OK_AND_ASSIGN(auto org, store_->createOrganization(meta::Organization{.name = "a"}));
    org_ = org.id;
    options_.data_dir = dir_->path();
    options_.worker_id = "worker-new";
    options_.tick_interval = std::chrono::milliseconds(5);
    service_ = makeService();
  }

  std::unique_ptr<SnapshotService> makeService() {
    return std::make_unique<SnapshotService>(options_, *store_, builder_, nullptr, clock_);
  }

  Caller caller() { return Caller{org_, {std::string(meta::kPermissionAdmin)}}; }

  meta::Snapshot create(const std::string& name, const std::string& dockerfile) {
    CreateSnapshotRequest r;
    r.name = name;
    r.build_info = BuildInfoRequest{dockerfile, {}};
    auto s = service_->create(caller(), r);
    EXPECT_OK(s.status());
    return s.ok() ? *s : meta::Snapshot{};
  }

  //! What a process that died mid-build leaves: its job running under its worker id, the
  //! snapshot `building`, and its lock file (nobody holds it any more).
  meta::Job leaveDeadWorkerBuild(const meta::Snapshot& s, const std::string& worker) {
    auto claimed = store_->claimJob(worker, {"build"}, std::chrono::minutes(10));
    EXPECT_TRUE(claimed.ok() && claimed->has_value());
    EXPECT_OK(
        store_->updateSnapshotState(s.id, SnapshotState::kPending, SnapshotState::kBuilding, {})
            .status());
    fs::create_directories(workers());
    EXPECT_OK(writeFileDurable(workers() / (worker + ".lock"), ""));
    return claimed.ok() && claimed->has_value() ? **claimed : meta::Job{};
  }

  fs::path workers() const { return dir_->path() / "work" / "workers"; }

  meta::Snapshot waitTerminal(const std::string& id) {
    for (int i = 0; i < 4000; ++i) {
      auto s = store_->getSnapshot(id);
      if (s.ok() && (s->state == SnapshotState::kActive || s->state == SnapshotState::kError)) {
        return *s;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ADD_FAILURE() << "snapshot " << id << " did not finish";
    return {};
  }

  std::string logOf(const std::string& id) { return readFile(service_->logPath(id)).valueOr(""); }

  FixedClock clock_;
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<meta::SqliteMetaStore> store_;
  std::string org_;
  ServiceOptions options_;
  FakeBuilder builder_;
  std::unique_ptr<SnapshotService> service_;
};

TEST_F(RecoveryTest, ADeadWorkersBuildIsTakenOverAtStartWithoutWaitingForItsLease) {
  auto s = create("orphan", "FROM busybox\n");
  leaveDeadWorkerBuild(s, "worker-dead");
  ASSERT_OK(service_->start());
  // The lease has ten minutes left and the clock never moves: only the lock file says it died.
  auto done = waitTerminal(s.id);
  EXPECT_EQ(done.state, SnapshotState::kActive) << done.error_reason.value_or("");
  EXPECT_THAT(logOf(s.id), HasSubstr("build taken over by worker worker-new"));
  EXPECT_FALSE(fs::exists(workers() / "worker-dead.lock"));
  EXPECT_TRUE(fs::exists(workers() / "worker-new.lock"));
  service_->stop();
  EXPECT_FALSE(fs::exists(workers() / "worker-new.lock"));
}

TEST_F(RecoveryTest, ASiblingProcessThatDiesWhileThisOneRunsIsTakenOverByMaintenance) {
  ASSERT_OK(service_->start());
  auto s = create("sibling", "FROM busybox\n");
  // Another process on this data dir claims the job first and dies (its lock is free). The
  // workers may race it for the job: either way the snapshot must end active.
  auto claimed = store_->claimJob("worker-sibling", {"build"}, std::chrono::minutes(10));
  ASSERT_OK(claimed.status());
  if (claimed->has_value()) {
    ASSERT_OK(
        store_->updateSnapshotState(s.id, SnapshotState::kPending, SnapshotState::kBuilding, {})
            .status());
    // Created in place: writeFileDurable's dot-named temp file looks like a dead worker's
    // half-made lock to the running ticker, which may delete it before the rename.
    fs::create_directories(workers());
    UniqueFd lock(
        ::open((workers() / "worker-sibling.lock").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    ASSERT_TRUE(lock.valid());
    lock.reset();
    ASSERT_OK(service_->runMaintenance());
  }
  auto done = waitTerminal(s.id);
  service_->stop();
  EXPECT_EQ(done.state, SnapshotState::kActive) << done.error_reason.value_or("");
  EXPECT_FALSE(fs::exists(workers() / "worker-sibling.lock"));
}

TEST_F(RecoveryTest, ALiveWorkersJobIsLeftAlone) {
  auto s = create("busy", "FROM busybox\n");
  auto job = leaveDeadWorkerBuild(s, "worker-live");
  // The worker is alive: it holds its lock (another open file description, as another
  // process would).
  UniqueFd held(::open((workers() / "worker-live.lock").c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(held.valid());
  ASSERT_EQ(::flock(held.get(), LOCK_EX | LOCK_NB), 0);
  ASSERT_OK(service_->start());
  ASSERT_OK_AND_ASSIGN(auto now, store_->getJob(job.id));
  EXPECT_EQ(now.state, meta::JobState::kRunning);
  EXPECT_EQ(now.owner, "worker-live");
  EXPECT_TRUE(fs::exists(workers() / "worker-live.lock"));
  service_->stop();
  ASSERT_OK_AND_ASSIGN(auto snapshot, store_->getSnapshot(s.id));
  EXPECT_EQ(snapshot.state, SnapshotState::kBuilding);
}

TEST_F(RecoveryTest, AFreshTempLockIsLeftForItsStartingProcessAndAnOldOneIsSwept) {
  // A process between creating its dot-named lock file and locking it: not dead.
  fs::create_directories(workers());
  const fs::path temp = workers() / ".worker-starting.lock.0123";
  ASSERT_OK(writeFileDurable(temp, ""));
  ASSERT_OK(service_->runMaintenance());
  EXPECT_TRUE(fs::exists(temp));
  // Left behind long ago by a process that died there: removed.
  struct timespec old_times[2] = {{::time(nullptr) - 600, 0}, {::time(nullptr) - 600, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, temp.c_str(), old_times, 0), 0);
  ASSERT_OK(service_->runMaintenance());
  EXPECT_FALSE(fs::exists(temp));
}

TEST_F(RecoveryTest, TwoServicesCannotRunAsTheSameWorker) {
  ASSERT_OK(service_->start());
  auto twin = makeService();
  EXPECT_THAT(twin->start(),
              StatusIs(StatusCode::kFailedPrecondition,
                       HasSubstr("another process is running as worker worker-new")));
  service_->stop();
  EXPECT_OK(twin->start());
  twin->stop();
}

TEST_F(RecoveryTest, ADeadWorkersJobWithoutAttemptsLeftFailsItsSnapshotWithTheReason) {
  auto s = create("doomed", "FROM busybox\n");
  // Two earlier owners died and were given up on; the third dies too.
  for (const char* w : {"worker-a", "worker-b"}) {
    ASSERT_OK_AND_ASSIGN(auto claimed, store_->claimJob(w, {"build"}, std::chrono::minutes(10)));
    ASSERT_TRUE(claimed.has_value());
    ASSERT_OK(store_->failJob(claimed->id, w, "died", std::chrono::milliseconds(0)).status());
  }
  leaveDeadWorkerBuild(s, "worker-c");
  ASSERT_OK(service_->start());
  ASSERT_OK_AND_ASSIGN(auto done, store_->getSnapshot(s.id));  // decided inside start()
  service_->stop();
  EXPECT_EQ(done.state, SnapshotState::kError);
  EXPECT_THAT(done.error_reason.value_or(""),
              HasSubstr("The worker processing this snapshot stopped (worker worker-c died) and "
                        "the job has no attempts left"));
}

TEST_F(RecoveryTest, AWorkerIdThatIsNoFileNameStillStarts) {
  options_.worker_id = "host/with:odd chars";
  service_ = makeService();
  EXPECT_OK(service_->start());
  service_->stop();
  EXPECT_TRUE(!fs::exists(workers()) || fs::is_empty(workers()));
}

// --- entrypoint validation through the seam ---------------------------------------------------

TEST_F(RecoveryTest, TheValidationGetsTheSnapshotsEntrypointLimitsAndWindow) {
  options_.entrypoint_stay_up = std::chrono::milliseconds(1234);
  service_ = makeService();
  CreateSnapshotRequest r;
  r.name = "limits";
  r.cpu = 2;
  r.memory = 0.5;
  r.build_info =
      BuildInfoRequest{"FROM busybox\nENTRYPOINT [\"/srv/run\", \"--port\", \"80\"]\n", {}};
  ASSERT_OK_AND_ASSIGN(auto s, service_->create(caller(), r));
  ASSERT_OK_AND_ASSIGN(bool ran, service_->runOneJob());
  ASSERT_TRUE(ran);
  ASSERT_EQ(builder_.checkCount(), 1u);
  const EntrypointCheck& c = builder_.checks.front();
  EXPECT_EQ(c.snapshot_ref, s.build_info->snapshot_ref);
  EXPECT_EQ(c.entrypoint, (std::vector<std::string>{"/srv/run", "--port", "80"}));
  EXPECT_EQ(c.limits.cpus, 2);
  EXPECT_EQ(c.limits.memory_bytes, 512ll << 20);
  EXPECT_EQ(c.stay_up, std::chrono::milliseconds(1234));
  EXPECT_NE(c.cancel, nullptr);
  ASSERT_OK_AND_ASSIGN(auto done, store_->getSnapshot(s.id));
  EXPECT_EQ(done.state, SnapshotState::kActive);
}

TEST_F(RecoveryTest, AFailedValidationIsTheErrorReasonAndDropsTheImageTag) {
  builder_.on_validate = [](const EntrypointCheck&, build::LogSink& log) {
    log.write("ERROR: Entrypoint [\"x\"] exited with exit code 3\n");
    return failedPrecondition("Entrypoint [\"x\"] exited with exit code 3\nLast output:\nboom");
  };
  auto s = create("broken", "FROM busybox\nENTRYPOINT [\"x\"]\n");
  ASSERT_OK_AND_ASSIGN(bool ran, service_->runOneJob());
  ASSERT_TRUE(ran);
  ASSERT_OK_AND_ASSIGN(auto done, store_->getSnapshot(s.id));
  EXPECT_EQ(done.state, SnapshotState::kError);
  EXPECT_EQ(done.error_reason, "Entrypoint [\"x\"] exited with exit code 3\nLast output:\nboom");
  EXPECT_EQ(builder_.removed, (std::vector<std::string>{s.build_info->snapshot_ref}));
  // Dedup does not make the same definition active from the broken image.
  auto again = create("broken-again", "FROM busybox\nENTRYPOINT [\"x\"]\n");
  EXPECT_EQ(again.state, SnapshotState::kPending);
}

TEST_F(RecoveryTest, AnImageInUseByAnActiveSnapshotKeepsItsTagWhenAValidationFails) {
  options_.reactivation_cooldown = std::chrono::minutes(0);
  service_ = makeService();
  auto first = create("first", "FROM busybox\n");
  ASSERT_OK(service_->runOneJob().status());
  ASSERT_EQ(store_->getSnapshot(first.id)->state, SnapshotState::kActive);
  auto second = create("second", "FROM busybox\n");
  ASSERT_EQ(second.state, SnapshotState::kActive);  // dedup at create
  // Re-activating the second one validates the shared image again; a failure (here a flaky
  // one) fails that snapshot but must not untag the image the first one still uses.
  ASSERT_OK(service_->deactivate(caller(), second.id));
  ASSERT_OK(service_->activate(caller(), second.id).status());
  builder_.on_validate = [](const EntrypointCheck&, build::LogSink&) {
    return failedPrecondition("Entrypoint [\"sleep\",\"infinity\"] exited with exit code 137");
  };
  ASSERT_OK_AND_ASSIGN(bool ran, service_->runOneJob());
  ASSERT_TRUE(ran);
  EXPECT_EQ(store_->getSnapshot(second.id)->state, SnapshotState::kError);
  EXPECT_TRUE(builder_.removed.empty());
  ASSERT_OK_AND_ASSIGN(auto found, builder_.findBuilt(first.build_info->snapshot_ref));
  EXPECT_TRUE(found.has_value());
}

TEST_F(RecoveryTest, ACreateDuringTheFirstValidationIsNotActiveFromTheUncheckedImage) {
  const std::string dockerfile = "FROM busybox\nENTRYPOINT [\"/bin/false\"]\n";
  meta::Snapshot second;
  int calls = 0;
  builder_.on_validate = [&](const EntrypointCheck&, build::LogSink&) -> Status {
    // The image is tagged, its first snapshot still `building`: an identical create now.
    if (++calls == 1) second = create("second", dockerfile);
    return failedPrecondition("Entrypoint [\"/bin/false\"] exited with exit code 1");
  };
  auto first = create("first", dockerfile);
  ASSERT_OK_AND_ASSIGN(bool ran, service_->runOneJob());
  ASSERT_TRUE(ran);
  ASSERT_EQ(calls, 1);
  EXPECT_EQ(second.state, SnapshotState::kPending) << "active from an image not yet validated";
  EXPECT_EQ(store_->getSnapshot(first.id)->state, SnapshotState::kError);
  // Its own job builds and validates it, and it fails the same way.
  ASSERT_OK_AND_ASSIGN(ran, service_->runOneJob());
  ASSERT_TRUE(ran);
  EXPECT_EQ(calls, 2);
  ASSERT_OK_AND_ASSIGN(auto done, store_->getSnapshot(second.id));
  EXPECT_EQ(done.state, SnapshotState::kError);
  EXPECT_THAT(done.error_reason.value_or(""), HasSubstr("exited with exit code 1"));
}

TEST_F(RecoveryTest, ACreateDuringAPassingValidationGoesActiveThroughItsOwnCheck) {
  const std::string dockerfile = "FROM busybox\n";
  meta::Snapshot second;
  int calls = 0;
  builder_.on_validate = [&](const EntrypointCheck&, build::LogSink&) -> Status {
    if (++calls == 1) second = create("second", dockerfile);
    return okStatus();
  };
  auto first = create("first", dockerfile);
  ASSERT_OK(service_->runOneJob().status());
  EXPECT_EQ(second.state, SnapshotState::kPending);
  ASSERT_OK(service_->runOneJob().status());
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(store_->getSnapshot(second.id)->state, SnapshotState::kActive);
  // Once one is active, the next identical create is active at once, without a check.
  auto third = create("third", dockerfile);
  EXPECT_EQ(third.state, SnapshotState::kActive);
  EXPECT_EQ(calls, 2);
}

TEST_F(RecoveryTest, AFailedValidationKeepsTheImageWhileAnotherJobIsActivatingIt) {
  const std::string dockerfile = "FROM busybox\n";
  auto first = create("first", dockerfile);
  auto second = create("second", dockerfile);
  int calls = 0;
  builder_.on_validate = [&](const EntrypointCheck&, build::LogSink&) -> Status {
    if (++calls == 1) {
      // While the first job validates, another worker runs the second job on the same image,
      // and its (flaky) validation fails.
      auto ran = service_->runOneJob();
      EXPECT_TRUE(ran.ok() && *ran);
      return okStatus();
    }
    return failedPrecondition("Entrypoint [\"sleep\",\"infinity\"] exited with exit code 137");
  };
  ASSERT_OK_AND_ASSIGN(bool ran, service_->runOneJob());
  ASSERT_TRUE(ran);
  ASSERT_EQ(calls, 2);
  EXPECT_EQ(store_->getSnapshot(second.id)->state, SnapshotState::kError);
  EXPECT_EQ(store_->getSnapshot(first.id)->state, SnapshotState::kActive);
  EXPECT_TRUE(builder_.removed.empty()) << "untagged under the job making it active";
  ASSERT_OK_AND_ASSIGN(auto found, builder_.findBuilt(first.build_info->snapshot_ref));
  EXPECT_TRUE(found.has_value());
}

TEST_F(RecoveryTest, ValidationIsSkippedWhenSwitchedOff) {
  options_.entrypoint_stay_up = std::chrono::milliseconds(0);
  service_ = makeService();
  builder_.on_validate = [](const EntrypointCheck&, build::LogSink&) {
    return failedPrecondition("must not be called");
  };
  auto s = create("unchecked", "FROM busybox\n");
  ASSERT_OK(service_->runOneJob().status());
  EXPECT_EQ(builder_.checkCount(), 0u);
  EXPECT_EQ(store_->getSnapshot(s.id)->state, SnapshotState::kActive);
}

TEST_F(RecoveryTest, AnImageBuiltBeforeACrashIsValidatedBeforeActive) {
  auto s = create("tagged", "FROM busybox\n");
  // The dead process tagged the image, then died before the snapshot went active.
  builder_.built[s.build_info->snapshot_ref] = BuiltImage{kDigest, 1 << 20, {}};
  leaveDeadWorkerBuild(s, "worker-gone");
  ASSERT_OK(service_->start());
  auto done = waitTerminal(s.id);
  service_->stop();
  EXPECT_EQ(done.state, SnapshotState::kActive);
  EXPECT_EQ(builder_.checkCount(), 1u);
}

TEST_F(RecoveryTest, StopDuringTheValidationHandsTheBuildBack) {
  std::atomic<bool> validating{false};
  builder_.on_validate = [&](const EntrypointCheck& c, build::LogSink&) -> Status {
    validating = true;
    for (int i = 0; i < 20000 && !(c.cancel && c.cancel->cancelled()); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return cancelled("entrypoint validation was cancelled");
  };
  auto s = create("interrupted", "FROM busybox\n");
  ASSERT_OK(service_->start());
  for (int i = 0; i < 20000 && !validating; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_TRUE(validating.load());
  service_->stop();
  ASSERT_OK_AND_ASSIGN(auto now, store_->getSnapshot(s.id));
  EXPECT_EQ(now.state, SnapshotState::kBuilding);
  meta::JobFilter queued;
  queued.states = {meta::JobState::kQueued};
  queued.snapshot_id = s.id;
  ASSERT_OK_AND_ASSIGN(auto jobs, store_->listJobs(queued));
  EXPECT_EQ(jobs.size(), 1u);
  EXPECT_THAT(logOf(s.id), HasSubstr("stopping: build handed back"));
}

}  // namespace
}  // namespace cairn::service

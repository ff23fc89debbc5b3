// Entrypoint validation before `active`: the real engine builds FROM a busybox image, then the
// service starts the snapshot's entrypoint in a sandbox (crun, network none) and requires it to
// stay up. Label integration: overlayfs and containers need root (CI is root).
#include <gtest/gtest.h>
#include <unistd.h>

#include "cairn/common/fs.h"
#include "cairn/meta/api_key.h"
#include "cairn/meta/sqlite_meta_store.h"
#include "cairn/runtime/executor.h"
#include "cairn/runtime/overlay.h"
#include "cairn/service/engine_snapshot_builder.h"
#include "cairn/store/layer_store.h"
#include "cairn/store/local_blob_store.h"
#include "cairn/testing/busybox_image.h"
#include "cairn/testing/status_matchers.h"
#include "engine_stack.h"

namespace cairn::service {
namespace {

namespace fs = std::filesystem;
using meta::SnapshotState;
using ::testing::HasSubstr;
using ::testing::Not;

class EntrypointValidationTest : public ::testing::Test, protected EngineStack {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "the engine mounts overlayfs and runs containers: needs root (CI is root)";
    }
    if (::cairn::testing::busyboxPath() == nullptr) {
      GTEST_SKIP() << "busybox-static is not installed (scripts/install-deps installs it)";
    }
    ASSERT_OK(openEngineStack({.temp_name = "entrypoint-check",
                               .private_state_root = true,  // hermetic: not the shared /run/cairn
                               .seed =
                                   [&] {
                                     return ::cairn::testing::storeBusyboxImage(
                                                *blobs_, *catalog_, tmp_->path() / "busybox-rootfs")
                                         .status();
                                   },
                               .engine =
                                   [&](EngineSnapshotBuilderOptions& so) {
                                     so.executor = executor_.get();
                                     so.layers = layers_.get();
                                   }}));
    ASSERT_OK_AND_ASSIGN(auto org, store_->createOrganization(meta::Organization{.name = "a"}));
    org_ = org.id;
    options_.data_dir = data_;
    options_.worker_id = "validation-test";
    options_.entrypoint_stay_up = std::chrono::milliseconds(1000);
    makeService();
  }

  void TearDown() override {
    if (!tmp_) return;
    // Whatever the outcome, the validation sandbox is gone: no mounts, no bundle dirs.
    auto mounts = runtime::mountsUnder(data_);
    ASSERT_OK(mounts);
    EXPECT_TRUE(mounts->empty()) << "left mounted: " << mounts->front();
    std::error_code ec;
    EXPECT_TRUE(!fs::exists(data_ / "work" / "run", ec) || fs::is_empty(data_ / "work" / "run"))
        << "a sandbox work dir was left in work/run";
    EXPECT_TRUE(!fs::exists(tmp_->path() / "state", ec) || fs::is_empty(tmp_->path() / "state"))
        << "a container was left in the runtime's state root";
  }

  void makeService() {
    service_.reset();
    service_ = std::make_unique<SnapshotService>(options_, *store_, *engine_, nullptr,
                                                 RealClock::instance());
  }

  Caller caller() { return Caller{org_, {std::string(meta::kPermissionAdmin)}}; }

  //! Creates a snapshot from `dockerfile` and runs its build job on this thread.
  meta::Snapshot build(const std::string& name, const std::string& dockerfile) {
    CreateSnapshotRequest r;
    r.name = name;
    r.build_info = BuildInfoRequest{dockerfile, {}};
    auto created = service_->create(caller(), r);
    EXPECT_TRUE(created.ok()) << created.status().message();
    if (!created.ok()) return {};
    auto ran = service_->runOneJob();
    EXPECT_TRUE(ran.ok() && *ran);
    auto done = store_->getSnapshot(created->id);
    EXPECT_TRUE(done.ok());
    return done.ok() ? *done : meta::Snapshot{};
  }

  std::string logOf(const meta::Snapshot& s) {
    auto chunk = service_->readLogs(caller(), s.id, 0, 1 << 20);
    return chunk.ok() ? chunk->bytes : "";
  }

  ServiceOptions options_;
  std::unique_ptr<SnapshotService> service_;
  std::string org_;
};

TEST_F(EntrypointValidationTest, TheDefaultSleepInfinityStaysUpAndTheSnapshotGoesActive) {
  auto s = build("sleeper", "FROM busybox:test\nRUN echo built > /built\n");
  ASSERT_EQ(s.state, SnapshotState::kActive) << s.error_reason.value_or("");
  EXPECT_EQ(s.entrypoint, (std::vector<std::string>{"sleep", "infinity"}));
  std::string log = logOf(s);
  EXPECT_THAT(log, HasSubstr("[entrypoint] validating [\"sleep\",\"infinity\"]"));
  EXPECT_THAT(log, HasSubstr("still running after 1.0 s: OK"));
}

TEST_F(EntrypointValidationTest, AnEntrypointThatFailsAtOnceIsAnErrorNamingItsExitAndOutput) {
  const std::string dockerfile =
      "FROM busybox:test\n"
      "ENTRYPOINT [\"sh\", \"-c\", \"echo starting; echo config missing >&2; exit 3\"]\n";
  auto s = build("crasher", dockerfile);
  ASSERT_EQ(s.state, SnapshotState::kError);
  const std::string reason = s.error_reason.value_or("");
  EXPECT_THAT(reason, HasSubstr("Entrypoint [\"sh\",\"-c\",\"echo starting; echo config missing "
                                ">&2; exit 3\"] exited with exit code 3"));
  EXPECT_THAT(reason, HasSubstr("Last output:"));
  EXPECT_THAT(reason, HasSubstr("config missing"));
  EXPECT_THAT(logOf(s), HasSubstr("[entrypoint] starting"));

  // The image lost its tag: the same definition is not `active` at once from a broken image,
  // it is built (from the cache) and validated again.
  ASSERT_OK_AND_ASSIGN(auto found, engine_->findBuilt(s.build_info->snapshot_ref));
  EXPECT_FALSE(found.has_value());
  CreateSnapshotRequest again;
  again.name = "crasher-again";
  again.build_info = BuildInfoRequest{dockerfile, {}};
  ASSERT_OK_AND_ASSIGN(auto twin, service_->create(caller(), again));
  EXPECT_EQ(twin.state, SnapshotState::kPending);
  ASSERT_OK_AND_ASSIGN(bool ran, service_->runOneJob());
  EXPECT_TRUE(ran);
  ASSERT_OK_AND_ASSIGN(auto twin_done, store_->getSnapshot(twin.id));
  EXPECT_EQ(twin_done.state, SnapshotState::kError);
}

TEST_F(EntrypointValidationTest, AMissingProgramIsAnErrorNamingTheEntrypoint) {
  auto s = build("missing", "FROM busybox:test\nENTRYPOINT [\"/usr/local/bin/not-there\"]\n");
  ASSERT_EQ(s.state, SnapshotState::kError);
  EXPECT_THAT(s.error_reason.value_or(""), HasSubstr("Entrypoint [\"/usr/local/bin/not-there\"]"));
}

TEST_F(EntrypointValidationTest, AShellFormEntrypointRunsThroughTheShell) {
  // §5.5 stores `ENTRYPOINT sleep 600` as the one element "sleep 600".
  auto s = build("shell-form", "FROM busybox:test\nENTRYPOINT sleep 600\n");
  ASSERT_EQ(s.state, SnapshotState::kActive) << s.error_reason.value_or("");
  EXPECT_EQ(s.entrypoint, (std::vector<std::string>{"sleep 600"}));
  EXPECT_THAT(logOf(s), HasSubstr("validating [\"/bin/sh\",\"-c\",\"sleep 600\"]"));
}

TEST_F(EntrypointValidationTest, AnEntrypointThatExitsZeroPasses) {
  auto s = build("one-shot", "FROM busybox:test\nENTRYPOINT [\"true\"]\n");
  ASSERT_EQ(s.state, SnapshotState::kActive) << s.error_reason.value_or("");
  EXPECT_THAT(logOf(s), HasSubstr("exited with code 0"));
}

TEST_F(EntrypointValidationTest, TheEntrypointRunsWithTheSnapshotsMemoryLimitAndNoNetwork) {
  // The entrypoint prints its cgroup memory limit and its interfaces, then stays up; a 0.25 GB
  // snapshot must show 256 MiB, and only loopback.
  const std::string dockerfile =
      "FROM busybox:test\n"
      "ENTRYPOINT [\"sh\", \"-c\", \"cat /sys/fs/cgroup/memory.max "
      "/sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null; ls /sys/class/net; sleep 60\"]\n";
  CreateSnapshotRequest r;
  r.name = "limited";
  r.memory = 0.25;
  r.build_info = BuildInfoRequest{dockerfile, {}};
  ASSERT_OK_AND_ASSIGN(auto created, service_->create(caller(), r));
  ASSERT_OK_AND_ASSIGN(bool ran, service_->runOneJob());
  ASSERT_TRUE(ran);
  ASSERT_OK_AND_ASSIGN(auto s, store_->getSnapshot(created.id));
  ASSERT_EQ(s.state, SnapshotState::kActive) << s.error_reason.value_or("");
  std::string log = logOf(s);
  EXPECT_THAT(log, HasSubstr("[entrypoint] 268435456"));
  EXPECT_THAT(log, HasSubstr("[entrypoint] lo"));
  EXPECT_THAT(log, Not(HasSubstr("[entrypoint] eth0")));
  EXPECT_THAT(log, Not(HasSubstr("[entrypoint] tap0")));
}

TEST_F(EntrypointValidationTest, ValidationCanBeSwitchedOff) {
  options_.entrypoint_stay_up = std::chrono::milliseconds(0);
  makeService();
  auto s = build("unchecked", "FROM busybox:test\nENTRYPOINT [\"sh\", \"-c\", \"exit 3\"]\n");
  EXPECT_EQ(s.state, SnapshotState::kActive) << s.error_reason.value_or("");
  EXPECT_THAT(logOf(s), Not(HasSubstr("[entrypoint]")));
}

}  // namespace
}  // namespace cairn::service

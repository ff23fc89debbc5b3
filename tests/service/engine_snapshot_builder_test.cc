// The snapshot domain with the real build engine (label integration: the engine mounts
// overlayfs, so it needs root; CI is root). FROM scratch + COPY needs no container runtime
// step and no network, so the only prerequisite is root.
#include "cairn/service/engine_snapshot_builder.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "cairn/common/fs.h"
#include "cairn/layer/diff.h"
#include "cairn/meta/api_key.h"
#include "cairn/meta/sqlite_meta_store.h"
#include "cairn/runtime/executor.h"
#include "cairn/store/layer_store.h"
#include "cairn/store/local_blob_store.h"
#include "cairn/testing/status_matchers.h"
#include "engine_stack.h"

namespace cairn::service {
namespace {

namespace fs = std::filesystem;
using ::cairn::testing::StatusIs;
using meta::SnapshotState;
using ::testing::HasSubstr;

class MapContexts final : public ContextReader {
 public:
  std::map<std::string, std::string> objects;
  Status fetchObject(std::string_view key, const fs::path& dest) override {
    auto it = objects.find(std::string(key));
    if (it == objects.end()) return notFound("no object " + std::string(key));
    return writeFileDurable(dest, it->second);
  }
};

class EngineSnapshotBuilderTest : public ::testing::Test, protected EngineStack {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "the build engine mounts overlayfs: needs root (CI is root)";
    }
    ASSERT_OK(openEngineStack({.temp_name = "engine-service"}));
    ASSERT_OK_AND_ASSIGN(auto a, store_->createOrganization(meta::Organization{.name = "a"}));
    ASSERT_OK_AND_ASSIGN(auto b, store_->createOrganization(meta::Organization{.name = "b"}));
    org_a_ = a.id;
    org_b_ = b.id;
    ServiceOptions options;
    options.data_dir = data_;
    options.worker_id = "engine-test";
    service_ = std::make_unique<SnapshotService>(options, *store_, *engine_, &contexts_,
                                                 RealClock::instance());
    ASSERT_OK(engine_->recover());
  }

  Caller caller(const std::string& org) {
    return Caller{org, {std::string(meta::kPermissionAdmin)}};
  }

  MapContexts contexts_;
  std::unique_ptr<SnapshotService> service_;
  std::string org_a_, org_b_;
};

TEST_F(EngineSnapshotBuilderTest, BuildsFromUploadedContextThenDedupsAcrossOrganizations) {
  fs::path src = tmp_->path() / "ctx";
  fs::create_directories(src / "app");
  ASSERT_OK(writeFileDurable(src / "app" / "hello.txt", std::string(4096, 'h')));
  fs::create_symlink("hello.txt", src / "app" / "link");
  std::string tar;
  layer::StringSink sink(&tar);
  ASSERT_OK(layer::createLayerTar(src, sink).status());
  const std::string hash = "ce59da7c62f89381d47e17c745ff7194";
  contexts_.objects[org_a_ + "/" + hash + "/context.tar"] = tar;
  contexts_.objects[org_b_ + "/" + hash + "/context.tar"] = tar;

  CreateSnapshotRequest r;
  r.name = "engine-snap";
  r.build_info =
      BuildInfoRequest{"FROM scratch\nCOPY app /app\nENTRYPOINT [\"/app/run\"]\n", {hash}};
  ASSERT_OK_AND_ASSIGN(auto s, service_->create(caller(org_a_), r));
  EXPECT_EQ(s.state, SnapshotState::kPending);
  ASSERT_OK_AND_ASSIGN(bool ran, service_->runOneJob());
  ASSERT_TRUE(ran);
  ASSERT_OK_AND_ASSIGN(auto done, store_->getSnapshot(s.id));
  ASSERT_EQ(done.state, SnapshotState::kActive) << done.error_reason.value_or("");
  EXPECT_GT(done.size_bytes.value_or(0), 0);
  EXPECT_EQ(done.entrypoint, (std::vector<std::string>{"/app/run"}));
  ASSERT_OK_AND_ASSIGN(auto logs, service_->readLogs(caller(org_a_), s.id, 0));
  EXPECT_THAT(logs.bytes, HasSubstr("COPY app /app"));
  EXPECT_TRUE(logs.finished);

  ASSERT_OK_AND_ASSIGN(auto found, engine_->findBuilt(done.build_info->snapshot_ref));
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(static_cast<std::int64_t>(found->size_bytes), *done.size_bytes);

  r.name = "same-definition";
  ASSERT_OK_AND_ASSIGN(auto twin, service_->create(caller(org_b_), r));
  EXPECT_EQ(twin.state, SnapshotState::kActive);
  EXPECT_EQ(twin.size_bytes, done.size_bytes);

  // Deleting one keeps the shared image; deleting both removes the tag.
  ASSERT_OK(service_->remove(caller(org_a_), s.id));
  ASSERT_OK(service_->runMaintenance());
  ASSERT_OK_AND_ASSIGN(found, engine_->findBuilt(done.build_info->snapshot_ref));
  EXPECT_TRUE(found.has_value());
  ASSERT_OK(service_->remove(caller(org_b_), twin.id));
  ASSERT_OK(service_->runMaintenance());
  ASSERT_OK_AND_ASSIGN(found, engine_->findBuilt(done.build_info->snapshot_ref));
  EXPECT_FALSE(found.has_value());
}

TEST_F(EngineSnapshotBuilderTest, AFailingBuildNamesTheLine) {
  CreateSnapshotRequest r;
  r.name = "broken";
  r.build_info = BuildInfoRequest{"FROM scratch\nCOPY missing.txt /x\n", {}};
  ASSERT_OK_AND_ASSIGN(auto s, service_->create(caller(org_a_), r));
  ASSERT_OK(service_->runOneJob().status());
  ASSERT_OK_AND_ASSIGN(auto done, store_->getSnapshot(s.id));
  EXPECT_EQ(done.state, SnapshotState::kError);
  EXPECT_THAT(done.error_reason.value_or(""), HasSubstr("missing.txt"));
}

TEST_F(EngineSnapshotBuilderTest, PullWithoutARegistryClientIsAClearError) {
  EXPECT_THAT(engine_->resolveDigest("alpine:3.19").status(),
              StatusIs(StatusCode::kFailedPrecondition, "no registry client configured"));
}

}  // namespace
}  // namespace cairn::service

// Blob GC end to end: snapshots built by the real engine through SnapshotService, one deleted,
// then the service's maintenance pass (which runs the GC). Label integration: the engine mounts
// overlayfs, so it needs root (CI is root). FROM scratch + COPY needs no runtime step and no
// network.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <map>

#include "aged_blobs.h"
#include "cairn/common/fs.h"
#include "cairn/layer/diff.h"
#include "cairn/meta/api_key.h"
#include "cairn/meta/sqlite_meta_store.h"
#include "cairn/runtime/executor.h"
#include "cairn/service/engine_snapshot_builder.h"
#include "cairn/service/store_gc.h"
#include "cairn/store/layer_store.h"
#include "cairn/store/local_blob_store.h"
#include "cairn/testing/status_matchers.h"
#include "engine_stack.h"

namespace cairn::service {
namespace {

namespace fs = std::filesystem;
using meta::SnapshotState;

// The build contexts, kept as blobs the way the S3 endpoint keeps them, and held as GC roots.
class BlobContexts final : public ContextReader, public BlobRootSet {
 public:
  explicit BlobContexts(store::BlobStore& blobs) : blobs_(blobs) {}
  Status put(const std::string& key, const std::string& bytes) {
    CAIRN_ASSIGN_OR_RETURN(store::BlobInfo info, store::writeBlob(blobs_, bytes));
    keys_[key] = info.digest;
    return okStatus();
  }
  Status fetchObject(std::string_view key, const fs::path& dest) override {
    auto it = keys_.find(std::string(key));
    if (it == keys_.end()) return notFound("no object " + std::string(key));
    CAIRN_ASSIGN_OR_RETURN(std::string bytes, blobs_.readAll(it->second, 1 << 30));
    return writeFileDurable(dest, bytes);
  }
  Status withFrozenRoots(
      const std::function<Status(const std::vector<Digest>& roots)>& sweep) override {
    std::vector<Digest> roots;
    for (const auto& [key, digest] : keys_)
      roots.push_back(digest);
    return sweep(roots);
  }

 private:
  store::BlobStore& blobs_;
  std::map<std::string, Digest> keys_;
};

struct ImageBlobs {
  Digest manifest;
  Digest config;
  std::vector<Digest> layers;
};

class StoreGcEngineTest : public ::testing::TestWithParam<bool>, protected EngineStack {
 protected:
  // The parameter: true = a cache budget of 0 (every step evicted at GC), false = the default.
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "the build engine mounts overlayfs: needs root (CI is root)";
    }
    ASSERT_OK(openEngineStack({.temp_name = "store-gc-engine",
                               .builder =
                                   [&](build::BuilderOptions& bo) {
                                     if (GetParam()) bo.cache_budget_bytes = 0;
                                   },
                               .engine =
                                   [&](EngineSnapshotBuilderOptions& so) {
                                     contexts_ = std::make_unique<BlobContexts>(*blobs_);
                                     so.layers = layers_.get();
                                     so.collect_blobs = true;
                                     so.blob_roots = {contexts_.get()};
                                   }}));
    ASSERT_OK_AND_ASSIGN(auto org, store_->createOrganization(meta::Organization{.name = "a"}));
    org_ = org.id;
    ServiceOptions options;
    options.data_dir = data_;
    options.worker_id = "store-gc-test";
    service_ = std::make_unique<SnapshotService>(options, *store_, *engine_, contexts_.get(),
                                                 RealClock::instance());
    ASSERT_OK(engine_->recover());
  }

  Caller caller() { return Caller{org_, {std::string(meta::kPermissionAdmin)}}; }

  meta::Snapshot build(const std::string& name, const std::string& dockerfile,
                       const std::string& hash) {
    CreateSnapshotRequest r;
    r.name = name;
    r.build_info = BuildInfoRequest{dockerfile, {hash}};
    auto s = service_->create(caller(), r);
    EXPECT_TRUE(s.ok()) << s.status();
    auto ran = service_->runOneJob();
    EXPECT_TRUE(ran.ok() && *ran);
    auto done = store_->getSnapshot(s->id);
    EXPECT_TRUE(done.ok()) << done.status();
    EXPECT_EQ(done->state, SnapshotState::kActive) << done->error_reason.value_or("");
    return *done;
  }

  ImageBlobs blobsOf(const meta::Snapshot& s) {
    ImageBlobs out;
    auto name = oci::ImageCatalog::normalizeName(s.build_info->snapshot_ref);
    EXPECT_TRUE(name.ok());
    auto entry = catalog_->get(*name);
    EXPECT_TRUE(entry.ok()) << entry.status();
    auto image = oci::loadImage(*blobs_, entry->descriptor);
    EXPECT_TRUE(image.ok()) << image.status();
    out.manifest = entry->descriptor.digest;
    out.config = image->manifest.config.digest;
    for (const auto& l : image->manifest.layers)
      out.layers.push_back(l.digest);
    return out;
  }

  void ageAllBlobs() { ageAllBlobsIn(data_); }

  bool has(const Digest& d) const { return blobs_->exists(d); }

  std::unique_ptr<BlobContexts> contexts_;
  std::unique_ptr<SnapshotService> service_;
  std::string org_;
};

TEST_P(StoreGcEngineTest, DeletingASnapshotFreesItsBlobsAndKeepsSharedOnes) {
  fs::path src = tmp_->path() / "ctx";
  fs::create_directories(src / "app");
  ASSERT_OK(writeFileDurable(src / "app" / "shared.txt", std::string(4096, 's')));
  ASSERT_OK(writeFileDurable(src / "app" / "a.txt", "only in a"));
  ASSERT_OK(writeFileDurable(src / "app" / "b.txt", "only in b"));
  std::string tar;
  layer::StringSink sink(&tar);
  ASSERT_OK(layer::createLayerTar(src, sink).status());
  const std::string hash = "0123456789abcdef0123456789abcdef";
  ASSERT_OK(contexts_->put(org_ + "/" + hash + "/context.tar", tar));

  meta::Snapshot a =
      build("snap-a", "FROM scratch\nCOPY app/shared.txt /s\nCOPY app/a.txt /a\n", hash);
  meta::Snapshot b =
      build("snap-b", "FROM scratch\nCOPY app/shared.txt /s\nCOPY app/b.txt /b\n", hash);
  ImageBlobs ia = blobsOf(a);
  ImageBlobs ib = blobsOf(b);
  ASSERT_EQ(ia.layers.size(), 2u);
  ASSERT_EQ(ib.layers.size(), 2u);
  ASSERT_EQ(ia.layers[0], ib.layers[0]) << "the first COPY is one cached layer";
  ASSERT_NE(ia.layers[1], ib.layers[1]);
  Digest garbage = store::writeBlob(*blobs_, "left by something deleted long ago")->digest;
  ageAllBlobs();

  ASSERT_OK(service_->remove(caller(), a.id));
  ASSERT_OK(service_->runMaintenance());

  EXPECT_FALSE(has(ia.manifest));
  EXPECT_FALSE(has(ia.config));
  EXPECT_FALSE(has(garbage));
  // With the steps evicted from the cache, a's own layer goes too; with the default budget the
  // cache still holds the step, and its exported layer stays for the next cache hit. Built
  // layers are layer-tar notes: the note file itself is what goes.
  EXPECT_EQ(has(ia.layers[1]), !GetParam());
  EXPECT_EQ(fs::exists(data_ / "blobs" / "layer-tars" / ia.layers[1].hex()), !GetParam());
  EXPECT_TRUE(has(ia.layers[0]));  // b's first layer
  for (const Digest& d : {ib.manifest, ib.config, ib.layers[0], ib.layers[1]})
    EXPECT_TRUE(has(d)) << d.str();
  // b's layers still read back whole: the tar made from the notes' dirs has its digest.
  for (const Digest& d : ib.layers) {
    auto bytes = blobs_->readAll(d, 1 << 30);
    ASSERT_TRUE(bytes.ok()) << d.str() << ": " << bytes.status();
    EXPECT_EQ(Digest::ofBytes(*bytes), d);
  }
  EXPECT_TRUE(has(Digest::ofBytes(tar))) << "the uploaded context is an object: it stays";
  ASSERT_OK_AND_ASSIGN(auto found, engine_->findBuilt(b.build_info->snapshot_ref));
  EXPECT_TRUE(found.has_value());

  // b builds again from its cache or its blobs after the GC: nothing it needs is gone.
  ASSERT_OK(service_->remove(caller(), b.id));
  ASSERT_OK(service_->runMaintenance());
  meta::Snapshot again =
      build("snap-b2", "FROM scratch\nCOPY app/shared.txt /s\nCOPY app/b.txt /b\n", hash);
  EXPECT_EQ(again.state, SnapshotState::kActive);
}

// `cairn build` in another process on the same data dir holds the data-dir lock shared for its
// whole run (its layer leases and fresh blobs live in that process): the server's GC pass then
// removes nothing, neither layers nor blobs, and runs as usual once the build has ended.
TEST_P(StoreGcEngineTest, ABuildHoldingTheDataDirLockDefersTheLayerAndBlobGc) {
  fs::path src = tmp_->path() / "ctx";
  fs::create_directories(src / "app");
  ASSERT_OK(writeFileDurable(src / "app" / "a.txt", "only in a"));
  std::string tar;
  layer::StringSink sink(&tar);
  ASSERT_OK(layer::createLayerTar(src, sink).status());
  const std::string hash = "fedcba9876543210fedcba9876543210";
  ASSERT_OK(contexts_->put(org_ + "/" + hash + "/context.tar", tar));
  meta::Snapshot a = build("snap-a", "FROM scratch\nCOPY app/a.txt /a\n", hash);
  ImageBlobs ia = blobsOf(a);
  ASSERT_EQ(ia.layers.size(), 1u);
  ageAllBlobs();
  auto layer_dirs = [&] {
    std::size_t n = 0;
    for (const auto& e : fs::directory_iterator(data_ / "layers"))
      n += e.is_directory() ? 1 : 0;
    return n;
  };
  const std::size_t layers_before = layer_dirs();
  ASSERT_OK(service_->remove(caller(), a.id));

  {
    ASSERT_OK_AND_ASSIGN(StoreGcLock build_lock, StoreGcLock::shared(data_));
    EXPECT_THAT(engine_->collectGarbage(), testing::StatusIs(StatusCode::kUnavailable));
    ASSERT_OK(service_->runMaintenance());  // untags the image; its GC stays pending
    for (const Digest& d : {ia.manifest, ia.config, ia.layers[0]})
      EXPECT_TRUE(has(d)) << d.str() << " removed under a build's lock";
    EXPECT_EQ(layer_dirs(), layers_before) << "the layer GC ran under a build's lock";
  }

  ASSERT_OK(service_->runMaintenance());  // the pending GC runs now
  EXPECT_FALSE(has(ia.manifest));
  EXPECT_FALSE(has(ia.config));
  // With the step evicted from the cache (budget 0) its layer goes too.
  EXPECT_EQ(has(ia.layers[0]), !GetParam());
  if (GetParam()) {
    EXPECT_LT(layer_dirs(), layers_before);
  }
}

// A server starting while a `cairn build` runs on its data dir must not sweep that build's work
// dir (or its containers and partial blobs) as if a crash had left them.
TEST_P(StoreGcEngineTest, RecoveryLeavesAnotherProcesssBuildAlone) {
  const fs::path work = data_ / "work" / "builds" / "cli-build";
  fs::create_directories(work / "upper");
  {
    ASSERT_OK_AND_ASSIGN(StoreGcLock build_lock, StoreGcLock::shared(data_));
    ASSERT_OK(engine_->recover());
    EXPECT_TRUE(fs::exists(work / "upper")) << "recovery swept a running build's work dir";
  }
  ASSERT_OK(engine_->recover());
  EXPECT_FALSE(fs::exists(work)) << "a dead build's work dir is swept on the next start";
}

INSTANTIATE_TEST_SUITE_P(CacheBudget, StoreGcEngineTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& p) {
                           return std::string(p.param ? "Evicted" : "Default");
                         });

}  // namespace
}  // namespace cairn::service

// Blob garbage collection (service/store_gc.h), through EngineSnapshotBuilder::collectGarbage as
// the service calls it after a delete: images are made by hand (blobs + catalog tags), so no
// build, runtime or root is needed.
#include "cairn/service/store_gc.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <future>
#include <set>
#include <thread>

#include "aged_blobs.h"
#include "cairn/build/builder.h"
#include "cairn/common/fs.h"
#include "cairn/oci/image.h"
#include "cairn/service/engine_snapshot_builder.h"
#include "cairn/store/layer_store.h"
#include "cairn/store/local_blob_store.h"
#include "cairn/testing/status_matchers.h"

namespace cairn::service {
namespace {

namespace fs = std::filesystem;
using ::cairn::testing::StatusIs;
using ::testing::HasSubstr;

// A root set of fixed digests; `during` runs inside the frozen section, before the sweep.
class FakeRoots final : public BlobRootSet {
 public:
  std::vector<Digest> held;
  std::function<void()> during;
  int calls = 0;
  Status withFrozenRoots(
      const std::function<Status(const std::vector<Digest>& roots)>& sweep) override {
    ++calls;
    if (during) during();
    return sweep(held);
  }
};

struct MadeImage {
  oci::Descriptor manifest;
  Digest config;
  std::vector<Digest> layers;
};

class StoreGcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, TempDir::create("cairn-store-gc"));
    ASSERT_OK_AND_ASSIGN(blobs_, store::LocalBlobStore::open(dir_.path()));
    ASSERT_OK_AND_ASSIGN(layers_, store::LayerStore::open(dir_.path()));
    ASSERT_OK_AND_ASSIGN(catalog_, oci::ImageCatalog::open(dir_.path()));
    build::BuilderOptions bo;
    bo.data_dir = dir_.path();
    bo.blobs = blobs_.get();
    bo.layers = layers_.get();
    bo.catalog = catalog_.get();
    ASSERT_OK_AND_ASSIGN(builder_, build::Builder::open(bo));
    EngineSnapshotBuilderOptions eo;
    eo.builder = builder_.get();
    eo.catalog = catalog_.get();
    eo.blobs = blobs_.get();
    eo.layers = layers_.get();
    eo.collect_blobs = true;
    eo.blob_roots = {&roots_};
    engine_ = std::make_unique<EngineSnapshotBuilder>(eo);
  }

  Digest blob(const std::string& bytes) {
    auto info = store::writeBlob(*blobs_, bytes);
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? info->digest : Digest();
  }

  // An image whose layers are the given byte strings, tagged `name` in the catalog.
  MadeImage image(const std::string& name, const std::vector<std::string>& layer_bytes) {
    MadeImage out;
    oci::ImageConfig config;
    config.architecture = "amd64";
    config.os = "linux";
    config.created = name;  // a config of its own per image
    oci::Manifest m;
    for (const auto& bytes : layer_bytes) {
      oci::Descriptor d;
      d.media_type = std::string(oci::kMediaTypeOciLayer);
      d.digest = blob(bytes);
      d.size = static_cast<std::int64_t>(bytes.size());
      m.layers.push_back(d);
      out.layers.push_back(d.digest);
      config.diff_ids.push_back(d.digest);  // uncompressed layers: diff id = blob digest
    }
    std::string config_bytes = oci::serialize(config);
    m.config.media_type = std::string(oci::kMediaTypeOciConfig);
    m.config.digest = blob(config_bytes);
    m.config.size = static_cast<std::int64_t>(config_bytes.size());
    out.config = m.config.digest;
    std::string manifest_bytes = oci::serialize(m);
    out.manifest.media_type = std::string(oci::kMediaTypeOciManifest);
    out.manifest.digest = blob(manifest_bytes);
    out.manifest.size = static_cast<std::int64_t>(manifest_bytes.size());
    EXPECT_OK(catalog_->tag(name, out.manifest, "test"));
    return out;
  }

  void ageAllBlobs() { ageAllBlobsIn(dir_.path()); }

  bool has(const Digest& d) const { return blobs_->exists(d); }

  TempDir dir_ = *TempDir::create("unused");
  std::unique_ptr<store::LocalBlobStore> blobs_;
  std::unique_ptr<store::LayerStore> layers_;
  std::unique_ptr<oci::ImageCatalog> catalog_;
  std::unique_ptr<build::Builder> builder_;
  FakeRoots roots_;
  std::unique_ptr<EngineSnapshotBuilder> engine_;
};

TEST_F(StoreGcTest, DeletedSnapshotsBlobsGoSharedLayersStay) {
  MadeImage a = image("daytona-aaa:daytona", {"base layer", "a's own layer"});
  MadeImage b = image("daytona-bbb:daytona", {"base layer", "b's own layer"});
  Digest orphan = blob("left over by a deleted object");
  ageAllBlobs();

  // What the service does when a snapshot is deleted: drop its tag, then collect.
  ASSERT_OK(engine_->removeImage("daytona-aaa:daytona"));
  ASSERT_OK(engine_->collectGarbage());

  EXPECT_FALSE(has(a.manifest.digest));
  EXPECT_FALSE(has(a.config));
  EXPECT_FALSE(has(a.layers[1]));
  EXPECT_FALSE(has(orphan));
  EXPECT_TRUE(has(a.layers[0]));  // b's too
  EXPECT_TRUE(has(b.manifest.digest));
  EXPECT_TRUE(has(b.config));
  EXPECT_TRUE(has(b.layers[1]));
  EXPECT_EQ(roots_.calls, 1);
  // The remaining image still loads whole.
  ASSERT_OK_AND_ASSIGN(oci::CatalogEntry entry, catalog_->get("daytona-bbb:daytona"));
  EXPECT_OK(oci::loadImage(*blobs_, entry.descriptor).status());
  ASSERT_OK_AND_ASSIGN(auto left, blobs_->list());
  EXPECT_EQ(left.size(), 4u);

  // Deleting the last one empties the store.
  ASSERT_OK(engine_->removeImage("daytona-bbb:daytona"));
  ASSERT_OK(engine_->collectGarbage());
  ASSERT_OK_AND_ASSIGN(left, blobs_->list());
  EXPECT_TRUE(left.empty());
}

TEST_F(StoreGcTest, RootSetBlobsSurvive) {
  Digest context = blob("an uploaded build context");
  Digest replaced = blob("an overwritten object's old body");
  roots_.held = {context};
  ageAllBlobs();
  ASSERT_OK(engine_->collectGarbage());
  EXPECT_TRUE(has(context));
  EXPECT_FALSE(has(replaced));
}

TEST_F(StoreGcTest, BlobCommittedDuringTheSweepSurvives) {
  Digest old_garbage = blob("old garbage");
  ageAllBlobs();
  Digest fresh;
  // Committed after the walk started (inside the frozen section, before the sweep) and
  // referenced by nothing the GC read: only not_after keeps it.
  roots_.during = [&] { fresh = blob("committed while the GC runs"); };
  ASSERT_OK(engine_->collectGarbage());
  EXPECT_FALSE(has(old_garbage));
  ASSERT_FALSE(fresh.empty());
  EXPECT_TRUE(has(fresh));
}

TEST_F(StoreGcTest, RootsAreReadAgainForEachBatch) {
  // More candidates than one batch: a reference added between two batches keeps its blob.
  std::vector<Digest> garbage;
  for (int i = 0; i < 300; ++i)
    garbage.push_back(blob("garbage " + std::to_string(i)));
  std::sort(garbage.begin(), garbage.end());
  ageAllBlobs();
  const Digest late = garbage.back();  // removed in the last batch, in digest order
  roots_.during = [&] {
    if (roots_.calls == 2) roots_.held.push_back(late);  // e.g. a put of the same bytes
  };
  ASSERT_OK(engine_->collectGarbage());
  EXPECT_EQ(roots_.calls, 2);
  EXPECT_TRUE(has(late));
  EXPECT_FALSE(has(garbage.front()));
  ASSERT_OK_AND_ASSIGN(auto left, blobs_->list());
  EXPECT_EQ(left.size(), 1u);
}

TEST_F(StoreGcTest, CachedStepsKeepTheirExportedLayers) {
  ASSERT_OK_AND_ASSIGN(Digest diff, Digest::parse(Digest::ofBytes("layer tar").str()));
  ASSERT_OK_AND_ASSIGN(store::LayerInfo layer,
                       layers_->getOrCreate(Digest(), diff, [](const fs::path& d) {
                         return writeFileDurable(d / "file", "x").ok()
                                    ? Result<std::uint64_t>(1)
                                    : Result<std::uint64_t>(internalError("write"));
                       }));
  Digest exported = blob("zstd of the layer");
  build::CacheIndex& cache = builder_->cache();
  ASSERT_OK(cache.put("step-key", {layer.chain_id, diff, 1}));
  ASSERT_OK(cache.putExported(diff, {exported, 17, std::string(oci::kMediaTypeOciLayerZstd)}));
  ageAllBlobs();
  ASSERT_OK(engine_->collectGarbage());
  EXPECT_TRUE(has(exported));
  // Once the step leaves the cache, its layer and its export go.
  ASSERT_OK(cache.remove("step-key"));
  ASSERT_OK(engine_->collectGarbage());
  EXPECT_FALSE(has(exported));
  EXPECT_FALSE(layers_->exists(layer.chain_id));
}

TEST_F(StoreGcTest, WithoutCollectBlobsTheStoreIsNotSwept) {
  EngineSnapshotBuilderOptions eo;
  eo.builder = builder_.get();
  eo.catalog = catalog_.get();
  eo.blobs = blobs_.get();
  EngineSnapshotBuilder layers_only(eo);
  Digest orphan = blob("not referenced by any image");
  ageAllBlobs();
  ASSERT_OK(layers_only.collectGarbage());
  EXPECT_TRUE(has(orphan));
}

TEST_F(StoreGcTest, AnUnreadableImageStopsTheGcBeforeAnythingGoes) {
  Digest orphan = blob("garbage");
  std::string bad = "{ not a manifest";
  oci::Descriptor d;
  d.media_type = std::string(oci::kMediaTypeOciManifest);
  d.digest = blob(bad);
  d.size = static_cast<std::int64_t>(bad.size());
  ASSERT_OK(catalog_->tag("broken:latest", d, "test"));
  ageAllBlobs();
  StoreGcOptions o;
  o.blobs = blobs_.get();
  o.catalog = catalog_.get();
  auto r = collectStoreGarbage(o);
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr(d.digest.str()));
  EXPECT_TRUE(has(orphan));
}

TEST_F(StoreGcTest, RootSetErrorsStopTheGc) {
  class Failing final : public BlobRootSet {
   public:
    Status withFrozenRoots(const std::function<Status(const std::vector<Digest>&)>&) override {
      return internalError("object index unreadable");
    }
  } failing;
  Digest orphan = blob("garbage");
  ageAllBlobs();
  StoreGcOptions o;
  o.blobs = blobs_.get();
  o.catalog = catalog_.get();
  o.roots = {&failing};
  EXPECT_THAT(collectStoreGarbage(o), StatusIs(StatusCode::kInternal));
  EXPECT_TRUE(has(orphan));
}

TEST_F(StoreGcTest, MissingStoresAreInvalidArgument) {
  StoreGcOptions o;
  EXPECT_THAT(collectStoreGarbage(o), StatusIs(StatusCode::kInvalidArgument));
}

TEST_F(StoreGcTest, ReportsWhatItRemoved) {
  MadeImage a = image("keep:latest", {"kept layer"});
  Digest g1 = blob("garbage one");
  Digest g2 = blob("garbage two!");
  ageAllBlobs();
  StoreGcOptions o;
  o.blobs = blobs_.get();
  o.catalog = catalog_.get();
  ASSERT_OK_AND_ASSIGN(StoreGcReport r, collectStoreGarbage(o));
  std::set<Digest> removed(r.blobs.removed.begin(), r.blobs.removed.end());
  EXPECT_EQ(removed, (std::set<Digest>{g1, g2}));
  EXPECT_EQ(r.blobs.removed_bytes, 23u);
  EXPECT_EQ(r.blobs.kept, 3u);
  EXPECT_EQ(r.live_count, 3u);
  EXPECT_TRUE(has(a.manifest.digest));
}

// `cairn build` beside a running `cairn serve`: the build holds <data>/gc.lock shared (in its own
// process) while it writes blobs that no tag reaches yet; the server's GC pass must leave them.
TEST_F(StoreGcTest, ABuildInAnotherProcessKeepsTheGcOutUntilItEnds) {
  Digest written = blob("a config the other process's build wrote, not tagged yet");
  Digest reused = blob("an old blob the other build's new layer happens to equal");
  ageAllBlobs();

  int ready[2];
  int release[2];
  ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(release, O_CLOEXEC), 0);
  const fs::path data_dir = dir_.path();
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The "build": takes the protection as `cairn build` does, says so, and holds it until the
    // parent closes `release` (or dies).
    ::close(ready[0]);
    ::close(release[1]);
    Result<StoreGcLock> lock = StoreGcLock::shared(data_dir);
    if (!lock.ok()) ::_exit(2);
    char c = 'x';
    if (::write(ready[1], &c, 1) != 1) ::_exit(3);
    (void)::read(release[0], &c, 1);
    ::_exit(0);
  }
  ::close(ready[1]);
  ::close(release[0]);
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1) << "the child could not take the lock";
  ::close(ready[0]);

  // The server's pass (as the service runs it after a delete) and a direct one both defer.
  EXPECT_THAT(engine_->collectGarbage(), StatusIs(StatusCode::kUnavailable, HasSubstr("gc.lock")));
  StoreGcOptions o;
  o.blobs = blobs_.get();
  o.catalog = catalog_.get();
  EXPECT_THAT(collectStoreGarbage(o).status(), StatusIs(StatusCode::kUnavailable));
  EXPECT_TRUE(has(written));
  EXPECT_TRUE(has(reused));

  // Once the build is over, the next pass removes them (nothing tagged them).
  ::close(release[1]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  ASSERT_OK(engine_->collectGarbage());
  EXPECT_FALSE(has(written));
  EXPECT_FALSE(has(reused));
}

TEST_F(StoreGcTest, TheDataDirLockIsSharedByWritersAndExclusiveForTheGc) {
  const fs::path data_dir = dir_.path();
  {
    ASSERT_OK_AND_ASSIGN(StoreGcLock one, StoreGcLock::shared(data_dir));
    ASSERT_OK_AND_ASSIGN(StoreGcLock two, StoreGcLock::shared(data_dir));  // builds share it
    EXPECT_THAT(StoreGcLock::tryExclusive(data_dir).status(),
                StatusIs(StatusCode::kUnavailable, HasSubstr(data_dir.string() + "/gc.lock")));
  }
  ASSERT_OK_AND_ASSIGN(StoreGcLock gc, StoreGcLock::tryExclusive(data_dir));
  EXPECT_THAT(StoreGcLock::tryExclusive(data_dir).status(), StatusIs(StatusCode::kUnavailable));
  // A writer arriving during a pass says it waits, then waits until the pass ends.
  std::promise<void> waiting;
  std::thread writer([&] {
    Result<StoreGcLock> lock = StoreGcLock::shared(data_dir, [&] { waiting.set_value(); });
    EXPECT_OK(lock.status());
  });
  waiting.get_future().wait();
  { StoreGcLock done = std::move(gc); }
  writer.join();
  EXPECT_TRUE(fs::exists(StoreGcLock::pathIn(data_dir)));  // never removed
}

TEST_F(StoreGcTest, TheDataDirLockNamesAPathItCannotOpen) {
  const fs::path file = dir_.path() / "not-a-dir";
  ASSERT_OK(writeFileDurable(file, "x"));
  Result<StoreGcLock> shared = StoreGcLock::shared(file);
  ASSERT_FALSE(shared.ok());
  EXPECT_THAT(shared.status().message(), HasSubstr(file.string()));
  Result<StoreGcLock> exclusive = StoreGcLock::tryExclusive(file);
  ASSERT_FALSE(exclusive.ok());
  EXPECT_THAT(exclusive.status().message(), HasSubstr(file.string() + "/gc.lock"));
}

}  // namespace
}  // namespace cairn::service

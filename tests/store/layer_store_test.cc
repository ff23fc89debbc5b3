#include "cairn/store/layer_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "../layer/tar_builder.h"
#include "cairn/common/fs.h"
#include "cairn/layer/chain_id.h"
#include "cairn/store/local_blob_store.h"
#include "cairn/testing/status_matchers.h"

namespace cairn::store {
namespace {

using ::cairn::layer::testing::TarBuilder;
using ::cairn::testing::StatusIs;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

class LayerStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::create("layer-store");
    ASSERT_OK(dir);
    tmp_ = std::make_unique<TempDir>(std::move(dir).value());
    auto layers = LayerStore::open(tmp_->path());
    ASSERT_OK(layers);
    layers_ = std::move(layers).value();
    auto blobs = LocalBlobStore::open(tmp_->path());
    ASSERT_OK(blobs);
    blobs_ = std::move(blobs).value();
    options_.preserve_owner = ::geteuid() == 0;
  }

  Result<LayerInfo> import(const std::string& tar, const Digest& parent) {
    layer::StringSource src(tar);
    return layers_->importTar(src, parent, Digest::ofBytes(tar), options_);
  }

  std::unique_ptr<TempDir> tmp_;
  std::unique_ptr<LayerStore> layers_;
  std::unique_ptr<LocalBlobStore> blobs_;
  layer::ApplyOptions options_;
};

TEST_F(LayerStoreTest, ImportStacksByChainId) {
  std::string base = TarBuilder().file("etc/os-release", "debian").build();
  std::string top = TarBuilder().file("app/main.py", "print(1)").build();
  ASSERT_OK_AND_ASSIGN(LayerInfo l0, import(base, Digest()));
  ASSERT_OK_AND_ASSIGN(LayerInfo l1, import(top, l0.chain_id));
  EXPECT_EQ(l0.chain_id, Digest::ofBytes(base));
  EXPECT_EQ(l1.chain_id, layer::chainId(l0.chain_id, Digest::ofBytes(top)));
  EXPECT_EQ(l1.parent, l0.chain_id);
  EXPECT_EQ(l1.size, 8u);
  EXPECT_EQ(*readFile(layers_->fsPath(l0.chain_id) / "etc/os-release"), "debian");
  EXPECT_EQ(*readFile(layers_->fsPath(l1.chain_id) / "app/main.py"), "print(1)");
  ASSERT_OK_AND_ASSIGN(auto lowers, layers_->lowerDirs(l1.chain_id));
  EXPECT_EQ(lowers,
            (std::vector<fs::path>{layers_->fsPath(l1.chain_id), layers_->fsPath(l0.chain_id)}));
  ASSERT_OK_AND_ASSIGN(LayerInfo again, layers_->info(l1.chain_id));
  EXPECT_EQ(again.diff_id, l1.diff_id);
  EXPECT_EQ(again.parent, l0.chain_id);
  ASSERT_OK_AND_ASSIGN(auto all, layers_->list());
  EXPECT_EQ(all.size(), 2u);
}

TEST_F(LayerStoreTest, DiffIdMismatchNamesBothAndPublishesNothing) {
  std::string tar = TarBuilder().file("a", "b").build();
  Digest wrong = Digest::ofBytes("wrong");
  layer::StringSource src(tar);
  EXPECT_THAT(
      layers_->importTar(src, Digest(), wrong, options_),
      StatusIs(StatusCode::kInvalidArgument,
               ::testing::AllOf(HasSubstr(wrong.str()), HasSubstr(Digest::ofBytes(tar).str()))));
  EXPECT_FALSE(layers_->exists(wrong));
  ASSERT_OK_AND_ASSIGN(auto all, layers_->list());
  EXPECT_TRUE(all.empty());
  int entries = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(tmp_->path() / "layers"))
    ++entries;
  EXPECT_EQ(entries, 0);  // staging removed
}

TEST_F(LayerStoreTest, MissingParentIsAnError) {
  std::string tar = TarBuilder().file("a", "b").build();
  EXPECT_THAT(import(tar, Digest::ofBytes("no such parent")),
              StatusIs(StatusCode::kFailedPrecondition, HasSubstr("parent layer")));
}

TEST_F(LayerStoreTest, HostileTarFailsCleanly) {
  std::string tar = TarBuilder().file("../../escape", "x").build();
  EXPECT_THAT(import(tar, Digest()), StatusIs(StatusCode::kInvalidArgument, HasSubstr("..")));
  EXPECT_FALSE(fs::exists(tmp_->path() / "escape"));
  EXPECT_FALSE(layers_->exists(Digest::ofBytes(tar)));
}

TEST_F(LayerStoreTest, CreatedOncePerChainIdUnderConcurrency) {
  std::atomic<int> fills{0};
  Digest diff = Digest::ofBytes("diff");
  constexpr int kThreads = 6;
  std::vector<Result<LayerInfo>> results(kThreads, Result<LayerInfo>(internalError("unset")));
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      results[i] = layers_->getOrCreate(Digest(), diff, [&](const fs::path& dir) {
        ++fills;
        Status s = writeFileDurable(dir / "file", "content");
        return s.ok() ? Result<std::uint64_t>(7) : Result<std::uint64_t>(s);
      });
    });
  }
  for (auto& t : threads)
    t.join();
  for (auto& r : results) {
    ASSERT_OK(r);
    EXPECT_EQ(r->chain_id, diff);
  }
  EXPECT_EQ(fills.load(), 1);
  EXPECT_EQ(*readFile(layers_->fsPath(diff) / "file"), "content");
}

TEST_F(LayerStoreTest, TwoStoreObjectsOnOneRootRaceToPublish) {
  ASSERT_OK_AND_ASSIGN(auto other, LayerStore::open(tmp_->path()));
  Digest diff = Digest::ofBytes("same");
  // `other` publishes while `layers_` is filling: layers_ must discard its copy and reuse.
  auto r = layers_->getOrCreate(Digest(), diff, [&](const fs::path& dir) -> Result<std::uint64_t> {
    auto o = other->getOrCreate(Digest(), diff, [](const fs::path& d) -> Result<std::uint64_t> {
      CAIRN_RETURN_IF_ERROR(writeFileDurable(d / "who", "other"));
      return 5;
    });
    if (!o.ok()) return o.status();
    CAIRN_RETURN_IF_ERROR(writeFileDurable(dir / "who", "mine"));
    return 4;
  });
  ASSERT_OK(r);
  EXPECT_EQ(r->size, 5u);
  EXPECT_EQ(*readFile(layers_->fsPath(diff) / "who"), "other");
  int staging = 0;
  for (auto& e : fs::directory_iterator(tmp_->path() / "layers")) {
    if (e.path().filename().string()[0] == '.') ++staging;
  }
  EXPECT_EQ(staging, 0);
}

TEST_F(LayerStoreTest, GcKeepsLiveLeasedAndTheirParents) {
  ASSERT_OK_AND_ASSIGN(LayerInfo a, import(TarBuilder().file("a", "1").build(), Digest()));
  ASSERT_OK_AND_ASSIGN(LayerInfo b, import(TarBuilder().file("b", "2").build(), a.chain_id));
  ASSERT_OK_AND_ASSIGN(LayerInfo c, import(TarBuilder().file("c", "3").build(), Digest()));
  ASSERT_OK_AND_ASSIGN(LayerInfo d, import(TarBuilder().file("d", "4").build(), c.chain_id));
  ASSERT_OK_AND_ASSIGN(LayerInfo e, import(TarBuilder().file("e", "5").build(), Digest()));
  {
    ASSERT_OK_AND_ASSIGN(LayerLease lease, layers_->lease(d.chain_id));
    EXPECT_EQ(layers_->leaseCount(d.chain_id), 1);
    ASSERT_OK_AND_ASSIGN(LayerGcReport r, layers_->collectGarbage({b.chain_id}));
    EXPECT_EQ(r.removed, std::vector<Digest>{e.chain_id});
    EXPECT_EQ(r.kept, 4u);
    EXPECT_TRUE(layers_->exists(a.chain_id));  // parent of live b
    EXPECT_TRUE(layers_->exists(c.chain_id));  // parent of leased d
  }
  EXPECT_EQ(layers_->leaseCount(d.chain_id), 0);
  ASSERT_OK_AND_ASSIGN(LayerGcReport r, layers_->collectGarbage({}));
  EXPECT_EQ(r.removed.size(), 4u);
  ASSERT_OK_AND_ASSIGN(auto all, layers_->list());
  EXPECT_TRUE(all.empty());
  EXPECT_THAT(layers_->lease(a.chain_id), StatusIs(StatusCode::kNotFound));
}

TEST_F(LayerStoreTest, ExportImportRoundTripThroughTheBlobStore) {
  fs::path src = tmp_->path() / "src";
  fs::create_directories(src / "dir");
  ASSERT_OK(writeFileDurable(src / "dir/file", "exported"));
  ASSERT_OK_AND_ASSIGN(layer::EncodedLayer enc,
                       exportDirToBlob(src, *blobs_, layer::Compression::kGzip));
  EXPECT_TRUE(blobs_->exists(enc.digest));
  EXPECT_EQ(enc.media_type, "application/vnd.oci.image.layer.v1.tar+gzip");
  ASSERT_OK_AND_ASSIGN(LayerInfo l,
                       layers_->importBlob(*blobs_, enc.digest, Digest(), enc.diff_id, options_));
  EXPECT_EQ(l.chain_id, enc.diff_id);
  EXPECT_EQ(*readFile(layers_->fsPath(l.chain_id) / "dir/file"), "exported");
  // Export of the unpacked layer gives the same diff id: the round trip is exact.
  ASSERT_OK_AND_ASSIGN(
      layer::EncodedLayer again,
      exportDirToBlob(layers_->fsPath(l.chain_id), *blobs_, layer::Compression::kZstd));
  EXPECT_EQ(again.diff_id, enc.diff_id);
  EXPECT_THAT(layers_->importBlob(*blobs_, Digest::ofBytes("absent"), Digest(),
                                  Digest::ofBytes("x"), options_),
              StatusIs(StatusCode::kNotFound));
}

TEST_F(LayerStoreTest, AdoptDirMovesWithoutCopying) {
  fs::path upper = tmp_->path() / "upper";
  fs::create_directories(upper);
  ASSERT_OK(writeFileDurable(upper / "built", "artifact"));
  struct stat before {};
  ASSERT_EQ(::stat((upper / "built").c_str(), &before), 0);
  ASSERT_OK_AND_ASSIGN(LayerInfo l, layers_->adoptDir(Digest(), upper));
  EXPECT_FALSE(fs::exists(upper));
  struct stat after {};
  ASSERT_EQ(::stat((layers_->fsPath(l.chain_id) / "built").c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino);
  EXPECT_EQ(l.size, 8u);
}

TEST_F(LayerStoreTest, CleanStagingRemovesOnlyOldLeftovers) {
  fs::path old_dir = tmp_->path() / "layers" / ".staging-dead";
  fs::create_directories(old_dir / "fs");
  struct timespec ts[2] = {{::time(nullptr) - 7200, 0}, {::time(nullptr) - 7200, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, old_dir.c_str(), ts, 0), 0);
  fs::create_directories(tmp_->path() / "layers" / ".staging-fresh");
  ASSERT_OK_AND_ASSIGN(std::size_t n, layers_->cleanStaging(std::chrono::hours(1)));
  EXPECT_EQ(n, 1u);
  EXPECT_FALSE(fs::exists(old_dir));
  EXPECT_TRUE(fs::exists(tmp_->path() / "layers" / ".staging-fresh"));
}

TEST_F(LayerStoreTest, MissingLayerIsNotFound) {
  Digest d = Digest::ofBytes("none");
  EXPECT_THAT(layers_->info(d), StatusIs(StatusCode::kNotFound, HasSubstr(d.str())));
  EXPECT_THAT(layers_->lowerDirs(d), StatusIs(StatusCode::kNotFound));
}

}  // namespace
}  // namespace cairn::store

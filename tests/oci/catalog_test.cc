#include "cairn/oci/catalog.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "cairn/common/fs.h"
#include "cairn/store/memory_blob_store.h"
#include "cairn/testing/status_matchers.h"

namespace cairn::oci {
namespace {

using ::cairn::testing::IsOk;
using ::cairn::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

// Writes a one-layer image into `blobs` and returns its manifest descriptor.
Descriptor putImage(store::BlobStore& blobs, const std::string& layer_bytes,
                    Digest* layer_digest = nullptr, Digest* config_digest = nullptr) {
  Descriptor layer = describe(kMediaTypeOciLayer, layer_bytes);
  EXPECT_OK(store::writeBlob(blobs, layer_bytes).status());
  ImageConfig config;
  config.architecture = "amd64";
  config.os = "linux";
  config.diff_ids = {layer.digest};
  std::string config_bytes = serialize(config);
  Descriptor config_desc = describe(kMediaTypeOciConfig, config_bytes);
  EXPECT_OK(store::writeBlob(blobs, config_bytes).status());
  Manifest m;
  m.config = config_desc;
  m.layers = {layer};
  std::string manifest_bytes = serialize(m);
  EXPECT_OK(store::writeBlob(blobs, manifest_bytes).status());
  if (layer_digest) *layer_digest = layer.digest;
  if (config_digest) *config_digest = config_desc.digest;
  return describe(kMediaTypeOciManifest, manifest_bytes);
}

TEST(CatalogTest, TagGetListRemovePersist) {
  ASSERT_OK_AND_ASSIGN(TempDir dir, TempDir::create("catalog"));
  store::MemoryBlobStore blobs;
  Descriptor a = putImage(blobs, "layer-a");
  Descriptor b = putImage(blobs, "layer-b");
  {
    ASSERT_OK_AND_ASSIGN(auto catalog, ImageCatalog::open(dir.path()));
    ASSERT_OK(catalog->tag("busybox", a, "test"));
    ASSERT_OK(catalog->tag("localhost:5000/x/y:v1", b));
    ASSERT_OK(catalog->tag("docker.io/library/busybox:latest", b));  // moves the name
  }
  ASSERT_OK_AND_ASSIGN(auto catalog, ImageCatalog::open(dir.path()));
  ASSERT_OK_AND_ASSIGN(auto entries, catalog->list());
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].name, "docker.io/library/busybox:latest");
  EXPECT_EQ(entries[0].descriptor, b);
  EXPECT_EQ(entries[1].name, "localhost:5000/x/y:v1");
  EXPECT_FALSE(entries[0].created_at.empty());
  ASSERT_OK_AND_ASSIGN(CatalogEntry got, catalog->get("busybox:latest"));
  EXPECT_EQ(got.descriptor, b);
  EXPECT_THAT(catalog->get("nothere"),
              StatusIs(StatusCode::kNotFound, HasSubstr("docker.io/library/nothere:latest")));
  ASSERT_OK(catalog->remove("busybox"));
  EXPECT_THAT(catalog->remove("busybox"), StatusIs(StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(auto roots, catalog->roots());
  EXPECT_THAT(roots, ElementsAre(b));
}

TEST(CatalogTest, RejectsBadNamesAndNonManifests) {
  ASSERT_OK_AND_ASSIGN(TempDir dir, TempDir::create("catalog"));
  ASSERT_OK_AND_ASSIGN(auto catalog, ImageCatalog::open(dir.path()));
  Descriptor layer = describe(kMediaTypeOciLayer, "x");
  EXPECT_THAT(catalog->tag("ok", layer),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("not a manifest or index")));
  Descriptor m = describe(kMediaTypeOciManifest, "{}");
  EXPECT_THAT(catalog->tag("Bad Name", m), StatusIs(StatusCode::kInvalidArgument));
}

TEST(CatalogTest, CorruptFileIsAClearError) {
  ASSERT_OK_AND_ASSIGN(TempDir dir, TempDir::create("catalog"));
  ASSERT_OK(writeFileDurable(dir.path() / "images.json", "{\"images\": 5}"));
  EXPECT_THAT(ImageCatalog::open(dir.path()),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("images.json")));
}

TEST(CatalogTest, ConcurrentTaggersLoseNothing) {
  ASSERT_OK_AND_ASSIGN(TempDir dir, TempDir::create("catalog"));
  store::MemoryBlobStore blobs;
  Descriptor a = putImage(blobs, "layer-a");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      // Separate catalog objects stand for separate processes: only the file lock serialises.
      auto catalog = ImageCatalog::open(dir.path());
      ASSERT_TRUE(catalog.ok());
      for (int i = 0; i < 10; ++i) {
        EXPECT_OK((*catalog)->tag("img" + std::to_string(t) + "-" + std::to_string(i), a));
      }
    });
  }
  for (auto& t : threads)
    t.join();
  ASSERT_OK_AND_ASSIGN(auto catalog, ImageCatalog::open(dir.path()));
  ASSERT_OK_AND_ASSIGN(auto entries, catalog->list());
  EXPECT_EQ(entries.size(), 40u);
}

TEST(ReachableBlobsTest, WalksManifestsAndIndexes) {
  store::MemoryBlobStore blobs;
  Digest layer, config;
  Descriptor m = putImage(blobs, "layer-a", &layer, &config);
  Digest layer2, config2;
  Descriptor m2 = putImage(blobs, "layer-b", &layer2, &config2);
  m2.platform = Platform{"arm64", "linux", "", "", {}};
  Index index;
  index.manifests = {m2, describe(kMediaTypeOciManifest, "absent")};
  std::string index_bytes = serialize(index);
  ASSERT_OK(store::writeBlob(blobs, index_bytes).status());
  Descriptor idx = describe(kMediaTypeOciIndex, index_bytes);
  ASSERT_OK_AND_ASSIGN(auto live, reachableBlobs(blobs, {m, idx}));
  EXPECT_THAT(
      live, UnorderedElementsAre(m.digest, layer, config, idx.digest, m2.digest, layer2, config2));
}

TEST(LoadImageTest, LoadsAndChecksDiffIds) {
  store::MemoryBlobStore blobs;
  Descriptor m = putImage(blobs, "layer-a");
  ASSERT_OK_AND_ASSIGN(LoadedImage img, loadImage(blobs, m));
  EXPECT_EQ(img.manifest.layers.size(), 1u);
  EXPECT_EQ(img.config.architecture, "amd64");
  EXPECT_THAT(loadImage(blobs, describe(kMediaTypeOciManifest, "missing")),
              StatusIs(StatusCode::kNotFound));
}

}  // namespace
}  // namespace cairn::oci

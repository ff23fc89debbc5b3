#include "cairn/oci/layout.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cairn/common/fs.h"
#include "cairn/oci/catalog.h"
#include "cairn/store/local_blob_store.h"
#include "cairn/store/memory_blob_store.h"
#include "cairn/testing/status_matchers.h"
#include "test_tar.h"

namespace cairn::oci {
namespace {

using ::cairn::testing::StatusIs;
using ::testing::HasSubstr;
using testing::TarEntry;

Descriptor putImage(store::BlobStore& blobs, const std::string& marker) {
  std::string layer =
      testing::makeTar({{"hello.txt", TarEntry::Type::kFile, marker}}, layer::Compression::kGzip);
  Descriptor layer_desc = describe(kMediaTypeOciLayerGzip, layer);
  EXPECT_OK(store::writeBlob(blobs, layer).status());
  ImageConfig config;
  config.architecture = "amd64";
  config.os = "linux";
  config.diff_ids = {
      Digest::ofBytes(testing::makeTar({{"hello.txt", TarEntry::Type::kFile, marker}}))};
  std::string config_bytes = serialize(config);
  EXPECT_OK(store::writeBlob(blobs, config_bytes).status());
  Manifest m;
  m.config = describe(kMediaTypeOciConfig, config_bytes);
  m.layers = {layer_desc};
  std::string manifest_bytes = serialize(m);
  EXPECT_OK(store::writeBlob(blobs, manifest_bytes).status());
  return describe(kMediaTypeOciManifest, manifest_bytes);
}

TEST(LayoutRefTest, Parses) {
  ASSERT_OK_AND_ASSIGN(LayoutRef r, parseLayoutRef("oci:/tmp/x:v1"));
  EXPECT_EQ(r.dir, "/tmp/x");
  EXPECT_EQ(r.tag, "v1");
  ASSERT_OK_AND_ASSIGN(LayoutRef r2, parseLayoutRef("oci:rel/dir"));
  EXPECT_EQ(r2.dir, "rel/dir");
  EXPECT_EQ(r2.tag, "");
  EXPECT_THAT(parseLayoutRef("docker://x"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(parseLayoutRef("oci:"), StatusIs(StatusCode::kInvalidArgument));
}

TEST(LayoutTest, ExportThenImportRoundTrips) {
  ASSERT_OK_AND_ASSIGN(TempDir tmp, TempDir::create("layout"));
  store::MemoryBlobStore src;
  Descriptor a = putImage(src, "a");
  Descriptor b = putImage(src, "b");
  auto dir = tmp.path() / "out";
  ASSERT_OK(exportLayout(src, a, dir, "v1"));
  ASSERT_OK(exportLayout(src, b, dir, "v2"));
  ASSERT_OK(exportLayout(src, b, dir, "v1"));  // retags v1
  ASSERT_OK_AND_ASSIGN(std::string layout, readFile(dir / "oci-layout"));
  EXPECT_EQ(layout, "{\"imageLayoutVersion\":\"1.0.0\"}");
  ASSERT_OK_AND_ASSIGN(std::string index_bytes, readFile(dir / "index.json"));
  ASSERT_OK_AND_ASSIGN(Index index, parseIndex(index_bytes));
  EXPECT_EQ(index.manifests.size(), 2u);

  ASSERT_OK_AND_ASSIGN(auto dst, store::LocalBlobStore::open(tmp.path() / "store"));
  ASSERT_OK_AND_ASSIGN(Descriptor got, importLayout(*dst, dir, "v1", Platform::host()));
  EXPECT_EQ(got, b);
  ASSERT_OK_AND_ASSIGN(LoadedImage img, loadImage(*dst, got));
  EXPECT_EQ(img.manifest.layers.size(), 1u);
  EXPECT_TRUE(dst->exists(img.manifest.layers[0].digest));

  EXPECT_THAT(importLayout(*dst, dir, "", Platform::host()),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("name one with oci:DIR:TAG")));
  EXPECT_THAT(importLayout(*dst, dir, "v9", Platform::host()),
              StatusIs(StatusCode::kNotFound, HasSubstr("it has: v2, v1")));
}

TEST(LayoutTest, ImportVerifiesBlobDigests) {
  ASSERT_OK_AND_ASSIGN(TempDir tmp, TempDir::create("layout"));
  store::MemoryBlobStore src;
  Descriptor a = putImage(src, "a");
  auto dir = tmp.path() / "out";
  ASSERT_OK(exportLayout(src, a, dir, "v1"));
  ASSERT_OK_AND_ASSIGN(LoadedImage img, loadImage(src, a));
  // Tamper with the layer blob.
  auto layer_path = dir / "blobs/sha256" / img.manifest.layers[0].digest.hex();
  std::filesystem::permissions(layer_path, std::filesystem::perms::owner_write,
                               std::filesystem::perm_options::add);
  ASSERT_OK(writeFileDurable(layer_path, "tampered"));
  store::MemoryBlobStore dst;
  EXPECT_THAT(importLayout(dst, dir, "v1", Platform::host()),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr(layer_path.string())));
  EXPECT_FALSE(dst.exists(a.digest));  // the manifest is never published without its blobs
}

TEST(LayoutTest, ImportResolvesIndexByPlatform) {
  ASSERT_OK_AND_ASSIGN(TempDir tmp, TempDir::create("layout"));
  store::MemoryBlobStore src;
  Descriptor amd = putImage(src, "amd");
  Descriptor arm = putImage(src, "arm");
  amd.platform = Platform{"amd64", "linux", "", "", {}};
  arm.platform = Platform{"arm64", "linux", "", "", {}};
  Index index;
  index.manifests = {arm, amd};
  std::string bytes = serialize(index);
  ASSERT_OK(store::writeBlob(src, bytes).status());
  auto dir = tmp.path() / "out";
  ASSERT_OK(exportLayout(src, describe(kMediaTypeOciIndex, bytes), dir, "multi"));
  store::MemoryBlobStore dst;
  ASSERT_OK_AND_ASSIGN(Descriptor got,
                       importLayout(dst, dir, "multi", *Platform::parse("linux/arm64")));
  EXPECT_EQ(got.digest, arm.digest);
  EXPECT_THAT(importLayout(dst, dir, "multi", *Platform::parse("linux/ppc64le")),
              StatusIs(StatusCode::kNotFound, HasSubstr("linux/arm64, linux/amd64")));
}

TEST(LayoutTest, NotALayoutIsAClearError) {
  ASSERT_OK_AND_ASSIGN(TempDir tmp, TempDir::create("layout"));
  store::MemoryBlobStore dst;
  EXPECT_THAT(importLayout(dst, tmp.path(), "", Platform::host()),
              StatusIs(StatusCode::kNotFound, HasSubstr("not an OCI image layout")));
  ASSERT_OK(writeFileDurable(tmp.path() / "oci-layout", "{\"imageLayoutVersion\":\"2.0\"}"));
  EXPECT_THAT(importLayout(dst, tmp.path(), "", Platform::host()),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("unsupported imageLayoutVersion")));
}

}  // namespace
}  // namespace cairn::oci

#include "cairn/oci/tar_image.h"

namespace cairn::oci {
namespace {

TEST(TarImageTest, MakesAOneLayerImage) {
  store::MemoryBlobStore blobs;
  std::string tar = testing::makeTar(
      {{"bin/", TarEntry::Type::kDir, "", 0755}, {"bin/sh", TarEntry::Type::kFile, "#!", 0755}});
  layer::StringSource source(tar);
  ImageConfig cfg = defaultConfig();
  ASSERT_OK_AND_ASSIGN(
      Descriptor m, createImageFromTar(blobs, source, cfg, layer::Compression::kZstd, "test tar"));
  ASSERT_OK_AND_ASSIGN(LoadedImage img, loadImage(blobs, m));
  ASSERT_EQ(img.manifest.layers.size(), 1u);
  EXPECT_EQ(img.manifest.layers[0].media_type, kMediaTypeOciLayerZstd);
  EXPECT_EQ(img.config.diff_ids[0], Digest::ofBytes(tar));
  EXPECT_EQ(img.config.history[0].created_by, "test tar");
  EXPECT_EQ(img.config.os, "linux");
  EXPECT_TRUE(blobs.exists(img.manifest.layers[0].digest));

  cfg.diff_ids.push_back(Digest::ofBytes("x"));
  layer::StringSource again(tar);
  EXPECT_THAT(createImageFromTar(blobs, again, cfg, layer::Compression::kGzip, "x"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("one-layer")));
}

}  // namespace
}  // namespace cairn::oci

#include "cairn/oci/recompress.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cairn/layer/stream.h"
#include "cairn/oci/catalog.h"
#include "cairn/oci/tar_image.h"
#include "cairn/store/memory_blob_store.h"
#include "cairn/testing/status_matchers.h"
#include "test_tar.h"

namespace cairn::oci {
namespace {

using ::cairn::oci::testing::makeTar;
using ::cairn::oci::testing::TarEntry;
using ::cairn::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

const std::vector<TarEntry> kTree = {
    {"etc/", TarEntry::Type::kDir, "", 0755},
    {"etc/hostname", TarEntry::Type::kFile, "cairn\n", 0644},
    {"usr/bin/tool", TarEntry::Type::kFile, std::string(200000, 't'), 0755},
};

Descriptor makeImage(store::BlobStore& blobs, layer::Compression c) {
  std::string tar = makeTar(kTree);
  layer::StringSource source(tar);
  ImageConfig config = defaultConfig();
  auto d = createImageFromTar(blobs, source, config, c, "test");
  EXPECT_OK(d.status());
  return *d;
}

// The layer's bytes decompressed, as the diff id covers them.
std::string uncompressedLayer(store::BlobStore& blobs, const Descriptor& layer_desc) {
  auto stream = blobs.openRead(layer_desc.digest);
  EXPECT_OK(stream.status());
  layer::FunctionSource src(
      [&](void* buf, std::size_t n) -> Result<std::size_t> { return (*stream)->read(buf, n); });
  auto tar = layer::makeAutoDecompressor(&src);
  EXPECT_OK(tar.status());
  std::string out;
  char buf[65536];
  for (;;) {
    auto n = (*tar)->read(buf, sizeof buf);
    EXPECT_OK(n.status());
    if (!n.ok() || *n == 0) return out;
    out.append(buf, *n);
  }
}

TEST(RecompressTest, ZstdLayersBecomeGzipWithTheSameDiffIds) {
  store::MemoryBlobStore blobs;
  Descriptor zstd = makeImage(blobs, layer::Compression::kZstd);
  ASSERT_OK_AND_ASSIGN(LoadedImage before, loadImage(blobs, zstd));
  ASSERT_EQ(before.manifest.layers[0].media_type, kMediaTypeOciLayerZstd);

  ASSERT_OK_AND_ASSIGN(Recompressed r, recompressImage(blobs, zstd, layer::Compression::kGzip));
  EXPECT_EQ(r.converted, 1u);
  EXPECT_EQ(r.kept, 0u);
  EXPECT_NE(r.manifest.digest, zstd.digest);
  EXPECT_EQ(r.manifest.media_type, kMediaTypeOciManifest);
  ASSERT_OK_AND_ASSIGN(LoadedImage after, loadImage(blobs, r.manifest));
  ASSERT_EQ(after.manifest.layers.size(), 1u);
  EXPECT_EQ(after.manifest.layers[0].media_type, kMediaTypeOciLayerGzip);
  EXPECT_EQ(after.manifest.config, before.manifest.config) << "the config is unchanged";
  EXPECT_EQ(after.config.diff_ids, before.config.diff_ids);
  std::string tar = uncompressedLayer(blobs, after.manifest.layers[0]);
  EXPECT_EQ(Digest::ofBytes(tar), after.config.diff_ids[0]);
  EXPECT_EQ(tar, makeTar(kTree));

  // Already gzip: nothing to do, the same descriptor back.
  ASSERT_OK_AND_ASSIGN(Recompressed again,
                       recompressImage(blobs, r.manifest, layer::Compression::kGzip));
  EXPECT_EQ(again.converted, 0u);
  EXPECT_EQ(again.kept, 1u);
  EXPECT_EQ(again.manifest, r.manifest);

  // And back to zstd: the same layer bytes as the original (zstd is deterministic here).
  ASSERT_OK_AND_ASSIGN(Recompressed back,
                       recompressImage(blobs, r.manifest, layer::Compression::kZstd));
  EXPECT_EQ(back.manifest.digest, zstd.digest);
}

TEST(RecompressTest, DockerManifestsGetDockerLayerTypes) {
  store::MemoryBlobStore blobs;
  Descriptor oci = makeImage(blobs, layer::Compression::kZstd);
  ASSERT_OK_AND_ASSIGN(LoadedImage img, loadImage(blobs, oci));
  Manifest m = img.manifest;
  m.media_type = std::string(kMediaTypeDockerManifest);
  m.layers[0].media_type = "application/vnd.docker.image.rootfs.diff.tar.zstd";
  std::string bytes = serialize(m);
  ASSERT_OK(store::writeBlob(blobs, bytes).status());
  Descriptor docker = describe(kMediaTypeDockerManifest, bytes);

  ASSERT_OK_AND_ASSIGN(Recompressed r, recompressImage(blobs, docker, layer::Compression::kGzip));
  EXPECT_EQ(r.manifest.media_type, kMediaTypeDockerManifest);
  ASSERT_OK_AND_ASSIGN(LoadedImage after, loadImage(blobs, r.manifest));
  EXPECT_EQ(after.manifest.layers[0].media_type, kMediaTypeDockerLayerGzip);
}

TEST(RecompressTest, ALayerThatDoesNotMatchItsDiffIdIsAnError) {
  store::MemoryBlobStore blobs;
  Descriptor d = makeImage(blobs, layer::Compression::kZstd);
  ASSERT_OK_AND_ASSIGN(LoadedImage img, loadImage(blobs, d));
  // A config that claims another diff id for the same layer.
  ImageConfig config = img.config;
  config.diff_ids[0] = Digest::ofBytes("something else");
  std::string config_bytes = serialize(config);
  ASSERT_OK(store::writeBlob(blobs, config_bytes).status());
  Manifest m = img.manifest;
  m.config = describe(kMediaTypeOciConfig, config_bytes);
  std::string bytes = serialize(m);
  ASSERT_OK(store::writeBlob(blobs, bytes).status());

  EXPECT_THAT(
      recompressImage(blobs, describe(kMediaTypeOciManifest, bytes), layer::Compression::kGzip),
      StatusIs(StatusCode::kInvalidArgument, AllOf(HasSubstr("recompress layer 0"),
                                                   HasSubstr(img.manifest.layers[0].digest.str()),
                                                   HasSubstr("but the config's diff id is"))));
}

TEST(RecompressTest, IndexesAreRefusedClearly) {
  store::MemoryBlobStore blobs;
  Index index;
  std::string bytes = serialize(index);
  ASSERT_OK(store::writeBlob(blobs, bytes).status());
  EXPECT_THAT(
      recompressImage(blobs, describe(kMediaTypeOciIndex, bytes), layer::Compression::kGzip),
      StatusIs(StatusCode::kFailedPrecondition, HasSubstr("only single-platform image manifests")));
}

}  // namespace
}  // namespace cairn::oci

// The shared busybox fixtures: the rootfs has its applets and users, the stored image is a
// loadable one-layer image under its name with the asked-for config and compression.
#include "cairn/testing/busybox_image.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cairn/common/fs.h"
#include "cairn/testing/status_matchers.h"

namespace cairn::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class BusyboxFixtureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The only prerequisite; scripts/install-deps installs busybox-static, so CI has it.
    if (busyboxPath() == nullptr) GTEST_SKIP() << "busybox-static is not installed";
    ASSERT_OK_AND_ASSIGN(TempDir d, TempDir::create("testing-busybox"));
    dir_.emplace(std::move(d));
  }
  std::optional<TempDir> dir_;
};

TEST_F(BusyboxFixtureTest, RootfsHasBusyboxAppletsUsersAndStickyTmp) {
  fs::path root = dir_->path() / "rootfs";
  ASSERT_OK(makeBusyboxRootfs(root, {"date", "uname"}));
  EXPECT_TRUE(fs::is_regular_file(root / "bin/busybox"));
  for (const char* applet : {"sh", "sleep", "mount", "date", "uname"}) {
    EXPECT_TRUE(fs::is_symlink(root / "bin" / applet)) << applet;
    EXPECT_EQ(fs::read_symlink(root / "bin" / applet), "busybox") << applet;
  }
  EXPECT_FALSE(fs::is_symlink(root / "bin/sha256sum"));
  ASSERT_OK_AND_ASSIGN(std::string passwd, readFile(root / "etc/passwd"));
  EXPECT_THAT(passwd, HasSubstr("app:x:1000:1000:"));
  EXPECT_NE(fs::status(root / "tmp").permissions() & fs::perms::sticky_bit, fs::perms::none);
  // Made twice in the same place: still fine (the links exist already).
  EXPECT_OK(makeBusyboxRootfs(root));
}

TEST_F(BusyboxFixtureTest, RootfsUnderAFileIsAClearError) {
  ASSERT_OK(writeFileDurable(dir_->path() / "file", "x"));
  EXPECT_THAT(makeBusyboxRootfs(dir_->path() / "file" / "rootfs"),
              StatusIs(StatusCode::kInternal, HasSubstr("file/rootfs")));
}

TEST_F(BusyboxFixtureTest, StoredImageIsTaggedAndLoadable) {
  fs::path data = dir_->path() / "data";
  ASSERT_OK_AND_ASSIGN(OneLayerImage image, storeBusyboxImage(data, dir_->path() / "rootfs"));
  ASSERT_OK_AND_ASSIGN(auto blobs, store::LocalBlobStore::open(data));
  ASSERT_OK_AND_ASSIGN(auto catalog, oci::ImageCatalog::open(data));
  ASSERT_OK_AND_ASSIGN(oci::CatalogEntry entry, catalog->get("busybox:test"));
  EXPECT_EQ(entry.descriptor.digest, image.manifest.digest);
  EXPECT_EQ(image.manifest.digest, Digest::ofBytes(image.manifest_json));
  ASSERT_OK_AND_ASSIGN(oci::LoadedImage loaded, oci::loadImage(*blobs, entry.descriptor));
  ASSERT_EQ(loaded.manifest.layers.size(), 1u);
  EXPECT_EQ(loaded.manifest.layers[0].digest, image.layer.digest);
  EXPECT_EQ(loaded.manifest.layers[0].media_type, std::string(oci::kMediaTypeOciLayerZstd));
  EXPECT_EQ(loaded.config.architecture, oci::Platform::host().architecture);
  ASSERT_TRUE(loaded.config.config.has_value());
  EXPECT_THAT(loaded.config.config->env, ElementsAre("PATH=/bin"));
  EXPECT_EQ(loaded.config.config->cmd, std::vector<std::string>{"sh"});
  EXPECT_THAT(loaded.config.diff_ids, ElementsAre(image.layer.diff_id));
  ASSERT_OK_AND_ASSIGN(std::string config_json,
                       blobs->readAll(loaded.manifest.config.digest, 1 << 20));
  EXPECT_EQ(config_json, image.config_json);
}

TEST_F(BusyboxFixtureTest, OptionsNameConfigCompressionAndCustomize) {
  fs::path data = dir_->path() / "data";
  oci::ContainerConfig container;
  container.env = {"PATH=/bin", "GREETING=hi"};
  container.entrypoint = std::vector<std::string>{"/bin/sleep"};
  BusyboxImageOptions options{.name = "tools/busybox:gz",
                              .container = container,
                              .extra_applets = {"sha256sum"},
                              .compression = layer::Compression::kGzip,
                              .customize = [](const fs::path& root) {
                                return writeFileDurable(root / "etc/marker", "m\n");
                              }};
  ASSERT_OK_AND_ASSIGN(OneLayerImage a, storeBusyboxImage(data, dir_->path() / "a", options));
  EXPECT_TRUE(fs::is_symlink(dir_->path() / "a/bin/sha256sum"));
  EXPECT_EQ(a.layer.media_type, std::string(oci::kMediaTypeOciLayerGzip));
  ASSERT_OK_AND_ASSIGN(auto catalog, oci::ImageCatalog::open(data));
  ASSERT_OK_AND_ASSIGN(auto blobs, store::LocalBlobStore::open(data));
  ASSERT_OK_AND_ASSIGN(oci::CatalogEntry entry, catalog->get("tools/busybox:gz"));
  ASSERT_OK_AND_ASSIGN(oci::LoadedImage loaded, oci::loadImage(*blobs, entry.descriptor));
  EXPECT_EQ(loaded.config.config, container);

  // Without the marker the layer differs; with no name nothing more is tagged.
  ASSERT_OK_AND_ASSIGN(OneLayerImage b, storeBusyboxImage(data, dir_->path() / "b", {.name = ""}));
  EXPECT_NE(a.layer.diff_id, b.layer.diff_id);
  EXPECT_TRUE(blobs->exists(b.manifest.digest));
  ASSERT_OK_AND_ASSIGN(auto entries, catalog->list());
  EXPECT_EQ(entries.size(), 1u);
}

TEST_F(BusyboxFixtureTest, FailingCustomizeStopsBeforeAnythingIsTagged) {
  fs::path data = dir_->path() / "data";
  auto r = storeBusyboxImage(data, dir_->path() / "rootfs", {.customize = [](const fs::path&) {
                               return invalidArgument("no marker for you");
                             }});
  EXPECT_THAT(r, StatusIs(StatusCode::kInvalidArgument, HasSubstr("no marker")));
  ASSERT_OK_AND_ASSIGN(auto catalog, oci::ImageCatalog::open(data));
  EXPECT_THAT(catalog->get("busybox:test"), StatusIs(StatusCode::kNotFound));
}

}  // namespace
}  // namespace cairn::testing

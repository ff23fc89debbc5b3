// Overlay mounts and lower-dir flattening on the real kernel (root: mount, mknod, trusted.*).
#include "cairn/runtime/overlay.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <fstream>

#include "cairn/common/fs.h"
#include "cairn/testing/status_matchers.h"

namespace cairn::runtime {
namespace {

namespace fs = std::filesystem;
using ::cairn::testing::StatusIs;

class OverlayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root for mount, mknod and trusted.* xattrs";
    ASSERT_OK_AND_ASSIGN(dir_, TempDir::create("cairn-overlay"));
  }
  void TearDown() override {
    if (dir_) {
      ASSERT_OK(unmountAllUnder(dir_->path()));
    }
  }
  fs::path layer(int i) {
    return dir_->path() / "layers" / ("layer-with-a-longish-name-" + std::to_string(i));
  }
  void write(const fs::path& p, const std::string& text) {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }
  void whiteout(const fs::path& p) {
    fs::create_directories(p.parent_path());
    ASSERT_EQ(mknod(p.c_str(), S_IFCHR | 0, makedev(0, 0)), 0);
  }
  std::string read(const fs::path& p) { return readFile(p).valueOr("<missing>"); }

  std::optional<TempDir> dir_;
};

TEST_F(OverlayTest, MountsUnmountsAndWritesToUpper) {
  write(layer(1) / "a.txt", "one");
  write(layer(2) / "a.txt", "two");
  fs::path upper = dir_->path() / "upper", work = dir_->path() / "work",
           target = dir_->path() / "mnt";
  for (const auto& d : {upper, work, target})
    fs::create_directories(d);
  ASSERT_OK(mountOverlay({{layer(2), layer(1)}, upper, work}, target));
  EXPECT_EQ(read(target / "a.txt"), "two");  // newest first wins
  write(target / "b.txt", "new");
  ASSERT_OK_AND_ASSIGN(auto mounts, mountsUnder(dir_->path()));
  EXPECT_EQ(mounts.size(), 1u);
  ASSERT_OK(unmountReliably(target));
  ASSERT_OK(unmountReliably(target));  // not mounted any more: still OK
  EXPECT_EQ(read(upper / "b.txt"), "new");
  EXPECT_FALSE(fs::exists(target / "a.txt"));
}

TEST_F(OverlayTest, ADiscardedUpperIsMountedVolatile) {
  write(layer(1) / "a.txt", "one");
  fs::path upper = dir_->path() / "upper", work = dir_->path() / "work",
           target = dir_->path() / "mnt";
  for (const auto& d : {upper, work, target})
    fs::create_directories(d);
  OverlayMount overlay{{layer(1)}, upper, work};
  overlay.discard_upper = true;
  ASSERT_OK(mountOverlay(overlay, target));
  write(target / "b.txt", "new");
  // The kernel took the option (it shows in the mount's super options)…
  ASSERT_OK_AND_ASSIGN(std::string mountinfo, readFile("/proc/self/mountinfo"));
  std::size_t at = mountinfo.find(" " + target.string() + " ");
  ASSERT_NE(at, std::string::npos) << mountinfo;
  std::string line = mountinfo.substr(at, mountinfo.find('\n', at) - at);
  EXPECT_NE(line.find("volatile"), std::string::npos) << line;
  // …and the overlay still behaves as one: reads from the lower, writes to the upper.
  EXPECT_EQ(read(target / "a.txt"), "one");
  ASSERT_OK(unmountReliably(target));
  EXPECT_EQ(read(upper / "b.txt"), "new");
  // overlayfs marks the work dir so that this upper is never mounted again after a crash.
  EXPECT_TRUE(fs::exists(work / "work" / "incompat" / "volatile"));
}

TEST_F(OverlayTest, SingleReadOnlyLowerIsABindMount) {
  write(layer(1) / "a.txt", "one");
  fs::path target = dir_->path() / "mnt";
  fs::create_directories(target);
  ASSERT_OK(mountOverlay({{layer(1)}, {}, {}}, target));
  EXPECT_EQ(read(target / "a.txt"), "one");
  std::ofstream(target / "x.txt") << "x";
  EXPECT_FALSE(fs::exists(layer(1) / "x.txt"));
}

TEST_F(OverlayTest, MountFailureNamesTheTarget) {
  EXPECT_THAT(mountOverlay({{layer(1), layer(2)}, {}, {}}, dir_->path() / "absent"),
              StatusIs(StatusCode::kNotFound, ::testing::HasSubstr("absent")));
}

TEST_F(OverlayTest, MergeAppliesWhiteoutsOpaqueDirsAndHardlinks) {
  write(layer(1) / "keep.txt", "keep");
  write(layer(1) / "gone.txt", "gone");
  write(layer(1) / "dir/old.txt", "old");
  write(layer(1) / "replaced/x", "x");
  ASSERT_EQ(symlink("keep.txt", (layer(1) / "link").c_str()), 0);
  whiteout(layer(2) / "gone.txt");
  write(layer(2) / "dir/new.txt", "new");
  write(layer(2) / "replaced/y", "y");
  ASSERT_EQ(setxattr((layer(2) / "replaced").c_str(), "trusted.overlay.opaque", "y", 1, 0), 0);
  ASSERT_EQ(chmod((layer(2) / "dir").c_str(), 0700), 0);
  fs::path merged = dir_->path() / "merged";
  fs::create_directories(merged);
  ASSERT_OK(mergeLayerInto(layer(1), merged));
  ASSERT_OK(mergeLayerInto(layer(2), merged));
  EXPECT_EQ(read(merged / "keep.txt"), "keep");
  EXPECT_FALSE(fs::exists(merged / "gone.txt"));
  EXPECT_EQ(read(merged / "dir/old.txt"), "old");
  EXPECT_EQ(read(merged / "dir/new.txt"), "new");
  EXPECT_FALSE(fs::exists(merged / "replaced/x")) << "opaque dir must hide older content";
  EXPECT_EQ(read(merged / "replaced/y"), "y");
  EXPECT_EQ(fs::read_symlink(merged / "link"), "keep.txt");
  struct stat a {
  }, b{};
  ASSERT_EQ(stat((merged / "keep.txt").c_str(), &a), 0);
  ASSERT_EQ(stat((layer(1) / "keep.txt").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino) << "regular files are hard-linked, not copied";
  ASSERT_EQ(stat((merged / "dir").c_str(), &a), 0);
  EXPECT_EQ(a.st_mode & 07777, 0700u) << "the newer layer's directory metadata wins";
  EXPECT_THAT(mergeLayerInto(dir_->path() / "nope", merged), StatusIs(StatusCode::kNotFound));
}

TEST_F(OverlayTest, DeepStacksAreFlattenedAndStillMount) {
  constexpr int kLayers = 150;
  std::vector<fs::path> lowers;  // newest first
  for (int i = 0; i < kLayers; ++i)
    write(layer(i) / ("f" + std::to_string(i)), std::to_string(i));
  write(layer(0) / "shared.txt", "from 0");
  write(layer(3) / "shared.txt", "from 3");
  whiteout(layer(7) / "f1");
  for (int i = kLayers - 1; i >= 0; --i)
    lowers.push_back(layer(i));

  ASSERT_OK_AND_ASSIGN(auto flat, flattenLowers(lowers, dir_->path() / "merged-cache", 100));
  EXPECT_LE(flat.size(), 100u);
  EXPECT_EQ(flat.front(), layer(kLayers - 1));
  ASSERT_OK_AND_ASSIGN(auto again, flattenLowers(lowers, dir_->path() / "merged-cache", 100));
  EXPECT_EQ(again, flat) << "the merged dir is reused";

  fs::path upper = dir_->path() / "upper", work = dir_->path() / "work",
           target = dir_->path() / "mnt";
  for (const auto& d : {upper, work, target})
    fs::create_directories(d);
  ASSERT_OK(mountOverlay({flat, upper, work}, target));
  for (int i = 0; i < kLayers; ++i) {
    if (i == 1) continue;
    EXPECT_EQ(read(target / ("f" + std::to_string(i))), std::to_string(i));
  }
  EXPECT_FALSE(fs::exists(target / "f1")) << "whiteout in a merged layer applies";
  EXPECT_EQ(read(target / "shared.txt"), "from 3");
  ASSERT_OK(unmountReliably(target));
}

TEST_F(OverlayTest, LongOptionStringsUseTheNewMountApi) {
  // 90 lowers with long paths exceed one page of mount options but not the stack limit.
  std::vector<fs::path> lowers;
  for (int i = 89; i >= 0; --i) {
    write(layer(i) / ("f" + std::to_string(i)), "x");
    lowers.push_back(layer(i));
  }
  ASSERT_OK_AND_ASSIGN(std::string options, overlayMountOptions({lowers, {}, {}}));
  ASSERT_GT(options.size(), kMaxOverlayOptionBytes);
  fs::path target = dir_->path() / "mnt";
  fs::create_directories(target);
  Status s = mountOverlay({lowers, {}, {}}, target);
  if (s.code() == StatusCode::kInvalidArgument) GTEST_SKIP() << "kernel < 6.8: " << s;
  ASSERT_OK(s);
  EXPECT_TRUE(fs::exists(target / "f0"));
  EXPECT_TRUE(fs::exists(target / "f89"));
}

}  // namespace
}  // namespace cairn::runtime

// Integration (root): real overlayfs. Changes made through an overlay mount are exported from
// the upper dir with createLayerTar, applied back both as an overlay layer (kOverlay, then
// mounted as a lower dir) and flattened (kFlatten), and every view must agree: deletions,
// opaque directories, owners, modes, capabilities, devices.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "cairn/common/fs.h"
#include "cairn/layer/apply.h"
#include "cairn/layer/diff.h"
#include "cairn/testing/status_matchers.h"
#include "tar_builder.h"

namespace cairn::layer {
namespace {

namespace fs = std::filesystem;

// A file capability blob (VFS_CAP_REVISION_2, cap_net_bind_service=ep), as setcap writes it.
const std::string kCapNetBind(
    "\x01\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    "\x00\x00\x00\x00",
    20);

class Mount {
 public:
  Mount(const std::string& lower, const fs::path& upper, const fs::path& work,
        const fs::path& merged) {
    std::string opts = "lowerdir=" + lower;
    if (!upper.empty()) opts += ",upperdir=" + upper.string() + ",workdir=" + work.string();
    ok_ = ::mount("overlay", merged.c_str(), "overlay", 0, opts.c_str()) == 0;
    err_ = errno;
    merged_ = merged;
  }
  ~Mount() {
    if (ok_) ::umount2(merged_.c_str(), MNT_DETACH);
  }
  bool ok() const { return ok_; }
  int err() const { return err_; }

 private:
  bool ok_ = false;
  int err_ = 0;
  fs::path merged_;
};

struct Node {
  mode_t mode;
  uid_t uid;
  gid_t gid;
  std::string content;  // file content or symlink target
  dev_t rdev;
  std::string cap;
  bool operator==(const Node&) const = default;
};

std::map<std::string, Node> snapshot(const fs::path& root) {
  std::map<std::string, Node> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    struct stat st {};
    EXPECT_EQ(::lstat(it->path().c_str(), &st), 0);
    Node n{st.st_mode, st.st_uid, st.st_gid, "", 0, ""};
    if (S_ISREG(st.st_mode)) n.content = *readFile(it->path());
    if (S_ISLNK(st.st_mode)) n.content = fs::read_symlink(it->path()).string();
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) n.rdev = st.st_rdev;
    char cap[64];
    ssize_t len = ::lgetxattr(it->path().c_str(), "security.capability", cap, sizeof cap);
    if (len > 0) n.cap.assign(cap, static_cast<std::size_t>(len));
    out[it->path().lexically_relative(root).string()] = n;
  }
  return out;
}

class OverlayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "overlay mounts, mknod and chown need root";
    auto dir = TempDir::create("overlay-test");
    ASSERT_OK(dir);
    tmp_ = std::make_unique<TempDir>(std::move(dir).value());
    for (const char* d : {"lower", "upper", "work", "merged", "layer", "merged2", "flat"}) {
      fs::create_directories(tmp_->path() / d);
    }
    fs::path lower = tmp_->path() / "lower";
    fs::create_directories(lower / "etc");
    fs::create_directories(lower / "opaque/sub");
    fs::create_directories(lower / "gone-dir/deep");
    ASSERT_OK(writeFileDurable(lower / "etc/keep", "keep"));
    ASSERT_OK(writeFileDurable(lower / "etc/remove-me", "bye"));
    ASSERT_OK(writeFileDurable(lower / "opaque/old", "old"));
    ASSERT_OK(writeFileDurable(lower / "opaque/sub/older", "older"));
    ASSERT_OK(writeFileDurable(lower / "gone-dir/deep/x", "x"));
  }

  fs::path p(const char* rel) { return tmp_->path() / rel; }

  std::unique_ptr<TempDir> tmp_;
};

TEST_F(OverlayTest, UpperDirExportsAndReappliesIdentically) {
  {
    Mount m(p("lower").string(), p("upper"), p("work"), p("merged"));
    ASSERT_TRUE(m.ok()) << "mount overlay: " << std::strerror(m.err());
    fs::path mg = p("merged");
    fs::remove(mg / "etc/remove-me");
    fs::remove_all(mg / "gone-dir");
    fs::remove_all(mg / "opaque");
    fs::create_directories(mg / "opaque");  // now an opaque dir in the upper
    ASSERT_OK(writeFileDurable(mg / "opaque/new", "new"));
    ASSERT_OK(writeFileDurable(mg / "bin-ping", "elf", 0755));
    ASSERT_EQ(::setxattr((mg / "bin-ping").c_str(), "security.capability", kCapNetBind.data(),
                         kCapNetBind.size(), 0),
              0);
    ASSERT_OK(writeFileDurable(mg / "owned", "o"));
    ASSERT_EQ(::chown((mg / "owned").c_str(), 1234, 5678), 0);
    ASSERT_OK(writeFileDurable(mg / "suid", "s", 0755));
    ASSERT_EQ(::chmod((mg / "suid").c_str(), 04755), 0);
    ASSERT_EQ(::mknod((mg / "null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
    fs::create_symlink("etc/keep", mg / "link");
    ASSERT_OK(writeFileDurable(mg / "etc/keep2", "k2"));
    fs::create_hard_link(mg / "etc/keep2", mg / "etc/keep2-link");
  }
  std::map<std::string, Node> expected;
  {
    Mount m(p("upper").string() + ":" + p("lower").string(), {}, {}, p("merged"));
    ASSERT_TRUE(m.ok()) << std::strerror(m.err());
    expected = snapshot(p("merged"));
  }
  EXPECT_EQ(expected.count("etc/remove-me"), 0u);
  EXPECT_EQ(expected.count("opaque/old"), 0u);
  EXPECT_EQ(expected.count("gone-dir"), 0u);
  ASSERT_EQ(expected.count("bin-ping"), 1u);
  EXPECT_EQ(expected["bin-ping"].cap, kCapNetBind);

  std::string tar;
  StringSink sink(&tar);
  ASSERT_OK_AND_ASSIGN(DiffReport dr, createLayerTar(p("upper"), sink));
  EXPECT_GT(dr.entries, 8u);
  // The whiteouts are in the tar as OCI entries.
  EXPECT_NE(tar.find("etc/.wh.remove-me"), std::string::npos);
  EXPECT_NE(tar.find(".wh.gone-dir"), std::string::npos);
  EXPECT_NE(tar.find("opaque/.wh..wh..opq"), std::string::npos);

  ApplyOptions overlay_opts;
  overlay_opts.devices = DevicePolicy::kAllow;
  StringSource src(tar);
  ASSERT_OK_AND_ASSIGN(ApplyReport ar, applyLayerTar(src, p("layer"), overlay_opts));
  EXPECT_EQ(ar.whiteouts, 3u);
  {
    Mount m(p("layer").string() + ":" + p("lower").string(), {}, {}, p("merged2"));
    ASSERT_TRUE(m.ok()) << std::strerror(m.err());
    EXPECT_EQ(snapshot(p("merged2")), expected);
  }

  // Flattened: copy the lower tree, apply the tar on it with whiteouts as removals.
  fs::copy(p("lower"), p("flat"), fs::copy_options::recursive);
  ApplyOptions flat_opts = overlay_opts;
  flat_opts.whiteouts = WhiteoutMode::kFlatten;
  StringSource src2(tar);
  ASSERT_OK(applyLayerTar(src2, p("flat"), flat_opts));
  std::map<std::string, Node> flat = snapshot(p("flat"));
  // The flat root's own dirs came from fs::copy (root-owned, default modes): compare entries.
  std::set<std::string> flat_names, expected_names;
  for (auto& [k, v] : flat)
    flat_names.insert(k);
  for (auto& [k, v] : expected)
    expected_names.insert(k);
  EXPECT_EQ(flat_names, expected_names);
  for (const char* f : {"bin-ping", "owned", "suid", "null", "link", "opaque/new"}) {
    EXPECT_EQ(flat[f], expected[f]) << f;
  }
}

TEST_F(OverlayTest, LayerDiffKeepsOverlayWhiteoutsAsLowerDirs) {
  // A tar with whiteouts applied in overlay mode produces overlay's own markers.
  std::string tar;
  {
    // Build the tar from a hand-made upper dir: whiteout device + opaque xattr.
    fs::path up = p("upper");
    ASSERT_EQ(::mknod((up / "gone").c_str(), S_IFCHR | 0, makedev(0, 0)), 0);
    fs::create_directories(up / "op");
    ASSERT_EQ(::setxattr((up / "op").c_str(), "trusted.overlay.opaque", "y", 1, 0), 0);
    StringSink sink(&tar);
    ASSERT_OK(createLayerTar(up, sink));
  }
  StringSource src(tar);
  ASSERT_OK(applyLayerTar(src, p("layer")));
  struct stat st {};
  ASSERT_EQ(::lstat(p("layer/gone").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  char v[4];
  EXPECT_EQ(::lgetxattr(p("layer/op").c_str(), "trusted.overlay.opaque", v, sizeof v), 1);
  EXPECT_EQ(v[0], 'y');
}

TEST_F(OverlayTest, TarXattrsCannotForgeOverlayMarkers) {
  // A hostile tar that sets overlay's xattrs directly gets them dropped; others are kept.
  testing::TarBuilder::Entry d;
  d.path = "d/";
  d.type = AE_IFDIR;
  d.perm = 0755;
  d.xattrs = {
      {"trusted.overlay.opaque", "y"}, {"trusted.overlay.redirect", "/etc"}, {"user.note", "kept"}};
  std::string tar = testing::TarBuilder().add(d).build();
  StringSource src(tar);
  ASSERT_OK(applyLayerTar(src, p("layer")));
  char v[16];
  EXPECT_LT(::lgetxattr(p("layer/d").c_str(), "trusted.overlay.opaque", v, sizeof v), 0);
  EXPECT_LT(::lgetxattr(p("layer/d").c_str(), "trusted.overlay.redirect", v, sizeof v), 0);
  EXPECT_EQ(::lgetxattr(p("layer/d").c_str(), "user.note", v, sizeof v), 4);
}

}  // namespace
}  // namespace cairn::layer

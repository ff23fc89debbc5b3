// applyLayerTar on ordinary and hostile tars (generated here with libarchive's writer). Every
// hostile case checks that nothing appeared or changed outside the target.
#include "cairn/layer/apply.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <set>

#include "cairn/common/fs.h"
#include "cairn/testing/status_matchers.h"
#include "tar_builder.h"

namespace cairn::layer {
namespace {

using ::cairn::layer::testing::TarBuilder;
using ::cairn::testing::StatusIs;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

class ApplyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::create("apply-test");
    ASSERT_OK(dir);
    tmp_ = std::make_unique<TempDir>(std::move(dir).value());
    root_ = tmp_->path() / "root";
    outside_ = tmp_->path() / "outside";
    fs::create_directories(root_);
    fs::create_directories(outside_);
    ASSERT_OK(writeFileDurable(outside_ / "secret", "original"));
    options_.preserve_owner = ::geteuid() == 0;
    options_.whiteouts = WhiteoutMode::kFlatten;
  }

  Result<ApplyReport> apply(const std::string& tar) {
    StringSource src(tar);
    return applyLayerTar(src, root_, options_);
  }

  // Everything under tmp_ that is not under root_: must stay {outside, outside/secret}.
  void expectOutsideUntouched() {
    std::set<std::string> seen;
    for (auto it = fs::recursive_directory_iterator(tmp_->path());
         it != fs::recursive_directory_iterator(); ++it) {
      fs::path rel = it->path().lexically_relative(tmp_->path());
      if (*rel.begin() == "root") {
        it.disable_recursion_pending();
        continue;
      }
      seen.insert(rel.string());
    }
    EXPECT_EQ(seen, (std::set<std::string>{"outside", "outside/secret"}));
    EXPECT_EQ(*readFile(outside_ / "secret"), "original");
  }

  std::unique_ptr<TempDir> tmp_;
  fs::path root_, outside_;
  ApplyOptions options_;
};

TEST_F(ApplyTest, OrdinaryEntries) {
  std::string tar = TarBuilder()
                        .dir("etc/")
                        .file("etc/hostname", "box\n")
                        .file("usr/bin/tool", "#!/bin/sh\n", 0755)  // parent dirs implied
                        .symlink("bin", "usr/bin")
                        .hardlink("usr/bin/tool2", "usr/bin/tool")
                        .build();
  ASSERT_OK_AND_ASSIGN(ApplyReport r, apply(tar));
  EXPECT_EQ(r.entries, 5u);
  EXPECT_EQ(r.files, 2u);
  EXPECT_EQ(*readFile(root_ / "etc/hostname"), "box\n");
  EXPECT_EQ(fs::read_symlink(root_ / "bin"), "usr/bin");
  EXPECT_EQ(*readFile(root_ / "bin/tool"), "#!/bin/sh\n");
  struct stat a {
  }, b{};
  ASSERT_EQ(::stat((root_ / "usr/bin/tool").c_str(), &a), 0);
  ASSERT_EQ(::stat((root_ / "usr/bin/tool2").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_mode & 07777, 0755u);
  EXPECT_EQ(a.st_mtim.tv_sec, 1700000000);
}

TEST_F(ApplyTest, ModesIncludingSpecialBitsAndReadOnlyDirs) {
  TarBuilder t;
  t.dir("ro/", 0555).file("ro/inside", "x", 0444).dir("tmp/", 01777).file("suid", "s", 04755);
  t.file("sgid", "g", 02755);
  ASSERT_OK(apply(t.build()));
  auto mode = [&](const char* p) {
    struct stat st {};
    EXPECT_EQ(::lstat((root_ / p).c_str(), &st), 0) << p;
    return st.st_mode & 07777;
  };
  EXPECT_EQ(mode("ro"), 0555u);
  EXPECT_EQ(mode("ro/inside"), 0444u);
  EXPECT_EQ(mode("tmp"), 01777u);
  EXPECT_EQ(mode("suid"), 04755u);
  EXPECT_EQ(mode("sgid"), 02755u);
  struct stat st {};
  ASSERT_EQ(::stat((root_ / "ro").c_str(), &st), 0);
  EXPECT_EQ(st.st_mtim.tv_sec, 1700000000);  // set after its children were created
}

TEST_F(ApplyTest, DotDotIsRejectedAndNamesTheEntry) {
  EXPECT_THAT(apply(TarBuilder().file("../escape", "x").build()),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("\"../escape\"")));
  EXPECT_THAT(apply(TarBuilder().file("a/../../escape", "x").build()),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("a/../../escape")));
  expectOutsideUntouched();
}

TEST_F(ApplyTest, AbsolutePathsLandInsideTheTarget) {
  ASSERT_OK(apply(TarBuilder().file(outside_.string() + "/secret", "pwned").build()));
  EXPECT_EQ(*readFile(root_ / fs::relative(outside_, "/") / "secret"), "pwned");
  expectOutsideUntouched();
}

TEST_F(ApplyTest, AbsoluteSymlinkParentIsResolvedInsideTheTarget) {
  std::string tar = TarBuilder().symlink("link", outside_.string()).file("link/pwned", "x").build();
  auto r = apply(tar);
  // Either an error (the symlink dangles inside the target) or a write inside the target.
  if (r.ok()) {
    EXPECT_TRUE(fs::exists(root_ / fs::relative(outside_, "/") / "pwned"));
  } else {
    EXPECT_THAT(r.status().message(), HasSubstr("link/pwned"));
  }
  expectOutsideUntouched();
}

TEST_F(ApplyTest, RelativeSymlinkParentCannotClimbOut) {
  std::string tar =
      TarBuilder().symlink("up", "../../../../../../outside").file("up/pwned", "x").build();
  (void)apply(tar);
  expectOutsideUntouched();
  std::string tar2 = TarBuilder().symlink("up2", "../outside").file("up2/secret", "x").build();
  (void)apply(tar2);
  expectOutsideUntouched();
}

TEST_F(ApplyTest, SymlinkToDotIsHarmless) {
  ASSERT_OK(apply(TarBuilder().symlink("self", ".").file("self/self/file", "in").build()));
  EXPECT_EQ(*readFile(root_ / "file"), "in");
  expectOutsideUntouched();
}

TEST_F(ApplyTest, FileOverSymlinkReplacesTheLinkInsteadOfWritingThroughIt) {
  std::string tar =
      TarBuilder().symlink("f", (outside_ / "secret").string()).file("f", "replaced").build();
  ASSERT_OK(apply(tar));
  EXPECT_FALSE(fs::is_symlink(root_ / "f"));
  EXPECT_EQ(*readFile(root_ / "f"), "replaced");
  expectOutsideUntouched();
}

TEST_F(ApplyTest, HardlinkOutsideIsRejected) {
  EXPECT_THAT(apply(TarBuilder().hardlink("h", "../outside/secret").build()),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("\"h\"")));
  EXPECT_THAT(apply(TarBuilder().hardlink("h", (outside_ / "secret").string()).build()),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("does not exist")));
  expectOutsideUntouched();
}

TEST_F(ApplyTest, HardlinkThroughSymlinkStaysInside) {
  std::string tar = TarBuilder()
                        .symlink("s", (outside_ / "secret").string())
                        .hardlink("h", "s")
                        .file("h", "overwrite")
                        .build();
  (void)apply(tar);
  expectOutsideUntouched();
  std::string tar2 =
      TarBuilder().symlink("d", outside_.string()).hardlink("h2", "d/secret").build();
  EXPECT_FALSE(apply(tar2).ok());
  expectOutsideUntouched();
}

TEST_F(ApplyTest, SymlinkPlantedByALowerLayerIsNotFollowedOut) {
  ASSERT_OK(apply(TarBuilder().symlink("etc", outside_.string()).build()));
  (void)apply(TarBuilder().file("etc/secret", "pwned").build());
  expectOutsideUntouched();
  ASSERT_OK(apply(TarBuilder().symlink("lib", "../outside").build()));
  (void)apply(TarBuilder().file("lib/secret", "pwned").build());
  expectOutsideUntouched();
  // A whiteout through the planted symlink must not delete outside either.
  (void)apply(TarBuilder().file("etc/.wh.secret", "").build());
  (void)apply(TarBuilder().file("lib/.wh.secret", "").build());
  expectOutsideUntouched();
}

TEST_F(ApplyTest, UsrMergeSymlinkFromLowerLayerIsFollowedInside) {
  ASSERT_OK(apply(TarBuilder().dir("usr/lib/").symlink("lib", "usr/lib").build()));
  ASSERT_OK(apply(TarBuilder().file("lib/libx.so", "elf").build()));
  EXPECT_EQ(*readFile(root_ / "usr/lib/libx.so"), "elf");
  EXPECT_TRUE(fs::is_symlink(root_ / "lib"));
}

TEST_F(ApplyTest, DevicesFollowThePolicy) {
  std::string tar = TarBuilder().device("dev/null", AE_IFCHR, 1, 3).build();
  options_.devices = DevicePolicy::kReject;
  EXPECT_THAT(apply(tar), StatusIs(StatusCode::kPermissionDenied, HasSubstr("dev/null")));
  options_.devices = DevicePolicy::kSkip;
  ASSERT_OK_AND_ASSIGN(ApplyReport r, apply(tar));
  EXPECT_EQ(r.skipped, 1u);
  EXPECT_FALSE(fs::exists(fs::symlink_status(root_ / "dev/null")));
}

TEST_F(ApplyTest, FifoIsCreated) {
  TarBuilder t;
  TarBuilder::Entry e;
  e.path = "pipe";
  e.type = AE_IFIFO;
  e.perm = 0600;
  t.add(e);
  ASSERT_OK(apply(t.build()));
  EXPECT_TRUE(fs::is_fifo(root_ / "pipe"));
}

TEST_F(ApplyTest, EntryCountLimit) {
  options_.max_entries = 3;
  TarBuilder t;
  for (int i = 0; i < 5; ++i)
    t.file("f" + std::to_string(i), "x");
  EXPECT_THAT(apply(t.build()),
              StatusIs(StatusCode::kResourceExhausted, HasSubstr("more than 3 entries")));
}

TEST_F(ApplyTest, PathLengthLimit) {
  options_.max_path_length = 50;
  EXPECT_THAT(apply(TarBuilder().file(std::string(60, 'a'), "x").build()),
              StatusIs(StatusCode::kResourceExhausted, HasSubstr("60 bytes, limit 50")));
}

TEST_F(ApplyTest, DeepPathsAreRejected) {
  std::string deep;
  for (int i = 0; i < 300; ++i)
    deep += "d/";
  EXPECT_THAT(apply(TarBuilder().file(deep + "f", "x").build()),
              StatusIs(StatusCode::kResourceExhausted, HasSubstr("deeper than")));
}

TEST_F(ApplyTest, TotalSizeLimitNamesTheEntry) {
  options_.max_total_bytes = 10;
  EXPECT_THAT(apply(TarBuilder().file("small", "12345").file("big", "1234567890").build()),
              StatusIs(StatusCode::kResourceExhausted,
                       ::testing::AllOf(HasSubstr("\"big\""), HasSubstr("10 bytes"))));
}

TEST_F(ApplyTest, GarbageIsNotATar) {
  std::string junk(4096, 'j');
  auto r = apply(junk);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(ApplyTest, TruncatedTarIsAnError) {
  std::string tar = TarBuilder().file("big", std::string(100000, 'b')).build();
  tar.resize(20000);
  auto r = apply(tar);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(ApplyTest, EmptyInputIsAnEmptyLayer) {
  ASSERT_OK_AND_ASSIGN(ApplyReport r, apply(""));
  EXPECT_EQ(r.entries, 0u);
  ASSERT_OK_AND_ASSIGN(r, apply(TarBuilder().build()));
  EXPECT_EQ(r.entries, 0u);
}

TEST_F(ApplyTest, BadWhiteoutsAreRejected) {
  EXPECT_THAT(apply(TarBuilder().file(".wh.", "").build()),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("whiteout names no file")));
  EXPECT_THAT(apply(TarBuilder().file("a/.wh...", "").build()),
              StatusIs(StatusCode::kInvalidArgument));
}

TEST_F(ApplyTest, FlattenWhiteoutsRemoveLowerFiles) {
  ASSERT_OK(apply(TarBuilder().file("a/b", "1").file("a/c", "2").file("d/e", "3").build()));
  ASSERT_OK_AND_ASSIGN(ApplyReport r,
                       apply(TarBuilder().file("a/.wh.b", "").file(".wh.d", "").build()));
  EXPECT_EQ(r.whiteouts, 2u);
  EXPECT_FALSE(fs::exists(root_ / "a/b"));
  EXPECT_TRUE(fs::exists(root_ / "a/c"));
  EXPECT_FALSE(fs::exists(root_ / "d"));
}

TEST_F(ApplyTest, FlattenOpaqueDirKeepsOnlyThisLayersEntries) {
  ASSERT_OK(apply(TarBuilder().file("x/1", "1").file("x/2", "2").file("x/sub/3", "3").build()));
  // The marker comes after a new entry here: order inside the layer must not matter.
  ASSERT_OK(apply(TarBuilder().dir("x/").file("x/new/4", "4").file("x/.wh..wh..opq", "").build()));
  std::set<std::string> names;
  for (auto& e : fs::directory_iterator(root_ / "x"))
    names.insert(e.path().filename());
  EXPECT_EQ(names, (std::set<std::string>{"new"}));
  EXPECT_EQ(*readFile(root_ / "x/new/4"), "4");
}

TEST_F(ApplyTest, ReplacementsBetweenTypes) {
  ASSERT_OK(apply(TarBuilder().file("p", "file").dir("q/").file("q/inner", "i").build()));
  ASSERT_OK(apply(TarBuilder().dir("p/").file("q", "now a file").build()));
  EXPECT_TRUE(fs::is_directory(root_ / "p"));
  EXPECT_EQ(*readFile(root_ / "q"), "now a file");
}

TEST_F(ApplyTest, MissingTargetIsAClearError) {
  StringSource src(TarBuilder().file("a", "b").build());
  EXPECT_THAT(applyLayerTar(src, tmp_->path() / "nope"),
              StatusIs(StatusCode::kNotFound, HasSubstr("nope")));
}

TEST_F(ApplyTest, SourceErrorsArePropagated) {
  FunctionSource src(
      [](void*, std::size_t) -> Result<std::size_t> { return unavailable("connection reset"); });
  EXPECT_THAT(applyLayerTar(src, root_), StatusIs(StatusCode::kUnavailable));
}

// Interop: what GNU tar writes (GNU long names, ustar, pax) unpacks to the same tree.
class GnuTarInterop : public ::testing::TestWithParam<const char*> {};

TEST_P(GnuTarInterop, UnpacksWhatGnuTarWrites) {
  ASSERT_OK_AND_ASSIGN(TempDir tmp, TempDir::create("gnu-tar"));
  fs::path src = tmp.path() / "src";
  std::string long_dir(120, 'd');
  std::string long_name(140, 'n');
  fs::create_directories(src / long_dir / "sub");
  ASSERT_OK(writeFileDurable(src / long_dir / "sub" / long_name, "long", 0640));
  ASSERT_OK(writeFileDurable(src / "plain", "plain", 0755));
  fs::create_symlink(long_dir + "/sub/" + long_name, src / "link");
  fs::create_hard_link(src / "plain", src / "hard");
  fs::path tarball = tmp.path() / "t.tar";
  std::string cmd = "tar --format=" + std::string(GetParam()) + " -C '" + src.string() + "' -cf '" +
                    tarball.string() + "' . 2>&1";
  int rc = std::system(cmd.c_str());
  ASSERT_EQ(rc, 0) << cmd;
  ASSERT_OK_AND_ASSIGN(std::string bytes, readFile(tarball));
  fs::path out = tmp.path() / "out";
  fs::create_directories(out);
  StringSource in(bytes);
  ApplyOptions o;
  o.preserve_owner = ::geteuid() == 0;
  ASSERT_OK(applyLayerTar(in, out, o));
  EXPECT_EQ(*readFile(out / long_dir / "sub" / long_name), "long");
  EXPECT_EQ(fs::read_symlink(out / "link"), long_dir + "/sub/" + long_name);
  struct stat a {
  }, b{};
  ASSERT_EQ(::stat((out / "plain").c_str(), &a), 0);
  ASSERT_EQ(::stat((out / "hard").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_mode & 07777, 0755u);
  ASSERT_EQ(::stat((out / long_dir / "sub" / long_name).c_str(), &a), 0);
  EXPECT_EQ(a.st_mode & 07777, 0640u);
}

INSTANTIATE_TEST_SUITE_P(Formats, GnuTarInterop, ::testing::Values("gnu", "oldgnu", "posix"),
                         [](const ::testing::TestParamInfo<const char*>& p) {
                           return std::string(p.param);
                         });

}  // namespace
}  // namespace cairn::layer

#include "cairn/common/rooted_fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "cairn/testing/status_matchers.h"

namespace cairn {
namespace {

namespace fs = std::filesystem;
using ::cairn::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class RootedFsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(TempDir dir, TempDir::create("rooted"));
    dir_.emplace(std::move(dir));
    root_path_ = dir_->path() / "root";
    outside_ = dir_->path() / "outside";
    fs::create_directories(root_path_);
    fs::create_directories(outside_);
    ASSERT_OK(writeFileDurable(outside_ / "secret", "host"));
    root_ = UniqueFd(::open(root_path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(root_.valid());
  }

  std::string readAt(const UniqueFd& fd) {
    char buf[64];
    ssize_t n = ::pread(fd.get(), buf, sizeof buf, 0);
    return n < 0 ? std::string() : std::string(buf, static_cast<std::size_t>(n));
  }

  std::optional<TempDir> dir_;
  fs::path root_path_;
  fs::path outside_;
  UniqueFd root_;
};

TEST_F(RootedFsTest, DotDotStopsAtTheRoot) {
  ASSERT_OK(writeFileDurable(root_path_ / "inside", "in"));
  ASSERT_OK_AND_ASSIGN(UniqueFd fd, openInRoot(root_.get(), "../../../inside", O_RDONLY));
  EXPECT_EQ(readAt(fd), "in");
  EXPECT_THAT(openInRoot(root_.get(), "../outside/secret", O_RDONLY),
              StatusIs(StatusCode::kNotFound, HasSubstr("open /../outside/secret")));
}

TEST_F(RootedFsTest, AbsoluteSymlinksResolveInsideTheRoot) {
  fs::create_directories(root_path_ / "etc");
  ASSERT_OK(writeFileDurable(root_path_ / "etc/hostname", "guest"));
  // An absolute link to the host's directory names the root's own copy of that path.
  fs::create_symlink(outside_, root_path_ / "abs");
  fs::create_symlink("/etc", root_path_ / "etc-link");
  fs::create_symlink("../../../../" + outside_.string(), root_path_ / "climb");
  EXPECT_THAT(openInRoot(root_.get(), "/abs/secret", O_RDONLY), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(openInRoot(root_.get(), "climb/secret", O_RDONLY), StatusIs(StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(UniqueFd fd, openInRoot(root_.get(), "etc-link/hostname", O_RDONLY));
  EXPECT_EQ(readAt(fd), "guest");
}

TEST_F(RootedFsTest, ProcSelfRootDoesNotLeadOut) {
  // /proc/self/root would lead back to the host's "/"; inside the root there is no /proc.
  fs::create_symlink("/proc/self/root", root_path_ / "magic");
  EXPECT_FALSE(openInRoot(root_.get(), "magic/etc/hostname", O_RDONLY).ok());
}

TEST_F(RootedFsTest, RawOpenReportsErrno) {
  errno = 0;
  EXPECT_EQ(openInRootRaw(root_.get(), "missing", O_RDONLY), -1);
  EXPECT_EQ(errno, ENOENT);
  ASSERT_OK(writeFileDurable(root_path_ / "file", "x"));
  EXPECT_EQ(openInRootRaw(root_.get(), "file/below", O_RDONLY), -1);
  EXPECT_EQ(errno, ENOTDIR);
  int fd = openInRootRaw(root_.get(), "", O_RDONLY | O_DIRECTORY);
  ASSERT_GE(fd, 0);
  UniqueFd owned(fd);
  EXPECT_EQ(::fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
}

TEST_F(RootedFsTest, CreatesFilesWithTheGivenMode) {
  ASSERT_OK_AND_ASSIGN(UniqueFd fd,
                       openInRoot(root_.get(), "/new", O_WRONLY | O_CREAT | O_EXCL, 0600));
  struct stat st {};
  ASSERT_EQ(::fstat(fd.get(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(RootedFsTest, MkdirAllCreatesExactModesAndReportsWhatItCreated) {
  fs::create_directories(root_path_ / "a");
  std::vector<std::string> created;
  MkdirAllOptions options;
  options.mode = 0750;
  options.on_created = [&](const std::string& p) { created.push_back(p); };
  ASSERT_OK(mkdirAllInRoot(root_.get(), "/a/b/../c/d/", options));
  EXPECT_THAT(created, ElementsAre("a/c", "a/c/d"));
  struct stat st {};
  ASSERT_EQ(::stat((root_path_ / "a/c/d").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  EXPECT_FALSE(fs::exists(root_path_ / "a/b"));
  // The root itself, and a path that exists already, create nothing.
  created.clear();
  ASSERT_OK(mkdirAllInRoot(root_.get(), "/", options));
  ASSERT_OK(mkdirAllInRoot(root_.get(), "a/c", options));
  EXPECT_TRUE(created.empty());
}

TEST_F(RootedFsTest, MkdirAllFollowsLinksInsideTheRootOnly) {
  fs::create_symlink(outside_, root_path_ / "abs");
  fs::create_symlink("../../..", root_path_ / "up");
  MkdirAllOptions options;
  ASSERT_OK(mkdirAllInRoot(root_.get(), "/abs/made", options));
  ASSERT_OK(mkdirAllInRoot(root_.get(), "/up/up/x", options));
  EXPECT_FALSE(fs::exists(outside_ / "made"));
  EXPECT_TRUE(fs::is_directory(root_path_ / fs::relative(outside_, "/") / "made"));
  EXPECT_TRUE(fs::is_directory(root_path_ / "x"));
  EXPECT_EQ(std::distance(fs::directory_iterator(outside_), fs::directory_iterator()), 1);
}

TEST_F(RootedFsTest, MkdirAllWithoutLinkTargetsRefusesADanglingLink) {
  fs::create_symlink("/nowhere", root_path_ / "dangling");
  MkdirAllOptions options;
  options.create_link_targets = false;
  EXPECT_THAT(mkdirAllInRoot(root_.get(), "dangling/x", options),
              StatusIs(StatusCode::kFailedPrecondition, HasSubstr("/dangling")));
  EXPECT_FALSE(fs::exists(root_path_ / "nowhere"));
  // A link that does lead to a directory is still followed.
  fs::create_directories(root_path_ / "usr/lib");
  fs::create_symlink("usr/lib", root_path_ / "lib");
  ASSERT_OK(mkdirAllInRoot(root_.get(), "lib/x", options));
  EXPECT_TRUE(fs::is_directory(root_path_ / "usr/lib/x"));
}

TEST_F(RootedFsTest, MkdirAllErrors) {
  ASSERT_OK(writeFileDurable(root_path_ / "file", "x"));
  MkdirAllOptions options;
  EXPECT_THAT(mkdirAllInRoot(root_.get(), "/file/x", options),
              StatusIs(StatusCode::kFailedPrecondition, HasSubstr("/file: a file is in the way")));
  fs::create_symlink("/loop2", root_path_ / "loop1");
  fs::create_symlink("/loop1", root_path_ / "loop2");
  EXPECT_THAT(mkdirAllInRoot(root_.get(), "/loop1/x", options),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("too many levels")));
  options.create_link_targets = false;
  EXPECT_THAT(mkdirAllInRoot(root_.get(), "/loop1/x", options),
              StatusIs(StatusCode::kFailedPrecondition));
}

TEST(CleanAbsolutePathTest, Cleans) {
  EXPECT_EQ(cleanAbsolutePath("a/../b/./c/"), "/b/c");
  EXPECT_EQ(cleanAbsolutePath("../../x"), "/x");
  EXPECT_EQ(cleanAbsolutePath("//a//b"), "/a/b");
  EXPECT_EQ(cleanAbsolutePath(""), "/");
}

}  // namespace
}  // namespace cairn

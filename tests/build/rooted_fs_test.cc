#include "cairn/build/rooted_fs.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <filesystem>

#include "cairn/testing/status_matchers.h"

namespace cairn::build {
namespace {

namespace fs = std::filesystem;
using ::cairn::testing::StatusIs;

TEST(RootedFsTest, CleanAndSplit) {
  EXPECT_EQ(cleanAbsolutePath("a/../b/./c/"), "/b/c");
  EXPECT_EQ(cleanAbsolutePath("../../x"), "/x");
  EXPECT_EQ(cleanAbsolutePath(""), "/");
  EXPECT_EQ(splitParent("/a/b"), (std::pair<std::string, std::string>{"/a", "b"}));
  EXPECT_EQ(splitParent("/a"), (std::pair<std::string, std::string>{"/", "a"}));
  EXPECT_EQ(splitParent("/"), (std::pair<std::string, std::string>{"/", ""}));
}

TEST(RootedFsTest, OpenNeverEscapesTheRoot) {
  ASSERT_OK_AND_ASSIGN(TempDir root, TempDir::create("rooted"));
  fs::create_symlink("/", root.path() / "up");
  fs::create_symlink("../../../../etc", root.path() / "dots");
  UniqueFd fd(::open(root.path().c_str(), O_RDONLY | O_DIRECTORY));
  // /etc/hostname exists on the host but not in the root.
  EXPECT_THAT(openInRoot(fd.get(), "/up/etc/hostname", O_RDONLY), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(openInRoot(fd.get(), "dots/hostname", O_RDONLY), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(openInRoot(fd.get(), "../../etc/hostname", O_RDONLY),
              StatusIs(StatusCode::kNotFound));
}

TEST(RootedFsTest, MkdirAllFollowsLinksInsideTheRoot) {
  ASSERT_OK_AND_ASSIGN(TempDir root, TempDir::create("rooted"));
  fs::create_directories(root.path() / "real");
  fs::create_symlink("/real", root.path() / "link");
  fs::create_symlink("/elsewhere/deep", root.path() / "dangling");
  UniqueFd fd(::open(root.path().c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_OK(mkdirAllInRoot(fd.get(), "/link/a/b", 0750));
  EXPECT_TRUE(fs::is_directory(root.path() / "real/a/b"));
  struct stat st {};
  ASSERT_EQ(::stat((root.path() / "real/a/b").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  ASSERT_OK(mkdirAllInRoot(fd.get(), "/dangling/x", 0755));
  EXPECT_TRUE(fs::is_directory(root.path() / "elsewhere/deep/x"));
  fs::create_symlink("/loop2", root.path() / "loop1");
  fs::create_symlink("/loop1", root.path() / "loop2");
  EXPECT_THAT(mkdirAllInRoot(fd.get(), "/loop1/x", 0755), StatusIs(StatusCode::kInvalidArgument));
  ASSERT_OK(writeFileDurable(root.path() / "file", "x"));
  EXPECT_THAT(mkdirAllInRoot(fd.get(), "/file/x", 0755), StatusIs(StatusCode::kFailedPrecondition));
}

}  // namespace
}  // namespace cairn::build

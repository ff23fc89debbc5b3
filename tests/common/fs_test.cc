#include "cairn/common/fs.h"

#include <sys/stat.h>

#include "cairn/testing/status_matchers.h"

namespace cairn {
namespace {

using ::cairn::testing::StatusIs;
namespace fs = std::filesystem;

TEST(FsTest, DurableWriteReplacesAtomicallyAndSetsMode) {
  ASSERT_OK_AND_ASSIGN(TempDir dir, TempDir::create("fs-test"));
  fs::path p = dir.path() / "key";
  ASSERT_OK(writeFileDurable(p, "first", 0600));
  ASSERT_OK(writeFileDurable(p, "second", 0600));
  EXPECT_EQ(*readFile(p), "second");
  struct stat st {};
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // No temporary files left behind.
  int entries = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(dir.path()))
    ++entries;
  EXPECT_EQ(entries, 1);
}

TEST(FsTest, ReadMissingIsNotFound) {
  EXPECT_THAT(readFile("/nonexistent/cairn"), StatusIs(StatusCode::kNotFound));
}

TEST(FsTest, TempDirIsRemoved) {
  fs::path p;
  {
    ASSERT_OK_AND_ASSIGN(TempDir dir, TempDir::create("fs-test"));
    p = dir.path();
    ASSERT_OK(writeFileDurable(p / "a", "x"));
    EXPECT_TRUE(fs::exists(p / "a"));
  }
  EXPECT_FALSE(fs::exists(p));
}

}  // namespace
}  // namespace cairn

#include "cairn/common/fs.h"

#include <sys/stat.h>
#include <unistd.h>

#include <thread>

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

// readAll reads an fd to its end, a pipe here (nothing to stat for a size); a closed fd is an
// error naming the path given.
TEST(FsTest, ReadAllReadsAnFdToItsEnd) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  const std::string data(200000, 'x');  // more than one read's buffer
  std::thread writer([&] {
    ASSERT_OK(writeAll(p[1], data));
    ::close(p[1]);
  });
  auto got = readAll(p[0], "the pipe");
  writer.join();
  ::close(p[0]);
  ASSERT_OK(got.status());
  EXPECT_EQ(*got, data);
  EXPECT_THAT(readAll(p[0], "/closed/fd").status(),
              StatusIs(StatusCode::kInternal, ::testing::HasSubstr("read /closed/fd")));
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

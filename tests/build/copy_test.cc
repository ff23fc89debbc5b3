#include "cairn/build/copy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "cairn/testing/status_matchers.h"

namespace cairn::build {
namespace {

namespace fs = std::filesystem;
using ::cairn::testing::StatusIs;
using ::testing::HasSubstr;

void writeFile(const fs::path& p, const std::string& content, mode_t mode = 0644) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << content;
  ::chmod(p.c_str(), mode);
}

std::string slurp(const fs::path& p) {
  return readFile(p).valueOr("<missing>");
}

class CopyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ctx_dir = TempDir::create("copy-ctx");
    auto dst_dir = TempDir::create("copy-dst");
    ASSERT_OK(ctx_dir);
    ASSERT_OK(dst_dir);
    ctx_ = std::make_unique<TempDir>(std::move(*ctx_dir));
    dst_ = std::make_unique<TempDir>(std::move(*dst_dir));
    writeFile(ctx() / "a.txt", "A");
    writeFile(ctx() / "b.txt", "B");
    writeFile(ctx() / "src/main.py", "print(1)\n", 0755);
    writeFile(ctx() / "src/lib/util.py", "x = 1\n");
    writeFile(ctx() / "src/notes.md", "n");
    fs::create_symlink("main.py", ctx() / "src/link.py");
    ctx_fd_ = UniqueFd(::open(ctx().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    dst_fd_ = UniqueFd(::open(dst().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  }
  fs::path ctx() const { return ctx_->path(); }
  fs::path dst() const { return dst_->path(); }
  CopySourceRoot root(const dockerfile::DockerIgnore* ignore = nullptr) const {
    return {ctx_fd_.get(), ignore, true};
  }
  Result<CopyReport> copy(const std::vector<std::string>& patterns, const std::string& dest,
                          const CopyOptions& options = {}) {
    CAIRN_ASSIGN_OR_RETURN(auto sources, selectSources(root(), patterns, options.excludes));
    return copySources(root(), sources, dst_fd_.get(), dest, options);
  }

  std::unique_ptr<TempDir> ctx_, dst_;
  UniqueFd ctx_fd_, dst_fd_;
};

TEST_F(CopyTest, SelectsLiteralsAndGlobsInOrder) {
  ASSERT_OK_AND_ASSIGN(auto s, selectSources(root(), {"b.txt", "*.txt", "src/*.py", "./src/lib/"}));
  std::vector<std::string> paths;
  for (auto& x : s)
    paths.push_back(x.path + (x.is_dir ? "/" : ""));
  EXPECT_EQ(paths, (std::vector<std::string>{"b.txt", "a.txt", "b.txt", "src/link.py",
                                             "src/main.py", "src/lib/"}));
  EXPECT_THAT(selectSources(root(), {"missing.txt"}),
              StatusIs(StatusCode::kNotFound,
                       HasSubstr("\"missing.txt\": not found in the build context")));
  EXPECT_THAT(selectSources(root(), {"*.none"}), StatusIs(StatusCode::kNotFound));
}

TEST_F(CopyTest, DockerignoreAndExcludeHideSources) {
  ASSERT_OK_AND_ASSIGN(auto ignore, dockerfile::DockerIgnore::parse("*.txt\n!b.txt\n"));
  EXPECT_THAT(selectSources(root(&ignore), {"a.txt"}), StatusIs(StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(auto s, selectSources(root(&ignore), {"*.txt"}));
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].path, "b.txt");
  ASSERT_OK(copy({"src"}, "/app/", CopyOptions{{}, {}, {"**/*.md"}}));
  EXPECT_TRUE(fs::exists(dst() / "app/main.py"));
  EXPECT_FALSE(fs::exists(dst() / "app/notes.md"));
}

// BuildKit's semantics for --exclude (its integration test testExcludedFilesOnCopy and the
// Dockerfile reference): patterns match paths relative to each copied source, files matched by
// a <src> wildcard are left out when they match too, and a matched directory is entered.
class CopyExcludeTest : public CopyTest {
 protected:
  void SetUp() override {
    CopyTest::SetUp();
    writeFile(ctx() / "dir1/file-101.png", "2");
    writeFile(ctx() / "dir1/file-102.txt", "3");
    writeFile(ctx() / "dir1/file-103.jpeg", "4");
    writeFile(ctx() / "dir2/file-201.pdf", "6");
    writeFile(ctx() / "dir2/file-202.jpeg", "7");
    writeFile(ctx() / "dir3/file-301.mp3", "9");
    writeFile(ctx() / "dir3/file-302.mpeg", "10");
    writeFile(ctx() / "home.txt", "h");
    writeFile(ctx() / "home.md", "m");
    writeFile(ctx() / "homer/bart.txt", "b");
    writeFile(ctx() / "homer/lisa.py", "l");
  }
  std::vector<std::string> tree(const fs::path& dir) {
    std::vector<std::string> out;
    for (auto& e : fs::recursive_directory_iterator(dir))
      out.push_back(fs::relative(e.path(), dir).string() + (e.is_directory() ? "/" : ""));
    std::sort(out.begin(), out.end());
    return out;
  }
};

TEST_F(CopyExcludeTest, PatternsAreRelativeToTheCopiedSource) {
  // COPY --exclude=*/*.png --exclude=*/*.jpeg . /1  (relative to ".": the root)
  ASSERT_OK(copy({"."}, "/1", CopyOptions{{}, {}, {"*/*.png", "*/*.jpeg"}}));
  EXPECT_FALSE(fs::exists(dst() / "1/dir1/file-101.png"));
  EXPECT_EQ(slurp(dst() / "1/dir1/file-102.txt"), "3");
  EXPECT_FALSE(fs::exists(dst() / "1/dir2/file-202.jpeg"));
  EXPECT_EQ(slurp(dst() / "1/dir3/file-302.mpeg"), "10");
  // ADD --exclude=*.mp3 dir3/ /3/  (relative to dir3: a context-root pattern would miss it)
  ASSERT_OK(copy({"dir3/"}, "/3/", CopyOptions{{}, {}, {"*.mp3"}}));
  EXPECT_EQ(tree(dst() / "3"), (std::vector<std::string>{"file-302.mpeg"}));
  // COPY --exclude=*.mp3 … dir* /4/  (each matched directory's contents, merged)
  ASSERT_OK(
      copy({"dir*"}, "/4/", CopyOptions{{}, {}, {"*.mp3", "*.jpeg", "*.png", "*.pdf", "*.txt"}}));
  EXPECT_EQ(tree(dst() / "4"), (std::vector<std::string>{"file-302.mpeg"}));
  // ADD --exclude=* dir* /6: every file excluded, the directory still made.
  ASSERT_OK(copy({"dir*"}, "/6", CopyOptions{{}, {}, {"*"}}));
  EXPECT_TRUE(fs::is_directory(dst() / "6"));
  EXPECT_TRUE(fs::is_empty(dst() / "6"));
}

TEST_F(CopyExcludeTest, WildcardMatchedFilesAreExcludedToo) {
  // The reference's example: COPY --exclude=*.txt --exclude=*.md hom* /mydir/
  ASSERT_OK(copy({"hom*"}, "/mydir/", CopyOptions{{}, {}, {"*.txt", "*.md"}}));
  EXPECT_EQ(tree(dst() / "mydir"), (std::vector<std::string>{"lisa.py"}));
  // A nested source is matched by its name as well as its path.
  ASSERT_OK(copy({"homer/*"}, "/nested/", CopyOptions{{}, {}, {"*.txt"}}));
  EXPECT_EQ(tree(dst() / "nested"), (std::vector<std::string>{"lisa.py"}));
  // Every match excluded: nothing to copy, which is not "not found".
  ASSERT_OK_AND_ASSIGN(auto none, selectSources(root(), {"*.txt"}, {"*.txt"}));
  EXPECT_TRUE(none.empty());
  EXPECT_THAT(selectSources(root(), {"*.none"}, {"*.txt"}), StatusIs(StatusCode::kNotFound));
  // The digest follows the same selection: an excluded file's content is not part of it.
  ASSERT_OK_AND_ASSIGN(auto sel, selectSources(root(), {"dir3"}, {"*.mp3"}));
  ASSERT_OK_AND_ASSIGN(std::string before, digestSources(root(), sel, {"*.mp3"}));
  writeFile(ctx() / "dir3/file-301.mp3", "changed");
  ASSERT_OK_AND_ASSIGN(std::string after, digestSources(root(), sel, {"*.mp3"}));
  EXPECT_EQ(before, after);
  // A bad pattern is a clear error.
  EXPECT_THAT(selectSources(root(), {"dir3"}, {"[unclosed"}),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("--exclude")));
}

TEST_F(CopyTest, FileDestinationRules) {
  ASSERT_OK(copy({"a.txt"}, "/x/"));
  EXPECT_EQ(slurp(dst() / "x/a.txt"), "A");
  ASSERT_OK(copy({"a.txt"}, "/y/renamed.txt"));
  EXPECT_EQ(slurp(dst() / "y/renamed.txt"), "A");
  // An existing directory without a trailing slash receives the file inside it.
  ASSERT_OK(copy({"b.txt"}, "/x"));
  EXPECT_EQ(slurp(dst() / "x/b.txt"), "B");
  // Several sources go into the directory.
  ASSERT_OK(copy({"a.txt", "b.txt"}, "/many/"));
  EXPECT_EQ(slurp(dst() / "many/a.txt"), "A");
  EXPECT_EQ(slurp(dst() / "many/b.txt"), "B");
  // A file replaces a file.
  ASSERT_OK(copy({"b.txt"}, "/y/renamed.txt"));
  EXPECT_EQ(slurp(dst() / "y/renamed.txt"), "B");
}

TEST_F(CopyTest, DirectoryContentsAreMergedWithModesLinksAndTimes) {
  struct timespec times[2] = {{1000000000, 0}, {1000000000, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, (ctx() / "src/main.py").c_str(), times, 0), 0);
  ASSERT_OK(copy({"src"}, "/app"));
  EXPECT_EQ(slurp(dst() / "app/main.py"), "print(1)\n");
  EXPECT_EQ(slurp(dst() / "app/lib/util.py"), "x = 1\n");
  EXPECT_FALSE(fs::exists(dst() / "app/src"));
  EXPECT_TRUE(fs::is_symlink(dst() / "app/link.py"));
  EXPECT_EQ(fs::read_symlink(dst() / "app/link.py"), "main.py");
  struct stat st {};
  ASSERT_EQ(::stat((dst() / "app/main.py").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1000000000);
  ASSERT_EQ(::stat((dst() / "app").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
}

TEST_F(CopyTest, ChownAndChmodApply) {
  if (::geteuid() != 0) GTEST_SKIP() << "chown to another user needs root (CI runs as root)";
  writeFile(ctx() / "suid", "s", 04755);
  ASSERT_OK(copy({"suid"}, "/bin/"));
  struct stat st {};
  ASSERT_EQ(::stat((dst() / "bin/suid").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 04755u);
  ASSERT_OK(copy({"src"}, "/owned/", CopyOptions{Ownership{1000, 1001}, 0600, {}}));
  ASSERT_EQ(::lstat((dst() / "owned/lib/util.py").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_EQ(st.st_gid, 1001u);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  ASSERT_EQ(::lstat((dst() / "owned").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1000u);  // created destination directories belong to --chown's user
}

TEST_F(CopyTest, SymlinksNeverLeadOutsideEitherRoot) {
  // A context symlink to an absolute host path resolves inside the context.
  fs::create_symlink("/etc/hostname", ctx() / "evil");
  EXPECT_THAT(selectSources(root(), {"evil"}), StatusIs(StatusCode::kNotFound));
  writeFile(ctx() / "etc/hostname", "inside-context");
  ASSERT_OK(copy({"evil"}, "/got"));
  EXPECT_EQ(slurp(dst() / "got"), "inside-context");
  // A destination symlink to an absolute path is followed inside the destination root.
  ASSERT_OK_AND_ASSIGN(TempDir outside, TempDir::create("copy-outside"));
  fs::create_symlink(outside.path(), dst() / "app");
  ASSERT_OK(copy({"a.txt"}, "/app/"));
  EXPECT_FALSE(fs::exists(outside.path() / "a.txt"));
  EXPECT_EQ(slurp(dst() / outside.path().relative_path() / "a.txt"), "A");
}

TEST_F(CopyTest, HardlinksArePreserved) {
  fs::create_hard_link(ctx() / "src/main.py", ctx() / "src/hard.py");
  ASSERT_OK(copy({"src"}, "/app/"));
  struct stat a {
  }, b{};
  ASSERT_EQ(::stat((dst() / "app/main.py").c_str(), &a), 0);
  ASSERT_EQ(::stat((dst() / "app/hard.py").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
}

TEST_F(CopyTest, DigestIgnoresMtimesButNotContentOrMode) {
  auto digest = [&] {
    auto s = selectSources(root(), {"src", "a.txt"});
    EXPECT_OK(s);
    auto d = digestSources(root(), *s);
    EXPECT_OK(d);
    return *d;
  };
  std::string d0 = digest();
  EXPECT_EQ(d0.size(), 64u);
  struct timespec times[2] = {{1, 0}, {1, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, (ctx() / "a.txt").c_str(), times, 0), 0);
  EXPECT_EQ(digest(), d0);
  ::chmod((ctx() / "a.txt").c_str(), 0600);
  std::string d1 = digest();
  EXPECT_NE(d1, d0);
  writeFile(ctx() / "src/lib/util.py", "x = 2\n");
  EXPECT_NE(digest(), d1);
}

TEST_F(CopyTest, FileOverDirectoryIsAClearError) {
  fs::create_directories(dst() / "app/a.txt");
  EXPECT_THAT(copy({"a.txt"}, "/app/"),
              StatusIs(StatusCode::kFailedPrecondition,
                       HasSubstr("cannot copy a non-directory over the directory /app/a.txt")));
}

TEST(ChmodTest, ParsesOctalOnly) {
  EXPECT_EQ(*parseChmod("755"), 0755u);
  EXPECT_EQ(*parseChmod("04755"), 04755u);
  EXPECT_THAT(parseChmod("u+x"), StatusIs(StatusCode::kInvalidArgument, HasSubstr("octal")));
  EXPECT_THAT(parseChmod(""), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(parseChmod("777777"), StatusIs(StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace cairn::build

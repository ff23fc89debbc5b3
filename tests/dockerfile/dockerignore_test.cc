// .dockerignore semantics, from Docker's documentation examples plus edge cases.
#include "cairn/dockerfile/dockerignore.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cairn/testing/status_matchers.h"

namespace cairn::dockerfile {
namespace {

using ::cairn::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

DockerIgnore mustParse(std::string_view content) {
  auto r = DockerIgnore::parse(content);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : DockerIgnore();
}

TEST(DockerIgnoreTest, DefaultMatchesNothing) {
  DockerIgnore ignore;
  EXPECT_TRUE(ignore.empty());
  EXPECT_FALSE(ignore.excluded("a"));
  EXPECT_FALSE(ignore.mayReincludeUnder("a"));
}

TEST(DockerIgnoreTest, EmptyAndCommentOnlyFilesMatchNothing) {
  auto ignore = mustParse("# comment\n\n   \n#*\n");
  EXPECT_TRUE(ignore.empty());
  EXPECT_FALSE(ignore.excluded("anything"));
}

// The example from Docker's .dockerignore documentation.
TEST(DockerIgnoreTest, DocumentationExample) {
  auto ignore = mustParse("# comment\n*/temp*\n*/*/temp*\ntemp?\n");
  EXPECT_TRUE(ignore.excluded("somedir/temporary.txt"));
  EXPECT_TRUE(ignore.excluded("somedir/temp"));
  EXPECT_TRUE(ignore.excluded("somedir/temp/inner/file"));  // below an excluded dir
  EXPECT_TRUE(ignore.excluded("somedir/subdir/temporary.txt"));
  EXPECT_TRUE(ignore.excluded("tempa"));
  EXPECT_TRUE(ignore.excluded("tempb"));
  EXPECT_FALSE(ignore.excluded("temp"));
  EXPECT_FALSE(ignore.excluded("tempab"));
  EXPECT_FALSE(ignore.excluded("temporary.txt"));
  EXPECT_FALSE(ignore.excluded("a/b/c/temporary.txt"));
  EXPECT_FALSE(ignore.excluded("somedir/other.txt"));
}

TEST(DockerIgnoreTest, DoubleStarMatchesAnyNumberOfDirectories) {
  auto ignore = mustParse("**/*.go\n");
  EXPECT_TRUE(ignore.excluded("main.go"));
  EXPECT_TRUE(ignore.excluded("a/main.go"));
  EXPECT_TRUE(ignore.excluded("a/b/c/main.go"));
  EXPECT_FALSE(ignore.excluded("a/b/main.gox"));
  EXPECT_FALSE(ignore.excluded("main.c"));
}

TEST(DockerIgnoreTest, DoubleStarInTheMiddleAndAtTheEnd) {
  auto ignore = mustParse("a/**/z\nlogs/**\n");
  EXPECT_TRUE(ignore.excluded("a/z"));
  EXPECT_TRUE(ignore.excluded("a/b/z"));
  EXPECT_TRUE(ignore.excluded("a/b/c/z"));
  EXPECT_TRUE(ignore.excluded("a/b/c/z/below"));
  EXPECT_FALSE(ignore.excluded("a/b/c/zz"));
  EXPECT_FALSE(ignore.excluded("b/z"));
  EXPECT_TRUE(ignore.excluded("logs/x"));
  EXPECT_TRUE(ignore.excluded("logs/x/y"));
  EXPECT_FALSE(ignore.excluded("logsx"));
}

TEST(DockerIgnoreTest, ExceptionReincludes) {
  auto ignore = mustParse("*.md\n!README.md\n");
  EXPECT_TRUE(ignore.excluded("CHANGES.md"));
  EXPECT_FALSE(ignore.excluded("README.md"));
  EXPECT_FALSE(ignore.excluded("main.c"));
  // `*` does not cross '/', so docs/x.md is not matched at all.
  EXPECT_FALSE(ignore.excluded("docs/x.md"));
}

TEST(DockerIgnoreTest, LastMatchWinsDocumentationExamples) {
  auto a = mustParse("*.md\n!README*.md\nREADME-secret.md\n");
  EXPECT_TRUE(a.excluded("CHANGES.md"));
  EXPECT_FALSE(a.excluded("README-public.md"));
  EXPECT_TRUE(a.excluded("README-secret.md"));

  auto b = mustParse("*.md\nREADME-secret.md\n!README*.md\n");
  EXPECT_TRUE(b.excluded("CHANGES.md"));
  EXPECT_FALSE(b.excluded("README-secret.md"));
  EXPECT_FALSE(b.excluded("README-public.md"));
}

TEST(DockerIgnoreTest, LeadingAndTrailingSlashesAndDotsAreCleaned) {
  auto ignore = mustParse("/foo\nbar/\n./baz/../qux\n  spaced  \n//double//slash\n");
  EXPECT_THAT(ignore.patterns(), ElementsAre("foo", "bar", "qux", "spaced", "double/slash"));
  EXPECT_TRUE(ignore.excluded("foo"));
  EXPECT_TRUE(ignore.excluded("foo/x"));
  EXPECT_TRUE(ignore.excluded("bar/x/y"));
  EXPECT_TRUE(ignore.excluded("qux"));
  EXPECT_FALSE(ignore.excluded("baz"));
  EXPECT_TRUE(ignore.excluded("spaced"));
  EXPECT_TRUE(ignore.excluded("double/slash/x"));
  EXPECT_FALSE(ignore.excluded("x/foo"));
}

TEST(DockerIgnoreTest, CommentOnlyAtLineStart) {
  // Docker checks for '#' before trimming: an indented '#' starts a pattern.
  auto ignore = mustParse("  #notacomment\n");
  EXPECT_THAT(ignore.patterns(), ElementsAre("#notacomment"));
  EXPECT_TRUE(ignore.excluded("#notacomment"));
}

TEST(DockerIgnoreTest, QuestionMarkAndClasses) {
  auto ignore = mustParse("file?.txt\n[abc]x\n[^a-y]z\nn[0-9][0-9]\n");
  EXPECT_TRUE(ignore.excluded("file1.txt"));
  EXPECT_FALSE(ignore.excluded("file.txt"));
  EXPECT_FALSE(ignore.excluded("file/.txt"));  // '?' never matches '/'
  EXPECT_TRUE(ignore.excluded("bx"));
  EXPECT_FALSE(ignore.excluded("dx"));
  EXPECT_TRUE(ignore.excluded("zz"));
  EXPECT_FALSE(ignore.excluded("az"));
  EXPECT_TRUE(ignore.excluded("n42"));
  EXPECT_FALSE(ignore.excluded("n4x"));
}

TEST(DockerIgnoreTest, QuestionMarkMatchesOneUnicodeCharacter) {
  auto ignore = mustParse("caf?\n");
  EXPECT_TRUE(ignore.excluded("café"));
  EXPECT_FALSE(ignore.excluded("cafés"));
}

TEST(DockerIgnoreTest, BackslashEscapes) {
  auto ignore = mustParse("a\\*b*\nq\\?\n");
  EXPECT_TRUE(ignore.excluded("a*bc"));
  EXPECT_FALSE(ignore.excluded("axbc"));
  EXPECT_TRUE(ignore.excluded("q?"));
  EXPECT_FALSE(ignore.excluded("qx"));
}

TEST(DockerIgnoreTest, RegexMetacharactersAreLiteral) {
  auto ignore = mustParse("a.b\n(x)+\n");
  EXPECT_TRUE(ignore.excluded("a.b"));
  EXPECT_FALSE(ignore.excluded("axb"));
  EXPECT_TRUE(ignore.excluded("(x)+"));
}

TEST(DockerIgnoreTest, ExcludeEverythingButSomeFiles) {
  auto ignore = mustParse("*\n!src\n!package.json\nsrc/**/*.test.js\n");
  EXPECT_TRUE(ignore.excluded("node_modules"));
  EXPECT_TRUE(ignore.excluded("node_modules/x/y.js"));
  EXPECT_FALSE(ignore.excluded("package.json"));
  EXPECT_FALSE(ignore.excluded("src"));
  EXPECT_FALSE(ignore.excluded("src/a/b.js"));
  EXPECT_TRUE(ignore.excluded("src/a/b.test.js"));
  EXPECT_TRUE(ignore.excluded("src/b.test.js"));
}

TEST(DockerIgnoreTest, MayReincludeUnder) {
  auto ignore = mustParse("vendor\n!vendor/keep/**\n!**/important.txt\n");
  EXPECT_TRUE(ignore.excluded("vendor"));
  EXPECT_TRUE(ignore.excluded("vendor/other/file"));
  EXPECT_FALSE(ignore.excluded("vendor/keep/file"));
  EXPECT_FALSE(ignore.excluded("vendor/x/important.txt"));
  EXPECT_TRUE(ignore.mayReincludeUnder("vendor"));
  EXPECT_TRUE(ignore.mayReincludeUnder("vendor/keep"));
  EXPECT_TRUE(ignore.mayReincludeUnder("vendor/other"));  // because of **/important.txt

  auto narrow = mustParse("build\n!build/out/bin\n");
  EXPECT_TRUE(narrow.mayReincludeUnder("build"));
  EXPECT_TRUE(narrow.mayReincludeUnder("build/out"));
  EXPECT_FALSE(narrow.mayReincludeUnder("build/tmp"));
  EXPECT_FALSE(narrow.mayReincludeUnder("other"));
  EXPECT_FALSE(narrow.excluded("build/out/bin"));
  EXPECT_TRUE(narrow.excluded("build/out/lib"));

  auto none = mustParse("build\n");
  EXPECT_FALSE(none.mayReincludeUnder("build"));
}

TEST(DockerIgnoreTest, ExceptionsBeforeAnyExcludeDoNothing) {
  auto ignore = mustParse("!a\n");
  EXPECT_FALSE(ignore.excluded("a"));
  EXPECT_FALSE(ignore.excluded("b"));
}

TEST(DockerIgnoreTest, ExceptionWithSpaceAfterBang) {
  auto ignore = mustParse("*.txt\n!  keep.txt\n");
  EXPECT_FALSE(ignore.excluded("keep.txt"));
  EXPECT_TRUE(ignore.excluded("drop.txt"));
}

TEST(DockerIgnoreTest, ByteOrderMarkAndCrlf) {
  auto ignore = mustParse("\xEF\xBB\xBF*.log\r\ntmp\r\n");
  EXPECT_TRUE(ignore.excluded("a.log"));
  EXPECT_TRUE(ignore.excluded("tmp/x"));
}

TEST(DockerIgnoreTest, PathsAreNormalized) {
  auto ignore = mustParse("a/b\n");
  EXPECT_TRUE(ignore.excluded("./a/b"));
  EXPECT_TRUE(ignore.excluded("a/b/"));
  EXPECT_TRUE(ignore.excluded("/a/b/c"));
}

TEST(DockerIgnoreTest, BadPatternsAreRejectedWithTheLine) {
  EXPECT_THAT(DockerIgnore::parse("ok\n!\n"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("line 2: illegal exclusion")));
  EXPECT_THAT(DockerIgnore::parse("[abc\n"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("line 1: pattern \"[abc\"")));
  EXPECT_THAT(DockerIgnore::parse("x\ny\nfoo\\\n"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("line 3")));
  EXPECT_THAT(DockerIgnore::parse("[z-a]\n"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("out of order")));
}

TEST(DockerIgnoreTest, ManyStarsDoNotBlowUp) {
  std::string pattern;
  for (int i = 0; i < 200; ++i)
    pattern += "*a";
  auto ignore = mustParse(pattern + "\n");
  std::string path(5000, 'a');
  EXPECT_TRUE(ignore.excluded(path));
  EXPECT_FALSE(ignore.excluded(path + "b"));
}

}  // namespace
}  // namespace cairn::dockerfile

// The parser against BuildKit's own test files, plus heredocs, flags and error cases.
#include "cairn/dockerfile/parser.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "cairn/common/fs.h"
#include "cairn/testing/status_matchers.h"

namespace cairn::dockerfile {
namespace {

namespace fs = std::filesystem;
using ::cairn::testing::StatusIs;
using ::testing::HasSubstr;

const fs::path kParserData = fs::path(CAIRN_SHARED_DIR) / "testdata/buildkit-dockerfile/parser";

std::string dumpAst(const Ast& ast) {
  std::string out;
  for (const Node& n : ast.children)
    out += "(" + n.dump() + ")\n";
  return out;
}

std::vector<fs::path> caseDirs(const fs::path& root) {
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(root)) {
    if (e.is_directory()) dirs.push_back(e.path());
  }
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

TEST(ParserTest, EveryBuildKitTestfileDumpsToItsResult) {
  auto dirs = caseDirs(kParserData / "testfiles");
  ASSERT_GE(dirs.size(), 30u);
  for (const fs::path& dir : dirs) {
    SCOPED_TRACE(dir.filename().string());
    ASSERT_OK_AND_ASSIGN(std::string dockerfile, readFile(dir / "Dockerfile"));
    ASSERT_OK_AND_ASSIGN(std::string expected, readFile(dir / "result"));
    auto ast = parseDockerfile(dockerfile);
    ASSERT_TRUE(ast.ok()) << ast.status();
    EXPECT_EQ(dumpAst(*ast), expected);
  }
}

TEST(ParserTest, EveryBuildKitNegativeTestfileIsRejected) {
  auto dirs = caseDirs(kParserData / "testfiles-negative");
  ASSERT_GE(dirs.size(), 4u);
  for (const fs::path& dir : dirs) {
    SCOPED_TRACE(dir.filename().string());
    ASSERT_OK_AND_ASSIGN(std::string dockerfile, readFile(dir / "Dockerfile"));
    EXPECT_THAT(parseDockerfile(dockerfile), StatusIs(StatusCode::kInvalidArgument));
  }
}

TEST(ParserTest, LineInformationMatchesBuildKit) {
  ASSERT_OK_AND_ASSIGN(std::string dockerfile, readFile(kParserData / "testfile-line/Dockerfile"));
  ASSERT_OK_AND_ASSIGN(Ast ast, parseDockerfile(dockerfile));
  EXPECT_EQ(ast.start_line, 5);
  EXPECT_EQ(ast.end_line, 31);
  ASSERT_EQ(ast.children.size(), 3u);
  EXPECT_EQ(ast.children[0].start_line, 5);
  EXPECT_EQ(ast.children[0].end_line, 5);
  EXPECT_EQ(ast.children[1].start_line, 11);
  EXPECT_EQ(ast.children[1].end_line, 12);
  EXPECT_EQ(ast.children[2].start_line, 17);
  EXPECT_EQ(ast.children[2].end_line, 31);
}

TEST(ParserTest, Directives) {
  ASSERT_OK_AND_ASSIGN(Ast ast, parseDockerfile("# syntax=docker/dockerfile:1\n"
                                                "#escape=`\n"
                                                "# check = skip=all\n"
                                                "FROM a\n"
                                                "RUN echo `\n"
                                                "  hi\n"));
  ASSERT_EQ(ast.directives.size(), 3u);
  EXPECT_EQ(ast.directives[0].name, "syntax");
  EXPECT_EQ(ast.directives[0].value, "docker/dockerfile:1");
  EXPECT_EQ(ast.directives[1].name, "escape");
  EXPECT_EQ(ast.directives[2].value, "skip=all");
  EXPECT_EQ(ast.escape, '`');
  ASSERT_EQ(ast.children.size(), 2u);
  EXPECT_EQ(ast.children[1].dump(), "run \"echo   hi\"");
  EXPECT_EQ(ast.children[1].start_line, 5);
  EXPECT_EQ(ast.children[1].end_line, 6);
}

TEST(ParserTest, DirectiveErrors) {
  EXPECT_THAT(
      parseDockerfile("# escape=x\nFROM a\n"),
      StatusIs(StatusCode::kInvalidArgument, HasSubstr("line 1: invalid escape token 'x'")));
  EXPECT_THAT(parseDockerfile("# syntax=a\n# syntax=b\nFROM a\n"),
              StatusIs(StatusCode::kInvalidArgument,
                       HasSubstr("line 2: only one syntax parser directive")));
  // After an instruction or a plain comment, directives are ordinary comments.
  ASSERT_OK_AND_ASSIGN(Ast ast, parseDockerfile("# hello\n# escape=`\nFROM a\n"));
  EXPECT_TRUE(ast.directives.empty());
  EXPECT_EQ(ast.escape, '\\');
}

TEST(ParserTest, ContinuationsAcrossCommentsAndEmptyLines) {
  ASSERT_OK_AND_ASSIGN(Ast ast, parseDockerfile("FROM a\n"
                                                "RUN a \\\n"
                                                "# a comment inside\n"
                                                "\n"
                                                "  b \\\n"
                                                "   \n"
                                                "  c\n"
                                                "RUN d\n"));
  ASSERT_EQ(ast.children.size(), 3u);
  EXPECT_EQ(ast.children[1].dump(), "run \"a   b   c\"");
  EXPECT_EQ(ast.children[1].start_line, 2);
  EXPECT_EQ(ast.children[1].end_line, 7);
  EXPECT_EQ(ast.children[2].start_line, 8);
  EXPECT_EQ(ast.warnings.size(), 1u);
}

TEST(ParserTest, EscapedEscapeIsNotAContinuation) {
  ASSERT_OK_AND_ASSIGN(Ast ast, parseDockerfile("FROM a\nRUN echo \\\\\nRUN b\n"));
  ASSERT_EQ(ast.children.size(), 3u);
  EXPECT_EQ(ast.children[1].dump(), "run \"echo \\\\\\\\\"");
}

TEST(ParserTest, JsonAndShellForms) {
  ASSERT_OK_AND_ASSIGN(Ast ast, parseDockerfile("FROM a\n"
                                                "CMD [\"a\", \"b c\"]\n"
                                                "CMD a [b\n"
                                                "ENTRYPOINT []\n"
                                                "COPY [\"x y\", \"/z\"]\n"
                                                "COPY x   y\n"));
  EXPECT_TRUE(ast.children[1].json);
  EXPECT_EQ(ast.children[1].dump(), "cmd \"a\" \"b c\"");
  EXPECT_FALSE(ast.children[2].json);
  EXPECT_EQ(ast.children[2].dump(), "cmd \"a [b\"");
  EXPECT_TRUE(ast.children[3].json);
  EXPECT_EQ(ast.children[3].dump(), "entrypoint");
  EXPECT_EQ(ast.children[4].dump(), "copy \"x y\" \"/z\"");
  EXPECT_EQ(ast.children[5].dump(), "copy \"x\" \"y\"");
  EXPECT_THAT(
      parseDockerfile("FROM a\nCMD [\"a\", 1]\n"),
      StatusIs(StatusCode::kInvalidArgument, HasSubstr("line 2: when using JSON array syntax")));
}

TEST(ParserTest, Flags) {
  ASSERT_OK_AND_ASSIGN(
      Ast ast, parseDockerfile("FROM --platform=linux/amd64 a AS b\n"
                               "COPY --from=b --chown=\"a b\" --chmod=755 --link x y\n"
                               "RUN --mount=type=cache,target=/root/.cache --network=none make\n"));
  EXPECT_EQ(ast.children[0].dump(), "from [\"--platform=linux/amd64\"] \"a\" \"AS\" \"b\"");
  EXPECT_EQ(ast.children[1].dump(),
            "copy [\"--from=b\" \"--chown=a b\" \"--chmod=755\" \"--link\"] \"x\" \"y\"");
  EXPECT_EQ(ast.children[2].dump(),
            "run [\"--mount=type=cache,target=/root/.cache\" \"--network=none\"] \"make\"");
}

TEST(ParserTest, Heredocs) {
  ASSERT_OK_AND_ASSIGN(Ast ast, parseDockerfile("FROM a\n"
                                                "RUN <<EOF\n"
                                                "echo $HOME\n"
                                                "EOF\n"
                                                "RUN <<-'EOT' bash\n"
                                                "\techo hi\n"
                                                "\tEOT\n"
                                                "COPY <<one 3<<\"two\" /dest/\n"
                                                "first\n"
                                                "one\n"
                                                "second\n"
                                                "two\n"
                                                "RUN [\"echo\", \"<<EOF\"]\n"
                                                "CMD done\n"));
  ASSERT_EQ(ast.children.size(), 6u);
  const Node& run = ast.children[1];
  ASSERT_EQ(run.heredocs.size(), 1u);
  EXPECT_EQ(run.heredocs[0].name, "EOF");
  EXPECT_TRUE(run.heredocs[0].expand);
  EXPECT_FALSE(run.heredocs[0].chomp);
  EXPECT_EQ(run.heredocs[0].content, "echo $HOME\n");
  EXPECT_EQ(run.start_line, 2);
  EXPECT_EQ(run.end_line, 4);
  EXPECT_EQ(run.dump(), "run \"<<EOF\"");

  const Node& chomped = ast.children[2];
  ASSERT_EQ(chomped.heredocs.size(), 1u);
  EXPECT_EQ(chomped.heredocs[0].name, "EOT");
  EXPECT_FALSE(chomped.heredocs[0].expand);
  EXPECT_TRUE(chomped.heredocs[0].chomp);
  EXPECT_EQ(chomped.heredocs[0].content, "\techo hi\n");
  EXPECT_EQ(chompHeredocContent(chomped.heredocs[0].content), "echo hi\n");

  const Node& copy = ast.children[3];
  ASSERT_EQ(copy.heredocs.size(), 2u);
  EXPECT_EQ(copy.heredocs[0].name, "one");
  EXPECT_EQ(copy.heredocs[0].content, "first\n");
  EXPECT_EQ(copy.heredocs[1].name, "two");
  EXPECT_EQ(copy.heredocs[1].fd, 3u);
  EXPECT_FALSE(copy.heredocs[1].expand);
  EXPECT_EQ(copy.heredocs[1].content, "second\n");
  EXPECT_EQ(copy.dump(), "copy \"<<one\" \"3<<\\\"two\\\"\" \"/dest/\"");

  EXPECT_TRUE(ast.children[4].heredocs.empty());  // JSON form: no heredocs
  EXPECT_EQ(ast.children[5].start_line, 14);
}

// The heredoc cases of BuildKit's parser_heredoc_test.go: name, content, expand, chomp, fd.
TEST(ParserTest, BuildKitHeredocCases) {
  const std::string dockerfile =
      "FROM alpine:3.6\n"
      "USER <<INVALID\nINVALID\n"
      "RUN <<EMPTY\nEMPTY\n"
      "RUN 3<<EMPTY2\nEMPTY2\n"
      "RUN \"<<NOHEREDOC\"\n"
      "RUN <<INDENT\n\tfoo\n\tbar\nINDENT\n"
      "RUN <<-UNINDENT\n\tbaz\n\tquux\nUNINDENT\n"
      "RUN <<-UNINDENT2\n\tbaz\n\tquux\n\tUNINDENT2\n"
      "RUN <<-'NOEXPAND'\n\tdon't expand $NAME\nNOEXPAND\n"
      "RUN <<COMMENT\n# internal comment\necho hello world # trailing\nCOMMENT\n"
      "RUN --mount=type=cache,target=/foo <<MOUNT\necho hello\nMOUNT\n"
      "COPY <<X <<Y /dest\nY\nX\nX\nY\n"
      "RUN <<eo'f'\necho foo\neof\n"
      "RUN <<eo\\'f\necho foo\neo'f\n"
      "RUN <<'e'o\\'f\necho foo\neo'f\n"
      "RUN <<'one two'\necho bar\none two\n"
      "RUN <<$EOF\n$EOF\n"
      "RUN <<  EOF\nEOF\n"
      "RUN <<- EOF  > foo\n\tEOF\n"
      "RUN << -EOF\n-EOF\n";
  struct Want {
    std::vector<std::string> names;
    std::string first_content;
    bool expand = true;
    bool chomp = false;
    unsigned fd = 0;
  };
  const std::vector<Want> want = {
      {{}, "", true, false, 0},  // USER <<INVALID
      {{}, "", true, false, 0},  // INVALID (an unknown instruction)
      {{"EMPTY"}, "", true, false, 0},
      {{"EMPTY2"}, "", true, false, 3},
      {{}, "", true, false, 0},  // "<<NOHEREDOC" is quoted
      {{"INDENT"}, "\tfoo\n\tbar\n", true, false, 0},
      {{"UNINDENT"}, "\tbaz\n\tquux\n", true, true, 0},
      {{"UNINDENT2"}, "\tbaz\n\tquux\n", true, true, 0},
      {{"NOEXPAND"}, "\tdon't expand $NAME\n", false, true, 0},
      {{"COMMENT"}, "# internal comment\necho hello world # trailing\n", true, false, 0},
      {{"MOUNT"}, "echo hello\n", true, false, 0},
      {{"X", "Y"}, "Y\n", true, false, 0},
      {{"eof"}, "echo foo\n", false, false, 0},
      {{"eo'f"}, "echo foo\n", true, false, 0},
      {{"eo'f"}, "echo foo\n", false, false, 0},
      {{"one two"}, "echo bar\n", false, false, 0},
      {{"$EOF"}, "", true, false, 0},
      {{"EOF"}, "", true, false, 0},
      {{"EOF"}, "", true, true, 0},
      {{"-EOF"}, "", true, false, 0},
  };
  ASSERT_OK_AND_ASSIGN(Ast ast, parseDockerfile(dockerfile));
  ASSERT_EQ(ast.children.size(), want.size() + 1);
  for (std::size_t i = 0; i < want.size(); ++i) {
    const Node& n = ast.children[i + 1];
    SCOPED_TRACE(n.original);
    ASSERT_EQ(n.heredocs.size(), want[i].names.size());
    for (std::size_t k = 0; k < n.heredocs.size(); ++k) {
      EXPECT_EQ(n.heredocs[k].name, want[i].names[k]);
    }
    if (n.heredocs.empty()) continue;
    EXPECT_EQ(n.heredocs[0].content, want[i].first_content);
    EXPECT_EQ(n.heredocs[0].expand, want[i].expand);
    EXPECT_EQ(n.heredocs[0].chomp, want[i].chomp);
    EXPECT_EQ(n.heredocs[0].fd, want[i].fd);
  }
}

TEST(ParserTest, HeredocWords) {
  for (const char* valid : {"<<EOF", "<<'EOF'", "<<\"EOF\"", "<<-EOF", "<<-'EOF'", "<<-\"EOF\"",
                            "<<EO\"F\"", "<< EOF", "<<- EOF"}) {
    SCOPED_TRACE(valid);
    Heredoc h;
    ASSERT_OK_AND_ASSIGN(bool is_heredoc, parseHeredocWord(valid, h));
    EXPECT_TRUE(is_heredoc);
    EXPECT_EQ(h.name, "EOF");
  }
  for (const char* invalid : {"<<'EOF", "<<\"EOF", "<<EOF'", "<<EOF\""}) {
    SCOPED_TRACE(invalid);
    Heredoc h;
    EXPECT_FALSE(parseHeredocWord(invalid, h).ok());
  }
  for (const char* not_heredoc : {"", "EOF", "<<", "<<-", "<EOF", "<<<EOF", "<<EOF sh"}) {
    SCOPED_TRACE(not_heredoc);
    Heredoc h;
    ASSERT_OK_AND_ASSIGN(bool is_heredoc, parseHeredocWord(not_heredoc, h));
    EXPECT_FALSE(is_heredoc);
  }
}

TEST(ParserTest, UnterminatedHeredoc) {
  EXPECT_THAT(parseDockerfile("FROM a\nRUN <<EOF\necho\n"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("line 2: unterminated heredoc")));
}

TEST(ParserTest, Onbuild) {
  ASSERT_OK_AND_ASSIGN(Ast ast, parseDockerfile("FROM a\n"
                                                "ONBUILD RUN [\"a\"]\n"
                                                "ONBUILD COPY --from=x a b\n"
                                                "ONBUILD RUN <<EOF\nx\nEOF\n"));
  EXPECT_EQ(ast.children[1].dump(), "onbuild (run \"a\")");
  EXPECT_EQ(ast.children[2].dump(), "onbuild (copy [\"--from=x\"] \"a\" \"b\")");
  ASSERT_EQ(ast.children[3].heredocs.size(), 1u);
  EXPECT_EQ(ast.children[3].heredocs[0].content, "x\n");
}

TEST(ParserTest, EnvAndLabelForms) {
  ASSERT_OK_AND_ASSIGN(Ast ast,
                       parseDockerfile("FROM a\nENV A=1 B=\"2 3\"\nLABEL x y z\nARG V=1 W\n"));
  EXPECT_EQ(ast.children[1].dump(), "env \"A\" \"1\" \"=\" \"B\" \"\\\"2 3\\\"\" \"=\"");
  EXPECT_EQ(ast.children[2].dump(), "label \"x\" \"y z\" \"\"");
  EXPECT_EQ(ast.children[3].dump(), "arg \"V=1\" \"W\"");
  EXPECT_THAT(parseDockerfile("FROM a\nENV A=1 B\n"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("line 2: syntax error")));
}

TEST(ParserTest, CommentsAndCrlfAndBom) {
  ASSERT_OK_AND_ASSIGN(Ast ast, parseDockerfile("\xEF\xBB\xBF# base image\r\nFROM a\r\n"
                                                "  # indented comment\r\nRUN x\r\n"));
  ASSERT_EQ(ast.children.size(), 2u);
  EXPECT_EQ(ast.children[0].dump(), "from \"a\"");
  ASSERT_EQ(ast.children[0].comments.size(), 1u);
  EXPECT_EQ(ast.children[0].comments[0], "base image");
  EXPECT_EQ(ast.children[1].dump(), "run \"x\"");
  EXPECT_EQ(ast.children[1].start_line, 4);
}

TEST(ParserTest, GoQuote) {
  EXPECT_EQ(goQuote("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(goQuote("\t\n\x01\x7f"), "\"\\t\\n\\x01\\x7f\"");
  EXPECT_EQ(goQuote("한국어"), "\"한국어\"");
  EXPECT_EQ(goQuote("\xff"), "\"\\xff\"");
}

TEST(ParserTest, LimitsAreEnforced) {
  ParseLimits limits;
  limits.max_bytes = 10;
  EXPECT_THAT(parseDockerfile("FROM alpine:3.19\n", limits),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("more than the limit")));
  limits = ParseLimits();
  limits.max_lines = 2;
  EXPECT_THAT(parseDockerfile("FROM a\nRUN b\nRUN c\n", limits),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("lines")));
}

TEST(ParserTest, DeepOnbuildDoesNotRecurse) {
  std::string text = "FROM a\n";
  for (int i = 0; i < 10000; ++i)
    text += "ONBUILD ";
  text += "RUN x\n";
  ASSERT_OK_AND_ASSIGN(Ast ast, parseDockerfile(text));
  EXPECT_EQ(ast.children.size(), 2u);
}

}  // namespace
}  // namespace cairn::dockerfile

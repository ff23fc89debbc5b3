// The shell lexer against BuildKit's envVarTest and wordsTest tables, plus the pattern
// modifiers.
#include "cairn/dockerfile/shell_lexer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "cairn/common/fs.h"
#include "cairn/common/strings.h"
#include "cairn/testing/status_matchers.h"

namespace cairn::dockerfile {
namespace {

namespace fs = std::filesystem;
using ::cairn::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const fs::path kShellData = fs::path(CAIRN_SHARED_DIR) / "testdata/buildkit-dockerfile/shell";

TEST(ShellLexerTest, EnvVarTestUnixRows) {
  ASSERT_OK_AND_ASSIGN(std::string table, readFile(kShellData / "envVarTest"));
  EnvMap env{{"PWD", "/home"}, {"SHELL", "bash"}, {"KOREAN", "한국어"}, {"NULL", ""}};
  ShellLexer lexer('\\');
  int rows = 0;
  for (const std::string& raw : splitString(table, '\n')) {
    std::string_view line = trimSpace(raw);
    if (line.empty() || line.front() == '#') continue;
    std::vector<std::string> parts = splitString(raw, '|');
    ASSERT_EQ(parts.size(), 3u) << raw;
    std::string platform(trimSpace(parts[0]));
    if (platform != "A" && platform != "U") continue;
    std::string input(trimSpace(parts[1]));
    std::string expected(trimSpace(parts[2]));
    ++rows;
    auto got = lexer.processWord(input, env);
    if (expected == "error") {
      EXPECT_FALSE(got.ok()) << "input " << input << " gave " << (got.ok() ? *got : "");
    } else {
      ASSERT_TRUE(got.ok()) << "input " << input << ": " << got.status();
      EXPECT_EQ(*got, expected) << "input " << input;
    }
  }
  EXPECT_GT(rows, 200);
}

TEST(ShellLexerTest, WordsTestRows) {
  ASSERT_OK_AND_ASSIGN(std::string table, readFile(kShellData / "wordsTest"));
  EnvMap env;
  ShellLexer lexer('\\');
  int rows = 0;
  for (const std::string& raw : splitString(table, '\n')) {
    if (raw.empty() || raw.front() == '#') continue;
    if (raw.starts_with("ENV ")) {
      std::string kv = raw.substr(4);
      std::size_t eq = kv.find('=');
      ASSERT_NE(eq, std::string::npos);
      env[kv.substr(0, eq)] = kv.substr(eq + 1);
      continue;
    }
    std::size_t bar = raw.find('|');
    ASSERT_NE(bar, std::string::npos) << raw;
    std::string input(trimSpace(std::string_view(raw).substr(0, bar)));
    std::string expected(trimLeftSpace(std::string_view(raw).substr(bar + 1)));
    ++rows;
    auto got = lexer.processWords(input, env);
    if (expected == "error") {
      EXPECT_FALSE(got.ok()) << "input " << input;
      continue;
    }
    ASSERT_TRUE(got.ok()) << "input " << input << ": " << got.status();
    EXPECT_EQ(joinStrings(*got, ","), expected) << "input " << input;
  }
  EXPECT_GT(rows, 20);
}

TEST(ShellLexerTest, PatternModifiers) {
  EnvMap env{{"P", "/usr/local/bin/tool.tar.gz"}, {"S", "aXbXc"}};
  ShellLexer lexer('\\');
  auto word = [&](std::string_view w) {
    auto r = lexer.processWord(w, env);
    return r.ok() ? *r : "ERR: " + r.status().message();
  };
  EXPECT_EQ(word("${P#*/}"), "usr/local/bin/tool.tar.gz");
  EXPECT_EQ(word("${P##*/}"), "tool.tar.gz");
  EXPECT_EQ(word("${P%.*}"), "/usr/local/bin/tool.tar");
  EXPECT_EQ(word("${P%%.*}"), "/usr/local/bin/tool");
  EXPECT_EQ(word("${P%/*}"), "/usr/local/bin");
  EXPECT_EQ(word("${P#nomatch}"), "/usr/local/bin/tool.tar.gz");
  EXPECT_EQ(word("${P#/us?}"), "/local/bin/tool.tar.gz");
  EXPECT_EQ(word("${S/X/-}"), "a-bXc");
  EXPECT_EQ(word("${S//X/-}"), "a-b-c");
  EXPECT_EQ(word("${S//X*/-}"), "a-");
  EXPECT_EQ(word("${S/nomatch/-}"), "aXbXc");
  EXPECT_EQ(word("${UNSET/a/b}"), "");
  EXPECT_EQ(word("${S#\\*}"), "aXbXc");
  EXPECT_THAT(word("${S#\\q}"), HasSubstr("invalid escape"));
  EXPECT_THAT(word("${S/a"), HasSubstr("missing '/'"));
}

TEST(ShellLexerTest, ErrorModifierMessages) {
  EnvMap env{{"E", ""}};
  ShellLexer lexer('\\');
  EXPECT_THAT(lexer.processWord("${X:?must be set}", env),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("X: must be set")));
  EXPECT_THAT(lexer.processWord("${E:?}", env),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("E: is not allowed to be empty")));
  EXPECT_THAT(lexer.processWord("${X?}", env),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("X: is not allowed to be unset")));
  EXPECT_THAT(lexer.processWord("${E?}", env), ::cairn::testing::IsOk());
}

TEST(ShellLexerTest, BacktickEscape) {
  ShellLexer lexer('`');
  EnvMap env{{"A", "x"}};
  ASSERT_OK_AND_ASSIGN(std::string w, lexer.processWord("c:\\dir\\`$A", env));
  EXPECT_EQ(w, "c:\\dir\\$A");
}

TEST(ShellLexerTest, SkipUnsetEnvKeepsReferences) {
  ShellLexerOptions options;
  options.skip_unset_env = true;
  ShellLexer lexer('\\', options);
  EnvMap env{{"A", "1"}};
  ASSERT_OK_AND_ASSIGN(std::string w, lexer.processWord("$A $B ${C} ${D:-x}", env));
  EXPECT_EQ(w, "1 $B ${C} ${D:-x}");
}

TEST(ShellLexerTest, ReportsMatchedAndUnmatched) {
  ShellLexer lexer('\\');
  EnvMap env{{"A", "1"}};
  ASSERT_OK_AND_ASSIGN(ProcessedWord r, lexer.process("$A $B ${A}", lookupIn(env)));
  EXPECT_THAT(r.matched, ElementsAre("A"));
  EXPECT_THAT(r.unmatched, ElementsAre("B"));
  EXPECT_THAT(r.words, ElementsAre("1", "1"));
}

TEST(ShellLexerTest, DeepNestingIsAnErrorNotACrash) {
  std::string w;
  for (int i = 0; i < 5000; ++i)
    w += "${A:-";
  for (int i = 0; i < 5000; ++i)
    w += "}";
  ShellLexer lexer('\\');
  EXPECT_THAT(lexer.processWord(w, EnvMap()),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("nested too deeply")));
}

}  // namespace
}  // namespace cairn::dockerfile

// The typed instruction layer: golden IR dumps for whole Dockerfiles, typed fields, and the
// errors a mistyped Dockerfile gets.
#include "cairn/dockerfile/instructions.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "cairn/common/fs.h"
#include "cairn/testing/status_matchers.h"

namespace cairn::dockerfile {
namespace {

namespace fs = std::filesystem;
using ::cairn::testing::StatusIs;
using ::testing::HasSubstr;

const fs::path kIrData = fs::path(CAIRN_SOURCE_DIR) / "tests/data/dockerfile/ir";

// Each <case>.Dockerfile dumps to <case>.ir. Set CAIRN_UPDATE_GOLDEN=1 to rewrite the goldens.
TEST(InstructionsTest, GoldenIrDumps) {
  int cases = 0;
  for (const auto& entry : fs::directory_iterator(kIrData)) {
    if (entry.path().extension() != ".Dockerfile") continue;
    ++cases;
    SCOPED_TRACE(entry.path().filename().string());
    ASSERT_OK_AND_ASSIGN(std::string text, readFile(entry.path()));
    ASSERT_OK_AND_ASSIGN(Dockerfile df, parseDockerfileInstructions(text));
    std::string dump = dumpInstructions(df);
    fs::path golden = entry.path();
    golden.replace_extension(".ir");
    if (std::getenv("CAIRN_UPDATE_GOLDEN") != nullptr) {
      ASSERT_OK(writeFileDurable(golden, dump));
      continue;
    }
    ASSERT_OK_AND_ASSIGN(std::string expected, readFile(golden));
    EXPECT_EQ(dump, expected);
  }
  EXPECT_GE(cases, 3);
}

TEST(InstructionsTest, StagesAndTypedCommands) {
  ASSERT_OK_AND_ASSIGN(
      Dockerfile df,
      parseDockerfileInstructions("ARG BASE=alpine\n"
                                  "FROM ${BASE} AS First\n"
                                  "RUN --mount=type=cache,target=/c echo hi\n"
                                  "COPY --from=0 --parents a/ b /dst/\n"
                                  "FROM --platform=linux/arm64 first\n"
                                  "HEALTHCHECK --interval=1m30s --retries=2 CMD [\"true\"]\n"));
  ASSERT_EQ(df.meta_args.size(), 1u);
  EXPECT_EQ(df.meta_args[0].key, "BASE");
  EXPECT_EQ(df.meta_args[0].value, "alpine");
  ASSERT_EQ(df.stages.size(), 2u);
  EXPECT_EQ(df.stages[0].name, "first");
  EXPECT_EQ(df.stages[0].base_name, "${BASE}");
  EXPECT_EQ(df.stages[1].platform, "linux/arm64");
  ASSERT_EQ(df.stages[0].commands.size(), 2u);
  const auto& run = std::get<RunCommand>(df.stages[0].commands[0].cmd);
  EXPECT_EQ(df.stages[0].commands[0].start_line, 3);
  ASSERT_EQ(run.mounts.size(), 1u);
  EXPECT_EQ(run.mounts[0].type, MountType::kCache);
  EXPECT_EQ(run.mounts[0].target, "/c");
  EXPECT_FALSE(run.mounts[0].read_only);
  EXPECT_TRUE(run.cmd.prepend_shell);
  EXPECT_THAT(run.cmd.args, ::testing::ElementsAre("echo hi"));
  const auto& copy = std::get<CopyCommand>(df.stages[0].commands[1].cmd);
  EXPECT_EQ(copy.from, "0");
  EXPECT_TRUE(copy.parents);
  EXPECT_THAT(copy.sources, ::testing::ElementsAre("a/", "b"));
  EXPECT_EQ(copy.dest, "/dst/");
  const auto& hc = std::get<HealthcheckCommand>(df.stages[1].commands[0].cmd);
  EXPECT_EQ(hc.interval_ns, 90'000'000'000);
  EXPECT_EQ(hc.retries, 2);
  EXPECT_THAT(hc.test, ::testing::ElementsAre("CMD", "true"));
}

TEST(InstructionsTest, HeredocContentIsAttached) {
  ASSERT_OK_AND_ASSIGN(Dockerfile df, parseDockerfileInstructions("FROM a\n"
                                                                  "COPY <<-EOT /f\n"
                                                                  "\t\tindented\n"
                                                                  "\tEOT\n"
                                                                  "RUN <<'A' <<B\n"
                                                                  "one $X\n"
                                                                  "A\n"
                                                                  "two\n"
                                                                  "B\n"));
  const auto& copy = std::get<CopyCommand>(df.stages[0].commands[0].cmd);
  ASSERT_EQ(copy.source_contents.size(), 1u);
  EXPECT_EQ(copy.source_contents[0].name, "EOT");
  EXPECT_EQ(copy.source_contents[0].data, "indented\n");
  EXPECT_TRUE(copy.sources.empty());
  const Command& run_cmd = df.stages[0].commands[1];
  EXPECT_EQ(run_cmd.start_line, 5);
  EXPECT_EQ(run_cmd.end_line, 9);
  const auto& run = std::get<RunCommand>(run_cmd.cmd);
  ASSERT_EQ(run.cmd.files.size(), 2u);
  EXPECT_FALSE(run.cmd.files[0].expand);
  EXPECT_EQ(run.cmd.files[0].data, "one $X\n");
  EXPECT_TRUE(run.cmd.files[1].expand);
  EXPECT_EQ(run.cmd.files[1].data, "two\n");
}

TEST(InstructionsTest, CopyHeredocWithSpaceAfterOperator) {
  ASSERT_OK_AND_ASSIGN(Dockerfile df,
                       parseDockerfileInstructions("FROM a\nCOPY << EOF /dest\nhello\nEOF\n"));
  const auto& copy = std::get<CopyCommand>(df.stages[0].commands[0].cmd);
  EXPECT_TRUE(copy.sources.empty());
  ASSERT_EQ(copy.source_contents.size(), 1u);
  EXPECT_EQ(copy.source_contents[0].name, "EOF");
  EXPECT_EQ(copy.source_contents[0].data, "hello\n");
  EXPECT_EQ(copy.dest, "/dest");
}

TEST(InstructionsTest, ExpandInlineFileKeepsQuotes) {
  EnvMap env{{"A", "1"}};
  InlineFile file{"f", "echo \"$A\" '$A' ${B:-two} \\$A\n", true, false};
  ASSERT_OK_AND_ASSIGN(std::string expanded, expandInlineFile(file, env));
  EXPECT_EQ(expanded, "echo \"1\" '1' two $A\n");
  file.expand = false;
  ASSERT_OK_AND_ASSIGN(std::string raw, expandInlineFile(file, env));
  EXPECT_EQ(raw, file.data);
}

struct ErrorCase {
  const char* dockerfile;
  const char* message;
};

TEST(InstructionsTest, ErrorsNameTheLineAndSayWhatIsWrong) {
  const ErrorCase cases[] = {
      {"FROM a\nRUN x\nCPY a b\n",
       "line 3, column 1: unknown instruction: CPY (did you mean COPY?)"},
      {"FROM a\n  ENTRYPIONT [\"x\"]\n",
       "line 2, column 3: unknown instruction: ENTRYPIONT (did you mean ENTRYPOINT?)"},
      {"FROM a\nFOOBARBAZ x\n", "line 2, column 1: unknown instruction: FOOBARBAZ"},
      {"FROM a\nCOPY --form=b x y\n",
       "line 2, column 6: unknown flag --form for COPY (did you mean --from?)"},
      {"FROM a\nRUN --mount=type=cache,target=/x --netwrok=none x\n",
       "unknown flag --netwrok for RUN (did you mean --network?)"},
      {"FROM a\nCMD --doit x\n",
       "line 2, column 5: unknown flag --doit for CMD (it takes no flags)"},
      {"FROM a\nCOPY --link=maybe a b\n", "expecting boolean value for flag --link, not: maybe"},
      {"FROM a\nCOPY --from a b\n", "missing a value on flag: --from"},
      {"FROM a\nCOPY --chown=a --chown=b a b\n", "duplicate flag specified: --chown"},
      {"FROM a\nCOPY onlyone\n", "line 2, column 1: COPY requires at least two arguments"},
      {"FROM a\nADD --checksum=md5:zz a b\n", "invalid --checksum"},
      {"FROM a\nCOPY --chmod=abc a b\n", "invalid --chmod value"},
      {"FROM a\nRUN --mount=type=cahce,target=/x x\n",
       "unsupported mount type \"cahce\" (did you mean cache?)"},
      {"FROM a\nRUN --mount=type=cache x\n", "cache mount needs a target"},
      {"FROM a\nRUN --mount=type=bind,target=/x,sharing=locked x\n",
       "invalid cache sharing set for bind mount"},
      {"FROM a\nRUN --mount=type=cache,target=/x,bogus=1 x\n", "unexpected key 'bogus'"},
      {"FROM a\nRUN --network=bridge x\n", "unsupported network mode \"bridge\""},
      {"FROM a\nRUN --security=root x\n", "unsupported security mode"},
      {"FROM a\nRUN\n", "line 2, column 1: RUN requires at least one argument"},
      {"FROM a\nHEALTHCHECK --interval=5 CMD x\n", "invalid duration \"5\""},
      {"FROM a\nHEALTHCHECK --timeout=10us CMD x\n", "--timeout cannot be less than 1ms"},
      {"FROM a\nHEALTHCHECK --retries=-1 CMD x\n", "--retries cannot be negative"},
      {"FROM a\nHEALTHCHECK CMD\n", "missing command after HEALTHCHECK CMD"},
      {"FROM a\nHEALTHCHECK RUN x\n", "unknown type \"RUN\" in HEALTHCHECK"},
      {"FROM a\nHEALTHCHECK NONE x\n", "HEALTHCHECK NONE takes no arguments"},
      {"FROM a\nSHELL /bin/sh -c\n", "SHELL requires the arguments to be in JSON form"},
      {"FROM a\nWORKDIR\n", "WORKDIR requires exactly one argument"},
      {"FROM a\nUSER\n", "USER requires exactly one argument"},
      {"FROM a\nEXPOSE\n", "EXPOSE requires at least one argument"},
      {"FROM a\nVOLUME [\"\"]\n", "VOLUME specified can not be an empty string"},
      {"FROM a\nONBUILD ONBUILD RUN x\n", "chaining ONBUILD"},
      {"FROM a\nONBUILD FROM b\n", "FROM isn't allowed as an ONBUILD trigger"},
      {"FROM a\nONBUILD CPY a b\n", "unknown instruction: CPY (did you mean COPY?)"},
      {"FROM a\nLABEL\n", "LABEL requires at least one argument"},
      {"FROM a b\n", "FROM requires either one or three arguments"},
      {"FROM a AS 1x\n", "invalid name for build stage: \"1x\""},
      {"FROM a AS x\nFROM b AS X\n",
       "line 2, column 1: duplicate stage name \"x\" (first used on line 1)"},
      {"RUN x\nFROM a\n", "line 1, column 1: RUN comes before any FROM"},
      {"ARG A\n", "no FROM instruction"},
      {"FROM a\nCOPY a <<EOF\nx\nEOF\n", "heredoc as a destination"},
  };
  for (const ErrorCase& c : cases) {
    SCOPED_TRACE(c.dockerfile);
    EXPECT_THAT(parseDockerfileInstructions(c.dockerfile),
                StatusIs(StatusCode::kInvalidArgument, HasSubstr(c.message)));
  }
}

// The cases of BuildKit's instructions/parse_test.go, inside a stage.
TEST(InstructionsTest, BuildKitErrorCases) {
  for (const char* cmd : {"MAINTAINER", "WORKDIR", "USER", "STOPSIGNAL"}) {
    EXPECT_THAT(parseDockerfileInstructions(std::string("FROM a\n") + cmd + "\n"),
                StatusIs(StatusCode::kInvalidArgument,
                         HasSubstr(std::string(cmd) + " requires exactly one argument")));
  }
  for (const char* cmd : {"ENV", "LABEL", "ONBUILD", "HEALTHCHECK", "EXPOSE", "VOLUME"}) {
    EXPECT_THAT(parseDockerfileInstructions(std::string("FROM a\n") + cmd + "\n"),
                StatusIs(StatusCode::kInvalidArgument,
                         HasSubstr(std::string(cmd) + " requires at least one argument")));
  }
  for (const char* cmd : {"ADD", "COPY"}) {
    EXPECT_THAT(parseDockerfileInstructions(std::string("FROM a\n") + cmd + " arg1\n"),
                StatusIs(StatusCode::kInvalidArgument,
                         HasSubstr(std::string(cmd) + " requires at least two arguments")));
  }
  EXPECT_THAT(parseDockerfileInstructions("FROM a\nCOPY\t\n\t\tquux \\\n      bar"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("COPY requires at least two")));
  EXPECT_THAT(parseDockerfileInstructions("FROM a\nMAINTAINER --boo joe@example.com\n"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("unknown flag --boo")));
  EXPECT_THAT(parseDockerfileInstructions("FROM a\nfoo bar\n"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("unknown instruction: foo")));
  ASSERT_OK_AND_ASSIGN(Dockerfile df,
                       parseDockerfileInstructions("FROM a\nHEALTHCHECK CMD hello world\n"));
  EXPECT_THAT(std::get<HealthcheckCommand>(df.stages[0].commands[0].cmd).test,
              ::testing::ElementsAre("CMD-SHELL", "hello world"));
  ASSERT_OK_AND_ASSIGN(df,
                       parseDockerfileInstructions("FROM a\nHEALTHCHECK --interval=1ms CMD x\n"));
}

TEST(InstructionsTest, GoDurations) {
  EXPECT_EQ(*parseGoDuration("0"), 0);
  EXPECT_EQ(*parseGoDuration("1h2m3s"), 3723'000'000'000);
  EXPECT_EQ(*parseGoDuration("1.5s"), 1'500'000'000);
  EXPECT_EQ(*parseGoDuration("250ms"), 250'000'000);
  EXPECT_EQ(*parseGoDuration("10us"), 10'000);
  EXPECT_EQ(*parseGoDuration("-2s"), -2'000'000'000);
  EXPECT_THAT(parseGoDuration(""), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(parseGoDuration("5"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(parseGoDuration("5d"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(parseGoDuration("99999999999h"), StatusIs(StatusCode::kInvalidArgument));
}

TEST(InstructionsTest, MountDefaults) {
  ASSERT_OK_AND_ASSIGN(
      Dockerfile df,
      parseDockerfileInstructions("FROM a\n"
                                  "RUN --mount=target=/src --mount=type=secret,id=tok,env=TOKEN "
                                  "--mount=type=secret,target=/run/s/key "
                                  "--mount='type=bind,\"source=a,b\",target=/t' x\n"));
  const auto& run = std::get<RunCommand>(df.stages[0].commands[0].cmd);
  ASSERT_EQ(run.mounts.size(), 4u) << df.stages[0].commands[0].original;
  EXPECT_EQ(run.mounts[0].type, MountType::kBind);
  EXPECT_TRUE(run.mounts[0].read_only);
  EXPECT_EQ(run.mounts[1].cache_id, "tok");
  EXPECT_EQ(run.mounts[1].env, "TOKEN");
  EXPECT_TRUE(run.mounts[1].target.empty());
  EXPECT_EQ(run.mounts[2].cache_id, "key");
  EXPECT_EQ(run.mounts[2].target, "/run/s/key");
  EXPECT_EQ(run.mounts[3].source, "a,b");
  EXPECT_EQ(run.mounts[3].target, "/t");
}

}  // namespace
}  // namespace cairn::dockerfile

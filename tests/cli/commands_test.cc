// The real `cairn` binary's command line as a whole, without root or a server: `--help` lists
// every command, and lines whose reading depends on which commands exist behave the same
// whether `cairn` builds only the invoked command's options (the usual case) or all of them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "cairn/common/fs.h"
#include "cairn/testing/status_matchers.h"
#include "run_cairn.h"

namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

class CommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(auto dir, cairn::TempDir::create("cli-commands"));
    tmp_ = std::make_unique<cairn::TempDir>(std::move(dir));
  }
  cairn::testing::CairnRun run(const std::vector<std::string>& args) {
    return cairn::testing::runCairn(tmp_->path(), args,
                                    {{"XDG_DATA_HOME", (tmp_->path() / "xdg").string()}});
  }
  std::unique_ptr<cairn::TempDir> tmp_;
};

TEST_F(CommandsTest, HelpListsEveryCommandWithItsDescription) {
  const std::string kCommands[][2] = {
      {"build", "Build an image from a Dockerfile into the local store"},
      {"serve", "Run the Daytona-compatible snapshot server"},
      {"admin", "Organizations and API keys (server side)"},
      {"dockerfile", "Work with Dockerfiles"},
      {"image", "Pull, push, import, export and list images"},
      {"run", "Run a command in a sandbox"},
      {"snapshot", "Create, list, inspect and delete snapshots on a Cairn or Daytona server"},
      {"base", "Debian base images without Docker Hub"},
      {"version", "Print the version and the data directory in use"}};
  auto help = run({"--help"});
  EXPECT_EQ(help.exit_code, 0) << help.err;
  size_t at = 0;
  for (const auto& [name, description] : kCommands) {
    size_t line = help.out.find("\n  " + name + " ", at);
    ASSERT_NE(line, std::string::npos) << name << " missing or out of order in\n" << help.out;
    EXPECT_THAT(help.out.substr(line, help.out.find('\n', line + 1) - line),
                HasSubstr(description));
    at = line + 1;
  }
}

TEST_F(CommandsTest, EachCommandsHelpShowsItsOwnOptions) {
  auto build = run({"build", "--help"});
  EXPECT_EQ(build.exit_code, 0);
  EXPECT_THAT(build.out, HasSubstr("--build-arg"));
  auto key = run({"admin", "key", "create", "--help"});
  EXPECT_EQ(key.exit_code, 0);
  EXPECT_THAT(key.out, HasSubstr("--permissions"));
  // Help asked before the command still shows the command's own.
  auto before = run({"--help", "image"});
  EXPECT_EQ(before.exit_code, 0);
  EXPECT_THAT(before.out, HasSubstr("Usage: cairn image"));
  EXPECT_THAT(before.out, HasSubstr("--registry-config"));
}

TEST_F(CommandsTest, AValueOfCairnsOwnOptionIsNotTheCommand) {
  auto r = run({"--data-dir", "version", "version"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // Relative, so resolved against the working directory `cairn` runs in (this test's).
  EXPECT_THAT(r.out,
              HasSubstr("data dir: " + (std::filesystem::current_path() / "version").string()));
  auto eq = run({"--data-dir=" + (tmp_->path() / "d").string(), "--log-level", "info", "version"});
  EXPECT_EQ(eq.exit_code, 0) << eq.err;
  EXPECT_THAT(eq.out, HasSubstr("data dir: " + (tmp_->path() / "d").string()));
}

TEST_F(CommandsTest, UsageErrorsNameWhatIsWrong) {
  auto none = run({});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_THAT(none.err, HasSubstr("A subcommand is required"));
  // CLI11's words for a word that names no command.
  auto bogus = run({"bogus"});
  EXPECT_EQ(bogus.exit_code, 2);
  EXPECT_THAT(bogus.err, HasSubstr("A subcommand is required"));
  // `bogus` is the word main takes for the command, so version is a placeholder when CLI11
  // reaches it: main builds every command and parses again, and the error is CLI11's as before.
  auto late = run({"bogus", "version"});
  EXPECT_EQ(late.exit_code, 2);
  EXPECT_THAT(late.err, HasSubstr("not expected: bogus"));
  EXPECT_THAT(late.out, IsEmpty());
  auto flag = run({"version", "--bogus"});
  EXPECT_EQ(flag.exit_code, 2);
  EXPECT_THAT(flag.err, HasSubstr("--bogus"));
  auto early = run({"--bogus", "version"});
  EXPECT_EQ(early.exit_code, 2);
  EXPECT_THAT(early.err, HasSubstr("--bogus"));
  auto missing = run({"--data-dir"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.err, HasSubstr("--data-dir"));
  // A second command is an extra argument, whichever of the two is built.
  auto two = run({"version", "snapshot"});
  EXPECT_EQ(two.exit_code, 2);
  EXPECT_THAT(two.err, HasSubstr("not expected: snapshot"));
  auto sub = run({"snapshot", "version"});
  EXPECT_EQ(sub.exit_code, 2);
  EXPECT_THAT(sub.err, HasSubstr("A subcommand is required"));
  auto nested = run({"dockerfile", "check"});
  EXPECT_EQ(nested.exit_code, 2);
  EXPECT_THAT(nested.err, HasSubstr("FILE is required"));
  EXPECT_THAT(nested.out, IsEmpty());
}

TEST_F(CommandsTest, VersionFlagAndCommand) {
  auto flag = run({"--version"});
  EXPECT_EQ(flag.exit_code, 0);
  EXPECT_THAT(flag.out, HasSubstr("cairn 0.1.0"));
  auto cmd = run({"version"});
  EXPECT_EQ(cmd.exit_code, 0);
  EXPECT_THAT(cmd.out,
              HasSubstr("cairn 0.1.0\ndata dir: " + (tmp_->path() / "xdg/cairn").string()));
}

// libcurl, libarchive and libcrypto (and their chains) are loaded on first use: a start of
// `cairn` maps none of them (docs/architecture.md, "Dependencies"). A link change that brings
// one back costs every `cairn run` its load again, which no functional test would notice. The
// dynamic loader lists what it maps for the binary, without running it, when
// LD_TRACE_LOADED_OBJECTS is set (what ldd does).
TEST_F(CommandsTest, AStartMapsNoneOfTheLibrariesLoadedOnFirstUse) {
  auto traced = cairn::testing::runProgram(CAIRN_BINARY, tmp_->path(), {},
                                           {{"LD_TRACE_LOADED_OBJECTS", "1"}});
  ASSERT_EQ(traced.exit_code, 0) << traced.err;
  ASSERT_THAT(traced.out, HasSubstr("libc.so.6")) << "not the loader's list";
  for (const char* lib : {"libcurl", "libarchive", "libcrypto", "libssl", "libxml2", "libicu",
                          "libnettle", "libgnutls"}) {
    EXPECT_THAT(traced.out, ::testing::Not(HasSubstr(lib))) << traced.out;
  }
}

}  // namespace

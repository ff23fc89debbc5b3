// `cairn run`'s command line, without root: the real binary against an empty data directory.
// What the arguments mean shows in how far a run gets — a missing image (125) means the line
// was accepted and IMAGE understood; a usage error (2) names what is wrong. The sandbox side
// (what the command receives) is in run_command_test.cc, which needs root.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cairn/common/fs.h"
#include "cairn/testing/status_matchers.h"
#include "run_cairn.h"

namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class RunArgsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(auto dir, cairn::TempDir::create("cli-run-args"));
    tmp_ = std::make_unique<cairn::TempDir>(std::move(dir));
  }
  cairn::testing::CairnRun run(std::vector<std::string> args) {
    args.insert(args.begin(), {"--data-dir", (tmp_->path() / "data").string(), "run"});
    return cairn::testing::runCairn(tmp_->path(), args);
  }
  std::unique_ptr<cairn::TempDir> tmp_;
};

TEST_F(RunArgsTest, OptionsAfterTheImageBelongToTheCommand) {
  // Used to stop at "The following argument was not expected: -c" (usage, exit 2).
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"nope:1", "sh", "-c", "echo hi"},
        std::vector<std::string>{"nope:1", "ls", "--network", "host", "--no-such-flag"},
        std::vector<std::string>{"--network", "none", "nope:1", "--", "sh", "-c", "echo hi"}}) {
    auto r = run(args);
    EXPECT_EQ(r.exit_code, 125) << args[1] << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr("image \"nope:1\" is not in the local store"));
    EXPECT_THAT(r.err, Not(HasSubstr("not expected")));
  }
}

TEST_F(RunArgsTest, OptionsBeforeTheImageAreStillCheckedAndParsed) {
  auto unknown = run({"--no-such-flag", "nope:1", "true"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.err, HasSubstr("--no-such-flag"));
  // A flag's value is parsed as the flag's, not taken for the image.
  auto bad_network = run({"--network", "bogus", "--rootfs", tmp_->path().string(), "true"});
  EXPECT_EQ(bad_network.exit_code, 2) << bad_network.err;
  EXPECT_THAT(bad_network.err, HasSubstr("bogus"));
  auto negative = run({"--memory", "-1", "--rootfs", tmp_->path().string(), "true"});
  EXPECT_EQ(negative.exit_code, 2) << negative.err;
  EXPECT_THAT(negative.err, HasSubstr("must not be negative"));
}

TEST_F(RunArgsTest, NothingToRunIsAUsageError) {
  auto none = run({});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_THAT(none.err, HasSubstr("give an IMAGE or --rootfs DIR"));
  // With --rootfs the first positional is the command; `--` alone leaves none.
  auto dashes = run({"--rootfs", tmp_->path().string(), "--"});
  EXPECT_EQ(dashes.exit_code, 2);
  EXPECT_THAT(dashes.err, HasSubstr("no command given"));
}

}  // namespace

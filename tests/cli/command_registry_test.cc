// The subcommand registry (src/cli/command.cc, compiled into this test): which command a command
// line invokes, that only that command's options are built, that the others still show in
// `--help` exactly as when complete, and that parsing into a placeholder asks for every command.
// The commands here are this test's own; the real ones are checked end to end in
// commands_test.cc.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cairn/cli/command.h"

namespace {

using ::cairn::cli::addCommands;
using ::cairn::cli::GlobalOptions;
using ::cairn::cli::invokedCommand;
using ::cairn::cli::NeedEveryCommand;
using ::testing::ElementsAre;

int g_alpha_builds = 0;
int g_beta_builds = 0;
int g_gamma_builds = 0;
int g_alpha_runs = 0;
std::string g_beta_value;
bool g_alpha_loud = false;

void buildAlpha(CLI::App& cmd, GlobalOptions& /*options*/) {
  ++g_alpha_builds;
  cmd.add_flag("--loud", g_alpha_loud, "Say it louder");
  cmd.callback([] { ++g_alpha_runs; });
}

void buildBeta(CLI::App& cmd, GlobalOptions& /*options*/) {
  ++g_beta_builds;
  cmd.require_subcommand(1);
  auto* set = cmd.add_subcommand("set", "Set the value");
  set->add_option("VALUE", g_beta_value, "The value")->required();
}

void buildGamma(CLI::App& cmd, GlobalOptions& /*options*/) {
  ++g_gamma_builds;
  cmd.add_option("--depth", "How deep");
}

// Orders as the real commands use them: gamma and beta share one order and keep the order they
// registered in.
CAIRN_REGISTER_SUBCOMMAND(20, "beta", "Holds a value", buildBeta);
CAIRN_REGISTER_SUBCOMMAND(20, "gamma", "Another command", buildGamma);
CAIRN_REGISTER_SUBCOMMAND(10, "alpha", "Does alpha things", buildAlpha);

std::vector<const char*> argvOf(const std::vector<const char*>& args) {
  std::vector<const char*> argv{"cairn"};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

std::string invoked(const std::vector<const char*>& args) {
  auto argv = argvOf(args);
  return invokedCommand(static_cast<int>(argv.size()), argv.data());
}

// The top-level app as main makes it, with its commands added for `only`.
struct TestApp {
  explicit TestApp(const std::string& only) {
    app.require_subcommand(1);
    app.add_option("--data-dir", options.data_dir, "Data directory");
    app.add_option("--log-level", options.log_level, "Level");
    addCommands(app, options, only);
  }
  void parse(const std::vector<const char*>& args) {
    auto argv = argvOf(args);
    app.parse(static_cast<int>(argv.size()), argv.data());
  }
  GlobalOptions options;
  CLI::App app{"test app", "cairn"};
};

class CommandRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    g_alpha_builds = g_beta_builds = g_gamma_builds = g_alpha_runs = 0;
    g_beta_value.clear();
  }
};

TEST_F(CommandRegistryTest, InvokedCommandIsTheFirstWordAfterCairnsOwnOptions) {
  EXPECT_EQ(invoked({"alpha"}), "alpha");
  EXPECT_EQ(invoked({"beta", "set", "x"}), "beta");
  // A value option takes the next word whatever it looks like, as CLI11 does.
  EXPECT_EQ(invoked({"--data-dir", "alpha", "beta"}), "beta");
  EXPECT_EQ(invoked({"--log-level", "debug", "--data-dir=/d", "alpha"}), "alpha");
  EXPECT_EQ(invoked({"--log-level=info", "-h", "--help", "--version", "alpha"}), "alpha");
  // A word that names no command is still the word CLI11 will meet first.
  EXPECT_EQ(invoked({"bogus", "alpha"}), "bogus");
}

TEST_F(CommandRegistryTest, InvokedCommandIsEmptyWhenTheScanCannotBeSure) {
  EXPECT_EQ(invoked({}), "");
  EXPECT_EQ(invoked({"--help"}), "");
  EXPECT_EQ(invoked({"--data-dir"}), "");
  EXPECT_EQ(invoked({"--data-dir", "alpha"}), "");
  EXPECT_EQ(invoked({"--unknown", "alpha"}), "");
  EXPECT_EQ(invoked({"--", "alpha"}), "");
  EXPECT_EQ(invoked({"-", "alpha"}), "");
  EXPECT_EQ(invoked({"", "alpha"}), "");
  EXPECT_EQ(invoked({"--data-dirx", "alpha"}), "");
}

TEST_F(CommandRegistryTest, EveryCommandIsBuiltWhenNoneIsNamed) {
  TestApp t("");
  EXPECT_EQ(g_alpha_builds, 1);
  EXPECT_EQ(g_beta_builds, 1);
  EXPECT_EQ(g_gamma_builds, 1);
  std::vector<std::string> names;
  for (const CLI::App* sub : t.app.get_subcommands({}))
    names.push_back(sub->get_name());
  EXPECT_THAT(names, ElementsAre("alpha", "beta", "gamma"));
}

TEST_F(CommandRegistryTest, OnlyTheNamedCommandIsBuilt) {
  TestApp t("alpha");
  EXPECT_EQ(g_alpha_builds, 1);
  EXPECT_EQ(g_beta_builds, 0);
  EXPECT_EQ(g_gamma_builds, 0);
  t.parse({"alpha", "--loud"});
  EXPECT_EQ(g_alpha_runs, 1);
  // A name no command has leaves every command a placeholder.
  TestApp u("bogus");
  EXPECT_EQ(g_alpha_builds, 1);
  EXPECT_EQ(g_beta_builds, 0);
  EXPECT_EQ(g_gamma_builds, 0);
}

TEST_F(CommandRegistryTest, PlaceholdersShowInHelpExactlyAsCompleteCommands) {
  TestApp complete("");
  for (const char* only : {"alpha", "beta", "gamma", "bogus"}) {
    TestApp lazy(only);
    EXPECT_EQ(lazy.app.help(), complete.app.help()) << only;
  }
  EXPECT_THAT(complete.app.help(), ::testing::HasSubstr("Holds a value"));
}

TEST_F(CommandRegistryTest, ParsingIntoAPlaceholderThrowsBeforeAnyCallback) {
  TestApp t("alpha");
  EXPECT_THROW(t.parse({"beta", "set", "x"}), NeedEveryCommand);
  EXPECT_EQ(g_beta_value, "");
  // A second command after the first is an extra argument to CLI11 (one command at most), not a
  // parse into the placeholder: the same error as with every command complete.
  TestApp u("alpha");
  EXPECT_THROW(u.parse({"alpha", "beta"}), CLI::ExtrasError);
  TestApp v("");
  EXPECT_THROW(v.parse({"alpha", "beta"}), CLI::ExtrasError);
  EXPECT_EQ(g_alpha_runs, 0);
  // Built complete, the same line parses.
  TestApp all("");
  all.parse({"beta", "set", "x"});
  EXPECT_EQ(g_beta_value, "x");
}

TEST_F(CommandRegistryTest, UsageErrorsOfTheNamedCommandAreCLI11s) {
  TestApp t("beta");
  try {
    t.parse({"beta"});
    FAIL() << "beta without a subcommand parsed";
  } catch (const CLI::ParseError& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("subcommand is required"));
  }
  TestApp u("alpha");
  EXPECT_THROW(u.parse({"alpha", "--quiet"}), CLI::ExtrasError);
}

}  // namespace

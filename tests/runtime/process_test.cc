#include "cairn/runtime/process.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <thread>

#include "cairn/testing/status_matchers.h"

namespace cairn::runtime {
namespace {

using ::cairn::testing::StatusIs;

TEST(ProcessTest, RunCommandCapturesOutputAndExitCode) {
  ASSERT_OK_AND_ASSIGN(CommandOutput out,
                       runCommand({"/bin/sh", "-c", "echo out; echo err >&2; exit 7"}));
  EXPECT_EQ(out.out, "out\n");
  EXPECT_EQ(out.err, "err\n");
  EXPECT_FALSE(out.status.signaled);
  EXPECT_EQ(out.status.exit_code, 7);
  EXPECT_EQ(out.status.shellCode(), 7);
  EXPECT_EQ(out.status.toString(), "exit code 7");
}

TEST(ProcessTest, SignalsAreReported) {
  ASSERT_OK_AND_ASSIGN(CommandOutput out, runCommand({"/bin/sh", "-c", "kill -9 $$"}));
  EXPECT_TRUE(out.status.signaled);
  EXPECT_EQ(out.status.signal, SIGKILL);
  EXPECT_EQ(out.status.shellCode(), 137);
  EXPECT_EQ(out.status.toString(), "killed by signal 9 (SIGKILL)");
}

TEST(ProcessTest, TimeoutKillsTheCommand) {
  EXPECT_THAT(runCommand({"/bin/sleep", "30"}, std::chrono::milliseconds(200)),
              StatusIs(StatusCode::kDeadlineExceeded, ::testing::HasSubstr("did not finish")));
}

TEST(ProcessTest, MissingProgramIsNotFound) {
  EXPECT_THAT(runCommand({"no-such-program-cairn"}), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(runCommand({}), StatusIs(StatusCode::kInvalidArgument));
}

TEST(ProcessTest, OrphanedGrandchildrenAreReaped) {
  std::uint64_t before = ChildReaper::instance().orphansReaped();
  // The shell exits at once; its background child is re-parented to us (subreaper) and must
  // be reaped, not left as a zombie.
  ASSERT_OK_AND_ASSIGN(CommandOutput out,
                       runCommand({"/bin/sh", "-c", "sleep 0.2 >/dev/null 2>&1 & echo started"}));
  EXPECT_EQ(out.out, "started\n");
  for (int i = 0; i < 100 && ChildReaper::instance().orphansReaped() == before; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_GT(ChildReaper::instance().orphansReaped(), before);
}

TEST(ProcessTest, ChildrenStartWithDefaultSignalHandling) {
  struct sigaction ignore {};
  struct sigaction previous {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGPIPE, &ignore, &previous), 0);
  auto out = runCommand({"/bin/grep", "SigIgn", "/proc/self/status"});
  sigaction(SIGPIPE, &previous, nullptr);
  ASSERT_OK(out);
  EXPECT_EQ(out->out, "SigIgn:\t0000000000000000\n");
}

TEST(ProcessTest, SubprocessWaitWithDeadlineAndKill) {
  SpawnOptions options;
  options.args = {"/bin/sleep", "30"};
  ASSERT_OK_AND_ASSIGN(Subprocess p, Subprocess::spawn(options));
  EXPECT_GT(p.pid(), 0);
  EXPECT_FALSE(p.wait(std::chrono::steady_clock::now() + std::chrono::milliseconds(50)));
  p.kill(SIGTERM);
  auto status = p.wait();
  ASSERT_TRUE(status);
  EXPECT_TRUE(status->signaled);
  EXPECT_EQ(status->signal, SIGTERM);
}

}  // namespace
}  // namespace cairn::runtime

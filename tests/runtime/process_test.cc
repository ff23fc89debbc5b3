#include "cairn/runtime/process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>

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

TEST(ProcessTest, StdioFdsMayBeGivenInAnyOrder) {
  // stdout and stderr swapped onto each other's pipe, and stdin taken from what is fd 1 here:
  // no dup2 onto 0..2 may clobber a source that a later one still needs.
  int out_pipe[2], err_pipe[2];
  ASSERT_EQ(pipe2(out_pipe, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(err_pipe, O_CLOEXEC), 0);
  UniqueFd out_r(out_pipe[0]), out_w(out_pipe[1]), err_r(err_pipe[0]), err_w(err_pipe[1]);
  SpawnOptions options;
  options.args = {"/bin/sh", "-c", "echo to-stdout; echo to-stderr >&2"};
  options.stdout_fd = err_w.get();
  options.stderr_fd = out_w.get();
  ASSERT_OK_AND_ASSIGN(Subprocess p, Subprocess::spawn(options));
  out_w.reset();
  err_w.reset();
  auto status = p.wait();
  ASSERT_TRUE(status);
  EXPECT_EQ(status->exit_code, 0);
  auto drain = [](int fd) {
    std::string all;
    char buf[256];
    ssize_t n = 0;
    while ((n = read(fd, buf, sizeof buf)) > 0)
      all.append(buf, static_cast<std::size_t>(n));
    return all;
  };
  EXPECT_EQ(drain(err_r.get()), "to-stdout\n");
  EXPECT_EQ(drain(out_r.get()), "to-stderr\n");
}

TEST(ProcessTest, ChildrenInheritNoOtherFdsAndMayGetTheirOwnSession) {
  // An fd without close-on-exec (as a parent process may leave one) must not leak in.
  UniqueFd leak(open("/dev/null", O_RDONLY));
  ASSERT_TRUE(leak.valid());
  ASSERT_OK_AND_ASSIGN(CommandOutput fds, runCommand({"/bin/ls", "/proc/self/fd"}));
  EXPECT_EQ(fds.out, "0\n1\n2\n3\n");  // 3: ls's own directory handle
  int out_pipe[2];
  ASSERT_EQ(pipe2(out_pipe, O_CLOEXEC), 0);
  UniqueFd out_r(out_pipe[0]), out_w(out_pipe[1]);
  SpawnOptions options;
  options.args = {"/bin/sh", "-c", "cut -d' ' -f1,6 /proc/$$/stat"};
  options.stdout_fd = out_w.get();
  options.new_session = true;
  ASSERT_OK_AND_ASSIGN(Subprocess p, Subprocess::spawn(options));
  out_w.reset();
  ASSERT_TRUE(p.wait());
  char buf[64] = {};
  ssize_t n = read(out_r.get(), buf, sizeof buf - 1);
  ASSERT_GT(n, 0);
  int pid = 0, sid = 0;
  ASSERT_EQ(std::sscanf(buf, "%d %d", &pid, &sid), 2) << buf;
  EXPECT_EQ(pid, p.pid());
  EXPECT_EQ(sid, p.pid());  // setsid(): the child leads its own session
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

// Real containers under crun with Cairn's seccomp profile (root, busybox-static): CI runs as
// root. The probe is a static program (seccomp_probe.cc) copied into the busybox root.
#include <gtest/gtest.h>
#include <unistd.h>

#include <map>

#include "cairn/common/fs.h"
#include "cairn/common/strings.h"
#include "cairn/runtime/executor.h"
#include "cairn/runtime/seccomp_profile.h"
#include "cairn/testing/status_matchers.h"
#include "probe_rootfs.h"

namespace cairn::runtime {
namespace {

namespace fs = std::filesystem;
using ::cairn::testing::IsOk;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class SeccompIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to mount overlays and create containers";
    ASSERT_OK_AND_ASSIGN(dir_, TempDir::create("cairn-seccomp"));
    rootfs_ = dir_->path() / "rootfs";
    ASSERT_OK(makeProbeRootfs(rootfs_, {"unshare"}));
    ExecutorOptions options;
    options.work_root = dir_->path() / "work";
    options.state_root = dir_->path() / "state";
    ASSERT_OK_AND_ASSIGN(executor_, Executor::create(options));
  }

  ContainerSpec spec(std::vector<std::string> args, std::string_view seccomp = "default") {
    ContainerSpec s;
    s.rootfs.lower_dirs = {rootfs_};
    s.process.args = std::move(args);
    s.network = NetworkMode::kNone;
    auto option = parseSeccompOption(seccomp);
    EXPECT_THAT(option.status(), IsOk());
    if (option.ok()) s.seccomp = *option;
    return s;
  }

  struct Output {
    int exit_code = -1;
    std::vector<std::string> out;
    std::vector<std::string> err;
  };

  Output run(const ContainerSpec& s) {
    Output output;
    RunIo io;
    io.on_line = [&output](OutputStream stream, std::string_view line) {
      (stream == OutputStream::kStdout ? output.out : output.err).emplace_back(line);
    };
    auto result = executor_->run(s, io);
    EXPECT_THAT(result.status(), IsOk());
    if (result.ok()) output.exit_code = result->status.exit_code;
    return output;
  }

  // "<probe>=<errno>" lines of the probe program, as a map.
  std::map<std::string, int> probe(const std::vector<std::string>& probes,
                                   std::string_view seccomp) {
    std::vector<std::string> args = {"/bin/probe"};
    args.insert(args.end(), probes.begin(), probes.end());
    Output o = run(spec(args, seccomp));
    EXPECT_EQ(o.exit_code, 0) << (o.err.empty() ? "" : o.err.front());
    std::map<std::string, int> errnos;
    for (const std::string& line : o.out) {
      auto eq = line.find('=');
      if (eq != std::string::npos) errnos[line.substr(0, eq)] = std::stoi(line.substr(eq + 1));
    }
    return errnos;
  }

  std::optional<TempDir> dir_;
  fs::path rootfs_;
  std::unique_ptr<Executor> executor_;
};

// unshare_user last: after it the probe is in a user namespace without a uid mapping, where
// clone(CLONE_NEWUSER) fails on its own.
const std::vector<std::string> kProbes = {
    "keyctl",    "add_key",           "clone_newuser",       "clone3",      "fork",
    "listmount", "personality_query", "personality_no_aslr", "unshare_user"};

TEST_F(SeccompIntegrationTest, DefaultProfileRefusesPrivilegedSyscalls) {
  std::map<std::string, int> e = probe(kProbes, "default");
  EXPECT_EQ(e["keyctl"], EPERM);
  EXPECT_EQ(e["add_key"], EPERM);
  EXPECT_EQ(e["unshare_user"], EPERM);
  EXPECT_EQ(e["clone_newuser"], EPERM);  // clone with a namespace flag
  EXPECT_EQ(e["clone3"], ENOSYS);        // so that glibc falls back to clone
  EXPECT_EQ(e["listmount"], ENOSYS);     // a syscall the profile does not know
  EXPECT_EQ(e["personality_no_aslr"], ENOSYS);
  EXPECT_EQ(e["fork"], 0);
  EXPECT_EQ(e["personality_query"], 0);
}

TEST_F(SeccompIntegrationTest, UnconfinedAllowsThem) {
  std::map<std::string, int> e = probe(kProbes, "unconfined");
  EXPECT_EQ(e["keyctl"], 0);
  EXPECT_EQ(e["add_key"], 0);
  EXPECT_EQ(e["unshare_user"], 0);  // unprivileged user namespaces need no capability
  EXPECT_EQ(e["clone_newuser"], 0);
  EXPECT_EQ(e["clone3"], 0);
  EXPECT_EQ(e["fork"], 0);
  EXPECT_NE(e["listmount"], ENOSYS);  // the kernel has it (EFAULT for the null arguments)
  EXPECT_EQ(e["personality_no_aslr"], 0);
}

TEST_F(SeccompIntegrationTest, BusyboxUnshareFailsOnlyUnderTheProfile) {
  Output confined = run(spec({"/bin/unshare", "-U", "/bin/true"}));
  EXPECT_NE(confined.exit_code, 0);
  EXPECT_THAT(confined.err, Contains(HasSubstr("Operation not permitted")));
  Output unconfined = run(spec({"/bin/unshare", "-U", "/bin/true"}, "unconfined"));
  EXPECT_EQ(unconfined.exit_code, 0) << (unconfined.err.empty() ? "" : unconfined.err.front());
}

TEST_F(SeccompIntegrationTest, OrdinaryWorkloadIsUnaffected) {
  Output o = run(spec({"/bin/sh", "-c",
                       "ls / | wc -l > /tmp/count && test \"$(cat /tmp/count)\" -gt 3 && "
                       "echo pipe | cat && (echo subshell) && (sleep 0 & wait) && "
                       "mkdir -p /tmp/d/e && touch /tmp/d/e/f && ls /tmp/d/e && id -u && "
                       "rm -r /tmp/d && echo done"}));
  EXPECT_EQ(o.exit_code, 0) << (o.err.empty() ? "" : o.err.front());
  EXPECT_THAT(o.out, ElementsAre("pipe", "subshell", "f", "0", "done"));
}

TEST_F(SeccompIntegrationTest, CustomProfileFromAFile) {
  fs::path profile = dir_->path() / "no-mkdir.json";
  ASSERT_OK(writeFileDurable(profile, R"({
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]
  })"));
  Output o =
      run(spec({"/bin/sh", "-c", "echo before; mkdir /tmp/x; echo rc=$?"}, profile.string()));
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_THAT(o.out, ElementsAre("before", "rc=1"));
  EXPECT_THAT(o.err, Contains(HasSubstr("Permission denied")));
}

#if defined(__x86_64__)
// 32-bit x86 system calls (int 0x80) go through the same rules: the profile lists SCMP_ARCH_X86
// (and X32) beside X86_64, so they are filtered rather than killed or let through.
TEST_F(SeccompIntegrationTest, CompatSyscallsAreFilteredToo) {
  std::map<std::string, int> unconfined = probe({"x86_getpid", "x86_keyctl"}, "unconfined");
  if (unconfined["x86_getpid"] == ENOSYS)
    GTEST_SKIP() << "this kernel runs no 32-bit x86 system calls (ia32_emulation off)";
  EXPECT_EQ(unconfined["x86_getpid"], 0);
  EXPECT_EQ(unconfined["x86_keyctl"], 0);
  std::map<std::string, int> confined = probe({"x86_getpid", "x86_keyctl"}, "default");
  EXPECT_EQ(confined["x86_getpid"], 0);
  EXPECT_EQ(confined["x86_keyctl"], EPERM);
}
#endif

}  // namespace
}  // namespace cairn::runtime

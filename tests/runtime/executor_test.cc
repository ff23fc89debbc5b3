// Runs real containers (root, crun or runc, slirp4netns, busybox-static): CI runs as root.
#include "cairn/runtime/executor.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>

#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <set>
#include <thread>

#include "cairn/common/fs.h"
#include "cairn/runtime/cgroups.h"
#include "cairn/runtime/overlay.h"
#include "cairn/testing/busybox_rootfs.h"
#include "cairn/testing/status_matchers.h"

namespace cairn::runtime {
namespace {

namespace fs = std::filesystem;
using ::cairn::testing::IsOk;
using ::cairn::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct Output {
  std::vector<std::string> out;
  std::vector<std::string> err;
};

class ExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to mount overlays and create containers";
    ASSERT_OK_AND_ASSIGN(dir_, TempDir::create("cairn-exec"));
    rootfs_ = dir_->path() / "rootfs";
    ASSERT_OK(::cairn::testing::makeBusyboxRootfs(rootfs_));
    ExecutorOptions options;
    options.work_root = dir_->path() / "work";
    options.state_root = dir_->path() / "state";
    ASSERT_OK_AND_ASSIGN(executor_, Executor::create(options));
  }

  void TearDown() override {
    if (!executor_) return;
    // Nothing may stay mounted or left over after any outcome.
    auto mounts = mountsUnder(dir_->path());
    ASSERT_OK(mounts);
    EXPECT_TRUE(mounts->empty()) << "left mounted: " << mounts->front();
    std::error_code ec;
    EXPECT_TRUE(fs::is_empty(dir_->path() / "work", ec)) << "work dir not removed";
  }

  ContainerSpec spec(std::vector<std::string> args, NetworkMode network = NetworkMode::kNone) {
    ContainerSpec s;
    s.rootfs.lower_dirs = {rootfs_};
    s.process.args = std::move(args);
    s.network = network;
    return s;
  }

  Result<RunResult> run(const ContainerSpec& s, Output* output = nullptr,
                        const CancelToken* cancel = nullptr) {
    RunIo io;
    io.cancel = cancel;
    io.on_line = [output](OutputStream stream, std::string_view line) {
      if (output == nullptr) return;
      (stream == OutputStream::kStdout ? output->out : output->err).emplace_back(line);
    };
    return executor_->run(s, io);
  }

  std::optional<TempDir> dir_;
  fs::path rootfs_;
  std::unique_ptr<Executor> executor_;
};

TEST_F(ExecutorTest, RunsACommandAndPropagatesExitCodes) {
  Output output;
  ASSERT_OK_AND_ASSIGN(RunResult ok, run(spec({"/bin/sh", "-c", "echo hello; exit 0"}), &output));
  EXPECT_THAT(ok.toStatus(), IsOk());
  EXPECT_THAT(output.out, ElementsAre("hello"));
  ASSERT_OK_AND_ASSIGN(RunResult failed, run(spec({"/bin/sh", "-c", "exit 3"})));
  EXPECT_EQ(failed.status.exit_code, 3);
  EXPECT_FALSE(failed.oom_killed);
  EXPECT_THAT(failed.toStatus(), StatusIs(StatusCode::kInternal, HasSubstr("exit code 3")));
}

TEST_F(ExecutorTest, AttachedRunsPropagateExitCodes) {
  // Attached without a memory limit takes the runtime's `run` path (what `cairn run` uses).
  RunIo io;
  io.attach = true;
  ASSERT_OK_AND_ASSIGN(RunResult r, executor_->run(spec({"/bin/sh", "-c", "exit 7"}), io));
  EXPECT_EQ(r.status.exit_code, 7);
  EXPECT_FALSE(r.status.signaled);
  ASSERT_OK_AND_ASSIGN(RunResult ok, executor_->run(spec({"/bin/true"}), io));
  EXPECT_THAT(ok.toStatus(), IsOk());
  ContainerSpec slow = spec({"/bin/sleep", "600"});
  slow.timeout = std::chrono::milliseconds(500);
  ASSERT_OK_AND_ASSIGN(RunResult timed_out, executor_->run(slow, io));
  EXPECT_TRUE(timed_out.timed_out);
  EXPECT_EQ(timed_out.status.shellCode(), 137);
}

// `cairn run`'s default: attached, with slirp4netns. The network's namespace holder is forked
// while an early-started crun waits on the config.json FIFO; a holder that kept its inherited
// copy of the FIFO open left crun reading forever (the README's main job hung on it).
TEST_F(ExecutorTest, AnAttachedRunWithTheDefaultNetworkEnds) {
  RunIo io;
  io.attach = true;
  // The first run compiles the seccomp filter through `crun create`; the early start (and so
  // the hang) needs the filter cached.
  ASSERT_OK_AND_ASSIGN(RunResult warm, executor_->run(spec({"/bin/true"}), io));
  ASSERT_EQ(warm.status.exit_code, 0);
  ContainerSpec s = spec({"/bin/sh", "-c", "exit 4"}, NetworkMode::kDefault);
  s.timeout = std::chrono::seconds(30);  // a hang fails the test instead of blocking it
  ASSERT_OK_AND_ASSIGN(RunResult r, executor_->run(s, io));
  EXPECT_FALSE(r.timed_out) << "the sandbox never started";
  EXPECT_EQ(r.status.exit_code, 4);
}

// The processes whose parent is this one, as "pid (comm)".
std::vector<std::string> childProcesses() {
  std::vector<std::string> children;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    auto stat = readFile(entry.path() / "stat");
    if (!stat.ok()) continue;
    // "pid (comm) state ppid ...": comm may hold spaces, so parse after the last ')'.
    std::size_t close = stat->rfind(')');
    if (close == std::string::npos) continue;
    int ppid = 0;
    char state = 0;
    if (std::sscanf(stat->c_str() + close + 1, " %c %d", &state, &ppid) == 2 && ppid == getpid())
      children.push_back(stat->substr(0, close + 1));
  }
  return children;
}

// The crun started early (on its own thread, before the bundle is ready) must not outlive a run
// that fails while preparing the bundle: nothing reads config.json, so it would wait forever.
TEST_F(ExecutorTest, AnEarlyStartedRuntimeEndsWithARunThatFailsBeforeItsBundleIsReady) {
  RunIo io;
  io.attach = true;
  ASSERT_OK_AND_ASSIGN(RunResult warm, executor_->run(spec({"/bin/true"}), io));  // filter cached
  ASSERT_EQ(warm.status.exit_code, 0);
  ContainerSpec broken = spec({"/bin/true"});
  broken.rootfs.lower_dirs = {dir_->path() / "no-such-layer"};
  EXPECT_THAT(executor_->run(broken, io), StatusIs(StatusCode::kNotFound));
  // No child of this process is left: the early crun was killed and reaped.
  auto children = childProcesses();
  EXPECT_TRUE(children.empty()) << "left running: " << children.front();
}

// `cairn run` prepares before it knows its spec (the image's layers are made ready meanwhile).
TEST_F(ExecutorTest, APreparedRunStartsItsRuntimeAtOnceAndRunsTheSpecLater) {
  ASSERT_OK_AND_ASSIGN(PreparedRun prepared, executor_->prepare({.attach = true}));
  ASSERT_FALSE(prepared.empty());
  const std::string id = prepared.containerId();
  EXPECT_TRUE(fs::exists(dir_->path() / "work" / id / "config.json"));
  // crun is there already, waiting for its config (bounded wait: it is spawned on a thread).
  for (int i = 0; i < 200 && childProcesses().empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_THAT(childProcesses(), ::testing::Contains(::testing::HasSubstr("(crun)")));
  RunIo io;
  io.attach = true;
  ASSERT_OK_AND_ASSIGN(RunResult r,
                       executor_->run(spec({"/bin/sh", "-c", "exit 7"}), io, std::move(prepared)));
  EXPECT_EQ(r.container_id, id);
  EXPECT_EQ(r.status.exit_code, 7);
  EXPECT_TRUE(prepared.empty());  // NOLINT(bugprone-use-after-move): handed over
  EXPECT_THAT(executor_->run(spec({"/bin/true"}), io, std::move(prepared)),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("PreparedRun")));
  // A run prepared by another executor (another work root) is refused, and dropped cleanly.
  ExecutorOptions other_options = executor_->options();
  other_options.work_root = dir_->path() / "other-work";
  ASSERT_OK_AND_ASSIGN(auto other, Executor::create(other_options));
  ASSERT_OK_AND_ASSIGN(PreparedRun foreign, other->prepare({.attach = true}));
  EXPECT_THAT(executor_->run(spec({"/bin/true"}), io, std::move(foreign)),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("another work root")));
  EXPECT_TRUE(fs::is_empty(other_options.work_root));
}

TEST_F(ExecutorTest, APreparedRunDroppedUnusedStopsItsRuntimeAndRemovesItsDir) {
  {
    ASSERT_OK_AND_ASSIGN(PreparedRun prepared, executor_->prepare({.attach = true}));
    for (int i = 0; i < 200 && childProcesses().empty(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_FALSE(childProcesses().empty());
  }
  auto children = childProcesses();
  EXPECT_TRUE(children.empty()) << "left running: " << children.front();
  // TearDown checks that the work dir is empty.
}

// Prepared for `crun run`, the spec turns out to limit memory (which needs create/start to read
// the OOM counter): the waiting runtime is stopped and the run goes the ordinary way.
TEST_F(ExecutorTest, APreparedRunForAnotherKindOfRunStillRunsTheSpec) {
  ASSERT_OK_AND_ASSIGN(PreparedRun prepared, executor_->prepare({.attach = true}));
  ContainerSpec limited = spec({"/bin/sh", "-c", "exit 5"});
  limited.limits.memory_bytes = 256LL << 20;
  RunIo io;
  io.attach = true;
  ASSERT_OK_AND_ASSIGN(RunResult r, executor_->run(limited, io, std::move(prepared)));
  EXPECT_EQ(r.status.exit_code, 5);
  auto children = childProcesses();
  EXPECT_TRUE(children.empty()) << "left running: " << children.front();
}

TEST_F(ExecutorTest, StdoutAndStderrLinesArriveInOrder) {
  Output output;
  ASSERT_OK_AND_ASSIGN(
      RunResult r,
      run(spec({"/bin/sh", "-c",
                "for i in $(seq 1 500); do echo out$i; echo err$i >&2; done; printf tail"}),
          &output));
  EXPECT_EQ(r.status.exit_code, 0);
  ASSERT_EQ(output.out.size(), 501u);
  ASSERT_EQ(output.err.size(), 500u);
  for (int i = 1; i <= 500; ++i) {
    EXPECT_EQ(output.out[i - 1], "out" + std::to_string(i));
    EXPECT_EQ(output.err[i - 1], "err" + std::to_string(i));
  }
  EXPECT_EQ(output.out.back(), "tail");  // a last line without '\n' is delivered too
}

TEST_F(ExecutorTest, ProcessSettingsAreApplied) {
  ContainerSpec s = spec({"/bin/sh", "-c",
                          "id -u; id -g; id -G; pwd; echo $FOO; hostname; cat /etc/hostname; "
                          "grep -c myhost /etc/hosts"});
  s.process.uid = 1000;
  s.process.gid = 1000;
  s.process.additional_gids = {50};
  s.process.cwd = "/tmp";
  s.process.env = {"FOO=bar baz"};
  s.hostname = "myhost";
  Output output;
  ASSERT_OK_AND_ASSIGN(RunResult r, run(s, &output));
  EXPECT_EQ(r.status.exit_code, 0) << (output.err.empty() ? "" : output.err.front());
  EXPECT_THAT(output.out,
              ElementsAre("1000", "1000", "1000 50", "/tmp", "bar baz", "myhost", "myhost", "1"));
}

TEST_F(ExecutorTest, MissingProgramIsAClearError) {
  EXPECT_THAT(run(spec({"/no/such/program"})),
              StatusIs(StatusCode::kFailedPrecondition, HasSubstr("/no/such/program")));
}

TEST_F(ExecutorTest, CannotSeeHostFiles) {
  fs::path secret = dir_->path() / "host-secret.txt";
  std::ofstream(secret) << "secret\n";
  Output output;
  ASSERT_OK_AND_ASSIGN(
      RunResult r,
      run(spec({"/bin/sh", "-c", "cat " + secret.string() + " || echo NOT-VISIBLE; ls /"}),
          &output));
  EXPECT_EQ(r.status.exit_code, 0);
  EXPECT_THAT(output.out, ::testing::Contains("NOT-VISIBLE"));
  for (const std::string& line : output.out)
    EXPECT_NE(line, "secret");
  EXPECT_THAT(output.err, ::testing::Contains(HasSubstr("No such file")));
  // The container's / is the busybox rootfs, not the host's.
  bool saw_bin = false;
  for (const std::string& line : output.out) {
    EXPECT_NE(line.find("home"), 0u) << "host directory visible: " << line;
    saw_bin = saw_bin || line.find("bin") != std::string::npos;
  }
  EXPECT_TRUE(saw_bin);
}

TEST_F(ExecutorTest, WritesGoToTheUpperDirAndGeneratedFilesDoNot) {
  fs::path upper = dir_->path() / "upper";
  fs::path work = dir_->path() / "ovl-work";
  fs::create_directories(upper);
  fs::create_directories(work);
  ContainerSpec s =
      spec({"/bin/sh", "-c", "echo data > /new.txt; rm /bin/true; cat /etc/hosts >/dev/null"});
  s.rootfs.upper_dir = upper;
  s.rootfs.work_dir = work;
  ASSERT_OK_AND_ASSIGN(RunResult r, run(s));
  EXPECT_EQ(r.status.exit_code, 0);
  ASSERT_OK_AND_ASSIGN(std::string data, readFile(upper / "new.txt"));
  EXPECT_EQ(data, "data\n");
  EXPECT_TRUE(fs::exists(rootfs_ / "bin/true")) << "the lower dir was modified";
  struct stat st {};
  ASSERT_EQ(lstat((upper / "bin/true").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode)) << "deleting a lower file must leave a whiteout";
  // Bind-mounted /etc files and the runtime's mount points are not part of the layer.
  EXPECT_FALSE(fs::exists(upper / "etc/hosts"));
  EXPECT_FALSE(fs::exists(upper / "etc/resolv.conf"));
  EXPECT_FALSE(fs::exists(upper / "etc/hostname"));
  EXPECT_FALSE(fs::exists(upper / "proc"));
  EXPECT_FALSE(fs::exists(upper / "dev"));
  EXPECT_FALSE(fs::exists(upper / "sys"));
}

TEST_F(ExecutorTest, MountPointStubsGoEvenWhenTheStepWritesBesideThem) {
  fs::remove_all(rootfs_ / "etc");  // an image without /etc at all
  fs::path upper = dir_->path() / "upper";
  fs::path work = dir_->path() / "ovl-work";
  fs::create_directories(upper);
  fs::create_directories(work);
  ContainerSpec s = spec({"/bin/sh", "-c", "echo conf > /etc/app.conf"});
  s.rootfs.upper_dir = upper;
  s.rootfs.work_dir = work;
  ASSERT_OK_AND_ASSIGN(RunResult r, run(s));
  EXPECT_EQ(r.status.exit_code, 0);
  EXPECT_EQ(readFile(upper / "etc/app.conf").valueOr(""), "conf\n");
  EXPECT_FALSE(fs::exists(upper / "etc/hosts"));
  EXPECT_FALSE(fs::exists(upper / "etc/resolv.conf"));
  EXPECT_FALSE(fs::exists(upper / "etc/hostname"));
}

TEST_F(ExecutorTest, PreparedRootDirIsUsedDirectly) {
  ContainerSpec s = spec({"/bin/sh", "-c", "echo ok"});
  s.rootfs.lower_dirs.clear();
  s.rootfs.dir = rootfs_;
  Output output;
  ASSERT_OK_AND_ASSIGN(RunResult r, run(s, &output));
  EXPECT_EQ(r.status.exit_code, 0);
  EXPECT_THAT(output.out, ElementsAre("ok"));
}

TEST_F(ExecutorTest, TimeoutKillsTheWholeProcessTree) {
  ContainerSpec s = spec({"/bin/sh", "-c", "sleep 987 & sleep 987 & echo started; wait"});
  s.timeout = std::chrono::milliseconds(1500);
  Output output;
  ASSERT_OK_AND_ASSIGN(RunResult r, run(s, &output));
  EXPECT_TRUE(r.timed_out);
  EXPECT_THAT(output.out, ElementsAre("started"));
  EXPECT_THAT(r.toStatus(), StatusIs(StatusCode::kDeadlineExceeded, HasSubstr("1500 ms")));
  EXPECT_LT(r.duration, std::chrono::seconds(60));
  // No "sleep 987" may survive anywhere on the host.
  for (const auto& entry : fs::directory_iterator("/proc")) {
    auto cmdline = readFile(entry.path() / "cmdline");
    if (cmdline.ok()) {
      EXPECT_NE(*cmdline, std::string("sleep\0987\0", 10)) << entry.path();
    }
  }
}

TEST_F(ExecutorTest, CancelKillsTheRun) {
  CancelToken cancel;
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    cancel.cancel();
  });
  ASSERT_OK_AND_ASSIGN(RunResult r, run(spec({"/bin/sleep", "600"}), nullptr, &cancel));
  canceller.join();
  EXPECT_TRUE(r.cancelled);
  EXPECT_THAT(r.toStatus(), StatusIs(StatusCode::kCancelled));
}

TEST_F(ExecutorTest, MemoryLimitKillsWithAClearError) {
  ContainerSpec s =
      spec({"/bin/sh", "-c", "dd if=/dev/zero of=/dev/null bs=256M count=1; echo survived"});
  s.limits.memory_bytes = 32LL * 1024 * 1024;
  Output output;
  ASSERT_OK_AND_ASSIGN(RunResult r, run(s, &output));
  EXPECT_TRUE(r.oom_killed);
  EXPECT_THAT(r.toStatus(),
              StatusIs(StatusCode::kResourceExhausted, HasSubstr("out of memory (limit 32 MiB)")));
}

TEST_F(ExecutorTest, CpuAndMemoryLimitsReachTheCgroup) {
  // v1 (and hybrid): the container sees its own cgroup at /sys/fs/cgroup/<controller>;
  // v2: cpu.max and memory.max at /sys/fs/cgroup.
  ContainerSpec s = spec({"/bin/sh", "-c",
                          "if [ -e /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then "
                          "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us "
                          "/sys/fs/cgroup/memory/memory.limit_in_bytes; "
                          "else cat /sys/fs/cgroup/cpu.max /sys/fs/cgroup/memory.max; fi"});
  s.limits.cpus = 1.5;
  s.limits.memory_bytes = 96LL * 1024 * 1024;
  Output output;
  ASSERT_OK_AND_ASSIGN(RunResult r, run(s, &output));
  EXPECT_EQ(r.status.exit_code, 0) << (output.err.empty() ? "" : output.err.front());
  ASSERT_EQ(output.out.size(), 2u);
  EXPECT_THAT(output.out[0], ::testing::AnyOf("150000", "150000 100000"));
  EXPECT_EQ(output.out[1], std::to_string(96LL * 1024 * 1024));
}

// `cairn serve`'s containers live under a parent cgroup with a low CPU weight, so that they
// yield to the API: the weight reaches the parent, and the containers run below it.
TEST_F(ExecutorTest, ContainersRunUnderAParentWithTheGivenCpuWeight) {
  const std::string parent = "/cairn-test-weight-" + std::to_string(getpid());
  ExecutorOptions options = executor_->options();
  options.cgroup_parent = parent;
  options.cgroup_cpu_weight = 20;
  ASSERT_OK_AND_ASSIGN(auto weighted, Executor::create(options));
  ASSERT_OK_AND_ASSIGN(CgroupInfo cgroups, detectHostCgroups());
  const fs::path v1 = cgroups.root / "cpu" / parent.substr(1);
  const fs::path v2 = (cgroups.mode == CgroupMode::kV2 ? cgroups.root : cgroups.root / "unified") /
                      parent.substr(1);
  if (fs::exists(v1 / "cpu.shares")) {
    EXPECT_EQ(readFile(v1 / "cpu.shares").valueOr(""), "204\n");  // 20 × 1024 / 100
  } else {
    EXPECT_EQ(readFile(v2 / "cpu.weight").valueOr(""), "20\n");
  }
  Output output;
  ASSERT_OK_AND_ASSIGN(
      RunResult r, weighted->run(spec({"/bin/sh", "-c", "cat /proc/self/cgroup"}),
                                 RunIo{.on_line = [&output](OutputStream, std::string_view line) {
                                   output.out.emplace_back(line);
                                 }}));
  EXPECT_EQ(r.status.exit_code, 0);
  bool below = false;
  for (const std::string& line : output.out)
    below = below || line.find(":" + parent + "/" + r.container_id) != std::string::npos;
  EXPECT_TRUE(below) << ::testing::PrintToString(output.out);
  // Out of range is the caller's mistake, not a warning.
  options.cgroup_cpu_weight = 20000;
  EXPECT_THAT(Executor::create(options).status(), StatusIs(StatusCode::kInvalidArgument));
  // The test's parent goes (its containers are gone), in every hierarchy crun made it in.
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(cgroups.root))
    fs::remove(entry.path() / parent.substr(1), ec);
  fs::remove(v2, ec);
}

TEST_F(ExecutorTest, PidsLimitIsApplied) {
  // $! only changes when a fork succeeded, so the distinct pids printed are the processes the
  // pids limit let the shell start (only builtins are used after the limit is hit).
  ContainerSpec s = spec({"/bin/sh", "-c",
                          "i=0; while [ $i -lt 40 ]; do sleep 5 & echo $!; i=$((i+1)); done "
                          "2>/dev/null"});
  s.limits.pids = 10;
  s.timeout = std::chrono::seconds(30);
  Output output;
  ASSERT_OK_AND_ASSIGN(RunResult r, run(s, &output));
  std::set<std::string> pids(output.out.begin(), output.out.end());
  EXPECT_LT(output.out.size(), 40u) << "the shell should have failed to fork";
  EXPECT_GE(pids.size(), 1u);
  EXPECT_LT(pids.size(), 10u);
}

// A TCP server on the host's 127.0.0.1 that answers every connection with "hello".
class LoopbackServer {
 public:
  explicit LoopbackServer(std::uint32_t bind_address = INADDR_LOOPBACK) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(bind_address);
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    listen(fd_, 16);
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) return;
        char request[1024];
        (void)!read(c, request, sizeof request);  // closing with unread data would reset
        (void)!write(c, "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello", 43);
        close(c);
      }
    });
  }
  ~LoopbackServer() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

TEST_F(ExecutorTest, DefaultNetworkCannotReachHostLoopback) {
  LoopbackServer server;
  std::string port = std::to_string(server.port());
  // busybox-static's wget crashes on NSS lookups; nc with a literal address does not.
  auto probe = [&](const std::string& host) {
    return "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc " + host + " " + port + "; echo; ";
  };
  Output output;
  ASSERT_OK_AND_ASSIGN(
      RunResult r,
      run(spec({"/bin/sh", "-c",
                probe("127.0.0.1") + probe("10.0.2.2") + "ip addr show tap0 | grep -c 10.0.2.100"},
               NetworkMode::kDefault),
          &output));
  for (const std::string& line : output.out)
    EXPECT_EQ(line.find("hello"), std::string::npos) << line;
  EXPECT_THAT(output.err, ::testing::Contains(HasSubstr("127.0.0.1")));
  EXPECT_THAT(output.err, ::testing::Contains(HasSubstr("10.0.2.2")));
  ASSERT_FALSE(output.out.empty());
  EXPECT_EQ(output.out.back(), "1") << "tap0 should carry slirp4netns' address";

  // Control: the same server is reachable with the host network, so the probe itself works.
  Output host_output;
  ASSERT_OK_AND_ASSIGN(
      RunResult h,
      run(spec({"/bin/sh", "-c", probe("127.0.0.1")}, NetworkMode::kHost), &host_output));
  EXPECT_EQ(h.status.exit_code, 0);
  EXPECT_THAT(host_output.out, ::testing::Contains("hello"));
}

// The host's first non-loopback IPv4 address, or "" when it has none.
std::string hostAddress() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return "";
  std::string found;
  for (ifaddrs* i = list; i != nullptr && found.empty(); i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    auto* in = reinterpret_cast<sockaddr_in*>(i->ifa_addr);
    if ((ntohl(in->sin_addr.s_addr) >> 24) == 127) continue;
    char buf[INET_ADDRSTRLEN];
    if (inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf) != nullptr) found = buf;
  }
  freeifaddrs(list);
  return found;
}

TEST_F(ExecutorTest, DefaultNetworkHasOutboundAccess) {
  std::string address = hostAddress();
  if (address.empty()) GTEST_SKIP() << "the host has no non-loopback IPv4 address to dial";
  LoopbackServer server(INADDR_ANY);
  Output output;
  ASSERT_OK_AND_ASSIGN(RunResult r, run(spec({"/bin/sh", "-c",
                                              "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc " +
                                                  address + " " + std::to_string(server.port())},
                                             NetworkMode::kDefault),
                                        &output));
  EXPECT_EQ(r.status.exit_code, 0) << (output.err.empty() ? "" : output.err.front());
  EXPECT_THAT(output.out, ::testing::Contains("hello"))
      << "slirp4netns should NAT outbound traffic";
}

TEST_F(ExecutorTest, NoneNetworkHasOnlyLoopback) {
  Output output;
  ASSERT_OK_AND_ASSIGN(RunResult r, run(spec({"/bin/sh", "-c", "ls /sys/class/net"}), &output));
  EXPECT_EQ(r.status.exit_code, 0);
  EXPECT_THAT(output.out, ElementsAre("lo"));
}

TEST_F(ExecutorTest, CleanupStaleRemovesLeftoversOfACrashedProcess) {
  // What a crash leaves: a work dir with an overlay still mounted.
  fs::path stale = dir_->path() / "work" / "cairn-deadbeef";
  for (const char* d : {"upper", "work", "rootfs"})
    fs::create_directories(stale / d);
  ASSERT_OK(mountOverlay({{rootfs_}, stale / "upper", stale / "work"}, stale / "rootfs"));
  ASSERT_OK_AND_ASSIGN(auto before, mountsUnder(stale));
  ASSERT_EQ(before.size(), 1u);
  ASSERT_OK(executor_->cleanupStale());
  EXPECT_FALSE(fs::exists(stale));
  ASSERT_OK(executor_->cleanupStale());  // idempotent
}

TEST_F(ExecutorTest, DeferredRemovalLeavesTheWorkDirForTheSweep) {
  ExecutorOptions options = executor_->options();
  options.defer_ephemeral_removal = true;
  ASSERT_OK_AND_ASSIGN(auto deferring, Executor::create(options));
  auto entries = [&] {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_->path() / "work"))
      names.push_back(e.path().filename().string());
    return names;
  };
  RunIo io;
  io.attach = true;
  ASSERT_OK_AND_ASSIGN(RunResult r, deferring->run(spec({"/bin/true"}), io));
  EXPECT_THAT(r.toStatus(), IsOk());
  // Unmounted at once, renamed instead of removed.
  ASSERT_OK_AND_ASSIGN(auto mounts, mountsUnder(dir_->path()));
  EXPECT_TRUE(mounts.empty());
  EXPECT_THAT(entries(), ElementsAre(".trash-" + r.container_id));
  // crun was started before the bundle was ready, waiting on config.json as a FIFO: what is
  // left is the regular file it was handed, and no temporary.
  const fs::path trash = dir_->path() / "work" / (".trash-" + r.container_id);
  EXPECT_TRUE(fs::is_regular_file(trash / "config.json"));
  EXPECT_FALSE(fs::exists(trash / ".config.json.tmp"));
  ASSERT_OK(deferring->cleanupStale(/*include_trash=*/false));
  EXPECT_EQ(entries().size(), 1u);  // left for the sweep
  ASSERT_OK(deferring->sweepTrash());
  EXPECT_TRUE(entries().empty());

  // cleanupStale() at a server's start takes trash too.
  ASSERT_OK_AND_ASSIGN(r, deferring->run(spec({"/bin/true"}), io));
  EXPECT_EQ(entries().size(), 1u);
  ASSERT_OK(deferring->cleanupStale());
  EXPECT_TRUE(entries().empty());

  // A caller's upper dir becomes a layer: that run's dir is removed at once, as always.
  fs::path upper = dir_->path() / "layer-upper", work = dir_->path() / "layer-work";
  ContainerSpec step = spec({"/bin/sh", "-c", "echo x > /f"});
  step.rootfs.upper_dir = upper;
  step.rootfs.work_dir = work;
  ASSERT_OK_AND_ASSIGN(r, deferring->run(step, RunIo{}));
  EXPECT_THAT(r.toStatus(), IsOk());
  EXPECT_TRUE(entries().empty());
  EXPECT_TRUE(fs::exists(upper / "f"));
}

TEST_F(ExecutorTest, SweepLeavesALockedTrashDirAlone) {
  fs::path trash = dir_->path() / "work" / ".trash-cairn-0123";
  fs::create_directories(trash / "upper");
  {
    UniqueFd lock(open(trash.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(lock.valid());
    ASSERT_EQ(flock(lock.get(), LOCK_EX), 0);
    ASSERT_OK(executor_->sweepTrash());
    EXPECT_TRUE(fs::exists(trash));  // a run that is still letting go of it
  }
  ASSERT_OK(executor_->sweepTrash());
  EXPECT_FALSE(fs::exists(trash));
}

TEST_F(ExecutorTest, AStoppedSweepLeavesTheRestForTheNextOneButNotTooMuch) {
  auto makeTrash = [&](int i) {
    fs::path trash = dir_->path() / "work" / (".trash-cairn-" + std::to_string(i));
    fs::create_directories(trash / "upper" / "etc");
    EXPECT_TRUE(writeFileDurable(trash / "upper" / "etc" / "f", "x").ok());
    EXPECT_TRUE(writeFileDurable(trash / "config.json", "{}").ok());
    return trash;
  };
  auto count = [&] {
    int n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir_->path() / "work"))
      ++n;
    return n;
  };
  std::atomic<bool> stop{true};
  fs::path first = makeTrash(0);
  ASSERT_OK(executor_->sweepTrash(&stop));
  EXPECT_TRUE(fs::exists(first / "upper" / "etc" / "f"));  // stopped before anything went
  stop = false;
  ASSERT_OK(executor_->sweepTrash(&stop));
  EXPECT_EQ(count(), 0);
  // More than a few dirs waiting: the sweep finishes even when asked to stop.
  for (int i = 0; i < 6; ++i)
    makeTrash(i);
  stop = true;
  ASSERT_OK(executor_->sweepTrash(&stop));
  EXPECT_EQ(count(), 0);
}

TEST_F(ExecutorTest, InvalidSpecsAreRejectedBeforeAnythingRuns) {
  ContainerSpec s = spec({});
  EXPECT_THAT(run(s), StatusIs(StatusCode::kInvalidArgument, HasSubstr("no command")));
  s = spec({"/bin/true"});
  s.process.terminal = true;
  EXPECT_THAT(run(s), StatusIs(StatusCode::kInvalidArgument, HasSubstr("terminal")));
}

TEST(ExecutorCreateTest, UnknownRuntimeIsNotFound) {
  ExecutorOptions options;
  options.work_root = "/tmp/cairn-never-created";
  options.runtime = "no-such-runtime-cairn";
  EXPECT_THAT(Executor::create(options), StatusIs(StatusCode::kNotFound));
  options.work_root.clear();
  EXPECT_THAT(Executor::create(options), StatusIs(StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace cairn::runtime

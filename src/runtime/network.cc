#include "cairn/runtime/network.h"

#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "cairn/common/log.h"

namespace cairn::runtime {

namespace {

// Runs in the forked holder: only async-signal-safe calls. Exit codes tell the parent what
// failed: 10 unshare, 11 loopback.
[[noreturn]] void holderMain(int ready_fd, int release_fd, pid_t parent) {
  // The holder lives as long as the sandbox and never execs, so O_CLOEXEC does not shut
  // anything: keep only the two pipe ends it uses. Any other descriptor of the parent held here
  // would keep a pipe from ever reaching EOF — our copy of the release pipe's write end, or the
  // config.json FIFO an early-started crun reads to the end (Executor::run).
  const int low = std::min(ready_fd, release_fd);
  const int high = std::max(ready_fd, release_fd);
  if (low > 3) close_range(3, static_cast<unsigned>(low - 1), 0);
  if (high > low + 1)
    close_range(static_cast<unsigned>(low + 1), static_cast<unsigned>(high - 1), 0);
  close_range(static_cast<unsigned>(high + 1), ~0U, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (getppid() != parent) _exit(1);
  if (unshare(CLONE_NEWNET) != 0) _exit(10);
  int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) _exit(11);
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, "lo", 3);
  if (ioctl(sock, SIOCGIFFLAGS, &ifr) != 0) _exit(11);
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  if (ioctl(sock, SIOCSIFFLAGS, &ifr) != 0) _exit(11);
  close(sock);
  char one = '1';
  if (write(ready_fd, &one, 1) != 1) _exit(1);
  char buf;
  while (read(release_fd, &buf, 1) < 0 && errno == EINTR) {
  }
  _exit(0);
}

Status waitReadable(int fd, int timeout_ms, std::string_view what) {
  pollfd p{fd, POLLIN, 0};
  for (;;) {
    int n = poll(&p, 1, timeout_ms);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errnoStatus(errno, "poll");
    if (n == 0) return deadlineExceeded(std::string(what) + " did not become ready in time");
    return okStatus();
  }
}

}  // namespace

Result<std::unique_ptr<SlirpNetwork>> SlirpNetwork::create(const std::string& slirp_program,
                                                           const std::filesystem::path& log_file) {
  CAIRN_ASSIGN_OR_RETURN(auto slirp_path, findExecutable(slirp_program));
  std::unique_ptr<SlirpNetwork> net(new SlirpNetwork());

  int ready[2];
  int release[2];
  if (pipe2(ready, O_CLOEXEC) != 0) return errnoStatus(errno, "pipe");
  UniqueFd ready_r(ready[0]), ready_w(ready[1]);
  if (pipe2(release, O_CLOEXEC) != 0) return errnoStatus(errno, "pipe");
  UniqueFd release_r(release[0]), release_w(release[1]);
  pid_t parent = getpid();
  {
    ChildReaper& reaper = ChildReaper::instance();
    auto lock = reaper.spawnLock();
    pid_t pid = fork();
    if (pid < 0) return errnoStatus(errno, "fork network namespace holder");
    if (pid == 0) holderMain(ready_w.get(), release_r.get(), parent);
    reaper.watch(pid);
    net->holder_pid_ = pid;
  }
  net->holder_release_ = std::move(release_w);
  ready_w.reset();
  release_r.reset();
  char c = 0;
  Status ready_status = waitReadable(ready_r.get(), 10000, "network namespace holder");
  if (!ready_status.ok() || read(ready_r.get(), &c, 1) != 1) {
    auto st = ChildReaper::instance().wait(
        net->holder_pid_, std::chrono::steady_clock::now() + std::chrono::seconds(5));
    net->holder_pid_ = -1;
    std::string why = st ? st->toString() : "no status";
    if (st && !st->signaled && st->exit_code == 10) why = "unshare(CLONE_NEWNET) failed";
    if (st && !st->signaled && st->exit_code == 11) why = "bringing up loopback failed";
    return failedPrecondition("creating a network namespace failed: " + why);
  }

  int slirp_ready[2];
  int slirp_exit[2];
  if (pipe2(slirp_ready, O_CLOEXEC) != 0) return errnoStatus(errno, "pipe");
  UniqueFd sready_r(slirp_ready[0]), sready_w(slirp_ready[1]);
  if (pipe2(slirp_exit, O_CLOEXEC) != 0) return errnoStatus(errno, "pipe");
  UniqueFd sexit_r(slirp_exit[0]), sexit_w(slirp_exit[1]);
  UniqueFd log_w(open(log_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!log_w.valid()) return errnoStatus(errno, "create " + log_file.string());
  SpawnOptions options;
  options.args = {slirp_path.string(),
                  "--configure",
                  "--mtu=65520",
                  "--disable-host-loopback",
                  "--ready-fd=" + std::to_string(sready_w.get()),
                  "--exit-fd=" + std::to_string(sexit_r.get()),
                  std::to_string(net->holder_pid_),
                  "tap0"};
  options.keep_fds = {sready_w.get(), sexit_r.get()};
  options.stdout_fd = log_w.get();
  options.stderr_fd = log_w.get();
  options.parent_death_signal = SIGKILL;
  CAIRN_ASSIGN_OR_RETURN(Subprocess slirp, Subprocess::spawn(options));
  net->slirp_ = std::make_unique<Subprocess>(std::move(slirp));
  net->slirp_exit_ = std::move(sexit_w);
  sready_w.reset();
  sexit_r.reset();
  log_w.reset();
  Status s = waitReadable(sready_r.get(), 10000, "slirp4netns");
  if (!s.ok() || read(sready_r.get(), &c, 1) != 1) {
    std::string log = readFile(log_file).valueOr("");
    return unavailable("slirp4netns failed to start: " + (log.empty() ? s.toString() : log));
  }
  return net;
}

SlirpNetwork::~SlirpNetwork() {
  slirp_exit_.reset();
  if (slirp_) {
    auto st = slirp_->wait(std::chrono::steady_clock::now() + std::chrono::seconds(2));
    if (!st) {
      slirp_->kill(SIGKILL);
      slirp_->wait();
    }
  }
  if (holder_pid_ > 0) {
    holder_release_.reset();
    auto st = ChildReaper::instance().wait(
        holder_pid_, std::chrono::steady_clock::now() + std::chrono::seconds(2));
    if (!st) {
      ::kill(holder_pid_, SIGKILL);
      ChildReaper::instance().wait(holder_pid_, std::nullopt);
    }
  }
}

std::string SlirpNetwork::netnsPath() const {
  return "/proc/" + std::to_string(holder_pid_) + "/ns/net";
}

}  // namespace cairn::runtime

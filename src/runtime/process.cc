#include "cairn/runtime/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <map>
#include <thread>

#include "cairn/common/log.h"

extern char** environ;

namespace cairn::runtime {

std::string ExitStatus::toString() const {
  if (!signaled) return "exit code " + std::to_string(exit_code);
  const char* name = sigabbrev_np(signal);
  return "killed by signal " + std::to_string(signal) +
         (name != nullptr ? std::string(" (SIG") + name + ")" : std::string());
}

ExitStatus exitStatusFromWait(int wait_status) {
  ExitStatus s;
  if (WIFSIGNALED(wait_status)) {
    s.signaled = true;
    s.signal = WTERMSIG(wait_status);
  } else {
    s.exit_code = WEXITSTATUS(wait_status);
  }
  return s;
}

struct ChildReaper::State {
  std::mutex mu;
  std::condition_variable cv;
  std::map<pid_t, std::optional<ExitStatus>> watched;
  std::uint64_t orphans = 0;
  std::uint64_t spawns = 0;  // bumped by watch(): tells the idle loop a child exists now
};

ChildReaper& ChildReaper::instance() {
  // Leaked on purpose: the reaper thread runs until the process exits.
  static ChildReaper* reaper = new ChildReaper();
  return *reaper;
}

ChildReaper::ChildReaper() : state_(new State) {
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
    spdlog::warn("runtime: PR_SET_CHILD_SUBREAPER failed: {}", std::strerror(errno));
  std::thread([this] { loop(); }).detach();
}

void ChildReaper::loop() {
  for (;;) {
    std::uint64_t spawns_seen = 0;
    {
      std::lock_guard lock(state_->mu);
      spawns_seen = state_->spawns;
    }
    siginfo_t info{};
    // Peek first (WNOWAIT) so the pid stays valid until we hold the lock and know whose it is.
    if (waitid(P_ALL, 0, &info, WEXITED | WNOWAIT) != 0) {
      if (errno == EINTR) continue;
      // ECHILD: no children right now. Sleep until a spawn or a short timeout (an orphan can
      // only arrive while we have a child, so the timeout is a belt-and-braces measure). The
      // predicate matters: a spawn between waitid and this wait notified nobody, and without
      // it its exit would be noticed only after the timeout (every short-lived child paid up
      // to 200 ms, `cairn run … true` most of its time).
      std::unique_lock lock(state_->mu);
      state_->cv.wait_for(lock, std::chrono::milliseconds(200),
                          [&] { return state_->spawns != spawns_seen; });
      continue;
    }
    pid_t pid = info.si_pid;
    std::unique_lock lock(state_->mu);
    int wstatus = 0;
    pid_t r = waitpid(pid, &wstatus, WNOHANG);
    if (r != pid) continue;
    auto it = state_->watched.find(pid);
    if (it != state_->watched.end()) {
      it->second = exitStatusFromWait(wstatus);
      state_->cv.notify_all();
    } else {
      ++state_->orphans;
      spdlog::debug("runtime: reaped orphan pid {}", pid);
    }
  }
}

std::unique_lock<std::mutex> ChildReaper::spawnLock() {
  return std::unique_lock(state_->mu);
}

void ChildReaper::watch(pid_t pid) {
  // Called with spawnLock() held.
  state_->watched.emplace(pid, std::nullopt);
  ++state_->spawns;
  state_->cv.notify_all();
}

std::optional<ExitStatus> ChildReaper::wait(
    pid_t pid, std::optional<std::chrono::steady_clock::time_point> deadline) {
  std::unique_lock lock(state_->mu);
  auto ready = [&] {
    auto it = state_->watched.find(pid);
    return it == state_->watched.end() || it->second.has_value();
  };
  if (deadline) {
    if (!state_->cv.wait_until(lock, *deadline, ready)) return std::nullopt;
  } else {
    state_->cv.wait(lock, ready);
  }
  auto it = state_->watched.find(pid);
  if (it == state_->watched.end()) return std::nullopt;
  ExitStatus s = *it->second;
  state_->watched.erase(it);
  return s;
}

std::uint64_t ChildReaper::orphansReaped() const {
  std::lock_guard lock(state_->mu);
  return state_->orphans;
}

int openPidFd(pid_t pid) {
  // glibc 2.36's <sys/pidfd.h> lacks extern "C", so its wrappers cannot be linked from C++.
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
}

Result<std::filesystem::path> findExecutable(const std::string& name) {
  if (name.empty()) return invalidArgument("empty program name");
  if (name.find('/') != std::string::npos) {
    if (access(name.c_str(), X_OK) == 0) return std::filesystem::path(name);
    return errnoStatus(errno, "executable " + name);
  }
  const char* path_env = std::getenv("PATH");
  std::string path = path_env != nullptr ? path_env : "/usr/local/bin:/usr/bin:/bin";
  path += ":/usr/sbin:/sbin";
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(start, end - start);
    if (!dir.empty()) {
      std::filesystem::path candidate = std::filesystem::path(dir) / name;
      if (access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    start = end + 1;
  }
  return notFound("executable " + name + " not found in PATH");
}

namespace {

// posix_spawn's attributes and file actions, destroyed with the object.
struct SpawnAttrs {
  posix_spawnattr_t attr;
  posix_spawn_file_actions_t actions;
  SpawnAttrs() {
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_init(&actions);
  }
  ~SpawnAttrs() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  SpawnAttrs(const SpawnAttrs&) = delete;
  SpawnAttrs& operator=(const SpawnAttrs&) = delete;
};

}  // namespace

Result<Subprocess> Subprocess::adopt(pid_t pid, std::unique_lock<std::mutex> spawn_lock) {
  ChildReaper& reaper = ChildReaper::instance();
  reaper.watch(pid);
  // Still under the lock: the reaper cannot have reaped the child yet, so the pid is valid.
  UniqueFd pidfd(openPidFd(pid));
  int pidfd_errno = errno;
  spawn_lock.unlock();
  if (!pidfd.valid()) {
    ::kill(pid, SIGKILL);
    reaper.wait(pid, std::nullopt);
    return errnoStatus(pidfd_errno, "pidfd_open");
  }
  return Subprocess(pid, std::move(pidfd));
}

Result<Subprocess> Subprocess::spawn(const SpawnOptions& options) {
  if (options.args.empty()) return invalidArgument("spawn: no program given");
  // posix_spawn (glibc: clone(CLONE_VM | CLONE_VFORK)) does not copy this process's page
  // tables, and the parent does not take copy-on-write faults afterwards: in `cairn run` a
  // fork() cost ~1 ms of the sandbox's start. A parent-death signal has no posix_spawn
  // attribute, and passing extra fds through needs a per-fd close list, so those two (the
  // slirp4netns network, off the hot path) keep the fork() path below.
  if (options.parent_death_signal == 0 && options.keep_fds.empty()) return spawnLight(options);
  CAIRN_ASSIGN_OR_RETURN(std::filesystem::path program, findExecutable(options.args[0]));
  // Everything the child needs is prepared before fork: after fork only async-signal-safe
  // calls are allowed (this process has threads).
  std::vector<char*> argv;
  for (const auto& a : options.args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::string program_str = program.string();
  UniqueFd dev_null(open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!dev_null.valid()) return errnoStatus(errno, "open /dev/null");
  int fds[3] = {options.stdin_fd, options.stdout_fd, options.stderr_fd};
  for (int& fd : fds)
    if (fd < 0) fd = dev_null.get();
  std::vector<int> keep = options.keep_fds;
  pid_t parent = getpid();

  auto lock = ChildReaper::instance().spawnLock();
  pid_t pid = fork();
  if (pid < 0) return errnoStatus(errno, "fork for " + program_str);
  if (pid == 0) {
    if (options.parent_death_signal != 0) {
      prctl(PR_SET_PDEATHSIG, options.parent_death_signal, 0, 0, 0);
      if (getppid() != parent) _exit(127);
    }
    // Ignored signals survive exec: a server that ignores SIGPIPE must not hand that to a
    // build step (`yes | head` would then spin on EPIPE instead of dying). Reset everything.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig)
      sigaction(sig, &dfl, nullptr);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (options.new_session) setsid();
    // Move the chosen fds out of the 0..2 range first so dup2 order cannot clobber them.
    int moved[3];
    for (int i = 0; i < 3; ++i) {
      moved[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 100);
      if (moved[i] < 0) _exit(127);
    }
    for (int i = 0; i < 3; ++i)
      if (dup2(moved[i], i) < 0) _exit(127);
    for (int fd : keep) {
      int flags = fcntl(fd, F_GETFD);
      if (flags >= 0) fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
    }
    // Close everything else that is not explicitly kept.
    int max_keep = 2;
    for (int fd : keep)
      max_keep = fd > max_keep ? fd : max_keep;
    for (int fd = 3; fd <= max_keep; ++fd) {
      bool kept = false;
      for (int k : keep)
        kept = kept || k == fd;
      if (!kept) close(fd);
    }
    close_range(static_cast<unsigned>(max_keep + 1), ~0U, 0);
    execve(program_str.c_str(), argv.data(), environ);
    _exit(127);
  }
  return adopt(pid, std::move(lock));
}

Result<Subprocess> Subprocess::spawnLight(const SpawnOptions& options) {
  CAIRN_ASSIGN_OR_RETURN(std::filesystem::path program, findExecutable(options.args[0]));
  std::vector<char*> argv;
  for (const auto& a : options.args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const std::string program_str = program.string();
  UniqueFd dev_null;
  // The child's 0, 1 and 2 come from copies numbered 3 or above, so that no dup2 onto 0..2 can
  // clobber a source another one still needs (stdout given as fd 0, …); closefrom(3) then
  // drops the copies and everything else this process did not mark close-on-exec.
  UniqueFd sources[3];
  const int wanted[3] = {options.stdin_fd, options.stdout_fd, options.stderr_fd};
  for (int i = 0; i < 3; ++i) {
    int fd = wanted[i];
    if (fd < 0) {
      if (!dev_null.valid()) dev_null.reset(open("/dev/null", O_RDWR | O_CLOEXEC));
      if (!dev_null.valid()) return errnoStatus(errno, "open /dev/null");
      fd = dev_null.get();
    }
    sources[i].reset(fcntl(fd, F_DUPFD_CLOEXEC, 3));
    if (!sources[i].valid()) return errnoStatus(errno, "dup fd " + std::to_string(fd));
  }
  SpawnAttrs spawn;
  // Ignored signals survive exec: a server that ignores SIGPIPE must not hand that to a build
  // step (`yes | head` would then spin on EPIPE instead of dying). Every signal goes back to
  // its default, and none stays blocked.
  // Every bit set, not sigfillset: that leaves out glibc's internal signals (32, 33), which
  // glibc's posix_spawn then sets to SIG_IGN in the child, and the exec'd program would
  // inherit them ignored.
  sigset_t all, none;
  std::memset(&all, 0xff, sizeof all);
  sigemptyset(&none);
  short flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK;
  if (options.new_session) flags |= POSIX_SPAWN_SETSID;
  int err = posix_spawnattr_setflags(&spawn.attr, flags);
  if (err == 0) err = posix_spawnattr_setsigdefault(&spawn.attr, &all);
  if (err == 0) err = posix_spawnattr_setsigmask(&spawn.attr, &none);
  for (int i = 0; i < 3 && err == 0; ++i)
    err = posix_spawn_file_actions_adddup2(&spawn.actions, sources[i].get(), i);
  if (err == 0) err = posix_spawn_file_actions_addclosefrom_np(&spawn.actions, 3);
  if (err != 0) return errnoStatus(err, "posix_spawn attributes for " + program_str);

  auto lock = ChildReaper::instance().spawnLock();
  pid_t pid = -1;
  err = posix_spawn(&pid, program_str.c_str(), &spawn.actions, &spawn.attr, argv.data(), environ);
  if (err != 0) return errnoStatus(err, "spawn " + program_str);
  return adopt(pid, std::move(lock));
}

Subprocess::Subprocess(Subprocess&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)), pidfd_(std::move(o.pidfd_)), status_(o.status_) {}

Subprocess& Subprocess::operator=(Subprocess&& o) noexcept {
  if (this != &o) {
    if (pid_ > 0 && !status_) {
      ::kill(pid_, SIGKILL);
      wait();
    }
    pid_ = std::exchange(o.pid_, -1);
    pidfd_ = std::move(o.pidfd_);
    status_ = o.status_;
  }
  return *this;
}

Subprocess::~Subprocess() {
  if (pid_ > 0 && !status_) {
    ::kill(pid_, SIGKILL);
    wait();
  }
}

std::optional<ExitStatus> Subprocess::wait(
    std::optional<std::chrono::steady_clock::time_point> deadline) {
  if (status_) return status_;
  if (pid_ <= 0) return std::nullopt;
  status_ = ChildReaper::instance().wait(pid_, deadline);
  return status_;
}

void Subprocess::kill(int signal) {
  if (pid_ > 0 && !status_) syscall(SYS_pidfd_send_signal, pidfd_.get(), signal, nullptr, 0);
}

Result<CommandOutput> runCommand(const std::vector<std::string>& args,
                                 std::chrono::milliseconds timeout, std::size_t max_bytes) {
  int out_pipe[2];
  int err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return errnoStatus(errno, "pipe");
  UniqueFd out_r(out_pipe[0]), out_w(out_pipe[1]);
  if (pipe2(err_pipe, O_CLOEXEC) != 0) return errnoStatus(errno, "pipe");
  UniqueFd err_r(err_pipe[0]), err_w(err_pipe[1]);
  SpawnOptions options;
  options.args = args;
  options.stdout_fd = out_w.get();
  options.stderr_fd = err_w.get();
  CAIRN_ASSIGN_OR_RETURN(Subprocess proc, Subprocess::spawn(options));
  out_w.reset();
  err_w.reset();
  CommandOutput result;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  pollfd pfds[2] = {{out_r.get(), POLLIN, 0}, {err_r.get(), POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_count = 2;
  bool timed_out = false;
  while (open_count > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    int n = poll(pfds, 2, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errnoStatus(errno, "poll");
    for (int i = 0; i < 2; ++i) {
      if (pfds[i].fd < 0 || pfds[i].revents == 0) continue;
      char buf[4096];
      ssize_t got = read(pfds[i].fd, buf, sizeof buf);
      if (got > 0) {
        if (sinks[i]->size() < max_bytes)
          sinks[i]->append(buf, std::min<std::size_t>(static_cast<std::size_t>(got),
                                                      max_bytes - sinks[i]->size()));
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        pfds[i].fd = -1;
        --open_count;
      }
    }
  }
  if (timed_out) {
    proc.kill(SIGKILL);
    proc.wait();
    return deadlineExceeded(args[0] + " did not finish within " + std::to_string(timeout.count()) +
                            " ms");
  }
  auto status = proc.wait(deadline + std::chrono::seconds(5));
  if (!status) {
    proc.kill(SIGKILL);
    proc.wait();
    return deadlineExceeded(args[0] + " closed its output but did not exit");
  }
  result.status = *status;
  return result;
}

}  // namespace cairn::runtime

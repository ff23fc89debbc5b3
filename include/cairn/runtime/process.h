// Child processes for the runtime: spawning helpers (crun, slirp4netns) with chosen file
// descriptors, and reaping every descendant that ends up parented to this process.
//
// Cairn marks itself a child subreaper (PR_SET_CHILD_SUBREAPER) so that container processes
// orphaned by `crun create`, and anything else a crashed helper leaves behind, become its
// children instead of init's (PID 1 on these machines does not reap). ChildReaper owns reaping
// for the whole process, like containerd's shim reaper: a thread waits for any child, hands the
// status of processes spawned through Subprocess to their waiters and discards orphans. A
// process that uses the runtime must therefore spawn children through Subprocess (or
// ChildReaper::watch), never with a bare fork + waitpid, whose status the reaper would take.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cairn/common/fs.h"
#include "cairn/common/status.h"

namespace cairn::runtime {

//! How a process ended, as waitpid reports it.
struct ExitStatus {
  int exit_code = 0;  //!< when !signaled
  int signal = 0;     //!< when signaled
  bool signaled = false;

  //! The shell's convention: exit code, or 128 + signal.
  int shellCode() const { return signaled ? 128 + signal : exit_code; }
  //! "exit code 3" / "killed by signal 9 (SIGKILL)".
  std::string toString() const;
};

ExitStatus exitStatusFromWait(int wait_status);

//! The process-wide reaper. instance() makes this process a child subreaper and starts the
//! reaper thread on first use.
class ChildReaper {
 public:
  static ChildReaper& instance();

  //! Starts tracking `pid` (a child of this process) so its status is kept for wait().
  //! Spawners call it while holding spawnLock(), so a child that exits at once is not mistaken
  //! for an orphan.
  void watch(pid_t pid);
  std::unique_lock<std::mutex> spawnLock();

  //! Blocks until `pid` (watched) has exited, or until `deadline`. Returns the status once.
  std::optional<ExitStatus> wait(pid_t pid,
                                 std::optional<std::chrono::steady_clock::time_point> deadline);

  //! Processes reaped that nobody watched (orphaned descendants).
  std::uint64_t orphansReaped() const;

 private:
  ChildReaper();
  void loop();
  struct State;
  State* state_;
};

//! What a spawned process gets as fds 0, 1, 2: -1 means /dev/null; otherwise the fd is dup'ed.
struct SpawnOptions {
  std::vector<std::string> args;  //!< args[0] is the program; looked up in PATH if no '/'
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  //! Extra fds passed through unchanged (e.g. slirp4netns --ready-fd); all others are closed.
  std::vector<int> keep_fds;
  bool new_session = false;  //!< setsid() in the child
  //! Kill the child with this signal if the thread that spawned it dies (0: don't).
  int parent_death_signal = 0;
};

//! A spawned child. Its exit status is collected through ChildReaper. Destroying a Subprocess
//! that is still running kills it (SIGKILL) and waits for it.
class Subprocess {
 public:
  static Result<Subprocess> spawn(const SpawnOptions& options);

  Subprocess(Subprocess&& o) noexcept;
  Subprocess& operator=(Subprocess&& o) noexcept;
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;
  ~Subprocess();

  pid_t pid() const { return pid_; }
  //! A pidfd: becomes readable when the process exits (for poll loops).
  int pidFd() const { return pidfd_.get(); }

  //! Waits for exit (until `deadline` if given; nullopt on timeout).
  std::optional<ExitStatus> wait(
      std::optional<std::chrono::steady_clock::time_point> deadline = std::nullopt);
  void kill(int signal);
  bool finished() const { return status_.has_value(); }

 private:
  Subprocess(pid_t pid, UniqueFd pidfd) : pid_(pid), pidfd_(std::move(pidfd)) {}
  static Result<Subprocess> spawnLight(const SpawnOptions& options);
  //! A child just started (fork or posix_spawn) while `spawn_lock` (ChildReaper::spawnLock)
  //! is held: watched and given its pidfd before the lock is released.
  static Result<Subprocess> adopt(pid_t pid, std::unique_lock<std::mutex> spawn_lock);
  pid_t pid_ = -1;
  UniqueFd pidfd_;
  std::optional<ExitStatus> status_;
};

//! Runs a program to completion with stdout and stderr captured (each bounded to `max_bytes`).
struct CommandOutput {
  ExitStatus status;
  std::string out;
  std::string err;
};
Result<CommandOutput> runCommand(const std::vector<std::string>& args,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(60),
                                 std::size_t max_bytes = 1 << 20);

//! pidfd_open(2): a pollable fd that becomes readable when `pid` exits; -1 with errno on error.
int openPidFd(pid_t pid);

//! Full path of `name` found in $PATH (or `name` itself if it contains '/' and is executable).
Result<std::filesystem::path> findExecutable(const std::string& name);

}  // namespace cairn::runtime

// Runs a ContainerSpec under an OCI runtime with the runc command line (crun by default; runc
// and runsc work too).
//
// One run: a work dir <work_root>/<id>/ with the bundle (config.json), the overlay mount point,
// an ephemeral upper dir when the caller gave none, and the generated /etc files. Without a
// terminal the executor drives `create` → `start` → waits for the container's init itself (it
// is this process's child thanks to PR_SET_CHILD_SUBREAPER), which gives the exact exit status
// and lets it read the cgroup's OOM counter before `delete`. With a terminal it uses `run`,
// which owns the pty. Timeout and cancel kill every process of the container (`kill --all`);
// on every outcome the container is deleted, everything under the work dir is unmounted and
// the work dir is removed. cleanupStale() does the same for leftovers of a crashed process.
//
//   ASSIGN_OR_RETURN(auto executor, Executor::create({.work_root = data / "work"}));
//   RunIo io;
//   io.on_line = [&](OutputStream s, std::string_view line) { log.write(s, line); };
//   ASSIGN_OR_RETURN(RunResult r, executor->run(spec, io));
//   RETURN_IF_ERROR(r.toStatus());  // "exit code 2", "out of memory", "timed out", ...
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "cairn/common/fs.h"
#include "cairn/common/status.h"
#include "cairn/runtime/container_spec.h"
#include "cairn/runtime/process.h"

namespace cairn::runtime {

struct ExecutorOptions {
  std::filesystem::path work_root;  //!< required; one dir per run below it
  std::string runtime = "crun";     //!< name (looked up in PATH) or path
  //! The runtime's --root (its container state). Default: /run/cairn/<runtime name>.
  std::filesystem::path state_root;
  std::string slirp4netns = "slirp4netns";
  //! crun on a host it refuses (hybrid cgroups that cannot be fixed): use runc instead.
  bool fallback_to_runc = true;
  std::string cgroup_parent = "/cairn";
  //! CPU weight of `cgroup_parent`, set by create() (setCgroupCpuWeight: cgroup v2's scale,
  //! 100 = an ordinary process); 0 leaves the parent as it is. `cairn serve` gives its builds and
  //! entrypoint checks a low one, so that they yield the CPU to the API when both want it.
  int cgroup_cpu_weight = 0;
  //! Where merged lower dirs are cached (flattenLowers). Default: <work_root>/../merged-lowers.
  std::filesystem::path merged_lowers_dir;
  //! crun only: seccomp filters crun compiled, cached by profile (and runtime binary) and
  //! handed back precompiled (annotation run.oci.seccomp_bpf_data). Compiling the default
  //! profile costs crun ~11 ms of CPU per container here, more than the rest of its start.
  //! Default: <state_root>/.cairn-seccomp.
  std::filesystem::path seccomp_cache_dir;
  std::size_t max_lower_dirs = 100;
  //! How long create/start/kill/delete of the runtime may take.
  std::chrono::seconds runtime_command_timeout{60};
  //! An ephemeral run's work dir (no caller upper) is renamed to `<work_root>/.trash-<id>`
  //! instead of being removed, for sweepTrash() (or cleanupStale()) to remove later: removing
  //! its directories takes ~20 ms here, nearly all of it waiting on the filesystem, which the
  //! caller can then overlap with other work. `cairn run` sweeps while its sandbox runs.
  bool defer_ephemeral_removal = false;
};

enum class OutputStream { kStdout, kStderr };

//! Cancels a run from another thread (a build cancelled by the API, Ctrl-C).
class CancelToken {
 public:
  CancelToken();
  void cancel();
  bool cancelled() const { return cancelled_.load(); }
  int fd() const { return fd_.get(); }  //!< an eventfd, readable once cancelled

 private:
  UniqueFd fd_;
  std::atomic<bool> cancelled_{false};
};

struct RunIo {
  //! Output lines without the '\n', in order per stream, as they arrive (a last line without
  //! '\n' is delivered at the end; lines over 64 KiB are split). Ignored when `attach`.
  std::function<void(OutputStream, std::string_view)> on_line;
  //! Use this process's stdin/stdout/stderr (`cairn run`). With spec.process.terminal the
  //! runtime puts the terminal in raw mode and proxies it.
  bool attach = false;
  //! stdin when not attached; -1: /dev/null.
  int stdin_fd = -1;
  const CancelToken* cancel = nullptr;
};

struct RunResult {
  std::string container_id;
  ExitStatus status;
  bool oom_killed = false;
  bool timed_out = false;
  bool cancelled = false;
  std::chrono::milliseconds duration{0};

  //! OK for exit code 0; otherwise a Status that says why: ResourceExhausted for an OOM kill
  //! (naming the memory limit), DeadlineExceeded for a timeout, Cancelled, or Internal with
  //! "exit code N" / "killed by signal N".
  Status toStatus() const;
  std::int64_t memory_limit_bytes = 0;
  std::chrono::milliseconds timeout{0};
};

//! What Executor::prepare needs to know of the run to come.
struct PrepareOptions {
  bool attach = false;          //!< RunIo::attach
  bool terminal = false;        //!< ContainerSpec::process.terminal
  bool memory_limited = false;  //!< ContainerSpec::limits.memory_bytes > 0
};

//! The part of a run that does not need its spec (Executor::prepare): the container id, the
//! run's locked work dir, and for an attached run on crun without a memory limit the runtime
//! process itself, started already and waiting for its config. Handed to Executor::run; dropped
//! unused, it stops that process and removes the work dir.
class PreparedRun {
 public:
  PreparedRun();
  PreparedRun(PreparedRun&& other) noexcept;
  PreparedRun& operator=(PreparedRun&& other) noexcept;
  ~PreparedRun();

  //! Empty once moved from or handed to Executor::run.
  bool empty() const { return state_ == nullptr; }
  const std::string& containerId() const;

 private:
  friend class Executor;
  struct State;
  std::unique_ptr<State> state_;
};

class Executor {
 public:
  //! Resolves the runtime, makes the host's cgroups acceptable to it (or falls back to runc),
  //! and creates the work and state roots. Does not clean up: call cleanupStale at startup.
  static Result<std::unique_ptr<Executor>> create(ExecutorOptions options);

  //! Runs `spec` to completion. An error Status means the container could not be run at all
  //! (bad spec, mount failure, runtime error); the process's own outcome is in RunResult.
  Result<RunResult> run(const ContainerSpec& spec, const RunIo& io);

  //! Starts what a run can start before its spec is ready, so that crun loads while the caller
  //! prepares an image's layers (`cairn run`): see PreparedRun.
  Result<PreparedRun> prepare(const PrepareOptions& options);
  //! run() in the work dir `prepared` made, with the runtime it may have started. A spec or io
  //! that does not match the PrepareOptions (a memory limit after all, say) has the early
  //! runtime stopped and the ordinary start instead. InvalidArgument for an empty PreparedRun.
  Result<RunResult> run(const ContainerSpec& spec, const RunIo& io, PreparedRun prepared);

  //! Deletes the runtime's containers left by a crashed process, unmounts and removes every
  //! work dir under work_root that no live run holds, and with `include_trash` the work dirs
  //! deferred runs left for sweepTrash(). Safe to call when nothing is left.
  Status cleanupStale(bool include_trash = true);

  //! Removes the `.trash-*` work dirs of finished runs (defer_ephemeral_removal). Safe to run
  //! on another thread while run() is in progress: it never touches a live run's dir.
  //! With `stop`, returns soon after it becomes true, leaving what is not removed yet for the
  //! next sweep: `cairn run` must not wait at exit for a sweep it started only to overlap it
  //! (on a filesystem mounted with `discard`, freeing one block can take milliseconds).
  Status sweepTrash(const std::atomic<bool>* stop = nullptr);

  const std::filesystem::path& runtimePath() const { return runtime_path_; }
  const ExecutorOptions& options() const { return options_; }

 private:
  Executor(ExecutorOptions options, std::filesystem::path runtime_path)
      : options_(std::move(options)), runtime_path_(std::move(runtime_path)) {}
  std::vector<std::string> runtimeArgs(std::initializer_list<std::string> args) const;
  //! runtimeArgs with the runtime's log going to `log_file`, in the runtime's own flag syntax.
  std::vector<std::string> runtimeArgsLogged(const std::filesystem::path& log_file,
                                             std::initializer_list<std::string> args) const;

  ExecutorOptions options_;
  std::filesystem::path runtime_path_;
};

//! Free-standing form of Executor::cleanupStale for a process that has no Executor yet.
Status cleanupStale(const std::filesystem::path& work_root, const std::filesystem::path& runtime,
                    const std::filesystem::path& state_root, bool include_trash = true);

}  // namespace cairn::runtime

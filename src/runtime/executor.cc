#include "cairn/runtime/executor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <future>
#include <optional>
#include <thread>

#include "cairn/common/encoding.h"
#include "cairn/common/log.h"
#include "cairn/common/strings.h"
#include "cairn/runtime/cgroups.h"
#include "cairn/runtime/network.h"
#include "cairn/runtime/overlay.h"
#include "cairn/runtime/seccomp_cache.h"

namespace cairn::runtime {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

CancelToken::CancelToken() : fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

void CancelToken::cancel() {
  cancelled_.store(true);
  std::uint64_t one = 1;
  if (fd_.valid()) (void)!write(fd_.get(), &one, sizeof one);
}

Status RunResult::toStatus() const {
  if (cancelled) return ::cairn::cancelled("the run was cancelled");
  if (timed_out)
    return deadlineExceeded("the process did not finish within " + std::to_string(timeout.count()) +
                            " ms and was killed");
  if (oom_killed)
    return resourceExhausted("the process ran out of memory (limit " +
                             std::to_string(memory_limit_bytes / (1024 * 1024)) +
                             " MiB) and was killed (" + status.toString() + ")");
  if (!status.signaled && status.exit_code == 0) return okStatus();
  return internalError("the process failed: " + status.toString());
}

namespace {

constexpr std::size_t kMaxLine = 64 * 1024;

// Splits a byte stream into lines for RunIo::on_line.
class LineSplitter {
 public:
  LineSplitter(OutputStream stream, const std::function<void(OutputStream, std::string_view)>& sink)
      : stream_(stream), sink_(sink) {}
  void feed(std::string_view data) {
    while (!data.empty()) {
      std::size_t nl = data.find('\n');
      if (nl == std::string_view::npos) {
        pending_.append(data);
        while (pending_.size() >= kMaxLine) {
          emit(std::string_view(pending_).substr(0, kMaxLine));
          pending_.erase(0, kMaxLine);
        }
        return;
      }
      if (pending_.empty()) {
        emit(data.substr(0, nl));
      } else {
        pending_.append(data.substr(0, nl));
        emit(pending_);
        pending_.clear();
      }
      data.remove_prefix(nl + 1);
    }
  }
  void finish() {
    if (!pending_.empty()) emit(pending_);
    pending_.clear();
  }

 private:
  void emit(std::string_view line) {
    if (sink_) sink_(stream_, line);
  }
  OutputStream stream_;
  const std::function<void(OutputStream, std::string_view)>& sink_;
  std::string pending_;
};

bool isCrun(const fs::path& runtime) {
  return runtime.filename() == "crun";
}

// "oom_kill N" from a cgroup v1 memory.oom_control or v2 memory.events file.
std::int64_t readOomKills(const std::string& cgroups_path) {
  for (const fs::path& file :
       {fs::path("/sys/fs/cgroup/memory") / cgroups_path.substr(1) / "memory.oom_control",
        fs::path("/sys/fs/cgroup") / cgroups_path.substr(1) / "memory.events"}) {
    auto text = readFile(file);
    if (!text.ok()) continue;
    for (const std::string& line : splitString(*text, '\n')) {
      if (line.rfind("oom_kill ", 0) == 0) return std::atoll(line.c_str() + 9);
    }
  }
  return 0;
}

// Stub files and dirs the runtime creates as mount points when the rootfs lacks them: they
// must not end up in a layer (BuildKit removes them too).
bool isStubTree(const fs::path& p) {
  struct stat st {};
  if (lstat(p.c_str(), &st) != 0) return false;
  if (S_ISREG(st.st_mode)) return st.st_size == 0;
  if (!S_ISDIR(st.st_mode)) return false;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(p, ec))
    if (!isStubTree(entry.path())) return false;
  return !ec;
}

// The components of `destination` (relative) missing from `root`, outermost first: "etc",
// "etc/hosts" when the image has no /etc. Empty when it exists or ends at a non-directory.
std::vector<std::string> missingComponents(const fs::path& root, const std::string& destination) {
  std::vector<std::string> missing;
  fs::path rel;
  for (const fs::path& part : fs::path(destination).relative_path()) {
    rel /= part;
    struct stat st {};
    if (!missing.empty() || lstat((root / rel).c_str(), &st) != 0) {
      missing.push_back(rel.string());
    } else if (!S_ISDIR(st.st_mode)) {
      return {};  // a file or symlink: the runtime handles it
    }
  }
  return missing;
}

struct RunContext {
  fs::path dir;
  std::string id;
  bool container_created = false;
  bool deleted_by_runtime = false;
  std::unique_ptr<SlirpNetwork> network;
  fs::path caller_upper;
  fs::path rootfs_mount;  // the overlay this run mounted, once mounted
  std::vector<std::string> stubs;
};

}  // namespace

std::vector<std::string> Executor::runtimeArgs(std::initializer_list<std::string> args) const {
  std::vector<std::string> v = {runtime_path_.string(), "--root", options_.state_root.string()};
  v.insert(v.end(), args.begin(), args.end());
  return v;
}

std::vector<std::string> Executor::runtimeArgsLogged(
    const fs::path& log_file, std::initializer_list<std::string> args) const {
  std::vector<std::string> v = runtimeArgs({});
  if (isCrun(runtime_path_)) {
    v.push_back("--log=file:" + log_file.string());
  } else {
    v.push_back("--log");
    v.push_back(log_file.string());
  }
  v.insert(v.end(), args.begin(), args.end());
  return v;
}

// A prepared run's resources, in the order they must go when it is dropped: the spawning
// thread joined, then the runtime it started killed (with the Subprocess in the future's
// result), the FIFO closed, the work dir removed unless run() took it over, and the lock last.
struct PreparedRun::State {
  std::string id;
  fs::path dir;
  UniqueFd dir_lock;
  bool owns_dir = false;  // true from mkdir until run() takes over the dir's cleanup
  UniqueFd early_fifo;    // our read-write end of <dir>/config.json while it is a FIFO
  std::future<Result<Subprocess>> early_spawn;
  std::jthread early_spawner;

  // Turns config.json back from a FIFO into a name the ordinary order writes a file to (a FIFO
  // with no reader would block that write).
  void abandonFifo() {
    early_fifo.reset();
    unlink((dir / "config.json").c_str());
  }
  // Stops a runtime started early that nobody collected (an early return of run()).
  void stopEarlyRuntime() {
    if (early_spawner.joinable()) early_spawner.join();
    early_spawn = {};  // the Subprocess in the result is killed and reaped as it goes
    early_fifo.reset();
  }
  ~State() {
    stopEarlyRuntime();
    if (owns_dir) {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  }
};

PreparedRun::PreparedRun() = default;
PreparedRun::PreparedRun(PreparedRun&& other) noexcept = default;
PreparedRun& PreparedRun::operator=(PreparedRun&& other) noexcept = default;
PreparedRun::~PreparedRun() = default;

const std::string& PreparedRun::containerId() const {
  static const std::string kNone;
  return state_ ? state_->id : kNone;
}

Result<std::unique_ptr<Executor>> Executor::create(ExecutorOptions options) {
  if (options.work_root.empty()) return invalidArgument("executor: work_root is required");
  std::error_code ec;
  options.work_root = fs::absolute(options.work_root, ec);
  CAIRN_ASSIGN_OR_RETURN(fs::path runtime, findExecutable(options.runtime));
  // One look at /proc/self/mountinfo serves both the log line and the runtime's needs.
  auto detected = detectHostCgroups();
  CgroupInfo cgroups = detected.ok() ? *detected : CgroupInfo{};
  Status prepared =
      detected.ok() ? prepareCgroupsForRuntime(runtime.string(), cgroups) : detected.status();
  if (!prepared.ok()) {
    if (!options.fallback_to_runc || !isCrun(runtime)) return prepared;
    auto runc = findExecutable("runc");
    if (!runc.ok())
      return failedPrecondition(prepared.message() + "; and runc is not installed either");
    spdlog::warn("runtime: {}; using {} instead of crun", prepared.message(), runc->string());
    runtime = *runc;
  }
  if (options.state_root.empty()) options.state_root = fs::path("/run/cairn") / runtime.filename();
  if (options.merged_lowers_dir.empty())
    options.merged_lowers_dir = options.work_root.parent_path() / "merged-lowers";
  if (options.seccomp_cache_dir.empty())
    options.seccomp_cache_dir = options.state_root / ".cairn-seccomp";
  for (const fs::path& d : {options.work_root, options.state_root}) {
    fs::create_directories(d, ec);
    if (ec) return internalError("create " + d.string() + ": " + ec.message());
  }
  if (options.cgroup_cpu_weight != 0) {
    // Best effort: without it containers run at the default weight, as before.
    if (Status s = setCgroupCpuWeight(cgroups, options.cgroup_parent, options.cgroup_cpu_weight);
        !s.ok()) {
      if (s.code() == StatusCode::kInvalidArgument) return s;
      spdlog::warn("runtime: giving {} CPU weight {}: {}", options.cgroup_parent,
                   options.cgroup_cpu_weight, s.toString());
    }
  }
  spdlog::debug("runtime: {} on {} cgroups, work root {}", runtime.string(),
                cgroupModeName(cgroups.mode), options.work_root.string());
  return std::unique_ptr<Executor>(new Executor(std::move(options), std::move(runtime)));
}

namespace {

constexpr std::string_view kTrashPrefix = ".trash-";
constexpr std::size_t kMaxTrashBacklog = 4;

bool isTrash(const std::string& name) {
  return name.rfind(kTrashPrefix, 0) == 0;
}

}  // namespace

Status cleanupStale(const fs::path& work_root, const fs::path& runtime, const fs::path& state_root,
                    bool include_trash) {
  std::error_code ec;
  if (!fs::exists(work_root, ec)) return okStatus();
  Status first;
  std::vector<fs::path> entries;
  for (const auto& entry : fs::directory_iterator(work_root, ec))
    entries.push_back(entry.path());
  for (const fs::path& entry : entries) {
    std::string id = entry.filename().string();
    if (!include_trash && isTrash(id)) continue;
    UniqueFd lock(open(entry.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
    if (lock.valid() && flock(lock.get(), LOCK_EX | LOCK_NB) != 0) continue;  // a live run
    if (id.rfind("cairn-", 0) == 0 && !runtime.empty()) {
      auto out =
          runCommand({runtime.string(), "--root", state_root.string(), "delete", "--force", id},
                     std::chrono::seconds(30));
      if (out.ok() && out->status.exit_code == 0)
        spdlog::debug("runtime: deleted stale container {}", id);
    }
    Status s = unmountAllUnder(entry);
    fs::remove_all(entry, ec);
    if (!s.ok() && first.ok()) first = s;
    if (ec && first.ok()) first = internalError("remove " + entry.string() + ": " + ec.message());
    if (first.ok() && !isTrash(id))
      spdlog::info("runtime: removed stale work dir {}", entry.string());
  }
  return first;
}

Status Executor::cleanupStale(bool include_trash) {
  return runtime::cleanupStale(options_.work_root, runtime_path_, options_.state_root,
                               include_trash);
}

namespace {

// fs::remove_all, one entry at a time, giving up (false, no error) once `stop` is set. Never
// follows symlinks and never crosses into another filesystem: the caller unmounted the tree.
bool removeTreeUnlessStopped(const fs::path& dir, const std::atomic<bool>* stop,
                             std::error_code& ec) {
  auto stopped = [stop] { return stop != nullptr && stop->load(std::memory_order_relaxed); };
  std::vector<fs::path> children;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    children.push_back(entry.path());
  if (ec) return false;
  for (const fs::path& child : children) {
    if (stopped()) return false;
    if (fs::is_directory(fs::symlink_status(child, ec)) && !ec) {
      if (!removeTreeUnlessStopped(child, stop, ec)) return false;
    } else {
      if (ec) return false;
      fs::remove(child, ec);
      if (ec) return false;
    }
  }
  if (stopped()) return false;
  fs::remove(dir, ec);
  return !ec;
}

}  // namespace

Status Executor::sweepTrash(const std::atomic<bool>* stop) {
  std::error_code ec;
  Status first;
  std::vector<fs::path> trash;
  for (const auto& entry : fs::directory_iterator(options_.work_root, ec))
    if (isTrash(entry.path().filename().string())) trash.push_back(entry.path());
  if (ec) return internalError("list " + options_.work_root.string() + ": " + ec.message());
  // A sweep that keeps being stopped must not let trash pile up: past a small backlog it
  // finishes whatever `stop` says, so a caller then waits for it once.
  if (trash.size() > kMaxTrashBacklog) stop = nullptr;
  for (const fs::path& dir : trash) {
    if (stop != nullptr && stop->load()) break;
    // A run renames its dir while still holding the lock; it is released right after.
    UniqueFd lock(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
    if (!lock.valid() || flock(lock.get(), LOCK_EX | LOCK_NB) != 0) continue;
    Status s = unmountAllUnder(dir);
    if (s.ok() && !removeTreeUnlessStopped(dir, stop, ec) && ec) {
      if (first.ok()) first = internalError("remove " + dir.string() + ": " + ec.message());
      ec.clear();
    }
    if (!s.ok() && first.ok()) first = s;
  }
  return first;
}

namespace {

// The per-run /etc files and config.json live only as long as the run: no fsync needed.
Status writeEphemeralFile(const fs::path& path, std::string_view data) {
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) return errnoStatus(errno, "create " + path.string());
  return writeAll(fd.get(), data);
}

// A compiled seccomp filter in the cache: the file for one (runtime binary, profile) pair, and
// the exact text it must have been made from.
struct SeccompCacheEntry {
  fs::path file;
  std::string key;
};

// The runtime binary is part of the key (path, size, mtime): another crun may compile the same
// profile differently. The file name is only a hash; the whole key is stored and compared on
// every read, so a collision or a stale file is a miss, never a wrong filter.
SeccompCacheEntry seccompCacheEntry(const fs::path& cache_dir, const fs::path& runtime,
                                    const std::string& profile_json) {
  std::string key = runtime.string();
  struct stat st {};
  if (stat(runtime.c_str(), &st) == 0) {
    key += " " + std::to_string(st.st_size) + " " + std::to_string(st.st_mtim.tv_sec) + "." +
           std::to_string(st.st_mtim.tv_nsec);
  }
  key += "\n" + profile_json;
  char name[32];
  std::snprintf(name, sizeof name, "%016zx.bpf", std::hash<std::string>{}(key));
  return {cache_dir / name, std::move(key)};
}

// A filter is served only from a whole file whose stored key is exactly this entry's: anything
// torn, foreign or stale is a miss (cairn/runtime/seccomp_cache.h).
std::optional<std::string> readCachedFilter(const SeccompCacheEntry& entry) {
  auto text = readFile(entry.file);
  if (!text.ok()) return std::nullopt;
  auto file = parseSeccompCacheFile(*text);
  if (!file || file->key != entry.key) return std::nullopt;
  return std::move(file->filter);
}

// Best effort: a cache that cannot be written only costs the next run the compile.
void writeCachedFilter(const SeccompCacheEntry& entry, std::string_view filter) {
  std::error_code ec;
  fs::create_directories(entry.file.parent_path(), ec);
  const std::string data = formatSeccompCacheFile(entry.key, filter);
  // Published by rename, so a reader sees the whole file or none (no fsync: it is a cache, and
  // a torn file after a crash fails the checks above).
  fs::path tmp = entry.file;
  tmp += ".tmp-" + std::to_string(getpid());
  Status s = writeEphemeralFile(tmp, data);
  if (s.ok() && rename(tmp.c_str(), entry.file.c_str()) != 0)
    s = errnoStatus(errno, "rename " + tmp.string());
  if (!s.ok()) {
    fs::remove(tmp, ec);
    spdlog::debug("runtime: caching the seccomp filter: {}", s.toString());
  }
}

// Puts `text` in place as <bundle>/config.json while the runtime may already be blocked on the
// FIFO of that name (see the early start in Executor::run). `fifo` is our read-write end of it:
// holding both ends means nobody blocks in open(2) and the data stays in the pipe until read.
// The regular file replaces the FIFO's name first, so any open from then on reads the file;
// the data then goes through the pipe for a runtime that opened the FIFO before, and closing
// our end gives it EOF. A runtime that had not opened it yet reads the file, and the pipe's
// copy is dropped with the pipe.
Status handOverConfig(const fs::path& bundle, std::string_view text, UniqueFd fifo) {
  fs::path tmp = bundle / ".config.json.tmp";
  CAIRN_RETURN_IF_ERROR(writeEphemeralFile(tmp, text));
  if (rename(tmp.c_str(), (bundle / "config.json").c_str()) != 0)
    return errnoStatus(errno, "rename " + tmp.string());
  // The caller made the pipe large enough, so this write never waits for a reader.
  return writeAll(fifo.get(), text);
}

Status runRuntimeCommand(const std::vector<std::string>& args, std::chrono::seconds timeout,
                         const fs::path& log_file, std::string_view what) {
  auto out = runCommand(args, timeout);
  if (!out.ok()) return out.status().withContext(what);
  if (out->status.signaled || out->status.exit_code != 0) {
    std::string message(trimSpace(out->err));
    if (message.empty()) message = std::string(trimSpace(readFile(log_file).valueOr("")));
    if (message.empty()) message = out->status.toString();
    return failedPrecondition(std::string(what) + ": " + message);
  }
  return okStatus();
}

}  // namespace

namespace {

bool canStartEarly(const fs::path& runtime, const PrepareOptions& o) {
  // `crun run` is the path (see use_run below): attached, and a terminal or no memory limit.
  return isCrun(runtime) && o.attach && (o.terminal || !o.memory_limited);
}

Status checkRunnable(const ContainerSpec& spec, const RunIo& io) {
  CAIRN_RETURN_IF_ERROR(validateContainerSpec(spec));
  if (spec.process.terminal && !io.attach)
    return invalidArgument("a terminal needs an attached run (RunIo::attach)");
  return okStatus();
}

PrepareOptions prepareOptionsFor(const ContainerSpec& spec, const RunIo& io) {
  return PrepareOptions{.attach = io.attach,
                        .terminal = spec.process.terminal,
                        .memory_limited = spec.limits.memory_bytes > 0};
}

}  // namespace

Result<PreparedRun> Executor::prepare(const PrepareOptions& options) {
  auto st = std::make_unique<PreparedRun::State>();
  // getrandom(2) rather than common's randomBytes: the id needs no DRBG, and OpenSSL's
  // first RAND_bytes (DRBG setup, then its cleanup at exit) cost ~1 ms of every `cairn run`.
  unsigned char id_bytes[8];
  if (getrandom(id_bytes, sizeof id_bytes, 0) != static_cast<ssize_t>(sizeof id_bytes))
    return errnoStatus(errno, "getrandom for a container id");
  st->id = "cairn-" +
           hexEncode(std::string_view(reinterpret_cast<const char*>(id_bytes), sizeof id_bytes));
  st->dir = options_.work_root / st->id;
  if (mkdir(st->dir.c_str(), 0700) != 0) return errnoStatus(errno, "mkdir " + st->dir.string());
  st->owns_dir = true;
  // Held for the whole run: cleanupStale (of another process) leaves a locked dir alone, and
  // the lock goes away by itself when this process dies.
  st->dir_lock.reset(open(st->dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!st->dir_lock.valid() || flock(st->dir_lock.get(), LOCK_EX) != 0)
    return errnoStatus(errno, "lock " + st->dir.string());

  // Early start: crun takes a few ms (exec, loading, re-executing itself) before it reads
  // config.json, about as long as a run takes to prepare its image and bundle. A run that will
  // use `crun run` starts it first, with config.json a FIFO it blocks on; handOverConfig (in
  // run) ends the wait. If the run turns out not to use it after all, the waiting crun is
  // killed before it has done anything and the ordinary order follows.
  //
  // The spawn itself runs on another thread: posix_spawn holds the calling thread until crun
  // has been exec'd (~0.7 ms of loading crun here), time the caller spends preparing instead.
  // run() collects it (awaitEarlyRuntime) before anything uses the process.
  if (canStartEarly(runtime_path_, options)) {
    const fs::path fifo = st->dir / "config.json";
    if (mkfifo(fifo.c_str(), 0600) == 0)
      st->early_fifo.reset(open(fifo.c_str(), O_RDWR | O_CLOEXEC));
    if (st->early_fifo.valid()) {
      SpawnOptions early;
      early.stdin_fd = 0;
      early.stdout_fd = 1;
      early.stderr_fd = 2;
      // No --pid-file: nothing reads it on this path, and it is one file less to create.
      early.args =
          runtimeArgsLogged(st->dir / "runtime.log", {"run", "--bundle", st->dir.string(), st->id});
      try {
        std::promise<Result<Subprocess>> spawned;
        st->early_spawn = spawned.get_future();
        // The result is there as soon as the runtime is exec'd; the thread is joined later.
        st->early_spawner =
            std::jthread([spawned = std::move(spawned), early = std::move(early)]() mutable {
              spawned.set_value(Subprocess::spawn(early));
            });
      } catch (const std::system_error&) {
        st->early_spawn = {};  // no thread to spare: run() starts the runtime the ordinary way
      }
    }
    if (!st->early_spawn.valid()) st->abandonFifo();
  }
  PreparedRun prepared;
  prepared.state_ = std::move(st);
  return prepared;
}

Result<RunResult> Executor::run(const ContainerSpec& spec, const RunIo& io) {
  // Checked before prepare() makes a work dir for it (and again by the run, which is cheap).
  CAIRN_RETURN_IF_ERROR(checkRunnable(spec, io));
  CAIRN_ASSIGN_OR_RETURN(PreparedRun prepared, prepare(prepareOptionsFor(spec, io)));
  return run(spec, io, std::move(prepared));
}

Result<RunResult> Executor::run(const ContainerSpec& spec, const RunIo& io, PreparedRun prepared) {
  CAIRN_RETURN_IF_ERROR(checkRunnable(spec, io));
  if (prepared.empty())
    return invalidArgument("run: the PreparedRun was moved from or used already");
  if (prepared.state_->dir.parent_path() != options_.work_root)
    return invalidArgument("run: the PreparedRun was made by an executor with another work root");
  auto started = Clock::now();
  // Kept to the end of the run: its lock is released only after the work dir is renamed.
  const std::unique_ptr<PreparedRun::State> prep = std::move(prepared.state_);
  prep->owns_dir = false;  // from here on the cleanup below removes (or defers) the dir
  RunContext ctx;
  ctx.id = prep->id;
  ctx.dir = prep->dir;

  RunResult result;
  result.container_id = ctx.id;
  result.memory_limit_bytes = spec.limits.memory_bytes;
  result.timeout = spec.timeout;
  const fs::path log_file = ctx.dir / "runtime.log";

  // Phase timings at debug level: where a sandbox start spends its time.
  auto phase = [&](std::string_view what) {
    spdlog::debug(
        "runtime: {} {} at {} ms", ctx.id, what,
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count());
  };
  auto body = [&]() -> Status {
    auto withLog = [&](std::initializer_list<std::string> args) {
      return runtimeArgsLogged(log_file, args);
    };
    // The process whose exit ends the run: the container's init (create/start), or the
    // runtime's `run` process when it owns a terminal.
    std::optional<Subprocess> run_process;

    // The runtime prepare() may have started, waiting on the config.json FIFO.
    auto awaitEarlyRuntime = [&] {
      if (!prep->early_spawn.valid()) return;
      Result<Subprocess> p = prep->early_spawn.get();
      if (p.ok()) {
        run_process.emplace(std::move(*p));
      } else {
        spdlog::debug("runtime: starting {} early: {}", ctx.id, p.status().toString());
        prep->abandonFifo();
      }
    };
    auto dropEarlyRuntime = [&] {
      awaitEarlyRuntime();
      if (!run_process) return;
      run_process->kill(SIGKILL);
      (void)run_process->wait();
      run_process.reset();
      prep->abandonFifo();
    };
    // Prepared for another kind of run than this one: the ordinary order instead.
    if (prep->early_spawn.valid() && !canStartEarly(runtime_path_, prepareOptionsFor(spec, io)))
      dropEarlyRuntime();

    // Root filesystem.
    fs::path rootfs;
    if (!spec.rootfs.dir.empty()) {
      std::error_code ec;
      rootfs = fs::canonical(spec.rootfs.dir, ec);
      if (ec) return notFound("rootfs " + spec.rootfs.dir.string() + ": " + ec.message());
    } else {
      CAIRN_ASSIGN_OR_RETURN(std::vector<fs::path> lowers,
                             flattenLowers(spec.rootfs.lower_dirs, options_.merged_lowers_dir,
                                           options_.max_lower_dirs));
      OverlayMount overlay;
      overlay.lower_dirs = lowers;
      if (spec.rootfs.upper_dir.empty()) {
        overlay.upper_dir = ctx.dir / "upper";
        overlay.work_dir = ctx.dir / "work";
        overlay.discard_upper = true;  // removed with the run's work dir, never mounted again
      } else {
        overlay.upper_dir = fs::absolute(spec.rootfs.upper_dir);
        overlay.work_dir = fs::absolute(spec.rootfs.work_dir);
        ctx.caller_upper = overlay.upper_dir;
      }
      for (const fs::path& d : {overlay.upper_dir, overlay.work_dir}) {
        std::error_code ec;
        fs::create_directories(d, ec);
        if (ec) return internalError("create " + d.string() + ": " + ec.message());
      }
      rootfs = ctx.dir / "rootfs";
      if (mkdir(rootfs.c_str(), 0755) != 0) return errnoStatus(errno, "mkdir " + rootfs.string());
      CAIRN_RETURN_IF_ERROR(mountOverlay(overlay, rootfs));
      ctx.rootfs_mount = rootfs;
      phase("overlay mounted");
      if (!ctx.caller_upper.empty()) {
        std::vector<std::string> destinations = {
            "/proc", "/dev", "/sys", "/etc/hosts", "/etc/resolv.conf", "/etc/hostname"};
        for (const MountSpec& m : spec.mounts)
          destinations.push_back(m.destination);
        for (const std::string& d : destinations) {
          for (std::string& m : missingComponents(rootfs, d))
            ctx.stubs.push_back(std::move(m));
        }
      }
    }

    // Generated /etc files.
    OciConfigInputs inputs;
    inputs.rootfs_path = rootfs.string();
    inputs.hosts_file = (ctx.dir / "hosts").string();
    inputs.resolv_conf_file = (ctx.dir / "resolv.conf").string();
    inputs.hostname_file = (ctx.dir / "hostname").string();
    inputs.cgroups_path = options_.cgroup_parent + "/" + ctx.id;
    fillHostRlimits(inputs);
    CAIRN_RETURN_IF_ERROR(writeEphemeralFile(inputs.hosts_file, makeHostsFile(spec.hostname)));
    CAIRN_RETURN_IF_ERROR(
        writeEphemeralFile(inputs.resolv_conf_file,
                           makeResolvConf(spec.network, readFile("/etc/resolv.conf").valueOr(""))));
    CAIRN_RETURN_IF_ERROR(writeEphemeralFile(inputs.hostname_file, spec.hostname + "\n"));

    if (spec.network == NetworkMode::kDefault) {
      CAIRN_ASSIGN_OR_RETURN(ctx.network,
                             SlirpNetwork::create(options_.slirp4netns, ctx.dir / "slirp.log"));
      inputs.netns_path = ctx.network->netnsPath();
      phase("network ready");
    }
    // With crun, the seccomp section goes into config.json only when crun needs it. Cairn
    // compiles the filter itself (libseccomp, binary-tree layout: the kernel installs it in
    // ~0.2 instead of ~0.6 ms) once per profile and runtime, caches it keyed by the section's
    // text, and hands it over precompiled (run.oci.seccomp_bpf_data), so crun neither parses
    // ~300 rules nor compiles them. If compiling fails (no libseccomp.so.2), crun gets the
    // section and compiles it itself, as any OCI runtime would.
    const bool crun = isCrun(runtime_path_);
    inputs.with_seccomp = !crun;
    CAIRN_ASSIGN_OR_RETURN(OrderedJson config, makeOciConfig(spec, inputs));
    if (crun) {
      CAIRN_ASSIGN_OR_RETURN(std::optional<SeccompSectionText> seccomp,
                             seccompSectionTextFor(spec.seccomp, defaultCapabilities()));
      if (seccomp) {
        // The layout and the compiler are part of the key: a filter compiled another way, or by
        // a libseccomp that resolves more syscall names, is another entry. (Asking libseccomp
        // its version loads it, ~65 us; without it the run still works, as crun compiles.)
        const std::string compiler = seccompCompilerVersion().valueOr("no libseccomp");
        SeccompCacheEntry entry =
            seccompCacheEntry(options_.seccomp_cache_dir, runtime_path_,
                              "cairn-tree " + compiler + "\n" + seccomp->text);
        std::optional<std::string> filter = readCachedFilter(entry);
        std::optional<OrderedJson> section;
        if (!filter) {
          CAIRN_ASSIGN_OR_RETURN(section, parseOrderedJson(seccomp->text));
          auto compiled = compileSeccompFilter(*section, SeccompFilterLayout::kBinaryTree);
          if (compiled.ok()) {
            writeCachedFilter(entry, *compiled);
            filter = std::move(*compiled);
          } else {
            spdlog::debug("runtime: compiling the seccomp filter: {}",
                          compiled.status().toString());
          }
        }
        if (filter) config["annotations"]["run.oci.seccomp_bpf_data"] = base64Encode(*filter);
        // Flags or a notify listener are not in the program: crun reads them from the section.
        if (!filter || !seccomp->rules_only) {
          if (!section) {
            CAIRN_ASSIGN_OR_RETURN(section, parseOrderedJson(seccomp->text));
          }
          config["linux"]["seccomp"] = std::move(*section);
        }
      }
    }
    awaitEarlyRuntime();
    std::string config_text = config.dump(2);
    // The pipe must hold the whole config, so that handing it over never waits for crun.
    if (prep->early_fifo.valid() &&
        fcntl(prep->early_fifo.get(), F_SETPIPE_SZ, static_cast<int>(config_text.size())) <
            static_cast<int>(config_text.size()))
      dropEarlyRuntime();
    if (run_process) {
      CAIRN_RETURN_IF_ERROR(handOverConfig(ctx.dir, config_text, std::move(prep->early_fifo)));
      ctx.container_created = true;
    } else {
      CAIRN_RETURN_IF_ERROR(writeEphemeralFile(ctx.dir / "config.json", config_text));
    }
    phase("bundle written");

    auto deadline = spec.timeout.count() > 0
                        ? std::optional<Clock::time_point>(Clock::now() + spec.timeout)
                        : std::nullopt;
    std::string pid_file = (ctx.dir / "pid").string();

    // Pipes for output unless attached.
    UniqueFd out_r, out_w, err_r, err_w;
    if (!io.attach) {
      int p[2];
      if (pipe2(p, O_CLOEXEC) != 0) return errnoStatus(errno, "pipe");
      out_r.reset(p[0]);
      out_w.reset(p[1]);
      if (pipe2(p, O_CLOEXEC) != 0) return errnoStatus(errno, "pipe");
      err_r.reset(p[0]);
      err_w.reset(p[1]);
    }
    SpawnOptions spawn;
    spawn.stdin_fd = io.attach ? 0 : io.stdin_fd;
    spawn.stdout_fd = io.attach ? 1 : out_w.get();
    spawn.stderr_fd = io.attach ? 2 : err_w.get();

    pid_t init_pid = -1;
    UniqueFd init_pidfd;
    // `run` owns a terminal and is the fastest start (one runtime process instead of create,
    // start and delete); create/start is needed to read the cgroup's OOM counter before the
    // container is gone, so it is used whenever output is captured or memory is limited.
    const bool use_run = spec.process.terminal || (io.attach && spec.limits.memory_bytes == 0);
    if (use_run) {
      if (!run_process) {  // not started early
        // No --pid-file: nothing reads it on this path, and it is one file less to create.
        spawn.args = withLog({"run", "--bundle", ctx.dir.string(), ctx.id});
        CAIRN_ASSIGN_OR_RETURN(Subprocess p, Subprocess::spawn(spawn));
        run_process.emplace(std::move(p));
        ctx.container_created = true;
      }
    } else {
      spawn.args =
          withLog({"create", "--bundle", ctx.dir.string(), "--pid-file", pid_file, ctx.id});
      CAIRN_ASSIGN_OR_RETURN(Subprocess create, Subprocess::spawn(spawn));
      ctx.container_created = true;
      auto st = create.wait(Clock::now() + options_.runtime_command_timeout);
      if (!st) return deadlineExceeded("creating the container timed out");
      phase("created");
      if (st->signaled || st->exit_code != 0) {
        std::string message(trimSpace(readFile(log_file).valueOr("")));
        return failedPrecondition("creating the container failed: " +
                                  (message.empty() ? st->toString() : message));
      }
      CAIRN_ASSIGN_OR_RETURN(std::string pid_text, readFile(pid_file));
      init_pid = std::atoi(pid_text.c_str());
      if (init_pid <= 0) return internalError("runtime wrote no pid to " + pid_file);
      {
        // The init is waiting for `start`, so it cannot have exited yet; it is our child now
        // (subreaper), so its status comes to us.
        ChildReaper& reaper = ChildReaper::instance();
        auto lock = reaper.spawnLock();
        reaper.watch(init_pid);
        init_pidfd.reset(openPidFd(init_pid));
      }
      if (!init_pidfd.valid()) return errnoStatus(errno, "pidfd_open of the container init");
      CAIRN_RETURN_IF_ERROR(runRuntimeCommand(withLog({"start", ctx.id}),
                                              options_.runtime_command_timeout, log_file,
                                              "starting the container"));
      phase("started");
    }
    out_w.reset();
    err_w.reset();

    LineSplitter out_lines(OutputStream::kStdout, io.on_line);
    LineSplitter err_lines(OutputStream::kStderr, io.on_line);
    const int exit_fd = use_run ? run_process->pidFd() : init_pidfd.get();
    bool exited = false;
    bool killed = false;
    std::optional<Clock::time_point> drain_deadline;
    auto killAll = [&] {
      if (killed) return;
      killed = true;
      (void)runCommand(runtimeArgs({"kill", "--all", ctx.id, "KILL"}), std::chrono::seconds(10));
      if (init_pid > 0) ::kill(init_pid, SIGKILL);
      // `run` may not have created the container yet (still reading its config): then there was
      // nothing to kill above, and only the runtime process itself ends the run.
      if (use_run && run_process) run_process->kill(SIGKILL);
    };
    for (;;) {
      bool out_open = out_r.valid(), err_open = err_r.valid();
      if (exited && !out_open && !err_open) break;
      pollfd pfds[4];
      int n = 0;
      pfds[n++] = {exited ? -1 : exit_fd, POLLIN, 0};
      pfds[n++] = {io.cancel != nullptr ? io.cancel->fd() : -1, POLLIN, 0};
      pfds[n++] = {out_open ? out_r.get() : -1, POLLIN, 0};
      pfds[n++] = {err_open ? err_r.get() : -1, POLLIN, 0};
      int timeout_ms = -1;
      auto now = Clock::now();
      auto limit =
          exited ? drain_deadline : (killed ? std::optional<Clock::time_point>() : deadline);
      if (limit) {
        timeout_ms = static_cast<int>(std::max<std::int64_t>(
            0, std::chrono::duration_cast<std::chrono::milliseconds>(*limit - now).count() + 1));
      }
      int ready = poll(pfds, static_cast<nfds_t>(n), timeout_ms);
      if (ready < 0 && errno == EINTR) continue;
      if (ready < 0) return errnoStatus(errno, "poll");
      if (ready == 0) {
        if (exited) break;  // output held open by an escaped process: stop reading
        result.timed_out = true;
        spdlog::info("runtime: {} timed out after {} ms; killing it", ctx.id, spec.timeout.count());
        killAll();
        continue;
      }
      if (pfds[0].revents != 0 && !exited) {
        exited = true;
        drain_deadline = Clock::now() + std::chrono::seconds(5);
      }
      if (pfds[1].revents != 0 && !killed) {
        result.cancelled = true;
        killAll();
      }
      for (int i = 2; i < 4; ++i) {
        if (pfds[i].fd < 0 || pfds[i].revents == 0) continue;
        char buf[16384];
        ssize_t got = read(pfds[i].fd, buf, sizeof buf);
        if (got > 0) {
          (i == 2 ? out_lines : err_lines)
              .feed(std::string_view(buf, static_cast<std::size_t>(got)));
        } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
          (i == 2 ? out_r : err_r).reset();
        }
      }
    }
    out_lines.finish();
    phase("exited");
    err_lines.finish();

    if (use_run) {
      auto st = run_process->wait(Clock::now() + options_.runtime_command_timeout);
      if (!st) return deadlineExceeded("the runtime did not exit after its container");
      result.status = *st;
      // The runtime reports a signal as 128 + signal; a clean exit means it deleted.
      ctx.deleted_by_runtime = !killed && !st->signaled && st->exit_code < 125;
      if (!st->signaled && st->exit_code > 128 && st->exit_code < 128 + 65) {
        result.status.signaled = true;
        result.status.signal = st->exit_code - 128;
        result.status.exit_code = 0;
      }
    } else {
      auto st = ChildReaper::instance().wait(init_pid, Clock::now() + std::chrono::seconds(10));
      if (!st)
        return internalError("no exit status for the container init (pid " +
                             std::to_string(init_pid) + ")");
      result.status = *st;
      result.oom_killed = readOomKills(inputs.cgroups_path) > 0;
    }
    return okStatus();
  };

  Status status = body();
  // A runtime started early and never collected (body returned before it) ends now, before
  // the work dir it waits in is cleaned up.
  prep->stopEarlyRuntime();

  // Every outcome: delete the container, stop the network, unmount, remove the work dir.
  // (`run` deletes its container itself when it ends normally.)
  if (ctx.container_created && !ctx.deleted_by_runtime) {
    auto out =
        runCommand(runtimeArgs({"delete", "--force", ctx.id}), options_.runtime_command_timeout);
    if (!out.ok() || out->status.exit_code != 0)
      spdlog::debug("runtime: delete {}: {}", ctx.id,
                    out.ok() ? std::string(trimSpace(out->err)) : out.status().toString());
  }
  ctx.network.reset();
  phase("deleted");
  // A deferred dir is only renamed below, and whoever removes it later unmounts everything
  // under it first (from /proc/self/mountinfo). So such a run takes down the one mount it made
  // and skips reading the host's mount table, which costs more the more mounts the host has.
  const bool defer = options_.defer_ephemeral_removal && ctx.caller_upper.empty();
  Status unmounted = !defer                     ? unmountAllUnder(ctx.dir)
                     : ctx.rootfs_mount.empty() ? okStatus()
                                                : unmountReliably(ctx.rootfs_mount);
  // Deepest first, so /etc goes only when nothing but stubs is left in it.
  std::sort(ctx.stubs.begin(), ctx.stubs.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (const std::string& stub : ctx.stubs) {
    fs::path p = ctx.caller_upper / stub;
    if (isStubTree(p)) {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  }
  std::error_code ec;
  bool deferred = false;
  if (unmounted.ok() && defer) {
    // Renamed while still locked, so a sweep cannot start on it before this run lets go.
    fs::path trash = options_.work_root / (std::string(kTrashPrefix) + ctx.id);
    deferred = rename(ctx.dir.c_str(), trash.c_str()) == 0;
  }
  if (unmounted.ok() && !deferred) fs::remove_all(ctx.dir, ec);
  if (status.ok() && !unmounted.ok()) status = unmounted.withContext("cleaning up " + ctx.id);
  if (status.ok() && ec)
    status = internalError("removing work dir " + ctx.dir.string() + ": " + ec.message());
  if (!status.ok()) return status.withContext("container " + ctx.id);
  result.duration = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
  return result;
}

}  // namespace cairn::runtime

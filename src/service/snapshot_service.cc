#include "cairn/service/snapshot_service.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "cairn/common/fs.h"
#include "cairn/common/log.h"
#include "cairn/common/uuid.h"
#include "cairn/layer/apply.h"
#include "cairn/layer/stream.h"
#include "cairn/meta/api_key.h"

namespace cairn::service {
namespace {

using meta::Snapshot;
using meta::SnapshotState;

constexpr std::string_view kBuildJob = "build";
constexpr std::string_view kPullJob = "pull";
constexpr double kBytesPerGb = 1024.0 * 1024.0 * 1024.0;
constexpr long kTempLockGraceSeconds = 60;

Status accessDenied() {
  return permissionDenied("Access denied");
}

Status requirePermission(const Caller& caller, std::string_view permission) {
  for (const auto& p : caller.permissions) {
    if (p == permission || p == meta::kPermissionAdmin) return okStatus();
  }
  return accessDenied();
}

Status requireUuid(std::string_view id) {
  if (!isUuid(id)) return invalidArgument("Validation failed (uuid is expected)");
  return okStatus();
}

bool isBuildState(SnapshotState s) {
  return s == SnapshotState::kPending || s == SnapshotState::kBuilding ||
         s == SnapshotState::kPulling;
}

std::string formatGb2(double gb) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f", gb);
  return buf;
}

std::string sizeExceeded(std::uint64_t bytes, double max_gb) {
  return "Snapshot size (" + formatGb2(static_cast<double>(bytes) / kBytesPerGb) +
         "GB) exceeds maximum allowed size of " + formatNumber(max_gb) + "GB";
}

// errorReason is bounded (§0.4): keep the head line (what failed) and the tail (last output).
std::string boundReason(std::string reason, std::size_t max) {
  if (reason.empty()) reason = "unknown error";
  if (reason.size() <= max) return reason;
  std::size_t head = std::min<std::size_t>(reason.find('\n'), max / 4);
  std::string out = reason.substr(0, head);
  out += "\n…\n";
  std::size_t tail = max > out.size() ? max - out.size() : 0;
  out += reason.substr(reason.size() - tail);
  return out;
}

std::string minutesText(std::chrono::milliseconds d) {
  auto m = std::chrono::duration_cast<std::chrono::minutes>(d).count();
  if (m >= 1) return std::to_string(m) + (m == 1 ? " minute" : " minutes");
  return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(d).count()) + " seconds";
}

Json jobPayload(const Snapshot& s) {
  return Json{{"snapshotId", s.id}};
}

// Each started service holds an flock on <data>/work/workers/<worker_id>.lock (see lockWorker).
std::filesystem::path workersDirIn(const std::filesystem::path& data_dir) {
  return data_dir / "work" / "workers";
}

}  // namespace

// ---------------------------------------------------------------------------------------------

struct SnapshotService::Impl {
  Impl(const ServiceOptions& o, meta::MetaStore& st, SnapshotBuilder& b, ContextReader* c,
       const Clock& cl)
      : options(o), store(st), builder(b), contexts(c), clock(cl) {}

  const ServiceOptions& options;
  meta::MetaStore& store;
  SnapshotBuilder& builder;
  ContextReader* contexts;
  const Clock& clock;

  // Log watchers: one entry per watchLogs() call. The entry's mutex makes "after the watch is
  // destroyed the callback is never running" true.
  struct Watcher {
    std::mutex mu;
    bool active = true;
    std::function<void()> notify;
  };
  std::mutex watchers_mu;
  std::map<std::string, std::vector<std::shared_ptr<Watcher>>, std::less<>> watchers;

  // Jobs this process runs now: heartbeated by the maintenance pass.
  std::mutex running_mu;
  std::map<std::int64_t, std::string> running_jobs;  // job id → snapshot id
  std::set<std::string, std::less<>> open_logs;      // snapshot ids with a live writer
  // Builds running here, so that a delete or an expired deadline can stop them.
  std::map<std::string, std::shared_ptr<runtime::CancelToken>, std::less<>> cancels;
  std::atomic<bool> gc_pending{false};  // an image was removed; collect when the builder is idle
  std::mutex maintenance_mu;            // one maintenance pass at a time

  // Image pins: "decide to reuse image R" and "decide to remove image R" must not interleave.
  // A create that found R built inserts an `active` row only after findBuilt(); a pull job's
  // snapshot has no ref until it is active. Without pins, the collector could look for
  // snapshots sharing R in between, find none and untag R under a snapshot about to use it.
  // So create() and every build/pull job pin their ref (a counter, held across findBuilt() up
  // to the row that carries the ref), and the collector and the validation-failure path take
  // refs_mu across "is R pinned or referenced?" and removeImage(R), skipping pinned refs.
  //
  // The pins live in this process. The SQLite store is served by one process at a time (a
  // sibling on the same data dir is only ever taken over once it is dead), so that is enough
  // here. Several live processes on one PostgreSQL database and one image store would need the
  // same decision under a database lock instead: e.g. pg_advisory_xact_lock(hash(ref)) taken by
  // create around findBuilt() + INSERT and by the collector around its sharing check +
  // removeImage(), and jobs' pins kept as leased rows (ref, worker, expiry) that the collector
  // reads in that same transaction.
  std::mutex refs_mu;
  std::map<std::string, int, std::less<>> ref_pins;  // snapshot ref (the tag) → holders

  class RefPin {
   public:
    RefPin(Impl& impl, std::string ref) : impl_(&impl), ref_(std::move(ref)) {
      std::lock_guard lock(impl_->refs_mu);
      ++impl_->ref_pins[ref_];
    }
    ~RefPin() {
      std::lock_guard lock(impl_->refs_mu);
      auto it = impl_->ref_pins.find(ref_);
      if (it != impl_->ref_pins.end() && --it->second <= 0) impl_->ref_pins.erase(it);
    }
    RefPin(const RefPin&) = delete;
    RefPin& operator=(const RefPin&) = delete;

   private:
    Impl* impl_;
    std::string ref_;
  };

  // Callers hold refs_mu.
  int pinsOf(std::string_view ref) const {
    auto it = ref_pins.find(ref);
    return it == ref_pins.end() ? 0 : it->second;
  }

  // Whether a snapshot with this (full) ref is active: its image passed the entrypoint check, so
  // a new snapshot of the same definition may reuse it without one (§5.3). An image that is
  // tagged but whose only snapshots are still being validated is not reusable yet. A failed
  // query answers false: the new snapshot then goes through a job, which validates.
  bool someActiveWithRef(const std::string& full_ref) {
    meta::SnapshotFilter f;
    f.states = {SnapshotState::kActive};
    f.ref = full_ref;
    f.limit = 1;
    auto found = store.findSnapshots(f);
    return found.ok() && !found->empty();
  }

  // Threads.
  std::mutex thread_mu;
  std::condition_variable wake;
  bool stopping = false;
  //! Bumped by wakeWorkers(). Idle workers wait for a change of it: a wait whose predicate was
  //! only `stopping` slept through every notification, so new jobs waited for the next tick.
  std::uint64_t wake_generation = 0;
  // Set by stop(): a build cancelled because the process is stopping is handed back to the
  // queue (another worker or the next start takes it over), not failed.
  std::atomic<bool> shutting_down{false};
  std::vector<std::thread> threads;

  void notifyLog(std::string_view snapshot_id) {
    std::vector<std::shared_ptr<Watcher>> list;
    {
      std::lock_guard lock(watchers_mu);
      auto it = watchers.find(snapshot_id);
      if (it == watchers.end()) return;
      list = it->second;
    }
    for (auto& w : list) {
      std::lock_guard lock(w->mu);
      if (w->active && w->notify) w->notify();
    }
  }

  void wakeWorkers() {
    std::lock_guard lock(thread_mu);
    ++wake_generation;
    wake.notify_all();
  }

  std::filesystem::path logPath(std::string_view id) const {
    return options.data_dir / "logs" / (std::string(id) + ".log");
  }

  std::string fullRef(const std::string& snapshot_ref) const {
    return options.registry_host + "/" + options.registry_project + "/" + snapshot_ref;
  }

  meta::OrganizationLimits orgLimits(std::string_view org_id, bool* suspended,
                                     std::string* reason) {
    auto org = store.getOrganization(org_id);
    if (!org.ok()) return {};
    *suspended = org->suspended;
    if (org->suspension_reason) *reason = *org->suspension_reason;
    return org->limits;
  }

  SandboxLimits sandboxLimits(const meta::OrganizationLimits& l) const {
    SandboxLimits s = options.limits;
    if (l.max_cpu_per_sandbox) s.max_cpu = *l.max_cpu_per_sandbox;
    if (l.max_memory_gb_per_sandbox) s.max_memory_gb = *l.max_memory_gb_per_sandbox;
    if (l.max_disk_gb_per_sandbox) s.max_disk_gb = *l.max_disk_gb_per_sandbox;
    return s;
  }

  // Moves `id` from `from` to `to`; a lost race (another actor moved it first) is not an error
  // for background work, so callers get the Status and decide.
  // `outcome` names why a build or pull ends when the target state alone does not say it.
  Result<Snapshot> transition(const std::string& id, SnapshotState from, SnapshotState to,
                              const meta::SnapshotUpdate& update, std::string_view outcome = {}) {
    auto r = store.updateSnapshotState(id, from, to, update);
    if (r.ok()) notifyLog(id);
    if (r.ok() && isBuildState(from) && !isBuildState(to)) buildFinished(*r, to, outcome);
    return r;
  }

  void buildFinished(const Snapshot& s, SnapshotState to, std::string_view outcome) {
    if (!options.on_build_finished) return;
    if (outcome.empty()) {
      outcome = to == SnapshotState::kActive  ? "succeeded"
                : to == SnapshotState::kError ? "failed"
                                              : "cancelled";
    }
    options.on_build_finished(s.build_info ? "build" : "pull", outcome);
  }

  void cancelBuild(std::string_view id) {
    std::lock_guard lock(running_mu);
    auto it = cancels.find(id);
    if (it != cancels.end()) it->second->cancel();
  }

  Status failSnapshot(const std::string& id, SnapshotState from, const std::string& reason,
                      std::string_view outcome = {}) {
    meta::SnapshotUpdate u;
    u.error_reason = boundReason(reason, options.max_error_reason_bytes);
    auto r = transition(id, from, SnapshotState::kError, u, outcome);
    return r.ok() ? okStatus() : r.status();
  }

  // The log writer: appends to the file and wakes followers.
  class NotifyingSink final : public build::LogSink {
   public:
    NotifyingSink(Impl& impl, std::string id, std::unique_ptr<build::FileLogSink> file)
        : impl_(impl), id_(std::move(id)), file_(std::move(file)) {}
    void write(std::string_view bytes) override {
      if (file_) file_->write(bytes);
      impl_.notifyLog(id_);
    }

   private:
    Impl& impl_;
    std::string id_;
    std::unique_ptr<build::FileLogSink> file_;
  };

  struct OpenLog {
    Impl* impl;
    std::string id;
    std::unique_ptr<NotifyingSink> sink;
    ~OpenLog() {
      sink.reset();
      std::lock_guard lock(impl->running_mu);
      impl->open_logs.erase(id);
    }
  };

  std::unique_ptr<OpenLog> openLog(const std::string& id) {
    std::error_code ec;
    std::filesystem::create_directories(options.data_dir / "logs", ec);
    auto file = build::FileLogSink::open(logPath(id).string());
    auto out = std::make_unique<OpenLog>();
    out->impl = this;
    out->id = id;
    {
      std::lock_guard lock(running_mu);
      open_logs.insert(id);
    }
    if (!file.ok()) {
      spdlog::warn("snapshot {}: cannot open build log: {}", id, file.status().message());
    }
    out->sink = std::make_unique<NotifyingSink>(*this, id, file.ok() ? std::move(*file) : nullptr);
    return out;
  }

  bool stillBuilding(const std::string& id) {
    auto now = store.getSnapshot(id);
    return now.ok() && now->state == SnapshotState::kBuilding;
  }

  bool logOpen(std::string_view id) {
    std::lock_guard lock(running_mu);
    return open_logs.count(id) > 0;
  }

  Status assembleContext(const Snapshot& s, const std::filesystem::path& dir, build::LogSink& log) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    std::filesystem::create_directories(dir, ec);
    if (ec) return internalError("create context dir " + dir.string() + ": " + ec.message());
    const auto& hashes = s.build_info->context_hashes;
    if (hashes.empty()) return okStatus();
    if (contexts == nullptr) {
      return failedPrecondition("build contexts are not available: no object store configured");
    }
    for (const auto& hash : hashes) {
      std::string key = s.organization_id.value_or("") + "/" + hash + "/context.tar";
      log.write("#0 [internal] load build context " + hash + "\n");
      auto tar = dir.parent_path() / (dir.filename().string() + "-" + hash + ".tar");
      Status fetched = contexts->fetchObject(key, tar);
      if (!fetched.ok()) {
        std::filesystem::remove(tar, ec);
        return Status(fetched.code(), "build context " + hash + ": " + fetched.message());
      }
      int fd = ::open(tar.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return errnoStatus(errno, "open " + tar.string());
      UniqueFd owned(fd);
      layer::FdSource source(fd);
      layer::ApplyOptions ao;
      ao.whiteouts = layer::WhiteoutMode::kFlatten;
      ao.devices = layer::DevicePolicy::kSkip;
      ao.preserve_owner = false;
      ao.preserve_xattrs = false;
      auto applied = layer::applyLayerTar(source, dir, ao);
      owned.reset();
      std::filesystem::remove(tar, ec);
      if (!applied.ok()) {
        return invalidArgument("build context " + hash + ": " + applied.status().message());
      }
    }
    return okStatus();
  }

  // Finishes a build/pull: size check, then active (or error).
  Status finishActive(const Snapshot& s, SnapshotState from, const BuiltImage& image,
                      const std::string& ref, double max_gb) {
    if (static_cast<double>(image.size_bytes) > max_gb * kBytesPerGb) {
      return failSnapshot(s.id, from, sizeExceeded(image.size_bytes, max_gb));
    }
    meta::SnapshotUpdate u;
    u.size_bytes = static_cast<std::int64_t>(image.size_bytes);
    u.ref = ref;
    u.last_used_at = clock.now();
    if (!s.entrypoint && !image.entrypoint.empty()) u.entrypoint = image.entrypoint;
    auto r = transition(s.id, from, SnapshotState::kActive, u);
    return r.ok() ? okStatus() : r.status();
  }

  double maxImageGb(const Snapshot& s) {
    bool suspended = false;
    std::string reason;
    auto limits = orgLimits(s.organization_id.value_or(""), &suspended, &reason);
    return limits.max_image_size_gb.value_or(options.max_image_size_gb);
  }

  // Runs one build job for snapshot `s` (pending, or building when taken over from a dead
  // worker). Returns the outcome for the job record; the snapshot state says the rest.
  Status runBuild(Snapshot s) {
    SnapshotState from = s.state;
    if (from == SnapshotState::kPending) {
      meta::SnapshotUpdate u;
      u.initial_runner_id = options.worker_id;
      auto moved = transition(s.id, SnapshotState::kPending, SnapshotState::kBuilding, u);
      if (!moved.ok()) return okStatus();  // deleted or timed out meanwhile: nothing to do
      s = std::move(*moved);
    } else if (from != SnapshotState::kBuilding) {
      return okStatus();
    }
    const std::string& snapshot_ref = s.build_info->snapshot_ref;
    std::string ref = fullRef(snapshot_ref);
    double max_gb = maxImageGb(s);
    // Held until the snapshot is active (or failed): the row already carries the ref, but a
    // failed validation elsewhere must not untag an image this job is about to make active.
    RefPin pin(*this, snapshot_ref);

    auto log = openLog(s.id);
    if (from == SnapshotState::kBuilding) {
      log->sink->write("#0 build taken over by worker " + options.worker_id + "\n");
    }
    auto token = std::make_shared<runtime::CancelToken>();
    {
      std::lock_guard lock(running_mu);
      cancels[s.id] = token;
      if (shutting_down.load()) token->cancel();  // claimed just as stop() began
    }
    struct Unregister {
      Impl* impl;
      const std::string& id;
      ~Unregister() {
        std::lock_guard lock(impl->running_mu);
        impl->cancels.erase(id);
      }
    } unregister{this, s.id};

    // Built already: by another snapshot with the same definition meanwhile, or by a process
    // that died before the snapshot went active. Still validated below.
    Result<BuiltImage> built = notFound("not built");
    auto existing = builder.findBuilt(snapshot_ref);
    if (existing.ok() && existing->has_value()) {
      // Said in the log, or a reader of it would wonder where the build went.
      log->sink->write("#0 image " + ref +
                       " was built before from this definition: no build needed\n");
      built = std::move(**existing);
    } else {
      auto dir = options.data_dir / "work" / "contexts" / s.id;
      Status assembled = assembleContext(s, dir, *log->sink);
      built = assembled.ok()
                  ? builder.build(SnapshotBuildJob{snapshot_ref, s.build_info->dockerfile_content,
                                                   dir, token.get()},
                                  *log->sink)
                  : Result<BuiltImage>(assembled);
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
    Status validated = built.ok() ? validateBuilt(s, *built, token.get(), *log->sink) : okStatus();
    if ((!built.ok() || !validated.ok()) && shutting_down.load() && stillBuilding(s.id)) {
      log->sink->write("#0 worker " + options.worker_id + " stopping: build handed back\n");
      return unavailable("worker " + options.worker_id + " stopped during the build");
    }
    if (!built.ok()) {
      log->sink->write("ERROR: " + built.status().message() + "\n");
      log.reset();  // all bytes are in the file before the state turns terminal
      std::string reason = built.status().message();
      Status st = failSnapshot(s.id, SnapshotState::kBuilding, reason);
      (void)st;
      return okStatus();
    }
    if (!validated.ok()) {
      log.reset();
      Status st = failSnapshot(s.id, SnapshotState::kBuilding, validated.message());
      (void)st;
      return okStatus();
    }
    log.reset();
    Status st = finishActive(s, SnapshotState::kBuilding, *built, ref, max_gb);
    (void)st;  // a lost race (deadline, delete) leaves the other actor's state
    return okStatus();
  }

  // The entrypoint check before `active` (ServiceOptions::entrypoint_stay_up). An image whose
  // entrypoint fails loses its tag, so that dedup (§5.3) never makes a new snapshot of the same
  // definition `active` from it; its layers stay cached, so a retry rebuilds quickly.
  Status validateBuilt(const Snapshot& s, const BuiltImage& image,
                       const runtime::CancelToken* cancel, build::LogSink& log) {
    if (options.entrypoint_stay_up.count() <= 0) return okStatus();
    EntrypointCheck check;
    check.snapshot_ref = s.build_info->snapshot_ref;
    check.entrypoint = s.entrypoint.value_or(image.entrypoint);
    check.limits.cpus = s.cpu;
    check.limits.memory_bytes = static_cast<std::int64_t>(s.mem * kBytesPerGb);
    check.stay_up = options.entrypoint_stay_up;
    check.cancel = cancel;
    Status st = builder.validateEntrypoint(check, log);
    if (st.ok() || st.code() == StatusCode::kCancelled) return st;
    if (st.code() != StatusCode::kFailedPrecondition) {
      log.write("ERROR: entrypoint validation: " + st.message() + "\n");
      st = Status(st.code(), "Entrypoint validation failed: " + st.message());
    }
    // Under refs_mu (see ref_pins): another job of the same definition may be validating or
    // activating this very image (the caller's own job holds one pin); a flaky failure here must
    // not untag it under that one. The last job to fail it removes it.
    std::lock_guard refs_lock(refs_mu);
    bool in_use = pinsOf(check.snapshot_ref) > 1;
    if (!in_use && s.ref) {
      meta::SnapshotFilter same;
      same.ref = s.ref;
      auto sharing = store.findSnapshots(same);
      in_use = !sharing.ok();  // unsure: keep the tag
      if (sharing.ok()) {
        for (const auto& o : *sharing)
          if (o.id != s.id && o.state == SnapshotState::kActive) in_use = true;
      }
    }
    if (!in_use) {
      Status removed = builder.removeImage(check.snapshot_ref);
      if (removed.ok()) gc_pending = true;
    }
    return st;
  }

  Status runPull(Snapshot s) {
    SnapshotState from = s.state;
    if (from == SnapshotState::kPending) {
      meta::SnapshotUpdate u;
      u.initial_runner_id = options.worker_id;
      auto moved = transition(s.id, SnapshotState::kPending, SnapshotState::kPulling, u);
      if (!moved.ok()) return okStatus();
      s = std::move(*moved);
    } else if (from != SnapshotState::kPulling) {
      return okStatus();
    }
    auto log = openLog(s.id);
    log->sink->write("#1 resolve " + s.image_name + "\n");
    auto digest = builder.resolveDigest(s.image_name);
    if (!digest.ok()) {
      log->sink->write("ERROR: " + digest.status().message() + "\n");
      log.reset();
      Status st = failSnapshot(
          s.id, SnapshotState::kPulling,
          "Failed to resolve image " + s.image_name + ": " + digest.status().message());
      (void)st;
      return okStatus();
    }
    std::string hex = *digest;
    if (hex.rfind("sha256:", 0) == 0) hex = hex.substr(7);
    std::string snapshot_ref = "daytona-" + hex + ":daytona";
    std::string ref = fullRef(snapshot_ref);
    // The row has no ref until it is active: from here on only the pin keeps the collector off
    // an image this pull found (or tagged) for it.
    RefPin pin(*this, snapshot_ref);
    log->sink->write("#1 " + *digest + "\n");
    // The same image (by digest) already here: no download (§5.3 applied to pulls).
    auto existing = builder.findBuilt(snapshot_ref);
    if (existing.ok() && existing->has_value()) {
      log->sink->write("#2 " + s.image_name + " CACHED\n");
      log.reset();
      Status st = finishActive(s, SnapshotState::kPulling, **existing, ref, maxImageGb(s));
      (void)st;
      return okStatus();
    }
    log->sink->write("#2 pull " + s.image_name + "\n");
    auto pulled = builder.pull(s.image_name, *digest, snapshot_ref, *log->sink);
    if (!pulled.ok()) {
      log->sink->write("ERROR: " + pulled.status().message() + "\n");
      log.reset();
      Status st =
          failSnapshot(s.id, SnapshotState::kPulling,
                       "Failed to pull image " + s.image_name + ": " + pulled.status().message());
      (void)st;
      return okStatus();
    }
    log->sink->write("#2 DONE\n");
    log.reset();
    Status st = finishActive(s, SnapshotState::kPulling, *pulled, ref, maxImageGb(s));
    (void)st;
    return okStatus();
  }

  Result<bool> runOneJob(const std::vector<std::string>& kinds) {
    CAIRN_ASSIGN_OR_RETURN(auto claimed,
                           store.claimJob(options.worker_id, kinds, options.job_lease));
    if (!claimed) return false;
    meta::Job job = std::move(*claimed);
    std::string snapshot_id = job.snapshot_id.value_or("");
    {
      std::lock_guard lock(running_mu);
      running_jobs[job.id] = snapshot_id;
    }
    Status outcome = okStatus();
    auto snap = store.getSnapshot(snapshot_id);
    if (snap.ok()) {
      if (job.kind == kBuildJob && snap->build_info) {
        outcome = runBuild(std::move(*snap));
      } else if (job.kind == kPullJob) {
        outcome = runPull(std::move(*snap));
      } else {
        outcome = invalidArgument("job " + std::to_string(job.id) + ": unknown kind " + job.kind);
      }
    }
    {
      std::lock_guard lock(running_mu);
      running_jobs.erase(job.id);
    }
    if (outcome.ok()) {
      auto done = store.completeJob(job.id, options.worker_id);
      (void)done;
    } else {
      // Unavailable = interrupted by shutdown: queue it again at once.
      std::optional<std::chrono::milliseconds> retry;
      if (outcome.code() == StatusCode::kUnavailable) retry = std::chrono::milliseconds(0);
      auto failed = store.failJob(job.id, options.worker_id, outcome.message(), retry);
      if (failed.ok() && failed->state == meta::JobState::kFailed && snap.ok()) {
        auto now_snap = store.getSnapshot(snapshot_id);
        if (now_snap.ok() && isBuildState(now_snap->state)) {
          Status st = failSnapshot(snapshot_id, now_snap->state,
                                   "The snapshot job failed: " + outcome.message());
          (void)st;
        }
      }
    }
    return true;
  }

  // Deadlines (§0.2): every snapshot that stayed in a build state too long goes to error.
  Status enforceDeadlines() {
    struct Rule {
      SnapshotState state;
      std::chrono::milliseconds limit;
      const char* reason;
    };
    const Rule rules[] = {
        {SnapshotState::kPending, options.deadlines.pending,
         "Timeout waiting for a build worker: the snapshot stayed pending for more than "},
        {SnapshotState::kBuilding, options.deadlines.building,
         "Timeout processing snapshot on initial runner: the build ran for more than "},
        {SnapshotState::kPulling, options.deadlines.pulling,
         "Timeout processing snapshot pull on initial runner: the pull ran for more than "},
    };
    SystemTime now = clock.now();
    for (const auto& rule : rules) {
      meta::SnapshotFilter f;
      f.states = {rule.state};
      f.state_entered_before = now - rule.limit;
      CAIRN_ASSIGN_OR_RETURN(auto expired, store.findSnapshots(f));
      for (const auto& s : expired) {
        Status st =
            failSnapshot(s.id, rule.state, rule.reason + minutesText(rule.limit), "timed_out");
        if (st.ok()) cancelBuild(s.id);  // else it moved on meanwhile
      }
    }
    return okStatus();
  }

  Status reclaimJobs() {
    {
      std::map<std::int64_t, std::string> mine;
      {
        std::lock_guard lock(running_mu);
        mine = running_jobs;
      }
      for (const auto& [id, snapshot] : mine) {
        auto hb = store.heartbeatJob(id, options.worker_id, options.job_lease);
        (void)hb;
      }
    }
    CAIRN_ASSIGN_OR_RETURN(auto changed, store.reclaimExpiredJobs());
    for (const auto& job : changed) {
      if (job.state != meta::JobState::kFailed || !job.snapshot_id) continue;
      auto s = store.getSnapshot(*job.snapshot_id);
      if (!s.ok() || !isBuildState(s->state)) continue;
      Status st = failSnapshot(s->id, s->state,
                               "The worker processing this snapshot stopped (" +
                                   job.error.value_or("lease expired") + ")");
      (void)st;
    }
    if (!changed.empty()) wakeWorkers();
    return okStatus();
  }

  Status autoDeactivate() {
    if (options.deactivation_timeout.count() <= 0) return okStatus();
    meta::SnapshotFilter f;
    f.states = {SnapshotState::kActive};
    f.last_used_before = clock.now() - options.deactivation_timeout;
    CAIRN_ASSIGN_OR_RETURN(auto idle, store.findSnapshots(f));
    for (const auto& s : idle) {
      if (s.general) continue;
      if (s.organization_id) {
        auto org = store.getOrganization(*s.organization_id);
        if (org.ok() && org->limits.deactivation_timeout_minutes) {
          auto limit = std::chrono::minutes(*org->limits.deactivation_timeout_minutes);
          SystemTime last = s.last_used_at.value_or(s.created_at);
          if (limit.count() <= 0 || clock.now() - last < limit) continue;
        }
      }
      auto r = transition(s.id, SnapshotState::kActive, SnapshotState::kInactive, {});
      (void)r;
    }
    return okStatus();
  }

  // Removal (§5.6, §0.5): the name was released by DELETE; here the log, the image (when no
  // live snapshot shares the ref) and finally the row go.
  Status collectRemoved() {
    meta::SnapshotFilter f;
    f.states = {SnapshotState::kRemoving};
    CAIRN_ASSIGN_OR_RETURN(auto removing, store.findSnapshots(f));
    for (const auto& s : removing) {
      meta::JobFilter jf;
      jf.states = {meta::JobState::kRunning};
      jf.snapshot_id = s.id;
      auto running = store.listJobs(jf);
      if (running.ok() && !running->empty()) continue;  // its worker finishes first
      if (s.ref) {
        std::string tag = s.ref->substr(s.ref->rfind('/') + 1);
        // The check and the removal under refs_mu, so that no create or job starts reusing the
        // image in between (see ref_pins). A pinned image is in use right now: this snapshot's
        // removal is decided again on a later pass, when the user's row carries the ref.
        std::lock_guard refs_lock(refs_mu);
        if (pinsOf(tag) > 0) continue;
        meta::SnapshotFilter same;
        same.ref = s.ref;
        auto sharing = store.findSnapshots(same);
        if (!sharing.ok()) continue;  // unsure: decide on a later pass
        bool shared = false;
        for (const auto& o : *sharing) {
          if (o.id != s.id && o.state != SnapshotState::kRemoving) shared = true;
        }
        if (!shared) {
          Status st = builder.removeImage(tag);
          if (!st.ok() && st.code() != StatusCode::kNotFound) {
            spdlog::warn("snapshot {}: removing image {}: {}", s.id, tag, st.message());
          }
          gc_pending = true;
        }
      }
      std::error_code ec;
      std::filesystem::remove(logPath(s.id), ec);
      Status st = store.deleteSnapshot(s.id);
      (void)st;
      notifyLog(s.id);
    }
    if (gc_pending) {
      Status st = builder.collectGarbage();
      if (st.ok()) {
        gc_pending = false;
      } else if (st.code() != StatusCode::kUnavailable) {
        spdlog::warn("image garbage collection: {}", st.message());
      }
    }
    return okStatus();
  }

  Status maintenance() {
    std::lock_guard pass(maintenance_mu);
    Status first = okStatus();
    auto keep = [&](Status st) {
      if (!st.ok() && first.ok()) first = std::move(st);
    };
    keep(takeOverDeadWorkers());  // a sibling process on this data dir that died meanwhile
    keep(reclaimJobs());
    keep(enforceDeadlines());
    keep(autoDeactivate());
    keep(collectRemoved());
    auto purged = store.purgeExpiredReservations();
    if (!purged.ok()) keep(purged.status());
    // Finished jobs are kept a day for inspection, then dropped.
    auto old_jobs = store.purgeFinishedJobs(clock.now() - std::chrono::hours(24));
    if (!old_jobs.ok()) keep(old_jobs.status());
    return first;
  }

  // --- takeover of dead workers' jobs (see SnapshotService::start) ---------------------------

  UniqueFd worker_lock;  // held while started: <data>/work/workers/<worker_id>.lock
  std::filesystem::path worker_lock_path;

  std::filesystem::path workersDir() const { return workersDirIn(options.data_dir); }

  static bool lockableId(std::string_view id) {
    if (id.empty() || id.front() == '.' || id.size() > 200) return false;
    return std::all_of(id.begin(), id.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '-' || c == '_' || c == '.';
    });
  }

  // Creates the lock file already locked (flock on a temp name, then rename), so that another
  // process never sees it unlocked and takes this live worker for a dead one.
  Status lockWorker() {
    if (!lockableId(options.worker_id)) return okStatus();  // leases alone cover it
    std::error_code ec;
    std::filesystem::create_directories(workersDir(), ec);
    if (ec) return internalError("create " + workersDir().string() + ": " + ec.message());
    auto path = workersDir() / (options.worker_id + ".lock");
    UniqueFd existing(::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
    if (existing.valid() && ::flock(existing.get(), LOCK_EX | LOCK_NB) != 0) {
      return failedPrecondition("another process is running as worker " + options.worker_id +
                                " on " + options.data_dir.string() + " (" + path.string() +
                                " is locked)");
    }
    auto tmp = workersDir() / ("." + options.worker_id + ".lock." + uuidV4());
    UniqueFd fd(::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd.valid()) return errnoStatus(errno, "create " + tmp.string());
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
      Status st = errnoStatus(errno, "lock " + path.string());
      ::unlink(tmp.c_str());
      return st;
    }
    worker_lock = std::move(fd);
    worker_lock_path = path;
    return okStatus();
  }

  void unlockWorker() {
    if (!worker_lock.valid()) return;
    ::unlink(worker_lock_path.c_str());  // still locked: nobody mistakes it for a dead worker
    worker_lock.reset();
  }

  // Gives a running job of a worker that is gone back to the queue; a job out of attempts
  // fails, and so does its snapshot, with the reason.
  void handBack(const meta::Job& job, const std::string& reason) {
    auto r = store.failJob(job.id, job.owner.value_or(""), reason, std::chrono::milliseconds(0));
    if (!r.ok() || r->state != meta::JobState::kFailed || !job.snapshot_id) return;
    auto s = store.getSnapshot(*job.snapshot_id);
    if (!s.ok() || !isBuildState(s->state)) return;
    Status st = failSnapshot(s->id, s->state,
                             "The worker processing this snapshot stopped (" + reason +
                                 ") and the job has no attempts left");
    (void)st;
  }

  // Lock files nobody holds belong to processes that died: their jobs are handed back now
  // rather than when their leases expire.
  Status takeOverDeadWorkers() {
    std::error_code ec;
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(workersDir(), ec))
      files.push_back(e.path());
    if (ec) return okStatus();  // no directory: nobody ran here
    for (const auto& path : files) {
      std::string name = path.filename().string();
      bool temp = name.front() == '.';
      if (!temp && path.extension() != ".lock") continue;
      std::string id = temp ? std::string() : path.stem().string();
      if (!temp && id == options.worker_id) continue;
      UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
      if (!fd.valid()) continue;
      if (temp) {
        // lockWorker() creates its file under a dot name and flocks it a moment later: in that
        // window it is unlocked, so only a leftover older than a minute is a dead process's
        // (removing a fresh one made a starting sibling fail its rename).
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0 || ::time(nullptr) - st.st_mtime < kTempLockGraceSeconds) {
          continue;
        }
      }
      if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) continue;  // alive
      if (!temp) {
        meta::JobFilter f;
        f.states = {meta::JobState::kRunning};
        f.owner = id;
        CAIRN_ASSIGN_OR_RETURN(auto jobs, store.listJobs(f));
        for (const auto& job : jobs) {
          spdlog::info("recovery: job {} ({} of snapshot {}) of dead worker {} handed back", job.id,
                       job.kind, job.snapshot_id.value_or("-"), id);
          handBack(job, "worker " + id + " died");
        }
      }
      ::unlink(path.c_str());
    }
    return okStatus();
  }

  void workerLoop(std::vector<std::string> kinds) {
    while (true) {
      std::uint64_t seen = 0;  // read before looking for work, so no wake-up is missed
      {
        std::lock_guard lock(thread_mu);
        if (stopping) return;
        seen = wake_generation;
      }
      auto ran = runOneJob(kinds);
      if (ran.ok() && *ran) continue;
      if (!ran.ok()) spdlog::warn("worker: {}", ran.status().message());
      std::unique_lock lock(thread_mu);
      wake.wait_for(lock, options.tick_interval,
                    [&] { return stopping || wake_generation != seen; });
      if (stopping) return;
    }
  }

  void tickerLoop() {
    while (true) {
      {
        std::unique_lock lock(thread_mu);
        wake.wait_for(lock, options.tick_interval, [&] { return stopping; });
        if (stopping) return;
      }
      Status st = maintenance();
      if (!st.ok()) spdlog::warn("maintenance: {}", st.message());
    }
  }
};

// ---------------------------------------------------------------------------------------------

SnapshotService::SnapshotService(ServiceOptions options, meta::MetaStore& store,
                                 SnapshotBuilder& builder, ContextReader* contexts,
                                 const Clock& clock)
    : options_(std::move(options)) {
  if (options_.worker_id.empty()) options_.worker_id = "worker-" + uuidV4();
  impl_ = std::make_unique<Impl>(options_, store, builder, contexts, clock);
}

SnapshotService::~SnapshotService() {
  stop();
}

Status SnapshotService::start() {
  std::error_code ec;
  std::filesystem::create_directories(options_.data_dir / "logs", ec);
  if (ec)
    return internalError("create " + (options_.data_dir / "logs").string() + ": " + ec.message());
  CAIRN_RETURN_IF_ERROR(impl_->lockWorker());
  std::filesystem::remove_all(options_.data_dir / "work" / "contexts", ec);
  CAIRN_RETURN_IF_ERROR(impl_->builder.recover());
  // Jobs a previous run of this same worker id held are ours to give back at once, without
  // waiting for their leases to expire.
  meta::JobFilter mine;
  mine.states = {meta::JobState::kRunning};
  mine.owner = options_.worker_id;
  CAIRN_ASSIGN_OR_RETURN(auto stale, impl_->store.listJobs(mine));
  for (const auto& job : stale)
    impl_->handBack(job, "worker " + options_.worker_id + " restarted");
  CAIRN_RETURN_IF_ERROR(impl_->maintenance());  // takes over dead workers' jobs first
  std::lock_guard lock(impl_->thread_mu);
  impl_->stopping = false;
  impl_->shutting_down = false;
  for (int i = 0; i < std::max(1, options_.max_concurrent_builds); ++i) {
    impl_->threads.emplace_back([this] { impl_->workerLoop({std::string(kBuildJob)}); });
  }
  for (int i = 0; i < std::max(1, options_.max_concurrent_pulls); ++i) {
    impl_->threads.emplace_back([this] { impl_->workerLoop({std::string(kPullJob)}); });
  }
  impl_->threads.emplace_back([this] { impl_->tickerLoop(); });
  return okStatus();
}

void SnapshotService::stop() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(impl_->thread_mu);
    impl_->stopping = true;
    impl_->wake.notify_all();
    threads.swap(impl_->threads);
  }
  if (!threads.empty()) {
    impl_->shutting_down = true;
    std::lock_guard lock(impl_->running_mu);
    for (auto& [id, token] : impl_->cancels)
      token->cancel();
  }
  for (auto& t : threads)
    t.join();
  impl_->unlockWorker();
}

std::filesystem::path SnapshotService::logPath(std::string_view snapshot_id) const {
  return impl_->logPath(snapshot_id);
}

Result<bool> SnapshotService::runOneJob(const std::vector<std::string>& kinds) {
  return impl_->runOneJob(kinds);
}

Status SnapshotService::runMaintenance() {
  return impl_->maintenance();
}

bool serviceRunsOn(const std::filesystem::path& data_dir) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(workersDirIn(data_dir), ec)) {
    UniqueFd fd(::open(e.path().c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (fd.valid() && ::flock(fd.get(), LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
      return true;
    }
  }
  return false;
}

Caller callerFor(const meta::ApiKey& key) {
  return Caller{key.organization_id, key.permissions};
}

// --- create ----------------------------------------------------------------------------------

Result<Snapshot> SnapshotService::create(const Caller& caller,
                                         const CreateSnapshotRequest& request) {
  CAIRN_RETURN_IF_ERROR(requirePermission(caller, meta::kPermissionWriteSnapshots));
  // §1.5 steps 1–3, 5–7 (step 4, the region, is the single embedded region: regionId is
  // accepted and ignored; step 8 always has a builder: this process).
  CAIRN_RETURN_IF_ERROR(checkCreateSnapshot(request));
  bool suspended = false;
  std::string suspension_reason;
  meta::OrganizationLimits limits =
      impl_->orgLimits(caller.organization_id, &suspended, &suspension_reason);
  if (suspended) {
    return permissionDenied(suspension_reason.empty()
                                ? "Organization is suspended"
                                : "Organization is suspended: " + suspension_reason);
  }
  CAIRN_RETURN_IF_ERROR(checkSandboxLimits(request, impl_->sandboxLimits(limits)));

  Snapshot s;
  s.organization_id = caller.organization_id;
  s.name = request.name;
  s.cpu = request.cpu.value_or(1);
  s.gpu = request.gpu.value_or(0);
  s.gpu_type = request.gpu_type;
  s.mem = request.memory.value_or(1);
  s.disk = request.disk.value_or(3);
  s.region_ids = {options_.region_id};
  s.sandbox_class = request.sandbox_class.value_or("container");
  s.state = SnapshotState::kPending;

  std::optional<BuiltImage> cached;
  std::optional<Impl::RefPin> pin;  // released once the row (or the error) is final
  if (request.build_info) {
    meta::BuildInfo bi;
    bi.dockerfile_content = request.build_info->dockerfile_content;
    bi.context_hashes = request.build_info->context_hashes;
    bi.snapshot_ref = buildSnapshotRef(bi.dockerfile_content, bi.context_hashes);
    s.entrypoint = detectEntrypoint(bi.dockerfile_content);
    s.ref = impl_->fullRef(bi.snapshot_ref);
    // Dedup (§5.3): an identical definition already built and validated is active at once. The
    // pin keeps the collector from untagging the image until the row below carries its ref.
    // An image is tagged before its entrypoint check: until some snapshot of it is active, the
    // new snapshot goes through a job, which validates it (or builds again if it failed).
    pin.emplace(*impl_, bi.snapshot_ref);
    auto found = impl_->builder.findBuilt(bi.snapshot_ref);
    if (found.ok() && found->has_value() && impl_->someActiveWithRef(*s.ref)) {
      cached = std::move(**found);
    }
    s.build_info = std::move(bi);
  } else {
    s.image_name = *request.image_name;
    s.entrypoint = request.entrypoint;
  }
  if (cached) {
    double max_gb = limits.max_image_size_gb.value_or(options_.max_image_size_gb);
    if (static_cast<double>(cached->size_bytes) > max_gb * kBytesPerGb) {
      return invalidArgument(sizeExceeded(cached->size_bytes, max_gb));
    }
    s.state = SnapshotState::kActive;
    s.size_bytes = static_cast<std::int64_t>(cached->size_bytes);
    s.last_used_at = impl_->clock.now();
    if (!s.entrypoint && !cached->entrypoint.empty()) s.entrypoint = cached->entrypoint;
  }

  // Quota (§6): a reservation, consumed by the insert or rolled back.
  auto reservation = impl_->store.reserveSnapshotQuota(
      caller.organization_id, limits.max_snapshots.value_or(options_.max_snapshots),
      std::chrono::minutes(5));
  if (!reservation.ok()) {
    if (reservation.status().code() == StatusCode::kResourceExhausted) {
      return invalidArgument(reservation.status().message());  // the reference answers 400
    }
    return reservation.status();
  }
  auto created = impl_->store.createSnapshot(s, reservation->id);
  if (!created.ok()) {
    Status released = impl_->store.releaseQuotaReservation(reservation->id);
    (void)released;
    return created.status();
  }
  if (created->state == SnapshotState::kPending) {
    meta::JobSpec job;
    job.kind = created->build_info ? std::string(kBuildJob) : std::string(kPullJob);
    job.payload = jobPayload(*created).dump();
    job.snapshot_id = created->id;
    auto enqueued = impl_->store.enqueueJob(job);
    if (!enqueued.ok()) {
      Status st =
          impl_->failSnapshot(created->id, SnapshotState::kPending,
                              "Could not queue the snapshot job: " + enqueued.status().message());
      (void)st;
      return impl_->store.getSnapshot(created->id);
    }
    impl_->wakeWorkers();
  }
  return created;
}

// --- reads -----------------------------------------------------------------------------------

Result<Snapshot> SnapshotService::get(const Caller& caller, std::string_view id_or_name) {
  return meta::resolveSnapshot(impl_->store, caller.organization_id, id_or_name);
}

Result<SnapshotListPage> SnapshotService::list(const Caller& caller,
                                               const ListSnapshotsQuery& query) {
  meta::SnapshotListQuery q;
  q.page = query.page;
  q.limit = query.limit;
  q.name_contains = query.name;
  q.source_sandbox_id = query.source_sandbox_id;
  switch (query.sort) {
    case SnapshotSort::kLastUsedAt:
      q.sort = meta::SnapshotSortField::kLastUsedAt;
      break;
    case SnapshotSort::kName:
      q.sort = meta::SnapshotSortField::kName;
      break;
    case SnapshotSort::kState:
      q.sort = meta::SnapshotSortField::kState;
      break;
    case SnapshotSort::kCreatedAt:
      q.sort = meta::SnapshotSortField::kCreatedAt;
      break;
  }
  q.order = query.ascending ? meta::SortOrder::kAsc : meta::SortOrder::kDesc;
  CAIRN_ASSIGN_OR_RETURN(auto page, impl_->store.listSnapshots(caller.organization_id, q));
  SnapshotListPage out;
  out.items = std::move(page.items);
  out.total = page.total;
  out.page = q.page;
  out.total_pages = q.limit > 0 ? (page.total + q.limit - 1) / q.limit : 0;
  return out;
}

// --- delete, activate, deactivate ------------------------------------------------------------

Status SnapshotService::remove(const Caller& caller, std::string_view id) {
  CAIRN_RETURN_IF_ERROR(requirePermission(caller, meta::kPermissionDeleteSnapshots));
  CAIRN_RETURN_IF_ERROR(requireUuid(id));
  CAIRN_ASSIGN_OR_RETURN(
      auto s, meta::getSnapshotForOrganization(impl_->store, caller.organization_id, id));
  if (s.general) return permissionDenied("You cannot delete a general snapshot");
  if (s.state == SnapshotState::kRemoving) return okStatus();
  auto marked = impl_->store.markSnapshotRemoving(s.id);
  if (!marked.ok()) {
    if (marked.status().code() == StatusCode::kFailedPrecondition) return okStatus();
    if (marked.status().code() == StatusCode::kNotFound) {
      return notFound("Snapshot " + std::string(id) + " not found");
    }
    return marked.status();
  }
  impl_->cancelBuild(s.id);
  impl_->notifyLog(s.id);
  if (isBuildState(s.state)) impl_->buildFinished(s, SnapshotState::kRemoving, "cancelled");
  impl_->wakeWorkers();
  return okStatus();
}

Result<Snapshot> SnapshotService::activate(const Caller& caller, std::string_view id) {
  CAIRN_RETURN_IF_ERROR(requirePermission(caller, meta::kPermissionWriteSnapshots));
  CAIRN_RETURN_IF_ERROR(requireUuid(id));
  CAIRN_ASSIGN_OR_RETURN(
      auto s, meta::getSnapshotForOrganization(impl_->store, caller.organization_id, id));
  if (s.state == SnapshotState::kRemoving) {
    return notFound("Snapshot " + std::string(id) + " not found");
  }
  if (s.general) return accessDenied();
  if (s.state == SnapshotState::kActive) {
    return invalidArgument("Snapshot " + s.id + " is already active");
  }
  if (s.state != SnapshotState::kInactive) {
    return invalidArgument("Snapshot " + s.id + " cannot be activated - it is in " +
                           std::string(meta::snapshotStateName(s.state)) + " state");
  }
  if (impl_->clock.now() - s.updated_at < options_.reactivation_cooldown) {
    return invalidArgument(
        "Snapshot deactivation is still in progress. Please try again in a few minutes.");
  }
  bool suspended = false;
  std::string reason;
  meta::OrganizationLimits limits = impl_->orgLimits(caller.organization_id, &suspended, &reason);
  if (suspended) {
    return permissionDenied(reason.empty() ? "Organization is suspended"
                                           : "Organization is suspended: " + reason);
  }
  CreateSnapshotRequest as_request;
  as_request.cpu = s.cpu;
  as_request.memory = s.mem;
  as_request.disk = s.disk;
  CAIRN_RETURN_IF_ERROR(checkSandboxLimits(as_request, impl_->sandboxLimits(limits)));
  auto reservation = impl_->store.reserveSnapshotQuota(
      caller.organization_id, limits.max_snapshots.value_or(options_.max_snapshots),
      std::chrono::minutes(5));
  if (!reservation.ok()) {
    if (reservation.status().code() == StatusCode::kResourceExhausted) {
      return invalidArgument(reservation.status().message());
    }
    return reservation.status();
  }
  meta::SnapshotUpdate u;
  u.last_used_at = impl_->clock.now();
  auto moved = impl_->transition(s.id, SnapshotState::kInactive, SnapshotState::kPending, u);
  // Once pending the snapshot counts itself; the reservation only covered the race.
  Status released = impl_->store.releaseQuotaReservation(reservation->id);
  (void)released;
  if (!moved.ok()) {
    if (moved.status().code() == StatusCode::kFailedPrecondition) {
      return invalidArgument("Snapshot " + s.id + " cannot be activated - it changed state");
    }
    return moved.status();
  }
  meta::JobSpec job;
  job.kind = moved->build_info ? std::string(kBuildJob) : std::string(kPullJob);
  job.payload = jobPayload(*moved).dump();
  job.snapshot_id = moved->id;
  auto enqueued = impl_->store.enqueueJob(job);
  if (!enqueued.ok()) {
    Status st =
        impl_->failSnapshot(moved->id, SnapshotState::kPending,
                            "Could not queue the snapshot job: " + enqueued.status().message());
    (void)st;
  }
  impl_->wakeWorkers();
  return moved;
}

Status SnapshotService::deactivate(const Caller& caller, std::string_view id) {
  CAIRN_RETURN_IF_ERROR(requirePermission(caller, meta::kPermissionWriteSnapshots));
  CAIRN_RETURN_IF_ERROR(requireUuid(id));
  for (int attempt = 0; attempt < 5; ++attempt) {
    CAIRN_ASSIGN_OR_RETURN(
        auto s, meta::getSnapshotForOrganization(impl_->store, caller.organization_id, id));
    if (s.state == SnapshotState::kRemoving) {
      return notFound("Snapshot " + std::string(id) + " not found");
    }
    if (s.general) return accessDenied();
    if (s.state == SnapshotState::kInactive) return okStatus();
    auto moved = impl_->transition(s.id, s.state, SnapshotState::kInactive, {});
    if (moved.ok()) return okStatus();
    if (moved.status().code() != StatusCode::kFailedPrecondition) return moved.status();
  }
  return unavailable("Snapshot " + std::string(id) + " changed state repeatedly; try again");
}

// --- logs ------------------------------------------------------------------------------------

Result<Snapshot> SnapshotService::getForBuildLogs(const Caller& caller, std::string_view id) {
  CAIRN_ASSIGN_OR_RETURN(auto s, meta::resolveSnapshot(impl_->store, caller.organization_id, id));
  if (!s.build_info) return notFound("Snapshot " + std::string(id) + " has no build info");
  return s;
}

Result<LogChunk> SnapshotService::readLogs(const Caller& caller, std::string_view id,
                                           std::uint64_t offset, std::size_t max_bytes) {
  CAIRN_ASSIGN_OR_RETURN(auto s, meta::resolveSnapshot(impl_->store, caller.organization_id, id));
  // State first, bytes second: a state that is already terminal means the writer had closed
  // the file, so what is read below is everything.
  bool writing = isBuildState(s.state) || impl_->logOpen(s.id);
  LogChunk chunk;
  chunk.next_offset = offset;
  UniqueFd fd(::open(impl_->logPath(s.id).c_str(), O_RDONLY | O_CLOEXEC));
  std::uint64_t size = 0;
  if (fd.get() >= 0) {
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return errnoStatus(errno, "stat build log of " + s.id);
    size = static_cast<std::uint64_t>(st.st_size);
    if (offset < size) {
      std::size_t want =
          static_cast<std::size_t>(std::min<std::uint64_t>(size - offset, max_bytes));
      chunk.bytes.resize(want);
      ssize_t n = ::pread(fd.get(), chunk.bytes.data(), want, static_cast<off_t>(offset));
      if (n < 0) return errnoStatus(errno, "read build log of " + s.id);
      chunk.bytes.resize(static_cast<std::size_t>(n));
      chunk.next_offset = offset + static_cast<std::uint64_t>(n);
    }
  }
  chunk.finished = !writing && chunk.next_offset >= size;
  return chunk;
}

namespace {
class WatchHandle final : public LogWatch {
 public:
  explicit WatchHandle(std::function<void()> cancel) : cancel_(std::move(cancel)) {}
  ~WatchHandle() override { cancel_(); }

 private:
  std::function<void()> cancel_;
};
}  // namespace

Result<std::unique_ptr<LogWatch>> SnapshotService::watchLogs(const Caller& caller,
                                                             std::string_view id,
                                                             std::function<void()> notify) {
  CAIRN_ASSIGN_OR_RETURN(auto s, meta::resolveSnapshot(impl_->store, caller.organization_id, id));
  auto w = std::make_shared<Impl::Watcher>();
  w->notify = std::move(notify);
  {
    std::lock_guard lock(impl_->watchers_mu);
    impl_->watchers[s.id].push_back(w);
  }
  Impl* impl = impl_.get();
  std::string key = s.id;
  auto cancel = [impl, key, w] {
    {
      std::lock_guard lock(impl->watchers_mu);
      auto it = impl->watchers.find(key);
      if (it != impl->watchers.end()) {
        auto& v = it->second;
        v.erase(std::remove(v.begin(), v.end(), w), v.end());
        if (v.empty()) impl->watchers.erase(it);
      }
    }
    std::lock_guard lock(w->mu);  // waits for a running callback
    w->active = false;
  };
  return std::unique_ptr<LogWatch>(std::make_unique<WatchHandle>(std::move(cancel)));
}

// --- DTO -------------------------------------------------------------------------------------

OrderedJson toJson(const meta::Snapshot& s) {
  OrderedJson j;
  j["id"] = s.id;
  j["organizationId"] = s.organization_id ? OrderedJson(*s.organization_id) : OrderedJson();
  j["general"] = s.general;
  j["name"] = s.name;
  j["imageName"] = s.image_name;
  j["state"] = std::string(meta::snapshotStateName(s.state));
  j["size"] =
      s.size_bytes ? OrderedJson(static_cast<double>(*s.size_bytes) / kBytesPerGb) : OrderedJson();
  j["entrypoint"] = s.entrypoint ? OrderedJson(*s.entrypoint) : OrderedJson();
  j["cpu"] = s.cpu;
  j["gpu"] = s.gpu;
  if (s.gpu_type) j["gpuType"] = *s.gpu_type;
  j["mem"] = s.mem;
  j["disk"] = s.disk;
  j["errorReason"] = s.error_reason ? OrderedJson(*s.error_reason) : OrderedJson();
  j["createdAt"] = formatRfc3339(s.created_at);
  j["updatedAt"] = formatRfc3339(s.updated_at);
  j["lastUsedAt"] = s.last_used_at ? OrderedJson(formatRfc3339(*s.last_used_at)) : OrderedJson();
  if (s.build_info) {
    OrderedJson b;
    b["dockerfileContent"] = s.build_info->dockerfile_content;
    b["contextHashes"] = s.build_info->context_hashes;
    b["createdAt"] = formatRfc3339(s.build_info->created_at);
    b["updatedAt"] = formatRfc3339(s.build_info->updated_at);
    b["snapshotRef"] = s.build_info->snapshot_ref;
    j["buildInfo"] = std::move(b);
  }
  j["regionIds"] = s.region_ids;
  if (s.initial_runner_id) j["initialRunnerId"] = *s.initial_runner_id;
  if (s.ref) j["ref"] = *s.ref;
  if (s.sandbox_class) j["sandboxClass"] = *s.sandbox_class;
  j["sourceSandboxId"] = s.source_sandbox_id ? OrderedJson(*s.source_sandbox_id) : OrderedJson();
  return j;
}

OrderedJson toJson(const SnapshotListPage& page) {
  OrderedJson items = OrderedJson::array();
  for (const auto& s : page.items)
    items.push_back(toJson(s));
  OrderedJson j;
  j["items"] = std::move(items);
  j["total"] = page.total;
  j["page"] = page.page;
  j["totalPages"] = page.total_pages;
  return j;
}

}  // namespace cairn::service

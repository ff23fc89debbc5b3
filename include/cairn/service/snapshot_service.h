// SnapshotService: the snapshot domain behind `cairn serve` (spec §1.3–§1.9, §4, §5, §6, §0).
//
// The HTTP routes (api/) call one method per endpoint with the authenticated Caller; every
// method returns a Result whose Status code maps to the HTTP status and whose message is the
// reference server's text (InvalidArgument → 400, NotFound → 404, PermissionDenied → 403,
// AlreadyExists → 409). Snapshots of other organizations are NotFound with the same message as
// unknown ones (no existence oracle).
//
// Work happens in the background: create() stores the snapshot `pending` and enqueues a job in
// the MetaStore; a worker pool claims jobs with a lease (build: pending → building → active |
// error; pull: pending → pulling → active | error), heartbeats, and a maintenance tick enforces
// per-state deadlines (§0.2), reclaims jobs whose owner died, auto-deactivates idle snapshots
// and garbage-collects images no snapshot references.
//
//   SnapshotService service(options, store, builder, &contexts, RealClock::instance());
//   CAIRN_RETURN_IF_ERROR(service.start());   // recover, then start workers and the ticker
//   ASSIGN_OR_RETURN(meta::Snapshot s, service.create(caller, request));
//   OrderedJson dto = toJson(s);               // the §1.6 SnapshotDto
//   ...
//   service.stop();                            // running builds are left for recovery
//
// Build logs are files <data>/logs/<snapshot-id>.log, append-only. A log follower reads from an
// offset with readLogs(); when it has caught up and the chunk is not `finished`, it registers a
// watchLogs() callback, which fires (on a worker thread: keep it cheap, e.g. post to an Asio
// strand) whenever bytes are appended or the snapshot leaves its build states. No thread per
// follower. Register the watch before re-reading to avoid missing a wake-up.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/build/progress.h"
#include "cairn/common/json.h"
#include "cairn/common/status.h"
#include "cairn/common/time.h"
#include "cairn/meta/meta_store.h"
#include "cairn/runtime/executor.h"
#include "cairn/service/snapshot_request.h"

namespace cairn::service {

//! Who calls: the organization implied by the API key and the key's permissions
//! (cairn/meta/api_key.h names). Missing permission → PermissionDenied "Access denied".
struct Caller {
  std::string organization_id;
  std::vector<std::string> permissions;
};

//! The Caller an authenticated API key stands for.
Caller callerFor(const meta::ApiKey& key);

//! True while a started SnapshotService (a `cairn serve`) holds its worker lock under
//! `data_dir` (<data>/work/workers/, including the temporary lock of one that is starting).
bool serviceRunsOn(const std::filesystem::path& data_dir);

// ---------------------------------------------------------------------------------------------
// Seams: the engine, the object store. Real adapters in snapshot_builder.h; fakes in tests.

//! What a finished build or pull produced.
struct BuiltImage {
  std::string manifest_digest;  //!< "sha256:<hex>"
  std::uint64_t size_bytes = 0;
  //! The image's ENTRYPOINT + CMD as the sandbox would run it; empty if the image has none.
  std::vector<std::string> entrypoint;
};

//! What SnapshotBuilder::validateEntrypoint runs: the snapshot's entrypoint in a sandbox made
//! from the built image, with the snapshot's limits and no network.
struct EntrypointCheck {
  std::string snapshot_ref;  //!< the built image's tag ("daytona-<hex>:daytona")
  //! What a sandbox of the snapshot runs (§5.5); empty: the image's ENTRYPOINT + CMD.
  std::vector<std::string> entrypoint;
  runtime::ResourceLimits limits;  //!< the snapshot's cpu and memory
  //! The entrypoint passes when it is still running after this long (it is then killed).
  std::chrono::milliseconds stay_up{1500};
  const runtime::CancelToken* cancel = nullptr;
};

struct SnapshotBuildJob {
  std::string snapshot_ref;           //!< "daytona-<hex>:daytona": the tag to give the result
  std::string dockerfile;             //!< passed out of band: never read from the context
  std::filesystem::path context_dir;  //!< assembled context (may be empty dir)
  //! Cancelled when the snapshot is deleted or its deadline expires during the build.
  const runtime::CancelToken* cancel = nullptr;
};

//! The build engine and registry pulls, as the service needs them.
class SnapshotBuilder {
 public:
  virtual ~SnapshotBuilder() = default;
  //! An image already built and tagged `snapshot_ref` (dedup, §5.3); nullopt if none.
  virtual Result<std::optional<BuiltImage>> findBuilt(const std::string& snapshot_ref) = 0;
  //! Builds; on failure the Status message is the errorReason (failing step + last lines).
  virtual Result<BuiltImage> build(const SnapshotBuildJob& job, build::LogSink& log) = 0;
  //! Resolves `image_name` to its manifest digest without pulling layers.
  virtual Result<std::string> resolveDigest(const std::string& image_name) = 0;
  //! Pulls `image_name` (already resolved to `digest`) into the local store and tags it `tag`.
  //! Pulling the same digest twice stores it once.
  virtual Result<BuiltImage> pull(const std::string& image_name, const std::string& digest,
                                  const std::string& tag, build::LogSink& log) = 0;
  //! Removes the tag `tag` (its blobs and layers stay until collectGarbage).
  virtual Status removeImage(const std::string& tag) = 0;
  //! Collects layers no image or cache entry uses. Unavailable while builds run (the service
  //! retries on a later maintenance pass): it must never block the maintenance thread.
  virtual Status collectGarbage() = 0;
  //! At process start: unmounts and removes what a crashed process left behind.
  virtual Status recover() = 0;
  //! Before a built snapshot goes `active`: starts its entrypoint in a sandbox and checks that
  //! it stays up for `check.stay_up` (an entrypoint that exits 0 sooner passes too). A failure is
  //! FailedPrecondition whose message is the errorReason (the entrypoint, its exit status, its
  //! last output lines); Cancelled when `check.cancel` fired. Builders that cannot run
  //! containers keep this default, which does not validate.
  virtual Status validateEntrypoint(const EntrypointCheck& check, build::LogSink& log) {
    (void)check;
    (void)log;
    return okStatus();
  }
};

//! Read side of the object store holding build contexts (`<orgId>/<hash>/context.tar`, §2.3).
class ContextReader {
 public:
  virtual ~ContextReader() = default;
  //! Writes the object's bytes to `dest` (created/truncated). NotFound if there is no object.
  virtual Status fetchObject(std::string_view key, const std::filesystem::path& dest) = 0;
};

// ---------------------------------------------------------------------------------------------

struct StateDeadlines {
  std::chrono::milliseconds pending = std::chrono::minutes(15);
  std::chrono::milliseconds building = std::chrono::minutes(60);
  std::chrono::milliseconds pulling = std::chrono::minutes(30);
};

struct ServiceOptions {
  std::filesystem::path data_dir;  //!< logs in <data_dir>/logs, work in <data_dir>/work/contexts
  std::string region_id = "default";
  //! The internal registry prefix of `ref` (§5.4): "<registry_host>/<project>/<snapshotRef>".
  std::string registry_host = "cairn.local";
  std::string registry_project = "daytona";
  SandboxLimits limits;
  std::int64_t max_snapshots = 30;
  double max_image_size_gb = 20;
  //! 0 = never auto-deactivate.
  std::chrono::minutes deactivation_timeout = std::chrono::minutes(20160);
  std::chrono::minutes reactivation_cooldown = std::chrono::minutes(10);
  StateDeadlines deadlines;
  int max_concurrent_builds = 2;
  int max_concurrent_pulls = 4;
  std::chrono::milliseconds job_lease = std::chrono::seconds(30);
  std::chrono::milliseconds tick_interval = std::chrono::seconds(2);
  std::string worker_id;  //!< unique per process; generated when empty
  //! errorReason is bounded to this many bytes (§0.4).
  std::size_t max_error_reason_bytes = 4096;
  //! A built snapshot goes `active` only after its entrypoint stayed up this long in a sandbox
  //! (SnapshotBuilder::validateEntrypoint); 0 skips the check. Pulls are not validated.
  std::chrono::milliseconds entrypoint_stay_up = std::chrono::milliseconds(1500);
  //! Told once per build or pull that ends (for metrics): kind "build" or "pull"; outcome
  //! "succeeded", "failed", "timed_out" (a §0.2 deadline) or "cancelled" (deleted or
  //! deactivated first). Runs on the thread that ended it: keep it cheap, never call the service.
  std::function<void(std::string_view kind, std::string_view outcome)> on_build_finished;
};

//! readLogs(): bytes [offset, next_offset) of the log, and whether the stream is over (the
//! snapshot is no longer pending/building/pulling and these are the last bytes).
struct LogChunk {
  std::string bytes;
  std::uint64_t next_offset = 0;
  bool finished = false;
};

//! Keeps a watchLogs() callback registered; destroying it unregisters (after which the callback
//! is never called again, and a running call has returned).
class LogWatch {
 public:
  virtual ~LogWatch() = default;
};

struct SnapshotListPage {
  std::vector<meta::Snapshot> items;
  std::int64_t total = 0;
  std::int64_t page = 1;
  std::int64_t total_pages = 0;
};

class SnapshotService {
 public:
  //! `contexts` may be null when no build uses contexts (they then fail with a clear reason).
  SnapshotService(ServiceOptions options, meta::MetaStore& store, SnapshotBuilder& builder,
                  ContextReader* contexts, const Clock& clock);
  ~SnapshotService();
  SnapshotService(const SnapshotService&) = delete;
  SnapshotService& operator=(const SnapshotService&) = delete;

  //! Crash recovery (builder recover, reclaim jobs) then worker threads and the ticker.
  //!
  //! Each started service holds an flock on <data_dir>/work/workers/<worker_id>.lock. A lock
  //! file nobody holds belongs to a process that died (kill -9, OOM, power loss): at start and
  //! on every maintenance pass, its running jobs are handed back to the queue at once instead of
  //! after their leases expire. (Workers on other hosts are covered by the leases.)
  Status start();
  //! Stops the workers and the ticker. Running builds are cancelled and handed back to the
  //! queue (the snapshot stays `building`) for the next start or another worker to take over;
  //! running pulls finish first. Idempotent.
  void stop();

  // --- endpoints -------------------------------------------------------------------------

  //! POST /snapshots (§1.5 order, §4, §6, §5.3 dedup). 200 + the stored snapshot.
  Result<meta::Snapshot> create(const Caller& caller, const CreateSnapshotRequest& request);
  //! GET /snapshots/{idOrName} (§1.3 resolution).
  Result<meta::Snapshot> get(const Caller& caller, std::string_view id_or_name);
  //! GET /snapshots (§1.4).
  Result<SnapshotListPage> list(const Caller& caller, const ListSnapshotsQuery& query);
  //! DELETE /snapshots/{id}: 400 non-UUID, 404 unknown/foreign, 403 general. The name is free
  //! when this returns (§0.5); images are collected in the background.
  Status remove(const Caller& caller, std::string_view id);
  //! POST /snapshots/{id}/activate (§1.9).
  Result<meta::Snapshot> activate(const Caller& caller, std::string_view id);
  //! POST /snapshots/{id}/deactivate (§1.9), idempotent.
  Status deactivate(const Caller& caller, std::string_view id);
  //! GET /snapshots/{id}/build-logs-url preconditions: the snapshot exists for the caller
  //! (404 `Snapshot <id> not found`) and has build info (404 `Snapshot <id> has no build info`).
  Result<meta::Snapshot> getForBuildLogs(const Caller& caller, std::string_view id);

  //! Log bytes from `offset` (at most `max_bytes`). An offset past the end gives no bytes.
  Result<LogChunk> readLogs(const Caller& caller, std::string_view id, std::uint64_t offset,
                            std::size_t max_bytes = 64 * 1024);
  //! Calls `notify` after bytes are appended to the log of `id` or the snapshot leaves its
  //! build states. The callback runs on a worker thread and must not block or call back into
  //! the service synchronously.
  Result<std::unique_ptr<LogWatch>> watchLogs(const Caller& caller, std::string_view id,
                                              std::function<void()> notify);

  // --- background work, public so that tests can drive it without threads ---------------

  //! Claims and runs one job of the given kinds ("build", "pull"; empty = any) on the calling
  //! thread. Returns true if a job ran.
  Result<bool> runOneJob(const std::vector<std::string>& kinds = {});
  //! One maintenance pass: reclaim expired jobs, deadlines (§0.2), auto-deactivation, GC of
  //! images of removed snapshots, purge of expired reservations.
  Status runMaintenance();

  const ServiceOptions& options() const { return options_; }
  std::filesystem::path logPath(std::string_view snapshot_id) const;

 private:
  struct Impl;
  ServiceOptions options_;
  std::unique_ptr<Impl> impl_;
};

//! The §1.6 SnapshotDto: every field in the reference order, `mem`, nulls where unknown,
//! `sourceSandboxId: null`, ISO-8601 ms times, `size` in GB (bytes / 1024³).
OrderedJson toJson(const meta::Snapshot& snapshot);
//! `PaginatedSnapshots` (§1.4).
OrderedJson toJson(const SnapshotListPage& page);

}  // namespace cairn::service

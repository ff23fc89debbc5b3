#include "cairn/service/engine_snapshot_builder.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <mutex>
#include <optional>

#include "cairn/common/json.h"
#include "cairn/common/log.h"
#include "cairn/layer/chain_id.h"
#include "cairn/oci/reference.h"
#include "cairn/registry/transfer.h"
#include "cairn/store/local_blob_store.h"

namespace cairn::service {
namespace {

constexpr std::size_t kEntrypointTailLines = 20;

std::string secondsText(std::chrono::milliseconds d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(d.count()) / 1000.0);
  return buf;
}

// The layer holding etc/passwd (topmost first), for resolving USER by name.
std::filesystem::path userRoot(const std::vector<std::filesystem::path>& lowers) {
  std::error_code ec;
  for (const auto& dir : lowers)
    if (std::filesystem::exists(dir / "etc/passwd", ec)) return dir;
  return lowers.front();
}

}  // namespace

Result<BuiltImage> EngineSnapshotBuilder::describe(const oci::Descriptor& manifest) {
  CAIRN_ASSIGN_OR_RETURN(auto image, oci::loadImage(*options_.blobs, manifest));
  BuiltImage out;
  out.manifest_digest = manifest.digest.str();
  for (const auto& l : image.manifest.layers)
    out.size_bytes += l.size;
  if (image.config.config) {
    const auto& c = *image.config.config;
    if (c.entrypoint) out.entrypoint = *c.entrypoint;
    if (c.cmd) out.entrypoint.insert(out.entrypoint.end(), c.cmd->begin(), c.cmd->end());
  }
  return out;
}

Result<std::optional<BuiltImage>> EngineSnapshotBuilder::findBuilt(
    const std::string& snapshot_ref) {
  CAIRN_ASSIGN_OR_RETURN(auto name, oci::ImageCatalog::normalizeName(snapshot_ref));
  auto entry = options_.catalog->get(name);
  if (!entry.ok()) {
    if (entry.status().code() == StatusCode::kNotFound) return std::optional<BuiltImage>();
    return entry.status();
  }
  auto described = describe(entry->descriptor);
  // A tag whose blobs are gone (interrupted GC) is not "built": build it again.
  if (!described.ok()) return std::optional<BuiltImage>();
  return std::optional<BuiltImage>(std::move(*described));
}

Result<BuiltImage> EngineSnapshotBuilder::build(const SnapshotBuildJob& job, build::LogSink& log) {
  build::BuildRequest request;
  request.dockerfile = job.dockerfile;
  request.context_dir = job.context_dir;
  request.tags = {job.snapshot_ref};
  request.limits = options_.limits;
  request.step_timeout = options_.step_timeout;
  request.cancel = job.cancel;
  Result<build::BuildResult> result = [&] {
    std::shared_lock lock(gc_mu_);
    return options_.builder->build(request, log);
  }();
  if (!result.ok()) return std::move(result).status();
  return describe(result->manifest);
}

Result<std::string> EngineSnapshotBuilder::resolveDigest(const std::string& image_name) {
  if (options_.registry == nullptr) return failedPrecondition("no registry client configured");
  CAIRN_ASSIGN_OR_RETURN(auto ref, oci::Reference::parse(image_name));
  if (!ref.digest().empty()) return ref.digest().str();
  CAIRN_ASSIGN_OR_RETURN(auto fetched, options_.registry->getManifest(ref.withDefaultTag()));
  return fetched.descriptor.digest.str();
}

Result<BuiltImage> EngineSnapshotBuilder::pull(const std::string& image_name,
                                               const std::string& digest, const std::string& tag,
                                               build::LogSink& log) {
  if (options_.registry == nullptr) return failedPrecondition("no registry client configured");
  CAIRN_ASSIGN_OR_RETURN(auto ref, oci::Reference::parse(image_name));
  CAIRN_ASSIGN_OR_RETURN(auto pinned, Digest::parse(digest));
  // Until the tag is in the catalog, the pulled blobs (some may be old ones reused) are roots of
  // nothing: keep the GC out.
  std::shared_lock gc_lock(gc_mu_);
  CAIRN_ASSIGN_OR_RETURN(auto pulled, registry::pullImage(*options_.registry, *options_.blobs,
                                                          ref.withDigest(pinned)));
  log.write("#2 " + std::to_string(pulled.layers_downloaded) + " layers downloaded, " +
            std::to_string(pulled.layers_present) + " already present\n");
  CAIRN_ASSIGN_OR_RETURN(auto name, oci::ImageCatalog::normalizeName(tag));
  CAIRN_RETURN_IF_ERROR(options_.catalog->tag(name, pulled.manifest, "pull " + image_name));
  return describe(pulled.manifest);
}

Status EngineSnapshotBuilder::removeImage(const std::string& tag) {
  CAIRN_ASSIGN_OR_RETURN(auto name, oci::ImageCatalog::normalizeName(tag));
  return options_.catalog->remove(name);
}

Result<std::optional<StoreGcLock>> EngineSnapshotBuilder::lockDataDir() const {
  const auto* local = dynamic_cast<const store::LocalBlobStore*>(options_.blobs);
  if (local == nullptr) return std::optional<StoreGcLock>();
  CAIRN_ASSIGN_OR_RETURN(StoreGcLock lock, StoreGcLock::tryExclusive(local->root()));
  return std::optional<StoreGcLock>(std::move(lock));
}

Status EngineSnapshotBuilder::collectGarbage() {
  std::unique_lock lock(gc_mu_, std::try_to_lock);
  if (!lock.owns_lock()) return unavailable("garbage collection deferred: builds are running");
  // A `cairn build` in another process on this data dir holds the data-dir lock shared for its
  // whole run; its leased layers and fresh blobs are invisible to this process, so neither the
  // layer GC nor the blob GC may run until it ends.
  CAIRN_ASSIGN_OR_RETURN(std::optional<StoreGcLock> data_dir_lock, lockDataDir());
  CAIRN_RETURN_IF_ERROR(options_.builder->collectGarbage().status());
  if (!options_.collect_blobs) return okStatus();
  StoreGcOptions gc;
  gc.blobs = options_.blobs;
  gc.catalog = options_.catalog;
  gc.cache = &options_.builder->cache();
  gc.layers = options_.layers;
  gc.roots = options_.blob_roots;
  gc.lock_data_dir = !data_dir_lock.has_value();  // already held above
  return collectStoreGarbage(gc).status();
}

Status EngineSnapshotBuilder::recover() {
  // A `cairn build` in another process on this data dir (it holds <data>/gc.lock shared) has
  // its live containers, work dirs and partial blobs in the same places: sweeping them would
  // break it. What a crashed server left is then swept on a later start.
  auto data_dir_lock = lockDataDir();
  if (!data_dir_lock.ok()) {
    if (data_dir_lock.status().code() != StatusCode::kUnavailable) return data_dir_lock.status();
    spdlog::warn(
        "recovery: another process is building on this data directory; leaving "
        "work/builds, stale containers and partial blobs for a later start");
    return okStatus();
  }
  // Containers of the dead process may still run (a RUN step's processes survive a kill -9 of
  // the server): delete them before the builder removes the directories they use.
  Status first = okStatus();
  if (options_.executor != nullptr) first = options_.executor->cleanupStale();
  Status built = options_.builder->recover();
  if (first.ok()) first = built;
  // An export interrupted by the crash leaves partial blobs in <data>/ingest; nothing else
  // writes there while the server starts.
  if (auto* local = dynamic_cast<store::LocalBlobStore*>(options_.blobs)) {
    auto removed = local->cleanIngest(std::chrono::seconds(0));
    if (!removed.ok() && first.ok()) first = removed.status();
    if (removed.ok() && *removed > 0) {
      spdlog::info("recovery: removed {} partial blob(s) from the ingest directory", *removed);
    }
  }
  return first;
}

Status EngineSnapshotBuilder::validateEntrypoint(const EntrypointCheck& check,
                                                 build::LogSink& log) {
  if (options_.executor == nullptr || options_.layers == nullptr) return okStatus();
  std::shared_lock gc_lock(gc_mu_);  // the image's layers stay while the sandbox runs
  CAIRN_ASSIGN_OR_RETURN(auto name, oci::ImageCatalog::normalizeName(check.snapshot_ref));
  CAIRN_ASSIGN_OR_RETURN(auto entry, options_.catalog->get(name));
  CAIRN_ASSIGN_OR_RETURN(auto image, oci::loadImage(*options_.blobs, entry.descriptor));
  oci::ContainerConfig config = image.config.config.value_or(oci::ContainerConfig{});

  std::vector<std::string> args = check.entrypoint;
  if (args.empty()) {
    args = config.entrypoint.value_or(std::vector<std::string>{});
    const auto cmd = config.cmd.value_or(std::vector<std::string>{});
    args.insert(args.end(), cmd.begin(), cmd.end());
  }
  if (args.empty()) {
    log.write("[entrypoint] the image has no entrypoint or cmd: nothing to validate\n");
    return okStatus();
  }
  // §5.5 turns a shell-form `ENTRYPOINT /start.sh --x 'y'` into one element "/start.sh --x y":
  // run such a command line through the shell, as the image itself would.
  if (args.size() == 1 && args[0].find_first_of(" \t") != std::string::npos) {
    args = {"/bin/sh", "-c", args[0]};
  }
  const std::string shown = Json(args).dump();
  auto failed = [&](const std::string& why, const std::deque<std::string>& tail) {
    std::string reason = "Entrypoint " + shown + " " + why;
    if (!tail.empty()) {
      reason += "\nLast output:";
      for (const auto& line : tail)
        reason += "\n" + line;
    }
    log.write("ERROR: " + reason + "\n");
    return failedPrecondition(reason);
  };

  if (image.manifest.layers.empty()) {
    return failed("cannot run: the image has no layers (no files at all)", {});
  }
  if (image.config.diff_ids.size() != image.manifest.layers.size()) {
    return internalError("image " + check.snapshot_ref + ": config has " +
                         std::to_string(image.config.diff_ids.size()) + " diff ids for " +
                         std::to_string(image.manifest.layers.size()) + " layers");
  }
  // The build left its layers unpacked; import any that are missing (e.g. GC'd since).
  layer::ApplyOptions apply;
  apply.preserve_owner = ::geteuid() == 0;
  Digest parent;
  for (std::size_t i = 0; i < image.manifest.layers.size(); ++i) {
    const Digest& diff = image.config.diff_ids[i];
    Digest chain = layer::chainId(parent, diff);
    if (!options_.layers->exists(chain)) {
      auto info = options_.layers->importBlob(*options_.blobs, image.manifest.layers[i].digest,
                                              parent, diff, apply);
      if (!info.ok()) return info.status().withContext("image " + check.snapshot_ref);
      chain = info->chain_id;
    }
    parent = chain;
  }
  CAIRN_ASSIGN_OR_RETURN(store::LayerLease lease, options_.layers->lease(parent));
  runtime::ContainerSpec spec;
  CAIRN_ASSIGN_OR_RETURN(spec.rootfs.lower_dirs, options_.layers->lowerDirs(parent));
  spec.process.args = args;
  spec.process.env = config.env;
  spec.process.cwd = config.working_dir.empty() ? "/" : config.working_dir;
  if (!config.user.empty()) {
    auto user = runtime::resolveUser(userRoot(spec.rootfs.lower_dirs), config.user);
    if (!user.ok())
      return failed("cannot run as USER " + config.user + ": " + user.status().message(), {});
    spec.process.uid = user->uid;
    spec.process.gid = user->gid;
    spec.process.additional_gids = user->additional_gids;
    if (!user->home.empty()) spec.process.env.push_back("HOME=" + user->home);
  }
  spec.network = runtime::NetworkMode::kNone;
  spec.limits = check.limits;
  spec.timeout = check.stay_up;

  log.write("[entrypoint] validating " + shown + ": it must stay up for " +
            secondsText(check.stay_up) + " (network none)\n");
  std::mutex tail_mu;
  std::deque<std::string> tail;
  runtime::RunIo io;
  io.cancel = check.cancel;
  io.on_line = [&](runtime::OutputStream, std::string_view line) {
    log.write("[entrypoint] " + std::string(line) + "\n");
    std::lock_guard lock(tail_mu);
    tail.emplace_back(line);
    if (tail.size() > kEntrypointTailLines) tail.pop_front();
  };
  auto run = options_.executor->run(spec, io);
  if (!run.ok()) return failed("could not be started: " + run.status().message(), tail);
  if (run->cancelled) return cancelled("entrypoint validation was cancelled");
  if (run->timed_out) {
    log.write("[entrypoint] still running after " + secondsText(check.stay_up) +
              ": OK (stopped)\n");
    return okStatus();
  }
  if (run->oom_killed) {
    return failed("ran out of memory (limit " +
                      std::to_string(check.limits.memory_bytes / (1024 * 1024)) + " MiB) after " +
                      secondsText(run->duration),
                  tail);
  }
  if (!run->status.signaled && run->status.exit_code == 0) {
    log.write("[entrypoint] exited with code 0 after " + secondsText(run->duration) + ": OK\n");
    return okStatus();
  }
  return failed("exited with " + run->status.toString() + " after " + secondsText(run->duration) +
                    " (a sandbox's entrypoint must keep running; a snapshot whose entrypoint "
                    "fails at once is not usable)",
                tail);
}

}  // namespace cairn::service

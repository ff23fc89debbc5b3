#include "cairn/service/store_gc.h"

#include <fcntl.h>
#include <sys/file.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <set>

#include "cairn/common/log.h"
#include "cairn/store/local_blob_store.h"

namespace cairn::service {
namespace {

constexpr std::size_t kBatch = 256;

// The exported blob of every cached step whose layer is still unpacked. A chain id whose layer
// directory is gone (or whose diff id was never exported) has nothing to keep.
Status addCachedExports(const StoreGcOptions& o, std::set<Digest>& live) {
  if (o.cache == nullptr || o.layers == nullptr) return okStatus();
  CAIRN_ASSIGN_OR_RETURN(std::vector<Digest> chains, o.cache->liveChainIds());
  std::set<Digest> diff_ids;
  for (const Digest& chain : chains) {
    Result<store::LayerInfo> info = o.layers->info(chain);
    if (info.ok()) diff_ids.insert(info->diff_id);
  }
  for (const Digest& diff : diff_ids) {
    CAIRN_ASSIGN_OR_RETURN(std::optional<build::ExportedLayer> exported, o.cache->exported(diff));
    if (exported) live.insert(exported->digest);
  }
  return okStatus();
}

// Read-only is enough for flock, and lets any user who can read the data directory take it.
Result<UniqueFd> openLockFile(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0644));
  if (!fd.valid()) return errnoStatus(errno, "open " + path.string());
  return fd;
}

}  // namespace

std::filesystem::path StoreGcLock::pathIn(const std::filesystem::path& data_dir) {
  return data_dir / "gc.lock";
}

Result<StoreGcLock> StoreGcLock::shared(const std::filesystem::path& data_dir,
                                        const std::function<void()>& on_wait) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) return internalError("create " + data_dir.string() + ": " + ec.message());
  const std::filesystem::path path = pathIn(data_dir);
  CAIRN_ASSIGN_OR_RETURN(UniqueFd fd, openLockFile(path));
  int rc = 0;
  do {
    rc = ::flock(fd.get(), LOCK_SH | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc == 0) return StoreGcLock(std::move(fd));
  if (errno != EWOULDBLOCK) return errnoStatus(errno, "flock " + path.string());
  if (on_wait) on_wait();
  while (::flock(fd.get(), LOCK_SH) != 0) {
    if (errno != EINTR) return errnoStatus(errno, "flock " + path.string());
  }
  return StoreGcLock(std::move(fd));
}

Result<StoreGcLock> StoreGcLock::tryExclusive(const std::filesystem::path& data_dir) {
  const std::filesystem::path path = pathIn(data_dir);
  CAIRN_ASSIGN_OR_RETURN(UniqueFd fd, openLockFile(path));
  while (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      const std::string why = "garbage collection deferred: a build or pull holds ";
      return unavailable(why + path.string());
    }
    if (errno != EINTR) return errnoStatus(errno, "flock " + path.string());
  }
  return StoreGcLock(std::move(fd));
}

Result<StoreGcReport> collectStoreGarbage(const StoreGcOptions& options) {
  if (options.blobs == nullptr || options.catalog == nullptr) {
    return invalidArgument("store garbage collection needs a blob store and an image catalog");
  }
  // Builds in other processes (`cairn build` beside `cairn serve`) hold the data directory's
  // lock shared; their blobs are roots of nothing this pass can read. Held until the end.
  std::optional<StoreGcLock> data_dir_lock;
  if (options.lock_data_dir) {
    if (const auto* local = dynamic_cast<const store::LocalBlobStore*>(options.blobs)) {
      CAIRN_ASSIGN_OR_RETURN(data_dir_lock, StoreGcLock::tryExclusive(local->root()));
    }
  }
  const Clock& clock = options.clock != nullptr ? *options.clock : RealClock::instance();
  // Taken before any root is read: whatever is committed from here on is not a candidate.
  const SystemTime walk_start = clock.now();
  const SystemTime not_after =
      walk_start - std::chrono::duration_cast<SystemTime::duration>(options.grace);

  std::set<Digest> live;
  CAIRN_ASSIGN_OR_RETURN(std::vector<oci::Descriptor> images, options.catalog->roots());
  Result<std::vector<Digest>> reachable = oci::reachableBlobs(*options.blobs, images);
  if (!reachable.ok()) {
    return reachable.status().withContext("store gc: walking the catalog's images");
  }
  live.insert(reachable->begin(), reachable->end());
  if (Status s = addCachedExports(options, live); !s.ok()) {
    return s.withContext("store gc: reading the build cache's exported layers");
  }

  StoreGcReport report;
  report.live_count = live.size();
  // Candidates: committed before not_after and not live. Walked without freezing anyone: a
  // root set's new references are checked per batch below.
  std::vector<store::BlobInfo> candidates;
  CAIRN_RETURN_IF_ERROR(options.blobs->walk([&](const store::BlobInfo& info) {
    if (live.count(info.digest) != 0 || info.committed_at > not_after) {
      ++report.blobs.kept;
    } else {
      candidates.push_back(info);
    }
    return okStatus();
  }));
  std::sort(candidates.begin(), candidates.end(),
            [](const store::BlobInfo& a, const store::BlobInfo& b) { return a.digest < b.digest; });

  // Removal in batches, each inside every root set's frozen section with the roots read again:
  // a reference added since the last batch keeps its blob, and writers wait for one batch at a
  // time, not the whole sweep (unlinking thousands of blobs takes seconds on a slow disk).
  for (std::size_t first = 0; first < candidates.size(); first += kBatch) {
    const std::size_t last = std::min(candidates.size(), first + kBatch);
    std::set<Digest> held;
    std::function<Status(std::size_t)> sweepFrom = [&](std::size_t i) -> Status {
      if (i == options.roots.size()) {
        for (std::size_t c = first; c < last; ++c) {
          const store::BlobInfo& info = candidates[c];
          if (held.count(info.digest) != 0) {
            ++report.blobs.kept;
            continue;
          }
          Status st = options.blobs->remove(info.digest);
          if (st.code() == StatusCode::kNotFound) continue;  // removed by someone else: fine
          if (!st.ok()) return st.withContext("store gc");
          report.blobs.removed.push_back(info.digest);
          report.blobs.removed_bytes += info.size;
        }
        return okStatus();
      }
      return options.roots[i]->withFrozenRoots([&](const std::vector<Digest>& roots) {
        held.insert(roots.begin(), roots.end());
        return sweepFrom(i + 1);
      });
    };
    CAIRN_RETURN_IF_ERROR(sweepFrom(0));
  }
  if (!report.blobs.removed.empty()) {
    spdlog::info("store gc: removed {} blob(s), {} bytes; {} live through images and the cache",
                 report.blobs.removed.size(), report.blobs.removed_bytes, report.live_count);
  }
  return report;
}

}  // namespace cairn::service

// Garbage collection of the blob store (<data>/blobs/sha256): everything nothing references any
// more goes — deleted snapshots' manifests, configs and compressed layers, replaced S3 objects'
// bodies, exports of evicted cache entries.
//
// The live set is the union of
//   - every catalog image's blobs (manifest or index, configs, layers: oci::reachableBlobs),
//   - the exported (compressed) layer blobs of steps still in the build cache, so a cache hit
//     does not have to compress its layer again,
//   - the digests held by each BlobRootSet (the S3 endpoint's objects).
// Candidates are the blobs committed before not_after (= walk start - grace) that are not live
// (as store::collectGarbage picks them); they are removed in batches.
//
// What keeps a new reference from racing the sweep:
//   - images: the caller holds the lock that keeps builds and pulls out (EngineSnapshotBuilder's
//     gc lock), so no catalog tag is added while this runs;
//   - BlobRootSets: each batch is removed inside withFrozenRoots(), with the roots read again,
//     while the holder's writers wait (a put whose body already existed as an old blob would
//     otherwise lose it). Writers wait for one batch, not for the whole sweep: removing 3000
//     blobs took 11 s on the build machine's disk;
//   - anything else committed after the walk started is not a candidate (not_after). `grace`
//     widens that window backwards because a local blob's commit time is its file's mtime, taken
//     from the kernel's coarse clock at the last write, a little before the rename publishes it;
//   - other processes on the same data directory (`cairn build`, beside a running `cairn serve`):
//     they hold <data>/gc.lock shared for their whole life (StoreGcLock), and a pass over a
//     LocalBlobStore takes it exclusively first, or returns Unavailable without removing
//     anything. Their blobs are referenced by nothing the pass reads until their image is tagged
//     (a config written early in the build, an old blob a new layer happens to equal), and
//     the in-process lock above cannot see them.
//
//   StoreGcOptions o{.blobs = blobs, .catalog = catalog, .roots = {object_store}};
//   CAIRN_ASSIGN_OR_RETURN(StoreGcReport r, collectStoreGarbage(o));
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <vector>

#include "cairn/build/cache_index.h"
#include "cairn/common/digest.h"
#include "cairn/common/fs.h"
#include "cairn/common/status.h"
#include "cairn/common/time.h"
#include "cairn/oci/catalog.h"
#include "cairn/store/blob_store.h"
#include "cairn/store/layer_store.h"

namespace cairn::service {

//! Something outside the image world that keeps blobs alive by digest (the S3 endpoint's
//! object index). The GC removes blobs inside withFrozenRoots (once per batch), so the holder
//! must not add or move a reference while `sweep` runs (its writers wait instead).
class BlobRootSet {
 public:
  virtual ~BlobRootSet() = default;
  //! Calls `sweep` with every digest referenced now, holding new references back until it
  //! returns; returns what `sweep` returned (or the holder's own error, without calling it).
  virtual Status withFrozenRoots(
      const std::function<Status(const std::vector<Digest>& roots)>& sweep) = 0;
};

//! <data>/gc.lock: the blob GC's lock across processes. A process that writes blobs or layers
//! no catalog tag reaches yet (a build, a pull, an import) holds it shared for as long as it
//! runs; a GC pass takes it exclusively, without waiting, and defers while anyone holds it. The
//! file is never removed (removing a lock file races with its next opener). flock is per open
//! file, so two holders in one process exclude each other like two processes do.
//!
//!   // `cairn build`, for the whole build:
//!   CAIRN_ASSIGN_OR_RETURN(StoreGcLock gc_lock, StoreGcLock::shared(data_dir));
class StoreGcLock {
 public:
  static std::filesystem::path pathIn(const std::filesystem::path& data_dir);

  //! Shared, waiting while a GC pass holds it (a pass takes seconds); `on_wait` is called once
  //! before waiting, so a CLI can say why it pauses. Creates the data directory if missing.
  static Result<StoreGcLock> shared(const std::filesystem::path& data_dir,
                                    const std::function<void()>& on_wait = {});
  //! Exclusive, without waiting: Unavailable while any process (this one included) holds it.
  static Result<StoreGcLock> tryExclusive(const std::filesystem::path& data_dir);

  StoreGcLock(StoreGcLock&&) noexcept = default;
  StoreGcLock& operator=(StoreGcLock&&) noexcept = default;

 private:
  explicit StoreGcLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;  // the lock lives as long as this descriptor
};

struct StoreGcOptions {
  store::BlobStore* blobs = nullptr;     //!< required
  oci::ImageCatalog* catalog = nullptr;  //!< required: its images are roots
  //! Optional: the exported blobs of cached steps stay. Needs `layers` to map a cached step's
  //! chain id to its diff id (the key of the cache's exports).
  build::CacheIndex* cache = nullptr;
  store::LayerStore* layers = nullptr;
  std::vector<BlobRootSet*> roots;  //!< e.g. the S3 endpoint's object store
  const Clock* clock = &RealClock::instance();
  //! Blobs committed this long before the walk starts are kept too (see the file comment).
  std::chrono::milliseconds grace{2000};
  //! For a LocalBlobStore: take StoreGcLock::tryExclusive on its root (the data directory)
  //! for the pass. false only when the caller already holds it exclusively.
  bool lock_data_dir = true;
};

struct StoreGcReport {
  store::GcReport blobs;  //!< what the sweep removed and kept (kept: blobs walked and left)
  //! Distinct digests live through images and the build cache (root sets are read per batch).
  std::size_t live_count = 0;
};

//! Computes the live set and sweeps. The caller holds the lock that keeps builds and pulls out.
//! Any error while computing the live set (an unreadable catalog, a manifest that does not
//! parse) stops before anything is removed. Unavailable, with nothing removed, while another
//! process holds the data directory's StoreGcLock (the next pass retries).
Result<StoreGcReport> collectStoreGarbage(const StoreGcOptions& options);

}  // namespace cairn::service

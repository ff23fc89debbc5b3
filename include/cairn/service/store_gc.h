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
//     from the kernel's coarse clock at the last write, a little before the rename publishes it.
//
//   StoreGcOptions o{.blobs = blobs, .catalog = catalog, .roots = {object_store}};
//   CAIRN_ASSIGN_OR_RETURN(StoreGcReport r, collectStoreGarbage(o));
#pragma once

#include <chrono>
#include <functional>
#include <vector>

#include "cairn/build/cache_index.h"
#include "cairn/common/digest.h"
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
};

struct StoreGcReport {
  store::GcReport blobs;  //!< what the sweep removed and kept (kept: blobs walked and left)
  //! Distinct digests live through images and the build cache (root sets are read per batch).
  std::size_t live_count = 0;
};

//! Computes the live set and sweeps. The caller holds the lock that keeps builds and pulls out.
//! Any error while computing the live set (an unreadable catalog, a manifest that does not
//! parse) stops before anything is removed.
Result<StoreGcReport> collectStoreGarbage(const StoreGcOptions& options);

}  // namespace cairn::service

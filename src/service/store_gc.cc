#include "cairn/service/store_gc.h"

#include <set>

#include "cairn/common/log.h"

namespace cairn::service {
namespace {

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

}  // namespace

Result<StoreGcReport> collectStoreGarbage(const StoreGcOptions& options) {
  if (options.blobs == nullptr || options.catalog == nullptr) {
    return invalidArgument("store garbage collection needs a blob store and an image catalog");
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
  // Each root set freezes its references while the sweep runs; with several, they nest so that
  // all of them stay frozen until the blobs are gone.
  std::function<Status(std::size_t)> sweepFrom = [&](std::size_t i) -> Status {
    if (i == options.roots.size()) {
      report.live_count = live.size();
      CAIRN_ASSIGN_OR_RETURN(
          report.blobs,
          store::collectGarbage(*options.blobs, std::vector<Digest>(live.begin(), live.end()),
                                not_after));
      return okStatus();
    }
    return options.roots[i]->withFrozenRoots([&](const std::vector<Digest>& held) {
      live.insert(held.begin(), held.end());
      return sweepFrom(i + 1);
    });
  };
  CAIRN_RETURN_IF_ERROR(sweepFrom(0));
  if (!report.blobs.removed.empty()) {
    spdlog::info("store gc: removed {} blob(s), {} bytes; {} live", report.blobs.removed.size(),
                 report.blobs.removed_bytes, report.live_count);
  }
  return report;
}

}  // namespace cairn::service

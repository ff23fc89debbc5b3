// Unpacked layer snapshots, one directory per OCI chain id (containerd's overlayfs snapshotter):
//
//   <root>/layers/<chain-id hex>/fs          the layer's own tree: a ready overlayfs lowerdir
//                                            (whiteouts as 0/0 char devices, opaque dirs
//                                            marked trusted.overlay.opaque=y)
//   <root>/layers/<chain-id hex>/layer.json  chain id, diff id, parent chain id, size, time
//   <root>/layers/.staging-<random>/         a layer being built; published by one rename()
//
// A layer is created once per chain id: concurrent creators in this process wait for the first
// and reuse its result; across processes the first rename() wins and the others discard their
// staging copy. A published layer never changes. Layers are reference counted while in use
// (LayerLease, held by builds and running sandboxes) and removed by collectGarbage() when
// neither leased nor reachable from the caller's live set.
//
//   ASSIGN_OR_RETURN(LayerInfo base, layers.importBlob(blobs, layer_desc_digest, media_type,
//                                                      Digest(), diff_ids[0]));
//   ASSIGN_OR_RETURN(auto lowers, layers.lowerDirs(top_chain_id));  // for mount -t overlay
#pragma once

#include <condition_variable>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "cairn/common/digest.h"
#include "cairn/common/status.h"
#include "cairn/common/time.h"
#include "cairn/layer/apply.h"
#include "cairn/layer/compression.h"
#include "cairn/layer/diff.h"
#include "cairn/store/blob_store.h"

namespace cairn::store {

struct LayerInfo {
  Digest chain_id;
  Digest diff_id;
  Digest parent;           //!< parent's chain id; empty for a bottom layer
  std::uint64_t size = 0;  //!< bytes of file content in this layer
  SystemTime created_at{};
};

class LayerStore;

//! Keeps a layer (and, through it, its parents) from being garbage collected. Movable.
class LayerLease {
 public:
  LayerLease() = default;
  LayerLease(LayerLease&& o) noexcept : store_(o.store_), chain_id_(std::move(o.chain_id_)) {
    o.store_ = nullptr;
  }
  LayerLease& operator=(LayerLease&& o) noexcept;
  LayerLease(const LayerLease&) = delete;
  LayerLease& operator=(const LayerLease&) = delete;
  ~LayerLease() { release(); }
  const Digest& chainId() const { return chain_id_; }
  void release();

 private:
  friend class LayerStore;
  LayerLease(LayerStore* store, Digest chain_id) : store_(store), chain_id_(std::move(chain_id)) {}
  LayerStore* store_ = nullptr;
  Digest chain_id_;
};

struct LayerGcReport {
  std::vector<Digest> removed;
  std::uint64_t kept = 0;
};

class LayerStore {
 public:
  //! Creates <root>/layers if missing. `root` is Cairn's data directory.
  static Result<std::unique_ptr<LayerStore>> open(const std::filesystem::path& root);

  //! <root>/layers/<hex>/fs, whether or not it exists.
  std::filesystem::path fsPath(const Digest& chain_id) const;
  bool exists(const Digest& chain_id) const;
  //! NotFound if absent.
  Result<LayerInfo> info(const Digest& chain_id) const;
  //! All published layers, sorted by chain id.
  Result<std::vector<LayerInfo>> list() const;
  //! The overlayfs lowerdir list for a layer stack, topmost first (the order `lowerdir=`
  //! wants): fs of `top`, of its parent, ..., of the bottom layer. NotFound names a missing one.
  Result<std::vector<std::filesystem::path>> lowerDirs(const Digest& top) const;

  //! Fills a new layer through `fill(staging_fs_dir)` unless the chain id exists already (then
  //! `fill` is not called). The parent must exist (empty parent: a bottom layer).
  using FillFn = std::function<Result<std::uint64_t>(const std::filesystem::path& fs_dir)>;
  Result<LayerInfo> getOrCreate(const Digest& parent, const Digest& diff_id, const FillFn& fill);

  //! Unpacks a (possibly compressed, detected from magic bytes) layer tar from `tar` on top of
  //! `parent`; the uncompressed stream must hash to `diff_id` (a mismatch names both and
  //! publishes nothing).
  Result<LayerInfo> importTar(layer::ByteSource& tar, const Digest& parent, const Digest& diff_id,
                              const layer::ApplyOptions& options = {});

  //! importTar from a blob in `blobs` (a layer descriptor's digest).
  Result<LayerInfo> importBlob(const BlobReader& blobs, const Digest& blob, const Digest& parent,
                               const Digest& diff_id, const layer::ApplyOptions& options = {});

  //! Makes `dir` (e.g. a finished build step's overlay upper dir, on the same filesystem) a new
  //! layer on top of `parent` by renaming it into place — no copy. Its diff id is computed by
  //! a hash-only tar pass. If the layer exists already, `dir` is left alone and the existing
  //! layer returned.
  Result<LayerInfo> adoptDir(const Digest& parent, const std::filesystem::path& dir,
                             const layer::DiffOptions& options = {});

  //! Takes a lease; NotFound if the layer does not exist.
  Result<LayerLease> lease(const Digest& chain_id);
  //! Number of live leases on exactly this layer.
  int leaseCount(const Digest& chain_id) const;

  //! Removes every layer that is neither in `live`, nor leased, nor a parent of one of those.
  //! A layer is renamed out of the way first, so a half-removed layer never keeps its name.
  Result<LayerGcReport> collectGarbage(const std::vector<Digest>& live);

  //! Removes staging and trash directories not modified for `older_than` (crashed writers).
  Result<std::size_t> cleanStaging(std::chrono::seconds older_than);

 private:
  friend class LayerLease;
  explicit LayerStore(std::filesystem::path root);
  void releaseLease(const Digest& chain_id);
  Result<std::filesystem::path> makeStaging();

  std::filesystem::path layers_dir_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::set<Digest> creating_;
  std::map<Digest, int> leases_;
};

//! Exports a directory (an upper dir or a layer's fs) as a compressed layer blob in one pass:
//! tar → hash (diff id) → compress → hash (digest) → blob writer, committed under its digest.
Result<layer::EncodedLayer> exportDirToBlob(const std::filesystem::path& dir, BlobIngester& blobs,
                                            layer::Compression compression,
                                            const layer::DiffOptions& diff_options = {},
                                            const layer::CompressionOptions& comp_options = {});

}  // namespace cairn::store

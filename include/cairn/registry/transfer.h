// Whole-image transfers between a registry and the blob store.
//
// pullImage: manifest (an index is resolved to the configured platform), config, then the
// layers, several at once, each streamed into a store writer that verifies its digest on
// commit; optionally each layer is also handed, while it downloads, to an unpacker (e.g.
// makeRootfsUnpacker, or a layer store writing <data>/layers/<chain-id>). The manifest is
// committed last, so an image is only ever visible complete.
//
// pushImage: layers and config (skipped when the registry has them, mounted from another
// repository when told where), then the manifest under the destination's tag. Uncompressed
// layers (a Cairn build's) are compressed on the way when the caller asks (PushImageOptions).
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>

#include "cairn/common/status.h"
#include "cairn/layer/apply.h"
#include "cairn/layer/compression.h"
#include "cairn/layer/stream.h"
#include "cairn/oci/image.h"
#include "cairn/oci/reference.h"
#include "cairn/registry/client.h"
#include "cairn/store/blob_store.h"
#include "cairn/store/layer_store.h"

namespace cairn::registry {

//! Called on a worker thread with a layer's *compressed* bytes as they arrive (or from the
//! store, when the layer was already there), and the layer's diff id from the config. The
//! compressed stream is only known good once pullImage returns OK: on error, discard what the
//! unpacker produced (the layer store's importTar checks the diff id itself).
using LayerUnpacker = std::function<Status(std::size_t index, const oci::Descriptor& layer,
                                           const Digest& diff_id, layer::ByteSource& compressed)>;

struct PullOptions {
  std::optional<oci::Platform> platform;  //!< default: the client config's platform
  LayerUnpacker unpack;                   //!< optional
};

struct PullResult {
  oci::Descriptor manifest;
  std::optional<oci::Descriptor> index;  //!< when the reference named an index
  oci::Reference resolved;               //!< the reference with the manifest digest
  std::uint64_t downloaded_bytes = 0;
  std::size_t layers_downloaded = 0;
  std::size_t layers_present = 0;  //!< already in the store
};

Result<PullResult> pullImage(RegistryClient& client, store::BlobStore& blobs,
                             const oci::Reference& ref, const PullOptions& options = {});

struct PushResult {
  oci::Descriptor manifest;
  std::size_t uploaded = 0;
  std::size_t existed = 0;
  std::size_t mounted = 0;
};

//! Pushes the manifest (or index, with every child manifest the store holds) `root` to
//! `dest` (its tag, else "latest"; a digest-only destination pushes by digest). Layers go as
//! they are stored.
Result<PushResult> pushImage(RegistryClient& client, const store::BlobReader& blobs,
                             const oci::Descriptor& root, const oci::Reference& dest,
                             const BlobPushOptions& options = {});

//! Remembers the compressed copies pushImage makes of uncompressed layers, so that pushing the
//! same layer again (another tag, another registry, the next build's image) uploads the copy
//! made the first time instead of compressing again. The build cache index keeps them next to
//! its step entries (the `cairn image push` command adapts it); a remembered blob the store no
//! longer has is made again.
class CompressedLayerMemo {
 public:
  virtual ~CompressedLayerMemo() = default;
  //! The copy of the layer with this diff id in this compression, if one was remembered.
  virtual std::optional<oci::Descriptor> find(const Digest& diff_id, layer::Compression c) = 0;
  virtual void remember(const Digest& diff_id, layer::Compression c,
                        const oci::Descriptor& blob) = 0;
};

struct PushImageOptions {
  BlobPushOptions blob;
  //! Uncompressed (tar) layers — what a Cairn build stores — are compressed before they are
  //! uploaded: gzip by default, which every registry client reads (Docker before 23 and
  //! umoci 0.4 do not read zstd); zstd on request; nullopt or kNone uploads them as stored.
  //! Compressed layers always go as they are.
  std::optional<layer::Compression> compression = layer::Compression::kGzip;
  layer::CompressionOptions compression_options;
  CompressedLayerMemo* memo = nullptr;  //!< optional
};

struct CompressedPush {
  PushResult push;
  std::size_t compressed = 0;  //!< layers compressed for this push
  std::size_t reused = 0;      //!< layers whose remembered compressed copy was pushed
};

//! pushImage, compressing uncompressed layers first ("compressed lazily": a build stores its
//! layers as tars and compression waits until the image leaves the machine). Each compressed
//! copy is written to `blobs` and checked against the config's diff id; the manifest is
//! rewritten with the copies' descriptors (same config, same diff ids, so the same image) and
//! written to `blobs`; an index gets its rewritten children. `push.manifest` is what was
//! pushed. An image without uncompressed layers is pushed unchanged.
Result<CompressedPush> pushImage(RegistryClient& client, store::BlobStore& blobs,
                                 const oci::Descriptor& root, const oci::Reference& dest,
                                 const PushImageOptions& options);

//! The first half of that pushImage on its own: the manifest (or index) `root` with its
//! uncompressed layers replaced by compressed copies written to `blobs`; `root` itself when
//! there is nothing to compress. `compressed` / `reused` count the layers.
Result<oci::Descriptor> compressUncompressedLayers(store::BlobStore& blobs,
                                                   const oci::Descriptor& root,
                                                   const PushImageOptions& options,
                                                   std::size_t* compressed = nullptr,
                                                   std::size_t* reused = nullptr);

//! An unpacker that flattens the image into one root filesystem directory (kFlatten
//! whiteouts), applying layer i only after layer i-1 (downloads still overlap). `rootfs` must
//! exist. One unpacker per pull.
LayerUnpacker makeRootfsUnpacker(const std::filesystem::path& rootfs,
                                 layer::ApplyOptions options = {});

//! An unpacker that imports each layer into the layer store (<data>/layers/<chain-id>), in
//! order (layer i needs layer i-1 as its parent), while downloads overlap.
LayerUnpacker makeLayerStoreUnpacker(store::LayerStore& layers, layer::ApplyOptions options = {});

//! Unpacks an image already in the store into `rootfs` (kFlatten), layer by layer.
Status unpackImage(const store::BlobReader& blobs, const oci::Manifest& manifest,
                   const oci::ImageConfig& config, const std::filesystem::path& rootfs,
                   layer::ApplyOptions options = {});

}  // namespace cairn::registry

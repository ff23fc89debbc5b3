// Layer compression: zstd (the default for new layers) and gzip (zlib, for compatibility),
// streaming both ways, detected from magic bytes or from an OCI/Docker media type.
//
// Exporting a layer is one pass: tar bytes → LayerEncoder → blob writer, and the encoder
// yields both the uncompressed diff id and the compressed digest (OCI: the descriptor's digest
// and the config's rootfs.diff_ids entry).
//
//   LayerEncoder enc(Compression::kZstd, &blob_sink);
//   RETURN_IF_ERROR(createLayerTar(upper, enc, options));   // or any writes
//   ASSIGN_OR_RETURN(EncodedLayer out, enc.finish());
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "cairn/common/digest.h"
#include "cairn/layer/stream.h"

namespace cairn::layer {

enum class Compression { kNone, kGzip, kZstd };

//! "none", "gzip", "zstd".
std::string_view compressionName(Compression c);
//! Parses "none"/"uncompressed", "gzip"/"gz", "zstd"/"zst".
Result<Compression> parseCompression(std::string_view name);

//! From the first bytes of a blob (4 are enough): gzip 1f 8b, zstd 28 b5 2f fd, else kNone.
Compression detectCompression(std::string_view head);

//! From a layer media type: application/vnd.oci.image.layer.v1.tar[+gzip|+zstd],
//! application/vnd.docker.image.rootfs.diff.tar[.gzip], the nondistributable variants, and
//! application/vnd.docker.image.rootfs.foreign.diff.tar.gzip. Others are InvalidArgument.
Result<Compression> compressionFromMediaType(std::string_view media_type);

//! The OCI layer media type for a compression ("application/vnd.oci.image.layer.v1.tar+zstd").
std::string ociLayerMediaType(Compression c);

struct CompressionOptions {
  //! zstd level (default 3, as `zstd -3`); gzip level (default 6, as `gzip`). 0 = default.
  int level = 0;
  //! zstd worker threads (0 = in the caller's thread). zstd's output is the same for every
  //! count >= 1 but differs from 0: pick 0 or a fixed >= 1 per deployment, never "all cores
  //! or 0 depending on the machine", or layer digests stop being reproducible.
  int threads = 0;
};

//! Compresses what is written to it into `out`. finish() ends the frame/stream and calls
//! out->finish().
Result<std::unique_ptr<ByteSink>> makeCompressor(Compression c, ByteSink* out,
                                                 const CompressionOptions& options = {});

//! Decompresses `in` (which it does not own). A truncated or corrupt stream is an
//! InvalidArgument error saying which format failed and where. Concatenated gzip members and
//! zstd frames are read as one stream, as gzip(1) and zstd(1) do.
Result<std::unique_ptr<ByteSource>> makeDecompressor(Compression c, ByteSource* in);

//! Peeks at the first bytes of `in` and decompresses accordingly (auto-detection).
Result<std::unique_ptr<ByteSource>> makeAutoDecompressor(ByteSource* in);

//! What LayerEncoder::finish() reports.
struct EncodedLayer {
  Digest diff_id;              //!< sha256 of the uncompressed tar
  std::uint64_t tar_size = 0;  //!< uncompressed size
  Digest digest;               //!< sha256 of the compressed blob (== diff_id for kNone)
  std::uint64_t size = 0;      //!< compressed size
  Compression compression = Compression::kZstd;
  std::string media_type;  //!< OCI layer media type
};

//! tar bytes in → hashed, compressed, hashed again → `out`. One pass, bounded memory.
class LayerEncoder final : public ByteSink {
 public:
  //! Call ok() (or finish()) to see whether the compressor could be set up.
  LayerEncoder(Compression c, ByteSink* out, const CompressionOptions& options = {});
  ~LayerEncoder() override;
  Status write(std::string_view data) override;
  //! Flushes and reports; the encoder is spent afterwards.
  Result<EncodedLayer> finishLayer();
  Status finish() override { return finishLayer().status(); }

 private:
  Compression compression_;
  Status init_status_;
  HashingSink compressed_;
  std::unique_ptr<ByteSink> compressor_;
  Sha256 tar_sha_;
  std::uint64_t tar_size_ = 0;
  bool finished_ = false;
};

}  // namespace cairn::layer

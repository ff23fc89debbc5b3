// Changing the compression of an image's layers, e.g. so that an exported image can be read by
// tools that know only gzip (Debian's umoci 0.4.7, Docker before 23) although Cairn stores new
// layers as zstd. The uncompressed tars stay byte for byte the same, so the config and its
// diff ids do not change; the layer descriptors, and with them the manifest digest, do.
//
//   CAIRN_ASSIGN_OR_RETURN(oci::Recompressed r,
//       oci::recompressImage(blobs, manifest, layer::Compression::kGzip));
//   CAIRN_RETURN_IF_ERROR(oci::exportLayout(blobs, r.manifest, dir, tag));
#pragma once

#include <cstddef>

#include "cairn/common/status.h"
#include "cairn/layer/compression.h"
#include "cairn/oci/image.h"
#include "cairn/store/blob_store.h"

namespace cairn::oci {

struct Recompressed {
  Descriptor manifest;        //!< the input descriptor itself when nothing had to change
  std::size_t converted = 0;  //!< layers compressed anew
  std::size_t kept = 0;       //!< layers already in the target compression
};

//! Every layer of the image `manifest` (a manifest, not an index) in `target` compression:
//! layers already in it are kept as they are; the others are decompressed and compressed again
//! in one streaming pass that checks the config's diff id, and stored as new blobs, as is the
//! new manifest. The media types follow the manifest's kind (OCI or Docker schema2). Layer
//! URLs (foreign layers) are dropped from converted layers: their new blob is only local.
Result<Recompressed> recompressImage(store::BlobStore& blobs, const Descriptor& manifest,
                                     layer::Compression target,
                                     const layer::CompressionOptions& options = {});

}  // namespace cairn::oci
